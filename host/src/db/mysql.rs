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

use super::{
    Alteration, AutoIncrement, BoxFuture, Capabilities, Comments, Engine, ErrorClass, Flavor,
    LockKind, LockWait, Placeholder, Syntax, Tx, query_err, sqlx_conn,
};
use crate::backend::{BackendError, Session, ledger_tables};
use crate::dialect::{Dialect, RenderError, quote_text};
use crate::ops::{OpState, db_error};
use crate::wit::{Error, SqlDialect, SqlType, Value};

static CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Mysql,
    name: "mysql",
    schemes: &["mysql", "mariadb"],
    wit: SqlDialect::Mysql,
    transactional_ddl: false,
    lock: LockKind::Session,
    savepoint_per_op: false,
    ledger_before_transaction: true,
    ledger_exists_sql: "SELECT CAST(count(*) AS CHAR) FROM information_schema.tables WHERE table_schema = database() AND table_name IN ('retort_version', 'retort_log')",
    ledger_key: "BIGINT AUTO_INCREMENT PRIMARY KEY",
    begin: "START TRANSACTION",
    // The script is UTF-8, and its literals escape as the default sql_mode reads them
    // (backslash escapes on; `string_literal` below).
    script_preamble: "SET NAMES utf8mb4;\n\n",
    script_replays: true,
    script_in_memory: false,
    batches: false,
    quote: '`',
    placeholder: Placeholder::Question,
    booleans: ["FALSE", "TRUE"],
    comments: Comments::Inline,
    autoincrement: AutoIncrement::Keyword("AUTO_INCREMENT"),
    drop_index_on_table: true,
    cursor_inlines_values: false,
    syntax: Syntax {
        executable_comments: true,
        // The mariadb/mysql client's own commands, which it runs when one starts a
        // statement of a script (`system` runs a shell command).
        client_commands: &[
            "system",
            "source",
            "pager",
            "nopager",
            "tee",
            "notee",
            "delimiter",
            "connect",
            "charset",
            "edit",
            "ego",
            "go",
            "rehash",
            "prompt",
            "warnings",
            "nowarning",
            "status",
            "exit",
            "quit",
            "help",
            "clear",
            "print",
            "query_attributes",
            "resetconnection",
        ],
        unicode_identifiers: false,
        execute_in_bodies: false,
        statements: &[
            // USE would move the ledger writes to another database.
            ("use", "databases"),
            ("kill", "server-admin"),
            ("shutdown", "server-admin"),
            ("flush", "server-admin"),
            ("purge", "server-admin"),
            ("reset", "server-admin"),
            ("change", "server-admin"),
            ("prepare", "dynamic-sql"),
        ],
    },
};

/// MySQL/MariaDB's SQL and ops.
pub(crate) struct MySqlFlavor;

impl Flavor for MySqlFlavor {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    fn parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::MySqlDialect {})
    }

    fn connect<'a>(
        &'a self,
        url: &'a str,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Box<dyn Engine>, sqlx::Error>> {
        Box::pin(
            async move { Ok(Box::new(MySql::connect(url, session).await?) as Box<dyn Engine>) },
        )
    }

    /// By error number.
    fn classify(&self, e: &dyn sqlx::error::DatabaseError) -> Option<ErrorClass> {
        let e = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?;
        Some(match e.number() {
            // Server shutdown; aborted or broken connection; connection killed
            // (MariaDB, MySQL); gone away, lost (client).
            1053 | 1152 | 1158..=1161 | 1927 | 3169 | 2006 | 2013 => ErrorClass::ConnectionLost,
            // Lock wait timeout.
            1205 => ErrorClass::LockTimeout,
            // Unknown table, column, key; can't DROP; no such table.
            1051 | 1054 | 1091 | 1146 | 1176 => ErrorClass::NotFound,
            // Table, column, key name exists; duplicate foreign key.
            1050 | 1060 | 1061 | 1826 => ErrorClass::Exists,
            // Check constraint violated; cannot add or update a child row; duplicate
            // entry; column cannot be null.
            3819 | 4025 | 1216 | 1217 | 1451 | 1452 | 1062 | 1048 => ErrorClass::Constraint,
            _ if e.code() == Some("08S01") => ErrorClass::ConnectionLost,
            _ => ErrorClass::Other,
        })
    }

    fn column_type(&self, ty: &SqlType, _autoincrement: bool) -> Option<String> {
        Some(match ty {
            SqlType::Integer => "INT".into(),
            SqlType::Boolean => "TINYINT(1)".into(),
            SqlType::Real => "FLOAT".into(),
            SqlType::Text => "LONGTEXT".into(),
            SqlType::Blob => "LONGBLOB".into(),
            SqlType::Timestamp => "DATETIME(6)".into(),
            SqlType::TimestampTz => "TIMESTAMP(6)".into(),
            SqlType::Uuid => "CHAR(36)".into(),
            _ => return None,
        })
    }

    /// `'…'` with quotes doubled and backslashes and NUL escaped (`\\`, `\0`), as the
    /// default `sql_mode` reads them. Retort pins its sessions to a mode without
    /// `NO_BACKSLASH_ESCAPES` and refuses guest changes to `sql_mode`; a quote is never
    /// written as `\'`, so a script read with that mode cannot end a literal early.
    fn string_literal(&self, s: &str) -> Result<String, RenderError> {
        Ok(quote_text(s, true, true))
    }

    /// A cursor is a temporary table with its own row counter, read in order of it.
    fn snapshot<'a>(
        &'a self,
        tx: &'a mut Tx,
        cursor: &'a str,
        sql: &'a str,
        params: &'a [Value],
        _sent: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async move {
            tx.run_with(
                &format!(
                    "CREATE TEMPORARY TABLE {cursor} (`_retort_rowid` BIGINT AUTO_INCREMENT PRIMARY KEY) AS {sql}"
                ),
                params,
            )
            .await?;
            tx.columns_of(sql).await
        })
    }

    fn fetch(&self, cursor: &str, after: i64, limit: u32) -> (String, usize) {
        (
            format!(
                "SELECT * FROM {cursor} WHERE `_retort_rowid` > {after} ORDER BY `_retort_rowid` LIMIT {limit}"
            ),
            1,
        )
    }

    fn release(&self, cursor: &str) -> String {
        format!("DROP TEMPORARY TABLE IF EXISTS {cursor}")
    }

    fn alter_column<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        change: Alteration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(modify_column(ops, table, change))
    }

    /// Each kind of constraint is dropped with its own syntax.
    fn drop_constraint<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let kind = if ops.offline() {
                ops.model()
                    .and_then(|m| m.constraint_kind(table, name))
                    .map(str::to_owned)
            } else {
                let rows = ops
                    .tx()
                    .strings(
                        "SELECT CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS \
                         WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?",
                        &[table, name],
                    )
                    .await
                    .map_err(db_error)?;
                rows.into_iter()
                    .next()
                    .and_then(|r| r.into_iter().next().flatten())
            };
            let t = ops.ident(table)?;
            let n = ops.ident(name)?;
            let sql = match kind.as_deref() {
                Some("FOREIGN KEY") => format!("ALTER TABLE {t} DROP FOREIGN KEY {n}"),
                Some("UNIQUE") => format!("ALTER TABLE {t} DROP INDEX {n}"),
                Some("PRIMARY KEY") => format!("ALTER TABLE {t} DROP PRIMARY KEY"),
                Some(_) => format!("ALTER TABLE {t} DROP CONSTRAINT {n}"),
                None => {
                    return Err(Error::NotFound(format!(
                        "constraint {name:?} on table {table:?}"
                    )));
                }
            };
            ops.ddl_inner(&sql).await
        })
    }

    /// MySQL/MariaDB end the transaction at every DDL statement (an implicit commit)
    /// and go on in autocommit. After a statement that may have done so, a new
    /// transaction starts, so that what follows still rolls back with the revision.
    /// (Only when the transaction really ended: START TRANSACTION would commit an
    /// active one.)
    fn after_ddl<'a>(&'a self, ops: &'a mut OpState) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !ops.in_transaction() {
                return;
            }
            let tx = ops.tx();
            let active = tx
                .strings("SELECT CAST(@@in_transaction AS CHAR)", &[])
                .await
                .ok()
                .and_then(|rows| rows.into_iter().next())
                .and_then(|row| row.into_iter().next().flatten());
            // MySQL has no @@in_transaction: there the DDL's implicit commit stands.
            if active.as_deref() == Some("0") {
                let _ = tx.run("START TRANSACTION").await;
            }
        })
    }
}

/// `MODIFY COLUMN` restates the whole column: the parts not being changed are read from
/// information_schema (or, in a script, from the schema model, in the same shape).
async fn modify_column(ops: &mut OpState, table: &str, change: Alteration) -> Result<(), Error> {
    let Alteration {
        column,
        new_type,
        nullable,
        default,
    } = change;
    let rows = if ops.offline() {
        let known = ops.model().and_then(|m| m.column(table, &column).cloned());
        known
            .map(|c| {
                vec![vec![
                    Some(c.ty),
                    Some(if c.nullable { "YES" } else { "NO" }.to_owned()),
                    c.default.map(|e| format!("({e})")),
                    c.autoincrement.then(|| "auto_increment".to_owned()),
                    c.comment,
                ]]
            })
            .unwrap_or_default()
    } else {
        ops.tx()
            .strings(
                "SELECT COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                &[table, &column],
            )
            .await
            .map_err(db_error)?
    };
    let Some(row) = rows.into_iter().next() else {
        return Err(Error::NotFound(format!("column {table}.{column}")));
    };
    let [ty, is_nullable, old_default, extra, comment]: [Option<String>; 5] = row
        .try_into()
        .map_err(|_| Error::Database("unexpected information_schema row".into()))?;
    let ty = new_type.unwrap_or_else(|| ty.unwrap_or_default());
    let nullable = nullable.unwrap_or(is_nullable.as_deref() == Some("YES"));
    let mut sql = format!(
        "ALTER TABLE {} MODIFY COLUMN {} {ty} {}",
        ops.ident(table)?,
        ops.ident(&column)?,
        if nullable { "NULL" } else { "NOT NULL" }
    );
    let default = match default {
        Some(new) => new.map(|e| format!("({e})")),
        // MariaDB reports literal defaults quoted and no default as NULL.
        None => old_default.filter(|v| v != "NULL"),
    };
    if let Some(default) = default {
        sql.push_str(&format!(" DEFAULT {default}"));
    }
    let extra = extra.unwrap_or_default().to_lowercase();
    if extra.contains("auto_increment") {
        sql.push_str(" AUTO_INCREMENT");
    }
    if let Some(on_update) = extra.find("on update ") {
        sql.push_str(&format!(" {}", &extra[on_update..]));
    }
    if let Some(comment) = comment.filter(|c| !c.is_empty()) {
        sql.push_str(&format!(" COMMENT {}", quote_text(&comment, true, true)));
    }
    ops.ddl_inner(&sql).await
}

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
sqlx_conn!(Transaction<'static, sqlx::MySql>, in_transaction: true, rows: rows, persistent: true);
sqlx_conn!(PoolConnection<sqlx::MySql>, in_transaction: false, rows: rows, persistent: true);

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

/// A statement's rows, through sqlx.
async fn rows(
    conn: &mut sqlx::mysql::MySqlConnection,
    sql: &str,
    skip: usize,
) -> Result<Vec<Vec<Value>>, sqlx::Error> {
    super::raw_rows(conn, sql, skip, values).await
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
