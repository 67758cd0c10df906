//! The revision graph: pure code over metadata, no wasm and no database.
//!
//! Edges: a revision follows its `down` revisions (parents); `depends_on` adds an
//! ordering edge that does not make the dependency a parent. Order: Alembic's walk
//! ([`Graph::walk_order`], docs/graph.md), one branch at a time, ties broken by load
//! order (component file names), checked against real Alembic by tests/alembic/.
//!
//! Branch labels: a label names the revision that declares it and every revision that
//! descends from it and, when the line above it runs straight to one tip, its ancestors
//! down to (not including) the nearest branch point or merge — Alembic's rule
//! ([`Graph::labels_of`]). A `depends_on` entry may name a label: it resolves to the
//! revision that declares the label. Revision arguments are read as Alembic reads them
//! (`spec.rs`, docs/graph.md).

mod plan;
mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

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
    #[error("Branch name '{label}' in revision {second} already used by revision {first}")]
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
    /// The down revisions (or, with `dependency`, the down revisions and
    /// dependencies together) form a cycle.
    #[error(
        "{} is detected in revisions ({}): a revision cannot come after itself",
        match (.dependency, .ids.len()) {
            (false, 1) => "Self-loop",
            (false, _) => "Cycle",
            (true, 1) => "Dependency self-loop",
            (true, _) => "Dependency cycle",
        },
        .ids.join(", ")
    )]
    Cycle {
        /// The revisions on the cycle (only those: not what follows it).
        ids: Vec<String>,
        /// The cycle needs a `depends_on` edge.
        dependency: bool,
    },
    /// A spec that matches no revision or label.
    #[error(
        "Can't locate revision identified by '{spec}'{}{}",
        if .spec.len() < 4 { " (a partial id needs at least four characters)" } else { "" },
        did_you_mean(.suggestions, "; `retort history` lists the revisions")
    )]
    Unknown {
        /// The spec as given.
        spec: String,
        /// The closest revision ids and branch labels (edit distance), best first.
        suggestions: Vec<String>,
    },
    /// A `BRANCH@...` spec whose branch does not exist.
    #[error(
        "Can't locate revision identified by '{label}': no such branch{}",
        did_you_mean(.suggestions, "; `retort branches` and `retort heads --verbose` show them")
    )]
    UnknownBranch {
        /// The branch label.
        label: String,
        /// The closest branch labels and revision ids, best first.
        suggestions: Vec<String>,
    },
    /// A prefix that matches several revisions.
    #[error(
        "Multiple revisions start with '{spec}': {}; give more of the id",
        .candidates.join(", ")
    )]
    Ambiguous {
        /// The spec as given.
        spec: String,
        /// The revisions it could mean, each as `id (message)`.
        candidates: Vec<String>,
    },
    /// `head` where there are several heads.
    #[error(
        "Multiple head revisions are present for given argument '{what}' ({}): name one, use \
         `heads` for all of them, or `BRANCH@head` (see `retort heads`)",
        .heads.join(", ")
    )]
    MultipleHeads {
        /// The argument (`head`, `BRANCH@head`, ...).
        what: String,
        /// The heads.
        heads: Vec<String>,
    },
    /// A relative move (`+N`, `-N`) that goes past the end.
    #[error(
        "Relative revision {relative} didn't produce {steps} migrations: the history (or the \
         database) does not reach that far"
    )]
    Relative {
        /// The count as written (`-2`, `+1`).
        relative: String,
        /// How many steps were asked for.
        steps: u64,
    },
    /// A relative move from a named revision that goes past the end.
    #[error("Walked too far: {spec} goes past the end of the history")]
    WalkedTooFar {
        /// The spec as given.
        spec: String,
    },
    /// A relative move through a branch point or merge.
    #[error(
        "Ambiguous walk: from {from} the history goes on to {}; name a revision or a branch",
        .to.join(", ")
    )]
    AmbiguousWalk {
        /// Where the walk was.
        from: String,
        /// Where it could go.
        to: Vec<String>,
    },
    /// `+N` from several heads.
    #[error(
        "Ambiguous upgrade from multiple current revisions: {spec} from {current}; use \
         BRANCH@+N or name a revision"
    )]
    AmbiguousUpgrade {
        /// The spec as given.
        spec: String,
        /// The database's heads.
        current: String,
    },
    /// `-N` from several heads: Alembic warns and counts from the first; Retort refuses.
    #[error(
        "downgrade {spec} from multiple heads ({}) is ambiguous: use BRANCH@{spec} or name the \
         revision to go down to",
        .heads.join(", ")
    )]
    AmbiguousDowngrade {
        /// The spec as given.
        spec: String,
        /// The database's heads.
        heads: Vec<String>,
    },
    /// `BRANCH@-N` (or a revision standing for its branch) where the branch's place
    /// in the database is not one revision.
    #[error(
        "cannot tell where branch '{label}' stands: the database holds {} on it",
        if .found.is_empty() { "nothing".to_owned() } else { .found.join(", ") }
    )]
    BranchPosition {
        /// The branch label (or revision).
        label: String,
        /// What was found.
        found: Vec<String>,
    },
    /// A spec that resolves to base or past the end where a revision is needed.
    #[error("{spec} does not name a revision here (it walks to base or past the end)")]
    NotARevision {
        /// The spec as given.
        spec: String,
    },
    /// Targets where one is below another.
    #[error("Requested revision {id} overlaps with other requested revisions {}", .others.join(", "))]
    Overlap {
        /// The revision.
        id: String,
        /// The targets it reaches.
        others: Vec<String>,
    },
    /// The database is at a revision this history does not have.
    #[error("the database is at {current}, which is not a revision in this history")]
    UnknownCurrent {
        /// The database's heads.
        current: String,
    },
    /// A downgrade target with nothing applied above it.
    #[error(
        "Destination {target} is not a valid downgrade target from current head(s) ({current}): \
         nothing applied follows it"
    )]
    NotDowngradeTarget {
        /// The spec as given.
        target: String,
        /// The database's heads.
        current: String,
    },
    /// A revision that is not on the branch a spec names.
    #[error("Revision {id} is not a member of branch '{label}'")]
    NotOnBranch {
        /// The revision's id.
        id: String,
        /// The branch label.
        label: String,
    },
    /// A range whose start is not an ancestor of its end.
    #[error(
        "Requested range {start}:{end} does not refer to ancestor/descendant revisions along \
         the same branch"
    )]
    BadRange {
        /// The range start.
        start: String,
        /// The range end.
        end: String,
    },
    /// A stamp Alembic's version-table bookkeeping cannot make.
    #[error("cannot stamp {specs}: {reason}")]
    Stamp {
        /// The specs as given.
        specs: String,
        /// Why.
        reason: String,
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

/// `; did you mean 'a' or 'b'?`, or `otherwise` when there is nothing close.
fn did_you_mean(suggestions: &[String], otherwise: &str) -> String {
    match suggestions {
        [] => otherwise.to_owned(),
        [one] => format!("; did you mean '{one}'?"),
        [init @ .., last] => format!(
            "; did you mean {} or '{last}'?",
            init.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The names among `names` closest to `typed` by edit distance (transpositions count
/// once), best first, at most three: a name within one edit per four characters typed
/// (at least one), compared whole or, for a prefix, with as many of its characters.
pub(crate) fn closest<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (typed.chars().count() / 4).max(1);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter(|name| *name != typed)
        .filter_map(|name| {
            let whole = strsim::damerau_levenshtein(typed, name);
            let head: String = name.chars().take(typed.chars().count()).collect();
            let prefix = if head.len() < name.len() {
                strsim::damerau_levenshtein(typed, &head)
            } else {
                whole
            };
            let score = whole.min(prefix);
            (score <= limit).then_some((score, name))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_owned())
        .collect()
}

/// One revision's place in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// The revision's metadata (one copy, shared with the loaded revision).
    pub meta: Arc<Metadata>,
    /// Revisions that name this one as a down revision, sorted.
    pub children: Vec<String>,
    /// `depends_on`, labels resolved to revision ids.
    pub dependencies: Vec<String>,
    /// The dependencies no revision below it (by down revisions) declares already:
    /// with the down revisions, what the walk steps to (Alembic's normalized
    /// dependencies).
    normalized: Vec<String>,
    /// Its branch labels, declared or inherited (Alembic's `branch_labels`).
    labels: BTreeSet<String>,
}

/// A validated, acyclic revision graph.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
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
    pub fn new<M: Into<Arc<Metadata>>>(
        metas: impl IntoIterator<Item = M>,
    ) -> Result<Self, GraphError> {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut rank = HashMap::new();
        for meta in metas {
            let meta: Arc<Metadata> = meta.into();
            let id = meta.id.clone();
            rank.insert(id.clone(), rank.len());
            let node = Node {
                meta,
                children: Vec::new(),
                dependencies: Vec::new(),
                normalized: Vec::new(),
                labels: BTreeSet::new(),
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
        check_acyclic(&nodes)?;
        let mut loaded = vec![String::new(); rank.len()];
        for (id, &i) in &rank {
            loaded[i] = id.clone();
        }
        let mut graph = Graph {
            nodes,
            rank,
            loaded,
            below: Vec::new(),
            labels,
            dependents,
        };
        graph.normalize_dependencies();
        graph.spread_labels();
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

    /// Gives each revision the branch labels that cover it, by Alembic's rule (its
    /// `_add_branches`): a label covers the revision that declares it and everything
    /// above it; and when the line above it runs straight to one tip, it also covers
    /// the revisions below it down to (not including) the nearest branch point —
    /// counting dependents — or merge.
    fn spread_labels(&mut self) {
        let mut spread: Vec<(String, Vec<String>)> = Vec::new();
        for (id, node) in &self.nodes {
            if node.meta.branch_labels.is_empty() {
                continue;
            }
            let mut covered: Vec<String> =
                self.down_descendants(&[id.as_str()]).into_iter().collect();
            // Alembic walks down from the last revision its search above found; that
            // walk passes the labelled revision only when the line above is straight.
            let mut tip = id.as_str();
            let straight = loop {
                match self.nodes[tip].children.as_slice() {
                    [] => break true,
                    [one] if self.nodes[one].meta.down.len() == 1 => tip = one,
                    _ => break false,
                }
            };
            if straight {
                let mut at = tip;
                loop {
                    let node = &self.nodes[at];
                    let mut next: BTreeSet<&String> = node.children.iter().collect();
                    next.extend(self.dependents.get(at).into_iter().flatten());
                    if next.len() > 1 || node.meta.down.len() > 1 {
                        break;
                    }
                    covered.push(at.to_owned());
                    match node.meta.down.first() {
                        Some(down) => at = down,
                        None => break,
                    }
                }
            }
            spread.push((id.clone(), covered));
        }
        for (id, covered) in spread {
            let labels = self.nodes[&id].meta.branch_labels.clone();
            for c in covered {
                self.nodes
                    .get_mut(&c)
                    .expect("exists")
                    .labels
                    .extend(labels.iter().cloned());
            }
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

    /// Every branch label and the revision that declares it, by label.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(l, id)| (l.as_str(), id.as_str()))
    }

    /// The revision that declares a branch label.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels.get(label).map(String::as_str)
    }

    /// Every label that applies to a revision (declared on it or inherited).
    pub fn labels_of(&self, id: &str) -> Vec<&str> {
        self.nodes
            .get(id)
            .map(|n| n.labels.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// A full id, a branch label (its declaring revision) or a unique prefix of at
    /// least four characters, as Alembic resolves one revision.
    pub fn lookup(&self, spec: &str) -> Result<&str, GraphError> {
        let id = self
            .revision_for_ident(Some(spec), None)?
            .ok_or_else(|| GraphError::Unknown {
                spec: spec.into(),
                suggestions: self.suggest(spec),
            })?;
        Ok(self.nodes.get_key_value(&id).expect("resolved").0)
    }

    /// `ids` and everything they need: down revisions and dependencies, transitively.
    pub fn ancestors<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        self.walk(ids, |n| n.meta.down.iter().chain(&n.dependencies))
    }

    /// `ids` and their down revisions, transitively (dependencies not followed).
    pub fn down_ancestors<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        self.walk(ids, |n| n.meta.down.iter())
    }

    /// `ids` and the revisions that follow them, transitively (dependents not followed).
    pub fn down_descendants<S: AsRef<str>>(&self, ids: &[S]) -> BTreeSet<String> {
        self.walk(ids, |n| n.children.iter())
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
        self.nodes
            .values()
            .filter(|n| n.labels.contains(label))
            .map(|n| n.meta.id.clone())
            .collect()
    }

    /// Checks that every id the database records is a revision here.
    pub fn check_current(&self, current: &[String]) -> Result<(), GraphError> {
        match current.iter().find(|c| !self.nodes.contains_key(*c)) {
            Some(c) => Err(GraphError::UnknownCurrent { current: c.clone() }),
            None => Ok(()),
        }
    }
}

/// Refuses a cycle, naming the revisions on it in Alembic's words.
fn check_acyclic(nodes: &BTreeMap<String, Node>) -> Result<(), GraphError> {
    let all = |n: &Node| n.meta.down.iter().chain(&n.dependencies).cloned().collect();
    let leftover = kahn(nodes, all);
    if leftover.is_empty() {
        return Ok(());
    }
    // As Alembic: a cycle of down revisions alone first, else one through dependencies.
    let downs = |n: &Node| n.meta.down.clone();
    let down_cycle = kahn(nodes, downs);
    let (ids, dependency) = if down_cycle.is_empty() {
        (on_cycle(nodes, &leftover, &all), true)
    } else {
        (on_cycle(nodes, &down_cycle, &downs), false)
    };
    Err(GraphError::Cycle { ids, dependency })
}

/// The ids Kahn's algorithm cannot order (empty when there is no cycle), by `edges`
/// (what each node comes after).
fn kahn(nodes: &BTreeMap<String, Node>, edges: impl Fn(&Node) -> Vec<String>) -> BTreeSet<String> {
    let mut indegree: HashMap<&str, usize> = HashMap::new();
    let mut followers: HashMap<String, Vec<&str>> = HashMap::new();
    for (id, node) in nodes {
        let parents = edges(node);
        indegree.insert(id, parents.len());
        for parent in parents {
            followers.entry(parent).or_default().push(id);
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|&(_, &d)| d == 0)
        .map(|(&id, _)| id)
        .collect();
    while let Some(id) = ready.pop() {
        for &follower in followers.get(id).into_iter().flatten() {
            let d = indegree.get_mut(follower).expect("follower exists");
            *d -= 1;
            if *d == 0 {
                ready.push(follower);
            }
        }
    }
    indegree
        .into_iter()
        .filter(|&(_, d)| d > 0)
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// The ids among `leftover` that lie on a cycle (reach themselves by `edges`), sorted;
/// the rest only follow one.
fn on_cycle(
    nodes: &BTreeMap<String, Node>,
    leftover: &BTreeSet<String>,
    edges: &dyn Fn(&Node) -> Vec<String>,
) -> Vec<String> {
    leftover
        .iter()
        .filter(|start| {
            let mut seen = BTreeSet::new();
            let mut todo = edges(&nodes[*start]);
            while let Some(id) = todo.pop() {
                if &id == *start {
                    return true;
                }
                if leftover.contains(&id) && seen.insert(id.clone()) {
                    todo.extend(edges(&nodes[&id]));
                }
            }
            false
        })
        .cloned()
        .collect()
}
