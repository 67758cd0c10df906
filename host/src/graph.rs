//! The revision graph: pure code over metadata, no wasm and no database.
//!
//! Order: parents before children; among revisions that are ready at the same time, the
//! smaller id goes first (a documented, deterministic tie-break).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::revision::Metadata;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("revision {id} names down revision {missing}, which does not exist")]
    MissingDown { id: String, missing: String },
    #[error("revision {id} depends on {missing}, which does not exist")]
    MissingDependency { id: String, missing: String },
    #[error("the revision graph has a cycle through {}", .ids.join(" -> "))]
    Cycle { ids: Vec<String> },
    #[error("no revision matches {spec:?}; `retort history` lists them")]
    Unknown { spec: String },
    #[error("{spec:?} matches several revisions: {}", .candidates.join(", "))]
    Ambiguous {
        spec: String,
        candidates: Vec<String>,
    },
    #[error("there are several heads ({}); name one, or use `heads` to apply them all", .heads.join(", "))]
    MultipleHeads { heads: Vec<String> },
    #[error("cannot move {steps} step(s) {direction} from {from}: {reason}")]
    Relative {
        steps: usize,
        direction: &'static str,
        from: String,
        reason: String,
    },
    #[error("the database is at {current}, which is not a revision in this history")]
    UnknownCurrent { current: String },
    #[error("{target} is not applied (the database is at {}); use upgrade", if .current.is_empty() { "base".to_string() } else { .current.join(", ") })]
    NotApplied {
        target: String,
        current: Vec<String>,
    },
}

/// One revision's place in the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub meta: Metadata,
    pub children: Vec<String>,
}

/// A validated, acyclic revision graph.
#[derive(Debug, Clone)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    /// Topological order (parents first, ties by id).
    order: Vec<String>,
}

impl Graph {
    pub fn new(metas: impl IntoIterator<Item = Metadata>) -> Result<Self, GraphError> {
        let mut nodes: BTreeMap<String, Node> = metas
            .into_iter()
            .map(|meta| {
                (
                    meta.id.clone(),
                    Node {
                        meta,
                        children: Vec::new(),
                    },
                )
            })
            .collect();
        let mut edges = Vec::new();
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
            for dep in &node.meta.depends_on {
                if !nodes.contains_key(dep) {
                    return Err(GraphError::MissingDependency {
                        id: node.meta.id.clone(),
                        missing: dep.clone(),
                    });
                }
            }
        }
        for (parent, child) in edges {
            nodes
                .get_mut(&parent)
                .expect("checked")
                .children
                .push(child);
        }
        let order = topological(&nodes)?;
        Ok(Graph { nodes, order })
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Revisions in topological order, parents first.
    pub fn ordered(&self) -> impl DoubleEndedIterator<Item = &Node> {
        self.order.iter().map(|id| &self.nodes[id])
    }

    /// Revisions no other revision follows, sorted by id.
    pub fn heads(&self) -> Vec<&str> {
        self.nodes
            .values()
            .filter(|n| n.children.is_empty())
            .map(|n| n.meta.id.as_str())
            .collect()
    }

    /// Revisions that follow none, sorted by id.
    pub fn bases(&self) -> Vec<&str> {
        self.nodes
            .values()
            .filter(|n| n.meta.down.is_empty())
            .map(|n| n.meta.id.as_str())
            .collect()
    }

    /// A full id or a unique prefix of one.
    pub fn lookup(&self, spec: &str) -> Result<&str, GraphError> {
        if let Some((id, _)) = self.nodes.get_key_value(spec) {
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

    /// `id` and everything it needs: down revisions and dependencies, transitively.
    pub fn ancestors(&self, ids: &[&str]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = ids.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id.to_owned())
                && let Some(node) = self.nodes.get(id)
            {
                stack.extend(node.meta.down.iter().map(String::as_str));
                stack.extend(node.meta.depends_on.iter().map(String::as_str));
            }
        }
        seen
    }

    /// The single head, or an error naming all of them.
    fn single_head(&self) -> Result<String, GraphError> {
        match self.heads().as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(GraphError::Unknown {
                spec: "head".into(),
            }),
            many => Err(GraphError::MultipleHeads {
                heads: many.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    /// Checks that every id the database records is a revision here.
    pub fn check_current(&self, current: &[String]) -> Result<(), GraphError> {
        match current.iter().find(|c| !self.nodes.contains_key(*c)) {
            Some(c) => Err(GraphError::UnknownCurrent { current: c.clone() }),
            None => Ok(()),
        }
    }

    /// Resolves an upgrade target to the set of heads the database should have after it.
    /// Accepts `head`, `heads`, a full or partial id, and `+N`.
    pub fn upgrade_target(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        self.check_current(current)?;
        match spec {
            "heads" => Ok(self.heads().into_iter().map(str::to_owned).collect()),
            "head" => Ok(vec![self.single_head()?]),
            _ => {
                if let Some(n) = spec.strip_prefix('+').and_then(|n| n.parse::<usize>().ok()) {
                    return self.relative(current, n, true).map(|id| vec![id]);
                }
                Ok(vec![self.lookup(spec)?.to_owned()])
            }
        }
    }

    /// Resolves a downgrade target to the heads the database keeps (empty for `base`).
    /// Accepts `base`, a full or partial id, and `-N`.
    pub fn downgrade_target(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        self.check_current(current)?;
        if spec == "base" {
            return Ok(Vec::new());
        }
        if let Some(n) = spec.strip_prefix('-').and_then(|n| n.parse::<usize>().ok()) {
            return self
                .relative(current, n, false)
                .map(|id| if id.is_empty() { Vec::new() } else { vec![id] });
        }
        Ok(vec![self.lookup(spec)?.to_owned()])
    }

    /// Walks `n` steps along a linear history from the single current revision.
    /// Downward past the base yields `""` only when landing exactly on base.
    fn relative(&self, current: &[String], n: usize, up: bool) -> Result<String, GraphError> {
        let direction = if up { "up" } else { "down" };
        let err = |from: &str, reason: String| GraphError::Relative {
            steps: n,
            direction,
            from: from.to_owned(),
            reason,
        };
        let mut at: Option<String> = match current {
            [] => None,
            [one] => Some(one.clone()),
            many => {
                return Err(err(
                    &many.join(", "),
                    "the database has several heads; name a revision".into(),
                ));
            }
        };
        let from = at.clone().unwrap_or_else(|| "base".into());
        for step in 0..n {
            let next: Vec<&str> = match (&at, up) {
                (None, true) => self.bases(),
                (None, false) => {
                    return Err(err(&from, format!("only {step} step(s) down to base")));
                }
                (Some(id), true) => self.nodes[id].children.iter().map(String::as_str).collect(),
                (Some(id), false) => self.nodes[id]
                    .meta
                    .down
                    .iter()
                    .map(String::as_str)
                    .collect(),
            };
            at = match next.as_slice() {
                [] if up => {
                    return Err(err(&from, format!("only {step} step(s) up to head")));
                }
                [] => None,
                [one] => Some(one.to_string()),
                many => {
                    return Err(err(
                        &from,
                        format!(
                            "the history branches at {}; name a revision",
                            many.join(", ")
                        ),
                    ));
                }
            };
        }
        Ok(at.unwrap_or_default())
    }
}

/// Kahn's algorithm with the smallest ready id first; leftover nodes form a cycle.
fn topological(nodes: &BTreeMap<String, Node>) -> Result<Vec<String>, GraphError> {
    let mut indegree: HashMap<&str, usize> = nodes
        .iter()
        .map(|(id, n)| (id.as_str(), n.meta.down.len()))
        .collect();
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|&(_, &d)| d == 0)
        .map(|(&id, _)| id)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(id) = ready.pop_first() {
        order.push(id.to_owned());
        for child in &nodes[id].children {
            let d = indegree.get_mut(child.as_str()).expect("child exists");
            *d -= 1;
            if *d == 0 {
                ready.insert(child);
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

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Up => "upgrade",
            Direction::Down => "downgrade",
        })
    }
}

/// One revision to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub revision: String,
    pub direction: Direction,
}

/// The steps from the database's `current` heads to `target` heads, upward: every
/// revision the targets need that is not applied yet, parents first.
pub fn plan_upgrade(graph: &Graph, current: &[String], target: &[String]) -> Vec<Step> {
    let applied = graph.ancestors(&current.iter().map(String::as_str).collect::<Vec<_>>());
    let wanted = graph.ancestors(&target.iter().map(String::as_str).collect::<Vec<_>>());
    graph
        .ordered()
        .filter(|n| wanted.contains(&n.meta.id) && !applied.contains(&n.meta.id))
        .map(|n| Step {
            revision: n.meta.id.clone(),
            direction: Direction::Up,
        })
        .collect()
}

/// The steps downward: every applied revision the kept heads do not need, children first.
pub fn plan_downgrade(graph: &Graph, current: &[String], keep: &[String]) -> Vec<Step> {
    let applied = graph.ancestors(&current.iter().map(String::as_str).collect::<Vec<_>>());
    let kept = graph.ancestors(&keep.iter().map(String::as_str).collect::<Vec<_>>());
    graph
        .ordered()
        .rev()
        .filter(|n| applied.contains(&n.meta.id) && !kept.contains(&n.meta.id))
        .map(|n| Step {
            revision: n.meta.id.clone(),
            direction: Direction::Down,
        })
        .collect()
}

/// The version table's heads after a step, following Alembic: an upgrade replaces the
/// down revisions it follows (or adds a new head), a downgrade puts back the down
/// revisions that no remaining head already includes.
pub fn heads_after(graph: &Graph, heads: &[String], step: &Step) -> Vec<String> {
    let node = &graph.nodes[&step.revision];
    let mut next: Vec<String> = heads.to_vec();
    match step.direction {
        Direction::Up => {
            next.retain(|h| !node.meta.down.contains(h));
            // A dependency or ancestor that was a head is now covered by this revision.
            let covered = graph.ancestors(&[step.revision.as_str()]);
            next.retain(|h| !covered.contains(h));
            next.push(step.revision.clone());
        }
        Direction::Down => {
            next.retain(|h| h != &step.revision);
            for down in &node.meta.down {
                let covered = graph.ancestors(&next.iter().map(String::as_str).collect::<Vec<_>>());
                if !covered.contains(down) {
                    next.push(down.clone());
                }
            }
        }
    }
    next.sort();
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, down: &[&str]) -> Metadata {
        let mut m = Metadata::new(id, id);
        m.down = down.iter().map(|s| s.to_string()).collect();
        m
    }

    fn linear() -> Graph {
        Graph::new([meta("a1", &[]), meta("b2", &["a1"]), meta("c3", &["b2"])]).unwrap()
    }

    fn ids(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.revision.as_str()).collect()
    }

    #[test]
    fn linear_plans() {
        let g = linear();
        let target = g.upgrade_target("head", &[]).unwrap();
        assert_eq!(ids(&plan_upgrade(&g, &[], &target)), ["a1", "b2", "c3"]);
        let cur = vec!["a1".to_string()];
        let t = g.upgrade_target("+1", &cur).unwrap();
        assert_eq!(t, ["b2"]);
        assert_eq!(ids(&plan_upgrade(&g, &cur, &t)), ["b2"]);
        let cur = vec!["c3".to_string()];
        let keep = g.downgrade_target("-2", &cur).unwrap();
        assert_eq!(keep, ["a1"]);
        assert_eq!(ids(&plan_downgrade(&g, &cur, &keep)), ["c3", "b2"]);
        assert_eq!(ids(&plan_downgrade(&g, &cur, &[])), ["c3", "b2", "a1"]);
        assert_eq!(
            g.downgrade_target("-3", &cur).unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            g.downgrade_target("-4", &cur),
            Err(GraphError::Relative { .. })
        ));
    }

    #[test]
    fn errors_name_revisions() {
        assert_eq!(
            Graph::new([meta("a", &["zz"])]).unwrap_err(),
            GraphError::MissingDown {
                id: "a".into(),
                missing: "zz".into()
            }
        );
        assert!(matches!(
            Graph::new([meta("a", &["b"]), meta("b", &["a"])]),
            Err(GraphError::Cycle { ids }) if ids == ["a", "b"]
        ));
        let g = Graph::new([meta("ab1", &[]), meta("ab2", &["ab1"])]).unwrap();
        assert!(
            matches!(g.lookup("ab"), Err(GraphError::Ambiguous { candidates, .. }) if candidates == ["ab1", "ab2"])
        );
        assert_eq!(g.lookup("ab2").unwrap(), "ab2");
        assert!(matches!(g.lookup("x"), Err(GraphError::Unknown { .. })));
        let forked = Graph::new([meta("a", &[]), meta("b", &["a"]), meta("c", &["a"])]).unwrap();
        assert!(matches!(
            forked.upgrade_target("head", &[]),
            Err(GraphError::MultipleHeads { heads }) if heads == ["b", "c"]
        ));
    }

    #[test]
    fn ledger_heads_follow_alembic() {
        let g = Graph::new([
            meta("a", &[]),
            meta("b", &["a"]),
            meta("c", &["a"]),
            meta("m", &["b", "c"]),
        ])
        .unwrap();
        let up = |r: &str| Step {
            revision: r.into(),
            direction: Direction::Up,
        };
        let down = |r: &str| Step {
            revision: r.into(),
            direction: Direction::Down,
        };
        let h = heads_after(&g, &[], &up("a"));
        assert_eq!(h, ["a"]);
        let h = heads_after(&g, &h, &up("b"));
        assert_eq!(h, ["b"]);
        let h = heads_after(&g, &h, &up("c"));
        assert_eq!(h, ["b", "c"]);
        let h = heads_after(&g, &h, &up("m"));
        assert_eq!(h, ["m"]);
        let h = heads_after(&g, &h, &down("m"));
        assert_eq!(h, ["b", "c"]);
        let h = heads_after(&g, &h, &down("c"));
        assert_eq!(h, ["b"]);
    }
}
