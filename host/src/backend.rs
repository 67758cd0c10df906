//! Database access through sqlx: connections, the revision transaction, the ledger
//! tables, and the statements ops render. Knows nothing about wasm.
//!
//! Ledger tables (documented in docs/ledger.md, readable with plain SQL):
//! - `retort_version(version_num)`: one row per applied head, as Alembic's
//!   `alembic_version`.
//! - `retort_log`: one row per revision applied or reverted, with the component's SHA-256.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow};
use sqlx::{
    AssertSqlSafe, Column as _, Row as _, Sqlite, SqlitePool, Transaction, TypeInfo, ValueRef,
};

use crate::dialect::Dialect;
use crate::wit::Value;

pub const VERSION_TABLE: &str = "retort_version";

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unsupported database URL {url:?}: use sqlite:PATH, postgres://... or mysql://...")]
    Scheme { url: String },
    #[error("{dialect} databases are not supported by this build yet (only sqlite)")]
    NotYet { dialect: &'static str },
    #[error("cannot open database {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
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
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{user}:***@{host}{slash}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A database Retort migrates.
#[derive(Debug, Clone)]
pub struct Backend {
    pool: SqlitePool,
    dialect: Dialect,
    url: String,
}

/// The transaction one revision runs in.
pub type Tx = Transaction<'static, Sqlite>;

impl Backend {
    pub async fn connect(url: &str) -> Result<Backend, BackendError> {
        let dialect =
            Dialect::from_url(url).ok_or_else(|| BackendError::Scheme { url: redact(url) })?;
        if dialect != Dialect::Sqlite {
            return Err(BackendError::NotYet {
                dialect: dialect.name(),
            });
        }
        let connect = |source| BackendError::Connect {
            url: redact(url),
            source,
        };
        // Foreign keys stay off while migrating, as SQLite's table rebuild requires;
        // `PRAGMA foreign_key_check` runs before every commit instead.
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .foreign_keys(false)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(connect)?;
        Ok(Backend {
            pool,
            dialect,
            url: redact(url),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The applied heads; empty when the ledger does not exist yet.
    pub async fn heads(&self) -> Result<Vec<String>, BackendError> {
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(VERSION_TABLE)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("reading the ledger"))?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT version_num FROM retort_version ORDER BY version_num")
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("reading the ledger"))?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// Starts a revision's transaction (creating the ledger tables on first use).
    pub async fn begin(&self) -> Result<Tx, BackendError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query_err("starting a transaction"))?;
        for sql in [
            "CREATE TABLE IF NOT EXISTS retort_version (\n    version_num VARCHAR(32) NOT NULL PRIMARY KEY\n)",
            "CREATE TABLE IF NOT EXISTS retort_log (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    revision VARCHAR(32) NOT NULL,\n    direction VARCHAR(10) NOT NULL,\n    sha256 CHAR(64) NOT NULL,\n    message TEXT NOT NULL,\n    started_at TEXT NOT NULL,\n    finished_at TEXT NOT NULL\n)",
        ] {
            sqlx::query(sql)
                .execute(&mut *tx)
                .await
                .map_err(query_err("creating the ledger tables"))?;
        }
        Ok(tx)
    }

    /// Checks foreign keys, records the step in the ledger and commits.
    pub async fn finish(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        let violations: Vec<SqliteRow> = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err("checking foreign keys"))?;
        if !violations.is_empty() {
            let tables: Vec<String> = violations
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
            return Err(BackendError::ForeignKeyCheck(tables.join("; ")));
        }
        self.record(tx, entry).await
    }

    /// Replaces the version table's rows with `entry.heads`, logs, and commits.
    async fn record(&self, mut tx: Tx, entry: &LogEntry<'_>) -> Result<(), BackendError> {
        let record = query_err(format!("recording {} in the ledger", entry.revision));
        sqlx::query("DELETE FROM retort_version")
            .execute(&mut *tx)
            .await
            .map_err(&record)?;
        for head in entry.heads {
            sqlx::query("INSERT INTO retort_version (version_num) VALUES (?)")
                .bind(head)
                .execute(&mut *tx)
                .await
                .map_err(&record)?;
        }
        sqlx::query(
            "INSERT INTO retort_log (revision, direction, sha256, message, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.revision)
        .bind(entry.direction)
        .bind(entry.sha256)
        .bind(entry.message)
        .bind(&entry.started_at)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(&record)?;
        tx.commit().await.map_err(query_err("committing"))
    }

    /// Sets the version table to `heads` without running any revision (`stamp`), and
    /// logs it with direction `stamp`.
    pub async fn stamp(&self, heads: &[String], purge: bool) -> Result<(), BackendError> {
        let mut tx = self.begin().await?;
        let write = query_err("stamping the version table");
        if purge {
            sqlx::query("DELETE FROM retort_version")
                .execute(&mut *tx)
                .await
                .map_err(&write)?;
        }
        let entry = LogEntry {
            revision: if heads.is_empty() { "base" } else { &heads[0] },
            direction: "stamp",
            sha256: "",
            message: &format!(
                "stamp {}",
                if heads.is_empty() {
                    "base".into()
                } else {
                    heads.join(", ")
                }
            ),
            heads,
            started_at: now(),
        };
        self.record(tx, &entry).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What the ledger records for one step.
pub struct LogEntry<'a> {
    pub revision: &'a str,
    /// `up`, `down` or `stamp`.
    pub direction: &'a str,
    pub sha256: &'a str,
    pub message: &'a str,
    /// The version table's heads after this step.
    pub heads: &'a [String],
    pub started_at: String,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs one rendered statement without parameters.
pub async fn run(tx: &mut Tx, sql: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>;

/// A guest's statement with every value bound, never spliced.
fn bound<'q>(sql: &str, params: &[Value]) -> Query<'q> {
    let mut query = sqlx::query(AssertSqlSafe(sql.to_owned()));
    for value in params {
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
}

/// Runs a statement with bound parameters.
pub async fn run_with(tx: &mut Tx, sql: &str, params: &[Value]) -> Result<u64, sqlx::Error> {
    Ok(bound(sql, params).execute(&mut **tx).await?.rows_affected())
}

/// Fetches rows with bound parameters.
pub async fn fetch_with(
    tx: &mut Tx,
    sql: &str,
    params: &[Value],
) -> Result<Vec<SqliteRow>, sqlx::Error> {
    bound(sql, params).fetch_all(&mut **tx).await
}

/// The column names of a row.
pub fn column_names(row: &SqliteRow) -> Vec<String> {
    row.columns().iter().map(|c| c.name().to_owned()).collect()
}

/// A row's values from `skip` on, by their actual storage class.
pub fn values(row: &SqliteRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
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

/// A statement to read a table's or index's stored definition.
pub async fn schema_sql(
    tx: &mut Tx,
    kind: &str,
    name: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = ? AND name = ? COLLATE NOCASE")
            .bind(kind)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.and_then(|(sql,)| sql))
}

/// The stored definitions that a rebuild of `table` must restore: its indexes, and every
/// trigger and view (dropped and recreated so the rename cannot trip over them).
pub async fn dependents(
    tx: &mut Tx,
    table: &str,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND \
         ((type = 'index' AND tbl_name = ? COLLATE NOCASE) OR type IN ('trigger', 'view')) \
         ORDER BY CASE type WHEN 'index' THEN 0 WHEN 'view' THEN 1 ELSE 2 END, rowid",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await
}
