//! MySQL/MariaDB: DDL commits as it runs (no transactional DDL); the lock is the
//! session's named lock (`GET_LOCK`, server-wide, so it names the database); every
//! session is pinned to the `sql_mode` the policy reads SQL in; a statement is ended
//! from a second connection with `KILL QUERY`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection as _, Row as _, Transaction, TypeInfo as _, ValueRef as _};

use super::{BoxFuture, Capabilities, Engine, LockKind, LockWait, Tx, query_err, sqlx_conn};
use crate::backend::{BackendError, Session, ledger_tables};
use crate::dialect::Dialect;
use crate::wit::Value;

pub(super) static CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Mysql,
    transactional_ddl: false,
    lock: LockKind::Session,
    savepoint_per_op: false,
    ledger_before_transaction: true,
    ledger_exists_sql: "SELECT CAST(count(*) AS CHAR) FROM information_schema.tables WHERE table_schema = database() AND table_name = 'retort_version'",
};

/// The `GET_LOCK` name: locks are server-wide, so it names the database.
const LOCK: &str = "CONCAT('retort:', DATABASE())";

/// A connected MySQL or MariaDB database.
#[derive(Debug)]
pub(crate) struct MySql {
    pool: MySqlPool,
    /// For the second connection that ends a statement.
    options: MySqlConnectOptions,
    /// The migration session's connection id.
    id: Arc<AtomicI64>,
}

// (MySQL re-reads parameter types each time; closing statements there costs a
// delayed-ACK round trip per execution, so they stay prepared.)
sqlx_conn!(Transaction<'static, sqlx::MySql>, in_transaction: true, values: values, persistent: true);
sqlx_conn!(PoolConnection<sqlx::MySql>, in_transaction: false, values: values, persistent: true);

impl MySql {
    pub(crate) async fn connect(url: &str, session: &Session) -> Result<MySql, sqlx::Error> {
        let normalized = url.replacen("mariadb://", "mysql://", 1);
        let options = MySqlConnectOptions::from_str(&normalized)?;
        let id = Arc::new(AtomicI64::new(0));
        let slot = id.clone();
        let limit_ms = session.statement_limit().map(|l| l.as_millis());
        let pool = sqlx::pool::PoolOptions::<sqlx::MySql>::new().after_connect(move |conn, _| {
            let slot = slot.clone();
            Box::pin(async move {
                // The policy reads SQL as the default mode does: backslash escapes in
                // strings, double quotes for strings (not identifiers).
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
        Ok(MySql {
            pool: super::open(options.clone(), pool).await?,
            options,
            id,
        })
    }

    /// The named lock for `conn`'s session, waiting up to the lock timeout; `false`
    /// when the wait ran out.
    async fn lock(
        conn: &mut sqlx::MySqlConnection,
        wait: &LockWait<'_>,
    ) -> Result<bool, BackendError> {
        let secs = wait.timeout.as_secs_f64().max(0.001);
        let got: Option<i64> =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT GET_LOCK({LOCK}, {secs})")))
                .fetch_one(&mut *conn)
                .await
                .map_err(query_err("taking the migration lock"))?;
        Ok(got == Some(1))
    }

    /// Who holds the named lock.
    async fn holder(&self) -> String {
        let row: Result<Option<(i64, String, String, i64)>, _> = sqlx::query_as(AssertSqlSafe(
            format!(
                "SELECT CAST(ID AS SIGNED), USER, HOST, CAST(TIME AS SIGNED) FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK({LOCK})"
            ),
        ))
        .fetch_optional(&self.pool)
        .await;
        match row {
            Ok(Some((id, user, host, time))) => format!(
                "it is held by connection {id} ({user}@{host}, for {time} s in its current state)"
            ),
            Ok(None) => "it was released just as the wait ended".into(),
            Err(e) => format!("its holder could not be read: {e}"),
        }
    }
}

impl Engine for MySql {
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
            let mut c = self.pool.acquire().await.map_err(&err)?;
            if !Self::lock(&mut c, &wait).await? {
                drop(c);
                return Err(wait.timed_out(self.holder().await));
            }
            // DDL would end the transaction (an implicit commit): the ledger tables are
            // made first, under the lock, outside it.
            for sql in ledger_tables(Dialect::Mysql) {
                if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *c).await {
                    drop(c);
                    self.release().await;
                    return Err(query_err("creating the ledger tables")(e));
                }
            }
            drop(c);
            // The pool's one connection, which holds the lock.
            match self.pool.begin().await {
                Ok(t) => Ok(Box::new(t) as Tx),
                Err(e) => {
                    self.release().await;
                    Err(err(e))
                }
            }
        })
    }

    fn begin_outside<'a>(&'a self, wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>> {
        Box::pin(async move {
            let mut c = self
                .pool
                .acquire()
                .await
                .map_err(query_err("taking the migration lock"))?;
            if !Self::lock(&mut c, &wait).await? {
                drop(c);
                return Err(wait.timed_out(self.holder().await));
            }
            Ok(Box::new(c) as Tx)
        })
    }

    fn unlock_outside<'a>(&'a self, tx: &'a mut Tx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // A lost connection took its lock with it.
            let _ = tx.run(&format!("DO RELEASE_LOCK({LOCK})")).await;
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // A lost connection took the lock with it, so failing here is harmless.
            let _ = sqlx::raw_sql(AssertSqlSafe(format!("DO RELEASE_LOCK({LOCK})")))
                .execute(&self.pool)
                .await;
        })
    }

    fn interrupt(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let id = self.id.load(Ordering::Relaxed);
            if let Ok(mut conn) = sqlx::ConnectOptions::connect(&self.options).await {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!("KILL QUERY {id}")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        })
    }

    fn dangerous_privileges(&self) -> BoxFuture<'_, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES \
                 WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                 SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
            )
            .fetch_all(&self.pool)
            .await?;
            let mut found: Vec<String> = rows
                .iter()
                .filter(|(p, _)| p == "FILE" || p == "SUPER")
                .map(|(p, _)| format!("{p} ON *.*"))
                .collect();
            if rows.iter().any(|(_, grantable)| grantable == "YES") {
                found.push("GRANT OPTION ON *.*".into());
            }
            Ok(found)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }
}

fn values(row: &MySqlRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
    (skip..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let ty = raw.type_info().name().to_owned();
            let bytes: Vec<u8> = row.try_get_unchecked(i)?;
            Ok(super::from_text(&ty, &bytes, false))
        })
        .collect()
}
