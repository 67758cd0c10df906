//! The schema of a live database, read from its catalog (`--against db`,
//! `--schema-from URL`, drift): each engine describes its tables as DDL — SQLite keeps
//! the statements in `sqlite_master`, MariaDB/MySQL answers `SHOW CREATE TABLE`, and
//! PostgreSQL's is rebuilt from `pg_attribute`, `pg_get_constraintdef` and
//! `pg_get_indexdef` — and that DDL is read by the declared schema's parser
//! ([`declared::parse_as`] with [`Reading::Catalog`]), so a live schema and a declared
//! one are the same kind of data.
//!
//! A database keeps some things in its own words: it names an inline `UNIQUE` itself
//! (`users_email_key`, `email`), rewrites a check's expression (`(price >= (0)::numeric)`),
//! shows a unique index and a unique constraint alike (MariaDB's `UNIQUE KEY`) and adds
//! an index under each foreign key (MariaDB). [`align`] reads those against the model
//! the live schema is compared with, so that only real differences remain.

use super::AutogenError;
use super::declared::{self, Reading};
use super::model::Model;
use crate::backend::{Backend, BackendError};
use crate::dialect::Dialect;
use crate::wit::SqlType;

/// The ledger's tables, which are Retort's and not the project's schema.
const LEDGER: [&str; 2] = ["retort_version", "retort_log"];

/// The schema of the database behind `db`, as its catalog describes it.
pub async fn introspect(db: &Backend) -> Result<Model, AutogenError> {
    let d = db.dialect();
    let ddl = match d {
        Dialect::Sqlite => sqlite(db).await?,
        Dialect::Postgres => postgres(db).await?,
        Dialect::Mysql => mysql(db).await?,
    };
    let ops =
        declared::parse_as(&ddl, d, Reading::Catalog).map_err(|source| AutogenError::Catalog {
            url: db.url().to_owned(),
            why: format!("{source}\n{ddl}"),
        })?;
    let mut model = Model::from_ops(d, &ops).map_err(|source| AutogenError::Model {
        what: db.url().to_owned(),
        source,
    })?;
    if d == Dialect::Mysql {
        mysql_json(&mut model);
    }
    Ok(model)
}

fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn not_ledger(name: &str) -> bool {
    !LEDGER.contains(&name)
}

/// SQLite keeps each table's and index's DDL as written (by Retort's renderer, or by
/// hand): `sqlite_master`, tables first. Indexes SQLite made itself have no SQL.
async fn sqlite(db: &Backend) -> Result<String, BackendError> {
    let rows = db
        .catalog_rows(
            "SELECT tbl_name, sql FROM sqlite_master \
             WHERE type IN ('table', 'index') AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%' \
             ORDER BY type = 'index', rowid",
        )
        .await?;
    Ok(rows
        .iter()
        .filter(|r| not_ledger(&text(r, 0)))
        .map(|r| format!("{};\n", text(r, 1)))
        .collect())
}

/// MariaDB/MySQL describes each table: `SHOW CREATE TABLE`.
async fn mysql(db: &Backend) -> Result<String, BackendError> {
    let tables = db
        .catalog_rows(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = database() AND table_type = 'BASE TABLE' ORDER BY table_name",
        )
        .await?;
    let mut ddl = String::new();
    for name in tables.iter().map(|r| text(r, 0)).filter(|n| not_ledger(n)) {
        let quoted = format!("`{}`", name.replace('`', "``"));
        let rows = db
            .catalog_rows(&format!("SHOW CREATE TABLE {quoted}"))
            .await?;
        if let Some(row) = rows.first() {
            ddl.push_str(&text(row, 1));
            ddl.push_str(";\n");
        }
    }
    Ok(ddl)
}

/// MariaDB stores `JSON` as `LONGTEXT` with a `json_valid` check of its own: read back
/// as the JSON column it was declared.
fn mysql_json(model: &mut Model) {
    for table in model.tables.values_mut() {
        let mut json = Vec::new();
        table.check_constraints.retain(|ck| {
            let e = ck.expression.replace('`', "");
            match e
                .strip_prefix("json_valid(")
                .and_then(|r| r.strip_suffix(')'))
            {
                Some(column) => {
                    json.push(column.trim().to_owned());
                    false
                }
                None => true,
            }
        });
        for c in table.columns.iter_mut().filter(|c| json.contains(&c.name)) {
            if matches!(&c.type_, SqlType::Custom(t) if t.eq_ignore_ascii_case("longtext")) {
                c.type_ = SqlType::Json;
            }
        }
    }
}

/// PostgreSQL keeps no DDL: each table's is rebuilt from the catalog (columns with
/// `format_type` and their defaults, constraints with `pg_get_constraintdef`, indexes
/// not standing for a constraint with `pg_get_indexdef`), in the current schema.
async fn postgres(db: &Backend) -> Result<String, BackendError> {
    let columns = db
        .catalog_rows(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull::text, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text \
             FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY c.relname, a.attnum",
        )
        .await?;
    let constraints = db
        .catalog_rows(
            "SELECT c.relname::text, con.conname::text, pg_get_constraintdef(con.oid) \
             FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND con.contype IN ('p', 'u', 'f', 'c') \
             ORDER BY c.relname, con.contype, con.conname",
        )
        .await?;
    let indexes = db
        .catalog_rows(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con \
                               WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid \
                                 AND con.contype IN ('p', 'u', 'x')) \
             ORDER BY c.relname, i.indexrelid",
        )
        .await?;
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for row in &columns {
        let table = text(row, 0);
        if !not_ledger(&table) {
            continue;
        }
        let mut ty = text(row, 2);
        let not_null = text(row, 3) == "true";
        let mut default = row.get(4).cloned().flatten();
        let identity = !text(row, 5).is_empty();
        // A sequence's default (SERIAL) or an identity is an autoincrementing column.
        if identity
            || default
                .as_deref()
                .is_some_and(|e| e.starts_with("nextval("))
        {
            ty = match ty.as_str() {
                "bigint" => "BIGSERIAL",
                "smallint" => "SMALLSERIAL",
                _ => "SERIAL",
            }
            .to_owned();
            default = None;
        }
        let mut line = format!("{} {ty}", quote(&text(row, 1)));
        if not_null {
            line.push_str(" NOT NULL");
        }
        if let Some(e) = default {
            line.push_str(" DEFAULT ");
            line.push_str(&without_casts(&e));
        }
        match tables.last_mut() {
            Some((name, lines)) if *name == table => lines.push(line),
            _ => tables.push((table, vec![line])),
        }
    }
    for row in &constraints {
        let table = text(row, 0);
        if let Some((_, lines)) = tables.iter_mut().find(|(name, _)| *name == table) {
            lines.push(format!(
                "CONSTRAINT {} {}",
                quote(&text(row, 1)),
                text(row, 2)
            ));
        }
    }
    let mut ddl: String = tables
        .iter()
        .map(|(name, lines)| {
            format!(
                "CREATE TABLE {} (\n  {}\n);\n",
                quote(name),
                lines.join(",\n  ")
            )
        })
        .collect();
    for row in indexes.iter().filter(|r| not_ledger(&text(r, 0))) {
        ddl.push_str(&text(row, 1));
        ddl.push_str(";\n");
    }
    Ok(ddl)
}

/// A PostgreSQL default without the casts the server adds (`'a'::character varying`,
/// `(0)::numeric`), as it was written.
pub fn without_casts(expr: &str) -> String {
    const TYPE_WORDS: [&str; 6] = ["varying", "precision", "without", "with", "time", "zone"];
    let mut out = String::new();
    let mut rest = expr;
    let mut in_string = false;
    while let Some(ch) = rest.chars().next() {
        if ch == '\'' {
            in_string = !in_string;
        }
        if !in_string && rest.starts_with("::") {
            rest = &rest[2..];
            // The type: a word, words that continue it, a length, `[]`.
            let word_end = |s: &str| {
                s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '.'))
                    .unwrap_or(s.len())
            };
            rest = &rest[word_end(rest)..];
            loop {
                let next = rest.strip_prefix(' ').unwrap_or("");
                let end = word_end(next);
                if end > 0 && TYPE_WORDS.contains(&&next[..end]) {
                    rest = &next[end..];
                } else {
                    break;
                }
            }
            if rest.starts_with('(')
                && let Some(close) = rest.find(')')
                && rest[1..close]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
            {
                rest = &rest[close + 1..];
            }
            while let Some(r) = rest.strip_prefix("[]") {
                rest = r;
            }
            continue;
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// Reads `live` against `reference`, the model it is compared with: what the database
/// keeps in its own words is taken as the reference's where they mean the same.
///
/// - A check constraint is compared by name (the database rewrites its expression).
/// - A one-column unique constraint (or MariaDB unique key) whose column is `unique`
///   in the reference, under a name the reference does not have, is that column's
///   inline `UNIQUE`.
/// - A unique constraint the reference has as a unique index of that name is the
///   index, and the other way round (MariaDB shows both as `UNIQUE KEY`).
/// - An index named as one of the table's foreign keys, which the reference lacks, is
///   the one MariaDB made for the key.
pub fn align(live: &mut Model, reference: &Model) {
    let mut unique_indexes = Vec::new();
    for (name, table) in live.tables.iter_mut() {
        let Some(other) = reference.tables.get(name) else {
            continue;
        };
        for ck in &mut table.check_constraints {
            if let Some(same) = other
                .check_constraints
                .iter()
                .find(|o| o.name.is_some() && o.name == ck.name)
            {
                ck.expression = same.expression.clone();
            }
        }
        // SQLite keeps no comments and PostgreSQL's are not read: a comment the catalog
        // does not show is the other side's.
        for c in &mut table.columns {
            if c.comment.is_none()
                && let Some(o) = other.columns.iter().find(|o| o.name == c.name)
            {
                c.comment = o.comment.clone();
            }
        }
        let mut inline = Vec::new();
        table.unique_constraints.retain(|uq| {
            if other.unique_constraints.iter().any(|o| o.name == uq.name) {
                return true;
            }
            if let [column] = uq.columns.as_slice()
                && other.columns.iter().any(|c| &c.name == column && c.unique)
                && !inline.contains(column)
            {
                inline.push(column.clone());
                return false;
            }
            match uq.name.as_ref().and_then(|n| reference.indexes.get(n)) {
                Some(index) if index.unique && index.table == *name => {
                    unique_indexes.push(crate::wit::Index {
                        columns: uq.columns.clone(),
                        ..index.clone()
                    });
                    false
                }
                _ => true,
            }
        });
        for c in table
            .columns
            .iter_mut()
            .filter(|c| inline.contains(&c.name))
        {
            c.unique = true;
        }
    }
    for index in unique_indexes {
        live.indexes.insert(index.name.clone(), index);
    }
    let names: Vec<String> = live
        .indexes
        .keys()
        .filter(|n| !reference.indexes.contains_key(*n))
        .cloned()
        .collect();
    for name in names {
        let index = &live.indexes[&name];
        let (Some(table), reference_table) = (
            live.tables.get(&index.table),
            reference.tables.get(&index.table),
        ) else {
            continue;
        };
        let named = |n: &Option<String>| n.as_deref() == Some(name.as_str());
        let fk_index = !index.unique && table.foreign_keys.iter().any(|fk| named(&fk.name));
        let constraint = index.unique
            && reference_table.is_some_and(|t| t.unique_constraints.iter().any(|u| named(&u.name)));
        let inline = match index.columns.as_slice() {
            [column] if index.unique && !constraint => reference_table
                .is_some_and(|t| t.columns.iter().any(|c| &c.name == column && c.unique))
                .then(|| column.clone()),
            _ => None,
        };
        if !(fk_index || constraint || inline.is_some()) {
            continue;
        }
        let index = live.indexes.remove(&name).expect("listed");
        let table = live.tables.get_mut(&index.table).expect("found above");
        if constraint {
            table.unique_constraints.push(crate::wit::UniqueConstraint {
                name: Some(name),
                columns: index.columns,
            });
        } else if let Some(column) = inline
            && let Some(c) = table.columns.iter_mut().find(|c| c.name == column)
        {
            c.unique = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autogen::diff;

    fn read(sql: &str, d: Dialect, reading: Reading) -> Model {
        Model::from_ops(d, &declared::parse_as(sql, d, reading).unwrap()).unwrap()
    }

    /// What PostgreSQL and MariaDB say in their own words reads as the declared schema.
    #[test]
    fn a_catalog_in_its_own_words_matches_the_declared_schema() {
        let d = Dialect::Postgres;
        let declared = read(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(10) NOT NULL UNIQUE,
                 status VARCHAR(20) DEFAULT 'a', price NUMERIC(10, 2),
                 CONSTRAINT ck_users CHECK (price >= 0));
             CREATE UNIQUE INDEX ix_users_status ON users (status);",
            d,
            Reading::Declared,
        );
        let mut live = read(
            &format!(
                "CREATE TABLE \"users\" (\"id\" SERIAL NOT NULL, \"email\" character varying(10) NOT NULL,
                     \"status\" character varying(20) DEFAULT {},
                     \"price\" numeric(10,2),
                     CONSTRAINT \"users_pkey\" PRIMARY KEY (id),
                     CONSTRAINT \"users_email_key\" UNIQUE (email),
                     CONSTRAINT \"ck_users\" CHECK ((price >= (0)::numeric)));
                 CREATE UNIQUE INDEX ix_users_status ON public.users USING btree (status);",
                without_casts("'a'::character varying")
            ),
            d,
            Reading::Catalog,
        );
        assert_ne!(diff::diff(d, &live, &declared), []);
        align(&mut live, &declared);
        assert_eq!(diff::diff(d, &live, &declared), []);
        assert_eq!(diff::unwritable(&live, &declared), Vec::<String>::new());

        let d = Dialect::Mysql;
        let declared = read(
            "CREATE TABLE users (id INTEGER PRIMARY KEY);
             CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
                 slug VARCHAR(20), meta JSON, done BOOLEAN NOT NULL DEFAULT false,
                 CONSTRAINT fk_posts_user FOREIGN KEY (user_id) REFERENCES users (id)
                     ON DELETE CASCADE);
             CREATE UNIQUE INDEX ix_posts_slug ON posts (slug);",
            d,
            Reading::Declared,
        );
        let mut live = read(
            "CREATE TABLE `users` (`id` int(11) NOT NULL AUTO_INCREMENT, PRIMARY KEY (`id`))
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
             CREATE TABLE `posts` (
               `id` int(11) NOT NULL AUTO_INCREMENT,
               `user_id` int(11) NOT NULL,
               `slug` varchar(20) DEFAULT NULL,
               `meta` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`meta`)),
               `done` tinyint(1) NOT NULL DEFAULT 0,
               PRIMARY KEY (`id`),
               UNIQUE KEY `ix_posts_slug` (`slug`),
               KEY `fk_posts_user` (`user_id`),
               CONSTRAINT `fk_posts_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE CASCADE
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
            d,
            Reading::Catalog,
        );
        mysql_json(&mut live);
        align(&mut live, &declared);
        assert_eq!(diff::diff(d, &live, &declared), []);
        // A column added by hand is drift: named.
        let mut drifted = live.clone();
        drifted.tables.get_mut("posts").unwrap().columns.pop();
        let changes = diff::diff(d, &drifted, &declared);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op.to_string(), "add-column posts.done");
    }

    #[test]
    fn postgres_casts_come_off_defaults() {
        assert_eq!(without_casts("'active'::character varying"), "'active'");
        assert_eq!(without_casts("(0)::numeric"), "(0)");
        assert_eq!(without_casts("'a::b'::text"), "'a::b'");
        assert_eq!(
            without_casts("'2020-01-01 00:00:00'::timestamp without time zone"),
            "'2020-01-01 00:00:00'"
        );
        assert_eq!(without_casts("('{}'::text[])"), "('{}')");
        assert_eq!(without_casts("false"), "false");
        assert_eq!(without_casts("CURRENT_TIMESTAMP"), "CURRENT_TIMESTAMP");
    }
}
