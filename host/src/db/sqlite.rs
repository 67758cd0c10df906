//! SQLite: the embedded default. The lock is the write lock `BEGIN IMMEDIATE` takes;
//! foreign keys stay off while migrating (the table rebuild needs it) and are checked
//! before every commit instead; a progress handler ends a statement when the call's
//! time is up.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Row as _, Transaction, TypeInfo as _, ValueRef as _};

use super::{BoxFuture, Capabilities, Engine, LockKind, LockWait, Tx, query_err, sqlx_conn};
use crate::backend::BackendError;
use crate::dialect::Dialect;
use crate::wit::Value;

pub(super) static CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Sqlite,
    transactional_ddl: true,
    lock: LockKind::Transaction,
    savepoint_per_op: false,
    ledger_before_transaction: false,
    ledger_exists_sql: "SELECT CAST(count(*) AS TEXT) FROM sqlite_master WHERE type = 'table' AND name = 'retort_version'",
};

/// A connected SQLite database.
#[derive(Debug)]
pub(crate) struct Sqlite {
    pool: SqlitePool,
    /// Set when the call's time is up: the progress handler then interrupts.
    interrupt: Arc<AtomicBool>,
}

sqlx_conn!(Transaction<'static, sqlx::Sqlite>, in_transaction: true, values: values, persistent: true);
sqlx_conn!(PoolConnection<sqlx::Sqlite>, in_transaction: false, values: values, persistent: true);

impl Sqlite {
    pub(crate) async fn connect(url: &str) -> Result<Sqlite, sqlx::Error> {
        // Foreign keys stay off while migrating, as SQLite's table rebuild requires;
        // `PRAGMA foreign_key_check` runs before every commit instead.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(false)
            .busy_timeout(Duration::from_secs(30));
        let interrupt = Arc::new(AtomicBool::new(false));
        let flag = interrupt.clone();
        let pool = sqlx::pool::PoolOptions::<sqlx::Sqlite>::new().after_connect(move |conn, _| {
            let flag = flag.clone();
            Box::pin(async move {
                // Every 10,000 virtual-machine steps: is the call's time up?
                conn.lock_handle()
                    .await?
                    .set_progress_handler(10_000, move || !flag.load(Ordering::Relaxed));
                Ok(())
            })
        });
        Ok(Sqlite {
            pool: super::open(options, pool).await?,
            interrupt,
        })
    }
}

impl Engine for Sqlite {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    fn fetch_strings<'a>(
        &'a self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>> {
        Box::pin(super::pool_strings(&self.pool, sql))
    }

    fn begin<'a>(&'a self, wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>> {
        Box::pin(async move {
            let err = query_err("starting a transaction");
            let ms = wait.timeout.as_millis().max(1);
            sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
                .execute(&self.pool)
                .await
                .map_err(&err)?;
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(t) => Ok(Box::new(t) as Tx),
                Err(e) if super::is_lock_timeout(&e) => Err(wait.timed_out(
                    "another connection holds the database's write lock (SQLite cannot say which)"
                        .into(),
                )),
                Err(e) => Err(err(e)),
            }
        })
    }

    fn begin_outside<'a>(&'a self, _wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>> {
        // SQLite has no lock outside a transaction.
        Box::pin(async move {
            let conn = self
                .pool
                .acquire()
                .await
                .map_err(query_err("taking the migration lock"))?;
            Ok(Box::new(conn) as Tx)
        })
    }

    fn unlock_outside<'a>(&'a self, _tx: &'a mut Tx) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn interrupt(&self) -> BoxFuture<'_, ()> {
        self.interrupt.store(true, Ordering::Relaxed);
        Box::pin(async {})
    }

    fn clear_interrupt(&self) {
        self.interrupt.store(false, Ordering::Relaxed);
    }

    fn dangerous_privileges(&self) -> BoxFuture<'_, Result<Vec<String>, sqlx::Error>> {
        // SQLite has no roles.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn before_commit<'a>(&'a self, tx: &'a mut Tx) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if !tx.in_transaction() {
                return Ok(());
            }
            let violations = tx
                .strings(
                    "SELECT \"table\", CAST(rowid AS TEXT), parent FROM pragma_foreign_key_check",
                    &[],
                )
                .await
                .map_err(query_err("checking foreign keys"))?;
            if violations.is_empty() {
                return Ok(());
            }
            let rows: Vec<String> = violations
                .iter()
                .take(5)
                .map(|r| {
                    let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                    format!("{} row {} -> {}", col(0), col(1), col(2))
                })
                .collect();
            Err(BackendError::ForeignKeyCheck(rows.join("; ")))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }
}

/// SQLite values by their storage class.
fn values(row: &SqliteRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
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
