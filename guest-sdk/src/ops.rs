//! The operations a revision asks the host to perform.

use crate::bindings::retort::migration::op;
use crate::schema::{Alter, CheckConstraint, Column, ForeignKey, Index, Table, UniqueConstraint};
use crate::{Dialect, LogLevel, Result, Rows, Value};

/// The target database's SQL dialect.
pub fn dialect() -> Dialect {
    op::dialect()
}

/// True when the host renders a script instead of running against a database (`--sql`).
/// [`query`] then fails with [`crate::DbError::Offline`]: write a set-based statement.
pub fn is_offline() -> bool {
    op::is_offline()
}

/// A line in the host's log, attributed to this revision.
pub fn log(level: LogLevel, message: &str) {
    op::log(level, message)
}

pub fn create_table(table: Table) -> Result<()> {
    Ok(op::create_table(&table.0)?)
}

pub fn drop_table(name: &str) -> Result<()> {
    Ok(op::drop_table(name)?)
}

pub fn rename_table(old_name: &str, new_name: &str) -> Result<()> {
    Ok(op::rename_table(old_name, new_name)?)
}

pub fn add_column(table: &str, column: Column) -> Result<()> {
    Ok(op::add_column(table, &column.0)?)
}

pub fn drop_column(table: &str, column: &str) -> Result<()> {
    Ok(op::drop_column(table, column)?)
}

/// Renames a column, changes its type, nullability or default. On SQLite the host
/// rebuilds the table when the change needs it.
pub fn alter_column(table: &str, column: &str, changes: Alter) -> Result<()> {
    Ok(op::alter_column(table, column, &changes.0)?)
}

pub fn create_index(index: Index) -> Result<()> {
    Ok(op::create_index(&index.0)?)
}

pub fn drop_index(table: &str, name: &str) -> Result<()> {
    Ok(op::drop_index(table, name)?)
}

pub fn create_foreign_key(table: &str, key: ForeignKey) -> Result<()> {
    Ok(op::create_foreign_key(table, &key.0)?)
}

pub fn create_unique_constraint(table: &str, constraint: UniqueConstraint) -> Result<()> {
    Ok(op::create_unique_constraint(table, &constraint.0)?)
}

pub fn create_check_constraint(table: &str, constraint: CheckConstraint) -> Result<()> {
    Ok(op::create_check_constraint(table, &constraint.0)?)
}

pub fn drop_constraint(table: &str, name: &str) -> Result<()> {
    Ok(op::drop_constraint(table, name)?)
}

/// Runs one statement; every parameter is bound, never spliced into the SQL.
/// Placeholders: `?` in every dialect, bound in order (the host writes PostgreSQL's
/// `$1`, `$2`, ...; a statement written with `$n` is taken as written there).
pub fn execute(sql: &str, params: Vec<Value>) -> Result<u64> {
    Ok(op::execute(sql, &params)?)
}

/// Runs a query and returns its rows as an iterator that reads them in batches.
/// Placeholders as for [`execute`].
pub fn query(sql: &str, params: Vec<Value>) -> Result<Rows> {
    let cursor = op::query(sql, &params)?;
    Ok(Rows::new(cursor))
}

/// Inserts many rows at once; every value is bound.
pub fn bulk_insert(table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Result<u64> {
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    Ok(op::bulk_insert(table, &columns, &rows)?)
}
