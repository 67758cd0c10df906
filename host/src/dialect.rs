//! SQL rendering per dialect: identifier quoting, type mapping, DDL for each op.
//!
//! Nothing a guest sends is spliced into SQL unchecked: identifiers are validated and
//! quoted; type names and expressions are parsed (sqlparser) to prove they are exactly
//! one type or expression, then written as the guest wrote them (never re-printed from
//! tokens or a parse tree, whose printing can undo escaping); values travel as bound
//! parameters, or as literals from [`Dialect::literal`] spliced at the exact spans of
//! their placeholders.

use sqlparser::dialect::Dialect as ParserDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::db::{AutoIncrement, Capabilities, Comments, Flavor, Placeholder};
use crate::wit::{
    CheckConstraint, Column, ForeignKey, Index, ReferentialAction, SqlType, Table,
    UniqueConstraint, Value,
};

/// The SQL dialects Retort renders: one per database engine, whose module under
/// `host/src/db/` says how it differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
}

/// A guest request the host refuses before any SQL runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A table, column, index or constraint name the host will not quote.
    #[error("invalid identifier {name:?}: {reason}")]
    Identifier {
        /// The name.
        name: String,
        /// Why (too long, a NUL, empty).
        reason: &'static str,
    },
    /// A DEFAULT or CHECK expression that is not exactly one SQL expression.
    #[error("invalid SQL expression {expr:?}: {reason}")]
    Expression {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// A custom column type that is not exactly one SQL type.
    #[error("invalid custom type {ty:?}: {reason}")]
    CustomType {
        /// The type.
        ty: String,
        /// Why.
        reason: String,
    },
    /// Something the dialect cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// Longest identifier accepted (PostgreSQL's limit, the smallest of the three).
pub const MAX_IDENTIFIER: usize = 63;

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql];

    /// The dialect of a database URL, by its scheme.
    pub fn from_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?;
        Dialect::ALL
            .into_iter()
            .find(|d| d.caps().schemes.contains(&scheme))
    }

    /// Its name (`sqlite`, `postgres`, `mysql`).
    pub fn name(self) -> &'static str {
        self.caps().name
    }

    fn flavor(self) -> &'static dyn Flavor {
        crate::db::flavor(self)
    }

    fn caps(self) -> &'static Capabilities {
        self.flavor().capabilities()
    }

    fn parser_dialect(self) -> Box<dyn ParserDialect> {
        self.flavor().parser()
    }

    /// Validates and quotes an identifier. Any printable name up to 63 characters is
    /// accepted and quoted, so `x"; DROP TABLE users; --` is a (strange) table name,
    /// never SQL.
    pub fn ident(self, name: &str) -> Result<String, RenderError> {
        let bad = |reason| RenderError::Identifier {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("empty"));
        }
        if name.chars().count() > MAX_IDENTIFIER {
            return Err(bad("longer than 63 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("contains a control character"));
        }
        if name.ends_with(' ') {
            return Err(bad("ends with a space"));
        }
        let q = self.caps().quote;
        Ok(format!("{q}{}{q}", name.replace(q, &format!("{q}{q}"))))
    }

    fn idents(self, names: &[String]) -> Result<String, RenderError> {
        if names.is_empty() {
            return Err(RenderError::Unsupported("an empty column list".into()));
        }
        let quoted: Result<Vec<_>, _> = names.iter().map(|n| self.ident(n)).collect();
        Ok(quoted?.join(", "))
    }

    /// Checks that `expr` (a default or a check) is exactly one SQL expression with no
    /// comments, and returns it as written: the text that was checked is the text sent.
    pub fn expression(self, expr: &str) -> Result<String, RenderError> {
        let bad = |reason: String| RenderError::Expression {
            expr: expr.to_owned(),
            reason,
        };
        self.one_fragment(expr, |parser| parser.parse_expr().map(drop), "expression")
            .map_err(bad)
    }

    /// Parses `text` as exactly one fragment (`parse`) with nothing after it and no
    /// comment in it (a comment could end the statement around it early, and MySQL runs
    /// some comments), and returns it trimmed, as written.
    fn one_fragment(
        self,
        text: &str,
        parse: impl FnOnce(&mut Parser) -> Result<(), sqlparser::parser::ParserError>,
        what: &str,
    ) -> Result<String, String> {
        let dialect = self.parser_dialect();
        let tokens = sqlparser::tokenizer::Tokenizer::new(dialect.as_ref(), text)
            .tokenize()
            .map_err(|e| e.to_string())?;
        if tokens.iter().any(|t| {
            matches!(
                t,
                Token::Whitespace(
                    sqlparser::tokenizer::Whitespace::SingleLineComment { .. }
                        | sqlparser::tokenizer::Whitespace::MultiLineComment(_)
                )
            )
        }) {
            return Err(format!("a comment is not allowed in an {what}"));
        }
        let mut parser = Parser::new(dialect.as_ref())
            .try_with_sql(text)
            .map_err(|e| e.to_string())?;
        parse(&mut parser).map_err(|e| e.to_string())?;
        if parser.peek_token().token != Token::EOF {
            return Err(format!("text follows the {what}"));
        }
        Ok(text.trim().to_owned())
    }

    /// The column type in this dialect (see docs/types.md): the engine's own name
    /// where it has one, otherwise the standard SQL name.
    pub fn column_type(self, ty: &SqlType, autoincrement: bool) -> Result<String, RenderError> {
        if let SqlType::Custom(name) = ty {
            return self.custom_type(name);
        }
        Ok(self
            .flavor()
            .column_type(ty, autoincrement)
            .unwrap_or_else(|| standard_type(ty)))
    }

    /// A custom type must parse as exactly one data type; it is written as given.
    fn custom_type(self, ty: &str) -> Result<String, RenderError> {
        self.one_fragment(ty, |parser| parser.parse_data_type().map(drop), "type")
            .map_err(|reason| RenderError::CustomType {
                ty: ty.to_owned(),
                reason,
            })
    }

    /// A column definition as it appears in CREATE TABLE or ADD COLUMN.
    /// `inline_pk` puts PRIMARY KEY on the column itself.
    pub fn column_def(self, col: &Column, inline_pk: bool) -> Result<String, RenderError> {
        let mut sql = format!(
            "{} {}",
            self.ident(&col.name)?,
            self.column_type(&col.type_, col.autoincrement)?
        );
        let caps = self.caps();
        // SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT` is never null already.
        let rowid_alias =
            inline_pk && col.autoincrement && caps.autoincrement == AutoIncrement::RowidAlias;
        if inline_pk {
            sql.push_str(" PRIMARY KEY");
            if rowid_alias {
                sql.push_str(" AUTOINCREMENT");
            }
        }
        if !col.nullable && !rowid_alias {
            sql.push_str(" NOT NULL");
        }
        if let (true, AutoIncrement::Keyword(keyword)) = (col.autoincrement, caps.autoincrement) {
            sql.push(' ');
            sql.push_str(keyword);
        }
        if col.unique {
            sql.push_str(" UNIQUE");
        }
        if let Some(default) = &col.server_default {
            sql.push_str(&format!(" DEFAULT ({})", self.expression(default)?));
        }
        if let (Some(comment), Comments::Inline) = (&col.comment, self.caps().comments) {
            sql.push_str(&format!(" COMMENT {}", string_literal(comment, self)?));
        }
        Ok(sql)
    }

    /// `CREATE TABLE` (and its comments, where the dialect writes them apart).
    pub fn create_table(self, table: &Table) -> Result<Vec<String>, RenderError> {
        if table.columns.is_empty() {
            return Err(RenderError::Unsupported(format!(
                "table {:?} has no columns",
                table.name
            )));
        }
        let flagged: Vec<&Column> = table.columns.iter().filter(|c| c.primary_key).collect();
        let pk: Vec<String> = if table.primary_key.is_empty() {
            flagged.iter().map(|c| c.name.clone()).collect()
        } else {
            table.primary_key.clone()
        };
        let inline = pk.len() == 1 && table.primary_key.is_empty();
        let mut parts = Vec::new();
        for col in &table.columns {
            parts.push(self.column_def(col, inline && col.primary_key)?);
        }
        if !inline && !pk.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", self.idents(&pk)?));
        }
        for uq in &table.unique_constraints {
            parts.push(self.unique_constraint(&table.name, uq)?);
        }
        for fk in &table.foreign_keys {
            parts.push(self.foreign_key(&table.name, fk)?);
        }
        for ck in &table.check_constraints {
            parts.push(self.check_constraint(&table.name, ck)?);
        }
        let name = self.ident(&table.name)?;
        let mut sql = format!("CREATE TABLE {name} (\n    {}\n)", parts.join(",\n    "));
        let comments = self.caps().comments;
        if let (Some(comment), Comments::Inline) = (&table.comment, comments) {
            sql.push_str(&format!(" COMMENT={}", string_literal(comment, self)?));
        }
        let mut statements = vec![sql];
        if comments == Comments::Statements {
            if let Some(comment) = &table.comment {
                statements.push(format!(
                    "COMMENT ON TABLE {name} IS {}",
                    string_literal(comment, self)?
                ));
            }
            for col in &table.columns {
                if let Some(comment) = &col.comment {
                    statements.push(format!(
                        "COMMENT ON COLUMN {name}.{} IS {}",
                        self.ident(&col.name)?,
                        string_literal(comment, self)?
                    ));
                }
            }
        }
        Ok(statements)
    }

    /// A foreign key's name: its own, or `fk_TABLE_COLUMNS_REFERRED` (63 characters at most).
    pub fn foreign_key_name(self, table: &str, fk: &ForeignKey) -> String {
        truncate(&fk.name.clone().unwrap_or_else(|| {
            format!("fk_{table}_{}_{}", fk.columns.join("_"), fk.referred_table)
        }))
    }

    /// A unique constraint's name: its own, or `uq_TABLE_COLUMNS`.
    pub fn unique_name(self, table: &str, uq: &UniqueConstraint) -> String {
        truncate(
            &uq.name
                .clone()
                .unwrap_or_else(|| format!("uq_{table}_{}", uq.columns.join("_"))),
        )
    }

    /// A check constraint's name: its own, or `ck_TABLE`.
    pub fn check_name(self, table: &str, ck: &CheckConstraint) -> String {
        truncate(&ck.name.clone().unwrap_or_else(|| format!("ck_{table}")))
    }

    /// A foreign key as a table constraint (`CONSTRAINT … FOREIGN KEY …`).
    pub fn foreign_key(self, table: &str, fk: &ForeignKey) -> Result<String, RenderError> {
        Ok(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}{}",
            self.ident(&self.foreign_key_name(table, fk))?,
            self.idents(&fk.columns)?,
            self.ident(&fk.referred_table)?,
            self.idents(&fk.referred_columns)?,
            action(" ON DELETE", fk.on_delete),
            action(" ON UPDATE", fk.on_update),
        ))
    }

    /// A unique constraint as a table constraint.
    pub fn unique_constraint(
        self,
        table: &str,
        uq: &UniqueConstraint,
    ) -> Result<String, RenderError> {
        Ok(format!(
            "CONSTRAINT {} UNIQUE ({})",
            self.ident(&self.unique_name(table, uq))?,
            self.idents(&uq.columns)?
        ))
    }

    /// A check constraint as a table constraint.
    pub fn check_constraint(
        self,
        table: &str,
        ck: &CheckConstraint,
    ) -> Result<String, RenderError> {
        Ok(format!(
            "CONSTRAINT {} CHECK ({})",
            self.ident(&self.check_name(table, ck))?,
            self.expression(&ck.expression)?
        ))
    }

    /// `CREATE [UNIQUE] INDEX`.
    pub fn create_index(self, index: &Index) -> Result<String, RenderError> {
        Ok(format!(
            "CREATE {}INDEX {} ON {} ({})",
            if index.unique { "UNIQUE " } else { "" },
            self.ident(&index.name)?,
            self.ident(&index.table)?,
            self.idents(&index.columns)?
        ))
    }

    /// `DROP INDEX` (on its table where the dialect needs it).
    pub fn drop_index(self, table: &str, name: &str) -> Result<String, RenderError> {
        Ok(if self.caps().drop_index_on_table {
            format!("DROP INDEX {} ON {}", self.ident(name)?, self.ident(table)?)
        } else {
            format!("DROP INDEX {}", self.ident(name)?)
        })
    }

    /// `DROP TABLE`.
    pub fn drop_table(self, name: &str) -> Result<String, RenderError> {
        Ok(format!("DROP TABLE {}", self.ident(name)?))
    }

    /// A table renamed.
    pub fn rename_table(self, old: &str, new: &str) -> Result<String, RenderError> {
        Ok(format!(
            "ALTER TABLE {} RENAME TO {}",
            self.ident(old)?,
            self.ident(new)?
        ))
    }

    /// `ALTER TABLE … ADD COLUMN` (and its comment).
    pub fn add_column(self, table: &str, col: &Column) -> Result<Vec<String>, RenderError> {
        if col.primary_key {
            return Err(RenderError::Unsupported(format!(
                "adding primary-key column {:?} to an existing table",
                col.name
            )));
        }
        let mut statements = vec![format!(
            "ALTER TABLE {} ADD COLUMN {}",
            self.ident(table)?,
            self.column_def(col, false)?
        )];
        if let (Some(comment), Comments::Statements) = (&col.comment, self.caps().comments) {
            statements.push(format!(
                "COMMENT ON COLUMN {}.{} IS {}",
                self.ident(table)?,
                self.ident(&col.name)?,
                string_literal(comment, self)?
            ));
        }
        Ok(statements)
    }

    /// `ALTER TABLE … DROP COLUMN`.
    pub fn drop_column(self, table: &str, column: &str) -> Result<String, RenderError> {
        Ok(format!(
            "ALTER TABLE {} DROP COLUMN {}",
            self.ident(table)?,
            self.ident(column)?
        ))
    }

    /// A column renamed.
    pub fn rename_column(self, table: &str, old: &str, new: &str) -> Result<String, RenderError> {
        Ok(format!(
            "ALTER TABLE {} RENAME COLUMN {} TO {}",
            self.ident(table)?,
            self.ident(old)?,
            self.ident(new)?
        ))
    }

    /// An INSERT of `rows` with bound parameters, and the parameters. With `casts`
    /// (PostgreSQL), each value is cast to its column's type; NULLs are written inline.
    pub fn insert(
        self,
        table: &str,
        columns: &[String],
        rows: &[Vec<Value>],
        casts: Option<&[String]>,
    ) -> Result<(String, Vec<Value>), RenderError> {
        let mut params = Vec::new();
        let mut tuples = Vec::with_capacity(rows.len());
        for row in rows {
            let mut marks = Vec::with_capacity(row.len());
            for (i, value) in row.iter().enumerate() {
                match (value, casts) {
                    (Value::Null, Some(_)) => marks.push("NULL".to_owned()),
                    (_, Some(types)) => {
                        params.push(value.clone());
                        marks.push(format!("{}::{}", self.placeholder(params.len()), types[i]));
                    }
                    (_, None) => {
                        params.push(value.clone());
                        marks.push(self.placeholder(params.len()));
                    }
                }
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.ident(table)?,
            self.idents(columns)?,
            tuples.join(", ")
        );
        Ok((sql, params))
    }

    /// The n-th (1-based) bound parameter marker.
    pub fn placeholder(self, n: usize) -> String {
        match self.caps().placeholder {
            Placeholder::Numbered => format!("${n}"),
            Placeholder::Question => "?".into(),
        }
    }
}

impl Dialect {
    /// A value as a SQL literal of this dialect, for the statements that cannot take
    /// bound parameters (PostgreSQL's DECLARE) and for scripts rendered offline.
    pub fn literal(self, value: &Value) -> Result<String, RenderError> {
        Ok(match value {
            Value::Null => "NULL".into(),
            Value::Boolean(b) => self.caps().booleans[usize::from(*b)].into(),
            Value::S64(v) => v.to_string(),
            Value::F64(v) if v.is_finite() => format!("{v:?}"),
            Value::F64(v) => self.flavor().non_finite(*v)?,
            Value::Text(t) => string_literal(t, self)?,
            Value::Blob(b) => self.flavor().blob_literal(b),
        })
    }

    /// `sql`'s tokens with their spans, as sqlparser reads this dialect.
    fn tokens(self, sql: &str) -> Result<Vec<sqlparser::tokenizer::TokenWithSpan>, RenderError> {
        let dialect = self.parser_dialect();
        sqlparser::tokenizer::Tokenizer::new(dialect.as_ref(), sql)
            .tokenize_with_location()
            .map_err(|e| RenderError::Expression {
                expr: sql.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The guest's statement with portable placeholders made this dialect's own: every
    /// dialect takes `?` (bound in order); on PostgreSQL each `?` becomes `$1`, `$2`, ...
    /// A statement already written with `$n` is taken as written (there `?` is jsonb's
    /// key-exists operator); `?|` and `?&` are never placeholders. sqlparser's tokenizer
    /// finds the `?` tokens (so those in strings, comments and quoted names stay), each
    /// is replaced at its exact span, and every other byte is kept as written.
    pub fn native_placeholders(self, sql: &str) -> Result<std::borrow::Cow<'_, str>, RenderError> {
        use std::borrow::Cow;
        if self.caps().placeholder != Placeholder::Numbered || !sql.contains('?') {
            return Ok(Cow::Borrowed(sql));
        }
        let tokens = self.tokens(sql)?;
        if tokens
            .iter()
            .any(|t| matches!(&t.token, Token::Placeholder(p) if p.starts_with('$')))
        {
            return Ok(Cow::Borrowed(sql));
        }
        let offsets = Offsets::new(sql);
        let mut out = String::with_capacity(sql.len() + 8);
        let mut copied = 0;
        let mut n = 0;
        for token in &tokens {
            if token.token != Token::Question {
                continue;
            }
            let start = offsets.byte(token.span.start);
            let spanned = offsets.byte(token.span.end);
            // sqlparser 0.59's PostgreSQL tokenizer takes the character after a lone `?`
            // into its token. Only characters whose loss cannot change how the rest is
            // read (they start no string, comment, quoted name or operator) may follow.
            let next = sql.get(start + 1..).and_then(|rest| rest.chars().next());
            let harmless = |c: char| c.is_whitespace() || c.is_ascii_digit() || ",);:]".contains(c);
            if !sql.get(start..).is_some_and(|rest| rest.starts_with('?'))
                || start < copied
                || spanned > start + 1 && !next.is_some_and(harmless)
            {
                return Err(RenderError::Unsupported(format!(
                    "the ? placeholder at byte {start} must be followed by a space, `,`, `)`, `;`, `:` or `]`"
                )));
            }
            let end = start + 1;
            out.push_str(&sql[copied..start]);
            // `$1` must not join a name before it (`x$1`) or a digit after it (`$11`).
            let word =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if word(sql[..start].chars().next_back()) {
                out.push(' ');
            }
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
            if word(sql[end..].chars().next()) {
                out.push(' ');
            }
            copied = end;
        }
        out.push_str(&sql[copied..]);
        Ok(if n == 0 {
            Cow::Borrowed(sql)
        } else {
            Cow::Owned(out)
        })
    }

    /// `sql` with its placeholders (`?`, or `$n` on PostgreSQL) replaced by literals.
    /// sqlparser's tokenizer finds the placeholders (so those inside strings or comments
    /// stay); each literal is spliced at its placeholder's exact span, and every other
    /// byte of `sql` is kept as written.
    pub fn inline(self, sql: &str, params: &[Value]) -> Result<String, RenderError> {
        let tokens = self.tokens(sql)?;
        let offsets = Offsets::new(sql);
        let mut next = 0;
        let mut out = String::with_capacity(sql.len());
        let mut copied = 0;
        for token in tokens {
            let Token::Placeholder(p) = &token.token else {
                continue;
            };
            let index = match p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n.checked_sub(1),
                None if p == "?" => {
                    next += 1;
                    Some(next - 1)
                }
                None => None,
            };
            let value = index.and_then(|i| params.get(i)).ok_or_else(|| {
                RenderError::Unsupported(format!(
                    "placeholder {p} has no value ({} given)",
                    params.len()
                ))
            })?;
            let start = offsets.byte(token.span.start);
            let end = offsets.byte(token.span.end);
            if sql.get(start..end) != Some(p.as_str()) || start < copied {
                return Err(RenderError::Unsupported(format!(
                    "placeholder {p} could not be located in the statement"
                )));
            }
            out.push_str(&sql[copied..start]);
            // A literal touching the guest's own token (`'a'?`) would merge with it.
            let touches = |c: Option<char>, free: &str| {
                c.is_some_and(|c| !c.is_whitespace() && !free.contains(c))
            };
            let before = touches(sql[..start].chars().next_back(), "(,=");
            let after = touches(sql[end..].chars().next(), "),;");
            if before {
                out.push(' ');
            }
            out.push_str(&self.literal(value)?);
            if after {
                out.push(' ');
            }
            copied = end;
        }
        out.push_str(&sql[copied..]);
        Ok(out)
    }
}

/// Byte offsets of sqlparser's locations (1-based lines split at `\n`, 1-based columns
/// counted in characters).
struct Offsets<'a> {
    sql: &'a str,
    lines: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(sql: &'a str) -> Self {
        let lines = std::iter::once(0)
            .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Offsets { sql, lines }
    }

    fn byte(&self, at: sqlparser::tokenizer::Location) -> usize {
        let Some(&line_start) = usize::try_from(at.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| self.lines.get(l))
        else {
            return self.sql.len();
        };
        let column = usize::try_from(at.column)
            .unwrap_or(usize::MAX)
            .saturating_sub(1);
        self.sql[line_start..]
            .char_indices()
            .nth(column)
            .map_or(self.sql.len(), |(i, _)| line_start + i)
    }
}

/// sqlparser's dialect for ours.
pub fn parser_dialect(dialect: Dialect) -> Box<dyn ParserDialect> {
    dialect.parser_dialect()
}

/// A type's standard SQL name, for an engine that has no name of its own for it.
pub(crate) fn standard_type(ty: &SqlType) -> String {
    match ty {
        SqlType::SmallInt => "SMALLINT".into(),
        SqlType::Integer => "INTEGER".into(),
        SqlType::BigInt => "BIGINT".into(),
        SqlType::Boolean => "BOOLEAN".into(),
        SqlType::Real => "REAL".into(),
        SqlType::Double => "DOUBLE PRECISION".into(),
        SqlType::Numeric((p, s)) => format!("NUMERIC({p}, {s})"),
        SqlType::Text => "TEXT".into(),
        SqlType::Varchar(n) => format!("VARCHAR({n})"),
        SqlType::Char(n) => format!("CHAR({n})"),
        SqlType::Blob => "BLOB".into(),
        SqlType::Date => "DATE".into(),
        SqlType::Time => "TIME".into(),
        SqlType::Timestamp => "TIMESTAMP".into(),
        SqlType::TimestampTz => "TIMESTAMP WITH TIME ZONE".into(),
        SqlType::Json => "JSON".into(),
        SqlType::Uuid => "UUID".into(),
        SqlType::Custom(name) => name.clone(),
    }
}

/// Keeps generated constraint names within the identifier limit.
fn truncate(name: &str) -> String {
    name.chars().take(MAX_IDENTIFIER).collect()
}

fn action(prefix: &str, a: ReferentialAction) -> String {
    let word = match a {
        ReferentialAction::NoAction => return String::new(),
        ReferentialAction::Restrict => "RESTRICT",
        ReferentialAction::Cascade => "CASCADE",
        ReferentialAction::SetNull => "SET NULL",
        ReferentialAction::SetDefault => "SET DEFAULT",
    };
    format!("{prefix} {word}")
}

/// A text value as a string literal of `dialect`: the one function that writes guest
/// text into SQL. Read back by the database (`SELECT <literal>`), it is exactly `s`
/// (property-tested against all three databases), whatever `s` holds:
/// - SQLite: `'…'` with quotes doubled; a NUL is `char(0)` concatenated in.
/// - PostgreSQL: `'…'` with quotes doubled; with a backslash, `E'…'` with backslashes
///   doubled too. Text cannot hold NUL there: refused.
/// - MySQL/MariaDB: `'…'` with quotes doubled and backslashes and NUL escaped, as the
///   default `sql_mode` Retort pins its sessions to reads them.
///
/// Each engine's module under `host/src/db/` holds its rule.
pub fn string_literal(s: &str, dialect: Dialect) -> Result<String, RenderError> {
    dialect.flavor().string_literal(s)
}

/// `s` between single quotes with quotes doubled; with `backslash`, backslashes
/// doubled; with `nul`, NUL written as `\0`.
pub(crate) fn quote_text(s: &str, backslash: bool, nul: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if backslash => out.push_str("\\\\"),
            '\0' if nul => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: SqlType) -> Column {
        Column {
            name: name.into(),
            type_: ty,
            nullable: true,
            primary_key: false,
            autoincrement: false,
            unique: false,
            server_default: None,
            comment: None,
        }
    }

    #[test]
    fn question_marks_become_postgres_placeholders_and_nothing_else_changes() {
        let pg = |sql: &str| {
            Dialect::Postgres
                .native_placeholders(sql)
                .unwrap()
                .into_owned()
        };
        assert_eq!(
            pg("UPDATE t SET a = ?, b=? WHERE id = ?"),
            "UPDATE t SET a = $1, b=$2 WHERE id = $3"
        );
        // Strings, quoted names, comments and dollar quotes keep their question marks.
        assert_eq!(
            pg("SELECT '?', \"?\", ? /* ? */ FROM t -- ?\nWHERE x = $$?$$ AND y = E'\\'?'"),
            "SELECT '?', \"?\", $1 /* ? */ FROM t -- ?\nWHERE x = $$?$$ AND y = E'\\'?'"
        );
        // jsonb's ?| and ?& are operators; a statement written with $n is taken as written.
        assert_eq!(
            pg("SELECT d ?| array['a'], d ?& array['b'] FROM t WHERE id = ?"),
            "SELECT d ?| array['a'], d ?& array['b'] FROM t WHERE id = $1"
        );
        assert_eq!(
            pg("SELECT d ? 'k' FROM t WHERE id = $1"),
            "SELECT d ? 'k' FROM t WHERE id = $1"
        );
        // A placeholder never joins the name before it or a digit after it.
        assert_eq!(
            pg("SELECT x FROM t WHERE a=?1"),
            "SELECT x FROM t WHERE a=$1 1"
        );
        // Casts and the end of the statement.
        assert_eq!(pg("SELECT ?::int, (?)"), "SELECT $1::int, ($2)");
        assert_eq!(pg("SELECT 1 WHERE a = ?"), "SELECT 1 WHERE a = $1");
        // A ? glued to what sqlparser would misread after it is refused, not guessed.
        assert!(
            Dialect::Postgres
                .native_placeholders("SELECT ?/* x */")
                .is_err()
        );
        assert!(
            Dialect::Postgres
                .native_placeholders("SELECT ?'a'")
                .is_err()
        );
        // Every byte around the placeholders, non-ASCII included, is kept.
        assert_eq!(pg("SELECT 'é', ?,\t?"), "SELECT 'é', $1,\t$2");
        // The other dialects take ? as it is.
        for d in [Dialect::Sqlite, Dialect::Mysql] {
            let sql = "UPDATE t SET a = ? WHERE b = '?'";
            assert!(
                matches!(d.native_placeholders(sql).unwrap(), std::borrow::Cow::Borrowed(s) if s == sql)
            );
        }
    }

    #[test]
    fn identifiers_are_quoted_never_spliced() {
        let evil = "x\"; DROP TABLE users; --";
        assert_eq!(
            Dialect::Sqlite.ident(evil).unwrap(),
            "\"x\"\"; DROP TABLE users; --\""
        );
        assert_eq!(Dialect::Mysql.ident("a`b").unwrap(), "`a``b`");
        assert!(Dialect::Sqlite.ident("").is_err());
        assert!(Dialect::Sqlite.ident("a\0b").is_err());
        assert!(Dialect::Sqlite.ident(&"x".repeat(64)).is_err());
    }

    #[test]
    fn literals_are_quoted_per_dialect() {
        let values = [
            Value::Text("it's a \\ test é".into()),
            Value::Blob(vec![0, 255]),
            Value::Null,
            Value::Boolean(true),
            Value::F64(1.5),
            Value::S64(-3),
        ];
        let sql = "SELECT $1, '$2 stays', $2, $3, $4, $5, $6";
        assert_eq!(
            Dialect::Postgres.inline(sql, &values).unwrap(),
            "SELECT E'it''s a \\\\ test é', '$2 stays', decode('00ff', 'hex'), NULL, TRUE, 1.5, -3"
        );
        assert_eq!(
            Dialect::Mysql
                .inline("SELECT ?, '?', ?", &values[..2])
                .unwrap(),
            "SELECT 'it''s a \\\\ test é', '?', X'00ff'"
        );
        assert!(Dialect::Postgres.inline("SELECT $2", &values[..1]).is_err());
        assert_eq!(
            Dialect::Sqlite
                .literal(&Value::Text("a\0b".into()))
                .unwrap(),
            "('a' || char(0) || 'b')"
        );
        assert!(
            Dialect::Postgres
                .literal(&Value::Text("a\0b".into()))
                .is_err()
        );
    }

    #[test]
    fn expressions_must_be_one_expression() {
        assert_eq!(Dialect::Sqlite.expression("'active'").unwrap(), "'active'");
        assert_eq!(
            Dialect::Sqlite.expression("price >= 0").unwrap(),
            "price >= 0"
        );
        assert!(
            Dialect::Sqlite
                .expression("0); DROP TABLE users; --")
                .is_err()
        );
        assert!(Dialect::Sqlite.expression("1 2").is_err());
    }

    #[test]
    fn create_table_sqlite() {
        let mut id = col("id", SqlType::Integer);
        id.primary_key = true;
        id.autoincrement = true;
        id.nullable = false;
        let mut email = col("email", SqlType::Varchar(100));
        email.nullable = false;
        email.unique = true;
        let mut status = col("status", SqlType::Varchar(20));
        status.server_default = Some("'active'".into());
        let table = Table {
            name: "users".into(),
            columns: vec![id, email, status],
            primary_key: vec![],
            foreign_keys: vec![],
            unique_constraints: vec![],
            check_constraints: vec![],
            comment: None,
        };
        assert_eq!(
            Dialect::Sqlite.create_table(&table).unwrap(),
            [
                "CREATE TABLE \"users\" (\n    \"id\" INTEGER PRIMARY KEY AUTOINCREMENT,\n    \"email\" VARCHAR(100) NOT NULL UNIQUE,\n    \"status\" VARCHAR(20) DEFAULT ('active')\n)"
            ]
        );
        assert!(
            Dialect::Sqlite
                .column_type(&SqlType::Custom("INT; DROP TABLE x".into()), false)
                .is_err()
        );
    }
    /// SQL made of every quoting form of `dialect` with placeholders among them, and
    /// values for the placeholders.
    fn sql_with_placeholders(
        dialect: Dialect,
    ) -> impl proptest::strategy::Strategy<Value = (String, Vec<String>)> {
        use proptest::prelude::*;
        let mut pieces: Vec<&'static str> = vec![
            " x ",
            ", ",
            " || ",
            "(1)",
            "'it''s ? $1 -- /*'",
            "\"q \"\"?\"\" $1\"",
            "-- c ? $1 '\n",
            "/* ? $1 ' */",
            " 42 ",
        ];
        pieces.extend(match dialect {
            Dialect::Postgres => &[
                "E'a\\'? $1 '",
                "$$ ? $1 ' $$",
                "$t$ ? $t$",
                "U&\"d\\0061?\"",
                "/* /* ? */ $1 */",
            ][..],
            Dialect::Mysql => &["`t? $1`", "'a\\'? '", "# c ? '\n", "/*! 1 */", "\"d\\\"?\""][..],
            Dialect::Sqlite => &["[b ? ]", "`t?`", "x'00'"][..],
        });
        let piece = prop_oneof![
            3 => proptest::sample::select(pieces).prop_map(|p| Some(p.to_owned())),
            1 => Just(None),
        ];
        let value = proptest::string::string_regex("(\\PC|['\"\\\\$;\\n]|--|/\\*|\\*/){0,12}")
            .unwrap()
            .prop_map(move |v| {
                if dialect == Dialect::Postgres {
                    v.replace('\0', "")
                } else {
                    v
                }
            });
        (
            proptest::collection::vec(piece, 0..14),
            proptest::collection::vec(value, 14),
        )
            .prop_map(move |(pieces, values)| {
                let mut sql = String::from("SELECT ");
                let mut n = 0;
                for p in pieces {
                    match p {
                        Some(p) => sql.push_str(&p),
                        None => {
                            n += 1;
                            sql.push_str(&dialect.placeholder(n));
                            // `$1x` would be another token; keep placeholders apart.
                            sql.push(' ');
                        }
                    }
                }
                (sql, values[..n].to_vec())
            })
    }

    /// The tokens of `sql` that carry meaning (plain whitespace aside).
    fn meaningful(dialect: Dialect, sql: &str) -> Vec<Token> {
        sqlparser::tokenizer::Tokenizer::new(parser_dialect(dialect).as_ref(), sql)
            .tokenize()
            .unwrap_or_else(|e| panic!("{sql:?}: {e}"))
            .into_iter()
            .filter(|t| {
                !matches!(
                    t,
                    Token::Whitespace(
                        sqlparser::tokenizer::Whitespace::Space
                            | sqlparser::tokenizer::Whitespace::Tab
                            | sqlparser::tokenizer::Whitespace::Newline
                    )
                )
            })
            .collect()
    }

    /// Splicing changes nothing but the placeholders: the spliced statement reads, token
    /// for token, as the guest's with each placeholder replaced by its value's literal
    /// (no value escapes its literal, no string or comment of the guest is touched), so
    /// the policy, which reads the spliced text, reads what the database will.
    #[test]
    fn splicing_replaces_placeholders_and_nothing_else() {
        use proptest::test_runner::{Config, TestRunner};
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let mut runner = TestRunner::new(Config {
                cases: 200,
                failure_persistence: None,
                ..Config::default()
            });
            runner
                .run(&sql_with_placeholders(dialect), |(sql, values)| {
                    let params: Vec<Value> = values.iter().cloned().map(Value::Text).collect();
                    let spliced = dialect.inline(&sql, &params).unwrap();
                    let mut expected = Vec::new();
                    let mut next = 0;
                    for token in meaningful(dialect, &sql) {
                        if let Token::Placeholder(_) = token {
                            let literal = dialect.literal(&params[next]).unwrap();
                            next += 1;
                            expected.extend(meaningful(dialect, &literal));
                        } else {
                            expected.push(token);
                        }
                    }
                    proptest::prop_assert_eq!(next, params.len());
                    proptest::prop_assert_eq!(
                        meaningful(dialect, &spliced),
                        expected,
                        "{:?}: {:?} -> {:?}",
                        dialect,
                        sql,
                        spliced
                    );
                    Ok(())
                })
                .unwrap();
        }
    }
}
