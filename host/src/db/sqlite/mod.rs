//! SQLite: the embedded default. The lock is the write lock `BEGIN IMMEDIATE` takes;
//! foreign keys stay off while migrating (the table rebuild needs it) and are checked
//! before every commit instead; a progress handler ends a statement when the call's
//! time is up. What ALTER TABLE cannot do is a table rebuild ([`rebuild`]); a cursor is
//! a temporary table read by rowid.

pub(crate) mod rebuild;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{AssertSqlSafe, Transaction};

use self::rebuild::{Change, RebuildError};
use super::{
    Alteration, AutoIncrement, BoxFuture, Capabilities, Comments, Engine, ErrorClass, Flavor,
    LockKind, LockWait, Placeholder, Syntax, Tx, query_err, sqlx_conn,
};
use crate::backend::{BackendError, Session};
use crate::dialect::{Dialect, RenderError, quote_text};
use crate::ops::{OpState, db_error, render_error};
use crate::wit::{Error, SqlDialect, SqlType, Value};

static CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Sqlite,
    name: "sqlite",
    schemes: &["sqlite"],
    wit: SqlDialect::Sqlite,
    transactional_ddl: true,
    lock: LockKind::Transaction,
    savepoint_per_op: false,
    ledger_before_transaction: false,
    ledger_exists_sql: "SELECT CAST(count(*) AS TEXT) FROM sqlite_master WHERE type = 'table' AND name IN ('retort_version', 'retort_log')",
    ledger_key: "INTEGER PRIMARY KEY AUTOINCREMENT",
    begin: "BEGIN",
    script_preamble: "PRAGMA foreign_keys = OFF;\n\n",
    script_replays: true,
    script_in_memory: true,
    batches: true,
    quote: '"',
    placeholder: Placeholder::Question,
    booleans: ["0", "1"],
    comments: Comments::Dropped,
    autoincrement: AutoIncrement::RowidAlias,
    drop_index_on_table: false,
    cursor_inlines_values: false,
    syntax: Syntax {
        executable_comments: false,
        client_commands: &[],
        unicode_identifiers: false,
        execute_in_bodies: false,
        statements: &[],
    },
};

/// SQLite's SQL and ops.
pub(crate) struct SqliteFlavor;

impl Flavor for SqliteFlavor {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    fn parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::SQLiteDialect {})
    }

    fn connect<'a>(
        &'a self,
        url: &'a str,
        _session: &'a Session,
    ) -> BoxFuture<'a, Result<Box<dyn Engine>, sqlx::Error>> {
        Box::pin(async move { Ok(Box::new(Sqlite::connect(url).await?) as Box<dyn Engine>) })
    }

    /// SQLite reports a missing or existing object with one code (SQLITE_ERROR): there,
    /// and only there, the message decides.
    fn classify(&self, e: &dyn sqlx::error::DatabaseError) -> Option<ErrorClass> {
        use sqlx::error::ErrorKind;
        e.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
        let code = e.code().and_then(|c| c.parse::<u32>().ok()).unwrap_or(0);
        let message = e.message().to_lowercase();
        Some(match e.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => ErrorClass::Constraint,
            // SQLITE_BUSY and its extended codes.
            _ if code & 0xff == 5 => ErrorClass::LockTimeout,
            // SQLITE_CONSTRAINT and its extended codes.
            _ if code & 0xff == 19 => ErrorClass::Constraint,
            _ if message.contains("no such") => ErrorClass::NotFound,
            _ if message.contains("already exists") || message.contains("duplicate column") => {
                ErrorClass::Exists
            }
            _ => ErrorClass::Other,
        })
    }

    fn column_type(&self, ty: &SqlType, autoincrement: bool) -> Option<String> {
        Some(match ty {
            // Only `INTEGER PRIMARY KEY` is SQLite's rowid alias.
            SqlType::SmallInt | SqlType::BigInt if autoincrement => "INTEGER".into(),
            SqlType::Double => "DOUBLE".into(),
            SqlType::TimestampTz => "TIMESTAMPTZ".into(),
            _ => return None,
        })
    }

    /// `'…'` with quotes doubled; a NUL is `char(0)` concatenated in.
    fn string_literal(&self, s: &str) -> Result<String, RenderError> {
        Ok(if s.contains('\0') {
            let parts: Vec<String> = s.split('\0').map(|p| quote_text(p, false, false)).collect();
            format!("({})", parts.join(" || char(0) || "))
        } else {
            quote_text(s, false, false)
        })
    }

    fn snapshot<'a>(
        &'a self,
        tx: &'a mut Tx,
        cursor: &'a str,
        sql: &'a str,
        params: &'a [Value],
        _sent: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async move {
            tx.run_with(&format!("CREATE TEMP TABLE {cursor} AS {sql}"), params)
                .await?;
            tx.columns_of(&format!("SELECT * FROM temp.{cursor}")).await
        })
    }

    fn fetch(&self, cursor: &str, after: i64, limit: u32) -> (String, usize) {
        (
            format!(
                "SELECT * FROM temp.{cursor} WHERE rowid > {after} ORDER BY rowid LIMIT {limit}"
            ),
            0,
        )
    }

    fn release(&self, cursor: &str) -> String {
        format!("DROP TABLE IF EXISTS temp.{cursor}")
    }

    fn add_constraint<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        constraint: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(rebuild_table(ops, table, Change::AddConstraint(constraint)))
    }

    fn alter_column<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        change: Alteration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let Alteration {
            column,
            new_type,
            nullable,
            default,
        } = change;
        let change = Change::Alter {
            column,
            new_type,
            nullable,
            default,
        };
        Box::pin(rebuild_table(ops, table, change))
    }

    fn drop_constraint<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(rebuild_table(
            ops,
            table,
            Change::DropConstraint(name.to_owned()),
        ))
    }
}

/// SQLite's table rebuild: a new table with the changed definition, the rows copied,
/// the old table dropped, the new one renamed, indexes, triggers and views restored.
async fn rebuild_table(ops: &mut OpState, table: &str, change: Change) -> Result<(), Error> {
    let policy = ops.policy();
    let tx = ops.tx();
    let create = tx
        .strings(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
            &[table],
        )
        .await
        .map_err(db_error)?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten())
        .ok_or_else(|| Error::NotFound(format!("table {table:?}")))?;
    let temp = format!("_retort_rebuild_{table}");
    let new_sql = rebuild::rewrite(table, &create, &temp, &change).map_err(rebuild_error)?;
    // The rewritten table carries the guest's expressions: the same rules as any DDL.
    policy
        .check_rendered(Dialect::Sqlite, &new_sql)
        .map_err(|refusal| Error::Denied(refusal.to_string()))?;
    let columns = rebuild::columns(&create).map_err(|reason| {
        rebuild_error(RebuildError::Parse {
            table: table.to_owned(),
            reason,
        })
    })?;
    // Its indexes, and every trigger and view (dropped and recreated around the
    // rename so that SQLite's reference checks cannot trip over them).
    let dependents: Vec<(String, String, String)> = tx
        .strings(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND \
             ((type = 'index' AND tbl_name = ? COLLATE NOCASE) OR type IN ('trigger', 'view')) \
             ORDER BY CASE type WHEN 'index' THEN 0 WHEN 'view' THEN 1 ELSE 2 END, rowid",
            &[table],
        )
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|r| {
            let mut r = r.into_iter().map(Option::unwrap_or_default);
            (
                r.next().unwrap_or_default(),
                r.next().unwrap_or_default(),
                r.next().unwrap_or_default(),
            )
        })
        .collect();
    let quoted = |name: &str| Dialect::Sqlite.ident(name).map_err(render_error);
    let cols: Vec<String> = columns
        .iter()
        .map(|c| quoted(c))
        .collect::<Result<_, _>>()?;
    let cols = cols.join(", ");
    let mut statements = Vec::new();
    for (kind, name, _) in &dependents {
        if kind != "index" {
            statements.push(format!("DROP {} {}", kind.to_uppercase(), quoted(name)?));
        }
    }
    statements.push(new_sql);
    statements.push(format!(
        "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
        quoted(&temp)?,
        quoted(table)?
    ));
    statements.push(format!("DROP TABLE {}", quoted(table)?));
    statements.push(format!(
        "ALTER TABLE {} RENAME TO {}",
        quoted(&temp)?,
        quoted(table)?
    ));
    statements.extend(dependents.into_iter().map(|(_, _, sql)| sql));
    for sql in statements {
        tx.run(&sql).await.map_err(db_error)?;
    }
    Ok(())
}

fn rebuild_error(e: RebuildError) -> Error {
    match e {
        RebuildError::NoColumn { .. } | RebuildError::NoConstraint { .. } => {
            Error::NotFound(e.to_string())
        }
        RebuildError::DuplicateConstraint { .. } => Error::AlreadyExists(e.to_string()),
        RebuildError::Parse { .. } => Error::Unsupported(e.to_string()),
    }
}

/// A connected SQLite database.
#[derive(Debug)]
pub(crate) struct Sqlite {
    pool: SqlitePool,
    /// Set when the call's time is up: the progress handler then interrupts.
    interrupt: Arc<AtomicBool>,
}

sqlx_conn!(Transaction<'static, sqlx::Sqlite>, in_transaction: true, rows: rows, persistent: true);
sqlx_conn!(PoolConnection<sqlx::Sqlite>, in_transaction: false, rows: rows, persistent: true);

impl Sqlite {
    pub(crate) async fn connect(url: &str) -> Result<Sqlite, sqlx::Error> {
        // Foreign keys stay off while migrating, as SQLite's table rebuild requires;
        // `PRAGMA foreign_key_check` runs before every commit instead.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(false)
            .busy_timeout(Duration::from_secs(30))
            // Rows cross from SQLite's thread through a bounded channel: a deep one lets
            // the worker run ahead instead of waking this thread row by row (a cursor's
            // batch, a catalog read).
            .row_buffer_size(4096);
        let interrupt = Arc::new(AtomicBool::new(false));
        let flag = interrupt.clone();
        // No ping before each acquire: the connection is in this process, and a dead
        // worker fails the next statement anyway (each ping is a hop to SQLite's thread;
        // issue 16).
        let pool = sqlx::pool::PoolOptions::<sqlx::Sqlite>::new()
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
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
            // One round trip: the lock wait, then the write lock.
            let begin = format!("PRAGMA busy_timeout = {ms}; BEGIN IMMEDIATE");
            match self.pool.begin_with(AssertSqlSafe(begin)).await {
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

    fn before_commit<'a>(
        &'a self,
        tx: &'a mut Tx,
        ledger: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            const CHECK: &str =
                "SELECT \"table\", CAST(rowid AS TEXT), parent FROM pragma_foreign_key_check";
            if !tx.in_transaction() {
                return super::run_ledger(tx, ledger).await;
            }
            // The ledger writes, then the check, in one round trip: only the check
            // returns rows, and a violation rolls the writes back with the step.
            let (sql, doing) = match ledger {
                Some(batch) => (
                    format!("{batch};\n{CHECK}"),
                    "recording the step in the ledger and checking foreign keys",
                ),
                None => (CHECK.to_owned(), "checking foreign keys"),
            };
            let violations = tx.strings(&sql, &[]).await.map_err(query_err(doing))?;
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

/// A statement's rows (a cursor's batch), values by their storage class, read on this
/// thread straight from the connection's SQLite handle while sqlx's worker is locked
/// out of it. Through sqlx every row would be a message from the worker thread (a
/// wake-up and several allocations per row): a 1,000,000-row cursor spent most of its
/// time there (issue 16). The statement is bounded (a cursor reads at most
/// `[sandbox] max-batch-rows` rows of its snapshot), so holding this thread is brief,
/// and the connection's progress handler still interrupts it.
async fn rows(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    skip: usize,
) -> Result<Vec<Vec<Value>>, sqlx::Error> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle();
    // SAFETY: sqlx's worker makes no call on the handle while `locked` lives, and
    // `from_handle` borrows it (dropping the rusqlite connection, before `locked`, does
    // not close it). Only this function's statement runs on it, and is finalized here.
    #[allow(unsafe_code)]
    let db = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }.map_err(direct_error)?;
    read_rows(&db, sql, skip).map_err(direct_error)
}

fn read_rows(
    db: &rusqlite::Connection,
    sql: &str,
    skip: usize,
) -> Result<Vec<Vec<Value>>, rusqlite::Error> {
    use rusqlite::types::ValueRef;
    let mut statement = db.prepare(sql)?;
    let width = statement.column_count();
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width.saturating_sub(skip));
        for i in skip..width {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::S64(v),
                ValueRef::Real(v) => Value::F64(v),
                ValueRef::Text(t) => Value::Text(
                    std::str::from_utf8(t)
                        .map_err(|e| rusqlite::Error::Utf8Error(i, e))?
                        .to_owned(),
                ),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// A direct read's failure, as sqlx reports SQLite's (with its code and message).
fn direct_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("reading rows from SQLite: {e}"))
}
