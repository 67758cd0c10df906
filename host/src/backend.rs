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
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column as _, Connection as _, Executor as _, MySql, MySqlPool, PgPool, Postgres,
    Row as _, Sqlite, SqlitePool, Statement as _, Transaction, TypeInfo, ValueRef,
};

use crate::dialect::Dialect;
use crate::wit::Value;

pub const VERSION_TABLE: &str = "retort_version";

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
}

fn query_err(doing: impl Into<String>) -> impl Fn(sqlx::Error) -> BackendError {
    let doing = doing.into();
    move |source| BackendError::Query {
        doing: doing.clone(),
        source,
    }
}

/// Masks the password of a URL for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:***@{host}{slash}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// One line saying why a connection failed, without the URL's secrets.
fn connect_reason(e: &sqlx::Error, url: &str) -> String {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .map(|a| a.rsplit_once('@').map_or(a, |(_, h)| h))
        .unwrap_or(url);
    match e {
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
        other => other.to_string(),
    }
}

/// A one-connection pool, after one direct connection: a pool retries until its timeout
/// and then reports only that, where a single attempt says why (refused, password,
/// unknown database).
async fn open<O>(
    options: O,
    timeout: Duration,
) -> Result<sqlx::Pool<<O::Connection as sqlx::Connection>::Database>, sqlx::Error>
where
    O: sqlx::ConnectOptions,
    O::Connection: Sized,
{
    options.connect().await?.close().await?;
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
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
}

/// The transaction one revision runs in, or the script it is rendered into.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    MySql(Transaction<'static, MySql>),
    Script(Box<Script>),
}

/// Runs the same code on whichever database transaction this is; `$s` gets the script.
macro_rules! on_tx {
    ($tx:expr, $t:ident => $body:expr, $s:ident => $offline:expr) => {
        match $tx {
            Tx::Sqlite($t) => $body,
            Tx::Postgres($t) => $body,
            Tx::MySql($t) => $body,
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
pub struct Script {
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
    pub async fn connect(url: &str) -> Result<Backend, BackendError> {
        let dialect =
            Dialect::from_url(url).ok_or_else(|| BackendError::Scheme { url: redact(url) })?;
        let shown = redact(url);
        let fail = |e: sqlx::Error| BackendError::Connect {
            url: shown.clone(),
            reason: connect_reason(&e, &shown),
        };
        let timeout = Duration::from_secs(10);
        let pool = match dialect {
            Dialect::Sqlite => {
                // Foreign keys stay off while migrating, as SQLite's table rebuild
                // requires; `PRAGMA foreign_key_check` runs before every commit instead.
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(fail)?
                    .create_if_missing(true)
                    .foreign_keys(false)
                    .busy_timeout(Duration::from_secs(30));
                Pool::Sqlite(open(options, timeout).await.map_err(fail)?)
            }
            Dialect::Postgres => {
                let normalized = url.replacen("postgresql://", "postgres://", 1);
                let options = PgConnectOptions::from_str(&normalized).map_err(fail)?;
                Pool::Postgres(open(options, timeout).await.map_err(fail)?)
            }
            Dialect::Mysql => {
                let normalized = url.replacen("mariadb://", "mysql://", 1);
                let options = MySqlConnectOptions::from_str(&normalized).map_err(fail)?;
                Pool::MySql(open(options, timeout).await.map_err(fail)?)
            }
        };
        Ok(Backend {
            pool,
            dialect,
            url: shown,
        })
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

    /// The last revision that failed on a database whose DDL is not transactional
    /// (MariaDB/MySQL) and has not been resolved (by `stamp` or `repair`) since.
    pub async fn unresolved_failure(&self) -> Result<Option<Failure>, BackendError> {
        if self.dialect != Dialect::Mysql || !self.ledger_exists().await? {
            return Ok(None);
        }
        let Pool::MySql(p) = &self.pool else {
            unreachable!("mysql dialect has a mysql pool")
        };
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT revision, direction, status, detail FROM retort_log ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(p)
        .await
        .map_err(query_err("reading the ledger"))?;
        Ok(row.and_then(|(revision, direction, status, detail)| {
            (status == "failed").then_some(Failure {
                revision,
                direction,
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
            match direction.as_str() {
                "up" => {
                    applied.insert(revision, sha256);
                }
                "down" => {
                    applied.remove(&revision);
                }
                _ => {}
            }
        }
        Ok(applied)
    }

    /// Starts a revision's transaction (creating the ledger tables on first use).
    pub async fn begin(&self) -> Result<Tx, BackendError> {
        let err = query_err("starting a transaction");
        let mut tx = match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await.map_err(err)?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await.map_err(err)?),
            Pool::MySql(p) => Tx::MySql(p.begin().await.map_err(err)?),
        };
        for sql in ledger_tables(self.dialect) {
            tx.run(&sql)
                .await
                .map_err(query_err("creating the ledger tables"))?;
        }
        Ok(tx)
    }

    /// Checks foreign keys (SQLite), records the step in the ledger and commits.
    pub async fn finish(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        if let Tx::Sqlite(t) = &mut tx {
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
        self.record(tx, entry).await
    }

    /// Replaces the version table's rows with `entry.heads` (unless the entry records a
    /// failure), logs, and commits.
    async fn record(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        write_ledger(&mut tx, self.dialect, entry)
            .await
            .map_err(query_err(format!(
                "recording {} in the ledger",
                entry.revision
            )))?;
        tx.commit().await.map_err(query_err("committing"))
    }

    /// Records a revision that failed on a database that cannot roll its DDL back.
    pub async fn record_failure(&self, entry: &LogEntry<'_>) -> Result<(), BackendError> {
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
            direction: "stamp",
            status: "done",
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

/// A failed revision the ledger remembers (MariaDB/MySQL).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub revision: String,
    /// `up` or `down`.
    pub direction: String,
    pub detail: String,
}

impl Failure {
    /// `upgrade` or `downgrade`.
    pub fn verb(&self) -> &'static str {
        if self.direction == "down" {
            "downgrade"
        } else {
            "upgrade"
        }
    }
}

/// What the ledger records for one step.
pub struct LogEntry<'a> {
    pub revision: &'a str,
    /// `up`, `down` or `stamp`.
    pub direction: &'a str,
    /// `done` or `failed`.
    pub status: &'a str,
    pub sha256: &'a str,
    pub message: &'a str,
    /// For a failure: the error and the op it stopped at.
    pub detail: &'a str,
    /// The version table's heads after this step.
    pub heads: &'a [String],
    pub started_at: String,
}

/// The ledger tables, created when missing (docs/ledger.md).
pub fn ledger_tables(dialect: Dialect) -> [String; 2] {
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
pub async fn write_ledger(
    tx: &mut Tx,
    dialect: Dialect,
    entry: &LogEntry<'_>,
) -> Result<(), sqlx::Error> {
    if entry.status != "failed" {
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
        entry.direction,
        entry.status,
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

pub fn now() -> String {
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
        on_tx!(self, t => t.commit().await, _s => Ok(()))
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
