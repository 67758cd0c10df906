//! One module per database engine, behind two traits: [`Engine`] (a connected database:
//! its migration lock, its catalog, cancelling a statement, its role's privileges) and
//! [`Conn`] (the transaction, bare connection or script a revision's ops run in). What
//! differs between engines as plain facts is [`Capabilities`].
//!
//! Adding an engine: a new module implementing both traits, and one line in
//! [`connect`].

pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod script;
pub(crate) mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{BackendError, Session};
use crate::dialect::Dialect;
use crate::wit::Value;

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

/// What an engine is, as data.
#[derive(Debug)]
pub(crate) struct Capabilities {
    pub dialect: Dialect,
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
    /// A catalog query returning one text column, the number of ledger version tables.
    pub ledger_exists_sql: &'static str,
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
}

impl Locked {
    pub(crate) fn guard(conn: Tx, engine: Arc<dyn Engine>, outside: bool) -> Tx {
        Box::new(Locked {
            conn: Some(conn),
            engine,
            outside,
        })
    }

    fn conn(&mut self) -> &mut Tx {
        self.conn
            .as_mut()
            .expect("a locked connection lives until it ends")
    }
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
        self.conn().run(sql)
    }

    fn run_with<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        self.conn().run_with(sql, params)
    }

    fn columns_of<'a>(
        &'a mut self,
        sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        self.conn().columns_of(sql)
    }

    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        skip: usize,
    ) -> BoxFuture<'a, Result<Vec<Vec<Value>>, sqlx::Error>> {
        self.conn().rows(sql, skip)
    }

    fn strings<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>> {
        self.conn().strings(sql, params)
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
    /// Checks what the engine defers to the end of a step (SQLite's foreign keys).
    fn before_commit<'a>(&'a self, _tx: &'a mut Tx) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// What the engine of `dialect` is, as data.
pub(crate) fn capabilities(dialect: Dialect) -> &'static Capabilities {
    match dialect {
        Dialect::Sqlite => &sqlite::CAPABILITIES,
        Dialect::Postgres => &postgres::CAPABILITIES,
        Dialect::Mysql => &mysql::CAPABILITIES,
    }
}

/// Connects the engine a URL names: the registration of every engine.
pub(crate) async fn connect(
    dialect: Dialect,
    url: &str,
    session: &Session,
) -> Result<Box<dyn Engine>, sqlx::Error> {
    Ok(match dialect {
        Dialect::Sqlite => Box::new(sqlite::Sqlite::connect(url).await?),
        Dialect::Postgres => Box::new(postgres::Postgres::connect(url, session).await?),
        Dialect::Mysql => Box::new(mysql::MySql::connect(url, session).await?),
    })
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
/// `$values` decodes a row, `$persistent` says whether statements stay prepared.
macro_rules! sqlx_conn {
    ($ty:ty, in_transaction: $tx:tt, values: $values:path, persistent: $persistent:expr) => {
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
                Box::pin(async move {
                    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                        .fetch_all(&mut **self)
                        .await?;
                    rows.iter().map(|r| $values(r, skip)).collect()
                })
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
