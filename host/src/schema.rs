//! The schema as the ops of the revisions replayed so far built it: what offline
//! rendering (`--sql`) knows in place of a live database's catalog.
//!
//! SQLite's table rebuilds replay into an in-memory SQLite database instead (the stored
//! `CREATE TABLE` is what a rebuild rewrites); this model serves MySQL/MariaDB, whose
//! `MODIFY COLUMN` restates a whole column and whose constraints are dropped by kind.
//! It sees only what ops do: DDL a revision runs through `execute` is not tracked.

use std::collections::BTreeMap;

use crate::dialect::{Dialect, RenderError};
use crate::wit::{Column, Table};

/// One column as rendered for the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnModel {
    pub name: String,
    pub ty: String,
    pub nullable: bool,
    /// The rendered default expression.
    pub default: Option<String>,
    pub autoincrement: bool,
    pub comment: Option<String>,
}

/// Constraint kinds, as information_schema names them.
pub const FOREIGN_KEY: &str = "FOREIGN KEY";
pub const UNIQUE: &str = "UNIQUE";
pub const CHECK: &str = "CHECK";

#[derive(Debug, Clone, Default)]
pub struct TableModel {
    pub columns: Vec<ColumnModel>,
    /// Constraint (and unique index) name -> kind.
    pub constraints: BTreeMap<String, &'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    tables: BTreeMap<String, TableModel>,
}

impl Schema {
    fn column_model(d: Dialect, c: &Column) -> Result<ColumnModel, RenderError> {
        Ok(ColumnModel {
            name: c.name.clone(),
            ty: d.column_type(&c.type_, c.autoincrement)?,
            nullable: c.nullable && !c.primary_key,
            default: c
                .server_default
                .as_deref()
                .map(|e| d.expression(e))
                .transpose()?,
            autoincrement: c.autoincrement,
            comment: c.comment.clone(),
        })
    }

    pub fn create_table(&mut self, d: Dialect, t: &Table) -> Result<(), RenderError> {
        let mut model = TableModel::default();
        for c in &t.columns {
            model.columns.push(Self::column_model(d, c)?);
            if c.unique {
                model.constraints.insert(c.name.clone(), UNIQUE);
            }
        }
        for fk in &t.foreign_keys {
            model
                .constraints
                .insert(d.foreign_key_name(&t.name, fk), FOREIGN_KEY);
        }
        for uq in &t.unique_constraints {
            model.constraints.insert(d.unique_name(&t.name, uq), UNIQUE);
        }
        for ck in &t.check_constraints {
            model.constraints.insert(d.check_name(&t.name, ck), CHECK);
        }
        self.tables.insert(t.name.clone(), model);
        Ok(())
    }

    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnModel> {
        self.tables
            .get(table)?
            .columns
            .iter()
            .find(|c| c.name == column)
    }

    pub fn drop_table(&mut self, name: &str) {
        self.tables.remove(name);
    }

    pub fn rename_table(&mut self, old: &str, new: &str) {
        if let Some(t) = self.tables.remove(old) {
            self.tables.insert(new.to_owned(), t);
        }
    }

    pub fn add_column(&mut self, d: Dialect, table: &str, c: &Column) -> Result<(), RenderError> {
        let column = Self::column_model(d, c)?;
        if let Some(t) = self.tables.get_mut(table) {
            t.columns.push(column);
            if c.unique {
                t.constraints.insert(c.name.clone(), UNIQUE);
            }
        }
        Ok(())
    }

    pub fn drop_column(&mut self, table: &str, column: &str) {
        if let Some(t) = self.tables.get_mut(table) {
            t.columns.retain(|c| c.name != column);
        }
    }

    /// Applies an alteration; `default` is `Some(None)` to remove the default.
    pub fn alter_column(
        &mut self,
        table: &str,
        column: &str,
        new_name: Option<&str>,
        new_type: Option<&str>,
        nullable: Option<bool>,
        default: Option<Option<&str>>,
    ) {
        let Some(c) = self
            .tables
            .get_mut(table)
            .and_then(|t| t.columns.iter_mut().find(|c| c.name == column))
        else {
            return;
        };
        if let Some(n) = new_name {
            c.name = n.to_owned();
        }
        if let Some(ty) = new_type {
            c.ty = ty.to_owned();
        }
        if let Some(n) = nullable {
            c.nullable = n;
        }
        if let Some(d) = default {
            c.default = d.map(str::to_owned);
        }
    }

    pub fn add_constraint(&mut self, table: &str, name: String, kind: &'static str) {
        if let Some(t) = self.tables.get_mut(table) {
            t.constraints.insert(name, kind);
        }
    }

    pub fn drop_constraint(&mut self, table: &str, name: &str) {
        if let Some(t) = self.tables.get_mut(table) {
            t.constraints.remove(name);
        }
    }

    /// The kind of a constraint (or unique index), if the model knows it.
    pub fn constraint_kind(&self, table: &str, name: &str) -> Option<&'static str> {
        self.tables.get(table)?.constraints.get(name).copied()
    }
}
