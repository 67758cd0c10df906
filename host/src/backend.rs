//! A database Retort migrates: connecting (through the engine of its URL's scheme, one
//! module per engine in crate::db), the migration lock around each transaction, and the
//! ledger tables. Knows nothing about wasm.
//!
//! Ledger tables (docs/ledger.md, readable with plain SQL):
//! - `retort_version(version_num)`: one row per applied head, as Alembic's
//!   `alembic_version`.
//! - `retort_log`: one row per revision applied, reverted or failed, and per stamp, with
//!   the component's SHA-256.

use std::time::Duration;

use crate::db::{LockWait, Locked, query_err};
use crate::dialect::Dialect;
use crate::wit::Value;

pub(crate) use crate::db::{Script, Tx};

/// What went wrong with the database (URLs in it have their secrets masked).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A URL whose scheme names no engine Retort has.
    #[error(
        "unsupported database URL {url:?}: use sqlite:PATH, postgres://..., mysql://... or mariadb://..."
    )]
    Scheme {
        /// The URL, masked.
        url: String,
    },
    /// The database could not be reached or refused the login.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, masked.
        url: String,
        /// Why, in one line (refused, authentication, no such database).
        reason: String,
    },
    /// A statement of Retort's own failed.
    #[error("database error while {doing}")]
    Query {
        /// What Retort was doing.
        doing: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// SQLite: rows that break a foreign key after the revision (up to five named).
    #[error("foreign key violations after the revision: {0}")]
    ForeignKeyCheck(String),
    /// The role holds dangerous privileges and the policy requires least privilege.
    #[error(
        "the database role Retort connected as on {url} holds {}, and [policy] require-least-privilege is true: connect as a migration role with only the privileges in the README's Security section",
        .privileges.join(", ")
    )]
    Privileged {
        /// The URL, masked.
        url: String,
        /// The privileges it should not hold.
        privileges: Vec<String>,
    },
    /// Another deployer held the migration lock for longer than the wait allowed.
    #[error(
        "could not take the migration lock on {url} within {secs} s: {holder}. Another deployer is migrating this database; wait for it, or raise --lock-timeout"
    )]
    LockTimeout {
        /// The URL, masked.
        url: String,
        /// How long this run waited.
        secs: u64,
        /// Who holds the lock, as far as the database says.
        holder: String,
    },
}

/// A database URL with its secrets masked, for messages and logs: the userinfo's
/// password and every `password`-like query parameter, read with a real URL parser.
/// Input that does not parse as a URL is masked up to its last `@` (`oracle:user/pw@host`
/// shows as `***@host`), and whole when it has none but looks like it holds a secret.
pub fn redact(raw: &str) -> String {
    const MASK: &str = "***";
    match url::Url::parse(raw) {
        Ok(mut url) if url.has_host() || raw.starts_with("sqlite:") => {
            if url.password().is_some() {
                let _ = url.set_password(Some(MASK));
            }
            let secret = |k: &str| {
                let k = k.to_ascii_lowercase();
                k.contains("password") || k.contains("passwd") || k == "pwd" || k.contains("secret")
            };
            if url.query_pairs().any(|(k, _)| secret(k.as_ref())) {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret(k.as_ref()) {
                            MASK.to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string().replace("%2A%2A%2A", MASK)
        }
        _ => match raw.rfind('@') {
            Some(at) => format!("{MASK}{}", &raw[at..]),
            None if raw.contains(':') && !raw.starts_with("sqlite:") => {
                let scheme = raw.split(':').next().unwrap_or_default();
                format!("{scheme}:{MASK}")
            }
            None => raw.to_owned(),
        },
    }
}

/// The host (and port) of a URL, for messages.
fn host_of(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => redact(raw),
        },
        Err(_) => redact(raw),
    }
}

/// One line saying why a connection failed, without the URL's secrets.
fn connect_reason(e: &sqlx::Error, url: &str) -> String {
    let host = host_of(url);
    let reason = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {host}: is the server running and listening there?")
        }
        sqlx::Error::Io(io) => format!("{host}: {io}"),
        sqlx::Error::Database(db) => {
            let message = db.message();
            let lower = message.to_lowercase();
            if lower.contains("password") || lower.contains("access denied") {
                format!("authentication failed: {message}")
            } else if lower.contains("does not exist") || lower.contains("unknown database") {
                format!("no such database: {message}")
            } else {
                message.to_owned()
            }
        }
        sqlx::Error::PoolTimedOut => format!("timed out connecting to {host}"),
        // A driver's own message may quote the URL it could not read.
        sqlx::Error::Configuration(_) => {
            "the URL cannot be read (check its form: scheme://user:password@host:port/database; percent-encode special characters in the password)".to_owned()
        }
        other => other.to_string(),
    };
    // Whatever the driver said, the URL's secrets stay out of it.
    scrub(&reason, url)
}

/// `text` with any secret of `url` masked (a driver may echo parts of the URL).
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(pw) = parsed.password().filter(|p| p.len() > 1) {
            out = out.replace(pw, "***");
        }
        for (k, v) in parsed.query_pairs() {
            if k.to_ascii_lowercase().contains("pass") && v.len() > 1 {
                out = out.replace(v.as_ref(), "***");
            }
        }
    }
    out
}

/// How a session is set up beyond the URL.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// How long taking the migration lock may wait.
    pub lock_timeout: Duration,
    /// The wall-clock limit of one revision call (`[sandbox] timeout-secs`; `None`: no
    /// limit). The server is told to end any statement of the session that runs longer
    /// (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`), so that even a
    /// killed Retort leaves nothing running for longer.
    pub call_limit: Option<Duration>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            lock_timeout: Duration::from_secs(60),
            call_limit: None,
        }
    }
}

impl Session {
    /// The per-statement limit the server enforces: the call limit, but never shorter
    /// than a wait for the migration lock.
    pub(crate) fn statement_limit(&self) -> Option<Duration> {
        self.call_limit
            .map(|l| l.max(self.lock_timeout) + Duration::from_secs(1))
    }
}

/// A database Retort migrates.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The engine (crate::db): one module per database.
    engine: std::sync::Arc<dyn crate::db::Engine>,
    /// The URL, its secrets masked.
    url: String,
    /// How long `begin` waits for the migration lock.
    lock_timeout: Duration,
    /// A transaction of this backend that created the ledger tables has committed: the
    /// next ones need not create them again (two round trips per step fewer).
    ledger_ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How this process appears to the database (PostgreSQL's application_name), so that a
/// deployer waiting for the lock can say who holds it.
pub(crate) fn application_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "?".into());
    let mut name = format!(
        "retort {} pid {} on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        host.trim()
    );
    // PostgreSQL keeps 63 bytes.
    while name.len() > 63 {
        name.pop();
    }
    name
}

impl Backend {
    /// Opens `url` with the default [`Session`].
    pub async fn connect(url: &str) -> Result<Backend, BackendError> {
        Self::connect_with(url, Session::default()).await
    }

    /// Opens `url`. Every session Retort opens is pinned to how the policy reads SQL
    /// (MariaDB/MySQL: no `NO_BACKSLASH_ESCAPES` or `ANSI_QUOTES` in `sql_mode`;
    /// PostgreSQL: `standard_conforming_strings` on) and bounded by `session`.
    pub async fn connect_with(url: &str, session: Session) -> Result<Backend, BackendError> {
        let dialect =
            Dialect::from_url(url).ok_or_else(|| BackendError::Scheme { url: redact(url) })?;
        let shown = redact(url);
        let engine = crate::db::connect(dialect, url, &session)
            .await
            .map_err(|e| BackendError::Connect {
                url: shown.clone(),
                reason: connect_reason(&e, url),
            })?;
        Ok(Backend {
            engine: engine.into(),
            url: shown,
            lock_timeout: session.lock_timeout,
            ledger_ready: Default::default(),
        })
    }

    /// How long taking the migration lock may wait.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    fn wait(&self) -> LockWait<'_> {
        LockWait {
            url: &self.url,
            timeout: self.lock_timeout,
        }
    }

    /// Ends the statement running on the migration connection now (the wall-clock limit
    /// ran out while the database worked), so that rolling back need not wait for it.
    /// Best effort: a statement that already ended is not affected.
    pub async fn interrupt(&self) {
        self.engine.interrupt().await;
    }

    /// The dangerous privileges of the role Retort connected as: PostgreSQL superuser
    /// and membership in pg_read_server_files, pg_write_server_files or
    /// pg_execute_server_program; MariaDB/MySQL global FILE, SUPER and GRANT OPTION on
    /// `*.*` (directly granted; privileges through roles are not listed by the server).
    /// SQLite has no roles: none.
    pub async fn dangerous_privileges(&self) -> Result<Vec<String>, BackendError> {
        self.engine
            .dangerous_privileges()
            .await
            .map_err(query_err("reading the role's privileges"))
    }

    /// Checks the role's privileges: warnings to show, or with `require` an error.
    pub async fn check_privileges(&self, require: bool) -> Result<Vec<String>, BackendError> {
        let privileges = self.dangerous_privileges().await?;
        if privileges.is_empty() {
            return Ok(Vec::new());
        }
        if require {
            return Err(BackendError::Privileged {
                url: self.url.clone(),
                privileges,
            });
        }
        Ok(vec![format!(
            "the database role holds {}: the SQL policy is defence in depth, the role is the boundary. Migrate as a role with only the privileges in the README's Security section (or set [policy] require-least-privilege = true to refuse)",
            privileges.join(", ")
        )])
    }

    /// The database's SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.engine.capabilities().dialect
    }

    /// What the engine is, as data.
    pub(crate) fn capabilities(&self) -> &'static crate::db::Capabilities {
        self.engine.capabilities()
    }

    /// The URL, its secrets masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Text rows of a ledger query on the pool.
    async fn ledger_rows(&self, sql: &str, doing: &str) -> Result<Vec<Vec<String>>, BackendError> {
        let rows = self
            .engine
            .fetch_strings(sql)
            .await
            .map_err(query_err(doing))?;
        Ok(rows
            .into_iter()
            .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
            .collect())
    }

    /// Text rows of a catalog query (autogenerate reads the live schema with them).
    pub(crate) async fn catalog_rows(
        &self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, BackendError> {
        self.engine
            .fetch_strings(sql)
            .await
            .map_err(query_err("reading the schema from the catalog"))
    }

    /// True when both ledger tables exist. Another deployer may be creating them (on
    /// MariaDB/MySQL outside a transaction, one after the other): until both exist,
    /// there is no ledger to read.
    async fn ledger_exists(&self) -> Result<bool, BackendError> {
        let rows = self
            .ledger_rows(self.capabilities().ledger_exists_sql, "reading the ledger")
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|n| n.parse::<i64>().is_ok_and(|n| n >= 2)))
    }

    /// The applied heads; empty when the ledger does not exist yet.
    pub async fn heads(&self) -> Result<Vec<String>, BackendError> {
        if !self.ledger_exists().await? {
            return Ok(Vec::new());
        }
        let rows = self
            .ledger_rows(
                "SELECT version_num FROM retort_version ORDER BY version_num",
                "reading the ledger",
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    /// The last revision that failed without being rolled back (on MariaDB/MySQL, whose
    /// DDL is not transactional, or a revision that ran outside a transaction) and has
    /// not been resolved by `stamp` since.
    pub async fn unresolved_failure(&self) -> Result<Option<Failure>, BackendError> {
        if !self.ledger_exists().await? {
            return Ok(None);
        }
        let rows = self
            .ledger_rows(
                "SELECT revision, direction, status, detail FROM retort_log ORDER BY id DESC LIMIT 1",
                "reading the ledger",
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|row| {
            let [revision, direction, status, detail]: [String; 4] = row.try_into().ok()?;
            (status == Status::Failed.as_str()).then(|| Failure {
                revision,
                direction: Movement::parse(&direction),
                detail,
            })
        }))
    }

    /// Each revision the log says is applied, with the SHA-256 of the component that
    /// applied it (the last `up` not undone by a later `down`).
    pub async fn applied_digests(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, BackendError> {
        let mut applied = std::collections::BTreeMap::new();
        if !self.ledger_exists().await? {
            return Ok(applied);
        }
        let rows = self
            .ledger_rows(
                "SELECT revision, direction, sha256 FROM retort_log WHERE status = 'done' ORDER BY id",
                "reading the ledger log",
            )
            .await?;
        for row in rows {
            let [revision, direction, sha256]: [String; 3] = match row.try_into() {
                Ok(r) => r,
                Err(_) => continue,
            };
            match Movement::parse(&direction) {
                Some(Movement::Up) => {
                    applied.insert(revision, sha256);
                }
                Some(Movement::Down) => {
                    applied.remove(&revision);
                }
                Some(Movement::Stamp) | None => {}
            }
        }
        Ok(applied)
    }

    /// Takes the migration lock and starts a revision's transaction (creating the ledger
    /// tables on first use). The lock is the transaction's on SQLite (`BEGIN IMMEDIATE`)
    /// and PostgreSQL (`pg_advisory_xact_lock`); on MySQL/MariaDB it is the session's
    /// (`GET_LOCK`). Either way the transaction is a guard (crate::db::Locked): the lock
    /// goes when it commits, ends, or is dropped. Every writer of the ledger goes
    /// through here, so two deployers never interleave within a transaction, and a
    /// crashed one's lock ends with its connection.
    pub(crate) async fn begin(&self) -> Result<Tx, BackendError> {
        self.engine.clear_interrupt();
        let tx = self.engine.begin(self.wait()).await?;
        let mut tx = Locked::guard(tx, self.engine.clone(), false);
        if !self.capabilities().ledger_before_transaction
            && !self.ledger_ready.load(std::sync::atomic::Ordering::Relaxed)
        {
            for sql in ledger_tables(self.dialect()) {
                if let Err(e) = tx.run(&sql).await {
                    tx.end().await;
                    return Err(query_err("creating the ledger tables")(e));
                }
            }
        }
        Ok(tx)
    }

    /// For a revision that must run outside a transaction: takes the migration lock for
    /// the session (PostgreSQL `pg_advisory_lock`, MySQL/MariaDB `GET_LOCK`; SQLite has
    /// no lock outside a transaction) and hands out the bare connection, as a guard that
    /// unlocks when it ends. The caller records the outcome with
    /// [`Backend::record_outside`].
    pub(crate) async fn begin_outside(&self) -> Result<Tx, BackendError> {
        self.engine.clear_interrupt();
        let tx = self.engine.begin_outside(self.wait()).await?;
        let mut tx = Locked::guard(tx, self.engine.clone(), true);
        for sql in ledger_tables(self.dialect()) {
            if let Err(e) = tx.run(&sql).await {
                tx.end().await;
                return Err(query_err("creating the ledger tables")(e));
            }
        }
        Ok(tx)
    }

    /// Records the outcome of a revision that ran outside a transaction, in a
    /// transaction of its own on the same connection (the lock is still held), then
    /// releases the lock.
    pub(crate) async fn record_outside(
        &self,
        mut tx: Tx,
        entry: &LogEntry<'_>,
    ) -> Result<(), BackendError> {
        let doing = format!("recording {} in the ledger", entry.revision);
        let dialect = self.dialect();
        let result = async {
            tx.run(crate::db::capabilities(dialect).begin).await?;
            if let Err(e) = write_ledger(&mut tx, dialect, entry).await {
                let _ = tx.run("ROLLBACK").await;
                return Err(e);
            }
            tx.run("COMMIT").await.map(drop)
        }
        .await
        .map_err(query_err(doing));
        tx.end().await;
        result
    }

    /// Ends, unrecorded, what [`Backend::begin`] or [`Backend::begin_outside`] started:
    /// a transaction rolls back and the lock goes (awaited here, rather than left to the
    /// guard's drop).
    pub(crate) async fn abandon(&self, tx: Tx) {
        tx.end().await;
    }

    /// The version table's rows as this transaction sees them.
    pub(crate) async fn heads_in(tx: &mut Tx) -> Result<Vec<String>, BackendError> {
        let rows = tx
            .strings(
                "SELECT version_num FROM retort_version ORDER BY version_num",
                &[],
            )
            .await
            .map_err(query_err("reading the ledger"))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    }

    /// Checks foreign keys (SQLite), records the step in the ledger and commits.
    pub(crate) async fn finish(
        &self,
        mut tx: Tx,
        entry: &LogEntry<'_>,
    ) -> Result<(), BackendError> {
        if let Err(e) = self.record_step(&mut tx, entry).await {
            self.abandon(tx).await;
            return Err(e);
        }
        self.commit(tx).await
    }

    /// Checks what the engine defers to the end of a step (SQLite's foreign keys) and
    /// records the step in the ledger, without committing (`--transaction all` commits
    /// once, at the end).
    pub(crate) async fn record_step(
        &self,
        tx: &mut Tx,
        entry: &LogEntry<'_>,
    ) -> Result<(), BackendError> {
        let dialect = self.dialect();
        if batched(dialect, tx) {
            let batch = ledger_batch(dialect, entry).map_err(query_err(format!(
                "recording {} in the ledger",
                entry.revision
            )))?;
            return self.engine.before_commit(tx, Some(&batch)).await;
        }
        self.engine.before_commit(tx, None).await?;
        write_ledger(tx, dialect, entry)
            .await
            .map_err(query_err(format!(
                "recording {} in the ledger",
                entry.revision
            )))
    }

    /// Commits a transaction from [`Backend::begin`]; the lock goes with it.
    pub(crate) async fn commit(&self, tx: Tx) -> Result<(), BackendError> {
        tx.commit().await.map_err(query_err("committing"))?;
        self.ledger_ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the version table's rows with `entry.heads` (unless the entry records a
    /// failure), logs, and commits.
    async fn record(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        if let Err(e) = write_ledger(&mut tx, self.dialect(), entry).await {
            self.abandon(tx).await;
            return Err(query_err(format!(
                "recording {} in the ledger",
                entry.revision
            ))(e));
        }
        self.commit(tx).await
    }

    /// Records a revision that failed on a database that cannot roll its DDL back.
    pub(crate) async fn record_failure(&self, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        let tx = self.begin().await?;
        self.record(tx, entry).await
    }

    /// Sets the version table to `heads` without running any revision (`stamp`), and
    /// logs it; this also resolves a recorded failure.
    pub async fn stamp(&self, heads: &[String]) -> Result<(), BackendError> {
        let tx = self.begin().await?;
        let message = format!(
            "stamp {}",
            if heads.is_empty() {
                "base".into()
            } else {
                heads.join(", ")
            }
        );
        let entry = LogEntry {
            revision: if heads.is_empty() { "base" } else { &heads[0] },
            direction: Movement::Stamp,
            status: Status::Done,
            sha256: "",
            message: &message,
            detail: "",
            heads,
            started_at: now(),
        };
        self.record(tx, &entry).await
    }

    /// Closes the connection.
    pub async fn close(&self) {
        self.engine.close().await;
    }
}

/// What a `retort_log` row did (its `direction` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Movement {
    /// A revision applied.
    Up,
    /// A revision reverted.
    Down,
    /// The version table set by `stamp`.
    Stamp,
}

impl Movement {
    /// The ledger's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Up => "up",
            Movement::Down => "down",
            Movement::Stamp => "stamp",
        }
    }

    /// Reads the ledger's spelling (`None` for anything else: a row Retort did not write).
    pub fn parse(s: &str) -> Option<Movement> {
        [Movement::Up, Movement::Down, Movement::Stamp]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// How a `retort_log` row ended (its `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It completed.
    Done,
    /// It failed (and, where nothing rolled it back, blocks runs until `stamp`).
    Failed,
}

impl Status {
    /// The ledger's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

/// A failed revision the ledger remembers (MariaDB/MySQL).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// The revision that failed.
    pub revision: String,
    /// What failed: an upgrade or a downgrade (`None`: a row Retort did not write).
    pub direction: Option<Movement>,
    /// The failure's message, with the op it stopped at.
    pub detail: String,
}

impl Failure {
    /// `upgrade` or `downgrade`.
    pub fn verb(&self) -> &'static str {
        if self.direction == Some(Movement::Down) {
            "downgrade"
        } else {
            "upgrade"
        }
    }
}

/// What the ledger records for one step.
pub(crate) struct LogEntry<'a> {
    pub revision: &'a str,
    pub direction: Movement,
    pub status: Status,
    pub sha256: &'a str,
    pub message: &'a str,
    /// For a failure: the error and the op it stopped at.
    pub detail: &'a str,
    /// The version table's heads after this step.
    pub heads: &'a [String],
    pub started_at: String,
}

/// The ledger tables, created when missing (docs/ledger.md).
pub(crate) fn ledger_tables(dialect: Dialect) -> [String; 2] {
    let id = crate::db::capabilities(dialect).ledger_key;
    [
        "CREATE TABLE IF NOT EXISTS retort_version (\n    version_num VARCHAR(32) NOT NULL PRIMARY KEY\n)".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS retort_log (\n    id {id},\n    revision VARCHAR(32) NOT NULL,\n    direction VARCHAR(10) NOT NULL,\n    status VARCHAR(10) NOT NULL,\n    sha256 CHAR(64) NOT NULL,\n    message TEXT NOT NULL,\n    detail TEXT NOT NULL,\n    started_at VARCHAR(40) NOT NULL,\n    finished_at VARCHAR(40) NOT NULL\n)"
        ),
    ]
}

/// Writes a step to the ledger: the version table's rows become `entry.heads` (unless
/// the entry records a failure) and the log gains a row. Online the values are bound,
/// except where the engine takes several statements at once (SQLite: one round trip,
/// the values as literals); in a script they become literals.
pub(crate) async fn write_ledger(
    tx: &mut Tx,
    dialect: Dialect,
    entry: &LogEntry<'_>,
) -> Result<(), sqlx::Error> {
    if batched(dialect, tx) {
        tx.run(&ledger_batch(dialect, entry)?).await?;
        return Ok(());
    }
    for (sql, values) in &ledger_writes(dialect, entry) {
        tx.run_with(sql, values).await?;
    }
    Ok(())
}

/// Whether the ledger's writes go as one batch: online, where the engine takes several
/// statements at once (a script renders them one by one).
fn batched(dialect: Dialect, tx: &Tx) -> bool {
    crate::db::capabilities(dialect).batches && !tx.is_script()
}

/// The ledger's statements for a step as one batch, for an engine that runs several
/// statements in one round trip (SQLite): the values become literals, rendered as the
/// script target renders them.
fn ledger_batch(dialect: Dialect, entry: &LogEntry<'_>) -> Result<String, sqlx::Error> {
    let batch = ledger_writes(dialect, entry)
        .iter()
        .map(|(sql, values)| dialect.inline(sql, values))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    Ok(batch.join(";\n"))
}

/// The ledger's statements for a step, with their values.
fn ledger_writes(dialect: Dialect, entry: &LogEntry<'_>) -> Vec<(String, Vec<Value>)> {
    let mut writes = Vec::new();
    if entry.status != Status::Failed {
        writes.push(("DELETE FROM retort_version".to_owned(), Vec::new()));
        for head in entry.heads {
            let sql = format!(
                "INSERT INTO retort_version (version_num) VALUES ({})",
                dialect.placeholder(1)
            );
            writes.push((sql, vec![Value::Text(head.clone())]));
        }
    }
    let marks: Vec<String> = (1..=8).map(|n| dialect.placeholder(n)).collect();
    let sql = format!(
        "INSERT INTO retort_log (revision, direction, status, sha256, message, detail, started_at, finished_at) VALUES ({})",
        marks.join(", ")
    );
    let values = [
        entry.revision,
        entry.direction.as_str(),
        entry.status.as_str(),
        entry.sha256,
        entry.message,
        entry.detail,
        &entry.started_at,
        &now(),
    ]
    .map(|s| Value::Text(s.to_owned()));
    writes.push((sql, values.into()));
    writes
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
