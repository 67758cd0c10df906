//! The declared schema (issue 15): a `schema.sql` of `CREATE TABLE` and
//! `CREATE [UNIQUE] INDEX` statements, parsed with sqlparser in the project's dialect
//! into the ops that would create it ([`Op::CreateTable`], [`Op::CreateIndex`]), so that
//! what a project declares and what its revisions did are the same kind of data.
//!
//! A single integer primary key autoincrements, as SQLAlchemy reads a model (so one file
//! means the same in every dialect). Anything else in the file (a view, a trigger, an
//! `INSERT`) is refused with its line:
//! the file describes the schema, and a statement it cannot model would be silently
//! lost.

use sqlparser::ast::{
    self, CharacterLength, ColumnOption, DataType, ExactNumberInfo, ObjectName, Spanned, Statement,
    TableConstraint, TimezoneInfo,
};
use sqlparser::parser::Parser;

use crate::dialect::{Dialect, parser_dialect};
use crate::op::Op;
use crate::wit::{
    CheckConstraint, Column, ForeignKey, Index, ReferentialAction, SqlType, Table, UniqueConstraint,
};

/// Why a declared schema cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclaredError {
    /// The file is not SQL the dialect's parser reads.
    #[error("the declared schema is not valid {dialect} SQL: {message}")]
    Syntax {
        /// The dialect it was read in.
        dialect: &'static str,
        /// The parser's message (it names the line and column).
        message: String,
    },
    /// A statement or clause the schema model does not hold.
    #[error("line {line}: {what} is not part of a declared schema: {hint}")]
    Unsupported {
        /// Where the statement starts (1-based).
        line: u64,
        /// What was found.
        what: String,
        /// What the file may hold instead.
        hint: &'static str,
    },
}

const ONLY: &str = "schema.sql holds CREATE TABLE and CREATE [UNIQUE] INDEX statements only";

/// Who wrote the DDL being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A person, in `schema.sql`: a single integer primary key autoincrements (as
    /// SQLAlchemy reads a model), and only what the model holds is accepted.
    Declared,
    /// A database, describing itself (`sqlite_master`, `SHOW CREATE TABLE`, DDL
    /// rebuilt from PostgreSQL's catalog): autoincrement only where the DDL says so,
    /// MySQL/MariaDB's `KEY` lines are indexes, and storage details (character set,
    /// collation, `ON UPDATE`) are passed over.
    Catalog,
}

/// The ops that create the declared schema, in the file's order.
pub fn parse(sql: &str, dialect: Dialect) -> Result<Vec<Op>, DeclaredError> {
    parse_as(sql, dialect, Reading::Declared)
}

/// The ops that create the schema `sql` describes, read as `reading` says.
pub fn parse_as(sql: &str, dialect: Dialect, reading: Reading) -> Result<Vec<Op>, DeclaredError> {
    let statements = Parser::parse_sql(parser_dialect(dialect).as_ref(), sql).map_err(|e| {
        DeclaredError::Syntax {
            dialect: dialect.name(),
            message: e.to_string(),
        }
    })?;
    let mut ops = Vec::new();
    for statement in &statements {
        let line = statement.span().start.line;
        let unsupported = |what: String, hint| DeclaredError::Unsupported { line, what, hint };
        match statement {
            Statement::CreateTable(create) => {
                let (table, indexes) = create_table(create, dialect, reading, &unsupported)?;
                ops.push(Op::CreateTable { table });
                ops.extend(indexes.into_iter().map(|index| Op::CreateIndex { index }));
            }
            Statement::CreateIndex(create) => ops.push(Op::CreateIndex {
                index: create_index(create, &unsupported)?,
            }),
            other => return Err(unsupported(first_words(&other.to_string()), ONLY)),
        }
    }
    Ok(ops)
}

/// `CREATE VIEW v`, `INSERT INTO t`: how a statement starts, to name it.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The last part of a possibly qualified name (`public.users` is `users`).
fn name_of(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map_or_else(|| name.to_string(), |ident| ident.value.clone())
}

fn idents(list: &[ast::Ident]) -> Vec<String> {
    list.iter().map(|i| i.value.clone()).collect()
}

type Unsupported<'a> = dyn Fn(String, &'static str) -> DeclaredError + 'a;

/// The columns of an index or key, refusing expressions (only plain columns are
/// modelled).
fn index_columns(
    columns: &[ast::IndexColumn],
    unsupported: &Unsupported,
) -> Result<Vec<String>, DeclaredError> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(ident) => Ok(ident.value.clone()),
            other => Err(unsupported(
                format!("the index expression `{other}`"),
                "indexes and keys list plain columns",
            )),
        })
        .collect()
}

fn action(a: Option<ast::ReferentialAction>) -> ReferentialAction {
    match a {
        None | Some(ast::ReferentialAction::NoAction) => ReferentialAction::NoAction,
        Some(ast::ReferentialAction::Restrict) => ReferentialAction::Restrict,
        Some(ast::ReferentialAction::Cascade) => ReferentialAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => ReferentialAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => ReferentialAction::SetDefault,
    }
}

/// A table, and the indexes its definition declares (MySQL/MariaDB's `KEY` lines, read
/// from a catalog).
fn create_table(
    create: &ast::CreateTable,
    dialect: Dialect,
    reading: Reading,
    unsupported: &Unsupported,
) -> Result<(Table, Vec<Index>), DeclaredError> {
    let table_name = name_of(&create.name);
    if create.query.is_some() {
        return Err(unsupported(
            format!("CREATE TABLE {table_name} AS SELECT"),
            "declare the table's columns",
        ));
    }
    let mut table = Table {
        name: table_name.clone(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        foreign_keys: Vec::new(),
        unique_constraints: Vec::new(),
        check_constraints: Vec::new(),
        comment: None,
    };
    for def in &create.columns {
        let mut column = Column {
            name: def.name.value.clone(),
            type_: sql_type(&def.data_type, dialect),
            nullable: true,
            primary_key: false,
            autoincrement: false,
            unique: false,
            server_default: None,
            comment: None,
        };
        for option in &def.options {
            let constraint_name = option.name.as_ref().map(|n| n.value.clone());
            match &option.option {
                ColumnOption::Null => column.nullable = true,
                ColumnOption::NotNull => column.nullable = false,
                // `DEFAULT NULL` is no default (MariaDB spells it out).
                ColumnOption::Default(ast::Expr::Value(v))
                    if matches!(v.value, ast::Value::Null) =>
                {
                    column.server_default = None
                }
                ColumnOption::Default(expr) => column.server_default = Some(expr.to_string()),
                ColumnOption::Unique {
                    is_primary: true, ..
                } => {
                    column.primary_key = true;
                    column.nullable = false;
                }
                ColumnOption::Unique { .. } => match constraint_name {
                    Some(name) => table.unique_constraints.push(UniqueConstraint {
                        name: Some(name),
                        columns: vec![column.name.clone()],
                    }),
                    None => column.unique = true,
                },
                ColumnOption::ForeignKey {
                    foreign_table,
                    referred_columns,
                    on_delete,
                    on_update,
                    ..
                } => table.foreign_keys.push(ForeignKey {
                    name: constraint_name,
                    columns: vec![column.name.clone()],
                    referred_table: name_of(foreign_table),
                    referred_columns: idents(referred_columns),
                    on_delete: action(*on_delete),
                    on_update: action(*on_update),
                }),
                ColumnOption::Check(expr) => table.check_constraints.push(CheckConstraint {
                    name: constraint_name,
                    expression: expr.to_string(),
                }),
                ColumnOption::Comment(text) => column.comment = Some(text.clone()),
                ColumnOption::DialectSpecific(tokens)
                    if tokens.iter().any(|t| {
                        let t = t.to_string().to_ascii_uppercase();
                        t == "AUTOINCREMENT" || t == "AUTO_INCREMENT"
                    }) =>
                {
                    column.autoincrement = true
                }
                ColumnOption::CharacterSet(_)
                | ColumnOption::Collation(_)
                | ColumnOption::OnUpdate(_)
                    if reading == Reading::Catalog => {}
                other => {
                    return Err(unsupported(
                        format!(
                            "the column option `{other}` on {table_name}.{}",
                            column.name
                        ),
                        "columns have a type, NULL/NOT NULL, DEFAULT, PRIMARY KEY, UNIQUE, \
                         REFERENCES, CHECK, COMMENT and AUTOINCREMENT",
                    ));
                }
            }
        }
        // PostgreSQL's SERIAL types are an autoincrementing integer.
        if let SqlType::Custom(name) = &column.type_ {
            let upper = name.to_ascii_uppercase();
            let serial = match upper.as_str() {
                "SERIAL" => Some(SqlType::Integer),
                "BIGSERIAL" => Some(SqlType::BigInt),
                "SMALLSERIAL" => Some(SqlType::SmallInt),
                _ => None,
            };
            if let Some(ty) = serial {
                column.type_ = ty;
                column.autoincrement = true;
            }
        }
        table.columns.push(column);
    }
    let mut indexes = Vec::new();
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::Index {
                name: Some(name),
                columns,
                ..
            } if reading == Reading::Catalog => indexes.push(Index {
                name: name.value.clone(),
                table: table_name.clone(),
                columns: index_columns(columns, unsupported)?,
                unique: false,
            }),
            TableConstraint::PrimaryKey { columns, .. } => {
                table.primary_key = index_columns(columns, unsupported)?;
            }
            TableConstraint::Unique {
                name,
                index_name,
                columns,
                ..
            } => {
                // MySQL's `UNIQUE KEY name (…)` names the index, not a constraint.
                table.unique_constraints.push(UniqueConstraint {
                    name: name
                        .as_ref()
                        .or(index_name.as_ref())
                        .map(|n| n.value.clone()),
                    columns: index_columns(columns, unsupported)?,
                })
            }
            TableConstraint::ForeignKey {
                name,
                columns,
                foreign_table,
                referred_columns,
                on_delete,
                on_update,
                ..
            } => table.foreign_keys.push(ForeignKey {
                name: name.as_ref().map(|n| n.value.clone()),
                columns: idents(columns),
                referred_table: name_of(foreign_table),
                referred_columns: idents(referred_columns),
                on_delete: action(*on_delete),
                on_update: action(*on_update),
            }),
            TableConstraint::Check { name, expr, .. } => {
                table.check_constraints.push(CheckConstraint {
                    name: name.as_ref().map(|n| n.value.clone()),
                    expression: expr.to_string(),
                })
            }
            other => {
                return Err(unsupported(
                    format!("the table constraint `{other}` on {table_name}"),
                    "tables have PRIMARY KEY, UNIQUE, FOREIGN KEY and CHECK constraints; \
                     declare indexes with CREATE INDEX",
                ));
            }
        }
    }
    // A one-column primary key is the column's own (as ops declare it).
    if let [only] = table.primary_key.as_slice()
        && let Some(column) = table.columns.iter_mut().find(|c| &c.name == only)
    {
        column.primary_key = true;
        column.nullable = false;
        table.primary_key.clear();
    }
    // As SQLAlchemy (and so Alembic) reads a model: a single integer primary key
    // autoincrements. The file then means the same in every dialect, whether it spells
    // AUTOINCREMENT, AUTO_INCREMENT, SERIAL or nothing.
    let mut keys = table.columns.iter_mut().filter(|c| c.primary_key);
    if let (Some(only), None) = (keys.next(), keys.next())
        && reading == Reading::Declared
        && matches!(
            only.type_,
            SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
        )
    {
        only.autoincrement = true;
    }
    Ok((table, indexes))
}

fn create_index(
    create: &ast::CreateIndex,
    unsupported: &Unsupported,
) -> Result<Index, DeclaredError> {
    let table = name_of(&create.table_name);
    let Some(name) = &create.name else {
        return Err(unsupported(
            format!("an index on {table} without a name"),
            "name every index, so that a revision can drop it",
        ));
    };
    if create.predicate.is_some() {
        return Err(unsupported(
            format!("the partial index {name}"),
            "indexes are plain (a partial index belongs in a revision's execute)",
        ));
    }
    Ok(Index {
        name: name_of(name),
        table,
        columns: index_columns(&create.columns, unsupported)?,
        unique: create.unique,
    })
}

/// The portable type a declared type means, in the project's dialect; a type with no
/// portable equivalent is kept as written (`custom`).
pub fn sql_type(ty: &DataType, dialect: Dialect) -> SqlType {
    let length = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => u32::try_from(*length).ok(),
        _ => None,
    };
    let custom = || SqlType::Custom(ty.to_string());
    match ty {
        DataType::SmallInt(_) | DataType::Int2(_) => SqlType::SmallInt,
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) | DataType::MediumInt(_) => {
            SqlType::Integer
        }
        DataType::BigInt(_) | DataType::Int8(_) => SqlType::BigInt,
        DataType::Boolean | DataType::Bool => SqlType::Boolean,
        // MariaDB's BOOLEAN is TINYINT(1).
        DataType::TinyInt(Some(1)) if dialect == Dialect::Mysql => SqlType::Boolean,
        DataType::Real | DataType::Float4 => SqlType::Real,
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => SqlType::Double,
        DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => match info {
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                match (u8::try_from(*p), u8::try_from(*s)) {
                    (Ok(p), Ok(s)) => SqlType::Numeric((p, s)),
                    _ => custom(),
                }
            }
            ExactNumberInfo::Precision(p) => match u8::try_from(*p) {
                Ok(p) => SqlType::Numeric((p, 0)),
                Err(_) => custom(),
            },
            ExactNumberInfo::None => custom(),
        },
        DataType::Text => SqlType::Text,
        DataType::Varchar(l) | DataType::CharacterVarying(l) | DataType::CharVarying(l) => {
            length(l).map_or_else(custom, SqlType::Varchar)
        }
        DataType::Char(l) | DataType::Character(l) => length(l).map_or_else(custom, SqlType::Char),
        DataType::Blob(None) | DataType::Bytea => SqlType::Blob,
        DataType::Date => SqlType::Date,
        DataType::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => SqlType::Time,
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone)
        | DataType::Datetime(_) => SqlType::Timestamp,
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            SqlType::TimestampTz
        }
        DataType::JSON | DataType::JSONB => SqlType::Json,
        DataType::Uuid => SqlType::Uuid,
        _ => custom(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str, d: Dialect) -> Vec<Table> {
        parse(sql, d)
            .unwrap()
            .into_iter()
            .filter_map(|op| match op {
                Op::CreateTable { table } => Some(table),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tables_columns_and_constraints_become_ops() {
        let sql = "
            CREATE TABLE users (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                email VARCHAR(200) NOT NULL UNIQUE,
                name TEXT,
                active BOOLEAN NOT NULL DEFAULT true,
                score NUMERIC(10, 2) CHECK (score >= 0)
            );
            CREATE TABLE posts (
                id BIGINT NOT NULL,
                user_id INTEGER NOT NULL,
                created TIMESTAMP,
                PRIMARY KEY (id),
                CONSTRAINT fk_posts_user FOREIGN KEY (user_id) REFERENCES users (id)
                    ON DELETE CASCADE,
                CONSTRAINT uq_posts UNIQUE (user_id, created)
            );
            CREATE UNIQUE INDEX ix_users_name ON users (name, email);
        ";
        let ops = parse(sql, Dialect::Sqlite).unwrap();
        assert_eq!(ops.len(), 3);
        let t = tables(sql, Dialect::Sqlite);
        let users = &t[0];
        assert_eq!(users.name, "users");
        let id = &users.columns[0];
        assert!(id.primary_key && id.autoincrement && !id.nullable);
        assert_eq!(id.type_, SqlType::Integer);
        let email = &users.columns[1];
        assert!(!email.nullable && email.unique);
        assert_eq!(email.type_, SqlType::Varchar(200));
        assert_eq!(users.columns[3].server_default.as_deref(), Some("true"));
        assert_eq!(users.columns[4].type_, SqlType::Numeric((10, 2)));
        assert_eq!(users.check_constraints[0].expression, "score >= 0");
        let posts = &t[1];
        // A one-column primary key is the column's.
        assert!(posts.primary_key.is_empty() && posts.columns[0].primary_key);
        let fk = &posts.foreign_keys[0];
        assert_eq!(fk.name.as_deref(), Some("fk_posts_user"));
        assert_eq!(
            (fk.referred_table.as_str(), fk.on_delete),
            ("users", ReferentialAction::Cascade)
        );
        assert_eq!(posts.unique_constraints[0].columns, ["user_id", "created"]);
        let Op::CreateIndex { index } = &ops[2] else {
            panic!("{:?}", ops[2]);
        };
        assert!(index.unique && index.columns == ["name", "email"] && index.table == "users");
    }

    #[test]
    fn types_read_per_dialect() {
        let ty = |sql: &str, d| {
            tables(&format!("CREATE TABLE t (c {sql})"), d)[0].columns[0]
                .type_
                .clone()
        };
        assert_eq!(
            ty("CHARACTER VARYING(20)", Dialect::Postgres),
            SqlType::Varchar(20)
        );
        assert_eq!(ty("INT", Dialect::Mysql), SqlType::Integer);
        assert_eq!(ty("TINYINT(1)", Dialect::Mysql), SqlType::Boolean);
        assert_eq!(
            ty("TIMESTAMP WITH TIME ZONE", Dialect::Postgres),
            SqlType::TimestampTz
        );
        assert_eq!(ty("JSONB", Dialect::Postgres), SqlType::Json);
        assert_eq!(
            ty("INET", Dialect::Postgres),
            SqlType::Custom("INET".into())
        );
        let serial =
            &tables("CREATE TABLE t (id SERIAL PRIMARY KEY)", Dialect::Postgres)[0].columns[0];
        assert!(serial.autoincrement && serial.type_ == SqlType::Integer);
    }

    #[test]
    fn anything_else_is_refused_with_its_line() {
        let err = parse(
            "CREATE TABLE t (id INTEGER);\n\nCREATE VIEW v AS SELECT id FROM t;",
            Dialect::Sqlite,
        )
        .unwrap_err();
        assert!(
            matches!(&err, DeclaredError::Unsupported { line: 3, what, .. } if what.starts_with("CREATE VIEW v")),
            "{err}"
        );
        let err = parse("CREATE INDEX ON t (id)", Dialect::Postgres).unwrap_err();
        assert!(err.to_string().contains("without a name"), "{err}");
        let err = parse("CREATE TABLE (", Dialect::Sqlite).unwrap_err();
        assert!(matches!(err, DeclaredError::Syntax { .. }), "{err}");
    }
}
