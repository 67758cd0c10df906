//! Database access through sqlx: connections, the revision transaction, the ledger
//! tables, and running what ops render. Knows nothing about wasm.
//!
//! Ledger tables (docs/ledger.md, readable with plain SQL):
//! - `retort_version(version_num)`: one row per applied head, as Alembic's
//!   `alembic_version`.
//! - `retort_log`: one row per revision applied, reverted or failed, and per stamp, with
//!   the component's SHA-256.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column as _, Connection as _, Executor as _, MySql, MySqlPool, PgPool, Postgres,
    Row as _, Sqlite, SqlitePool, Statement as _, Transaction, TypeInfo, ValueRef,
};

use crate::dialect::Dialect;
use crate::wit::Value;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "unsupported database URL {url:?}: use sqlite:PATH, postgres://..., mysql://... or mariadb://..."
    )]
    Scheme { url: String },
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database error while {doing}")]
    Query {
        doing: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("foreign key violations after the revision: {0}")]
    ForeignKeyCheck(String),
    #[error(
        "the database role Retort connected as on {url} holds {}, and [policy] require-least-privilege is true: connect as a migration role with only the privileges in the README's Security section",
        .privileges.join(", ")
    )]
    Privileged {
        url: String,
        privileges: Vec<String>,
    },
    #[error(
        "could not take the migration lock on {url} within {secs} s: {holder}. Another deployer is migrating this database; wait for it, or raise --lock-timeout"
    )]
    LockTimeout {
        url: String,
        secs: u64,
        holder: String,
    },
}

fn query_err(doing: impl Into<String>) -> impl Fn(sqlx::Error) -> BackendError {
    let doing = doing.into();
    move |source| BackendError::Query {
        doing: doing.clone(),
        source,
    }
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

/// A one-connection pool, after one direct connection: a pool retries until its timeout
/// and then reports only that, where a single attempt says why (refused, password,
/// unknown database). `pool` carries the session set-up (`after_connect`).
async fn open<DB: sqlx::Database>(
    options: <DB::Connection as sqlx::Connection>::Options,
    pool: sqlx::pool::PoolOptions<DB>,
    timeout: Duration,
) -> Result<sqlx::Pool<DB>, sqlx::Error> {
    sqlx::ConnectOptions::connect(&options)
        .await?
        .close()
        .await?;
    // One connection for the whole run, never recycled: the session holds the migration
    // lock on MySQL/MariaDB (and for non-transactional revisions on PostgreSQL).
    pool.max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
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
    fn statement_limit(&self) -> Option<Duration> {
        self.call_limit
            .map(|l| l.max(self.lock_timeout) + Duration::from_secs(1))
    }
}

/// Ends the statement running on the migration connection, from outside it: what the
/// wall-clock limit calls when it runs out.
#[derive(Debug, Clone)]
enum Canceller {
    /// SQLite: the connection's progress handler interrupts while this is set.
    Sqlite(std::sync::Arc<std::sync::atomic::AtomicBool>),
    /// PostgreSQL: `pg_cancel_backend` of the session's pid, from a second connection.
    Postgres(
        Box<PgConnectOptions>,
        std::sync::Arc<std::sync::atomic::AtomicI64>,
    ),
    /// MySQL/MariaDB: `KILL QUERY` of the session's connection id, from a second one.
    MySql(
        Box<MySqlConnectOptions>,
        std::sync::Arc<std::sync::atomic::AtomicI64>,
    ),
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// A database Retort migrates.
#[derive(Debug, Clone)]
pub struct Backend {
    pool: Pool,
    dialect: Dialect,
    url: String,
    /// How long `begin` waits for the migration lock.
    lock_timeout: Duration,
    canceller: Canceller,
}

/// PostgreSQL advisory lock key (two int4): "RETR", 0. Advisory locks are per database.
const PG_LOCK: &str = "1380275282, 0";
/// MySQL/MariaDB `GET_LOCK` name: locks are server-wide, so it names the database.
const MYSQL_LOCK: &str = "CONCAT('retort:', DATABASE())";

/// How this process appears to the database (PostgreSQL's application_name), so that a
/// deployer waiting for the lock can say who holds it.
fn application_name() -> String {
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

/// True when the error is a lock wait that ran out.
fn is_lock_timeout(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            // PostgreSQL lock_not_available; SQLite SQLITE_BUSY (5, and its extended
            // codes, whose low byte is 5).
            db.code()
                .is_some_and(|c| c == "55P03" || c.parse::<u32>().is_ok_and(|n| n & 0xff == 5))
        }
        _ => false,
    }
}

/// True when the error means the connection to the database is gone (the server ended
/// the session, the network dropped, the server restarted).
pub(crate) fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let message = db.message().to_lowercase();
            match db.code().as_deref() {
                // PostgreSQL admin_shutdown, crash_shutdown, cannot_connect_now.
                Some("57P01" | "57P02" | "57P03") => true,
                // MySQL/MariaDB: communication link failure; a killed connection or query.
                Some("08S01") => true,
                // (70100 is also a query interrupted by a limit: only a killed connection.)
                Some("70100") => message.contains("connection was killed"),
                _ => {
                    message.contains("lost connection") || message.contains("connection was killed")
                }
            }
        }
        _ => false,
    }
}

/// The transaction one revision runs in, or the script it is rendered into.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    MySql(Transaction<'static, MySql>),
    /// The connection, outside any transaction: for revisions that cannot run in one.
    SqliteAuto(PoolConnection<Sqlite>),
    PostgresAuto(PoolConnection<Postgres>),
    MySqlAuto(PoolConnection<MySql>),
    Script(Box<Script>),
}

/// Runs the same code on whichever database transaction this is; `$s` gets the script.
macro_rules! on_tx {
    ($tx:expr, $t:ident => $body:expr, $s:ident => $offline:expr) => {
        match $tx {
            Tx::Sqlite($t) => $body,
            Tx::Postgres($t) => $body,
            Tx::MySql($t) => $body,
            Tx::SqliteAuto($t) => $body,
            Tx::PostgresAuto($t) => $body,
            Tx::MySqlAuto($t) => $body,
            Tx::Script($s) => $offline,
        }
    };
}

/// Binds the guest's values to a query, whichever database it is for.
macro_rules! bind_values {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for value in $params {
            query = match value {
                Value::Null => query.bind(None::<i64>),
                Value::Boolean(b) => query.bind(*b),
                Value::S64(v) => query.bind(*v),
                Value::F64(v) => query.bind(*v),
                Value::Text(s) => query.bind(s.clone()),
                Value::Blob(b) => query.bind(b.clone()),
            };
        }
        query
    }};
}

/// A run that writes SQL instead of executing it (`--sql`): no database is opened.
pub(crate) struct Script {
    pub dialect: Dialect,
    /// Statements of the revision being rendered.
    pub statements: Vec<String>,
    /// False while replaying earlier revisions only to learn their schema.
    pub recording: bool,
    /// SQLite: the schema so far in an in-memory database, which table rebuilds read.
    model: Option<sqlx::SqliteConnection>,
    /// MySQL/MariaDB: columns and constraints so far, for `MODIFY COLUMN` and drops.
    pub schema: crate::schema::Schema,
}

fn offline_error(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "{what} needs a database; none is opened with --sql"
    ))
}

impl Script {
    pub async fn new(dialect: Dialect) -> Result<Script, sqlx::Error> {
        let model = match dialect {
            Dialect::Sqlite => Some(
                sqlx::ConnectOptions::connect(
                    &SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(false),
                )
                .await?,
            ),
            _ => None,
        };
        let mut script = Script {
            dialect,
            statements: Vec::new(),
            recording: false,
            model,
            schema: Default::default(),
        };
        // The model needs the ledger too, for the ledger writes each revision renders.
        for sql in ledger_tables(dialect) {
            script.run(&sql).await?;
        }
        script.recording = true;
        Ok(script)
    }

    async fn run(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        if let Some(model) = &mut self.model {
            sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .execute(&mut *model)
                .await?;
        }
        if self.recording {
            self.statements.push(sql.to_owned());
        }
        Ok(0)
    }

    async fn strings(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let Some(model) = &mut self.model else {
            return Err(offline_error("reading the catalog"));
        };
        let rows = bind_values!(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .fetch_all(&mut *model)
            .await?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i))
                    .collect()
            })
            .collect()
    }
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
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
        let dialect =
            Dialect::from_url(url).ok_or_else(|| BackendError::Scheme { url: redact(url) })?;
        let shown = redact(url);
        let fail = |e: sqlx::Error| BackendError::Connect {
            url: shown.clone(),
            reason: connect_reason(&e, url),
        };
        let timeout = Duration::from_secs(10);
        let limit_ms = session.statement_limit().map(|l| l.as_millis());
        let (pool, canceller) = match dialect {
            Dialect::Sqlite => {
                // Foreign keys stay off while migrating, as SQLite's table rebuild
                // requires; `PRAGMA foreign_key_check` runs before every commit instead.
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(fail)?
                    .create_if_missing(true)
                    .foreign_keys(false)
                    .busy_timeout(Duration::from_secs(30));
                let interrupt = Arc::new(AtomicBool::new(false));
                let flag = interrupt.clone();
                let pool =
                    sqlx::pool::PoolOptions::<Sqlite>::new().after_connect(move |conn, _| {
                        let flag = flag.clone();
                        Box::pin(async move {
                            // Every 10,000 virtual-machine steps: is the call's time up?
                            conn.lock_handle()
                                .await?
                                .set_progress_handler(10_000, move || {
                                    !flag.load(Ordering::Relaxed)
                                });
                            Ok(())
                        })
                    });
                (
                    Pool::Sqlite(open(options, pool, timeout).await.map_err(fail)?),
                    Canceller::Sqlite(interrupt),
                )
            }
            Dialect::Postgres => {
                let normalized = url.replacen("postgresql://", "postgres://", 1);
                // A crashed retort's session (and its locks) ends within a second, even in
                // the middle of a long statement; no statement outlives the call limit.
                let mut settings = vec![
                    ("client_connection_check_interval", "1000".to_owned()),
                    ("standard_conforming_strings", "on".to_owned()),
                ];
                if let Some(ms) = limit_ms {
                    settings.push(("statement_timeout", ms.to_string()));
                }
                let options = PgConnectOptions::from_str(&normalized)
                    .map_err(fail)?
                    .application_name(&application_name())
                    .options(settings);
                let pid = Arc::new(AtomicI64::new(0));
                let slot = pid.clone();
                let pool =
                    sqlx::pool::PoolOptions::<Postgres>::new().after_connect(move |conn, _| {
                        let slot = slot.clone();
                        Box::pin(async move {
                            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                                .fetch_one(&mut *conn)
                                .await?;
                            slot.store(pid.into(), Ordering::Relaxed);
                            Ok(())
                        })
                    });
                (
                    Pool::Postgres(open(options.clone(), pool, timeout).await.map_err(fail)?),
                    Canceller::Postgres(Box::new(options), pid),
                )
            }
            Dialect::Mysql => {
                let normalized = url.replacen("mariadb://", "mysql://", 1);
                let options = MySqlConnectOptions::from_str(&normalized).map_err(fail)?;
                let id = Arc::new(AtomicI64::new(0));
                let slot = id.clone();
                let pool = sqlx::pool::PoolOptions::<MySql>::new().after_connect(move |conn, _| {
                    let slot = slot.clone();
                    Box::pin(async move {
                        // The policy reads SQL as the default mode does: backslash escapes
                        // in strings, double quotes for strings (not identifiers).
                        sqlx::raw_sql(
                            "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(REPLACE(REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','), ',ANSI_QUOTES,', ','), ',ANSI,', ','))",
                        )
                        .execute(&mut *conn)
                        .await?;
                        if let Some(ms) = limit_ms {
                            // MariaDB's (seconds); MySQL has none for every statement.
                            let secs = ms as f64 / 1000.0;
                            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                                "SET SESSION max_statement_time = {secs}"
                            )))
                            .execute(&mut *conn)
                            .await;
                        }
                        let connection: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                            .fetch_one(&mut *conn)
                            .await?;
                        slot.store(connection as i64, Ordering::Relaxed);
                        Ok(())
                    })
                });
                (
                    Pool::MySql(open(options.clone(), pool, timeout).await.map_err(fail)?),
                    Canceller::MySql(Box::new(options), id),
                )
            }
        };
        Ok(Backend {
            pool,
            dialect,
            url: shown,
            lock_timeout: session.lock_timeout,
            canceller,
        })
    }

    /// How long taking the migration lock may wait.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Ends the statement running on the migration connection now (the wall-clock limit
    /// ran out while the database worked), so that rolling back need not wait for it.
    /// Best effort: a statement that already ended is not affected.
    pub async fn interrupt(&self) {
        use std::sync::atomic::Ordering;
        match &self.canceller {
            Canceller::Sqlite(flag) => flag.store(true, Ordering::Relaxed),
            Canceller::Postgres(options, pid) => {
                let pid = pid.load(Ordering::Relaxed);
                if let Ok(mut conn) = sqlx::ConnectOptions::connect(options.as_ref()).await {
                    let _ = sqlx::query("SELECT pg_cancel_backend($1::int)")
                        .bind(pid)
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            }
            Canceller::MySql(options, id) => {
                let id = id.load(Ordering::Relaxed);
                if let Ok(mut conn) = sqlx::ConnectOptions::connect(options.as_ref()).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!("KILL QUERY {id}")))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            }
        }
    }

    /// Clears an [`Backend::interrupt`] before the next transaction.
    fn clear_interrupt(&self) {
        if let Canceller::Sqlite(flag) = &self.canceller {
            flag.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The dangerous privileges of the role Retort connected as: PostgreSQL superuser
    /// and membership in pg_read_server_files, pg_write_server_files or
    /// pg_execute_server_program; MariaDB/MySQL global FILE, SUPER and GRANT OPTION on
    /// `*.*` (directly granted; privileges through roles are not listed by the server).
    /// SQLite has no roles: none.
    pub async fn dangerous_privileges(&self) -> Result<Vec<String>, BackendError> {
        let err = query_err("reading the role's privileges");
        Ok(match &self.pool {
            Pool::Sqlite(_) => Vec::new(),
            Pool::Postgres(p) => {
                let (superuser, read, write, program): (bool, bool, bool, bool) = sqlx::query_as(
                    "SELECT rolsuper, \
                     pg_has_role(current_user, 'pg_read_server_files', 'USAGE'), \
                     pg_has_role(current_user, 'pg_write_server_files', 'USAGE'), \
                     pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') \
                     FROM pg_roles WHERE rolname = current_user",
                )
                .fetch_one(p)
                .await
                .map_err(err)?;
                if superuser {
                    vec!["SUPERUSER".into()]
                } else {
                    [
                        (read, "pg_read_server_files"),
                        (write, "pg_write_server_files"),
                        (program, "pg_execute_server_program"),
                    ]
                    .into_iter()
                    .filter(|(held, _)| *held)
                    .map(|(_, name)| name.to_owned())
                    .collect()
                }
            }
            Pool::MySql(p) => {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES \
                     WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                     SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
                )
                .fetch_all(p)
                .await
                .map_err(err)?;
                let mut found: Vec<String> = rows
                    .iter()
                    .filter(|(p, _)| p == "FILE" || p == "SUPER")
                    .map(|(p, _)| format!("{p} ON *.*"))
                    .collect();
                if rows.iter().any(|(_, grantable)| grantable == "YES") {
                    found.push("GRANT OPTION ON *.*".into());
                }
                found
            }
        })
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

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the ledger's version table exists.
    async fn ledger_exists(&self) -> Result<bool, BackendError> {
        let err = query_err("reading the ledger");
        let n: i64 = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'retort_version'",
            )
            .fetch_one(p)
            .await
            .map_err(err)?,
            Pool::Postgres(p) => sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'retort_version'",
            )
            .fetch_one(p)
            .await
            .map_err(err)?,
            Pool::MySql(p) => sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = database() AND table_name = 'retort_version'",
            )
            .fetch_one(p)
            .await
            .map_err(err)?,
        };
        Ok(n > 0)
    }

    /// The applied heads; empty when the ledger does not exist yet.
    pub async fn heads(&self) -> Result<Vec<String>, BackendError> {
        if !self.ledger_exists().await? {
            return Ok(Vec::new());
        }
        let sql = "SELECT version_num FROM retort_version ORDER BY version_num";
        let err = query_err("reading the ledger");
        Ok(match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await.map_err(err)?,
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.map_err(err)?,
            Pool::MySql(p) => sqlx::query_scalar(sql).fetch_all(p).await.map_err(err)?,
        })
    }

    /// The last revision that failed without being rolled back (on MariaDB/MySQL, whose
    /// DDL is not transactional, or a revision that ran outside a transaction) and has
    /// not been resolved by `stamp` since.
    pub async fn unresolved_failure(&self) -> Result<Option<Failure>, BackendError> {
        if !self.ledger_exists().await? {
            return Ok(None);
        }
        let sql =
            "SELECT revision, direction, status, detail FROM retort_log ORDER BY id DESC LIMIT 1";
        let err = query_err("reading the ledger");
        let row: Option<(String, String, String, String)> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(sql).fetch_optional(p).await.map_err(err)?,
            Pool::Postgres(p) => sqlx::query_as(sql).fetch_optional(p).await.map_err(err)?,
            Pool::MySql(p) => sqlx::query_as(sql).fetch_optional(p).await.map_err(err)?,
        };
        Ok(row.and_then(|(revision, direction, status, detail)| {
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
        let sql =
            "SELECT revision, direction, sha256 FROM retort_log WHERE status = 'done' ORDER BY id";
        let err = query_err("reading the ledger log");
        let rows: Vec<(String, String, String)> = match &self.pool {
            Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.map_err(err)?,
            Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.map_err(err)?,
            Pool::MySql(p) => sqlx::query_as(sql).fetch_all(p).await.map_err(err)?,
        };
        for (revision, direction, sha256) in rows {
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
    /// (`GET_LOCK`), released by [`Backend::release`] once the transaction has ended.
    /// Every writer of the ledger goes through here, so two deployers never interleave
    /// within a transaction, and a crashed one's lock ends with its connection.
    pub(crate) async fn begin(&self) -> Result<Tx, BackendError> {
        self.clear_interrupt();
        let err = query_err("starting a transaction");
        let mut tx = match &self.pool {
            Pool::Sqlite(p) => {
                let ms = self.lock_timeout.as_millis().max(1);
                sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
                    .execute(p)
                    .await
                    .map_err(&err)?;
                match p.begin_with("BEGIN IMMEDIATE").await {
                    Ok(t) => Tx::Sqlite(t),
                    Err(e) if is_lock_timeout(&e) => {
                        return Err(self.lock_timed_out(
                            "another connection holds the database's write lock (SQLite cannot say which)".into(),
                        ));
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            Pool::Postgres(p) => {
                let mut t = p.begin().await.map_err(&err)?;
                if !self.pg_lock(&mut t, true).await? {
                    drop(t);
                    return Err(self.lock_timed_out(self.pg_lock_holder(p).await));
                }
                Tx::Postgres(t)
            }
            Pool::MySql(p) => {
                let mut c = p.acquire().await.map_err(&err)?;
                if !self.mysql_lock(&mut c).await? {
                    drop(c);
                    return Err(self.lock_timed_out(self.mysql_lock_holder(p).await));
                }
                // DDL would end the transaction (an implicit commit): the ledger tables
                // are made first, under the lock, outside it.
                for sql in ledger_tables(self.dialect) {
                    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await {
                        drop(c);
                        self.release().await;
                        return Err(query_err("creating the ledger tables")(e));
                    }
                }
                drop(c);
                // The pool's one connection, which holds the lock.
                match p.begin().await {
                    Ok(t) => Tx::MySql(t),
                    Err(e) => {
                        self.release().await;
                        return Err(err(e));
                    }
                }
            }
        };
        if self.dialect != Dialect::Mysql {
            for sql in ledger_tables(self.dialect) {
                if let Err(e) = tx.run(&sql).await {
                    self.abandon(tx).await;
                    return Err(query_err("creating the ledger tables")(e));
                }
            }
        }
        Ok(tx)
    }

    /// For a revision that must run outside a transaction: takes the migration lock for
    /// the session (PostgreSQL `pg_advisory_lock`, MySQL/MariaDB `GET_LOCK`; SQLite has
    /// no lock outside a transaction) and hands out the bare connection. The caller
    /// records the outcome with [`Backend::record_outside`], which also unlocks.
    pub(crate) async fn begin_outside(&self) -> Result<Tx, BackendError> {
        self.clear_interrupt();
        let err = query_err("taking the migration lock");
        let mut tx = match &self.pool {
            Pool::Sqlite(p) => Tx::SqliteAuto(p.acquire().await.map_err(&err)?),
            Pool::Postgres(p) => {
                let mut c = p.acquire().await.map_err(&err)?;
                if !self.pg_lock(&mut c, false).await? {
                    drop(c);
                    return Err(self.lock_timed_out(self.pg_lock_holder(p).await));
                }
                Tx::PostgresAuto(c)
            }
            Pool::MySql(p) => {
                let mut c = p.acquire().await.map_err(&err)?;
                if !self.mysql_lock(&mut c).await? {
                    drop(c);
                    return Err(self.lock_timed_out(self.mysql_lock_holder(p).await));
                }
                Tx::MySqlAuto(c)
            }
        };
        for sql in ledger_tables(self.dialect) {
            if let Err(e) = tx.run(&sql).await {
                self.unlock_outside(tx).await;
                return Err(query_err("creating the ledger tables")(e));
            }
        }
        Ok(tx)
    }

    fn lock_timed_out(&self, holder: String) -> BackendError {
        BackendError::LockTimeout {
            url: self.url.clone(),
            secs: self.lock_timeout.as_secs(),
            holder,
        }
    }

    /// PostgreSQL's advisory lock on `conn`, waiting up to the lock timeout: the
    /// transaction's (`xact`, in a transaction) or the session's. `false` when the wait
    /// ran out: the caller gives the connection back, then asks who holds the lock.
    async fn pg_lock(
        &self,
        conn: &mut sqlx::PgConnection,
        xact: bool,
    ) -> Result<bool, BackendError> {
        let err = query_err("taking the migration lock");
        let (local, function) = if xact {
            ("LOCAL ", "pg_advisory_xact_lock")
        } else {
            ("", "pg_advisory_lock")
        };
        let ms = self.lock_timeout.as_millis().max(1);
        sqlx::raw_sql(AssertSqlSafe(format!("SET {local}lock_timeout = '{ms}ms'")))
            .execute(&mut *conn)
            .await
            .map_err(&err)?;
        let locked = sqlx::raw_sql(AssertSqlSafe(format!("SELECT {function}({PG_LOCK})")))
            .execute(&mut *conn)
            .await;
        match locked {
            Ok(_) => {}
            // (In a transaction, the failed statement aborted it: the caller drops it.)
            Err(e) if is_lock_timeout(&e) => {
                if !xact {
                    let _ = sqlx::raw_sql("SET lock_timeout TO DEFAULT")
                        .execute(&mut *conn)
                        .await;
                }
                return Ok(false);
            }
            Err(e) => return Err(err(e)),
        }
        sqlx::raw_sql(AssertSqlSafe(format!("SET {local}lock_timeout TO DEFAULT")))
            .execute(&mut *conn)
            .await
            .map_err(&err)?;
        Ok(true)
    }

    /// MySQL/MariaDB's named lock for `conn`'s session, waiting up to the lock timeout;
    /// `false` when the wait ran out.
    async fn mysql_lock(&self, conn: &mut sqlx::MySqlConnection) -> Result<bool, BackendError> {
        let secs = self.lock_timeout.as_secs_f64().max(0.001);
        let got: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT GET_LOCK({MYSQL_LOCK}, {secs})"
        )))
        .fetch_one(&mut *conn)
        .await
        .map_err(query_err("taking the migration lock"))?;
        Ok(got == Some(1))
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
        let result = async {
            tx.run(match self.dialect {
                Dialect::Mysql => "START TRANSACTION",
                _ => "BEGIN",
            })
            .await?;
            if let Err(e) = write_ledger(&mut tx, self.dialect, entry).await {
                let _ = tx.run("ROLLBACK").await;
                return Err(e);
            }
            tx.run("COMMIT").await.map(drop)
        }
        .await
        .map_err(query_err(doing));
        self.unlock_outside(tx).await;
        result
    }

    /// Ends, unrecorded, what [`Backend::begin`] or [`Backend::begin_outside`] started:
    /// a transaction rolls back (by being dropped) and the lock goes.
    pub(crate) async fn abandon(&self, tx: Tx) {
        if tx.in_transaction() {
            drop(tx);
            self.release().await;
        } else {
            self.unlock_outside(tx).await;
        }
    }

    /// Releases the session lock of [`Backend::begin_outside`] and returns the
    /// connection to the pool.
    pub(crate) async fn unlock_outside(&self, mut tx: Tx) {
        let sql = match self.dialect {
            Dialect::Postgres => format!("SELECT pg_advisory_unlock({PG_LOCK})"),
            Dialect::Mysql => format!("DO RELEASE_LOCK({MYSQL_LOCK})"),
            Dialect::Sqlite => return,
        };
        // A lost connection took its lock with it.
        let _ = tx.run(&sql).await;
    }

    /// Releases the session's migration lock (MySQL/MariaDB) once a transaction from
    /// [`Backend::begin`] has committed or been dropped. A lost connection took the lock
    /// with it, so failing here is harmless.
    pub(crate) async fn release(&self) {
        if let Pool::MySql(p) = &self.pool {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("DO RELEASE_LOCK({MYSQL_LOCK})")))
                .execute(p)
                .await;
        }
    }

    /// Who holds the PostgreSQL advisory lock, as far as pg_stat_activity tells.
    async fn pg_lock_holder(&self, p: &PgPool) -> String {
        /// pid, application_name, client address, transaction start.
        type Holder = (i32, Option<String>, Option<String>, Option<String>);
        let row: Result<Option<Holder>, _> =
            sqlx::query_as(
                "SELECT a.pid, a.application_name, host(a.client_addr), to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ') \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND l.classid = 1380275282 AND l.objid = 0 LIMIT 1",
            )
            .fetch_optional(p)
            .await;
        match row {
            Ok(Some((pid, app, addr, since))) => format!(
                "it is held by PostgreSQL backend {pid} ({}, from {}, in a transaction since {})",
                app.filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "no application_name".into()),
                addr.unwrap_or_else(|| "a local socket".into()),
                since.unwrap_or_else(|| "?".into())
            ),
            Ok(None) => "it was released just as the wait ended".into(),
            Err(e) => format!("its holder could not be read: {e}"),
        }
    }

    /// Who holds the MySQL/MariaDB named lock.
    async fn mysql_lock_holder(&self, p: &MySqlPool) -> String {
        let row: Result<Option<(i64, String, String, i64)>, _> = sqlx::query_as(AssertSqlSafe(
            format!(
                "SELECT CAST(ID AS SIGNED), USER, HOST, CAST(TIME AS SIGNED) FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK({MYSQL_LOCK})"
            ),
        ))
        .fetch_optional(p)
        .await;
        match row {
            Ok(Some((id, user, host, time))) => format!(
                "it is held by connection {id} ({user}@{host}, for {time} s in its current state)"
            ),
            Ok(None) => "it was released just as the wait ended".into(),
            Err(e) => format!("its holder could not be read: {e}"),
        }
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

    /// Checks foreign keys (SQLite) and records the step in the ledger, without
    /// committing (`--transaction all` commits once, at the end).
    pub(crate) async fn record_step(
        &self,
        tx: &mut Tx,
        entry: &LogEntry<'_>,
    ) -> Result<(), BackendError> {
        if let Tx::Sqlite(t) = tx {
            let violations: Vec<SqliteRow> = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut **t)
                .await
                .map_err(query_err("checking foreign keys"))?;
            if !violations.is_empty() {
                let rows: Vec<String> = violations
                    .iter()
                    .map(|r| {
                        format!(
                            "{} row {} -> {}",
                            r.try_get::<String, _>(0).unwrap_or_default(),
                            r.try_get::<i64, _>(1).unwrap_or_default(),
                            r.try_get::<String, _>(2).unwrap_or_default()
                        )
                    })
                    .take(5)
                    .collect();
                return Err(BackendError::ForeignKeyCheck(rows.join("; ")));
            }
        }
        write_ledger(tx, self.dialect, entry)
            .await
            .map_err(query_err(format!(
                "recording {} in the ledger",
                entry.revision
            )))
    }

    /// Commits a transaction from [`Backend::begin`] and releases the lock.
    pub(crate) async fn commit(&self, tx: Tx) -> Result<(), BackendError> {
        let result = tx.commit().await.map_err(query_err("committing"));
        self.release().await;
        result
    }

    /// Replaces the version table's rows with `entry.heads` (unless the entry records a
    /// failure), logs, and commits.
    async fn record(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        if let Err(e) = write_ledger(&mut tx, self.dialect, entry).await {
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

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
        }
    }
}

/// What a `retort_log` row did (its `direction` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Movement {
    Up,
    Down,
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
    Done,
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
    pub revision: String,
    /// What failed: an upgrade or a downgrade (`None`: a row Retort did not write).
    pub direction: Option<Movement>,
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
    let id = match dialect {
        Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
        Dialect::Mysql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
    };
    [
        "CREATE TABLE IF NOT EXISTS retort_version (\n    version_num VARCHAR(32) NOT NULL PRIMARY KEY\n)".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS retort_log (\n    id {id},\n    revision VARCHAR(32) NOT NULL,\n    direction VARCHAR(10) NOT NULL,\n    status VARCHAR(10) NOT NULL,\n    sha256 CHAR(64) NOT NULL,\n    message TEXT NOT NULL,\n    detail TEXT NOT NULL,\n    started_at VARCHAR(40) NOT NULL,\n    finished_at VARCHAR(40) NOT NULL\n)"
        ),
    ]
}

/// Writes a step to the ledger: the version table's rows become `entry.heads` (unless
/// the entry records a failure) and the log gains a row. Online the values are bound;
/// in a script they become literals.
pub(crate) async fn write_ledger(
    tx: &mut Tx,
    dialect: Dialect,
    entry: &LogEntry<'_>,
) -> Result<(), sqlx::Error> {
    if entry.status != Status::Failed {
        tx.run("DELETE FROM retort_version").await?;
        for head in entry.heads {
            let sql = format!(
                "INSERT INTO retort_version (version_num) VALUES ({})",
                dialect.placeholder(1)
            );
            tx.run_with(&sql, &[Value::Text(head.clone())]).await?;
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
    tx.run_with(&sql, &values).await?;
    Ok(())
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Tx {
    /// The script, when this run renders SQL instead of executing it.
    pub fn script(&mut self) -> Option<&mut Script> {
        match self {
            Tx::Script(s) => Some(s),
            _ => None,
        }
    }

    /// Runs one rendered statement without parameters.
    pub async fn run(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        let query = AssertSqlSafe(sql.to_owned());
        Ok(
            on_tx!(self, t => sqlx::query(query).execute(&mut **t).await?.rows_affected(), s => s.run(sql).await?),
        )
    }

    /// Runs a statement with bound parameters; a script gets them as literals.
    pub async fn run_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, sqlx::Error> {
        let text = || AssertSqlSafe(sql.to_owned());
        Ok(match self {
            Tx::Sqlite(t) => bind_values!(sqlx::query(text()), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::SqliteAuto(t) => bind_values!(sqlx::query(text()), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::PostgresAuto(t) => bind_values!(sqlx::query(text()).persistent(false), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::MySqlAuto(t) => bind_values!(sqlx::query(text()), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            // Not kept as a prepared statement: the same SQL may come again with a NULL
            // where a value was (or the reverse), and PostgreSQL would keep the first
            // parameter types. (MySQL re-reads them each time, and closing statements
            // there costs a delayed-ACK round trip per execution.)
            Tx::Postgres(t) => bind_values!(sqlx::query(text()).persistent(false), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::MySql(t) => bind_values!(sqlx::query(text()), params)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Tx::Script(s) => {
                let inlined = s
                    .dialect
                    .inline(sql, params)
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                s.run(&inlined).await?
            }
        })
    }

    /// The result column names of a query, without running it.
    pub async fn columns_of(&mut self, sql: &str) -> Result<Vec<String>, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        Ok(on_tx!(self, t => {
            let statement = (&mut **t).prepare(sqlx::SqlSafeStr::into_sql_str(sql)).await?;
            statement.columns().iter().map(|c| c.name().to_owned()).collect()
        }, _s => return Err(offline_error("a query"))))
    }

    /// Rows of a statement run as plain text (no parameters), values by their type,
    /// skipping the first `skip` columns.
    pub async fn rows(&mut self, sql: &str, skip: usize) -> Result<Vec<Vec<Value>>, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Tx::Sqlite(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| sqlite_values(r, skip)).collect()
            }
            Tx::SqliteAuto(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| sqlite_values(r, skip)).collect()
            }
            Tx::PostgresAuto(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| pg_values(r, skip)).collect()
            }
            Tx::MySqlAuto(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| mysql_values(r, skip)).collect()
            }
            Tx::Postgres(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| pg_values(r, skip)).collect()
            }
            Tx::MySql(t) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut **t).await?;
                rows.iter().map(|r| mysql_values(r, skip)).collect()
            }
            Tx::Script(_) => Err(offline_error("reading rows")),
        }
    }

    /// Text columns of a query with text parameters, e.g. for reading the catalog.
    pub async fn strings(
        &mut self,
        sql: &str,
        params: &[&str],
    ) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        let values: Vec<Value> = params.iter().map(|p| Value::Text(p.to_string())).collect();
        let sql = AssertSqlSafe(sql.to_owned());
        on_tx!(self, t => {
            let rows = bind_values!(sqlx::query(sql), &values).fetch_all(&mut **t).await?;
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.try_get::<Option<String>, _>(i)).collect())
                .collect()
        }, s => s.strings(&sql.0, &values).await)
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
            Tx::MySql(t) => t.commit().await,
            _ => Ok(()),
        }
    }

    /// False for a revision running outside a transaction (and for a script).
    pub fn in_transaction(&self) -> bool {
        matches!(self, Tx::Sqlite(_) | Tx::Postgres(_) | Tx::MySql(_))
    }
}

/// SQLite values by their storage class.
fn sqlite_values(row: &SqliteRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
    (skip..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let ty = raw.type_info().name().to_owned();
            Ok(match ty.as_str() {
                "INTEGER" | "BOOLEAN" | "INT8" => Value::S64(row.try_get_unchecked(i)?),
                "REAL" => Value::F64(row.try_get_unchecked(i)?),
                "BLOB" => Value::Blob(row.try_get_unchecked(i)?),
                _ => Value::Text(row.try_get_unchecked(i)?),
            })
        })
        .collect()
}

/// Interprets a value in the text format by its column type.
fn from_text(ty: &str, text: &[u8], bytea_hex: bool) -> Value {
    let s = String::from_utf8_lossy(text);
    let parsed = match ty {
        "INT2" | "INT4" | "INT8" | "SMALLINT" | "INT" | "INTEGER" | "BIGINT" | "MEDIUMINT"
        | "TINYINT" | "YEAR" => s.parse().ok().map(Value::S64),
        "FLOAT4" | "FLOAT8" | "FLOAT" | "DOUBLE" | "REAL" => s.parse().ok().map(Value::F64),
        "BOOL" => Some(Value::Boolean(s == "t" || s == "true")),
        "BOOLEAN" => Some(Value::Boolean(s == "1" || s == "t" || s == "true")),
        "BYTEA" if bytea_hex => s
            .strip_prefix("\\x")
            .and_then(|h| hex::decode(h).ok())
            .map(Value::Blob),
        "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" => {
            Some(Value::Blob(text.to_vec()))
        }
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::Text(s.into_owned()))
}

fn pg_values(row: &PgRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
    (skip..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let ty = raw.type_info().name().to_owned();
            let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
            Ok(from_text(&ty, bytes, true))
        })
        .collect()
}

fn mysql_values(row: &MySqlRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
    (skip..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let ty = raw.type_info().name().to_owned();
            let bytes: Vec<u8> = row.try_get_unchecked(i)?;
            Ok(from_text(&ty, &bytes, false))
        })
        .collect()
}
