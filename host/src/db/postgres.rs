//! PostgreSQL: transactional DDL; the lock is an advisory lock (the transaction's, or
//! the session's for a revision that runs outside one); each op runs under a savepoint;
//! a statement is cancelled from a second connection with `pg_cancel_backend`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Row as _, Transaction, TypeInfo as _, ValueRef as _};

use super::{
    Alteration, AutoIncrement, BoxFuture, Capabilities, Comments, Engine, ErrorClass, Flavor,
    LockKind, LockWait, Placeholder, Syntax, Tx, query_err, sqlx_conn,
};
use crate::backend::{BackendError, Session};
use crate::dialect::{Dialect, RenderError, quote_text};
use crate::ops::{OpState, db_error, render_error};
use crate::wit::{Error, SqlDialect, SqlType, Value};

static CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Postgres,
    name: "postgres",
    schemes: &["postgres", "postgresql"],
    wit: SqlDialect::Postgres,
    transactional_ddl: true,
    lock: LockKind::Transaction,
    savepoint_per_op: true,
    ledger_before_transaction: false,
    ledger_exists_sql: "SELECT count(*)::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('retort_version', 'retort_log')",
    ledger_key: "BIGSERIAL PRIMARY KEY",
    begin: "BEGIN",
    script_preamble: "",
    script_replays: false,
    script_in_memory: false,
    batches: false,
    quote: '"',
    placeholder: Placeholder::Numbered,
    booleans: ["FALSE", "TRUE"],
    comments: Comments::Statements,
    autoincrement: AutoIncrement::Type,
    drop_index_on_table: false,
    cursor_inlines_values: true,
    syntax: Syntax {
        executable_comments: false,
        client_commands: &[],
        unicode_identifiers: true,
        execute_in_bodies: true,
        statements: &[("load", "extensions")],
    },
};

/// PostgreSQL's SQL and ops.
pub(crate) struct PostgresFlavor;

impl Flavor for PostgresFlavor {
    fn capabilities(&self) -> &'static Capabilities {
        &CAPABILITIES
    }

    fn parser(&self) -> Box<dyn sqlparser::dialect::Dialect> {
        Box::new(sqlparser::dialect::PostgreSqlDialect {})
    }

    fn connect<'a>(
        &'a self,
        url: &'a str,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Box<dyn Engine>, sqlx::Error>> {
        Box::pin(
            async move { Ok(Box::new(Postgres::connect(url, session).await?) as Box<dyn Engine>) },
        )
    }

    /// By SQLSTATE.
    fn classify(&self, e: &dyn sqlx::error::DatabaseError) -> Option<ErrorClass> {
        let e = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
        Some(match e.code() {
            // admin_shutdown, crash_shutdown, cannot_connect_now.
            "57P01" | "57P02" | "57P03" => ErrorClass::ConnectionLost,
            // lock_not_available.
            "55P03" => ErrorClass::LockTimeout,
            // undefined_table, undefined_column, undefined_object, undefined_function,
            // invalid_schema_name
            "42P01" | "42703" | "42704" | "42883" | "3F000" => ErrorClass::NotFound,
            // duplicate_table, duplicate_column, duplicate_object, duplicate_schema
            "42P07" | "42701" | "42710" | "42P06" => ErrorClass::Exists,
            // Integrity constraint violations (class 23).
            c if c.starts_with("23") => ErrorClass::Constraint,
            _ => ErrorClass::Other,
        })
    }

    fn column_type(&self, ty: &SqlType, autoincrement: bool) -> Option<String> {
        Some(match ty {
            SqlType::SmallInt if autoincrement => "SMALLSERIAL".into(),
            SqlType::Integer if autoincrement => "SERIAL".into(),
            SqlType::BigInt if autoincrement => "BIGSERIAL".into(),
            SqlType::Blob => "BYTEA".into(),
            SqlType::Json => "JSONB".into(),
            _ => return None,
        })
    }

    /// `'…'` with quotes doubled; with a backslash, `E'…'` with backslashes doubled
    /// too, so that `standard_conforming_strings` cannot change its meaning. Text cannot
    /// hold NUL there: refused.
    fn string_literal(&self, s: &str) -> Result<String, RenderError> {
        if s.contains('\0') {
            return Err(RenderError::Unsupported(
                "PostgreSQL text cannot hold a NUL character".into(),
            ));
        }
        let quoted = quote_text(s, true, false);
        Ok(if s.contains('\\') {
            format!("E{quoted}")
        } else {
            quoted
        })
    }

    fn non_finite(&self, v: f64) -> Result<String, RenderError> {
        Ok(format!("'{v}'::float8").replace("inf", "Infinity"))
    }

    /// Not `'\\x…'`: standard_conforming_strings would change its meaning.
    fn blob_literal(&self, b: &[u8]) -> String {
        format!("decode('{}', 'hex')", hex::encode(b))
    }

    /// A cursor: `DECLARE` takes no bound parameters, so the values go in as literals,
    /// rendered and quoted by the dialect, spliced at their placeholders (`sent`). The
    /// guest's text is prepared for its column names.
    fn snapshot<'a>(
        &'a self,
        tx: &'a mut Tx,
        cursor: &'a str,
        sql: &'a str,
        _params: &'a [Value],
        sent: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async move {
            let columns = tx.columns_of(sql).await?;
            tx.run(&format!("DECLARE {cursor} NO SCROLL CURSOR FOR {sent}"))
                .await?;
            Ok(columns)
        })
    }

    fn fetch(&self, cursor: &str, _after: i64, limit: u32) -> (String, usize) {
        (format!("FETCH FORWARD {limit} FROM {cursor}"), 0)
    }

    fn release(&self, cursor: &str) -> String {
        format!("CLOSE {cursor}")
    }

    fn alter_column<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        change: Alteration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let t = ops.ident(table)?;
            let c = ops.ident(&change.column)?;
            let alter = format!("ALTER TABLE {t} ALTER COLUMN {c}");
            if let Some(ty) = change.new_type {
                ops.ddl_inner(&format!("{alter} TYPE {ty}")).await?;
            }
            if let Some(nullable) = change.nullable {
                let verb = if nullable { "DROP" } else { "SET" };
                ops.ddl_inner(&format!("{alter} {verb} NOT NULL")).await?;
            }
            match change.default {
                Some(Some(e)) => ops.ddl_inner(&format!("{alter} SET DEFAULT {e}")).await,
                Some(None) => ops.ddl_inner(&format!("{alter} DROP DEFAULT")).await,
                None => Ok(()),
            }
        })
    }

    /// PostgreSQL does not convert a text parameter to, say, a timestamp column by
    /// itself: each value is cast to its column's type.
    fn insert_casts<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        columns: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, Error>> {
        Box::pin(async move {
            if ops.offline() {
                return Ok(None);
            }
            column_types(ops, table, columns).await.map(Some)
        })
    }
}

/// The SQL types of `columns` of a table, in order.
async fn column_types(
    ops: &mut OpState,
    table: &str,
    columns: &[String],
) -> Result<Vec<String>, Error> {
    let quoted = Dialect::Postgres.ident(table).map_err(render_error)?;
    let rows = ops
        .tx()
        .strings(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            &[&quoted],
        )
        .await
        .map_err(db_error)?;
    columns
        .iter()
        .map(|c| {
            rows.iter()
                .find(|r| r.first().and_then(|n| n.as_deref()) == Some(c.as_str()))
                .and_then(|r| r.get(1).cloned().flatten())
                .ok_or_else(|| Error::NotFound(format!("column {table}.{c}")))
        })
        .collect()
}

/// Advisory lock key (two int4): "RETR", 0. Advisory locks are per database.
const LOCK: &str = "1380275282, 0";

/// A connected PostgreSQL database.
#[derive(Debug)]
pub(crate) struct Postgres {
    pool: PgPool,
    /// For the second connection that cancels a statement.
    options: PgConnectOptions,
    /// The migration session's backend pid.
    pid: Arc<AtomicI64>,
}

// Statements are not kept prepared: the same SQL may come again with a NULL where a
// value was (or the reverse), and PostgreSQL would keep the first parameter types.
sqlx_conn!(Transaction<'static, sqlx::Postgres>, in_transaction: true, rows: rows, persistent: false);
sqlx_conn!(PoolConnection<sqlx::Postgres>, in_transaction: false, rows: rows, persistent: false);

impl Postgres {
    pub(crate) async fn connect(url: &str, session: &Session) -> Result<Postgres, sqlx::Error> {
        let normalized = url.replacen("postgresql://", "postgres://", 1);
        // A crashed retort's session (and its locks) ends within a second, even in the
        // middle of a long statement; no statement outlives the call limit.
        let mut settings = vec![
            ("client_connection_check_interval", "1000".to_owned()),
            ("standard_conforming_strings", "on".to_owned()),
        ];
        if let Some(limit) = session.statement_limit() {
            settings.push(("statement_timeout", limit.as_millis().to_string()));
        }
        let options = PgConnectOptions::from_str(&normalized)?
            .application_name(&crate::backend::application_name())
            .options(settings);
        let pid = Arc::new(AtomicI64::new(0));
        let slot = pid.clone();
        let pool =
            sqlx::pool::PoolOptions::<sqlx::Postgres>::new().after_connect(move |conn, _| {
                let slot = slot.clone();
                Box::pin(async move {
                    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                        .fetch_one(&mut *conn)
                        .await?;
                    slot.store(pid.into(), Ordering::Relaxed);
                    Ok(())
                })
            });
        Ok(Postgres {
            pool: super::open(options.clone(), pool).await?,
            options,
            pid,
        })
    }

    /// The advisory lock on `conn`, waiting up to the lock timeout: the transaction's
    /// (`xact`) or the session's. `false` when the wait ran out.
    async fn lock(
        conn: &mut sqlx::PgConnection,
        xact: bool,
        wait: &LockWait<'_>,
    ) -> Result<bool, BackendError> {
        let err = query_err("taking the migration lock");
        let (local, function) = if xact {
            ("LOCAL ", "pg_advisory_xact_lock")
        } else {
            ("", "pg_advisory_lock")
        };
        let ms = wait.timeout.as_millis().max(1);
        sqlx::raw_sql(AssertSqlSafe(format!("SET {local}lock_timeout = '{ms}ms'")))
            .execute(&mut *conn)
            .await
            .map_err(&err)?;
        let locked = sqlx::raw_sql(AssertSqlSafe(format!("SELECT {function}({LOCK})")))
            .execute(&mut *conn)
            .await;
        match locked {
            Ok(_) => {}
            // (In a transaction, the failed statement aborted it: the caller drops it.)
            Err(e) if super::is_lock_timeout(&e) => {
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

    /// Who holds the advisory lock, as far as pg_stat_activity tells.
    async fn holder(&self) -> String {
        /// pid, application_name, client address, transaction start.
        type Holder = (i32, Option<String>, Option<String>, Option<String>);
        let row: Result<Option<Holder>, _> = sqlx::query_as(
            "SELECT a.pid, a.application_name, host(a.client_addr), to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = 1380275282 AND l.objid = 0 LIMIT 1",
        )
        .fetch_optional(&self.pool)
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
}

impl Engine for Postgres {
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
            let mut t = self
                .pool
                .begin()
                .await
                .map_err(query_err("starting a transaction"))?;
            if !Self::lock(&mut t, true, &wait).await? {
                drop(t);
                return Err(wait.timed_out(self.holder().await));
            }
            Ok(Box::new(t) as Tx)
        })
    }

    fn begin_outside<'a>(&'a self, wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>> {
        Box::pin(async move {
            let mut c = self
                .pool
                .acquire()
                .await
                .map_err(query_err("taking the migration lock"))?;
            if !Self::lock(&mut c, false, &wait).await? {
                drop(c);
                return Err(wait.timed_out(self.holder().await));
            }
            Ok(Box::new(c) as Tx)
        })
    }

    fn unlock_outside<'a>(&'a self, tx: &'a mut Tx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // A lost connection took its lock with it.
            let _ = tx.run(&format!("SELECT pg_advisory_unlock({LOCK})")).await;
        })
    }

    fn interrupt(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let pid = self.pid.load(Ordering::Relaxed);
            if let Ok(mut conn) = sqlx::ConnectOptions::connect(&self.options).await {
                let _ = sqlx::query("SELECT pg_cancel_backend($1::int)")
                    .bind(pid)
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        })
    }

    fn dangerous_privileges(&self) -> BoxFuture<'_, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async move {
            let (superuser, read, write, program): (bool, bool, bool, bool) = sqlx::query_as(
                "SELECT rolsuper, \
                 pg_has_role(current_user, 'pg_read_server_files', 'USAGE'), \
                 pg_has_role(current_user, 'pg_write_server_files', 'USAGE'), \
                 pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') \
                 FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(if superuser {
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
            })
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }
}

/// A statement's rows, through sqlx.
async fn rows(
    conn: &mut sqlx::postgres::PgConnection,
    sql: &str,
    skip: usize,
) -> Result<Vec<Vec<Value>>, sqlx::Error> {
    super::raw_rows(conn, sql, skip, values).await
}

fn values(row: &PgRow, skip: usize) -> Result<Vec<Value>, sqlx::Error> {
    (skip..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let ty = raw.type_info().name().to_owned();
            let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
            Ok(super::from_text(&ty, bytes, true))
        })
        .collect()
}
