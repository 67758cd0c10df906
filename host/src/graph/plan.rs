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

/// Upward: every revision the targets need that is not applied yet, in the reverse of
/// Alembic's walk down from the targets ([`Graph::walk_order`]); the targets come from
/// [`Graph::upgrade_target`].
pub fn plan_upgrade(graph: &Graph, current: &[String], target: &[String]) -> Vec<Step> {
    let applied = graph.ancestors(current);
    let wanted: BTreeSet<String> = graph
        .ancestors(target)
        .into_iter()
        .filter(|id| !applied.contains(id))
        .collect();
    let mut order = graph.walk_order(&wanted, target);
    order.reverse();
    steps(order, Direction::Up)
}

/// Downward: the revisions to remove, in Alembic's walk down from the current heads.
pub fn plan_downgrade(graph: &Graph, current: &[String], remove: &BTreeSet<String>) -> Vec<Step> {
    steps(graph.walk_order(remove, current), Direction::Down)
}

fn steps(order: Vec<String>, direction: Direction) -> Vec<Step> {
    order
        .into_iter()
        .map(|revision| Step {
            revision,
            direction,
        })
        .collect()
}

/// The version table's heads after a step, as Alembic keeps them (its
/// `HeadMaintainer`). A step moves from the revisions it stands on, its down revisions
/// and the dependencies no revision below it declares, to itself (or back):
/// - upgrade: a revision none of whose down revisions or dependencies is a row gets a
///   row of its own (a new branch); a merge replaces the rows it stands on (except those
///   another row still needs); otherwise it takes the row of the one it stands on. So a
///   revision that depends on another branch's head replaces that head's row.
/// - downgrade: a revision's row goes back to the rows it stands on that no other row
///   already covers (none left: the row is deleted).
pub fn heads_after(graph: &Graph, heads: &[String], step: &Step) -> Vec<String> {
    let node = graph.get(&step.revision).expect("planned revisions exist");
    let below: Vec<&str> = graph.steps_below(node).collect();
    let rev = step.revision.as_str();
    let mut next: BTreeSet<String> = heads.iter().cloned().collect();
    // What the heads other than `except` need, themselves included.
    let covered_by_others = |heads: &BTreeSet<String>, except: &[&str]| {
        let others: Vec<&String> = heads
            .iter()
            .filter(|h| !except.contains(&h.as_str()))
            .collect();
        graph.ancestors(&others)
    };
    match step.direction {
        Direction::Up => {
            let standing: Vec<&str> = below
                .iter()
                .copied()
                .filter(|b| next.contains(*b))
                .collect();
            if below.len() > 1 && standing.len() > 1 {
                let others = covered_by_others(&next, &below);
                for b in &below {
                    if !others.contains(*b) {
                        next.remove(*b);
                    }
                }
            } else if let Some(first) = standing.first() {
                next.remove(*first);
            }
            next.insert(step.revision.clone());
        }
        Direction::Down => {
            if next.remove(rev) {
                let back: Vec<&str> = if next.is_empty() {
                    below
                        .iter()
                        .copied()
                        .filter(|b| {
                            !below
                                .iter()
                                .any(|other| other != b && graph.ancestors(&[*other]).contains(*b))
                        })
                        .collect()
                } else {
                    let others = covered_by_others(&next, &[]);
                    below
                        .iter()
                        .copied()
                        .filter(|b| !others.contains(*b))
                        .collect()
                };
                next.extend(back.into_iter().map(str::to_owned));
            }
        }
    }
    next.into_iter().collect()
}
