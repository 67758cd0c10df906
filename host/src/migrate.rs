//! The runner: loads revisions, plans, and applies each step in its own transaction
//! together with the ledger update.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::backend::{self, Backend, BackendError, LogEntry, Movement, Status, Tx};
use crate::config::Config;
use crate::dialect::Dialect;
use crate::graph::{self, Direction, Graph, GraphError, Step};
use crate::ops::{Activity, ActivitySink, LogSink, OpState};
use crate::policy::Policy;
use crate::revision::{self, Revision, RevisionError};
use crate::sandbox::{CallError, Sandbox, SandboxError};

/// Why planning or running revisions stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A revision component cannot be read (no metadata, a duplicate id, I/O).
    #[error(transparent)]
    Revision(#[from] RevisionError),
    /// The history or a revision spec is wrong (a cycle, an unknown id, several heads).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The database refused, could not be reached, or its lock could not be taken.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A component cannot be compiled or imports what the host does not provide.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A revision failed while it ran (see [`StepFailure`]).
    #[error(transparent)]
    Step(Box<StepFailure>),
    /// Applied revisions whose component changed since they ran (integrity gate).
    #[error(
        "applied revisions changed since they ran; refusing to go on (review, then pass --allow-modified):\n{}",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Modified {
        /// Each changed or missing component.
        problems: Vec<crate::integrity::Problem>,
    },
    /// Another deployer changed the ledger while this run waited for the lock.
    #[error("another deployer changed the database while this run waited for the migration lock (it is now at {}); nothing more was done", if .now.is_empty() { "base".to_owned() } else { .now.join(", ") })]
    Moved {
        /// What this run did before it noticed.
        done: Vec<Applied>,
        /// The heads the ledger holds now.
        now: Vec<String>,
    },
    /// `--transaction all` over a revision that must run outside a transaction.
    #[error(
        "revision {revision} must run outside a transaction, so --transaction all cannot include it: upgrade to the revision before it with --transaction all, then run it on its own"
    )]
    OutsideTransaction {
        /// That revision.
        revision: String,
    },
    /// `--transaction all` on an engine whose DDL commits as it runs.
    #[error(
        "--transaction all needs transactional DDL, which MariaDB/MySQL do not have (each DDL statement commits); use --transaction per-revision"
    )]
    NoTransactionalDdl,
    /// A revision failed while rendering a script (`--sql`), e.g. because it reads rows.
    #[error("{}", offline_message(.revision, *.reads_rows, .failed_op, .reason))]
    Offline {
        /// The revision.
        revision: String,
        /// It called `query`, which a script cannot answer.
        reads_rows: bool,
        /// The op that failed, with its error.
        failed_op: Option<String>,
        /// What the guest (or the trap) said.
        reason: String,
    },
    /// The script's schema model or ledger writes could not be made.
    #[error("cannot render the script: {0}")]
    Render(String),
    /// `downgrade --sql` without `FROM:TO` (a usage error).
    #[error(
        "downgrade --sql needs a range FROM:TO (e.g. head:base): there is no database to start from"
    )]
    NeedsRange,
    /// A failure that nothing rolled back is recorded in the ledger: `stamp` first.
    #[error(
        "revision {} failed to {} earlier and could not be rolled back (MariaDB/MySQL DDL, or a \
         revision that runs outside a transaction): the database may hold part of it. Check it, undo or finish by hand, then record the state with \
         `retort stamp REV` (the revision before it, or the revision itself). The failure was:\n  {}",
        .0.revision, .0.verb(), .0.detail
    )]
    Unresolved(backend::Failure),
}

/// A revision that failed and was rolled back.
#[derive(Debug, thiserror::Error)]
#[error("{}", step_message(self))]
pub struct StepFailure {
    /// The database's dialect (the message says what MariaDB/MySQL keep).
    pub dialect: Dialect,
    /// The connection to the database was lost during the step.
    pub connection_lost: bool,
    /// The revision ran outside a transaction: nothing rolled it back.
    pub outside: bool,
    /// The revision that failed.
    pub revision: String,
    /// Whether it was upgrading or downgrading.
    pub direction: Direction,
    /// The op that returned an error to the guest, if one did.
    pub failed_op: Option<String>,
    /// The last op that succeeded before the failure.
    pub last_op: Option<String>,
    /// The guest's last error-level log line (e.g. its panic message).
    pub guest_log: Option<String>,
    /// Revisions this run applied before the failure; they stay applied.
    pub applied: Vec<String>,
    /// Revisions this run ran before the failure in the same transaction
    /// (`--transaction all`), rolled back with it.
    pub rolled_back: Vec<String>,
    /// The trap, the guest's error, or the database's.
    #[source]
    pub source: StepError,
}

fn offline_message(
    revision: &str,
    reads_rows: bool,
    failed_op: &Option<String>,
    reason: &str,
) -> String {
    let mut msg = if reads_rows {
        format!(
            "revision {revision} reads rows with `query`, which --sql cannot do: the script is \
             rendered with no database. Give the revision an offline path (when `is-offline()` \
             is true, write one set-based statement with `execute`), or run it online"
        )
    } else {
        format!("revision {revision} failed while rendering SQL offline")
    };
    if let Some(op) = failed_op {
        msg.push_str(&format!("\n  failing op: {op}"));
    }
    msg.push_str(&format!("\n  guest said: {reason}"));
    msg
}

fn step_message(f: &StepFailure) -> String {
    let StepFailure {
        dialect,
        revision,
        direction,
        failed_op,
        last_op,
        guest_log,
        applied,
        rolled_back,
        connection_lost,
        outside,
        source,
    } = f;
    // A limit that ran out is named on the first line.
    let limit = match source {
        StepError::Call(call) => call
            .trap_summary()
            .filter(|t| t.contains(" limit "))
            .map(|t| format!(": {t}"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut msg = if *connection_lost {
        format!(
            "revision {revision} failed to {direction}: {}. It was not recorded as applied; {}",
            crate::ops::CONNECTION_LOST,
            if !crate::db::capabilities(*dialect).transactional_ddl {
                "MariaDB/MySQL keep DDL that ran before the loss: check the schema, then `retort stamp` the state"
            } else {
                "the database rolled its transaction back. Run `retort upgrade` again once the database is reachable"
            }
        )
    } else if *outside {
        format!(
            "revision {revision} failed to {direction}{limit}; it runs outside a transaction, so what it \
             did before the failure remains (recorded in retort_log; upgrade refuses until \
             `retort stamp` records the state)"
        )
    } else if !crate::db::capabilities(*dialect).transactional_ddl {
        format!(
            "revision {revision} failed to {direction}{limit}; MariaDB/MySQL commit DDL as it runs, so \
             statements before the failure may remain (recorded in retort_log; upgrade refuses \
             until `retort stamp` records the state)"
        )
    } else {
        format!("revision {revision} failed to {direction} and was rolled back{limit}")
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
    if !rolled_back.is_empty() {
        msg.push_str(&format!(
            "\n  run before it in the same transaction (--transaction all), rolled back too: {}",
            rolled_back.join(", ")
        ));
    }
    msg
}

/// What ended a step: the revision's call, or the database around it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The guest trapped, ran out of a limit, or returned an error.
    #[error(transparent)]
    Call(#[from] CallError),
    /// Beginning, recording or committing the step failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<Direction> for Movement {
    fn from(d: Direction) -> Movement {
        match d {
            Direction::Up => Movement::Up,
            Direction::Down => Movement::Down,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The revision.
    pub revision: String,
    /// Upgraded or downgraded.
    pub direction: Direction,
    /// Its message.
    pub message: String,
    /// How long the step took, in milliseconds.
    pub millis: u128,
    /// The ops the revision ran, in order (its journal; bulk inserts without rows): for
    /// a script only; empty against a database.
    #[serde(skip)]
    pub ops: Vec<crate::op::Op>,
}

/// A project's revisions and graph, read without compiling anything.
pub struct History {
    /// The revision graph.
    pub graph: Graph,
    /// Each revision by id: metadata, path, digest (shared with the plans made from it).
    pub revisions: HashMap<String, Arc<Revision>>,
}

impl History {
    /// Every revision component in `dir` (sorted by file name).
    pub fn load(dir: &Path) -> Result<History, MigrateError> {
        Self::from_revisions(revision::load_dir(dir)?)
    }

    /// A history of revisions read elsewhere (e.g. components embedded in a binary).
    pub fn from_revisions(list: Vec<Revision>) -> Result<History, MigrateError> {
        let mut seen: HashMap<&str, &Path> = HashMap::with_capacity(list.len());
        for rev in &list {
            if let Some(first) = seen.insert(&rev.meta.id, &rev.path) {
                return Err(RevisionError::DuplicateId {
                    id: rev.meta.id.clone(),
                    first: first.to_owned(),
                    second: rev.path.clone(),
                }
                .into());
            }
        }
        let graph = Graph::new(list.iter().map(|r| r.meta.clone()))?;
        let revisions = list
            .into_iter()
            .map(|r| (r.meta.id.clone(), Arc::new(r)))
            .collect();
        Ok(History { graph, revisions })
    }
}

/// Called before and after each step.
pub type Progress = Box<dyn Fn(&Step, &Revision, Option<&Applied>) + Send + Sync>;

/// Runs plans against one database. Every gate is here, so that whoever embeds the
/// library gets them: [`Migrator::migrate`] refuses changed applied components (unless
/// `allow_modified`) and a role with dangerous privileges when the policy requires least
/// privilege (else it warns through `warn`), then takes the lock per transaction,
/// re-plans when another deployer moved the ledger, records failures, and runs every
/// revision within the sandbox's limits and the SQL policy.
pub struct Migrator<'a> {
    /// What guest SQL may do (`[policy]`).
    pub policy: Arc<Policy>,
    /// The revisions.
    pub history: &'a History,
    /// The database.
    pub backend: &'a Backend,
    /// The engine revisions run on, with its limits and compile cache.
    pub sandbox: Sandbox,
    /// Where guest log lines go.
    pub log: LogSink,
    /// Called before and after each step.
    pub progress: Progress,
    /// Told the plan's length, and each op, statement and rows read as they happen.
    pub activity: Option<ActivitySink>,
    /// One transaction per revision, or one for the run.
    pub transaction: TransactionMode,
    /// Run even though an applied revision's component changed since it ran.
    pub allow_modified: bool,
    /// Where warnings go (a role with dangerous privileges); nowhere by default.
    pub warn: Box<dyn Fn(&str) + Send + Sync>,
}

impl<'a> Migrator<'a> {
    /// A migrator with the settings' limits, policy and cache, one transaction per
    /// revision, and no `allow_modified`.
    pub fn new(
        config: &Config,
        history: &'a History,
        backend: &'a Backend,
        log: LogSink,
        progress: Progress,
    ) -> Result<Self, MigrateError> {
        let sandbox = Sandbox::new(&config.file.sandbox, config.cache_dir().as_deref())?
            .with_read_only_dirs(config.read_only_dirs());
        Ok(Migrator {
            policy: Arc::new(config.file.policy.clone()),
            history,
            backend,
            sandbox,
            log,
            progress,
            activity: None,
            transaction: TransactionMode::PerRevision,
            allow_modified: false,
            warn: Box::new(|_| {}),
        })
    }

    /// The gates before anything runs: applied components unchanged (unless
    /// `allow_modified`), and the role's privileges (refused with `[policy]
    /// require-least-privilege`, else a warning).
    async fn gates(&self) -> Result<(), MigrateError> {
        let problems =
            crate::integrity::check_applied(self.history, &self.backend.applied_digests().await?);
        if !problems.is_empty() && !self.allow_modified {
            return Err(MigrateError::Modified { problems });
        }
        for warning in self
            .backend
            .check_privileges(self.policy.require_least_privilege)
            .await?
        {
            (self.warn)(&warning);
        }
        Ok(())
    }

    /// What `upgrade target` or `downgrade target` would run, from the ledger as it is.
    pub async fn plan(&self, direction: Direction, target: &str) -> Result<Plan, MigrateError> {
        plan(self.history, self.backend, direction, target).await
    }

    /// Carries out a plan after the gates ([`Migrator`]), planning again when another
    /// deployer moved the ledger while
    /// this run waited for the lock: an upgrade goes on to the same target heads from
    /// where the database is now (often: nothing left to do); a downgrade stops and says
    /// so.
    pub async fn migrate(&self, plan: Plan) -> Result<Vec<Applied>, MigrateError> {
        self.gates().await?;
        if plan.steps.is_empty() {
            return Ok(Vec::new());
        }
        let graph = &self.history.graph;
        let Plan {
            mut start,
            mut steps,
            target_heads,
        } = plan;
        let mut applied = Vec::new();
        loop {
            match self.run(&steps, &start).await {
                Ok(done) => {
                    applied.extend(done);
                    return Ok(applied);
                }
                Err(MigrateError::Moved { done, now }) => {
                    applied.extend(done);
                    let Some(target_heads) = &target_heads else {
                        return Err(MigrateError::Moved { done: applied, now });
                    };
                    graph.check_current(&now)?;
                    steps = graph::plan_upgrade(graph, &now, target_heads);
                    start = now;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `steps`, planned from the heads `start`, in order, each in its own
    /// transaction with its ledger update (or all in one, with `--transaction all`).
    /// Each transaction starts by taking the migration lock and checking that the
    /// ledger is still where the plan left it; if another deployer moved it, the run
    /// stops with [`MigrateError::Moved`]. Every component is checked before the first
    /// step runs, so a malformed one stops the run before anything changes; they compile
    /// on other threads while the steps run ([`crate::sandbox::Pipeline`]).
    pub(crate) async fn run(
        &self,
        steps: &[Step],
        start: &[String],
    ) -> Result<Vec<Applied>, MigrateError> {
        if let Some(failure) = self.backend.unresolved_failure().await? {
            return Err(MigrateError::Unresolved(failure));
        }
        let whole_run = self.transaction == TransactionMode::All;
        if whole_run && !self.backend.capabilities().transactional_ddl {
            return Err(MigrateError::NoTransactionalDdl);
        }
        let mut target = Live {
            backend: self.backend,
            whole_run,
            shared: None,
        };
        let runner = Runner {
            history: self.history,
            sandbox: &self.sandbox,
            policy: self.policy.clone(),
            log: self.log.clone(),
            progress: Some(&self.progress),
            activity: self.activity.clone(),
            whole_run,
        };
        runner.drive(&mut target, steps, 0, start).await
    }
}

/// The one runner loop, over a [`Target`]: a live database ([`Live`]) or a script
/// ([`ScriptTarget`]).
struct Runner<'r> {
    history: &'r History,
    sandbox: &'r Sandbox,
    policy: Arc<Policy>,
    log: LogSink,
    progress: Option<&'r Progress>,
    activity: Option<ActivitySink>,
    /// `--transaction all`: every step in one transaction.
    whole_run: bool,
}

/// A step that failed, as the runner knows it; the target makes the error of it.
struct Failed<'f> {
    step: &'f Step,
    outside: bool,
    source: StepError,
    state: Option<OpState>,
    /// Revisions this run recorded before the failure.
    before: Vec<String>,
}

/// What a target gives a step to run in.
enum Opened {
    Tx(Tx),
    /// Another deployer moved the ledger to these heads since the plan was made.
    Moved(Vec<String>),
}

/// Where the runner's steps go. The runner calls each revision in the sandbox and keeps
/// the heads; the target owns transactions, locks and the ledger (or the script).
trait Target {
    fn dialect(&self) -> Dialect;
    /// The transaction (or script buffer) a step's ops run in. A database takes the
    /// migration lock here and sees whether the ledger is still at `heads`.
    async fn open(
        &mut self,
        outside: bool,
        recording: bool,
        heads: &[String],
    ) -> Result<Opened, BackendError>;
    /// Ends a statement the wall-clock limit left running.
    async fn interrupt(&self);
    /// The error a failed step ends the run with.
    fn failure(&self, failed: Failed<'_>) -> MigrateError;
    /// Ends a failed step's transaction: rolled back, or recorded as failed where
    /// nothing can roll it back.
    async fn failed(&mut self, tx: Tx, entry: &LogEntry<'_>, outside: bool);
    /// Records a step that succeeded (`recording`; a replayed step only gives its
    /// transaction back) and commits it.
    async fn finish(
        &mut self,
        tx: Tx,
        entry: &LogEntry<'_>,
        rev: &Revision,
        outside: bool,
        recording: bool,
    ) -> Result<(), BackendError>;
    /// After the last step (`--transaction all` commits here).
    async fn end(&mut self) -> Result<(), BackendError>;
}

impl Runner<'_> {
    /// Runs `steps` in order from the heads `start`. The first `replay` steps run only
    /// so that the target learns the schema they build (a script's model); they are
    /// neither recorded nor reported.
    async fn drive<T: Target>(
        &self,
        target: &mut T,
        steps: &[Step],
        replay: usize,
        start: &[String],
    ) -> Result<Vec<Applied>, MigrateError> {
        let planned: Vec<Arc<Revision>> = steps
            .iter()
            .map(|step| self.history.revisions[&step.revision].clone())
            .collect();
        let mut pipeline = self.sandbox.pipeline(planned)?;
        if let Some(sink) = &self.activity {
            sink("", Activity::Plan(steps.len() - replay));
        }
        let mut heads = start.to_vec();
        let mut applied: Vec<Applied> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let recording = i >= replay;
            let rev = &self.history.revisions[&step.revision];
            // Compiled ahead on other threads; waited for before the step's transaction
            // opens, so that no lock is held while it compiles.
            let component = pipeline.next().await?;
            let component = &component;
            let progress = self.progress.filter(|_| recording);
            if let Some(progress) = progress {
                progress(step, rev, None);
            }
            let started = std::time::Instant::now();
            let started_at = backend::now();
            let outside = !rev.meta.transactional;
            let before = |applied: &[Applied]| applied.iter().map(|a| a.revision.clone()).collect();
            if outside && self.whole_run {
                return Err(MigrateError::OutsideTransaction {
                    revision: step.revision.clone(),
                });
            }
            let tx = match target.open(outside, recording, &heads).await {
                Ok(Opened::Tx(tx)) => tx,
                Ok(Opened::Moved(now)) => return Err(MigrateError::Moved { done: applied, now }),
                // Waiting for the lock is not this revision's failure.
                Err(e @ BackendError::LockTimeout { .. }) => return Err(e.into()),
                Err(e) => {
                    return Err(target.failure(Failed {
                        step,
                        outside,
                        source: e.into(),
                        state: None,
                        before: before(&applied),
                    }));
                }
            };
            let state = OpState::new(
                &step.revision,
                target.dialect(),
                tx,
                self.log.clone(),
                self.sandbox.store_limits(),
            )
            .with_policy(self.policy.clone())
            .with_call_limits(self.sandbox.call_limits())
            .with_activity(self.activity.clone().filter(|_| recording));
            let (mut state, mut outcome) =
                self.sandbox.call(component, step.direction, state).await;
            if matches!(outcome, Err(CallError::TimedOut(_))) {
                // The database may still be running the guest's last statement: end it,
                // so that rolling back does not wait for it.
                target.interrupt().await;
            }
            if outcome.is_ok()
                && let Err(e) = state.close_cursors().await
            {
                outcome = Err(CallError::Guest(format!("cannot close its cursors: {e}")));
            }
            // A script's journal is its steps' ops (autogenerate, the dry-run listing);
            // against a database nothing reads it after the step.
            let script = state.offline();
            let tx = state.take_tx().expect("the state owns the transaction");
            let entry = |status, detail, heads| LogEntry {
                revision: &step.revision,
                direction: step.direction.into(),
                status,
                sha256: &rev.sha256,
                message: &rev.meta.message,
                detail,
                heads,
                started_at: started_at.clone(),
            };
            if let Err(e) = outcome {
                let err = target.failure(Failed {
                    step,
                    outside,
                    source: e.into(),
                    state: Some(state),
                    before: before(&applied),
                });
                let detail = match &err {
                    MigrateError::Step(f) => f.to_string(),
                    other => other.to_string(),
                };
                target
                    .failed(tx, &entry(Status::Failed, &detail, &heads), outside)
                    .await;
                return Err(err);
            }
            let next = if recording {
                graph::heads_after(&self.history.graph, &heads, step)
            } else {
                heads.clone()
            };
            let done = entry(Status::Done, "", &next);
            if let Err(e) = target.finish(tx, &done, rev, outside, recording).await {
                return Err(target.failure(Failed {
                    step,
                    outside,
                    source: e.into(),
                    state: Some(state),
                    before: before(&applied),
                }));
            }
            if !recording {
                continue;
            }
            heads = next;
            let done = Applied {
                revision: step.revision.clone(),
                direction: step.direction,
                message: rev.meta.message.clone(),
                millis: started.elapsed().as_millis(),
                ops: if script {
                    std::mem::take(&mut state.journal)
                } else {
                    Vec::new()
                },
            };
            if let Some(progress) = progress {
                progress(step, rev, Some(&done));
            }
            applied.push(done);
        }
        target.end().await?;
        Ok(applied)
    }
}

/// A live database: each step in a transaction that takes the migration lock, records
/// the step in the ledger and commits (or one transaction for the run).
struct Live<'b> {
    backend: &'b Backend,
    whole_run: bool,
    /// The run's transaction with `--transaction all`, between steps.
    shared: Option<Tx>,
}

impl Target for Live<'_> {
    fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    async fn open(
        &mut self,
        outside: bool,
        _recording: bool,
        heads: &[String],
    ) -> Result<Opened, BackendError> {
        if let Some(tx) = self.shared.take() {
            return Ok(Opened::Tx(tx));
        }
        let mut tx = if outside {
            self.backend.begin_outside().await?
        } else {
            self.backend.begin().await?
        };
        match Backend::heads_in(&mut tx).await {
            Ok(now) if same_heads(&now, heads) => Ok(Opened::Tx(tx)),
            Ok(now) => {
                self.backend.abandon(tx).await;
                Ok(Opened::Moved(now))
            }
            Err(e) => {
                self.backend.abandon(tx).await;
                Err(e)
            }
        }
    }

    async fn interrupt(&self) {
        self.backend.interrupt().await;
    }

    fn failure(&self, failed: Failed<'_>) -> MigrateError {
        let Failed {
            step,
            outside,
            source,
            state,
            before,
        } = failed;
        let failed_op = state.as_ref().and_then(|s| s.failed_op.clone());
        let connection_lost =
            lost_connection(&source, state.as_ref().is_some_and(|s| s.connection_lost));
        let (applied, rolled_back) = if self.whole_run {
            (Vec::new(), before)
        } else {
            (before, Vec::new())
        };
        MigrateError::Step(Box::new(StepFailure {
            dialect: self.backend.dialect(),
            connection_lost,
            outside,
            revision: step.revision.clone(),
            direction: step.direction,
            failed_op,
            last_op: state
                .as_ref()
                .and_then(|s| s.journal.last().map(ToString::to_string)),
            guest_log: state.and_then(|s| s.last_error_log),
            applied,
            rolled_back,
            source,
        }))
    }

    async fn failed(&mut self, tx: Tx, entry: &LogEntry<'_>, outside: bool) {
        // Dropping the transaction rolls it back (on MySQL/MariaDB, only what came after
        // the last DDL statement); outside a transaction nothing does. The failure is
        // worth more than an error recording it.
        if outside {
            let _ = self.backend.record_outside(tx, entry).await;
        } else {
            self.backend.abandon(tx).await;
            if !self.backend.capabilities().transactional_ddl {
                let _ = self.backend.record_failure(entry).await;
            }
        }
    }

    async fn finish(
        &mut self,
        mut tx: Tx,
        entry: &LogEntry<'_>,
        _rev: &Revision,
        outside: bool,
        _recording: bool,
    ) -> Result<(), BackendError> {
        if outside {
            self.backend.record_outside(tx, entry).await
        } else if self.whole_run {
            if let Err(e) = self.backend.record_step(&mut tx, entry).await {
                self.backend.abandon(tx).await;
                return Err(e);
            }
            self.shared = Some(tx);
            Ok(())
        } else {
            self.backend.finish(tx, entry).await
        }
    }

    async fn end(&mut self) -> Result<(), BackendError> {
        match self.shared.take() {
            Some(tx) => self.backend.commit(tx).await,
            None => Ok(()),
        }
    }
}

/// A script (`--sql`): each step's statements between the dialect's transaction
/// statements, followed by its ledger writes; no database is opened.
struct ScriptTarget {
    dialect: Dialect,
    /// The script's schema model and statement buffer, lent to each step.
    script: Option<backend::Script>,
    out: String,
}

impl Target for ScriptTarget {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn open(
        &mut self,
        _outside: bool,
        recording: bool,
        _heads: &[String],
    ) -> Result<Opened, BackendError> {
        let mut script = self
            .script
            .take()
            .expect("the script is back between steps");
        script.recording = recording;
        script.statements.clear();
        Ok(Opened::Tx(Box::new(script)))
    }

    async fn interrupt(&self) {}

    fn failure(&self, failed: Failed<'_>) -> MigrateError {
        let failed_op = failed.state.and_then(|s| s.failed_op);
        MigrateError::Offline {
            revision: failed.step.revision.clone(),
            reads_rows: matches!(&failed_op, Some(op) if op.starts_with("query")),
            failed_op,
            reason: match failed.source {
                StepError::Call(e) => e.to_string(),
                StepError::Backend(e) => format!("{e}: {}", error_chain(&e)),
            },
        }
    }

    async fn failed(&mut self, _tx: Tx, _entry: &LogEntry<'_>, _outside: bool) {}

    async fn finish(
        &mut self,
        mut tx: Tx,
        entry: &LogEntry<'_>,
        rev: &Revision,
        _outside: bool,
        recording: bool,
    ) -> Result<(), BackendError> {
        let written = if recording {
            backend::write_ledger(&mut tx, self.dialect, entry).await
        } else {
            Ok(())
        };
        let script = tx.into_script().expect("a script stays a script");
        self.script = Some(*script);
        written.map_err(|source| BackendError::Query {
            doing: format!("rendering the ledger writes of {}", entry.revision),
            source,
        })?;
        if !recording {
            return Ok(());
        }
        let script = self.script.as_ref().expect("just put back");
        let down = if rev.meta.down.is_empty() {
            "<base>".to_owned()
        } else {
            rev.meta.down.join(", ")
        };
        let (from, to) = match entry.direction {
            Movement::Down => (rev.meta.id.clone(), down),
            _ => (down, rev.meta.id.clone()),
        };
        let begin = format!("{};", crate::db::capabilities(self.dialect).begin);
        let commit = "COMMIT;";
        let direction = match entry.direction {
            Movement::Down => Direction::Down,
            _ => Direction::Up,
        };
        self.out.push_str(&format!(
            "-- Running {direction} {from} -> {to}, {}\n{begin}\n\n",
            rev.meta.message
        ));
        for sql in &script.statements {
            self.out.push_str(&terminated(sql));
        }
        self.out.push_str(&format!("{commit}\n\n"));
        Ok(())
    }

    async fn end(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// An error's causes, joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out.join(": ")
}

/// What `upgrade target` or `downgrade target` would run from the ledger as it is:
/// nothing is compiled (no sandbox is needed to plan).
pub async fn plan(
    history: &History,
    backend: &Backend,
    direction: Direction,
    target: &str,
) -> Result<Plan, MigrateError> {
    let start = backend.heads().await?;
    let graph = &history.graph;
    if direction == Direction::Down {
        let remove = graph.downgrade_removal(target, &start)?;
        let steps = graph::plan_downgrade(graph, &start, &remove);
        return Ok(Plan {
            start,
            steps,
            target_heads: None,
        });
    }
    let target_heads = graph.upgrade_target(target, &start)?;
    // A target already applied (or below what is) plans nothing, as in Alembic.
    let steps = graph::plan_upgrade(graph, &start, &target_heads);
    Ok(Plan {
        start,
        steps,
        target_heads: Some(target_heads),
    })
}

/// The steps a run takes, and where they start.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The heads the plan starts from (the ledger when it was made).
    pub start: Vec<String>,
    /// The steps, in the order they run.
    pub steps: Vec<Step>,
    /// For an upgrade, the heads it goes to (planning again aims there).
    target_heads: Option<Vec<String>>,
}

/// The same set of heads, whatever the order.
fn same_heads(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// True when a step failed because the database connection went away.
/// (An op that met the loss says so in its state, whatever the guest then did.)
fn lost_connection(source: &StepError, an_op_met_it: bool) -> bool {
    an_op_met_it
        || matches!(source, StepError::Backend(BackendError::Query { source, .. })
            if crate::db::is_connection_lost(source))
}

/// How a run uses transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransactionMode {
    /// Each revision in its own transaction, with its ledger update (the default).
    #[default]
    PerRevision,
    /// The whole run in one transaction: all revisions or none (SQLite, PostgreSQL).
    All,
}

/// What `--sql` renders.
pub struct ScriptPlan<'a> {
    /// The script's SQL dialect.
    pub dialect: Dialect,
    /// The heads the script starts from (empty: base).
    pub start: Vec<String>,
    /// The steps it records, in order.
    pub steps: Vec<Step>,
    /// `upgrade`, `downgrade` or `stamp` (for the header).
    pub command: &'a str,
}

impl ScriptPlan<'static> {
    /// The plan of `upgrade --sql RANGE` / `downgrade --sql RANGE`: `FROM:TO`, or for an
    /// upgrade just `TO` (from base). A downgrade needs the range: there is no database
    /// to start from.
    pub fn for_range(
        graph: &Graph,
        dialect: Dialect,
        range: &str,
        direction: Direction,
    ) -> Result<Self, MigrateError> {
        let (from, to) = match (range.split_once(':'), direction) {
            (Some((from, to)), _) => (from, to),
            (None, Direction::Up) => ("base", range),
            (None, Direction::Down) => return Err(MigrateError::NeedsRange),
        };
        let start = match from {
            "" | "base" => Vec::new(),
            spec => graph.upgrade_target(spec, &[])?,
        };
        let steps = match direction {
            Direction::Up => {
                let target = graph.upgrade_target(to, &start)?;
                graph::plan_upgrade(graph, &start, &target)
            }
            Direction::Down => {
                graph::plan_downgrade(graph, &start, &graph.downgrade_removal(to, &start)?)
            }
        };
        Ok(ScriptPlan {
            dialect,
            start,
            steps,
            command: match direction {
                Direction::Up => "upgrade",
                Direction::Down => "downgrade",
            },
        })
    }
}

/// A script and what each revision in it did.
pub struct Rendered {
    /// The script.
    pub sql: String,
    /// The steps the script records, each with the ops it ran (its journal).
    pub applied: Vec<Applied>,
}

/// Renders a plan as one SQL script, with no database: each revision runs against a
/// script instead of a connection (`is-offline()` is true, `query` fails with `offline`),
/// between the dialect's transaction statements and followed by its ledger writes.
/// Earlier revisions are replayed first, unrecorded, so that the schema they built is
/// known (SQLite's table rebuilds, MariaDB's `MODIFY COLUMN`).
pub async fn render_script(
    config: &Config,
    history: &History,
    plan: &ScriptPlan<'_>,
    log: LogSink,
) -> Result<String, MigrateError> {
    Ok(run_script(config, history, plan, log).await?.sql)
}

/// [`render_script`], with each recorded step's ops.
pub async fn run_script(
    config: &Config,
    history: &History,
    plan: &ScriptPlan<'_>,
    log: LogSink,
) -> Result<Rendered, MigrateError> {
    let graph = &history.graph;
    let d = plan.dialect;
    let sandbox = Sandbox::new(&config.file.sandbox, config.cache_dir().as_deref())?
        .with_read_only_dirs(config.read_only_dirs());
    let script = backend::Script::new(d)
        .await
        .map_err(|e| MigrateError::Render(format!("cannot start the schema model: {e}")))?;
    let mut out = format!(
        "-- Generated by retort {} for {}: {} {}\n-- Starts at {}. Run it as a whole (sqlite3, psql -v ON_ERROR_STOP=1, mariadb).\n\n",
        env!("CARGO_PKG_VERSION"),
        d.name(),
        plan.command,
        plan.steps
            .last()
            .map_or("(nothing)".into(), |s| s.revision.clone()),
        if plan.start.is_empty() {
            "base".into()
        } else {
            plan.start.join(", ")
        },
    );
    let caps = crate::db::capabilities(d);
    out.push_str(caps.script_preamble);
    if plan.start.is_empty() {
        for sql in backend::ledger_tables(d) {
            out.push_str(&format!("{sql};\n\n"));
        }
    }
    // Replay what is already applied, only to learn the schema (where the engine's ops
    // read it).
    let replay = if caps.script_replays {
        graph::plan_upgrade(graph, &[], &plan.start)
    } else {
        Vec::new()
    };
    let replayed = replay.len();
    let steps: Vec<Step> = replay
        .into_iter()
        .chain(plan.steps.iter().cloned())
        .collect();
    let mut target = ScriptTarget {
        dialect: d,
        script: Some(script),
        out,
    };
    let runner = Runner {
        history,
        sandbox: &sandbox,
        policy: Arc::new(config.file.policy.clone()),
        log,
        progress: None,
        activity: None,
        whole_run: false,
    };
    let applied = runner
        .drive(&mut target, &steps, replayed, &plan.start)
        .await?;
    Ok(Rendered {
        sql: target.out,
        applied,
    })
}

/// A statement as a script holds it: ended by `;`, on a line of its own when the
/// statement holds a line comment (which would otherwise swallow the `;` and join the
/// next statement to this one).
fn terminated(sql: &str) -> String {
    if sql.contains("--") || sql.contains('#') {
        format!("{sql}\n;\n\n")
    } else {
        format!("{sql};\n\n")
    }
}

/// The statements `stamp --sql` renders.
pub async fn render_stamp(dialect: Dialect, heads: &[String]) -> Result<String, MigrateError> {
    let mut script = backend::Script::new(dialect)
        .await
        .map_err(|e| MigrateError::Render(e.to_string()))?;
    script.recording = true;
    let mut tx: Tx = Box::new(script);
    let message = format!(
        "stamp {}",
        if heads.is_empty() {
            "base".into()
        } else {
            heads.join(", ")
        }
    );
    let entry = LogEntry {
        revision: heads.first().map_or("base", String::as_str),
        direction: Movement::Stamp,
        status: Status::Done,
        sha256: "",
        message: &message,
        detail: "",
        heads,
        started_at: backend::now(),
    };
    backend::write_ledger(&mut tx, dialect, &entry)
        .await
        .map_err(|e| MigrateError::Render(e.to_string()))?;
    let script = tx.into_script().expect("a script stays a script");
    let mut out = format!(
        "-- Generated by retort {} for {}: {message}\n\n",
        env!("CARGO_PKG_VERSION"),
        dialect.name()
    );
    for sql in backend::ledger_tables(dialect)
        .iter()
        .chain(&script.statements)
    {
        out.push_str(&format!("{sql};\n\n"));
    }
    Ok(out)
}
