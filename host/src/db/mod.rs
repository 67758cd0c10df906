//! One module per database engine, behind three traits: [`Flavor`] (what the engine's
//! SQL and ops are like, with or without a connection: rendering differences, the ops
//! it does its own way, its error codes), [`Engine`] (a connected database: its
//! migration lock, its catalog, cancelling a statement, its role's privileges) and
//! [`Conn`] (the transaction, bare connection or script a revision's ops run in). What
//! differs between engines as plain facts is [`Capabilities`].
//!
//! Adding an engine: a new module implementing the three traits, its variant in
//! [`Dialect`] (the name `retort.toml` and URLs use), and its line in [`flavor`].

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod script;
pub(crate) mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlparser::dialect::Dialect as ParserDialect;

use crate::backend::{BackendError, Session};
use crate::dialect::{Dialect, RenderError};
use crate::ops::OpState;
use crate::wit::{Error, SqlDialect, SqlType, Value};

pub(crate) use script::Script;

/// A boxed future, so that the traits can be used as objects.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an engine holds the migration lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// Held by the transaction and released with it (SQLite `BEGIN IMMEDIATE`,
    /// PostgreSQL `pg_advisory_xact_lock`).
    Transaction,
    /// Held by the session and released by a call once the transaction ended
    /// (MySQL/MariaDB `GET_LOCK`).
    Session,
}

/// How the n-th bound parameter is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholder {
    /// `?` for each.
    Question,
    /// `$1`, `$2`, …
    Numbered,
}

/// Where table and column comments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comments {
    /// Nowhere (the engine keeps none).
    Dropped,
    /// In the definition (`COMMENT '…'`, `COMMENT='…'`).
    Inline,
    /// In `COMMENT ON …` statements after it.
    Statements,
}

/// How an auto-incrementing column is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoIncrement {
    /// By its type alone (PostgreSQL's `SERIAL` family, from [`Flavor::column_type`]).
    Type,
    /// By a keyword after the column's constraints (`AUTO_INCREMENT`).
    Keyword(&'static str),
    /// SQLite's rowid alias: `INTEGER PRIMARY KEY AUTOINCREMENT`, never null already.
    RowidAlias,
}

/// What the SQL policy must know about how an engine reads SQL text.
#[derive(Debug)]
pub(crate) struct Syntax {
    /// Comments the server runs as code (`/*! … */`, `/*M! … */`).
    pub executable_comments: bool,
    /// Words that start a command of the engine's command-line client.
    pub client_commands: &'static [&'static str],
    /// `U&"…"` identifiers spelled with escapes.
    pub unicode_identifiers: bool,
    /// `EXECUTE` inside a function or DO body runs SQL built from strings.
    pub execute_in_bodies: bool,
    /// Statements refused on this engine only, by their first word, with the rule.
    pub statements: &'static [(&'static str, &'static str)],
}

/// What an engine is, as data.
#[derive(Debug)]
pub(crate) struct Capabilities {
    pub dialect: Dialect,
    /// Its name in messages and `--format json` (`sqlite`, `postgres`, `mysql`).
    pub name: &'static str,
    /// The URL schemes that name it.
    pub schemes: &'static [&'static str],
    /// What `dialect()` tells a guest.
    pub wit: SqlDialect,
    /// DDL rolls back with the transaction (not MySQL/MariaDB, where each DDL statement
    /// commits).
    pub transactional_ddl: bool,
    pub lock: LockKind,
    /// A savepoint around each op, so that a failed op leaves the transaction usable
    /// (PostgreSQL aborts the whole transaction at an error otherwise).
    pub savepoint_per_op: bool,
    /// The ledger tables are created before the transaction, under the lock (their DDL
    /// would end it on MySQL/MariaDB).
    pub ledger_before_transaction: bool,
    /// A catalog query returning one text column, how many of the two ledger tables exist.
    pub ledger_exists_sql: &'static str,
    /// The ledger's auto-incrementing key column.
    pub ledger_key: &'static str,
    /// The statement that starts a transaction in a script or on a bare connection.
    pub begin: &'static str,
    /// What a `--sql` script starts with (after its header comment).
    pub script_preamble: &'static str,
    /// A `--sql` script replays what is already applied to learn the schema (the
    /// engine's ops read it: SQLite's rebuilds, MySQL's `MODIFY COLUMN`).
    pub script_replays: bool,
    /// A `--sql` script keeps the schema in an in-memory SQLite database (SQLite's
    /// rebuilds read `sqlite_master` there).
    pub script_in_memory: bool,
    /// One `run` may carry several statements separated by `;` (SQLite runs them in
    /// one round trip to its thread; the ledger writes of a step go together).
    pub batches: bool,
    /// The identifier quote (`"` or `` ` ``).
    pub quote: char,
    pub placeholder: Placeholder,
    /// The literals `false` and `true`.
    pub booleans: [&'static str; 2],
    pub comments: Comments,
    pub autoincrement: AutoIncrement,
    /// `DROP INDEX name ON table` rather than `DROP INDEX name`.
    pub drop_index_on_table: bool,
    /// A cursor's query cannot take bound parameters (PostgreSQL's `DECLARE`): its
    /// values are spliced in as literals, and that text is what the policy checks.
    pub cursor_inlines_values: bool,
    pub syntax: Syntax,
}

/// What a database error is, by the engine's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// A unique, foreign-key, not-null or check constraint refused a row.
    Constraint,
    /// A table, column, index or other object that does not exist.
    NotFound,
    /// An object that exists already.
    Exists,
    /// A wait for a lock that ran out.
    LockTimeout,
    /// The connection (or the session) went away.
    ConnectionLost,
    Other,
}

/// What `e` is: a lost connection for transport failures, otherwise by the codes of the
/// engine the error came from.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorClass {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            ErrorClass::ConnectionLost
        }
        sqlx::Error::Database(db) => Dialect::ALL
            .iter()
            .find_map(|d| flavor(*d).classify(db.as_ref()))
            .unwrap_or(match db.kind() {
                ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation => ErrorClass::Constraint,
                _ => ErrorClass::Other,
            }),
        _ => ErrorClass::Other,
    }
}

/// A column change `alter-column` hands an engine, rendered: the column (by its new
/// name after a rename), and the type, nullability and default to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alteration {
    pub column: String,
    pub new_type: Option<String>,
    pub nullable: Option<bool>,
    /// `Some(None)` drops the default.
    pub default: Option<Option<String>>,
}

/// One engine's SQL and op behaviour, the same on a database and in a script: what it
/// renders differently ([`Capabilities`] holds the plain facts), the ops it does its
/// own way, and its error codes. The defaults are standard SQL.
pub(crate) trait Flavor: Send + Sync {
    fn capabilities(&self) -> &'static Capabilities;
    /// sqlparser's dialect for this engine's SQL.
    fn parser(&self) -> Box<dyn ParserDialect>;
    /// Connects a database of this engine, with the session set-up.
    fn connect<'a>(
        &'a self,
        url: &'a str,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Box<dyn Engine>, sqlx::Error>>;
    /// What one of this engine's errors is, by its codes; `None` for another engine's.
    fn classify(&self, e: &dyn sqlx::error::DatabaseError) -> Option<ErrorClass>;
    /// The engine's own name for a type, where it differs from standard SQL
    /// ([`crate::dialect::standard_type`]).
    fn column_type(&self, _ty: &SqlType, _autoincrement: bool) -> Option<String> {
        None
    }
    /// A text value as a string literal (see [`crate::dialect::string_literal`]).
    fn string_literal(&self, s: &str) -> Result<String, RenderError>;
    /// A literal for an infinite or NaN float, where the engine has one.
    fn non_finite(&self, v: f64) -> Result<String, RenderError> {
        Err(RenderError::Unsupported(format!(
            "{v} has no literal in {}",
            self.capabilities().name
        )))
    }
    /// A blob literal.
    fn blob_literal(&self, b: &[u8]) -> String {
        format!("X'{}'", hex::encode(b))
    }

    /// Snapshots a cursor's query under the (quoted) name `cursor`, and returns its
    /// column names. `sent` is the query with its values spliced in, for an engine with
    /// [`Capabilities::cursor_inlines_values`].
    fn snapshot<'a>(
        &'a self,
        tx: &'a mut Tx,
        cursor: &'a str,
        sql: &'a str,
        params: &'a [Value],
        sent: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>>;
    /// The statement reading a cursor's next `limit` rows after row `after`, and how
    /// many leading columns of its rows are bookkeeping.
    fn fetch(&self, cursor: &str, after: i64, limit: u32) -> (String, usize);
    /// The statement releasing a cursor's snapshot.
    fn release(&self, cursor: &str) -> String;

    /// `create-foreign-key`, `create-unique-constraint`, `create-check-constraint`:
    /// adds the rendered table constraint.
    fn add_constraint<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        constraint: String,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let t = ops.ident(table)?;
            ops.ddl_inner(&format!("ALTER TABLE {t} ADD {constraint}"))
                .await
        })
    }
    /// `alter-column` after any rename: the type, nullability and default.
    fn alter_column<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        change: Alteration,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// `drop-constraint`.
    fn drop_constraint<'a>(
        &'a self,
        ops: &'a mut OpState,
        table: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let t = ops.ident(table)?;
            let n = ops.ident(name)?;
            ops.ddl_inner(&format!("ALTER TABLE {t} DROP CONSTRAINT {n}"))
                .await
        })
    }
    /// After a statement that may have ended the transaction implicitly (DDL on an
    /// engine without transactional DDL).
    fn after_ddl<'a>(&'a self, _ops: &'a mut OpState) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The types `bulk-insert` casts its values to, column by column, where the engine
    /// does not convert a bound value to its column's type by itself.
    fn insert_casts<'a>(
        &'a self,
        _ops: &'a mut OpState,
        _table: &'a str,
        _columns: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Vec<String>>, Error>> {
        Box::pin(async { Ok(None) })
    }
}

/// The registration of every engine: its [`Flavor`], which connects it.
pub(crate) fn flavor(dialect: Dialect) -> &'static dyn Flavor {
    match dialect {
        Dialect::Sqlite => &sqlite::SqliteFlavor,
        Dialect::Postgres => &postgres::PostgresFlavor,
        Dialect::Mysql => &mysql::MySqlFlavor,
    }
}

/// What the engine of `dialect` is, as data.
pub(crate) fn capabilities(dialect: Dialect) -> &'static Capabilities {
    flavor(dialect).capabilities()
}

/// The transaction (or bare connection, or script) one revision's ops run in.
pub(crate) trait Conn: Send {
    /// Runs one rendered statement without parameters.
    fn run<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
    /// Runs a statement with bound parameters (a script gets them as literals).
    fn run_with<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>>;
    /// The result column names of a query, without running it.
    fn columns_of<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>>;
    /// Rows of a statement run as plain text, values by their type, skipping the first
    /// `skip` columns.
    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        skip: usize,
    ) -> BoxFuture<'a, Result<Vec<Vec<Value>>, sqlx::Error>>;
    /// Text columns of a query with text parameters (catalog reads).
    fn strings<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>>;
    /// Commits a transaction (nothing for a bare connection or a script).
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), sqlx::Error>>;
    /// Ends it unrecorded: a transaction rolls back; a lock it holds is released.
    fn end(self: Box<Self>) -> BoxFuture<'static, ()> {
        drop(self);
        Box::pin(async {})
    }
    /// False for a revision running outside a transaction, and for a script.
    fn in_transaction(&self) -> bool;
    /// True for a script (`--sql`, dry runs): nothing reaches a database.
    fn is_script(&self) -> bool {
        false
    }
    /// The script, when this run renders SQL instead of executing it.
    fn script(&mut self) -> Option<&mut Script> {
        None
    }
    /// The script back, once the step is done.
    fn into_script(self: Box<Self>) -> Option<Box<Script>> {
        None
    }
    /// True once a statement failed because the connection went away.
    fn lost(&self) -> bool {
        false
    }
}

/// What a revision's ops run in.
pub(crate) type Tx = Box<dyn Conn>;

/// A transaction (or a bare connection) that holds the migration lock. The lock goes
/// when it ends: on commit, on [`Conn::end`] (rolled back or unlocked, awaited), or, when
/// it is dropped on an early return or a panic, in a task the drop spawns, so that no
/// path can keep the lock.
pub(crate) struct Locked {
    conn: Option<Tx>,
    engine: Arc<dyn Engine>,
    /// A session lock taken for a revision that runs outside a transaction.
    outside: bool,
    /// A statement failed because the connection went away.
    lost: bool,
}

impl Locked {
    pub(crate) fn guard(conn: Tx, engine: Arc<dyn Engine>, outside: bool) -> Tx {
        Box::new(Locked {
            conn: Some(conn),
            engine,
            outside,
            lost: false,
        })
    }

    /// The connection, and the flag its call sets when the connection is lost.
    fn parts(&mut self) -> (&mut Tx, &mut bool) {
        let conn = self
            .conn
            .as_mut()
            .expect("a locked connection lives until it ends");
        (conn, &mut self.lost)
    }
}

/// `call`, noting in `lost` when it failed because the connection went away.
fn watched<'a, T: Send + 'a>(
    lost: &'a mut bool,
    call: BoxFuture<'a, Result<T, sqlx::Error>>,
) -> BoxFuture<'a, Result<T, sqlx::Error>> {
    Box::pin(async move {
        let result = call.await;
        if let Err(e) = &result
            && is_connection_lost(e)
        {
            *lost = true;
        }
        result
    })
}

/// Ends `conn` unrecorded and releases the lock it holds.
async fn unlock(engine: Arc<dyn Engine>, mut conn: Tx, outside: bool) {
    if outside {
        engine.unlock_outside(&mut conn).await;
        drop(conn);
    } else {
        // Dropping the transaction rolls it back.
        drop(conn);
        if engine.capabilities().lock == LockKind::Session {
            engine.release().await;
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(unlock(self.engine.clone(), conn, self.outside));
        }
    }
}

impl Conn for Locked {
    fn run<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let (conn, lost) = self.parts();
        watched(lost, conn.run(sql))
    }

    fn run_with<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let (conn, lost) = self.parts();
        watched(lost, conn.run_with(sql, params))
    }

    fn columns_of<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        let (conn, lost) = self.parts();
        watched(lost, conn.columns_of(sql))
    }

    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        skip: usize,
    ) -> BoxFuture<'a, Result<Vec<Vec<Value>>, sqlx::Error>> {
        let (conn, lost) = self.parts();
        watched(lost, conn.rows(sql, skip))
    }

    fn strings<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>> {
        let (conn, lost) = self.parts();
        watched(lost, conn.strings(sql, params))
    }

    /// Commits, then releases the lock (a session lock; a transaction's goes with it).
    fn commit(mut self: Box<Self>) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        let conn = self
            .conn
            .take()
            .expect("a locked connection lives until it ends");
        let engine = self.engine.clone();
        let outside = self.outside;
        Box::pin(async move {
            if outside {
                unlock(engine, conn, true).await;
                return Ok(());
            }
            let committed = conn.commit().await;
            if engine.capabilities().lock == LockKind::Session {
                engine.release().await;
            }
            committed
        })
    }

    fn end(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        let conn = self
            .conn
            .take()
            .expect("a locked connection lives until it ends");
        Box::pin(unlock(self.engine.clone(), conn, self.outside))
    }

    fn in_transaction(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.in_transaction())
    }

    fn lost(&self) -> bool {
        self.lost
    }
}

/// How long a wait for the migration lock may take, and what to call the database in
/// the error when it runs out.
pub(crate) struct LockWait<'a> {
    pub url: &'a str,
    pub timeout: Duration,
}

impl LockWait<'_> {
    pub(crate) fn timed_out(&self, holder: String) -> BackendError {
        BackendError::LockTimeout {
            url: self.url.to_owned(),
            secs: self.timeout.as_secs(),
            holder,
        }
    }
}

/// A connected database engine.
pub(crate) trait Engine: Send + Sync + std::fmt::Debug {
    fn capabilities(&self) -> &'static Capabilities;
    /// Text columns of a query on the pool (ledger and catalog reads).
    fn fetch_strings<'a>(
        &'a self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>>;
    /// Takes the migration lock and starts a transaction.
    fn begin<'a>(&'a self, wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>>;
    /// Takes the migration lock for the session and hands out the bare connection (a
    /// revision that cannot run in a transaction).
    fn begin_outside<'a>(&'a self, wait: LockWait<'a>) -> BoxFuture<'a, Result<Tx, BackendError>>;
    /// Releases the session lock [`Engine::begin_outside`] took.
    fn unlock_outside<'a>(&'a self, tx: &'a mut Tx) -> BoxFuture<'a, ()>;
    /// Releases a session lock once a transaction from [`Engine::begin`] ended
    /// ([`LockKind::Session`]); nothing for a transaction's lock.
    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Ends the statement running on the migration connection, from outside it.
    fn interrupt(&self) -> BoxFuture<'_, ()>;
    /// Clears an [`Engine::interrupt`] before the next transaction.
    fn clear_interrupt(&self) {}
    /// The role's dangerous privileges (superuser, server files, grant option).
    fn dangerous_privileges(&self) -> BoxFuture<'_, Result<Vec<String>, sqlx::Error>>;
    /// Checks what the engine defers to the end of a step (SQLite's foreign keys),
    /// running `ledger` first when given: the step's ledger writes as one batch, for an
    /// engine that [`Capabilities::batches`] (one round trip for both).
    fn before_commit<'a>(
        &'a self,
        tx: &'a mut Tx,
        ledger: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(run_ledger(tx, ledger))
    }
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Runs a step's ledger batch, when there is one ([`Engine::before_commit`]).
pub(crate) async fn run_ledger(tx: &mut Tx, ledger: Option<&str>) -> Result<(), BackendError> {
    if let Some(batch) = ledger {
        tx.run(batch)
            .await
            .map_err(query_err("recording the step in the ledger"))?;
    }
    Ok(())
}

/// Connects the engine a URL names.
pub(crate) async fn connect(
    dialect: Dialect,
    url: &str,
    session: &Session,
) -> Result<Box<dyn Engine>, sqlx::Error> {
    flavor(dialect).connect(url, session).await
}

/// A one-connection pool, after one direct connection: a pool retries until its timeout
/// and then reports only that, where a single attempt says why (refused, password,
/// unknown database). `pool` carries the session set-up (`after_connect`).
pub(crate) async fn open<DB: sqlx::Database>(
    options: <DB::Connection as sqlx::Connection>::Options,
    pool: sqlx::pool::PoolOptions<DB>,
) -> Result<sqlx::Pool<DB>, sqlx::Error> {
    use sqlx::Connection as _;
    sqlx::ConnectOptions::connect(&options)
        .await?
        .close()
        .await?;
    // One connection for the whole run, never recycled: the session holds the migration
    // lock on MySQL/MariaDB (and for non-transactional revisions on PostgreSQL).
    pool.max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// True when the error is a lock wait that ran out.
pub(crate) fn is_lock_timeout(e: &sqlx::Error) -> bool {
    classify(e) == ErrorClass::LockTimeout
}

/// True when the error says the connection went away.
pub(crate) fn is_connection_lost(e: &sqlx::Error) -> bool {
    classify(e) == ErrorClass::ConnectionLost
}

/// `BackendError::Query` for `doing`.
pub(crate) fn query_err(doing: impl Into<String>) -> impl Fn(sqlx::Error) -> BackendError {
    let doing = doing.into();
    move |source| BackendError::Query {
        doing: doing.clone(),
        source,
    }
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
pub(crate) use bind_values;

/// Implements [`Conn`] for an sqlx transaction or pool connection of one engine:
/// `$rows` reads a statement's rows from the engine's connection (`Conn::rows`),
/// `$persistent` says whether statements stay prepared.
macro_rules! sqlx_conn {
    ($ty:ty, in_transaction: $tx:tt, rows: $rows:path, persistent: $persistent:expr) => {
        impl $crate::db::Conn for $ty {
            fn run<'a>(
                &'a mut self,
                sql: &'a str,
            ) -> $crate::db::BoxFuture<'a, Result<u64, sqlx::Error>> {
                Box::pin(async move {
                    Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                        .execute(&mut **self)
                        .await?
                        .rows_affected())
                })
            }

            fn run_with<'a>(
                &'a mut self,
                sql: &'a str,
                params: &'a [$crate::wit::Value],
            ) -> $crate::db::BoxFuture<'a, Result<u64, sqlx::Error>> {
                use $crate::wit::Value;
                Box::pin(async move {
                    let query =
                        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).persistent($persistent);
                    Ok($crate::db::bind_values!(query, params)
                        .execute(&mut **self)
                        .await?
                        .rows_affected())
                })
            }

            fn columns_of<'a>(
                &'a mut self,
                sql: &'a str,
            ) -> $crate::db::BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
                use sqlx::{Column as _, Executor as _, Statement as _};
                Box::pin(async move {
                    let statement = (&mut **self)
                        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
                            sql.to_owned(),
                        )))
                        .await?;
                    Ok(statement
                        .columns()
                        .iter()
                        .map(|c| c.name().to_owned())
                        .collect())
                })
            }

            fn rows<'a>(
                &'a mut self,
                sql: &'a str,
                skip: usize,
            ) -> $crate::db::BoxFuture<'a, Result<Vec<Vec<$crate::wit::Value>>, sqlx::Error>> {
                Box::pin($rows(&mut **self, sql, skip))
            }

            fn strings<'a>(
                &'a mut self,
                sql: &'a str,
                params: &'a [&'a str],
            ) -> $crate::db::BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>> {
                Box::pin(async move {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                    for p in params {
                        query = query.bind(p.to_string());
                    }
                    $crate::db::text_rows(&query.fetch_all(&mut **self).await?)
                })
            }

            fn commit(self: Box<Self>) -> $crate::db::BoxFuture<'static, Result<(), sqlx::Error>> {
                $crate::db::commit_of!(self, $tx)
            }

            fn in_transaction(&self) -> bool {
                $tx
            }
        }
    };
}
pub(crate) use sqlx_conn;

/// The rows of a statement run as plain text through sqlx, each decoded by `values`
/// (skipping the first `skip` columns).
pub(crate) async fn raw_rows<'c, E, DB>(
    conn: E,
    sql: &str,
    skip: usize,
    values: fn(&DB::Row, usize) -> Result<Vec<Value>, sqlx::Error>,
) -> Result<Vec<Vec<Value>>, sqlx::Error>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
{
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| values(r, skip)).collect()
}

/// A transaction commits; a bare connection has nothing to commit.
macro_rules! commit_of {
    ($self:ident, true) => {
        Box::pin(async move { (*$self).commit().await })
    };
    ($self:ident, false) => {{
        drop($self);
        Box::pin(async { Ok(()) })
    }};
}
pub(crate) use commit_of;

/// Interprets a value in the text format by its column type.
pub(crate) fn from_text(ty: &str, text: &[u8], bytea_hex: bool) -> Value {
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

/// Text columns of a query on a pool.
pub(crate) async fn pool_strings<'e, DB, E>(
    executor: E,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, sqlx::Error>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let rows = sqlx::query::<DB>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(executor)
        .await?;
    text_rows(&rows)
}

/// Every column of every row, as text (`None` for NULL).
pub(crate) fn text_rows<R>(rows: &[R]) -> Result<Vec<Vec<Option<String>>>, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<Option<String>, _>(i))
                .collect()
        })
        .collect()
}
