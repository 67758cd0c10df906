//! Ops as data: one value per call a revision makes through the `op` interface.
//!
//! Every host function of the `op` interface builds an [`Op`] and hands it to one
//! executor (`OpState::apply` in crate::ops), which validates it, renders it for the
//! dialect, runs it (or writes it to a script) and records it in the revision's journal.
//! The same values are what `upgrade --dry-run --format json` lists, and what a tool that
//! writes or inspects revisions (autogenerate, lint) works with.
//!
//! An op serialises as an object tagged by its WIT name:
//! `{"op": "add-column", "table": "users", "column": {...}}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wit::{
    CheckConstraint, Column, ColumnAlteration, ForeignKey, Index, Row, Table, UniqueConstraint,
    Value,
};

/// One call of the `op` interface that reaches the database (`dialect`, `is-offline` and
/// `log` only read or report, and are not ops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// A table with its columns and constraints.
    CreateTable {
        /// The whole definition.
        table: Table,
    },
    /// A table dropped.
    DropTable {
        /// The table.
        name: String,
    },
    /// A table renamed.
    RenameTable {
        /// Its name now.
        old_name: String,
        /// Its name after.
        new_name: String,
    },
    /// A column added to a table.
    AddColumn {
        /// The table.
        table: String,
        /// The column's definition.
        column: Column,
    },
    /// A column dropped.
    DropColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A column renamed, retyped, made (not) nullable, or given another default.
    AlterColumn {
        /// The table.
        table: String,
        /// The column, by its name before the change.
        column: String,
        /// What changes; a field left `None` stays as it is.
        changes: ColumnAlteration,
    },
    /// An index created.
    CreateIndex {
        /// The index: name, table, columns in order, unique or not.
        index: Index,
    },
    /// An index dropped.
    DropIndex {
        /// The table it is on (MySQL/MariaDB need it).
        table: String,
        /// The index.
        name: String,
    },
    /// A foreign key added to a table.
    CreateForeignKey {
        /// The referring table.
        table: String,
        /// Columns, the referred table and columns, actions.
        key: ForeignKey,
    },
    /// A unique constraint added to a table.
    CreateUniqueConstraint {
        /// The table.
        table: String,
        /// Its name and columns.
        constraint: UniqueConstraint,
    },
    /// A check constraint added to a table.
    CreateCheckConstraint {
        /// The table.
        table: String,
        /// Its name and boolean expression.
        constraint: CheckConstraint,
    },
    /// A constraint dropped, whatever its kind.
    DropConstraint {
        /// The table.
        table: String,
        /// The constraint.
        name: String,
    },
    /// One statement with bound parameters.
    Execute {
        /// The statement, with the dialect's placeholders.
        sql: String,
        /// The values bound to them, in order.
        params: Vec<Value>,
    },
    /// A query read through a cursor.
    Query {
        /// The query, with the dialect's placeholders.
        sql: String,
        /// The values bound to them, in order.
        params: Vec<Value>,
    },
    /// Rows inserted with bound parameters. Once the op has run, the journal keeps it
    /// without its rows (`rows` empty, `row_count` says how many there were), so that a
    /// data migration's journal stays small.
    BulkInsert {
        /// The table.
        table: String,
        /// The columns each row gives values for, in order.
        columns: Vec<String>,
        /// The rows (empty in a journal).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rows: Vec<Row>,
        /// How many rows the call carried.
        row_count: usize,
    },
}

impl Op {
    /// A bulk insert of `rows`.
    pub fn bulk_insert(table: String, columns: Vec<String>, rows: Vec<Row>) -> Op {
        let row_count = rows.len();
        Op::BulkInsert {
            table,
            columns,
            rows,
            row_count,
        }
    }

    /// The op's WIT name (`create-table`, `execute`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateTable { .. } => "create-table",
            Op::DropTable { .. } => "drop-table",
            Op::RenameTable { .. } => "rename-table",
            Op::AddColumn { .. } => "add-column",
            Op::DropColumn { .. } => "drop-column",
            Op::AlterColumn { .. } => "alter-column",
            Op::CreateIndex { .. } => "create-index",
            Op::DropIndex { .. } => "drop-index",
            Op::CreateForeignKey { .. } => "create-foreign-key",
            Op::CreateUniqueConstraint { .. } => "create-unique-constraint",
            Op::CreateCheckConstraint { .. } => "create-check-constraint",
            Op::DropConstraint { .. } => "drop-constraint",
            Op::Execute { .. } => "execute",
            Op::Query { .. } => "query",
            Op::BulkInsert { .. } => "bulk-insert",
        }
    }

    /// The bytes the call carried across the boundary, for ops that are bounded by
    /// `[sandbox] max-call-bytes` (statements and rows; DDL is small by construction).
    pub fn call_bytes(&self) -> Option<usize> {
        match self {
            Op::Execute { sql, params } | Op::Query { sql, params } => {
                Some(sql.len() + params.iter().map(value_bytes).sum::<usize>())
            }
            Op::BulkInsert { rows, .. } => Some(rows.iter().flatten().map(value_bytes).sum()),
            _ => None,
        }
    }

    /// The op as a journal keeps it: a bulk insert without its rows.
    pub fn into_record(self) -> Op {
        match self {
            Op::BulkInsert {
                table,
                columns,
                row_count,
                ..
            } => Op::BulkInsert {
                table,
                columns,
                rows: Vec::new(),
                row_count,
            },
            op => op,
        }
    }
}

/// Bytes a value carries across the boundary.
pub(crate) fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(t) => t.len(),
        Value::Blob(b) => b.len(),
        _ => 8,
    }
}

/// How failures and journals name an op: `add-column users.email`,
/// `execute "UPDATE ..."`, `bulk-insert users (500 rows)`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Op::CreateTable { table } => write!(f, "{name} {}", table.name),
            Op::DropTable { name: table } => write!(f, "{name} {table}"),
            Op::RenameTable { old_name, new_name } => {
                write!(f, "{name} {old_name} -> {new_name}")
            }
            Op::AddColumn { table, column } => write!(f, "{name} {table}.{}", column.name),
            Op::DropColumn { table, column } | Op::AlterColumn { table, column, .. } => {
                write!(f, "{name} {table}.{column}")
            }
            Op::CreateIndex { index } => write!(
                f,
                "{name} {} on {}({})",
                index.name,
                index.table,
                index.columns.join(", ")
            ),
            Op::DropIndex { name: index, .. } => write!(f, "{name} {index}"),
            Op::CreateForeignKey { table, key } => write!(
                f,
                "{name} {table}({}) -> {}",
                key.columns.join(", "),
                key.referred_table
            ),
            Op::CreateUniqueConstraint { table, constraint } => {
                write!(f, "{name} {table}({})", constraint.columns.join(", "))
            }
            Op::CreateCheckConstraint { table, constraint } => {
                write!(f, "{name} {table}: {}", constraint.expression)
            }
            Op::DropConstraint {
                table,
                name: constraint,
            } => write!(f, "{name} {table}.{constraint}"),
            Op::Execute { sql, .. } | Op::Query { sql, .. } => write!(f, "{name} {sql:?}"),
            Op::BulkInsert {
                table, row_count, ..
            } => write!(f, "{name} {table} ({row_count} rows)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_serialise_tagged_by_their_wit_name_and_read_back() {
        let op = Op::Execute {
            sql: "UPDATE t SET a = ?".into(),
            params: vec![Value::Text("x".into()), Value::Null],
        };
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["op"], "execute");
        assert_eq!(json["sql"], "UPDATE t SET a = ?");
        let back: Op = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_string(), op.to_string());
    }

    #[test]
    fn a_recorded_bulk_insert_keeps_its_count_not_its_rows() {
        let op = Op::bulk_insert(
            "t".into(),
            vec!["a".into()],
            vec![vec![Value::S64(1)], vec![Value::S64(2)]],
        );
        assert_eq!(op.call_bytes(), Some(16));
        let kept = op.into_record();
        assert_eq!(kept.to_string(), "bulk-insert t (2 rows)");
        let json = serde_json::to_value(&kept).unwrap();
        assert!(json.get("rows").is_none(), "{json}");
        assert_eq!(json["row_count"], 2);
    }
}
