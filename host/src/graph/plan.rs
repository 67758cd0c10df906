//! Plans (ordered steps) and the version table's heads after each step.

use std::collections::BTreeSet;

use super::Graph;

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards the heads: `upgrade`.
    Up,
    /// Towards base: `downgrade`.
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
    /// The revision's id.
    pub revision: String,
    /// Which of its exports runs.
    pub direction: Direction,
}

/// Upward: every revision the targets need that is not applied yet, parents and
/// dependencies first.
pub fn plan_upgrade(graph: &Graph, current: &[String], target: &[String]) -> Vec<Step> {
    let applied = graph.ancestors(current);
    let wanted = graph.ancestors(target);
    graph
        .ordered()
        .filter(|n| wanted.contains(&n.meta.id) && !applied.contains(&n.meta.id))
        .map(|n| Step {
            revision: n.meta.id.clone(),
            direction: Direction::Up,
        })
        .collect()
}

/// Downward: the revisions to remove, children and dependents first.
pub fn plan_downgrade(graph: &Graph, remove: &BTreeSet<String>) -> Vec<Step> {
    graph
        .ordered()
        .rev()
        .filter(|n| remove.contains(&n.meta.id))
        .map(|n| Step {
            revision: n.meta.id.clone(),
            direction: Direction::Down,
        })
        .collect()
}

/// The version table's heads after a step, as Alembic keeps them: an upgrade replaces
/// the down revisions it follows (a merge replaces several; a new branch adds a row); a
/// downgrade puts back the down revisions no remaining head already includes.
/// Dependencies never replace a head: they order, they do not merge.
pub fn heads_after(graph: &Graph, heads: &[String], step: &Step) -> Vec<String> {
    let node = graph.get(&step.revision).expect("planned revisions exist");
    let mut next: Vec<String> = heads.to_vec();
    match step.direction {
        Direction::Up => {
            let covered = graph.down_ancestors(&[step.revision.as_str()]);
            next.retain(|h| !covered.contains(h));
            next.push(step.revision.clone());
        }
        Direction::Down => {
            next.retain(|h| h != &step.revision);
            for down in &node.meta.down {
                if !graph.down_ancestors(&next).contains(down) {
                    next.push(down.clone());
                }
            }
        }
    }
    next.sort();
    next
}
