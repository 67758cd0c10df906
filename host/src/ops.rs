//! The host side of the `op` interface: what one revision's calls do.
//!
//! Each call is validated and rendered by the dialect, then run in the revision's
//! transaction. Errors the guest can handle come back as the WIT `error` variant;
//! the journal keeps what ran so that a failure can name the op it stopped at.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlparser::ast::Statement;
use sqlparser::parser::Parser;

use wasmtime::component::{Resource, ResourceTable};

use crate::backend::{self, Tx};
use crate::dialect::{Dialect, RenderError, parser_dialect};
use crate::generated::retort::migration::op::{Host, HostCursor};
use crate::generated::retort::migration::types::Host as TypesHost;
use crate::rebuild::{self, Change, RebuildError};
use crate::wit::{
    CheckConstraint, Column, ColumnAlteration, Error, ForeignKey, Index, LogLevel, Row, SqlDialect,
    Table, UniqueConstraint, Value,
};

/// Rows one `cursor.next` returns at most, whatever the guest asks for.
pub const MAX_BATCH: u32 = 10_000;

/// A guest log line, handed to whoever runs the migration.
pub type LogSink = Arc<dyn Fn(&str, LogLevel, &str) + Send + Sync>;

/// A query's snapshot, kept in a temporary table and read by rowid.
pub struct Cursor {
    table: String,
    columns: Vec<String>,
    last_rowid: i64,
}

/// Everything one revision call can reach.
pub struct OpState {
    pub revision: String,
    pub dialect: Dialect,
    tx: Option<Tx>,
    table: ResourceTable,
    log: LogSink,
    /// Snapshot tables of cursors the guest has not dropped yet.
    open_cursors: Vec<String>,
    /// Ops that succeeded, in order.
    pub journal: Vec<String>,
    /// The last op that returned an error to the guest, with the error.
    pub failed_op: Option<String>,
    /// The last error-level line the guest logged (a panic message, a traceback).
    pub last_error_log: Option<String>,
    pub limits: wasmtime::StoreLimits,
}

impl OpState {
    pub fn new(
        revision: &str,
        dialect: Dialect,
        tx: Tx,
        log: LogSink,
        limits: wasmtime::StoreLimits,
    ) -> Self {
        OpState {
            revision: revision.to_owned(),
            dialect,
            tx: Some(tx),
            table: ResourceTable::new(),
            log,
            open_cursors: Vec::new(),
            journal: Vec::new(),
            failed_op: None,
            last_error_log: None,
            limits,
        }
    }

    /// Takes the transaction back once the guest is done.
    pub fn take_tx(&mut self) -> Option<Tx> {
        self.tx.take()
    }

    fn tx(&mut self) -> &mut Tx {
        self.tx
            .as_mut()
            .expect("the transaction lives as long as the call")
    }

    /// Records an op's outcome and hands the guest its result.
    fn outcome<T>(&mut self, what: String, result: Result<T, Error>) -> Result<T, Error> {
        match &result {
            Ok(_) => self.journal.push(what),
            Err(e) => self.failed_op = Some(format!("{what}: {}", describe(e))),
        }
        result
    }

    /// Runs rendered DDL statements in order.
    async fn ddl(
        &mut self,
        what: String,
        statements: Result<Vec<String>, RenderError>,
    ) -> Result<(), Error> {
        let result = async {
            for sql in statements.map_err(render_error)? {
                backend::run(self.tx(), &sql).await.map_err(db_error)?;
            }
            Ok(())
        }
        .await;
        self.outcome(what, result)
    }

    /// SQLite's table rebuild: a new table with the changed definition, the rows copied,
    /// the old table dropped, the new one renamed, indexes, triggers and views restored.
    async fn rebuild(&mut self, table: &str, change: &Change) -> Result<(), Error> {
        let tx = self.tx();
        let create = backend::schema_sql(tx, "table", table)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::NotFound(format!("table {table:?}")))?;
        let temp = format!("_retort_rebuild_{table}");
        let new_sql = rebuild::rewrite(table, &create, &temp, change).map_err(rebuild_error)?;
        let columns = rebuild::columns(&create).map_err(|reason| {
            rebuild_error(RebuildError::Parse {
                table: table.to_owned(),
                reason,
            })
        })?;
        let dependents = backend::dependents(tx, table).await.map_err(db_error)?;
        let d = Dialect::Sqlite;
        let quoted = |name: &str| d.ident(name).map_err(render_error);
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
            backend::run(tx, &sql).await.map_err(db_error)?;
        }
        Ok(())
    }

    async fn add_constraint(
        &mut self,
        what: String,
        table: &str,
        rendered: Result<String, RenderError>,
    ) -> Result<(), Error> {
        let result = match rendered.map_err(render_error) {
            Err(e) => Err(e),
            Ok(constraint) if self.dialect == Dialect::Sqlite => {
                self.rebuild(table, &Change::AddConstraint(constraint))
                    .await
            }
            Ok(constraint) => match self.dialect.ident(table) {
                Ok(t) => {
                    self.ddl_inner(&format!("ALTER TABLE {t} ADD {constraint}"))
                        .await
                }
                Err(e) => Err(render_error(e)),
            },
        };
        self.outcome(what, result)
    }

    async fn ddl_inner(&mut self, sql: &str) -> Result<(), Error> {
        backend::run(self.tx(), sql)
            .await
            .map(drop)
            .map_err(db_error)
    }

    async fn open_cursor(&mut self, sql: &str, params: &[Value]) -> Result<Cursor, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let single_query = matches!(
            Parser::parse_sql(parser_dialect(self.dialect).as_ref(), sql).as_deref(),
            Ok([Statement::Query(_)])
        );
        if !single_query {
            return Err(Error::Denied(format!(
                "query takes exactly one SELECT (or WITH/VALUES) statement: {sql:?}"
            )));
        }
        let table = format!("_retort_cursor_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let tx = self.tx();
        backend::run_with(
            tx,
            &format!("CREATE TEMP TABLE \"{table}\" AS {sql}"),
            params,
        )
        .await
        .map_err(db_error)?;
        let info = backend::fetch_with(
            tx,
            &format!("SELECT name FROM pragma_table_info('{table}', 'temp')"),
            &[],
        )
        .await
        .map_err(db_error)?;
        let columns = info
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, 0))
            .collect::<Result<_, _>>()
            .map_err(db_error)?;
        self.open_cursors.push(table.clone());
        Ok(Cursor {
            table,
            columns,
            last_rowid: 0,
        })
    }

    /// Drops the snapshots of cursors the guest never dropped, before the commit.
    pub async fn close_cursors(&mut self) -> Result<(), sqlx::Error> {
        for table in std::mem::take(&mut self.open_cursors) {
            if let Some(tx) = self.tx.as_mut() {
                backend::run(tx, &format!("DROP TABLE IF EXISTS temp.\"{table}\"")).await?;
            }
        }
        Ok(())
    }
}

fn describe(e: &Error) -> String {
    match e {
        Error::NotFound(m) => format!("not found: {m}"),
        Error::AlreadyExists(m) => format!("already exists: {m}"),
        Error::ConstraintViolation(m) => format!("constraint violation: {m}"),
        Error::Denied(m) => format!("denied: {m}"),
        Error::Unsupported(m) => format!("unsupported: {m}"),
        Error::Offline => "offline: no rows can be read when rendering SQL".into(),
        Error::Database(m) => format!("database error: {m}"),
    }
}

fn render_error(e: RenderError) -> Error {
    match e {
        RenderError::Unsupported(m) => Error::Unsupported(m),
        other => Error::Denied(other.to_string()),
    }
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

/// Sorts a database error into the variant a guest can match on.
pub fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            let lower = message.to_lowercase();
            if db.is_unique_violation()
                || db.is_foreign_key_violation()
                || db.is_check_violation()
                || lower.contains("constraint failed")
            {
                Error::ConstraintViolation(message)
            } else if lower.contains("no such")
                || lower.contains("does not exist")
                || lower.contains("doesn't exist")
            {
                Error::NotFound(message)
            } else if lower.contains("already exists") || lower.contains("duplicate column") {
                Error::AlreadyExists(message)
            } else {
                Error::Database(message)
            }
        }
        other => Error::Database(other.to_string()),
    }
}

fn names(cols: &[String]) -> String {
    cols.join(", ")
}

impl TypesHost for OpState {}

impl Host for OpState {
    async fn dialect(&mut self) -> wasmtime::Result<SqlDialect> {
        Ok(match self.dialect {
            Dialect::Sqlite => SqlDialect::Sqlite,
            Dialect::Postgres => SqlDialect::Postgres,
            Dialect::Mysql => SqlDialect::Mysql,
        })
    }

    async fn is_offline(&mut self) -> wasmtime::Result<bool> {
        Ok(false)
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        if level == LogLevel::Error {
            self.last_error_log = Some(message.clone());
        }
        (self.log)(&self.revision, level, &message);
        Ok(())
    }

    async fn create_table(&mut self, table: Table) -> wasmtime::Result<Result<(), Error>> {
        let statements = self.dialect.create_table(&table);
        Ok(self
            .ddl(format!("create-table {}", table.name), statements)
            .await)
    }

    async fn drop_table(&mut self, name: String) -> wasmtime::Result<Result<(), Error>> {
        let sql = self.dialect.drop_table(&name).map(|s| vec![s]);
        Ok(self.ddl(format!("drop-table {name}"), sql).await)
    }

    async fn rename_table(
        &mut self,
        old_name: String,
        new_name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sql = self
            .dialect
            .rename_table(&old_name, &new_name)
            .map(|s| vec![s]);
        Ok(self
            .ddl(format!("rename-table {old_name} -> {new_name}"), sql)
            .await)
    }

    async fn add_column(
        &mut self,
        table: String,
        column: Column,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sql = self.dialect.add_column(&table, &column).map(|s| vec![s]);
        Ok(self
            .ddl(format!("add-column {table}.{}", column.name), sql)
            .await)
    }

    async fn drop_column(
        &mut self,
        table: String,
        column: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sql = self.dialect.drop_column(&table, &column).map(|s| vec![s]);
        Ok(self.ddl(format!("drop-column {table}.{column}"), sql).await)
    }

    async fn alter_column(
        &mut self,
        table: String,
        column: String,
        changes: ColumnAlteration,
    ) -> wasmtime::Result<Result<(), Error>> {
        let what = format!("alter-column {table}.{column}");
        let d = self.dialect;
        let result = async {
            let mut name = column.clone();
            if let Some(new_name) = &changes.new_name {
                let sql = d
                    .rename_column(&table, &column, new_name)
                    .map_err(render_error)?;
                self.ddl_inner(&sql).await?;
                name = new_name.clone();
            }
            if changes.new_type.is_none()
                && changes.nullable.is_none()
                && changes.server_default.is_none()
            {
                return Ok(());
            }
            let new_type = changes
                .new_type
                .as_ref()
                .map(|t| d.column_type(t, false))
                .transpose()
                .map_err(render_error)?;
            let default = match &changes.server_default {
                Some(Some(e)) => Some(Some(d.expression(e).map_err(render_error)?)),
                Some(None) => Some(None),
                None => None,
            };
            match d {
                Dialect::Sqlite => {
                    let change = Change::Alter {
                        column: name,
                        new_type,
                        nullable: changes.nullable,
                        default,
                    };
                    self.rebuild(&table, &change).await
                }
                Dialect::Postgres => {
                    let t = d.ident(&table).map_err(render_error)?;
                    let c = d.ident(&name).map_err(render_error)?;
                    if let Some(ty) = new_type {
                        self.ddl_inner(&format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty}"))
                            .await?;
                    }
                    if let Some(nullable) = changes.nullable {
                        let verb = if nullable { "DROP" } else { "SET" };
                        self.ddl_inner(&format!(
                            "ALTER TABLE {t} ALTER COLUMN {c} {verb} NOT NULL"
                        ))
                        .await?;
                    }
                    match default {
                        Some(Some(e)) => {
                            self.ddl_inner(&format!(
                                "ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {e}"
                            ))
                            .await
                        }
                        Some(None) => {
                            self.ddl_inner(&format!(
                                "ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"
                            ))
                            .await
                        }
                        None => Ok(()),
                    }
                }
                Dialect::Mysql => Err(Error::Unsupported(
                    "alter-column on mysql is not implemented yet".into(),
                )),
            }
        }
        .await;
        Ok(self.outcome(what, result))
    }

    async fn create_index(&mut self, index: Index) -> wasmtime::Result<Result<(), Error>> {
        let sql = self.dialect.create_index(&index).map(|s| vec![s]);
        Ok(self
            .ddl(
                format!(
                    "create-index {} on {}({})",
                    index.name,
                    index.table,
                    names(&index.columns)
                ),
                sql,
            )
            .await)
    }

    async fn drop_index(
        &mut self,
        table: String,
        name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let sql = self.dialect.drop_index(&table, &name).map(|s| vec![s]);
        Ok(self.ddl(format!("drop-index {name}"), sql).await)
    }

    async fn create_foreign_key(
        &mut self,
        table: String,
        key: ForeignKey,
    ) -> wasmtime::Result<Result<(), Error>> {
        let rendered = self.dialect.foreign_key(&table, &key);
        let what = format!(
            "create-foreign-key {table}({}) -> {}",
            names(&key.columns),
            key.referred_table
        );
        Ok(self.add_constraint(what, &table, rendered).await)
    }

    async fn create_unique_constraint(
        &mut self,
        table: String,
        constraint: UniqueConstraint,
    ) -> wasmtime::Result<Result<(), Error>> {
        let rendered = self.dialect.unique_constraint(&table, &constraint);
        let what = format!(
            "create-unique-constraint {table}({})",
            names(&constraint.columns)
        );
        Ok(self.add_constraint(what, &table, rendered).await)
    }

    async fn create_check_constraint(
        &mut self,
        table: String,
        constraint: CheckConstraint,
    ) -> wasmtime::Result<Result<(), Error>> {
        let rendered = self.dialect.check_constraint(&table, &constraint);
        let what = format!("create-check-constraint {table}: {}", constraint.expression);
        Ok(self.add_constraint(what, &table, rendered).await)
    }

    async fn drop_constraint(
        &mut self,
        table: String,
        name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let what = format!("drop-constraint {table}.{name}");
        let result = match self.dialect {
            Dialect::Sqlite => self.rebuild(&table, &Change::DropConstraint(name)).await,
            Dialect::Postgres => match (self.dialect.ident(&table), self.dialect.ident(&name)) {
                (Ok(t), Ok(n)) => {
                    self.ddl_inner(&format!("ALTER TABLE {t} DROP CONSTRAINT {n}"))
                        .await
                }
                (Err(e), _) | (_, Err(e)) => Err(render_error(e)),
            },
            Dialect::Mysql => Err(Error::Unsupported(
                "drop-constraint on mysql is not implemented yet".into(),
            )),
        };
        Ok(self.outcome(what, result))
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let result = backend::run_with(self.tx(), &sql, &params)
            .await
            .map_err(db_error);
        Ok(self.outcome(format!("execute {sql:?}"), result))
    }

    async fn query(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Resource<Cursor>, Error>> {
        let result = self.open_cursor(&sql, &params).await;
        let result = match result {
            Ok(cursor) => Ok(self.table.push(cursor)?),
            Err(e) => Err(e),
        };
        Ok(self.outcome(format!("query {sql:?}"), result))
    }

    async fn bulk_insert(
        &mut self,
        table: String,
        columns: Vec<String>,
        rows: Vec<Row>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let what = format!("bulk-insert {table} ({} rows)", rows.len());
        let result = async {
            if let Some(bad) = rows.iter().position(|r| r.len() != columns.len()) {
                return Err(Error::Denied(format!(
                    "row {bad} has {} values for {} columns",
                    rows[bad].len(),
                    columns.len()
                )));
            }
            // Stay under every dialect's bound-parameter limit (SQLite: 32766).
            let per_statement = (30_000 / columns.len().max(1)).clamp(1, 1000);
            let mut inserted = 0;
            for chunk in rows.chunks(per_statement) {
                let sql = self
                    .dialect
                    .insert(&table, &columns, chunk.len())
                    .map_err(render_error)?;
                let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
                inserted += backend::run_with(self.tx(), &sql, &params)
                    .await
                    .map_err(db_error)?;
            }
            Ok(inserted)
        }
        .await;
        Ok(self.outcome(what, result))
    }
}

impl HostCursor for OpState {
    async fn columns(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<Vec<String>> {
        Ok(self.table.get(&cursor)?.columns.clone())
    }

    async fn next(
        &mut self,
        cursor: Resource<Cursor>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<Row>, Error>> {
        let (table, last) = {
            let c = self.table.get(&cursor)?;
            (c.table.clone(), c.last_rowid)
        };
        let sql =
            format!("SELECT rowid, * FROM temp.\"{table}\" WHERE rowid > ? ORDER BY rowid LIMIT ?");
        let limit = max.clamp(1, MAX_BATCH) as i64;
        let rows = match backend::fetch_with(
            self.tx(),
            &sql,
            &[Value::S64(last), Value::S64(limit)],
        )
        .await
        {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(db_error(e))),
        };
        let mut out = Vec::with_capacity(rows.len());
        let mut last_rowid = last;
        for row in &rows {
            last_rowid = sqlx::Row::try_get::<i64, _>(row, 0)?;
            match backend::values(row, 1) {
                Ok(values) => out.push(values),
                Err(e) => return Ok(Err(db_error(e))),
            }
        }
        self.table.get_mut(&cursor)?.last_rowid = last_rowid;
        Ok(Ok(out))
    }

    async fn drop(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<()> {
        let c = self.table.delete(cursor)?;
        self.open_cursors.retain(|t| *t != c.table);
        if let Some(tx) = self.tx.as_mut() {
            backend::run(tx, &format!("DROP TABLE IF EXISTS temp.\"{}\"", c.table)).await?;
        }
        Ok(())
    }
}
