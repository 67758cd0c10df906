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

use crate::backend::Tx;
use crate::dialect::{Dialect, RenderError, parser_dialect};
use crate::generated::retort::migration::op::{Host, HostCursor};
use crate::generated::retort::migration::types::Host as TypesHost;
use crate::op::Op;
use crate::policy::Policy;
use crate::rebuild::{self, Change, RebuildError};
use crate::wit::{
    CheckConstraint, Column, ColumnAlteration, Error, ForeignKey, Index, LogLevel, Row, SqlDialect,
    Table, UniqueConstraint, Value,
};

/// WASI's view of a revision call: the locked-down context (crate::wasi) and the
/// resource table cursors share.
impl wasmtime_wasi::WasiView for OpState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Limits on what one op call may move (`[sandbox]` in retort.toml).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub max_call_bytes: usize,
    pub max_batch_rows: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        let defaults = crate::config::Limits::default();
        CallLimits {
            max_call_bytes: defaults.max_call_bytes,
            max_batch_rows: defaults.max_batch_rows,
        }
    }
}

/// A guest log line, handed to whoever runs the migration.
pub type LogSink = Arc<dyn Fn(&str, LogLevel, &str) + Send + Sync>;

/// A query's snapshot, kept in a temporary table and read by rowid.
pub struct Cursor {
    table: String,
    columns: Vec<String>,
    last_rowid: i64,
}

/// Everything one revision call can reach.
pub(crate) struct OpState {
    pub revision: String,
    pub dialect: Dialect,
    tx: Option<Tx>,
    table: ResourceTable,
    log: LogSink,
    /// Snapshot tables of cursors the guest has not dropped yet.
    open_cursors: Vec<String>,
    /// Ops that succeeded, in order (bulk inserts without their rows).
    pub journal: Vec<Op>,
    /// The last op that returned an error to the guest, with the error.
    pub failed_op: Option<String>,
    /// PostgreSQL: the current op took a savepoint (an op refused before it reached the
    /// database took none, and has none to roll back to).
    savepoint: bool,
    /// The last error-level line the guest logged (a panic message, a traceback).
    pub last_error_log: Option<String>,
    pub limits: wasmtime::StoreLimits,
    /// What guest SQL may do.
    policy: Arc<Policy>,
    call_limits: CallLimits,
    /// The locked-down WASI context, used only by components that import WASI.
    wasi: wasmtime_wasi::WasiCtx,
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
            savepoint: false,
            last_error_log: None,
            limits,
            policy: Arc::new(Policy::default()),
            call_limits: CallLimits::default(),
            wasi: wasmtime_wasi::WasiCtx::builder().build(),
        }
    }

    /// Where the guest's log lines go.
    pub fn log_sink(&self) -> LogSink {
        self.log.clone()
    }

    /// Replaces the WASI context (crate::wasi builds it).
    pub fn set_wasi(&mut self, ctx: wasmtime_wasi::WasiCtx) {
        self.wasi = ctx;
    }

    /// The per-call limits.
    pub fn with_call_limits(mut self, limits: CallLimits) -> Self {
        self.call_limits = limits;
        self
    }

    /// Ends the revision (a trap) when one call passes more than the limit allows.
    fn within_call_limit(&self, op: &str, bytes: usize) -> wasmtime::Result<()> {
        let limit = self.call_limits.max_call_bytes;
        if bytes > limit {
            return Err(wasmtime::Error::msg(format!(
                "{op} passed {bytes} bytes, over the max-call-bytes limit of {limit} ([sandbox] max-call-bytes in retort.toml)"
            )));
        }
        Ok(())
    }

    /// The SQL policy for `execute` and `query` (the strict default otherwise).
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Checks guest SQL against the policy: `sql` is the exact text that will be sent
    /// (its values bound) or written to the script.
    fn allowed(&self, sql: &str) -> Result<(), Error> {
        self.policy
            .check(self.dialect, sql)
            .map_err(|refusal| Error::Denied(refusal.to_string()))
    }

    /// Checks DDL the host rendered around a guest's expression or type.
    fn allowed_rendered(&self, sql: &str) -> Result<(), Error> {
        self.policy
            .check_rendered(self.dialect, sql)
            .map_err(|refusal| Error::Denied(refusal.to_string()))
    }

    /// The text of a guest statement as it will be sent: its own text when the values
    /// are bound, or, in a script, with the values spliced in as literals.
    fn final_text(&self, sql: &str, params: &[Value]) -> Result<String, Error> {
        if self.offline() {
            self.dialect.inline(sql, params).map_err(render_error)
        } else {
            Ok(sql.to_owned())
        }
    }

    /// True when the ops run inside a database transaction (not a script, not a
    /// revision that runs outside transactions).
    fn in_transaction(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.in_transaction())
    }

    /// Takes the transaction back once the guest is done.
    pub fn take_tx(&mut self) -> Option<Tx> {
        self.tx.take()
    }

    /// True when rendering a script (`--sql`) rather than running against a database.
    pub fn offline(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.is_script())
    }

    /// The schema model of an offline run.
    fn model(&mut self) -> Option<&mut crate::schema::Schema> {
        self.tx
            .as_mut()
            .and_then(|t| t.script())
            .map(|s| &mut s.schema)
    }

    /// Keeps the offline schema model up to date after an op succeeded.
    fn track(&mut self, op: &Op) {
        use crate::schema::{CHECK, FOREIGN_KEY, UNIQUE};
        let d = self.dialect;
        let Some(m) = self.model() else {
            return;
        };
        match op {
            Op::CreateTable { table } => {
                let _ = m.create_table(d, table);
            }
            Op::DropTable { name } => m.drop_table(name),
            Op::RenameTable { old_name, new_name } => m.rename_table(old_name, new_name),
            Op::AddColumn { table, column } => {
                let _ = m.add_column(d, table, column);
            }
            Op::DropColumn { table, column } => m.drop_column(table, column),
            Op::AlterColumn {
                table,
                column,
                changes,
            } => {
                let new_type = changes
                    .new_type
                    .as_ref()
                    .and_then(|t| d.column_type(t, false).ok());
                let default = changes
                    .server_default
                    .as_ref()
                    .map(|e| e.as_ref().and_then(|e| d.expression(e).ok()));
                m.alter_column(
                    table,
                    column,
                    changes.new_name.as_deref(),
                    new_type.as_deref(),
                    changes.nullable,
                    default.as_ref().map(|e| e.as_deref()),
                );
            }
            Op::CreateIndex { index } if index.unique => {
                m.add_constraint(&index.table, index.name.clone(), UNIQUE)
            }
            Op::DropIndex { table, name } | Op::DropConstraint { table, name } => {
                m.drop_constraint(table, name)
            }
            Op::CreateForeignKey { table, key } => {
                m.add_constraint(table, d.foreign_key_name(table, key), FOREIGN_KEY)
            }
            Op::CreateUniqueConstraint { table, constraint } => {
                m.add_constraint(table, d.unique_name(table, constraint), UNIQUE)
            }
            Op::CreateCheckConstraint { table, constraint } => {
                m.add_constraint(table, d.check_name(table, constraint), CHECK)
            }
            Op::CreateIndex { .. }
            | Op::Execute { .. }
            | Op::Query { .. }
            | Op::BulkInsert { .. } => {}
        }
    }

    fn tx(&mut self) -> &mut Tx {
        self.tx
            .as_mut()
            .expect("the transaction lives as long as the call")
    }

    /// Before an op: on PostgreSQL a savepoint, so that a failed op does not abort the
    /// whole transaction and the guest can recover from the error.
    async fn op_start(&mut self) -> Result<(), Error> {
        if crate::db::capabilities(self.dialect).savepoint_per_op && self.in_transaction() {
            self.tx()
                .run("SAVEPOINT retort_op")
                .await
                .map_err(db_error)?;
            self.savepoint = true;
        }
        Ok(())
    }

    /// Records an op's outcome (in the journal, or as the failed op), ends its savepoint,
    /// updates the offline schema model and hands the guest its result.
    async fn outcome<T>(&mut self, op: Op, result: Result<T, Error>) -> Result<T, Error> {
        if std::mem::take(&mut self.savepoint) {
            let end = if result.is_ok() {
                "RELEASE SAVEPOINT retort_op"
            } else {
                "ROLLBACK TO SAVEPOINT retort_op"
            };
            if let Err(e) = self.tx().run(end).await {
                // The op may have run, but its savepoint could not end (the connection
                // went away between the two): the op failed, and says why.
                let e = db_error(e);
                self.failed_op = Some(format!("{op}: {}", describe(&e)));
                return Err(e);
            }
        }
        match &result {
            Ok(_) => {
                self.track(&op);
                self.journal.push(op.into_record());
            }
            Err(e) => self.failed_op = Some(format!("{op}: {}", describe(e))),
        }
        result
    }

    /// MySQL/MariaDB end the transaction at every DDL statement (an implicit commit) and
    /// go on in autocommit. After a statement that may have done so, a new transaction
    /// starts, so that what follows still rolls back with the revision. (Only when the
    /// transaction really ended: START TRANSACTION would commit an active one.)
    async fn reopen_after_ddl(&mut self) {
        if crate::db::capabilities(self.dialect).transactional_ddl || !self.in_transaction() {
            return;
        }
        let tx = self.tx();
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
    }

    /// Runs rendered DDL statements in order.
    async fn ddl(&mut self, statements: Result<Vec<String>, RenderError>) -> Result<(), Error> {
        let result = async {
            let statements = statements.map_err(render_error)?;
            for sql in &statements {
                self.allowed_rendered(sql)?;
            }
            self.op_start().await?;
            for sql in statements {
                self.tx().run(&sql).await.map_err(db_error)?;
            }
            Ok(())
        }
        .await;
        self.reopen_after_ddl().await;
        result
    }

    /// SQLite's table rebuild: a new table with the changed definition, the rows copied,
    /// the old table dropped, the new one renamed, indexes, triggers and views restored.
    async fn rebuild(&mut self, table: &str, change: &Change) -> Result<(), Error> {
        let policy = self.policy.clone();
        let tx = self.tx();
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
        let new_sql = rebuild::rewrite(table, &create, &temp, change).map_err(rebuild_error)?;
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
            tx.run(&sql).await.map_err(db_error)?;
        }
        Ok(())
    }

    async fn add_constraint(
        &mut self,
        table: &str,
        rendered: Result<String, RenderError>,
    ) -> Result<(), Error> {
        match self.op_start().await.and(rendered.map_err(render_error)) {
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
        }
    }

    async fn ddl_inner(&mut self, sql: &str) -> Result<(), Error> {
        self.allowed_rendered(sql)?;
        self.tx().run(sql).await.map(drop).map_err(db_error)
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
        let name = format!("_retort_cursor_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let dialect = self.dialect;
        let quoted = dialect.ident(&name).map_err(render_error)?;
        // What is sent (the query, its values bound or, for PostgreSQL's DECLARE, spliced
        // in as literals) is what the policy checks.
        let sent = match dialect {
            Dialect::Postgres => {
                // The guest's text is sent too, to be prepared for its column names.
                self.allowed(sql)?;
                dialect.inline(sql, params).map_err(render_error)?
            }
            _ => sql.to_owned(),
        };
        self.allowed(&sent)?;
        let tx = self.tx();
        let columns = match dialect {
            Dialect::Sqlite => {
                tx.run_with(&format!("CREATE TEMP TABLE {quoted} AS {sql}"), params)
                    .await
                    .map_err(db_error)?;
                tx.columns_of(&format!("SELECT * FROM temp.{quoted}"))
                    .await
                    .map_err(db_error)?
            }
            Dialect::Mysql => {
                tx.run_with(
                    &format!(
                        "CREATE TEMPORARY TABLE {quoted} (`_retort_rowid` BIGINT AUTO_INCREMENT PRIMARY KEY) AS {sql}"
                    ),
                    params,
                )
                .await
                .map_err(db_error)?;
                tx.columns_of(sql).await.map_err(db_error)?
            }
            Dialect::Postgres => {
                // DECLARE takes no bound parameters: the values go in as literals,
                // rendered and quoted by the dialect, spliced at their placeholders.
                let columns = tx.columns_of(sql).await.map_err(db_error)?;
                tx.run(&format!("DECLARE {quoted} NO SCROLL CURSOR FOR {sent}"))
                    .await
                    .map_err(db_error)?;
                columns
            }
        };
        self.open_cursors.push(name.clone());
        Ok(Cursor {
            table: name,
            columns,
            last_rowid: 0,
        })
    }

    /// The next batch of a cursor's rows.
    async fn fetch(&mut self, name: &str, after: i64, limit: u32) -> Result<Vec<Row>, Error> {
        let dialect = self.dialect;
        let quoted = dialect.ident(name).map_err(render_error)?;
        let (sql, skip) = match dialect {
            Dialect::Sqlite => (
                format!(
                    "SELECT * FROM temp.{quoted} WHERE rowid > {after} ORDER BY rowid LIMIT {limit}"
                ),
                0,
            ),
            Dialect::Mysql => (
                format!(
                    "SELECT * FROM {quoted} WHERE `_retort_rowid` > {after} ORDER BY `_retort_rowid` LIMIT {limit}"
                ),
                1,
            ),
            Dialect::Postgres => (format!("FETCH FORWARD {limit} FROM {quoted}"), 0),
        };
        self.tx().rows(&sql, skip).await.map_err(db_error)
    }

    /// Releases a cursor's snapshot.
    async fn release(&mut self, name: &str) -> Result<(), sqlx::Error> {
        let dialect = self.dialect;
        let Ok(quoted) = dialect.ident(name) else {
            return Ok(());
        };
        let sql = match dialect {
            Dialect::Sqlite => format!("DROP TABLE IF EXISTS temp.{quoted}"),
            Dialect::Mysql => format!("DROP TEMPORARY TABLE IF EXISTS {quoted}"),
            Dialect::Postgres => format!("CLOSE {quoted}"),
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.run(&sql).await?;
        }
        Ok(())
    }

    /// Drops the snapshots of cursors the guest never dropped, before the commit.
    pub async fn close_cursors(&mut self) -> Result<(), sqlx::Error> {
        for name in std::mem::take(&mut self.open_cursors) {
            self.release(&name).await?;
        }
        Ok(())
    }
}

impl OpState {
    /// The SQL types of `columns` of a PostgreSQL table, in order.
    async fn pg_column_types(
        &mut self,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<String>, Error> {
        let quoted = Dialect::Postgres.ident(table).map_err(render_error)?;
        let rows = self
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

    /// MySQL/MariaDB's `MODIFY COLUMN` restates the whole column: the parts not being
    /// changed are read from information_schema.
    async fn mysql_modify(
        &mut self,
        table: &str,
        column: &str,
        new_type: Option<String>,
        nullable: Option<bool>,
        default: Option<Option<String>>,
    ) -> Result<(), Error> {
        let d = Dialect::Mysql;
        let rows = if self.offline() {
            // The model answers what information_schema would, in the same shape.
            let known = self.model().and_then(|m| m.column(table, column).cloned());
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
            self.tx()
                .strings(
                    "SELECT COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT \
                     FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                    &[table, column],
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
            d.ident(table).map_err(render_error)?,
            d.ident(column).map_err(render_error)?,
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
            sql.push_str(&format!(
                " COMMENT {}",
                crate::dialect::string_literal(&comment, d).map_err(render_error)?
            ));
        }
        self.ddl_inner(&sql).await
    }

    /// MySQL/MariaDB drop each kind of constraint with its own syntax.
    async fn mysql_drop_constraint(&mut self, table: &str, name: &str) -> Result<(), Error> {
        let d = Dialect::Mysql;
        let kind = if self.offline() {
            self.model()
                .and_then(|m| m.constraint_kind(table, name))
                .map(str::to_owned)
        } else {
            let rows = self
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
        let t = d.ident(table).map_err(render_error)?;
        let n = d.ident(name).map_err(render_error)?;
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
        self.ddl_inner(&sql).await
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

/// Statements after which MySQL/MariaDB may have committed implicitly (DDL and the like):
/// a cheap filter before asking the server whether the transaction ended.
fn may_commit_implicitly(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE" | "ANALYZE" | "OPTIMIZE" | "REPAIR"
    )
}

/// How an op error says the database connection is gone (crate::migrate looks for it).
pub(crate) const CONNECTION_LOST: &str = "the database connection was lost";

/// Sorts a database error into the variant a guest can match on, by the database's
/// error codes: sqlx's kind for constraint violations, PostgreSQL's SQLSTATE and
/// MySQL/MariaDB's error numbers for missing and existing objects. SQLite has one code
/// (SQLITE_ERROR) for both, so there, and only there, the message decides.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    if crate::backend::is_connection_lost(&e) {
        return Error::Database(format!("{CONNECTION_LOST}: {e}"));
    }
    let sqlx::Error::Database(db) = &e else {
        return Error::Database(e.to_string());
    };
    let message = db.message().to_owned();
    match db_error_kind(db.as_ref()) {
        DbErrorKind::Constraint => Error::ConstraintViolation(message),
        DbErrorKind::NotFound => Error::NotFound(message),
        DbErrorKind::Exists => Error::AlreadyExists(message),
        DbErrorKind::Other => Error::Database(message),
    }
}

/// What kind of failure a database error is, for a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbErrorKind {
    Constraint,
    NotFound,
    Exists,
    Other,
}

fn db_error_kind(db: &dyn sqlx::error::DatabaseError) -> DbErrorKind {
    use sqlx::error::ErrorKind;
    if matches!(
        db.kind(),
        ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
    ) {
        return DbErrorKind::Constraint;
    }
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return match my.number() {
            // Unknown table, column, key; can't DROP; no such table.
            1051 | 1054 | 1091 | 1146 | 1176 => DbErrorKind::NotFound,
            // Table, column, key name exists; duplicate foreign key.
            1050 | 1060 | 1061 | 1826 => DbErrorKind::Exists,
            // Check constraint violated; cannot add or update a child row.
            3819 | 4025 | 1216 | 1217 | 1451 | 1452 | 1062 | 1048 => DbErrorKind::Constraint,
            _ => DbErrorKind::Other,
        };
    }
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return match db.code().as_deref() {
            // undefined_table, undefined_column, undefined_object, undefined_function,
            // invalid_schema_name
            Some("42P01" | "42703" | "42704" | "42883" | "3F000") => DbErrorKind::NotFound,
            // duplicate_table, duplicate_column, duplicate_object, duplicate_schema
            Some("42P07" | "42701" | "42710" | "42P06") => DbErrorKind::Exists,
            // Integrity constraint violations (class 23).
            Some(c) if c.starts_with("23") => DbErrorKind::Constraint,
            _ => DbErrorKind::Other,
        };
    }
    // SQLite: constraint codes are covered by the kind above; the rest is SQLITE_ERROR.
    let lower = db.message().to_lowercase();
    if lower.contains("constraint failed") {
        DbErrorKind::Constraint
    } else if lower.contains("no such") {
        DbErrorKind::NotFound
    } else if lower.contains("already exists") || lower.contains("duplicate column") {
        DbErrorKind::Exists
    } else {
        DbErrorKind::Other
    }
}

impl TypesHost for OpState {}

/// What an op hands back to the guest.
pub(crate) enum Done {
    Nothing,
    /// Rows affected (`execute`) or inserted (`bulk-insert`).
    Rows(u64),
    Cursor(Cursor),
}

impl OpState {
    /// The one executor of ops: checks the call's size against `[sandbox]
    /// max-call-bytes` (a trap when over), validates and renders the op for the dialect,
    /// applies the SQL policy, runs it in the revision's transaction (or writes it to
    /// the script), and records it: in the journal when it succeeded, as the failed op
    /// when it did not.
    pub(crate) async fn apply(&mut self, op: Op) -> wasmtime::Result<Result<Done, Error>> {
        if let Some(bytes) = op.call_bytes() {
            self.within_call_limit(op.name(), bytes)?;
        }
        let d = self.dialect;
        let one = |sql: Result<String, RenderError>| sql.map(|s| vec![s]);
        let result = match &op {
            Op::CreateTable { table } => self.ddl(d.create_table(table)).await.map(nothing),
            Op::DropTable { name } => self.ddl(one(d.drop_table(name))).await.map(nothing),
            Op::RenameTable { old_name, new_name } => self
                .ddl(one(d.rename_table(old_name, new_name)))
                .await
                .map(nothing),
            Op::AddColumn { table, column } => {
                self.ddl(d.add_column(table, column)).await.map(nothing)
            }
            Op::DropColumn { table, column } => self
                .ddl(one(d.drop_column(table, column)))
                .await
                .map(nothing),
            Op::AlterColumn {
                table,
                column,
                changes,
            } => self.alter(table, column, changes).await.map(nothing),
            Op::CreateIndex { index } => self.ddl(one(d.create_index(index))).await.map(nothing),
            Op::DropIndex { table, name } => {
                self.ddl(one(d.drop_index(table, name))).await.map(nothing)
            }
            Op::CreateForeignKey { table, key } => self
                .add_constraint(table, d.foreign_key(table, key))
                .await
                .map(nothing),
            Op::CreateUniqueConstraint { table, constraint } => self
                .add_constraint(table, d.unique_constraint(table, constraint))
                .await
                .map(nothing),
            Op::CreateCheckConstraint { table, constraint } => self
                .add_constraint(table, d.check_constraint(table, constraint))
                .await
                .map(nothing),
            Op::DropConstraint { table, name } => {
                self.remove_constraint(table, name).await.map(nothing)
            }
            Op::Execute { sql, params } => self.run_statement(sql, params).await.map(Done::Rows),
            Op::Query { sql, params } => self.open_query(sql, params).await.map(Done::Cursor),
            Op::BulkInsert {
                table,
                columns,
                rows,
                ..
            } => self.insert(table, columns, rows).await.map(Done::Rows),
        };
        Ok(self.outcome(op, result).await)
    }

    /// `alter-column`: a rename, then the type, nullability and default, each as the
    /// dialect can (SQLite rebuilds the table, MySQL/MariaDB restate the column).
    async fn alter(
        &mut self,
        table: &str,
        column: &str,
        changes: &ColumnAlteration,
    ) -> Result<(), Error> {
        let d = self.dialect;
        self.op_start().await?;
        let mut name = column.to_owned();
        if let Some(new_name) = &changes.new_name {
            let sql = d
                .rename_column(table, column, new_name)
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
                self.rebuild(table, &change).await
            }
            Dialect::Postgres => {
                let t = d.ident(table).map_err(render_error)?;
                let c = d.ident(&name).map_err(render_error)?;
                if let Some(ty) = new_type {
                    self.ddl_inner(&format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty}"))
                        .await?;
                }
                if let Some(nullable) = changes.nullable {
                    let verb = if nullable { "DROP" } else { "SET" };
                    self.ddl_inner(&format!("ALTER TABLE {t} ALTER COLUMN {c} {verb} NOT NULL"))
                        .await?;
                }
                match default {
                    Some(Some(e)) => {
                        self.ddl_inner(&format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {e}"))
                            .await
                    }
                    Some(None) => {
                        self.ddl_inner(&format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"))
                            .await
                    }
                    None => Ok(()),
                }
            }
            Dialect::Mysql => {
                self.mysql_modify(table, &name, new_type, changes.nullable, default)
                    .await
            }
        }
    }

    /// `drop-constraint`, by kind where the dialect needs it.
    async fn remove_constraint(&mut self, table: &str, name: &str) -> Result<(), Error> {
        self.op_start().await?;
        match self.dialect {
            Dialect::Sqlite => {
                self.rebuild(table, &Change::DropConstraint(name.to_owned()))
                    .await
            }
            Dialect::Postgres => {
                let t = self.dialect.ident(table).map_err(render_error)?;
                let n = self.dialect.ident(name).map_err(render_error)?;
                self.ddl_inner(&format!("ALTER TABLE {t} DROP CONSTRAINT {n}"))
                    .await
            }
            Dialect::Mysql => self.mysql_drop_constraint(table, name).await,
        }
    }

    /// `execute`: the policy checks the text as it is sent (values bound) or as the
    /// script holds it (values spliced in as literals).
    async fn run_statement(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let result = async {
            let sent = self.final_text(sql, params)?;
            self.allowed(&sent)?;
            self.op_start().await?;
            if self.offline() {
                self.tx().run(&sent).await.map_err(db_error)
            } else {
                self.tx().run_with(sql, params).await.map_err(db_error)
            }
        }
        .await;
        if may_commit_implicitly(sql) {
            self.reopen_after_ddl().await;
        }
        result
    }

    /// `query`: the policy sees the query as it is sent (open_cursor), or as a script
    /// would hold it; a script reads no rows.
    async fn open_query(&mut self, sql: &str, params: &[Value]) -> Result<Cursor, Error> {
        let sent = self.final_text(sql, params)?;
        if self.offline() {
            self.allowed(&sent)?;
            return Err(Error::Offline);
        }
        self.op_start().await?;
        self.open_cursor(sql, params).await
    }

    /// `bulk-insert`: chunks under every dialect's bound-parameter limit.
    async fn insert(
        &mut self,
        table: &str,
        columns: &[String],
        rows: &[Row],
    ) -> Result<u64, Error> {
        self.op_start().await?;
        if let Some(bad) = rows.iter().position(|r| r.len() != columns.len()) {
            return Err(Error::Denied(format!(
                "row {bad} has {} values for {} columns",
                rows[bad].len(),
                columns.len()
            )));
        }
        // Stay under every dialect's bound-parameter limit (SQLite: 32766).
        let per_statement = (30_000 / columns.len().max(1)).clamp(1, 1000);
        // PostgreSQL does not convert a text parameter to, say, a timestamp column by
        // itself: each value is cast to its column's type.
        let casts = if self.dialect == Dialect::Postgres && !self.offline() {
            Some(self.pg_column_types(table, columns).await?)
        } else {
            None
        };
        let mut inserted = 0;
        for chunk in rows.chunks(per_statement) {
            let (sql, params) = self
                .dialect
                .insert(table, columns, chunk, casts.as_deref())
                .map_err(render_error)?;
            let affected = self.tx().run_with(&sql, &params).await.map_err(db_error)?;
            // A script knows what it will insert, not what a database reports.
            inserted += if self.offline() {
                chunk.len() as u64
            } else {
                affected
            };
        }
        Ok(inserted)
    }
}

fn nothing(_: ()) -> Done {
    Done::Nothing
}

impl Done {
    fn rows(self) -> u64 {
        match self {
            Done::Rows(n) => n,
            _ => 0,
        }
    }
}

/// Each function of the `op` interface builds its [`Op`] and hands it to
/// [`OpState::apply`].
impl Host for OpState {
    async fn dialect(&mut self) -> wasmtime::Result<SqlDialect> {
        Ok(match self.dialect {
            Dialect::Sqlite => SqlDialect::Sqlite,
            Dialect::Postgres => SqlDialect::Postgres,
            Dialect::Mysql => SqlDialect::Mysql,
        })
    }

    async fn is_offline(&mut self) -> wasmtime::Result<bool> {
        Ok(self.offline())
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.within_call_limit("log", message.len())?;
        if level == LogLevel::Error {
            self.last_error_log = Some(message.clone());
        }
        (self.log)(&self.revision, level, &message);
        Ok(())
    }

    async fn create_table(&mut self, table: Table) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::CreateTable { table }).await
    }

    async fn drop_table(&mut self, name: String) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::DropTable { name }).await
    }

    async fn rename_table(
        &mut self,
        old_name: String,
        new_name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::RenameTable { old_name, new_name }).await
    }

    async fn add_column(
        &mut self,
        table: String,
        column: Column,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::AddColumn { table, column }).await
    }

    async fn drop_column(
        &mut self,
        table: String,
        column: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::DropColumn { table, column }).await
    }

    async fn alter_column(
        &mut self,
        table: String,
        column: String,
        changes: ColumnAlteration,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::AlterColumn {
            table,
            column,
            changes,
        })
        .await
    }

    async fn create_index(&mut self, index: Index) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::CreateIndex { index }).await
    }

    async fn drop_index(
        &mut self,
        table: String,
        name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::DropIndex { table, name }).await
    }

    async fn create_foreign_key(
        &mut self,
        table: String,
        key: ForeignKey,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::CreateForeignKey { table, key }).await
    }

    async fn create_unique_constraint(
        &mut self,
        table: String,
        constraint: UniqueConstraint,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::CreateUniqueConstraint { table, constraint })
            .await
    }

    async fn create_check_constraint(
        &mut self,
        table: String,
        constraint: CheckConstraint,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::CreateCheckConstraint { table, constraint })
            .await
    }

    async fn drop_constraint(
        &mut self,
        table: String,
        name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unit(Op::DropConstraint { table, name }).await
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        Ok(self
            .apply(Op::Execute { sql, params })
            .await?
            .map(Done::rows))
    }

    async fn query(
        &mut self,
        sql: String,
        params: Vec<Value>,
    ) -> wasmtime::Result<Result<Resource<Cursor>, Error>> {
        match self.apply(Op::Query { sql, params }).await? {
            Ok(Done::Cursor(cursor)) => Ok(Ok(self.table.push(cursor)?)),
            Ok(_) => unreachable!("a query gives a cursor"),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn bulk_insert(
        &mut self,
        table: String,
        columns: Vec<String>,
        rows: Vec<Row>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        Ok(self
            .apply(Op::bulk_insert(table, columns, rows))
            .await?
            .map(Done::rows))
    }
}

impl OpState {
    /// Applies an op whose result the guest sees as `result<_, error>`.
    async fn unit(&mut self, op: Op) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.apply(op).await?.map(drop))
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
        let (name, last) = {
            let c = self.table.get(&cursor)?;
            (c.table.clone(), c.last_rowid)
        };
        let limit = max.clamp(1, self.call_limits.max_batch_rows.max(1));
        match self.fetch(&name, last, limit).await {
            Ok(rows) => {
                self.table.get_mut(&cursor)?.last_rowid = last + rows.len() as i64;
                Ok(Ok(rows))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn drop(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<()> {
        let c = self.table.delete(cursor)?;
        self.open_cursors.retain(|t| *t != c.table);
        self.release(&c.table).await?;
        Ok(())
    }
}
