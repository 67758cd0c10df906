//! Revision arguments, read as Alembic reads them (its `RevisionMap`): `head`, `heads`,
//! `base`, full and partial ids, branch labels, `BRANCH@head`, `BRANCH@heads`,
//! `BRANCH@base`, `BRANCH@REV` (a revision id may stand for the branch), and the
//! relative forms `+N`, `-N`, `REV+N`, `REV-N`, `BRANCH@+N`, `BRANCH@-N`,
//! `BRANCH@REV+N`. The rules, with examples, are in docs/graph.md; each function here
//! names the Alembic function whose behaviour it follows, and the differential tests
//! (tests/alembic/) hold the two to the same results.

use std::collections::BTreeSet;

use super::{Graph, GraphError};

/// A place reached while resolving or walking: Alembic's `None`, `"base"` or a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum At {
    /// Nothing: before the first revision when walking up, the heads when walking
    /// down, or a walk that went past the end.
    Nothing,
    /// `base`, reached by walking down past a base revision.
    Base,
    /// A revision.
    Rev(String),
}

/// A revision argument: one spec as typed, or several ids (the database's rows).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// One spec, read with every form (relative, `@`).
    One(&'a str),
    /// Several specs, each read on its own (no relative reading of the whole).
    Many(&'a [String]),
}

impl Arg<'_> {
    fn specs(&self) -> Vec<&str> {
        match self {
            Arg::One(s) => vec![s],
            Arg::Many(ids) => ids.iter().map(String::as_str).collect(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Arg::One(s) => (*s).to_owned(),
            Arg::Many([]) => "base".into(),
            Arg::Many(ids) => ids.join(", "),
        }
    }
}

/// A relative spec: `[BRANCH@][SYMBOL](+|-)N`, matched at the start of the spec as
/// Alembic's `(?:(.+?)@)?(\w+)?((?:\+|-)\d+)` is.
#[derive(Debug, Clone, Copy)]
struct Relative<'a> {
    branch: Option<&'a str>,
    symbol: Option<&'a str>,
    /// The count as written, with its sign.
    text: &'a str,
    n: i64,
}

/// `SYMBOL(+|-)DIGITS` at the start of `rest`: the symbol is the longest run of word
/// characters (a sign is not one), the count the sign and the longest run of digits.
fn tail(rest: &str) -> Option<(Option<&str>, &str)> {
    let word = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    let after = &rest[word..];
    after.chars().next().filter(|c| *c == '+' || *c == '-')?;
    let digits = after[1..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len() - 1);
    if digits == 0 {
        return None;
    }
    Some(((word > 0).then(|| &rest[..word]), &after[..1 + digits]))
}

fn relative(spec: &str) -> Option<Relative<'_>> {
    // The branch group is tried first, shortest first, then left out.
    let with_branch = spec
        .match_indices('@')
        .filter(|(i, _)| *i > 0)
        .find_map(|(i, _)| {
            tail(&spec[i + 1..]).map(|(symbol, text)| (Some(&spec[..i]), symbol, text))
        });
    let (branch, symbol, text) =
        with_branch.or_else(|| tail(spec).map(|(symbol, text)| (None, symbol, text)))?;
    Some(Relative {
        branch,
        symbol,
        text,
        n: text.parse().ok()?,
    })
}

/// A negative number as Alembic's `int()` reads a resolved id (`-2` in `BRANCH@-2`).
fn negative(id: &str) -> Option<i64> {
    let n: i64 = id.trim().parse().ok()?;
    (n < 0).then_some(n)
}

/// Where a relative upgrade starts: a spec still to read, a revision, or nothing.
enum Start {
    Spec(String),
    Rev(String),
    Nothing,
}

impl Graph {
    /// Ids (then labels) in the order Alembic's revision map holds its keys.
    fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.loaded
            .iter()
            .map(|id| (id.as_str(), id.as_str()))
            .chain(self.labels.iter().map(|(l, id)| (l.as_str(), id.as_str())))
    }

    /// Ids, branch labels and the words a spec may use that are close to `typed`.
    pub(super) fn suggest(&self, typed: &str) -> Vec<String> {
        const WORDS: [&str; 4] = ["head", "heads", "base", "current"];
        super::closest(typed, self.keys().map(|(k, _)| k).chain(WORDS))
    }

    /// The revision a key (id or branch label) names exactly.
    fn exact(&self, key: &str) -> Option<&str> {
        self.nodes
            .get_key_value(key)
            .map(|(id, _)| id.as_str())
            .or_else(|| self.labels.get(key).map(String::as_str))
    }

    /// Heads by down revisions only (Alembic's `heads`), in load order.
    fn version_heads(&self) -> Vec<String> {
        self.heads().into_iter().map(str::to_owned).collect()
    }

    /// Alembic's `_shares_lineage`: `target` is below or above one of `against` (by
    /// down revisions, and by dependencies too with `deps`); true when `against` is
    /// empty.
    fn shares_lineage(&self, target: &str, against: &[String], deps: bool) -> bool {
        if against.is_empty() {
            return true;
        }
        let (up, down) = if deps {
            (self.descendants(&[target]), self.ancestors(&[target]))
        } else {
            (
                self.down_descendants(&[target]),
                self.down_ancestors(&[target]),
            )
        };
        against.iter().any(|a| up.contains(a) || down.contains(a))
    }

    /// Alembic's `filter_for_lineage`: the `targets` that share lineage with what
    /// `check` names.
    fn filter_for_lineage(
        &self,
        targets: &[String],
        check: &str,
        deps: bool,
    ) -> Result<Vec<String>, GraphError> {
        let (ids, branch) = self.resolve_number(Some(check))?;
        // What `check` names is looked up only when there is something to filter.
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let mut against = Vec::new();
        for share in branch.into_iter().chain(ids) {
            if let Some(id) = self.revision_for_ident(Some(&share), None)? {
                against.push(id);
            }
        }
        Ok(targets
            .iter()
            .filter(|t| self.shares_lineage(t, &against, deps))
            .cloned()
            .collect())
    }

    /// Alembic's `_resolve_branch`: a branch label's revision, or a revision standing
    /// for its branch.
    fn resolve_branch(&self, label: &str) -> Result<String, GraphError> {
        if let Some(id) = self.labels.get(label) {
            return Ok(id.clone());
        }
        match self.revision_for_ident(Some(label), None) {
            Ok(Some(id)) => Ok(id),
            _ => Err(GraphError::UnknownBranch {
                label: label.to_owned(),
                suggestions: super::closest(
                    label,
                    self.labels
                        .keys()
                        .map(String::as_str)
                        .chain(self.keys().map(|(k, _)| k)),
                ),
            }),
        }
    }

    /// Alembic's `_revision_for_ident`: an id, a label or a unique prefix of at least
    /// four characters; within `branch`, prefixes are counted on the branch only, and
    /// the revision must be on it.
    pub(super) fn revision_for_ident(
        &self,
        ident: Option<&str>,
        branch: Option<&str>,
    ) -> Result<Option<String>, GraphError> {
        let branch_rev = branch.map(|b| self.resolve_branch(b)).transpose()?;
        let Some(ident) = ident else {
            return Ok(None);
        };
        let id = match self.exact(ident) {
            Some(id) => id.to_owned(),
            None => {
                let mut found: Vec<(&str, &str)> = self
                    .keys()
                    .filter(|(key, _)| key.len() > 3 && key.starts_with(ident) && !ident.is_empty())
                    .collect();
                if let Some(b) = branch {
                    let ids: Vec<String> = found.iter().map(|(_, id)| id.to_string()).collect();
                    let keep = self.filter_for_lineage(&ids, b, false)?;
                    found.retain(|(_, id)| keep.iter().any(|k| k == id));
                }
                match found.as_slice() {
                    [] => {
                        return Err(GraphError::Unknown {
                            spec: ident.to_owned(),
                            suggestions: self.suggest(ident),
                        });
                    }
                    [(_, id)] => id.to_string(),
                    many => {
                        return Err(GraphError::Ambiguous {
                            spec: ident.to_owned(),
                            candidates: many
                                .iter()
                                .map(|(key, id)| {
                                    let message =
                                        self.nodes.get(*id).map_or("", |n| &n.meta.message);
                                    format!("{key} ({message})")
                                })
                                .collect(),
                        });
                    }
                }
            }
        };
        if let (Some(b), Some(b_rev)) = (branch, branch_rev)
            && !self.shares_lineage(&id, &[b_rev], false)
        {
            return Err(GraphError::NotOnBranch {
                id,
                label: b.to_owned(),
            });
        }
        Ok(Some(id))
    }

    /// Alembic's `get_current_head`: the one head (within a branch), or none.
    fn current_head(&self, branch: Option<&str>) -> Result<Option<String>, GraphError> {
        let mut heads = self.version_heads();
        if let Some(b) = branch {
            heads = self.filter_for_lineage(&heads, b, false)?;
        }
        if heads.len() > 1 {
            return Err(GraphError::MultipleHeads {
                what: branch.map_or("head".into(), |b| format!("{b}@head")),
                heads,
            });
        }
        Ok(heads.into_iter().next())
    }

    /// Alembic's `_resolve_revision_number`: the ids (or still unresolved specs) an
    /// argument names, and its branch.
    fn resolve_number(
        &self,
        spec: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), GraphError> {
        let (branch, id) = match spec.and_then(|s| s.split_once('@')) {
            Some((b, id)) => ((!b.is_empty()).then_some(b), Some(id)),
            None => (None, spec),
        };
        let ids = match id {
            Some("heads") => match branch {
                Some(b) => self.filter_for_lineage(&self.version_heads(), b, false)?,
                None => self
                    .heads_resolving_dependencies()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            },
            Some("head") => self.current_head(branch)?.into_iter().collect(),
            Some("base") | None => Vec::new(),
            Some(other) => vec![other.to_owned()],
        };
        Ok((ids, branch.map(str::to_owned)))
    }

    /// Alembic's `get_revisions`: every revision an argument names (`BRANCH@-N` walks
    /// down from each head of the branch; a walk past the end gives [`At::Nothing`]).
    pub(crate) fn get_revisions(&self, arg: Arg) -> Result<Vec<At>, GraphError> {
        let mut out = Vec::new();
        for spec in arg.specs() {
            let (ids, branch) = self.resolve_number(Some(spec))?;
            if let [one] = ids.as_slice()
                && let Some(n) = negative(one)
            {
                for head in self.heads_resolving_dependencies() {
                    if branch
                        .as_deref()
                        .is_none_or(|b| self.nodes[head].labels.contains(b))
                    {
                        out.push(self.walk_steps(At::Rev(head.to_owned()), n, None, true)?);
                    }
                }
                continue;
            }
            for id in ids {
                out.push(
                    self.revision_for_ident(Some(&id), branch.as_deref())?
                        .map_or(At::Nothing, At::Rev),
                );
            }
        }
        Ok(out)
    }

    /// Alembic's `get_revision`: the one revision a spec names (`Nothing` for base).
    fn get_revision(&self, spec: &str) -> Result<At, GraphError> {
        let (ids, branch) = self.resolve_number(Some(spec))?;
        if ids.len() > 1 {
            return Err(GraphError::MultipleHeads {
                what: spec.to_owned(),
                heads: ids,
            });
        }
        Ok(self
            .revision_for_ident(ids.first().map(String::as_str), branch.as_deref())?
            .map_or(At::Nothing, At::Rev))
    }

    /// Alembic's `_walk`: `steps` up (through children, within `branch` if given) or
    /// down (through down revisions) from `start`. Past the end: `Nothing` with
    /// `no_overwalk`, else where the walk stopped.
    fn walk_steps(
        &self,
        start: At,
        steps: i64,
        branch: Option<&str>,
        no_overwalk: bool,
    ) -> Result<At, GraphError> {
        let mut at = start;
        for _ in 0..steps.unsigned_abs() {
            let next: Vec<At> = if steps > 0 {
                let up: Vec<String> = match &at {
                    At::Nothing => self.bases().into_iter().map(str::to_owned).collect(),
                    At::Rev(id) => self.nodes[id].children.clone(),
                    At::Base => Vec::new(),
                };
                let up = match branch {
                    Some(b) => self.filter_for_lineage(&up, b, false)?,
                    None => up,
                };
                up.into_iter().map(At::Rev).collect()
            } else {
                let down: Vec<At> = match &at {
                    At::Base => Vec::new(),
                    At::Nothing => self.version_heads().into_iter().map(At::Rev).collect(),
                    At::Rev(id) => self.nodes[id]
                        .meta
                        .down
                        .iter()
                        .cloned()
                        .map(At::Rev)
                        .collect(),
                };
                // Below a base (or below nothing at all) is base.
                if down.is_empty() && at != At::Base {
                    vec![At::Base]
                } else {
                    down
                }
            };
            match next.len() {
                0 => return Ok(if no_overwalk { At::Nothing } else { at }),
                1 => at = next.into_iter().next().expect("one"),
                _ => {
                    return Err(GraphError::AmbiguousWalk {
                        from: match &at {
                            At::Rev(id) => id.clone(),
                            _ => "base".into(),
                        },
                        to: next
                            .iter()
                            .map(|a| match a {
                                At::Rev(id) => id.clone(),
                                _ => "base".into(),
                            })
                            .collect(),
                    });
                }
            }
        }
        Ok(at)
    }

    /// Alembic's `_get_all_current`: the revisions applied under `ids`, reduced to the
    /// topmost of each line.
    fn all_current(&self, ids: &[String]) -> BTreeSet<String> {
        let all = self.ancestors(ids);
        all.iter()
            .filter(|id| {
                let mut above = self.down_descendants(&[id.as_str()]);
                above.remove(*id);
                above.is_disjoint(&all)
            })
            .cloned()
            .collect()
    }

    /// Alembic's `_parse_downgrade_target`: the branch a downgrade is scoped to and the
    /// revision it goes down to (`Nothing` or `Base`: base).
    fn parse_downgrade_target(
        &self,
        current: Arg,
        target: &str,
        assert_length: bool,
    ) -> Result<(Option<String>, At), GraphError> {
        let Some(rel) = relative(target) else {
            let (branch, symbol) = match target.rsplit_once('@') {
                Some((b, s)) => ((!b.is_empty()).then(|| b.to_owned()), s),
                None => (None, target),
            };
            return Ok((branch, self.get_revision(symbol)?));
        };
        let didnt = || GraphError::Relative {
            relative: rel.text.to_owned(),
            steps: rel.n.unsigned_abs(),
        };
        let mut branch = rel.branch.map(str::to_owned);
        if rel.n >= 0 {
            let Some(symbol) = rel.symbol else {
                return Err(didnt());
            };
            let start = self.get_revision(symbol)?;
            return match self.walk_steps(start, rel.n, rel.branch, assert_length)? {
                At::Nothing => Err(GraphError::WalkedTooFar {
                    spec: target.to_owned(),
                }),
                at => Ok((branch, at)),
            };
        }
        let symbol = match (rel.symbol, rel.branch) {
            (Some(symbol), _) => symbol.to_owned(),
            (None, Some(b)) => {
                let current: Vec<String> = current.specs().iter().map(|s| s.to_string()).collect();
                let mut mine = self.filter_for_lineage(&current, b, false)?;
                if mine.is_empty() {
                    let all: Vec<String> = self.all_current(&current).into_iter().collect();
                    mine = self.filter_for_lineage(&all, b, false)?;
                }
                match mine.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(GraphError::BranchPosition {
                            label: b.to_owned(),
                            found: mine,
                        });
                    }
                }
            }
            (None, None) => {
                let specs = current.specs();
                let distinct: BTreeSet<&str> = specs.iter().copied().collect();
                match distinct.len() {
                    0 => return Err(didnt()),
                    1 => {}
                    // Alembic warns and counts from the first head; Retort refuses.
                    _ => {
                        return Err(GraphError::AmbiguousDowngrade {
                            spec: target.to_owned(),
                            heads: specs.iter().map(|s| s.to_string()).collect(),
                        });
                    }
                }
                branch = Some(specs[0].to_owned());
                specs[0].to_owned()
            }
        };
        let start = match &branch {
            None => self.get_revision(&symbol)?,
            Some(b) => self.get_revision(&format!("{b}@{symbol}"))?,
        };
        match self.walk_steps(start, rel.n, None, assert_length)? {
            At::Nothing if rel.symbol.is_none() => Err(didnt()),
            At::Nothing => Err(GraphError::WalkedTooFar {
                spec: target.to_owned(),
            }),
            at => Ok((branch, at)),
        }
    }

    /// Alembic's `_parse_upgrade_target`: what an upgrade goes to, from `current`.
    fn parse_upgrade_target(
        &self,
        current: Arg,
        target: Arg,
        assert_length: bool,
    ) -> Result<Vec<At>, GraphError> {
        let rel = match target {
            Arg::One(spec) => relative(spec),
            Arg::Many(_) => None,
        };
        let Some(rel) = rel else {
            return self.get_revisions(target);
        };
        let didnt = || GraphError::Relative {
            relative: rel.text.to_owned(),
            steps: rel.n.unsigned_abs(),
        };
        if rel.n <= 0 {
            let Some(symbol) = rel.symbol else {
                return Err(didnt());
            };
            let start = match rel.branch {
                None => self.get_revision(symbol)?,
                Some(b) => self.get_revision(&format!("{b}@{symbol}"))?,
            };
            return Ok(vec![self.walk_steps(start, rel.n, None, assert_length)?]);
        }
        if let Some(symbol) = rel.symbol {
            let start = self.get_revision(symbol)?;
            return Ok(vec![self.walk_steps(
                start,
                rel.n,
                rel.branch,
                assert_length,
            )?]);
        }
        let specs = current.specs();
        let mut starts: Vec<Start> = if specs.is_empty() {
            vec![Start::Nothing]
        } else {
            specs.iter().map(|s| Start::Spec(s.to_string())).collect()
        };
        if let Some(b) = rel.branch {
            let revs: Vec<String> = self
                .get_revisions(Arg::Many(
                    &specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                ))?
                .into_iter()
                .filter_map(|a| match a {
                    At::Rev(id) => Some(id),
                    _ => None,
                })
                .collect();
            let mine = self.filter_for_lineage(&revs, b, false)?;
            starts = if mine.is_empty() {
                // The branch has no row of its own: start from its topmost applied
                // revision, or from base.
                let applied: Vec<String> = self.ancestors(&revs).into_iter().collect();
                let active = self.filter_for_lineage(&applied, b, false)?;
                let below: BTreeSet<&str> = active
                    .iter()
                    .flat_map(|id| self.steps_below(&self.nodes[id]))
                    .collect();
                let tips: Vec<Start> = active
                    .iter()
                    .filter(|id| !below.contains(id.as_str()))
                    .map(|id| Start::Rev(id.clone()))
                    .collect();
                if tips.is_empty() {
                    vec![Start::Nothing]
                } else {
                    tips
                }
            } else {
                mine.into_iter().map(Start::Rev).collect()
            };
        }
        if starts.len() > 1 {
            return Err(GraphError::AmbiguousUpgrade {
                spec: target.describe(),
                current: current.describe(),
            });
        }
        let start = match starts.into_iter().next().expect("one start") {
            Start::Spec(s) => self.get_revision(&s)?,
            Start::Rev(id) => At::Rev(id),
            Start::Nothing => At::Nothing,
        };
        match self.walk_steps(start, rel.n, rel.branch, assert_length)? {
            At::Nothing => Err(didnt()),
            at => Ok(vec![at]),
        }
    }

    /// Ids of `at`, refusing base and nothing where a revision is needed.
    fn revisions_only(&self, at: Vec<At>, spec: &str) -> Result<Vec<String>, GraphError> {
        at.into_iter()
            .map(|a| match a {
                At::Rev(id) => Ok(id),
                _ => Err(GraphError::NotARevision {
                    spec: spec.to_owned(),
                }),
            })
            .collect()
    }

    /// Alembic's `_get_ancestor_nodes(check=True)` (or descendants with `up`): what
    /// `targets` reach, refusing targets that reach one another (Alembic's "overlaps").
    fn related_checked(
        &self,
        targets: &[String],
        up: bool,
    ) -> Result<BTreeSet<String>, GraphError> {
        let mut seen = BTreeSet::new();
        for target in targets {
            let mut reached = BTreeSet::new();
            let mut todo = vec![target.as_str()];
            while let Some(id) = todo.pop() {
                reached.insert(id);
                if !seen.insert(id.to_owned()) {
                    continue;
                }
                let node = &self.nodes[id];
                if up {
                    todo.extend(node.children.iter().map(String::as_str));
                } else {
                    todo.extend(self.steps_below(node));
                }
            }
            let overlaps: Vec<String> = targets
                .iter()
                .filter(|t| *t != target && reached.contains(t.as_str()))
                .cloned()
                .collect();
            if !overlaps.is_empty() {
                return Err(GraphError::Overlap {
                    id: target.clone(),
                    others: overlaps,
                });
            }
        }
        Ok(seen)
    }

    /// Alembic's `_collect_upgrade_revisions`: the revisions between `lower` and
    /// `upper`, and the targets they lead to.
    fn collect_upgrade(
        &self,
        upper: Arg,
        lower: Arg,
        inclusive: bool,
        implicit_base: bool,
        assert_length: bool,
    ) -> Result<(BTreeSet<String>, Vec<String>), GraphError> {
        let parsed = self.parse_upgrade_target(lower, upper, assert_length)?;
        let mut targets = self.revisions_only(parsed, &upper.describe())?;
        if let Arg::One(l) = lower
            && let Some((branch, _)) = l.split_once('@')
        {
            let mut branch = branch.to_owned();
            if let At::Rev(id) = self.get_revision(&branch)?
                && id == branch
            {
                // A revision used as the branch: its one label.
                let labels = &self.nodes[&id].labels;
                match labels.iter().collect::<Vec<_>>().as_slice() {
                    [one] => branch = one.to_string(),
                    _ => {
                        return Err(GraphError::BranchPosition {
                            label: branch,
                            found: labels.iter().cloned().collect(),
                        });
                    }
                }
            }
            targets.retain(|t| self.nodes[t].labels.contains(&branch));
        }
        let mut required = self.related_checked(&targets, false)?;
        required.extend(targets.iter().cloned());
        let mut current = self.get_revisions(lower)?;
        let not_ancestor = || GraphError::BadRange {
            start: lower.describe(),
            end: upper.describe(),
        };
        if !implicit_base
            && current.iter().any(|c| match c {
                At::Rev(id) => !required.contains(id),
                At::Base => true,
                At::Nothing => false,
            })
        {
            return Err(not_ancestor());
        }
        let mut lower_now: Option<Vec<String>> = None;
        if current.first() == Some(&At::Nothing) {
            let Arg::One(l) = lower else {
                return Err(not_ancestor());
            };
            let (_, at) = self.parse_downgrade_target(upper, l, assert_length)?;
            match at {
                At::Base => {
                    current = Vec::new();
                    lower_now = Some(Vec::new());
                }
                At::Rev(id) => {
                    current = vec![At::Rev(id.clone())];
                    lower_now = Some(vec![id]);
                }
                At::Nothing => return Err(not_ancestor()),
            }
        }
        let current = self.revisions_only(current, &lower.describe())?;
        let mut applied = self.related_checked(&current, false)?;
        applied.extend(current.iter().cloned());
        let mut needs: BTreeSet<String> = required.difference(&applied).cloned().collect();
        if inclusive {
            let lower_revs = match &lower_now {
                Some(ids) => ids.iter().map(|id| At::Rev(id.clone())).collect(),
                None => self.get_revisions(lower)?,
            };
            needs.extend(self.revisions_only(lower_revs, &lower.describe())?);
        }
        if !current.is_empty() && !implicit_base {
            let above = self.related_checked(&current, true)?;
            needs.retain(|id| above.contains(id));
        }
        Ok((needs, targets))
    }

    /// Alembic's `_collect_downgrade_revisions`: the applied revisions a downgrade to
    /// `target` removes, from the heads `current`.
    fn collect_downgrade(
        &self,
        current: Arg,
        target: &str,
    ) -> Result<BTreeSet<String>, GraphError> {
        let (branch, to) = self.parse_downgrade_target(current, target, true)?;
        let mut roots: Vec<String> = match &to {
            At::Rev(id) => self.nodes[id].children.clone(),
            _ => self.bases().into_iter().map(str::to_owned).collect(),
        };
        if let Some(b) = &branch
            && roots.len() > 1
        {
            let below = self.down_ancestors(&[self.resolve_branch(b)?]);
            roots.retain(|r| below.contains(r));
            if roots.is_empty() {
                return Err(GraphError::NotDowngradeTarget {
                    target: target.to_owned(),
                    current: current.describe(),
                });
            }
        }
        let heads = self.revisions_only(self.get_revisions(current)?, &current.describe())?;
        let applied = self.ancestors(&heads);
        let removed: BTreeSet<String> = self
            .descendants(&roots)
            .into_iter()
            .filter(|id| applied.contains(id))
            .collect();
        if let At::Rev(id) = &to
            && removed.is_empty()
            && !heads.contains(id)
        {
            return Err(GraphError::NotDowngradeTarget {
                target: target.to_owned(),
                current: current.describe(),
            });
        }
        Ok(removed)
    }

    /// The revisions `upgrade SPEC` goes to from the database's heads `current` (the
    /// walk starts from these, and planning again after a concurrent move aims here).
    pub fn upgrade_target(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        self.check_current(current)?;
        let parsed = self.parse_upgrade_target(Arg::Many(current), Arg::One(spec), true)?;
        let targets = self.revisions_only(parsed, spec)?;
        // Alembic refuses targets that lie on one another's lines.
        self.related_checked(&targets, false)?;
        self.related_checked(current, false)?;
        Ok(targets)
    }

    /// The applied revisions `downgrade SPEC` reverts, from the database's heads
    /// `current`: everything applied that follows (or depends on) the revision it goes
    /// down to. `-N` with several heads is refused (Alembic warns and picks one).
    pub fn downgrade_removal(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<BTreeSet<String>, GraphError> {
        self.check_current(current)?;
        self.collect_downgrade(Arg::Many(current), spec)
    }

    /// The version table's rows after `stamp SPEC...` from the rows `current`, as
    /// Alembic's `_stamp_revs` and its version-table bookkeeping leave them.
    pub fn stamp_target(
        &self,
        specs: &[String],
        current: &[String],
    ) -> Result<Vec<String>, GraphError> {
        self.check_current(current)?;
        let base = ["base".to_owned()];
        let specs: &[String] = if specs.is_empty() { &base } else { specs };
        let heads = self.revisions_only(self.get_revisions(Arg::Many(current))?, "current")?;
        let mut filtered: Vec<String> = Vec::new();
        for spec in specs.iter().filter(|s| !s.is_empty()) {
            for h in self.filter_for_lineage(&heads, spec, true)? {
                if !filtered.contains(&h) {
                    filtered.push(h);
                }
            }
        }
        let mut dests = self.get_revisions(Arg::Many(specs))?;
        if dests.is_empty() {
            dests.push(At::Nothing);
        }
        let mut rows: BTreeSet<String> = current.iter().cloned().collect();
        let refuse = |why: &str| GraphError::Stamp {
            specs: specs.join(" "),
            reason: why.to_owned(),
        };
        for dest in dests {
            let dest = match dest {
                At::Nothing => {
                    // Base: each head of those lines goes.
                    for h in &filtered {
                        if !rows.remove(h) {
                            return Err(refuse(&format!("{h} was removed by an earlier target")));
                        }
                    }
                    continue;
                }
                At::Base => return Err(refuse("a walk to base is not a revision")),
                At::Rev(id) => id,
            };
            if filtered.contains(&dest) {
                continue;
            }
            let above = self.descendants(&[dest.as_str()]);
            let below = self.ancestors(&[dest.as_str()]);
            let (from, upgrade, branch_move): (Vec<String>, bool, bool) =
                if filtered.iter().any(|h| above.contains(h)) {
                    (filtered.clone(), false, false)
                } else if filtered.iter().any(|h| below.contains(h)) {
                    (filtered.clone(), true, false)
                } else {
                    (Vec::new(), true, true)
                };
            // Alembic's HeadMaintainer.update_to_step for a stamp step.
            let creates = upgrade
                && (branch_move || from.iter().any(|f| !rows.contains(f)))
                && !rows.contains(&dest);
            if creates {
                rows.insert(dest);
                continue;
            }
            let Some((last, rest)) = from.split_last() else {
                return Err(refuse("nothing to move from"));
            };
            for f in rest {
                if !rows.remove(f) {
                    return Err(refuse(&format!("{f} is no longer a row")));
                }
            }
            if rows.contains(&dest) || !rows.remove(last) {
                return Err(refuse(&format!("cannot move {last} to {dest}")));
            }
            rows.insert(dest);
        }
        Ok(rows.into_iter().collect())
    }

    /// What `show SPEC` shows: every revision the spec names (`current`: the
    /// database's rows).
    pub fn show_revisions(
        &self,
        spec: &str,
        current: &[String],
    ) -> Result<Vec<&super::Node>, GraphError> {
        let arg = if spec == "current" {
            Arg::Many(current)
        } else {
            Arg::One(spec)
        };
        self.revisions_only(self.get_revisions(arg)?, spec)
            .map(|ids| ids.iter().map(|id| &self.nodes[id]).collect())
    }

    /// What `history -r START:END` lists, newest first (every revision without a
    /// range), as Alembic's `walk_revisions`. `current` on either side is the
    /// database's rows.
    pub fn history_range(
        &self,
        range: Option<&str>,
        current: &[String],
    ) -> Result<Vec<&super::Node>, GraphError> {
        let (start, end) = match range {
            None => ("base", "heads"),
            Some(range) => {
                let mut parts = range.trim().split(':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(s), Some(e), None) => (s, e),
                    _ => {
                        return Err(GraphError::RangeSyntax {
                            reason: "History range requires [start]:[end], [start]:, or :[end]"
                                .into(),
                        });
                    }
                }
            }
        };
        let start = if start.is_empty() { "base" } else { start };
        let end = if end.is_empty() { "heads" } else { end };
        let rows = |side: &'static str| -> Arg {
            if current.is_empty() {
                Arg::One(side)
            } else {
                Arg::Many(current)
            }
        };
        let (upper, lower) = if end == "current" {
            (rows("heads"), Arg::One(start))
        } else if start == "current" {
            (Arg::One(end), rows("base"))
        } else {
            (Arg::One(end), Arg::One(start))
        };
        let (needs, targets) = self.collect_upgrade(upper, lower, true, false, false)?;
        Ok(self
            .walk_order(&needs, &targets)
            .iter()
            .map(|id| &self.nodes[id])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn relative_specs_read_as_alembic_reads_them() {
        let read = |s| relative(s).map(|r| (r.branch, r.symbol, r.text));
        assert_eq!(read("-1"), Some((None, None, "-1")));
        assert_eq!(read("+2"), Some((None, None, "+2")));
        assert_eq!(read("ae10-2"), Some((None, Some("ae10"), "-2")));
        assert_eq!(read("lb@+1"), Some((Some("lb"), None, "+1")));
        assert_eq!(read("lb@ae10+3"), Some((Some("lb"), Some("ae10"), "+3")));
        assert_eq!(read("base+2"), Some((None, Some("base"), "+2")));
        // Only the start has to match.
        assert_eq!(read("ae10+2x"), Some((None, Some("ae10"), "+2")));
        assert_eq!(read("ae10"), None);
        assert_eq!(read("lb@head"), None);
        assert_eq!(read("+"), None);
    }
}
