//! SQLite's table rebuild (<https://sqlite.org/lang_altertable.html>, section 7), for the
//! changes SQLite's ALTER TABLE cannot make: a column's type, nullability or default,
//! and adding or dropping a constraint.
//!
//! This module is pure: it rewrites the table's CREATE TABLE statement (as SQLite stores
//! it in `sqlite_schema`) through sqlparser's syntax tree. The backend runs the copy.

use sqlparser::ast::{
    ColumnOption, ColumnOptionDef, CreateTable, DataType, Ident, ObjectName, ObjectNamePart,
    Statement, TableConstraint,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    #[error("cannot read the definition of table {table:?}: {reason}")]
    Parse { table: String, reason: String },
    #[error("table {table:?} has no column {column:?}")]
    NoColumn { table: String, column: String },
    #[error("table {table:?} has no constraint {name:?}")]
    NoConstraint { table: String, name: String },
    #[error("table {table:?} already has a constraint {name:?}")]
    DuplicateConstraint { table: String, name: String },
}

/// One change to a table that needs a rebuild. Types and expressions arrive rendered
/// and validated by the dialect.
#[derive(Debug, Clone)]
pub enum Change {
    Alter {
        column: String,
        new_type: Option<String>,
        nullable: Option<bool>,
        default: Option<Option<String>>,
    },
    /// A rendered table constraint, e.g. `CONSTRAINT "fk" FOREIGN KEY (...) REFERENCES ...`.
    AddConstraint(String),
    DropConstraint(String),
}

/// The CREATE TABLE statement of the rebuilt table, named `new_name`.
pub fn rewrite(
    table: &str,
    create_sql: &str,
    new_name: &str,
    change: &Change,
) -> Result<String, RebuildError> {
    let parse_err = |reason: String| RebuildError::Parse {
        table: table.to_owned(),
        reason,
    };
    let mut create = parse_create(create_sql).map_err(parse_err)?;
    match change {
        Change::Alter {
            column,
            new_type,
            nullable,
            default,
        } => {
            let col = create
                .columns
                .iter_mut()
                .find(|c| c.name.value.eq_ignore_ascii_case(column))
                .ok_or_else(|| RebuildError::NoColumn {
                    table: table.to_owned(),
                    column: column.clone(),
                })?;
            if let Some(ty) = new_type {
                col.data_type = parse_type(ty).map_err(parse_err)?;
            }
            if let Some(nullable) = nullable {
                col.options
                    .retain(|o| !matches!(o.option, ColumnOption::Null | ColumnOption::NotNull));
                if !nullable {
                    col.options.push(ColumnOptionDef {
                        name: None,
                        option: ColumnOption::NotNull,
                    });
                }
            }
            if let Some(default) = default {
                col.options
                    .retain(|o| !matches!(o.option, ColumnOption::Default(_)));
                if let Some(expr) = default {
                    let expr = Parser::new(&SQLiteDialect {})
                        .try_with_sql(expr)
                        .and_then(|mut p| p.parse_expr())
                        .map_err(|e| parse_err(e.to_string()))?;
                    col.options.push(ColumnOptionDef {
                        name: None,
                        option: ColumnOption::Default(expr),
                    });
                }
            }
        }
        Change::AddConstraint(text) => {
            let constraint = parse_constraint(text).map_err(parse_err)?;
            if let Some(name) = constraint_name(&constraint)
                && has_constraint(&create, &name.value)
            {
                return Err(RebuildError::DuplicateConstraint {
                    table: table.to_owned(),
                    name: name.value.clone(),
                });
            }
            create.constraints.push(constraint);
        }
        Change::DropConstraint(name) => {
            if !has_constraint(&create, name) {
                return Err(RebuildError::NoConstraint {
                    table: table.to_owned(),
                    name: name.clone(),
                });
            }
            create.constraints.retain(|c| {
                !constraint_name(c).is_some_and(|n| n.value.eq_ignore_ascii_case(name))
            });
            for col in &mut create.columns {
                col.options.retain(|o| {
                    !o.name
                        .as_ref()
                        .is_some_and(|n| n.value.eq_ignore_ascii_case(name))
                });
            }
        }
    }
    create.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
        '"', new_name,
    ))]);
    Ok(Statement::CreateTable(create).to_string())
}

/// The column names of a CREATE TABLE statement, in order.
pub fn columns(create_sql: &str) -> Result<Vec<String>, String> {
    Ok(parse_create(create_sql)?
        .columns
        .into_iter()
        .map(|c| c.name.value)
        .collect())
}

fn parse_create(sql: &str) -> Result<CreateTable, String> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql).map_err(|e| e.to_string())?;
    match statements.into_iter().next() {
        Some(Statement::CreateTable(create)) => Ok(create),
        _ => Err("not a CREATE TABLE statement".into()),
    }
}

fn parse_type(ty: &str) -> Result<DataType, String> {
    Parser::new(&SQLiteDialect {})
        .try_with_sql(ty)
        .and_then(|mut p| p.parse_data_type())
        .map_err(|e| e.to_string())
}

fn parse_constraint(text: &str) -> Result<TableConstraint, String> {
    let mut create = parse_create(&format!("CREATE TABLE t (x INTEGER, {text})"))?;
    create
        .constraints
        .pop()
        .ok_or_else(|| format!("not a table constraint: {text}"))
}

fn constraint_name(c: &TableConstraint) -> Option<&Ident> {
    match c {
        TableConstraint::Unique { name, .. }
        | TableConstraint::PrimaryKey { name, .. }
        | TableConstraint::ForeignKey { name, .. }
        | TableConstraint::Check { name, .. } => name.as_ref(),
        _ => None,
    }
}

fn has_constraint(create: &CreateTable, name: &str) -> bool {
    create
        .constraints
        .iter()
        .filter_map(constraint_name)
        .chain(
            create
                .columns
                .iter()
                .flat_map(|c| c.options.iter().filter_map(|o| o.name.as_ref())),
        )
        .any(|n| n.value.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = "CREATE TABLE \"users\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT, \"role\" VARCHAR(50), \"status\" VARCHAR(20) DEFAULT ('active'), CONSTRAINT \"ck_role\" CHECK (role <> ''))";

    #[test]
    fn alters_nullability_type_and_default() {
        let sql = rewrite(
            "users",
            USERS,
            "new_users",
            &Change::Alter {
                column: "role".into(),
                new_type: Some("VARCHAR(80)".into()),
                nullable: Some(false),
                default: Some(Some("'member'".into())),
            },
        )
        .unwrap();
        assert!(sql.starts_with("CREATE TABLE \"new_users\""), "{sql}");
        assert!(
            sql.contains("\"role\" VARCHAR(80) NOT NULL DEFAULT 'member'"),
            "{sql}"
        );
        assert!(sql.contains("AUTOINCREMENT"), "{sql}");
        let cleared = rewrite(
            "users",
            USERS,
            "n",
            &Change::Alter {
                column: "status".into(),
                new_type: None,
                nullable: None,
                default: Some(None),
            },
        )
        .unwrap();
        assert!(!cleared.contains("DEFAULT"), "{cleared}");
    }

    #[test]
    fn adds_and_drops_named_constraints() {
        let added = rewrite(
            "users",
            USERS,
            "n",
            &Change::AddConstraint(
                "CONSTRAINT \"fk_x\" FOREIGN KEY (\"id\") REFERENCES \"t\" (\"id\")".into(),
            ),
        )
        .unwrap();
        assert!(added.contains("CONSTRAINT \"fk_x\" FOREIGN KEY"), "{added}");
        let dropped = rewrite(
            "users",
            USERS,
            "n",
            &Change::DropConstraint("ck_role".into()),
        )
        .unwrap();
        assert!(!dropped.contains("CHECK"), "{dropped}");
        assert_eq!(
            rewrite("users", USERS, "n", &Change::DropConstraint("nope".into())).unwrap_err(),
            RebuildError::NoConstraint {
                table: "users".into(),
                name: "nope".into()
            }
        );
        assert!(matches!(
            rewrite(
                "users",
                USERS,
                "n",
                &Change::AddConstraint("CONSTRAINT \"ck_role\" CHECK (1)".into())
            ),
            Err(RebuildError::DuplicateConstraint { .. })
        ));
    }
}
