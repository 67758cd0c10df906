//! The revision graph: pure code over metadata, no wasm and no database.
//!
//! Edges: a revision follows its `down` revisions (parents); `depends_on` adds an
//! ordering edge that does not make the dependency a parent. Order: Alembic's walk
//! ([`Graph::walk_order`], docs/graph.md), one branch at a time, ties broken by load
//! order (component file names), checked against real Alembic by tests/alembic/.
//!
//! Branch labels: a label names the revision that declares it and every revision that
//! descends from it, plus its ancestors up to (not including) the nearest branch point —
//! Alembic's rule. A `depends_on` entry may name a label: it resolves to the revision
//! that declares the label.

mod plan;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use plan::{Direction, Step, heads_after, plan_downgrade, plan_upgrade};

use crate::revision::Metadata;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why a history, or a revision spec in it, cannot be used.
pub enum GraphError {
    /// A revision names a down revision that does not exist.
    #[error("revision {id} names down revision {missing}, which does not exist")]
    MissingDown {
        /// The revision's id.
        id: String,
        /// The id or label that names nothing.
        missing: String,
    },
    /// A revision depends on something that is neither a revision nor a label.
    #[error("revision {id} depends on {missing}, which is neither a revision nor a branch label")]
    MissingDependency {
        /// The revision's id.
        id: String,
        /// The id or label that names nothing.
        missing: String,
    },
    /// Two revisions have the same id.
    #[error("revision {id} is defined twice")]
    DuplicateId {
        /// The revision's id.
        id: String,
    },
    /// Two revisions declare the same branch label.
    #[error("branch label {label:?} is declared by both {first} and {second}")]
    DuplicateLabel {
        /// The branch label.
        label: String,
        /// Where it is defined first.
        first: String,
        /// Where it is defined again.
        second: String,
    },
    /// A branch label that is also a revision id.
    #[error("branch label {label:?} of revision {id} is also a revision id")]
    LabelIsId {
        /// The branch label.
        label: String,
        /// The revision's id.
        id: String,
    },
    /// The down revisions form a cycle.
    #[error("the revision graph has a cycle through {}", .ids.join(", "))]
    Cycle {
        /// The revisions on the cycle.
        ids: Vec<String>,
    },
    /// A spec that matches no revision or label.
    #[error("no revision or branch matches {spec:?}; `retort history` lists them")]
    Unknown {
        /// The spec as given.
        spec: String,
    },
    /// A `BRANCH@...` spec whose branch does not exist.
    #[error(
        "no branch labelled {label:?}; `retort branches` and `retort heads --verbose` show them"
    )]
    UnknownBranch {
        /// The branch label.
        label: String,
    },
    /// A prefix that matches several revisions.
    #[error("{spec:?} matches several revisions: {}", .candidates.join(", "))]
    Ambiguous {
        /// The spec as given.
        spec: String,
        /// The revisions it could mean.
        candidates: Vec<String>,
    },
    /// `head` where there are several heads.
    #[error(
        "{what} has several heads ({}): name one, use `heads` for all of them, or `BRANCH@head` \
         (see `retort heads`)",
        .heads.join(", ")
    )]
    MultipleHeads {
        /// What has several heads (the history, or a branch).
        what: String,
        /// The heads.
        heads: Vec<String>,
    },
    /// A relative move (`+N`, `-N`) that goes past the end.
    #[error("cannot move {steps} step(s) {direction} from {from}: {reason}")]
    Relative {
        /// How many steps were asked for.
        steps: usize,
        /// `up` or `down`.
        direction: &'static str,
        /// Where the move starts.
        from: String,
        /// Why it cannot be done.
        reason: String,
    },
    /// The database is at a revision this history does not have.
    #[error("the database is at {current}, which is not a revision in this history")]
    UnknownCurrent {
        /// The database's heads.
        current: String,
    },
    /// A downgrade target that is not applied.
    #[error("{target} is not applied (the database is at {}); use upgrade", at(.current))]
    NotApplied {
        /// The revision asked for.
        target: String,
        /// The database's heads.
        current: Vec<String>,
    },
    /// A revision that is not on the branch a spec names.
    #[error("revision {id} is not on branch {label:?}")]
    NotOnBranch {
        /// The revision's id.
        id: String,
        /// The branch label.
        label: String,
    },
    /// A range whose start is not an ancestor of its end.
    #[error(
        "{start} is not an ancestor of {end}: a range goes from an older revision to a newer one"
    )]
    BadRange {
        /// The range start.
        start: String,
        /// The range end.
        end: String,
    },
    /// `--head` names a revision that is not a head (without `--splice`).
    #[error("{id} is not a head; pass --splice to start a branch from it")]
    NotAHead {
        /// The revision's id.
        id: String,
    },
    /// A `history -r` range that cannot be read (a usage error).
    #[error("{reason}")]
    RangeSyntax {
        /// Why it cannot be done.
        reason: String,
    },
}

fn at(current: &[String]) -> String {
    if current.is_empty() {
        "base".into()
    } else {
        current.join(", ")
    }
}

/// One revision's place in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// The revision's metadata.
    pub meta: Metadata,
    /// Revisions that name this one as a down revision, sorted.
    pub children: Vec<String>,
    /// `depends_on`, labels resolved to revision ids.
    pub dependencies: Vec<String>,
    /// The dependencies no revision below it (by down revisions) declares already:
    /// with the down revisions, what the walk steps to (Alembic's normalized
    /// dependencies).
    normalized: Vec<String>,
}

/// A validated, acyclic revision graph.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    /// Parents and dependencies first: the reverse of the walk from every head (see
    /// [`Graph::walk_order`]).
    order: Vec<String>,
    /// Each revision's place in load order (its file's name among the components').
    rank: HashMap<String, usize>,
    /// Revision ids by load order (the inverse of `rank`).
    loaded: Vec<String>,
    /// What the walk steps down to from each revision, by load order index.
    below: Vec<Vec<usize>>,
    /// Branch label -> the revision that declares it.
    labels: BTreeMap<String, String>,
    /// Revision -> revisions that depend on it.
    dependents: HashMap<String, Vec<String>>,
}

impl Graph {
    /// The graph of these revisions: checked for missing parents, duplicate ids and labels, and cycles.
    pub fn new(metas: impl IntoIterator<Item = Metadata>) -> Result<Self, GraphError> {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut rank = HashMap::new();
        for meta in metas {
            let id = meta.id.clone();
            rank.insert(id.clone(), rank.len());
            let node = Node {
                meta,
                children: Vec::new(),
                dependencies: Vec::new(),
                normalized: Vec::new(),
            };
            if nodes.insert(id.clone(), node).is_some() {
                return Err(GraphError::DuplicateId { id });
            }
        }
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        for node in nodes.values() {
            for label in &node.meta.branch_labels {
                if nodes.contains_key(label) {
                    return Err(GraphError::LabelIsId {
                        label: label.clone(),
                        id: node.meta.id.clone(),
                    });
                }
                if let Some(first) = labels.insert(label.clone(), node.meta.id.clone()) {
                    return Err(GraphError::DuplicateLabel {
                        label: label.clone(),
                        first,
                        second: node.meta.id.clone(),
                    });
                }
            }
        }
        let mut edges = Vec::new();
        let mut resolved_deps = Vec::new();
        for node in nodes.values() {
            for down in &node.meta.down {
                if !nodes.contains_key(down) {
                    return Err(GraphError::MissingDown {
                        id: node.meta.id.clone(),
                        missing: down.clone(),
                    });
                }
                edges.push((down.clone(), node.meta.id.clone()));
            }
            let mut deps = Vec::new();
            for dep in &node.meta.depends_on {
                let target = if nodes.contains_key(dep) {
                    dep.clone()
                } else if let Some(rev) = labels.get(dep) {
                    rev.clone()
                } else {
                    return Err(GraphError::MissingDependency {
                        id: node.meta.id.clone(),
                        missing: dep.clone(),
                    });
                };
                deps.push(target);
            }
            resolved_deps.push((node.meta.id.clone(), deps));
        }
        for (parent, child) in edges {
            nodes
                .get_mut(&parent)
                .expect("checked")
                .children
                .push(child);
        }
        let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
        for (id, deps) in resolved_deps {
            for dep in &deps {
                dependents.entry(dep.clone()).or_default().push(id.clone());
            }
            nodes.get_mut(&id).expect("exists").dependencies = deps;
        }
        for node in nodes.values_mut() {
            node.children.sort();
        }
        // Refuses a cycle, naming it.
        topological(&nodes)?;
        let mut loaded = vec![String::new(); rank.len()];
        for (id, &i) in &rank {
            loaded[i] = id.clone();
        }
        let mut graph = Graph {
            nodes,
            order: Vec::new(),
            rank,
            loaded,
            below: Vec::new(),
            labels,
            dependents,
        };
        graph.normalize_dependencies();
        graph.below = graph
            .loaded
            .iter()
            .map(|id| {
                graph
                    .steps_below(&graph.nodes[id])
                    .map(|b| graph.rank[b])
                    .collect()
            })
            .collect();
        let all: BTreeSet<String> = graph.nodes.keys().cloned().collect();
        // Alembic walks from the heads nothing depends on (its "real" heads).
        let heads: Vec<String> = graph
            .heads_resolving_dependencies()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut order = graph.walk_order(&all, &heads);
        order.reverse();
        graph.order = order;
        Ok(graph)
    }

    /// Sets each revision's normalized dependencies: its dependencies less those a
    /// revision below it (by down revisions) declares.
    fn normalize_dependencies(&mut self) {
        let mut normalized = Vec::new();
        for node in self.nodes.values() {
            if node.dependencies.is_empty() {
                continue;
            }
            let below: BTreeSet<String> = self
                .down_ancestors(&[node.meta.id.as_str()])
                .into_iter()
                .filter(|id| id != &node.meta.id)
                .flat_map(|id| self.nodes[&id].dependencies.clone())
                .collect();
            let mut deps = node.dependencies.clone();
            deps.retain(|d| !below.contains(d));
            deps.dedup();
            normalized.push((node.meta.id.clone(), deps));
        }
        for (id, deps) in normalized {
            self.nodes.get_mut(&id).expect("exists").normalized = deps;
        }
    }

    /// What the walk steps down to from `node`: its down revisions, then its normalized
    /// dependencies.
    pub(crate) fn steps_below<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a str> {
        let mut seen = BTreeSet::new();
        node.meta
            .down
            .iter()
            .chain(&node.normalized)
            .map(String::as_str)
            .filter(move |id| seen.insert(*id))
    }

    /// Revision `i` (by load order) and everything the walk reaches below it, as a
    /// bit set over load order.
    fn walk_ancestors(&self, i: usize) -> Vec<u64> {
        let mut seen = vec![0u64; self.loaded.len().div_ceil(64)];
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            if seen[i / 64] & (1 << (i % 64)) == 0 {
                seen[i / 64] |= 1 << (i % 64);
                stack.extend(&self.below[i]);
            }
        }
        seen
    }

    /// The revisions of `todo` newest first, in the order Alembic walks them (its
    /// `_topological_sort`): from the `heads` in `todo`, taken in load order, one
    /// branch at a time, down each branch as far as no other pending head still needs
    /// the next revision; a merge continues with its down revisions in the order it
    /// lists them. Upgrades run the reverse of this walk; downgrades and `history` run
    /// it as it is.
    pub fn walk_order(&self, todo: &BTreeSet<String>, heads: &[String]) -> Vec<String> {
        let has = |set: &[u64], i: usize| set[i / 64] & (1 << (i % 64)) != 0;
        let mut pending = vec![false; self.loaded.len()];
        for id in todo {
            if let Some(&i) = self.rank.get(id) {
                pending[i] = true;
            }
        }
        let mut current: Vec<usize> = heads
            .iter()
            .filter_map(|h| self.rank.get(h).copied())
            .filter(|&i| pending[i])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ancestors: Vec<Vec<u64>> =
            current.iter().map(|&h| self.walk_ancestors(h)).collect();
        let mut output = Vec::with_capacity(todo.len());
        let mut at = 0;
        while !current.is_empty() {
            let candidate = current[at];
            // Another pending head needs this revision: walk that head first.
            if let Some(other) = ancestors
                .iter()
                .enumerate()
                .position(|(j, a)| j != at && has(a, candidate))
            {
                at = other;
                continue;
            }
            if std::mem::take(&mut pending[candidate]) {
                output.push(self.loaded[candidate].clone());
            }
            let node = &self.nodes[&self.loaded[candidate]];
            let below: Vec<usize> = self.below[candidate]
                .iter()
                .copied()
                .filter(|&r| pending[r] && !current.contains(&r))
                .collect();
            match below.split_first() {
                None => {
                    current.remove(at);
                    ancestors.remove(at);
                    at = at.saturating_sub(1);
                }
                Some((&first, _)) if node.normalized.is_empty() && node.meta.down.len() == 1 => {
                    current[at] = first;
                    ancestors[at][candidate / 64] &= !(1 << (candidate % 64));
                }
                Some((&first, rest)) => {
                    current[at] = first;
                    ancestors[at] = self.walk_ancestors(first);
                    for &r in rest {
                        current.push(r);
                        ancestors.push(self.walk_ancestors(r));
                    }
                }
            }
        }
        // (Everything in `todo` lies below one of the heads; anything left over is
        // listed in load order rather than lost.)
        output.extend(
            (0..self.loaded.len())
                .filter(|&i| pending[i])
                .map(|i| self.loaded[i].clone()),
        );
        output
    }

    /// How many revisions.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for an empty history.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The revision with exactly this id.
    pub fn get(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    fn node(&self, id: &str) -> &Node {
        &self.nodes[id]
    }

    /// Revisions in topological order, parents first.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = &Node> {
        self.order.iter().map(|id| &self.nodes[id])
    }

    /// Revisions no other revision follows, in load order (as Alembic lists them).
    pub fn heads(&self) -> Vec<&str> {
        let mut heads: Vec<&str> = self
            .nodes
            .values()
            .filter(|n| n.children.is_empty())
            .map(|n| n.meta.id.as_str())
            .collect();
        heads.sort_by_key(|id| self.rank[*id]);
        heads
    }

    /// Heads that no other revision depends on (`heads --resolve-dependencies`).
    pub fn heads_resolving_dependencies(&self) -> Vec<&str> {
        self.heads()
            .into_iter()
            .filter(|h| !self.dependents.contains_key(*h))
            .collect()
    }

    /// Revisions that follow none, in load order.
    pub fn bases(&self) -> Vec<&str> {
        let mut bases: Vec<&str> = self
            .nodes
            .values()
            .filter(|n| n.meta.down.is_empty())
            .map(|n| n.meta.id.as_str())
            .collect();
        bases.sort_by_key(|id| self.rank[*id]);
        bases
    }

    /// Revisions with more than one child, and those children.
    pub fn branch_points(&self) -> Vec<(&str, &[String])> {
        self.nodes
            .values()
            .filter(|n| n.children.len() > 1)
            .map(|n| (n.meta.id.as_str(), n.children.as_slice()))
            .collect()
    }

    /// The revision that declares a branch label.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels.get(label).map(String::as_str)
    }

    /// Every label that applies to a revision (declared on it or inherited).
    pub fn labels_of(&self, id: &str) -> Vec<&str> {
        self.labels
            .keys()
            .filter(|l| self.branch_members(l).contains(id))
            .map(String::as_str)
            .collect()
    }

    /// A full id, a unique prefix of one, or a branch label (its declaring revision).
    pub fn lookup(&self, spec: &str) -> Result<&str, GraphError> {
        if let Some((id, _)) = self.nodes.get_key_value(spec) {
            return Ok(id);
        }
        if let Some(id) = self.labels.get(spec) {
            return Ok(id);
        }
        let candidates: Vec<&String> = self
            .nodes
            .range(spec.to_owned()..)
            .take_while(|(id, _)| id.starts_with(spec))
            .map(|(id, _)| id)
            .collect();
        match candidates.as_slice() {
            [] => Err(GraphError::Unknown { spec: spec.into() }),
            [one] => Ok(one),
            many => Err(GraphError::Ambiguous {
                spec: spec.into(),
                candidates: many.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    /// `ids` and everything they need: down revisions and dependencies, transitively.
    pub fn ancestors<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        self.walk(ids, |n| n.meta.down.iter().chain(&n.dependencies))
    }

    /// `ids` and their down revisions, transitively (dependencies not followed).
    pub fn down_ancestors<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        self.walk(ids, |n| n.meta.down.iter())
    }

    /// `ids` and every revision that follows or depends on them, transitively.
    pub fn descendants<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        let none = Vec::new();
        self.walk(ids, |n| {
            n.children
                .iter()
                .chain(self.dependents.get(&n.meta.id).unwrap_or(&none))
        })
    }

    fn walk<'a, S: AsRef<str>, I: Iterator<Item = &'a String>>(
        &'a self,
        ids: &'a [S],
        next: impl Fn(&'a Node) -> I,
    ) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = ids.iter().map(|s| s.as_ref()).collect();
        while let Some(id) = stack.pop() {
            if let Some(node) = self.nodes.get(id)
                && seen.insert(id.to_owned())
            {
                stack.extend(next(node).map(String::as_str));
            }
        }
        seen
    }

    /// The revisions a branch label covers (see the module docs).
    pub fn branch_members(&self, label: &str) -> BTreeSet<String> {
        let Some(root) = self.labels.get(label) else {
            return BTreeSet::new();
        };
        let mut members = self.walk(&[root], |n| n.children.iter());
        let mut at = root.as_str();
        loop {
            let node = self.node(at);
            let [parent] = node.meta.down.as_slice() else {
                break;
            };
            if self.node(parent).children.len() > 1 {
                break;
            }
            members.insert(parent.clone());
            at = parent;
        }
        members
    }

    /// Checks that every id the database records is a revision here.
    pub fn check_current(&self, current: &[String]) -> Result<(), GraphError> {
        match current.iter().find(|c| !self.nodes.contains_key(*c)) {
            Some(c) => Err(GraphError::UnknownCurrent { current: c.clone() }),
            None => Ok(()),
        }
    }

    /// The revisions from `start` to `end` inclusive (`None`: base / the heads), newest
    /// first, for `history -r START:END`.
    /// What `history -r START:END` lists, newest first (every revision without a
    /// range). `current` is the database's heads, for `current` on either side.
    pub fn history_range(
        &self,
        range: Option<&str>,
        current: &[String],
    ) -> Result<Vec<&Node>, GraphError> {
        let Some(range) = range else {
            return Ok(self.ordered().rev().collect());
        };
        let syntax = |reason: &str| GraphError::RangeSyntax {
            reason: reason.to_owned(),
        };
        let (start, end) = range
            .split_once(':')
            .ok_or_else(|| syntax("a range is START:END, e.g. base:head or ae10:"))?;
        let start = match start {
            "" | "base" => None,
            "current" => match current {
                [one] => Some(one.as_str()),
                [] => None,
                _ => return Err(syntax("the database has several heads; name one as START")),
            },
            s => Some(self.lookup(s)?),
        };
        let end = match end {
            "" | "heads" => None,
            "current" => Some(current.to_vec()),
            e => Some(self.upgrade_target(e, &[])?),
        };
        self.range(start, end.as_deref())
    }

    /// The revisions from `start` (included; `None`: base) up to `end` (`None`: the
    /// heads), newest first; refused when `start` is not below `end`.
    pub fn range(
        &self,
        start: Option<&str>,
        end: Option<&[String]>,
    ) -> Result<Vec<&Node>, GraphError> {
        let upper = match end {
            Some(ends) => self.down_ancestors(ends),
            None => self.nodes.keys().cloned().collect(),
        };
        let lower = match start {
            Some(s) => {
                let below = self.walk(&[s], |n| n.children.iter());
                if let Some(ends) = end
                    && !ends.iter().any(|e| below.contains(e))
                {
                    return Err(GraphError::BadRange {
                        start: s.to_owned(),
                        end: ends.join(", "),
                    });
                }
                below
            }
            None => self.nodes.keys().cloned().collect(),
        };
        Ok(self
            .ordered()
            .rev()
            .filter(|n| upper.contains(&n.meta.id) && lower.contains(&n.meta.id))
            .collect())
    }
}

/// Kahn's algorithm with the smallest ready id first; leftover nodes form a cycle.
fn topological(nodes: &BTreeMap<String, Node>) -> Result<Vec<String>, GraphError> {
    let mut indegree: HashMap<&str, usize> = nodes
        .iter()
        .map(|(id, n)| (id.as_str(), n.meta.down.len() + n.dependencies.len()))
        .collect();
    let mut followers: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in nodes.values() {
        for parent in node.meta.down.iter().chain(&node.dependencies) {
            followers
                .entry(parent.as_str())
                .or_default()
                .push(node.meta.id.as_str());
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|&(_, &d)| d == 0)
        .map(|(&id, _)| id)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(id) = ready.pop_first() {
        order.push(id.to_owned());
        for &follower in followers.get(id).into_iter().flatten() {
            let d = indegree.get_mut(follower).expect("follower exists");
            *d -= 1;
            if *d == 0 {
                ready.insert(follower);
            }
        }
    }
    if order.len() < nodes.len() {
        let mut ids: Vec<String> = indegree
            .into_iter()
            .filter(|&(_, d)| d > 0)
            .map(|(id, _)| id.to_owned())
            .collect();
        ids.sort();
        return Err(GraphError::Cycle { ids });
    }
    Ok(order)
}
