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
use crate::db::{Alteration, ErrorClass, Flavor};
use crate::dialect::{Dialect, RenderError, parser_dialect};
use crate::generated::retort::migration::op::{Host, HostCursor};
use crate::generated::retort::migration::types::Host as TypesHost;
use crate::op::Op;
use crate::policy::Policy;
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

/// What a run is doing, as it happens, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity<'a> {
    /// A run of this many steps starts.
    Plan(usize),
    /// The revision calls this op (`create-table`, `execute`, ...).
    Op(&'a str),
    /// A statement about to be checked by the policy and, if it passes, sent.
    Statement(&'a str),
    /// The revision has read this many rows through its cursors so far.
    Rows(u64),
}

/// Receives [`Activity`] with the revision it concerns (the plan: an empty revision).
pub type ActivitySink = Arc<dyn Fn(&str, Activity<'_>) + Send + Sync>;

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
    /// Where ops, statements and rows read are reported (progress, `-v`).
    activity: Option<ActivitySink>,
    /// Rows the guest's cursors have read in this call.
    rows_read: u64,
    /// Snapshot tables of cursors the guest has not dropped yet.
    open_cursors: Vec<String>,
    /// Ops that succeeded, in order (bulk inserts without their rows); against a
    /// database only the last one.
    pub journal: Vec<Op>,
    /// The last op that returned an error to the guest, with the error.
    pub failed_op: Option<String>,
    /// PostgreSQL: the current op took a savepoint (an op refused before it reached the
    /// database took none, and has none to roll back to).
    savepoint: bool,
    /// A statement of this call found the database connection gone (set when the
    /// transaction is taken back).
    pub connection_lost: bool,
    /// The last error-level line the guest logged (a panic message, a traceback).
    pub last_error_log: Option<String>,
    pub limits: wasmtime::StoreLimits,
    /// What guest SQL may do.
    policy: Arc<Policy>,
    /// The last guest statement the policy allowed, exactly as sent: a data migration
    /// sends the same text again and again, and the same text gets the same verdict.
    last_allowed: Option<String>,
    /// The last statement whose `?` placeholders were made PostgreSQL's, and the result
    /// (a data migration sends the same text row after row).
    last_native: Option<(String, String)>,
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
            activity: None,
            rows_read: 0,
            open_cursors: Vec::new(),
            journal: Vec::new(),
            failed_op: None,
            savepoint: false,
            connection_lost: false,
            last_error_log: None,
            limits,
            policy: Arc::new(Policy::default()),
            last_allowed: None,
            last_native: None,
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

    /// Reports ops, statements and rows read to `sink` as they happen.
    pub fn with_activity(mut self, sink: Option<ActivitySink>) -> Self {
        self.activity = sink;
        self
    }

    fn report(&self, what: Activity<'_>) {
        if let Some(sink) = &self.activity {
            sink(&self.revision, what);
        }
    }

    /// The SQL policy for `execute` and `query` (the strict default otherwise).
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Self {
        self.policy = policy;
        self.last_allowed = None;
        self
    }

    /// Checks guest SQL against the policy: `sql` is the exact text that will be sent
    /// (its values bound) or written to the script.
    fn allowed(&mut self, sql: &str) -> Result<(), Error> {
        self.report(Activity::Statement(sql));
        if self.last_allowed.as_deref() == Some(sql) {
            return Ok(());
        }
        self.policy
            .check(self.dialect, sql)
            .map_err(|refusal| Error::Denied(refusal.to_string()))?;
        self.last_allowed = Some(sql.to_owned());
        Ok(())
    }

    /// Checks DDL the host rendered around a guest's expression or type.
    fn allowed_rendered(&self, sql: &str) -> Result<(), Error> {
        self.report(Activity::Statement(sql));
        self.policy
            .check_rendered(self.dialect, sql)
            .map_err(|refusal| Error::Denied(refusal.to_string()))
    }

    /// The guest's statement with the dialect's own placeholders, when they differ from
    /// what it wrote (`?` made `$n` on PostgreSQL); remembered for the next call.
    fn native(&mut self, sql: &str) -> Result<Option<String>, Error> {
        if let Some((from, to)) = &self.last_native
            && from == sql
        {
            return Ok(Some(to.clone()));
        }
        match self
            .dialect
            .native_placeholders(sql)
            .map_err(render_error)?
        {
            std::borrow::Cow::Borrowed(_) => Ok(None),
            std::borrow::Cow::Owned(to) => {
                self.last_native = Some((sql.to_owned(), to.clone()));
                Ok(Some(to))
            }
        }
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

    /// The engine's SQL and op behaviour.
    fn flavor(&self) -> &'static dyn Flavor {
        crate::db::flavor(self.dialect)
    }

    /// The SQL policy, for checking what an engine renders itself.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    /// An identifier quoted for the dialect.
    pub(crate) fn ident(&self, name: &str) -> Result<String, Error> {
        self.dialect.ident(name).map_err(render_error)
    }

    /// True when the ops run inside a database transaction (not a script, not a
    /// revision that runs outside transactions).
    pub(crate) fn in_transaction(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.in_transaction())
    }

    /// Takes the transaction back once the guest is done.
    /// Notes whether any statement of the call (an op, its savepoint, a cursor read or
    /// close) found the connection gone.
    pub fn take_tx(&mut self) -> Option<Tx> {
        if self.tx.as_ref().is_some_and(|t| t.lost()) {
            self.connection_lost = true;
        }
        self.tx.take()
    }

    /// True when rendering a script (`--sql`) rather than running against a database.
    pub fn offline(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.is_script())
    }

    /// The schema model of an offline run.
    pub(crate) fn model(&mut self) -> Option<&mut crate::schema::Schema> {
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

    pub(crate) fn tx(&mut self) -> &mut Tx {
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
                // A script's journal is what it ran (autogenerate replays it); online only
                // the last op is kept, to name where a failure came: a data migration's
                // statements and values are not held for the whole step.
                if !self.offline() {
                    self.journal.clear();
                }
                self.journal.push(op.into_record());
            }
            Err(e) => self.failed_op = Some(format!("{op}: {}", describe(e))),
        }
        result
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
        self.flavor().after_ddl(self).await;
        result
    }

    /// `create-foreign-key` and the other constraints: the engine adds the rendered
    /// table constraint.
    async fn add_constraint(
        &mut self,
        table: &str,
        rendered: Result<String, RenderError>,
    ) -> Result<(), Error> {
        self.op_start().await?;
        let constraint = rendered.map_err(render_error)?;
        self.flavor().add_constraint(self, table, constraint).await
    }

    /// Runs one statement an engine rendered, after the policy checked it.
    pub(crate) async fn ddl_inner(&mut self, sql: &str) -> Result<(), Error> {
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
        let quoted = self.ident(&name)?;
        let flavor = self.flavor();
        // What is sent (the query, its values bound or, where the engine's cursor takes
        // none, spliced in as literals) is what the policy checks.
        let sent = if flavor.capabilities().cursor_inlines_values {
            // The guest's text is sent too, to be prepared for its column names.
            self.allowed(sql)?;
            self.dialect.inline(sql, params).map_err(render_error)?
        } else {
            sql.to_owned()
        };
        self.allowed(&sent)?;
        let columns = flavor
            .snapshot(self.tx(), &quoted, sql, params, &sent)
            .await
            .map_err(db_error)?;
        self.open_cursors.push(name.clone());
        Ok(Cursor {
            table: name,
            columns,
            last_rowid: 0,
        })
    }

    /// The next batch of a cursor's rows.
    async fn fetch(&mut self, name: &str, after: i64, limit: u32) -> Result<Vec<Row>, Error> {
        let quoted = self.ident(name)?;
        let (sql, skip) = self.flavor().fetch(&quoted, after, limit);
        let rows = self.tx().rows(&sql, skip).await.map_err(db_error)?;
        if !rows.is_empty() {
            self.rows_read += rows.len() as u64;
            self.report(Activity::Rows(self.rows_read));
        }
        Ok(rows)
    }

    /// Releases a cursor's snapshot.
    async fn release(&mut self, name: &str) -> Result<(), sqlx::Error> {
        let Ok(quoted) = self.dialect.ident(name) else {
            return Ok(());
        };
        let sql = self.flavor().release(&quoted);
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

pub(crate) fn render_error(e: RenderError) -> Error {
    match e {
        RenderError::Unsupported(m) => Error::Unsupported(m),
        other => Error::Denied(other.to_string()),
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

/// Sorts a database error into the variant a guest can match on, by the engine's error
/// codes (`crate::db::classify`).
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    let class = crate::db::classify(&e);
    if class == ErrorClass::ConnectionLost {
        return Error::Database(format!("{CONNECTION_LOST}: {e}"));
    }
    let sqlx::Error::Database(db) = &e else {
        return Error::Database(e.to_string());
    };
    let message = db.message().to_owned();
    match class {
        ErrorClass::Constraint => Error::ConstraintViolation(message),
        ErrorClass::NotFound => Error::NotFound(message),
        ErrorClass::Exists => Error::AlreadyExists(message),
        ErrorClass::LockTimeout | ErrorClass::ConnectionLost | ErrorClass::Other => {
            Error::Database(message)
        }
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
        self.report(Activity::Op(op.name()));
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
        let change = Alteration {
            column: name,
            new_type,
            nullable: changes.nullable,
            default,
        };
        self.flavor().alter_column(self, table, change).await
    }

    /// `drop-constraint`, as the engine does it.
    async fn remove_constraint(&mut self, table: &str, name: &str) -> Result<(), Error> {
        self.op_start().await?;
        self.flavor().drop_constraint(self, table, name).await
    }

    /// `execute`: the policy checks the text as it is sent (values bound) or as the
    /// script holds it (values spliced in as literals).
    async fn run_statement(&mut self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let native = self.native(sql)?;
        let sql = native.as_deref().unwrap_or(sql);
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
            self.flavor().after_ddl(self).await;
        }
        result
    }

    /// `query`: the policy sees the query as it is sent (open_cursor), or as a script
    /// would hold it; a script reads no rows.
    async fn open_query(&mut self, sql: &str, params: &[Value]) -> Result<Cursor, Error> {
        let native = self.native(sql)?;
        let sql = native.as_deref().unwrap_or(sql);
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
        let casts = self.flavor().insert_casts(self, table, columns).await?;
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
        Ok(self.flavor().capabilities().wit)
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
