//! A schema as data: the tables and indexes a sequence of ops leaves, folded op by op
//! ([`Model::apply`]). The declared schema folds its `CREATE` ops into one; the history
//! folds the ops its revisions ran (offline, from their journals) into another; issue
//! 15's comparison works on the two.
//!
//! Constraints are kept by name, as the host names them when a revision leaves the
//! name out ([`Dialect::foreign_key_name`] and its siblings), so that a later
//! `drop-constraint` finds them. SQL a revision runs through `execute` is not parsed:
//! the model notes that it saw some ([`Model::untracked`]).

use std::collections::BTreeMap;

use crate::dialect::Dialect;
use crate::op::Op;
use crate::wit::{CheckConstraint, ForeignKey, Index, Table, UniqueConstraint};

/// Why an op cannot apply to the model (it would fail on a database too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The op names a table, column, index or constraint the schema does not have.
    #[error("{op}: {what} does not exist")]
    Missing {
        /// The op, by its WIT name.
        op: &'static str,
        /// What is missing (`table users`, `column users.name`).
        what: String,
    },
    /// The op creates something that exists.
    #[error("{op}: {what} exists already")]
    Exists {
        /// The op, by its WIT name.
        op: &'static str,
        /// What exists.
        what: String,
    },
}

/// The tables and indexes of a schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    /// Tables by name; constraints carry their (given or generated) names.
    pub tables: BTreeMap<String, Table>,
    /// Indexes by name.
    pub indexes: BTreeMap<String, Index>,
    /// The `execute` statements seen, whose effect on the schema is not modelled.
    pub untracked: Vec<String>,
}

impl Model {
    /// The model after `ops`, applied in order.
    pub fn from_ops<'a>(
        dialect: Dialect,
        ops: impl IntoIterator<Item = &'a Op>,
    ) -> Result<Self, ModelError> {
        let mut model = Model::default();
        for op in ops {
            model.apply(dialect, op)?;
        }
        Ok(model)
    }

    fn table_mut(&mut self, op: &'static str, name: &str) -> Result<&mut Table, ModelError> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| ModelError::Missing {
                op,
                what: format!("table {name}"),
            })
    }

    /// Applies one op.
    pub fn apply(&mut self, d: Dialect, op: &Op) -> Result<(), ModelError> {
        let name = op.name();
        match op {
            Op::CreateTable { table } => {
                if self.tables.contains_key(&table.name) {
                    return Err(ModelError::Exists {
                        op: name,
                        what: format!("table {}", table.name),
                    });
                }
                let mut table = table.clone();
                name_constraints(d, &mut table);
                // A one-column primary key is the column's own.
                if let [only] = table.primary_key.as_slice()
                    && let Some(c) = table.columns.iter_mut().find(|c| &c.name == only)
                {
                    c.primary_key = true;
                    c.nullable = false;
                    table.primary_key.clear();
                }
                self.tables.insert(table.name.clone(), table);
            }
            Op::DropTable { name: table } => {
                self.tables
                    .remove(table)
                    .ok_or_else(|| ModelError::Missing {
                        op: name,
                        what: format!("table {table}"),
                    })?;
                self.indexes.retain(|_, i| &i.table != table);
            }
            Op::RenameTable { old_name, new_name } => {
                if self.tables.contains_key(new_name) {
                    return Err(ModelError::Exists {
                        op: name,
                        what: format!("table {new_name}"),
                    });
                }
                let mut table =
                    self.tables
                        .remove(old_name)
                        .ok_or_else(|| ModelError::Missing {
                            op: name,
                            what: format!("table {old_name}"),
                        })?;
                table.name = new_name.clone();
                self.tables.insert(new_name.clone(), table);
                for index in self.indexes.values_mut().filter(|i| &i.table == old_name) {
                    index.table = new_name.clone();
                }
                for t in self.tables.values_mut() {
                    for fk in t
                        .foreign_keys
                        .iter_mut()
                        .filter(|fk| &fk.referred_table == old_name)
                    {
                        fk.referred_table = new_name.clone();
                    }
                }
            }
            Op::AddColumn { table, column } => {
                let t = self.table_mut(name, table)?;
                if t.columns.iter().any(|c| c.name == column.name) {
                    return Err(ModelError::Exists {
                        op: name,
                        what: format!("column {table}.{}", column.name),
                    });
                }
                t.columns.push(column.clone());
                if column.unique {
                    // Added later, the column's unique constraint has the host's name.
                    let last = t.columns.last_mut().expect("pushed");
                    last.unique = false;
                    let uq = UniqueConstraint {
                        name: None,
                        columns: vec![column.name.clone()],
                    };
                    let uq_name = d.unique_name(table, &uq);
                    t.unique_constraints.push(UniqueConstraint {
                        name: Some(uq_name),
                        ..uq
                    });
                }
            }
            Op::DropColumn { table, column } => {
                let t = self.table_mut(name, table)?;
                let before = t.columns.len();
                t.columns.retain(|c| &c.name != column);
                if t.columns.len() == before {
                    return Err(ModelError::Missing {
                        op: name,
                        what: format!("column {table}.{column}"),
                    });
                }
                // What stands on the column goes with it.
                t.primary_key.retain(|c| c != column);
                t.unique_constraints.retain(|u| !u.columns.contains(column));
                t.foreign_keys.retain(|fk| !fk.columns.contains(column));
                self.indexes
                    .retain(|_, i| !(&i.table == table && i.columns.contains(column)));
            }
            Op::AlterColumn {
                table,
                column,
                changes,
            } => {
                let t = self.table_mut(name, table)?;
                let c = t
                    .columns
                    .iter_mut()
                    .find(|c| &c.name == column)
                    .ok_or_else(|| ModelError::Missing {
                        op: name,
                        what: format!("column {table}.{column}"),
                    })?;
                if let Some(ty) = &changes.new_type {
                    c.type_ = ty.clone();
                }
                if let Some(nullable) = changes.nullable {
                    c.nullable = nullable;
                }
                if let Some(default) = &changes.server_default {
                    c.server_default = default.clone();
                }
                if let Some(new) = &changes.new_name {
                    c.name = new.clone();
                    let rename = |cols: &mut Vec<String>| {
                        for x in cols.iter_mut().filter(|x| *x == column) {
                            *x = new.clone();
                        }
                    };
                    rename(&mut t.primary_key);
                    t.unique_constraints
                        .iter_mut()
                        .for_each(|u| rename(&mut u.columns));
                    t.foreign_keys
                        .iter_mut()
                        .for_each(|fk| rename(&mut fk.columns));
                    for index in self.indexes.values_mut().filter(|i| &i.table == table) {
                        rename(&mut index.columns);
                    }
                    for other in self.tables.values_mut() {
                        for fk in other
                            .foreign_keys
                            .iter_mut()
                            .filter(|fk| &fk.referred_table == table)
                        {
                            rename(&mut fk.referred_columns);
                        }
                    }
                }
            }
            Op::CreateIndex { index } => {
                self.table_mut(name, &index.table)?;
                if self.indexes.contains_key(&index.name) {
                    return Err(ModelError::Exists {
                        op: name,
                        what: format!("index {}", index.name),
                    });
                }
                self.indexes.insert(index.name.clone(), index.clone());
            }
            Op::DropIndex { name: index, .. } => {
                self.indexes
                    .remove(index)
                    .ok_or_else(|| ModelError::Missing {
                        op: name,
                        what: format!("index {index}"),
                    })?;
            }
            Op::CreateForeignKey { table, key } => {
                let key = ForeignKey {
                    name: Some(d.foreign_key_name(table, key)),
                    ..key.clone()
                };
                self.table_mut(name, table)?.foreign_keys.push(key);
            }
            Op::CreateUniqueConstraint { table, constraint } => {
                let uq = UniqueConstraint {
                    name: Some(d.unique_name(table, constraint)),
                    ..constraint.clone()
                };
                self.table_mut(name, table)?.unique_constraints.push(uq);
            }
            Op::CreateCheckConstraint { table, constraint } => {
                let ck = CheckConstraint {
                    name: Some(d.check_name(table, constraint)),
                    ..constraint.clone()
                };
                self.table_mut(name, table)?.check_constraints.push(ck);
            }
            Op::DropConstraint {
                table,
                name: constraint,
            } => {
                let t = self.table_mut(name, table)?;
                let named = |n: &Option<String>| n.as_deref() == Some(constraint.as_str());
                let before =
                    t.foreign_keys.len() + t.unique_constraints.len() + t.check_constraints.len();
                t.foreign_keys.retain(|x| !named(&x.name));
                t.unique_constraints.retain(|x| !named(&x.name));
                t.check_constraints.retain(|x| !named(&x.name));
                let after =
                    t.foreign_keys.len() + t.unique_constraints.len() + t.check_constraints.len();
                if before == after {
                    return Err(ModelError::Missing {
                        op: name,
                        what: format!("constraint {constraint} on {table}"),
                    });
                }
            }
            Op::Execute { sql, .. } => self.untracked.push(sql.clone()),
            Op::Query { .. } | Op::BulkInsert { .. } => {}
        }
        Ok(())
    }
}

/// Gives every constraint of a new table the name the host gives it.
fn name_constraints(d: Dialect, table: &mut Table) {
    let name = table.name.clone();
    for fk in &mut table.foreign_keys {
        fk.name = Some(d.foreign_key_name(&name, fk));
    }
    for uq in &mut table.unique_constraints {
        uq.name = Some(d.unique_name(&name, uq));
    }
    for ck in &mut table.check_constraints {
        ck.name = Some(d.check_name(&name, ck));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autogen::declared;
    use crate::wit::{Column, ColumnAlteration, SqlType};

    fn model(sql: &str) -> Model {
        Model::from_ops(
            Dialect::Sqlite,
            &declared::parse(sql, Dialect::Sqlite).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn ops_fold_into_the_schema_they_leave() {
        let mut m = model(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
             CREATE INDEX ix_users_name ON users (name);",
        );
        let d = Dialect::Sqlite;
        // The unnamed foreign key has the host's name, so drop-constraint finds it.
        let fk = m.tables["posts"].foreign_keys[0].name.clone().unwrap();
        assert_eq!(fk, "fk_posts_user_id_users");
        m.apply(
            d,
            &Op::AlterColumn {
                table: "users".into(),
                column: "name".into(),
                changes: ColumnAlteration {
                    new_name: Some("full_name".into()),
                    new_type: Some(SqlType::Varchar(100)),
                    nullable: Some(false),
                    server_default: None,
                },
            },
        )
        .unwrap();
        let name = &m.tables["users"].columns[1];
        assert_eq!(
            (name.name.as_str(), &name.type_, name.nullable),
            ("full_name", &SqlType::Varchar(100), false)
        );
        // The index follows the rename.
        assert_eq!(m.indexes["ix_users_name"].columns, ["full_name"]);
        m.apply(
            d,
            &Op::DropConstraint {
                table: "posts".into(),
                name: fk,
            },
        )
        .unwrap();
        assert!(m.tables["posts"].foreign_keys.is_empty());
        m.apply(
            d,
            &Op::AddColumn {
                table: "posts".into(),
                column: Column {
                    name: "title".into(),
                    type_: SqlType::Text,
                    nullable: true,
                    primary_key: false,
                    autoincrement: false,
                    unique: false,
                    server_default: None,
                    comment: None,
                },
            },
        )
        .unwrap();
        m.apply(
            d,
            &Op::RenameTable {
                old_name: "users".into(),
                new_name: "people".into(),
            },
        )
        .unwrap();
        assert_eq!(m.indexes["ix_users_name"].table, "people");
        m.apply(
            d,
            &Op::DropTable {
                name: "people".into(),
            },
        )
        .unwrap();
        assert!(m.indexes.is_empty());
        assert_eq!(m.tables.keys().collect::<Vec<_>>(), ["posts"]);
    }

    #[test]
    fn an_op_on_something_missing_is_an_error() {
        let mut m = model("CREATE TABLE t (id INTEGER)");
        let err = m
            .apply(
                Dialect::Sqlite,
                &Op::DropColumn {
                    table: "t".into(),
                    column: "nope".into(),
                },
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "drop-column: column t.nope does not exist");
        let err = m
            .apply(Dialect::Sqlite, &Op::DropTable { name: "u".into() })
            .unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }), "{err}");
    }
}
