//! The runner: loads revisions, plans, and applies each step in its own transaction
//! together with the ledger update.

use std::collections::HashMap;
use std::path::Path;

use crate::backend::{self, Backend, BackendError, LogEntry};
use crate::config::Config;
use crate::dialect::Dialect;
use crate::graph::{self, Direction, Graph, GraphError, Step};
use crate::ops::{LogSink, OpState};
use crate::revision::{self, Revision, RevisionError};
use crate::sandbox::{CallError, Sandbox, SandboxError};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Revision(#[from] RevisionError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{target} is already applied (the database is at {}); use `retort downgrade {target}` to go back", .current.join(", "))]
    Behind {
        target: String,
        current: Vec<String>,
    },
    #[error(transparent)]
    Step(Box<StepFailure>),
    #[error(
        "revision {} failed to {} earlier and MariaDB/MySQL cannot roll DDL back: the database \
         may hold part of it. Check it, undo or finish by hand, then record the state with \
         `retort stamp REV` (the revision before it, or the revision itself). The failure was:\n  {}",
        .0.revision, .0.verb(), .0.detail
    )]
    Unresolved(backend::Failure),
}

/// A revision that failed and was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("{}", step_message(*.dialect, .revision, .direction, .failed_op, .last_op, .guest_log, .applied))]
pub struct StepFailure {
    pub dialect: Dialect,
    pub revision: String,
    pub direction: Direction,
    /// The op that returned an error to the guest, if one did.
    pub failed_op: Option<String>,
    /// The last op that succeeded before the failure.
    pub last_op: Option<String>,
    /// The guest's last error-level log line (e.g. its panic message).
    pub guest_log: Option<String>,
    /// Revisions this run applied before the failure; they stay applied.
    pub applied: Vec<String>,
    #[source]
    pub source: StepError,
}

fn step_message(
    dialect: Dialect,
    revision: &str,
    direction: &Direction,
    failed_op: &Option<String>,
    last_op: &Option<String>,
    guest_log: &Option<String>,
    applied: &[String],
) -> String {
    let mut msg = if dialect == Dialect::Mysql {
        format!(
            "revision {revision} failed to {direction}; MariaDB/MySQL commit DDL as it runs, so \
             statements before the failure may remain (recorded in retort_log; upgrade refuses \
             until `retort stamp` records the state)"
        )
    } else {
        format!("revision {revision} failed to {direction} and was rolled back")
    };
    match (failed_op, last_op) {
        (Some(op), _) => msg.push_str(&format!("\n  failing op: {op}")),
        (None, Some(op)) => msg.push_str(&format!("\n  last op that ran: {op}")),
        (None, None) => {}
    }
    if let Some(log) = guest_log {
        msg.push_str(&format!("\n  guest said: {log}"));
    }
    if !applied.is_empty() {
        msg.push_str(&format!(
            "\n  applied before it in this run (kept): {}",
            applied.join(", ")
        ));
    }
    msg
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub revision: String,
    pub direction: Direction,
    pub message: String,
    pub millis: u128,
}

/// A project's revisions and graph, read without compiling anything.
pub struct History {
    pub graph: Graph,
    pub revisions: HashMap<String, Revision>,
}

impl History {
    pub fn load(dir: &Path) -> Result<History, MigrateError> {
        let list = revision::load_dir(dir)?;
        let graph = Graph::new(list.iter().map(|r| r.meta.clone()))?;
        let revisions = list.into_iter().map(|r| (r.meta.id.clone(), r)).collect();
        Ok(History { graph, revisions })
    }
}

/// Called before and after each step.
pub type Progress = Box<dyn Fn(&Step, &Revision, Option<&Applied>) + Send + Sync>;

/// Runs plans against one database.
pub struct Migrator<'a> {
    pub history: &'a History,
    pub backend: &'a Backend,
    pub sandbox: Sandbox,
    pub log: LogSink,
    pub progress: Progress,
}

impl<'a> Migrator<'a> {
    pub fn new(
        config: &Config,
        history: &'a History,
        backend: &'a Backend,
        log: LogSink,
        progress: Progress,
    ) -> Result<Self, MigrateError> {
        let sandbox = Sandbox::new(&config.file.sandbox, config.cache_dir().as_deref())?;
        Ok(Migrator {
            history,
            backend,
            sandbox,
            log,
            progress,
        })
    }

    /// The steps `upgrade target` would run.
    pub async fn plan_upgrade(&self, target: &str) -> Result<Vec<Step>, MigrateError> {
        let current = self.backend.heads().await?;
        let graph = &self.history.graph;
        let target_heads = graph.upgrade_target(target, &current)?;
        let steps = graph::plan_upgrade(graph, &current, &target_heads);
        if steps.is_empty() {
            let at: Vec<&String> = target_heads
                .iter()
                .filter(|t| !current.contains(t))
                .collect();
            if let Some(t) = at.first() {
                return Err(MigrateError::Behind {
                    target: t.to_string(),
                    current,
                });
            }
        }
        Ok(steps)
    }

    /// The steps `downgrade target` would run.
    pub async fn plan_downgrade(&self, target: &str) -> Result<Vec<Step>, MigrateError> {
        let current = self.backend.heads().await?;
        let graph = &self.history.graph;
        let remove = graph.downgrade_removal(target, &current)?;
        Ok(graph::plan_downgrade(graph, &remove))
    }

    /// Runs `steps` in order, each in its own transaction with its ledger update.
    /// Every component is compiled before the first step runs, so a malformed one
    /// stops the run before anything changes.
    pub async fn run(&self, steps: &[Step]) -> Result<Vec<Applied>, MigrateError> {
        if let Some(failure) = self.backend.unresolved_failure().await? {
            return Err(MigrateError::Unresolved(failure));
        }
        let mut components = Vec::with_capacity(steps.len());
        for step in steps {
            let rev = &self.history.revisions[&step.revision];
            components.push(self.sandbox.load(rev)?);
        }
        let mut heads = self.backend.heads().await?;
        let mut applied: Vec<Applied> = Vec::new();
        for (step, component) in steps.iter().zip(&components) {
            let rev = &self.history.revisions[&step.revision];
            (self.progress)(step, rev, None);
            let started = std::time::Instant::now();
            let started_at = backend::now();
            let direction = match step.direction {
                Direction::Up => "up",
                Direction::Down => "down",
            };
            let fail = |source: StepError, state: Option<OpState>, applied: &[Applied]| {
                MigrateError::Step(Box::new(StepFailure {
                    dialect: self.backend.dialect(),
                    revision: step.revision.clone(),
                    direction: step.direction,
                    failed_op: state.as_ref().and_then(|s| s.failed_op.clone()),
                    last_op: state.as_ref().and_then(|s| s.journal.last().cloned()),
                    guest_log: state.and_then(|s| s.last_error_log),
                    applied: applied.iter().map(|a| a.revision.clone()).collect(),
                    source,
                }))
            };
            let tx = self
                .backend
                .begin()
                .await
                .map_err(|e| fail(e.into(), None, &applied))?;
            let state = OpState::new(
                &step.revision,
                self.backend.dialect(),
                tx,
                self.log.clone(),
                self.sandbox.store_limits(),
            );
            let (mut state, mut outcome) =
                self.sandbox.call(component, step.direction, state).await;
            if outcome.is_ok()
                && let Err(e) = state.close_cursors().await
            {
                outcome = Err(CallError::Guest(format!("cannot close its cursors: {e}")));
            }
            let tx = state.take_tx().expect("the state owns the transaction");
            if let Err(e) = outcome {
                // Dropping the transaction rolls it back (on MySQL/MariaDB, only what
                // came after the last DDL statement).
                drop(tx);
                let err = fail(e.into(), Some(state), &applied);
                if self.backend.dialect() == Dialect::Mysql {
                    let detail = match &err {
                        MigrateError::Step(f) => f.to_string(),
                        other => other.to_string(),
                    };
                    let entry = LogEntry {
                        revision: &step.revision,
                        direction,
                        status: "failed",
                        sha256: &rev.sha256,
                        message: &rev.meta.message,
                        detail: &detail,
                        heads: &heads,
                        started_at: started_at.clone(),
                    };
                    // The failure is worth more than an error recording it.
                    let _ = self.backend.record_failure(&entry).await;
                }
                return Err(err);
            }
            let next = graph::heads_after(&self.history.graph, &heads, step);
            let entry = LogEntry {
                revision: &step.revision,
                direction,
                status: "done",
                sha256: &rev.sha256,
                message: &rev.meta.message,
                detail: "",
                heads: &next,
                started_at,
            };
            self.backend
                .finish(tx, &entry)
                .await
                .map_err(|e| fail(e.into(), Some(state), &applied))?;
            heads = next;
            let done = Applied {
                revision: step.revision.clone(),
                direction: step.direction,
                message: rev.meta.message.clone(),
                millis: started.elapsed().as_millis(),
            };
            (self.progress)(step, rev, Some(&done));
            applied.push(done);
        }
        Ok(applied)
    }
}
