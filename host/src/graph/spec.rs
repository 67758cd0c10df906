//! Alembic's revision identifiers: `head`, `heads`, `base`, full and partial ids, branch
//! labels, `+N`/`-N`, `REV+N`/`REV-N`, `branch@head`, `branch@base`, `branch@+N`,
//! `branch@-N`, `branch@REV` and `REV@branch`.

use std::collections::BTreeSet;

use super::{Graph, GraphError};

/// `("ae10", 2)` for `ae10+2`, `("", -1)` for `-1`; `None` when there is no count.
fn split_relative(spec: &str) -> Option<(&str, i64)> {
    let at = spec.rfind(['+', '-'])?;
    let digits = &spec[at + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some((
        &spec[..at],
        if spec.as_bytes()[at] == b'-' { -n } else { n },
    ))
}

/// A branch scope: its label and members.
struct Branch<'a> {
    label: &'a str,
    members: BTreeSet<String>,
}

impl Graph {
    fn branch<'a>(&self, label: &'a str) -> Result<Branch<'a>, GraphError> {
        if self.label(label).is_none() {
            return Err(GraphError::UnknownBranch {
                label: label.to_owned(),
            });
        }
        Ok(Branch {
            label,
            members: self.branch_members(label),
        })
    }

    /// `X@Y`: a branch and what follows the `@`, or a revision checked against a branch.
    fn split_branch<'s>(&self, spec: &'s str) -> Result<Option<(Branch<'s>, &'s str)>, GraphError> {
        let Some((left, right)) = spec.split_once('@') else {
            return Ok(None);
        };
        if self.label(left).is_some() {
            return Ok(Some((self.branch(left)?, right)));
        }
        if self.label(right).is_some() {
            // REV@branch: the revision, which must be on the branch.
            return Ok(Some((self.branch(right)?, left)));
        }
        Err(GraphError::UnknownBranch {
            label: left.to_owned(),
        })
    }

    /// The one head among `candidates`, or an error naming them.
    fn one_head(
        &self,
        what: &str,
        within: Option<&BTreeSet<String>>,
    ) -> Result<String, GraphError> {
        let heads: Vec<&str> = self
            .heads()
            .into_iter()
            .filter(|h| within.is_none_or(|m| m.contains(*h)))
            .collect();
        match heads.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(GraphError::Unknown { spec: what.into() }),
            many => Err(GraphError::MultipleHeads {
                what: what.into(),
                heads: many.iter().map(|s| s.to_string()).collect(),
            }),
        }
    }

    /// A revision named inside a branch scope, checked to be on the branch.
    fn on_branch(&self, spec: &str, branch: &Branch) -> Result<String, GraphError> {
        let id = self.lookup(spec)?;
        if !branch.members.contains(id) {
            return Err(GraphError::NotOnBranch {
                id: id.to_owned(),
                label: branch.label.to_owned(),
            });
        }
        Ok(id.to_owned())
    }

    /// The database's one applied head (within a branch, if given); `None` at base.
    fn current_anchor(
        &self,
        current: &[String],
        branch: Option<&Branch>,
        n: i64,
    ) -> Result<Option<String>, GraphError> {
        // On a branch: its topmost applied revision, whether or not it has a row of its
        // own (a revision that depends on it may cover it, as in Alembic).
        let applied: BTreeSet<String>;
        let mine: Vec<&String> = match branch {
            None => current.iter().collect(),
            Some(b) => {
                applied = self
                    .ancestors(current)
                    .into_iter()
                    .filter(|id| b.members.contains(id))
                    .collect();
                applied
                    .iter()
                    .filter(|id| !self.node(id).children.iter().any(|c| applied.contains(c)))
                    .collect()
            }
        };
        match mine.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            many => Err(GraphError::Relative {
                steps: n.unsigned_abs() as usize,
                direction: if n < 0 { "down" } else { "up" },
                from: many
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: "the database has several heads; name a revision or use BRANCH@-N".into(),
            }),
        }
    }

    /// Walks `n` steps from `from` (`None`: base): up through children, down through down
    /// revisions, within `within` if given. `None` means "at base".
    fn step(
        &self,
        from: Option<&str>,
        n: i64,
        within: Option<&BTreeSet<String>>,
    ) -> Result<Option<String>, GraphError> {
        let up = n > 0;
        let steps = n.unsigned_abs() as usize;
        let err = |reason: String| GraphError::Relative {
            steps,
            direction: if up { "up" } else { "down" },
            from: from.unwrap_or("base").to_owned(),
            reason,
        };
        let allowed = |id: &&str| within.is_none_or(|m| m.contains(*id));
        let mut at: Option<String> = from.map(str::to_owned);
        for step in 0..steps {
            let next: Vec<&str> = match (&at, up) {
                (None, true) => {
                    let bases: Vec<&str> = match within {
                        // A branch's base is its member without a member parent.
                        Some(m) => m
                            .iter()
                            .map(String::as_str)
                            .filter(|id| !self.node(id).meta.down.iter().any(|d| m.contains(d)))
                            .collect(),
                        None => self.bases(),
                    };
                    bases
                }
                (None, false) => return Err(err(format!("only {step} step(s) down to base"))),
                (Some(id), true) => self
                    .node(id)
                    .children
                    .iter()
                    .map(String::as_str)
                    .filter(allowed)
                    .collect(),
                (Some(id), false) => self
                    .node(id)
                    .meta
                    .down
                    .iter()
                    .map(String::as_str)
                    .filter(allowed)
                    .collect(),
            };
            at = match next.as_slice() {
                [] if up => return Err(err(format!("only {step} step(s) up to a head"))),
                [] => None,
                [one] => Some(one.to_string()),
                many => {
                    return Err(err(format!(
                        "the history branches at {}; name a revision or a branch",
                        many.join(", ")
                    )));
                }
            };
        }
        Ok(at)
    }

    /// The heads the database should have after `upgrade SPEC`.
    pub fn upgrade_target(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        self.check_current(current)?;
        match spec {
            "heads" => return Ok(self.heads().into_iter().map(str::to_owned).collect()),
            "head" => return Ok(vec![self.one_head("the history", None)?]),
            "base" => return Ok(Vec::new()),
            _ => {}
        }
        if let Some((branch, rest)) = self.split_branch(spec)? {
            let what = format!("branch {}", branch.label);
            return match rest {
                "head" => Ok(vec![self.one_head(&what, Some(&branch.members))?]),
                _ => match split_relative(rest) {
                    Some(("", n)) if n > 0 => {
                        let from = self.current_anchor(current, Some(&branch), n)?;
                        Ok(self
                            .step(from.as_deref(), n, Some(&branch.members))?
                            .into_iter()
                            .collect())
                    }
                    _ => Ok(vec![self.on_branch(rest, &branch)?]),
                },
            };
        }
        let lookup = self.lookup(spec);
        if let Ok(id) = lookup {
            return Ok(vec![id.to_owned()]);
        }
        match split_relative(spec) {
            Some((anchor, n)) if n > 0 => {
                let from = if anchor.is_empty() {
                    self.current_anchor(current, None, n)?
                } else {
                    Some(self.lookup(anchor)?.to_owned())
                };
                Ok(self.step(from.as_deref(), n, None)?.into_iter().collect())
            }
            _ => Err(lookup.unwrap_err()),
        }
    }

    /// The applied revisions `downgrade SPEC` reverts.
    ///
    /// `downgrade REV` reverts every applied revision that follows REV (and whatever
    /// depends on those), leaving other branches alone; `-N` reverts the last N revisions
    /// of the database's one head (`BRANCH@-N`: of that branch); `base` reverts
    /// everything and `BRANCH@base` the whole branch.
    pub fn downgrade_removal(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<BTreeSet<String>, GraphError> {
        self.check_current(current)?;
        let applied = self.ancestors(current);
        // Everything applied that follows or depends on what is removed goes too.
        let closure = |roots: &BTreeSet<String>| -> BTreeSet<String> {
            let roots: Vec<&String> = roots.iter().collect();
            self.descendants(&roots)
                .intersection(&applied)
                .cloned()
                .collect()
        };
        let down_to = |target: String| -> Result<BTreeSet<String>, GraphError> {
            if !applied.contains(&target) {
                return Err(GraphError::NotApplied {
                    target,
                    current: current.to_vec(),
                });
            }
            Ok(closure(
                &self.node(&target).children.iter().cloned().collect(),
            ))
        };
        if spec == "base" {
            return Ok(applied);
        }
        if let Some((branch, rest)) = self.split_branch(spec)? {
            if rest == "base" {
                return Ok(closure(&branch.members));
            }
            if let Some(("", n)) = split_relative(rest)
                && n < 0
            {
                let from = self.current_anchor(current, Some(&branch), n)?;
                return Ok(closure(&self.last_n(from, n, Some(&branch.members))?));
            }
            return down_to(self.on_branch(rest, &branch)?);
        }
        let lookup = self.lookup(spec);
        if let Ok(id) = lookup {
            return down_to(id.to_owned());
        }
        match split_relative(spec) {
            Some(("", n)) if n < 0 => {
                let from = self.current_anchor(current, None, n)?;
                Ok(closure(&self.last_n(from, n, None)?))
            }
            Some((anchor, n)) if n < 0 => {
                let from = self.lookup(anchor)?;
                match self.step(Some(from), n, None)? {
                    Some(target) => down_to(target),
                    None => Ok(closure(&self.down_ancestors(&[from]))),
                }
            }
            _ => Err(lookup.unwrap_err()),
        }
    }

    /// The last `|n|` revisions down from `from`, following single down revisions.
    fn last_n(
        &self,
        from: Option<String>,
        n: i64,
        within: Option<&BTreeSet<String>>,
    ) -> Result<BTreeSet<String>, GraphError> {
        let steps = n.unsigned_abs() as usize;
        let err = |reason: String| GraphError::Relative {
            steps,
            direction: "down",
            from: from.clone().unwrap_or_else(|| "base".into()),
            reason,
        };
        let mut removed = BTreeSet::new();
        let mut at = from.clone();
        for step in 0..steps {
            let Some(id) = at else {
                return Err(err(format!("only {step} step(s) down to base")));
            };
            let downs: Vec<&String> = self
                .node(&id)
                .meta
                .down
                .iter()
                .filter(|d| within.is_none_or(|m| m.contains(*d)))
                .collect();
            at = match downs.as_slice() {
                [] => None,
                [one] => Some(one.to_string()),
                many if step + 1 < steps => {
                    let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                    return Err(err(format!(
                        "{id} merges {}; name the revision to go down to",
                        names.join(", ")
                    )));
                }
                _ => None,
            };
            removed.insert(id);
        }
        Ok(removed)
    }

    /// The heads `stamp SPEC...` writes: each spec as for upgrade, reduced to heads.
    pub fn stamp_target(
        &self,
        specs: &[String],
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        let mut all = BTreeSet::new();
        for spec in specs {
            all.extend(self.upgrade_target(spec, current)?);
        }
        let all: Vec<String> = all.into_iter().collect();
        let covered: BTreeSet<String> = all
            .iter()
            .flat_map(|id| {
                let mut below = self.down_ancestors(&[id]);
                below.remove(id);
                below
            })
            .collect();
        Ok(all.into_iter().filter(|id| !covered.contains(id)).collect())
    }
}
