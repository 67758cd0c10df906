//! The library's front door: a [`Project`] (settings and revisions) and a [`Database`]
//! it migrates. The `retort` command line is built on these calls; an application that
//! migrates its own database at start-up uses the same ones, with the same gates: the
//! refusal to run when an applied revision's component changed, the migration lock and
//! the re-plan under it, the failure ledger, the sandbox's limits and the SQL policy.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! # let dir = tempfile::tempdir()?;
//! # let url = format!("sqlite:{}", dir.path().join("app.db").display());
//! # let component = retort::testing::execute_component("0001", &[],
//! #     "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "DROP TABLE notes");
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use retort::{Project, RunOptions};
//!
//! // Revisions given in code (an application would use include_bytes!), or
//! // `Project::open("retort.toml")` for a project on disk.
//! let project = Project::from_components([("0001_notes.wasm", component)])?;
//! let db = project.connect(&url).await?;
//! // Progress, guest log lines and warnings go where the options say.
//! let done = Arc::new(AtomicUsize::new(0));
//! let counter = done.clone();
//! let options = RunOptions {
//!     progress: Arc::new(move |_step, _rev, finished| {
//!         if finished.is_some() {
//!             counter.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }),
//!     ..RunOptions::default()
//! };
//! let applied = db.upgrade("head", &options).await?;
//! assert_eq!(applied.len(), 1);
//! assert_eq!(done.load(Ordering::Relaxed), 1);
//! assert_eq!(db.current().await?, ["0001"]);
//! // A second start finds nothing to do.
//! assert!(db.upgrade("head", &RunOptions::default()).await?.is_empty());
//! db.downgrade("base", &RunOptions::default()).await?;
//! assert!(db.current().await?.is_empty());
//! db.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?; Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, Session};
use crate::config::{Config, ConfigError};
use crate::graph::{Direction, Graph};
use crate::migrate::{Applied, History, MigrateError, Migrator, Plan, TransactionMode};
use crate::ops::LogSink;
use crate::revision::Revision;

/// What the library's calls fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot be read or name no usable database.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything from reading revisions to running them.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

impl From<crate::backend::BackendError> for Error {
    fn from(e: crate::backend::BackendError) -> Self {
        Error::Migrate(e.into())
    }
}

impl From<crate::graph::GraphError> for Error {
    fn from(e: crate::graph::GraphError) -> Self {
        Error::Migrate(e.into())
    }
}

impl From<crate::revision::RevisionError> for Error {
    fn from(e: crate::revision::RevisionError) -> Self {
        Error::Migrate(e.into())
    }
}

/// A project: its settings (`retort.toml`, or the defaults) and its revisions, read
/// without compiling anything.
pub struct Project {
    config: Config,
    history: History,
}

impl Project {
    /// The project `retort.toml` at `path` describes, with the revision components in its
    /// `[migrations] components` directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Project, Error> {
        Self::from_config(Config::load(path.as_ref())?)
    }

    /// The project of settings already read: its revisions from their directory.
    pub fn from_config(config: Config) -> Result<Project, Error> {
        let history = History::load(&config.components_dir())?;
        Ok(Project { config, history })
    }

    /// A project whose revision components are given in code, as (name, bytes) pairs:
    /// the name stands for a path in messages (e.g. `"0001_users.wasm"`), the bytes are
    /// a component with Retort's metadata (`retort build` or `retort pack` made it).
    /// Settings are the defaults, with no compile cache; see [`Project::with_config`].
    pub fn from_components<N, B>(
        components: impl IntoIterator<Item = (N, B)>,
    ) -> Result<Project, Error>
    where
        N: Into<std::path::PathBuf>,
        B: Into<Arc<[u8]>>,
    {
        let revisions = components
            .into_iter()
            .map(|(name, bytes)| Revision::from_bytes(name, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let history = History::from_revisions(revisions)?;
        let mut config = Config::default_in(Path::new("."));
        config.file.sandbox.cache_dir = Default::default();
        Ok(Project { config, history })
    }

    /// Replaces the settings (limits, policy, cache) while keeping the revisions.
    pub fn with_config(mut self, config: Config) -> Project {
        self.config = config;
        self
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The revisions and their graph.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The revision graph (heads, branches, specs like `head` or `ae10@-1`).
    pub fn graph(&self) -> &Graph {
        &self.history.graph
    }

    /// Opens the database at `url`, its session bounded by the sandbox's time limit and
    /// a 60-second wait for the migration lock.
    pub async fn connect(&self, url: &str) -> Result<Database<'_>, Error> {
        self.connect_with(Some(url), Duration::from_secs(60)).await
    }

    /// Opens the database at `url`, or with `None` the one the settings name
    /// (`RETORT_DATABASE_URL`, `retort.toml`, `DATABASE_URL`), waiting up to
    /// `lock_timeout` for another deployer's lock.
    pub async fn connect_with(
        &self,
        url: Option<&str>,
        lock_timeout: Duration,
    ) -> Result<Database<'_>, Error> {
        let url = self.config.database_url(url)?;
        let timeout = self.config.file.sandbox.timeout_secs;
        let session = Session {
            lock_timeout,
            call_limit: (timeout > 0).then(|| Duration::from_secs(timeout)),
        };
        let backend = Backend::connect_with(&url, session).await?;
        Ok(Database {
            project: self,
            backend,
        })
    }
}

/// Called before each step (`None`) and after it (`Some`, with what it did).
pub type ProgressFn = Arc<dyn Fn(&crate::graph::Step, &Revision, Option<&Applied>) + Send + Sync>;

/// How [`Database::upgrade`] and [`Database::downgrade`] run.
#[derive(Clone)]
pub struct RunOptions {
    /// One transaction per revision (the default), or one for the run.
    pub transaction: TransactionMode,
    /// Run even though an applied revision's component changed since it ran.
    pub allow_modified: bool,
    /// Traps carry the guest's wasm backtrace.
    pub backtraces: bool,
    /// Where guest log lines go (nowhere by default).
    pub log: LogSink,
    /// Called before each step (`None`) and after it (`Some`).
    pub progress: ProgressFn,
    /// Told the plan's length, then each op, statement and rows read as they happen
    /// (progress displays, `-v`); none by default.
    pub activity: Option<crate::ops::ActivitySink>,
    /// Where warnings go (a role with dangerous privileges); nowhere by default.
    pub warn: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            transaction: TransactionMode::PerRevision,
            allow_modified: false,
            backtraces: false,
            log: Arc::new(|_, _, _| {}),
            progress: Arc::new(|_, _, _| {}),
            activity: None,
            warn: Arc::new(|_| {}),
        }
    }
}

/// A database a [`Project`] migrates.
pub struct Database<'p> {
    project: &'p Project,
    backend: Backend,
}

impl Database<'_> {
    /// The heads the version table holds (empty: nothing applied).
    pub async fn current(&self) -> Result<Vec<String>, Error> {
        Ok(self.backend.heads().await?)
    }

    /// A revision that failed and was not rolled back, until `stamp` resolves it.
    pub async fn unresolved_failure(&self) -> Result<Option<crate::backend::Failure>, Error> {
        Ok(self.backend.unresolved_failure().await?)
    }

    /// The database's URL, its password masked.
    pub fn url(&self) -> &str {
        self.backend.url()
    }

    /// The connection underneath (ledger reads, privileges).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    fn migrator(&self, options: RunOptions) -> Result<Migrator<'_>, Error> {
        let RunOptions {
            transaction,
            allow_modified,
            backtraces,
            log,
            progress,
            activity,
            warn,
        } = options;
        let project = self.project;
        let mut migrator = Migrator::new(
            &project.config,
            &project.history,
            &self.backend,
            log,
            Box::new(move |step, rev, done| progress(step, rev, done)),
        )?;
        migrator.transaction = transaction;
        migrator.activity = activity;
        migrator.allow_modified = allow_modified;
        migrator.sandbox = migrator.sandbox.with_backtraces(backtraces);
        migrator.warn = Box::new(move |warning| warn(warning));
        Ok(migrator)
    }

    /// What `upgrade target` or `downgrade target` would run from where the database
    /// is; nothing is compiled or changed.
    pub async fn plan(&self, direction: Direction, target: &str) -> Result<Plan, Error> {
        let project = self.project;
        Ok(crate::migrate::plan(&project.history, &self.backend, direction, target).await?)
    }

    /// Applies revisions up to `target` (`head`, `heads`, an id or prefix, `+N`,
    /// `BRANCH@head`); returns what ran. Nothing to do is an empty list.
    pub async fn upgrade(&self, target: &str, options: &RunOptions) -> Result<Vec<Applied>, Error> {
        self.move_to(Direction::Up, target, options).await
    }

    /// Reverts revisions down to `target` (`base`, an id or prefix, `-N`).
    pub async fn downgrade(
        &self,
        target: &str,
        options: &RunOptions,
    ) -> Result<Vec<Applied>, Error> {
        self.move_to(Direction::Down, target, options).await
    }

    /// Plans and runs `direction` to `target` with every gate ([`Migrator::migrate`]).
    pub async fn run(
        &self,
        direction: Direction,
        target: &str,
        options: RunOptions,
    ) -> Result<Vec<Applied>, Error> {
        let migrator = self.migrator(options)?;
        let plan = migrator.plan(direction, target).await?;
        Ok(migrator.migrate(plan).await?)
    }

    /// Runs a plan made by [`Database::plan`], with every gate ([`Migrator::migrate`]):
    /// planning again under the lock when another deployer moved the ledger.
    pub async fn run_plan(&self, plan: Plan, options: RunOptions) -> Result<Vec<Applied>, Error> {
        Ok(self.migrator(options)?.migrate(plan).await?)
    }

    async fn move_to(
        &self,
        direction: Direction,
        target: &str,
        options: &RunOptions,
    ) -> Result<Vec<Applied>, Error> {
        self.run(direction, target, options.clone()).await
    }

    /// Sets the version table to `revisions` without running any (`stamp`); with
    /// `purge`, whatever the table holds is replaced unread. Returns the heads written.
    pub async fn stamp(&self, revisions: &[String], purge: bool) -> Result<Vec<String>, Error> {
        let current = if purge {
            Vec::new()
        } else {
            self.backend.heads().await?
        };
        let heads = self
            .project
            .history
            .graph
            .stamp_target(revisions, &current)?;
        self.backend.stamp(&heads).await?;
        Ok(heads)
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.backend.close().await;
    }
}
