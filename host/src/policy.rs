//! The SQL policy for what guests send: `execute` and `query` statements, and the DDL
//! that carries their expressions. Decided on sqlparser's tokens and syntax tree, never
//! by regular expressions; every statement of a call must pass, and a refusal names the
//! rule and the statement.
//!
//! The policy is checked on the final text: what is sent to the database, or written to
//! a `--sql` script, is byte for byte what was checked (placeholders are spliced, never
//! re-printed: crate::dialect). Where a database would read SQL text differently from
//! sqlparser, the difference is refused (MySQL's executable comments, `sql_mode` and
//! character-set changes, PostgreSQL's `standard_conforming_strings`) or decoded
//! (PostgreSQL's `U&"…"` identifiers). Function and procedure bodies are scanned with the
//! same rules. It is defence in depth: the database role is the boundary (README,
//! "Security").
//!
//! Knows nothing about wasm or connections. Each rule is listed in [`RULES`] with one
//! statement it refuses.

use serde::{Deserialize, Serialize};
use sqlparser::ast::{CopyTarget, ObjectType, Set, Statement};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::dialect::{Dialect, parser_dialect};

/// `[policy]` in retort.toml.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Rules to switch off, by name (see [`RULES`]).
    pub allow: Vec<String>,
    /// Extensions a revision may create.
    pub extensions: Vec<String>,
    /// Let SQL through that the parser cannot read.
    pub allow_unparseable: bool,
    /// Refuse to migrate with a database role that holds dangerous privileges
    /// (PostgreSQL superuser or the server-file roles; MariaDB FILE, SUPER, or GRANT
    /// OPTION on `*.*`) instead of warning.
    pub require_least_privilege: bool,
}

/// A refused statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statement refused by rule `{rule}`: {statement}")]
pub struct Refusal {
    /// The rule's name (what `[policy] allow` takes).
    pub rule: &'static str,
    /// The statement, as checked.
    pub statement: String,
}

/// A rule: its name (for `[policy] allow`), what it refuses, and one statement it
/// refuses, in the dialect given.
pub struct Rule {
    /// Its name, for `[policy] allow`.
    pub name: &'static str,
    /// What it refuses, in a sentence.
    pub refuses: &'static str,
    /// The dialect of the example.
    pub dialect: Dialect,
    /// A statement it refuses.
    pub example: &'static str,
}

/// Every rule (docs/policy.md is written from the same facts; a unit test checks that
/// each example is refused by its rule).
pub const RULES: &[Rule] = &[
    Rule {
        name: "transaction-control",
        refuses: "BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, and MySQL's SET autocommit: transactions are the host's job",
        dialect: Dialect::Postgres,
        example: "COMMIT",
    },
    Rule {
        name: "attach",
        refuses: "SQLite's ATTACH / DETACH DATABASE",
        dialect: Dialect::Sqlite,
        example: "ATTACH DATABASE '/tmp/other.db' AS other",
    },
    Rule {
        name: "pragma",
        refuses: "SQLite PRAGMAs that change safety settings (writable_schema, foreign_keys, journal_mode, …); reading a PRAGMA is allowed",
        dialect: Dialect::Sqlite,
        example: "PRAGMA writable_schema = 1",
    },
    Rule {
        name: "server-files",
        refuses: "reading or writing the server's files or running its programs: COPY to/from a file or PROGRAM, LOAD DATA, INTO OUTFILE/DUMPFILE, VACUUM INTO, DATA/INDEX DIRECTORY, ENGINE=CONNECT, CREATE TABLESPACE, and pg_read_file, pg_read_binary_file, pg_ls_*dir, pg_stat_file, lo_import, lo_export, load_extension, LOAD_FILE, and the sqlite3 shell's readfile, writefile, edit, fsdir, zipfile",
        dialect: Dialect::Postgres,
        example: "SELECT pg_read_file('/etc/passwd')",
    },
    Rule {
        name: "remote",
        refuses: "connections to other servers: dblink*, CREATE SERVER / SUBSCRIPTION / FOREIGN DATA WRAPPER / USER MAPPING, IMPORT FOREIGN SCHEMA, ENGINE=FEDERATED",
        dialect: Dialect::Postgres,
        example: "SELECT * FROM dblink('host=elsewhere', 'SELECT 1') AS t(a int)",
    },
    Rule {
        name: "alter-system",
        refuses: "PostgreSQL's ALTER SYSTEM",
        dialect: Dialect::Postgres,
        example: "ALTER SYSTEM SET fsync = off",
    },
    Rule {
        name: "server-admin",
        refuses: "administering the server: ending or cancelling other sessions, reloading its configuration, replication slots and WAL switches (pg_terminate_backend, pg_cancel_backend, pg_reload_conf, …), MySQL KILL, SHUTDOWN, FLUSH, PURGE, RESET, CHANGE MASTER",
        dialect: Dialect::Postgres,
        example: "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
    },
    Rule {
        name: "global-settings",
        refuses: "server-wide settings: MySQL/MariaDB SET GLOBAL, SET PERSIST, SET @@global.x",
        dialect: Dialect::Mysql,
        example: "SET GLOBAL general_log = 1",
    },
    Rule {
        name: "sql-mode",
        refuses: "settings that change how the server reads SQL text, which would make it read differently from the policy: sql_mode, NAMES, CHARACTER SET, character_set_*, standard_conforming_strings, client_encoding, backslash_quote (SET or set_config)",
        dialect: Dialect::Mysql,
        example: "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
    },
    Rule {
        name: "executable-comment",
        refuses: "MySQL/MariaDB comments that the server runs as code: /*! … */ and /*M! … */",
        dialect: Dialect::Mysql,
        example: "SELECT 1 /*!, LOAD_FILE('/etc/passwd') */",
    },
    Rule {
        name: "privileges",
        refuses: "GRANT, REVOKE",
        dialect: Dialect::Postgres,
        example: "GRANT ALL ON users TO PUBLIC",
    },
    Rule {
        name: "roles",
        refuses: "CREATE/ALTER/DROP ROLE or USER, SET ROLE, SET SESSION AUTHORIZATION, SET PASSWORD, and set_config('role' | 'session_authorization', …) or set_config with a computed name",
        dialect: Dialect::Postgres,
        example: "SELECT set_config('role', 'postgres', false)",
    },
    Rule {
        name: "databases",
        refuses: "CREATE/ALTER/DROP DATABASE, DROP SCHEMA, and MySQL's USE (which would move the ledger writes to another database)",
        dialect: Dialect::Postgres,
        example: "DROP DATABASE other",
    },
    Rule {
        name: "extensions",
        refuses: "CREATE EXTENSION (unless listed in [policy] extensions), LOAD, INSTALL/UNINSTALL PLUGIN or SONAME",
        dialect: Dialect::Postgres,
        example: "CREATE EXTENSION plpython3u",
    },
    Rule {
        name: "dynamic-sql",
        refuses: "SQL built from strings at run time, which no policy can read first: EXECUTE inside a function, procedure or DO body, MySQL PREPARE … FROM and EXECUTE IMMEDIATE, and functions that run a query given as text (query_to_xml*, ts_stat, ts_rewrite)",
        dialect: Dialect::Postgres,
        example: "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$",
    },
    Rule {
        name: "function-language",
        refuses: "functions and procedures in a language other than SQL and PL/pgSQL (C, internal, untrusted PL/Python or PL/Perl), CREATE LANGUAGE, and MySQL UDFs (SONAME)",
        dialect: Dialect::Postgres,
        example: "CREATE FUNCTION rd(text) RETURNS text AS 'pg_read_file' LANGUAGE internal",
    },
    Rule {
        name: "client-command",
        refuses: "text that the databases' command-line clients run as their own commands when a --sql script is fed to them: a backslash outside strings and comments (psql's and mariadb's \\! runs a shell command), a line starting with `.` (sqlite3's .shell), a statement starting with a mariadb client command (system, source, delimiter, pager, tee, …). Checked even with allow-unparseable",
        dialect: Dialect::Postgres,
        example: "SELECT 1 \\! touch /tmp/x",
    },
    Rule {
        name: "unparseable",
        refuses: "SQL (or a function body) the parser cannot read; allow with [policy] allow-unparseable = true",
        dialect: Dialect::Sqlite,
        example: "this is not sql",
    },
];

/// What the policy must know about how `dialect`'s engine reads SQL text.
fn syntax(dialect: Dialect) -> &'static crate::db::Syntax {
    &crate::db::capabilities(dialect).syntax
}

/// Names of every rule, for checking `[policy] allow`.
pub fn rule_names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.name)
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

/// Functions that touch the server's files, named anywhere (a call, or an operator's or
/// aggregate's `PROCEDURE = …`).
const FILE_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "pg_stat_file",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "lo_import",
    "lo_export",
    "load_extension",
    "load_file",
    // The sqlite3 shell's own functions, live when a --sql script is fed to it.
    "readfile",
    "writefile",
    "fsdir",
    "zipfile",
];

/// Functions whose names are common words: refused only as calls.
const FILE_CALLS: &[&str] = &["edit"];

/// Server administration: other sessions, configuration reloads, replication.
const ADMIN_FUNCTIONS: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_replication_origin_create",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
];

/// Functions that run a query given as text.
const DYNAMIC_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
];

/// Settings that change how the server reads SQL text.
const SYNTAX_SETTINGS: &[&str] = &[
    "sql_mode",
    "names",
    "charset",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    "standard_conforming_strings",
    "client_encoding",
    "backslash_quote",
];

/// Words that name the kind of object a CREATE, ALTER or DROP is about.
const OBJECT_KINDS: &[&str] = &[
    "role",
    "user",
    "group",
    "database",
    "schema",
    "server",
    "language",
    "tablespace",
    "function",
    "procedure",
    "aggregate",
    "trigger",
    "event",
    "table",
    "index",
    "view",
    "sequence",
    "type",
    "domain",
    "extension",
    "operator",
    "policy",
    "rule",
    "cast",
    "collation",
    "publication",
    "subscription",
    "statistics",
    "materialized",
];

/// Languages a function body may be written in.
const SAFE_LANGUAGES: &[&str] = &["sql", "plpgsql"];

/// How deep function bodies inside bodies are scanned before giving up (refusing).
const MAX_BODY_DEPTH: usize = 4;

/// A token as the rules see it: words lowercased (PostgreSQL `U&"…"` decoded),
/// strings with their content, the punctuation that matters, comments aside.
#[derive(Debug, Clone, PartialEq)]
enum T {
    Word(String),
    Str(String),
    Semi,
    LParen,
    Eq,
    Dot,
    Other,
}

impl T {
    fn word(&self) -> Option<&str> {
        match self {
            T::Word(w) => Some(w),
            _ => None,
        }
    }

    fn is(&self, w: &str) -> bool {
        self.word() == Some(w)
    }
}

/// Where the tokens come from: a statement, or a function body inside one.
#[derive(Clone, Copy)]
struct Scope {
    dialect: Dialect,
    depth: usize,
}

impl Scope {
    fn in_body(self) -> bool {
        self.depth > 0
    }
}

impl Policy {
    fn allowed(&self, rule: &str) -> bool {
        self.allow.iter().any(|a| a == rule)
    }

    fn refuse(&self, rule: &'static str, sql: &str) -> Result<(), Refusal> {
        if self.allowed(rule) {
            Ok(())
        } else {
            Err(Refusal {
                rule,
                statement: sql.to_owned(),
            })
        }
    }

    /// Checks every statement of `sql`, the exact text that will be sent or written.
    pub fn check(&self, dialect: Dialect, sql: &str) -> Result<(), Refusal> {
        let pragma_only = self.scan_text(Scope { dialect, depth: 0 }, sql, sql)?;
        if pragma_only {
            // sqlparser reads few of SQLite's PRAGMA forms; the tokens decided.
            return Ok(());
        }
        let d = parser_dialect(dialect);
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
            self.check_statement(statement)?;
        }
        Ok(())
    }

    /// Checks DDL the host rendered around a guest's fragments (a DEFAULT or CHECK
    /// expression, a custom type): the token rules only, since the host's own DDL forms
    /// need not be readable by sqlparser's statement parser.
    pub fn check_rendered(&self, dialect: Dialect, sql: &str) -> Result<(), Refusal> {
        self.scan_text(Scope { dialect, depth: 0 }, sql, sql)
            .map(drop)
    }

    /// The rules decided on tokens, over `text` (the statement, or a body in it).
    /// Returns true when every statement is a PRAGMA.
    fn scan_text(&self, scope: Scope, text: &str, sql: &str) -> Result<bool, Refusal> {
        let d = parser_dialect(scope.dialect);
        let tokens = match Tokenizer::new(d.as_ref(), text).tokenize() {
            Ok(tokens) => tokens,
            Err(_) if self.allow_unparseable => {
                // Unread text may still not hold a client command.
                let starts_client = text.lines().any(|l| {
                    let l = l.trim_start();
                    let first = l
                        .split(|c: char| !c.is_ascii_alphabetic() && c != '_')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    l.starts_with('.')
                        || syntax(scope.dialect)
                            .client_commands
                            .contains(&first.as_str())
                });
                if text.contains('\\') || starts_client {
                    self.refuse("client-command", sql)?;
                }
                return Ok(false);
            }
            Err(e) => {
                return Err(Refusal {
                    rule: "unparseable",
                    statement: format!(
                        "{sql} ({}{e}; set [policy] allow-unparseable = true to let such SQL through)",
                        if scope.in_body() { "in a body: " } else { "" }
                    ),
                });
            }
        };
        // Commands of the command-line clients that run scripts: a backslash outside
        // strings and comments; a `.` first on a line.
        let mut line_start = true;
        for t in &tokens {
            match t {
                Token::Whitespace(Whitespace::Newline | Whitespace::SingleLineComment { .. }) => {
                    line_start = true
                }
                Token::Whitespace(_) => {}
                Token::Backslash => self.refuse("client-command", sql)?,
                // `$1$…$1$` is a string to sqlparser and a parameter to PostgreSQL.
                Token::DollarQuotedString(d)
                    if d.tag
                        .as_deref()
                        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit())) =>
                {
                    line_start = false;
                    self.refuse("unparseable", sql)?
                }
                Token::Period if line_start => self.refuse("client-command", sql)?,
                _ => line_start = false,
            }
        }
        // Comments the server would run.
        if syntax(scope.dialect).executable_comments {
            for t in &tokens {
                if let Token::Whitespace(Whitespace::MultiLineComment(c)) = t {
                    let c = c.trim_start();
                    if c.starts_with('!') || c.starts_with("M!") || c.starts_with("m!") {
                        self.refuse("executable-comment", sql)?;
                    }
                }
            }
        }
        let tokens = normalize(scope.dialect, &tokens);
        self.scan(scope, &tokens, sql)
    }

    fn scan(&self, scope: Scope, t: &[T], sql: &str) -> Result<bool, Refusal> {
        let at = |i: usize| t.get(i).and_then(T::word);
        // Names and word pairs anywhere.
        for (i, token) in t.iter().enumerate() {
            let Some(w) = token.word() else { continue };
            let next = at(i + 1);
            if FILE_FUNCTIONS.contains(&w)
                || (FILE_CALLS.contains(&w) && t.get(i + 1) == Some(&T::LParen))
            {
                self.refuse("server-files", sql)?;
            }
            if ADMIN_FUNCTIONS.contains(&w) {
                self.refuse("server-admin", sql)?;
            }
            if w.starts_with("dblink") {
                self.refuse("remote", sql)?;
            }
            if DYNAMIC_FUNCTIONS.contains(&w) {
                self.refuse("dynamic-sql", sql)?;
            }
            if w == "set_config" {
                // set_config(name, value, is_local): the name decides.
                let name = match (t.get(i + 1), t.get(i + 2)) {
                    (Some(T::LParen), Some(T::Str(name))) => Some(name.to_lowercase()),
                    _ => None,
                };
                match name.as_deref() {
                    Some(n) if SYNTAX_SETTINGS.contains(&n) => self.refuse("sql-mode", sql)?,
                    Some("role" | "session_authorization") | None => self.refuse("roles", sql)?,
                    Some(_) => {}
                }
            }
            if scope.in_body() && w == "execute" && syntax(scope.dialect).execute_in_bodies {
                self.refuse("dynamic-sql", sql)?;
            }
            if w == "soname" {
                self.refuse("function-language", sql)?;
            }
            match (w, next) {
                ("alter", Some("system")) => self.refuse("alter-system", sql)?,
                ("session", Some("authorization")) => self.refuse("roles", sql)?,
                ("load", Some("data" | "xml")) => self.refuse("server-files", sql)?,
                ("into", Some("outfile" | "dumpfile")) => self.refuse("server-files", sql)?,
                ("data" | "index", Some("directory")) => self.refuse("server-files", sql)?,
                ("install" | "uninstall", Some("plugin" | "soname")) => {
                    self.refuse("extensions", sql)?
                }
                ("execute", Some("immediate")) => self.refuse("dynamic-sql", sql)?,
                ("user", Some("mapping")) | ("import", Some("foreign")) => {
                    self.refuse("remote", sql)?
                }
                ("foreign", Some("data")) if at(i + 2) == Some("wrapper") => {
                    self.refuse("remote", sql)?
                }
                ("engine", _) => {
                    let engine = if t.get(i + 1) == Some(&T::Eq) {
                        at(i + 2)
                    } else {
                        next
                    };
                    match engine {
                        Some("connect") => self.refuse("server-files", sql)?,
                        Some("federated" | "federatedx") => self.refuse("remote", sql)?,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // Statement by statement: what each one (or each statement of a body) starts with.
        let mut pragma_only = true;
        for segment in t.split(|x| *x == T::Semi) {
            if segment.is_empty() {
                continue;
            }
            if segment[0].is("pragma") {
                self.pragma(segment, sql)?;
            } else {
                pragma_only = false;
            }
            for start in segment_starts(scope, segment) {
                self.statement_start(scope, &segment[start..], sql)?;
            }
        }
        Ok(pragma_only)
    }

    /// PRAGMA [schema.]name (= value | (value)): reading one is harmless; setting an
    /// unsafe one is not.
    fn pragma(&self, segment: &[T], sql: &str) -> Result<(), Refusal> {
        let mut rest = &segment[1..];
        if rest.get(1) == Some(&T::Dot) {
            rest = &rest[2..];
        }
        let name = rest.first().and_then(T::word).unwrap_or_default();
        let sets = matches!(rest.get(1), Some(T::Eq | T::LParen));
        if sets && UNSAFE_PRAGMAS.contains(&name) {
            self.refuse("pragma", sql)?;
        }
        Ok(())
    }

    /// The rules decided by how a statement starts: `s` runs from its first word to the
    /// end of the statement.
    fn statement_start(&self, scope: Scope, s: &[T], sql: &str) -> Result<(), Refusal> {
        let words: Vec<&str> = s.iter().filter_map(T::word).collect();
        let has = |w: &str| words.contains(&w);
        let first = words.first().copied().unwrap_or_default();
        let second = words.get(1).copied().unwrap_or_default();
        match first {
            "set" => {
                for w in &words[1..] {
                    let name = w.strip_prefix("@@").unwrap_or(w);
                    match name {
                        "global" | "persist" | "persist_only" => {
                            self.refuse("global-settings", sql)?
                        }
                        "autocommit" => self.refuse("transaction-control", sql)?,
                        "role" | "password" => self.refuse("roles", sql)?,
                        n if SYNTAX_SETTINGS.contains(&n) => self.refuse("sql-mode", sql)?,
                        "character" if words.contains(&"set") => self.refuse("sql-mode", sql)?,
                        _ => {}
                    }
                }
            }
            "commit" | "rollback" | "savepoint" | "release" => {
                self.refuse("transaction-control", sql)?
            }
            "start" if second == "transaction" => self.refuse("transaction-control", sql)?,
            "grant" | "revoke" => self.refuse("privileges", sql)?,
            "rename" if second == "user" => self.refuse("roles", sql)?,
            // Statements of one engine (MySQL's USE, KILL, PREPARE; PostgreSQL's LOAD).
            w if let Some((_, rule)) = syntax(scope.dialect)
                .statements
                .iter()
                .find(|(word, _)| *word == w) =>
            {
                self.refuse(rule, sql)?
            }
            w if syntax(scope.dialect).client_commands.contains(&w) => {
                self.refuse("client-command", sql)?
            }
            "attach" | "detach" => self.refuse("attach", sql)?,
            "copy" if has("program") || !(has("stdin") || has("stdout")) => {
                self.refuse("server-files", sql)?
            }
            "vacuum" if has("into") => self.refuse("server-files", sql)?,
            "create" | "alter" | "drop" => {
                // The kind of object: the first word that names one (after OR REPLACE,
                // IF NOT EXISTS, DEFINER = …).
                let object = words[1..]
                    .iter()
                    .copied()
                    .find(|w| OBJECT_KINDS.contains(w))
                    .unwrap_or_default();
                match (first, object) {
                    (_, "role" | "user" | "group") => self.refuse("roles", sql)?,
                    (_, "database") => self.refuse("databases", sql)?,
                    ("drop", "schema") => self.refuse("databases", sql)?,
                    ("create", "server" | "subscription") => self.refuse("remote", sql)?,
                    ("create", "language") => self.refuse("function-language", sql)?,
                    ("create", "tablespace") => self.refuse("server-files", sql)?,
                    ("create", "function" | "procedure" | "aggregate" | "trigger" | "event") => {
                        self.routine(scope, s, sql)?
                    }
                    _ => {}
                }
            }
            "do" => self.routine(scope, s, sql)?,
            _ => {}
        }
        Ok(())
    }

    /// A function, procedure or DO block: its language must be SQL or PL/pgSQL, and its
    /// body (the strings after AS, or the DO string) passes the same rules.
    fn routine(&self, scope: Scope, s: &[T], sql: &str) -> Result<(), Refusal> {
        for (i, t) in s.iter().enumerate() {
            if t.is("language") {
                let language = match s.get(i + 1) {
                    Some(T::Word(w)) => w.clone(),
                    Some(T::Str(l)) => l.to_lowercase(),
                    _ => String::new(),
                };
                if !SAFE_LANGUAGES.contains(&language.as_str()) {
                    self.refuse("function-language", sql)?;
                }
            }
        }
        let is_do = s.first().is_some_and(|t| t.is("do"));
        let body_from = if is_do {
            0
        } else {
            match s.iter().position(|t| t.is("as")) {
                Some(i) => i,
                None => return Ok(()),
            }
        };
        for t in &s[body_from..] {
            if let T::Str(body) = t {
                if scope.depth >= MAX_BODY_DEPTH {
                    self.refuse("unparseable", sql)?;
                    continue;
                }
                self.scan_text(
                    Scope {
                        dialect: scope.dialect,
                        depth: scope.depth + 1,
                    },
                    body,
                    sql,
                )?;
            }
        }
        Ok(())
    }

    /// The rules decided on the syntax tree, for what the tokens do not show.
    fn check_statement(&self, statement: &Statement) -> Result<(), Refusal> {
        let text = statement.to_string();
        let refuse = |rule| self.refuse(rule, &text);
        match statement {
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => refuse("transaction-control"),
            Statement::AttachDatabase { .. }
            | Statement::AttachDuckDBDatabase { .. }
            | Statement::DetachDuckDBDatabase { .. } => refuse("attach"),
            Statement::Copy {
                target: CopyTarget::File { .. } | CopyTarget::Program { .. },
                ..
            } => refuse("server-files"),
            Statement::LoadData { .. } => refuse("server-files"),
            Statement::CreateServer(_) => refuse("remote"),
            Statement::Grant { .. } | Statement::Revoke { .. } => refuse("privileges"),
            Statement::CreateRole { .. }
            | Statement::AlterRole { .. }
            | Statement::CreateUser(_) => refuse("roles"),
            Statement::Set(Set::SetRole { .. }) => refuse("roles"),
            Statement::Drop { object_type, .. } => match object_type {
                ObjectType::Database | ObjectType::Schema => refuse("databases"),
                ObjectType::Role | ObjectType::User => refuse("roles"),
                _ => Ok(()),
            },
            Statement::CreateDatabase { .. } => refuse("databases"),
            Statement::CreateExtension { name, .. }
                if !self
                    .extensions
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(&name.value)) =>
            {
                refuse("extensions")
            }
            Statement::Install { .. } | Statement::Load { .. } => refuse("extensions"),
            _ => Ok(()),
        }
    }
}

/// Where statements start inside `segment` (a run of tokens between semicolons): its
/// first token, and in a body also after the words that open a block or a branch.
fn segment_starts(scope: Scope, segment: &[T]) -> Vec<usize> {
    let mut starts = vec![0];
    if scope.in_body() || segment.first().is_some_and(|t| t.is("create")) {
        for (i, t) in segment.iter().enumerate() {
            if matches!(
                t.word(),
                Some("begin" | "then" | "else" | "loop" | "declare" | "atomic")
            ) && i + 1 < segment.len()
            {
                starts.push(i + 1);
            }
        }
    }
    starts
}

/// sqlparser's tokens as the rules read them. On PostgreSQL, `U&"…"` (and its
/// `UESCAPE 'c'`) becomes the identifier it spells; one that does not decode is left as
/// a word the rules refuse nothing for, so it is refused as unreadable instead.
fn normalize(dialect: Dialect, tokens: &[Token]) -> Vec<T> {
    let mut out = Vec::with_capacity(tokens.len());
    let solid: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut i = 0;
    while i < solid.len() {
        let token = solid[i];
        i += 1;
        let unicode_ident = syntax(dialect).unicode_identifiers
            && matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("u"))
            && matches!(solid.get(i), Some(Token::Ampersand))
            && matches!(solid.get(i + 1), Some(Token::Word(w)) if w.quote_style == Some('"'));
        if unicode_ident {
            let Some(Token::Word(quoted)) = solid.get(i + 1) else {
                unreachable!("matched above")
            };
            i += 2;
            let mut escape = '\\';
            if matches!(solid.get(i), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("uescape"))
                && let Some(Token::SingleQuotedString(e)) = solid.get(i + 1)
            {
                escape = e.chars().next().unwrap_or('\\');
                i += 2;
            }
            out.push(T::Word(
                decode_unicode_escapes(&quoted.value, escape)
                    .unwrap_or_else(|| "\u{fffd}undecodable".into())
                    .to_lowercase(),
            ));
            continue;
        }
        out.push(match token {
            Token::Word(w) => T::Word(w.value.to_lowercase()),
            Token::SemiColon => T::Semi,
            Token::LParen => T::LParen,
            Token::Eq => T::Eq,
            Token::Period => T::Dot,
            Token::SingleQuotedString(s)
            | Token::DoubleQuotedString(s)
            | Token::NationalStringLiteral(s)
            | Token::EscapedStringLiteral(s)
            | Token::UnicodeStringLiteral(s) => T::Str(s.clone()),
            Token::DollarQuotedString(s) => T::Str(s.value.clone()),
            _ => T::Other,
        });
    }
    out
}

/// PostgreSQL's Unicode escapes: `\XXXX`, `\+XXXXXX`, and the escape character doubled.
fn decode_unicode_escapes(s: &str, escape: char) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let digits = if chars.peek() == Some(&'+') {
            chars.next();
            6
        } else {
            4
        };
        let hex: String = chars.by_ref().take(digits).collect();
        if hex.len() != digits {
            return None;
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(dialect: Dialect, sql: &str) -> Option<&'static str> {
        Policy::default().check(dialect, sql).err().map(|r| r.rule)
    }

    #[test]
    fn every_rule_refuses_its_example() {
        for r in RULES {
            assert_eq!(rule(r.dialect, r.example), Some(r.name), "{}", r.example);
        }
    }

    /// docs/policy.md lists every rule with its example, as RULES has them.
    #[test]
    fn the_docs_list_every_rule() {
        let doc = include_str!("../../docs/policy.md");
        for r in RULES {
            let example = r.example.replace('|', "\\|").replace('\n', "\\n");
            assert!(
                doc.contains(&format!("| `{}` |", r.name)) && doc.contains(&example),
                "docs/policy.md lacks rule {} or its example",
                r.name
            );
        }
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
            (Mysql, "SET autocommit = 1", "transaction-control"),
            (Sqlite, "ATTACH DATABASE '/etc/x.db' AS x", "attach"),
            (Sqlite, "SELECT load_extension('evil')", "server-files"),
            (Sqlite, "VACUUM INTO '/tmp/copy.db'", "server-files"),
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
                "SELECT \"pg_read_file\"('/etc/passwd')",
                "server-files",
            ),
            (
                Postgres,
                "SELECT U&\"pg\\005fread\\005ffile\"('/etc/passwd')",
                "server-files",
            ),
            (
                Postgres,
                "SELECT u&\"pg!005fread!005ffile\" UESCAPE '!' ('/etc/passwd')",
                "server-files",
            ),
            (
                Postgres,
                "SELECT U&\"pg\\+00005fread_file\"('/etc/passwd')",
                "server-files",
            ),
            (
                Postgres,
                "CREATE OPERATOR ### (PROCEDURE = pg_read_file, LEFTARG = text, RIGHTARG = bigint)",
                "server-files",
            ),
            (
                Postgres,
                "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)",
                "remote",
            ),
            (
                Postgres,
                "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw",
                "remote",
            ),
            (Postgres, "ALTER SYSTEM SET fsync = off", "alter-system"),
            (Postgres, "GRANT ALL ON users TO public", "privileges"),
            (Postgres, "REVOKE ALL ON users FROM public", "privileges"),
            (Postgres, "CREATE ROLE evil", "roles"),
            (Postgres, "ALTER ROLE postgres WITH PASSWORD 'x'", "roles"),
            (Postgres, "SET ROLE postgres", "roles"),
            (Postgres, "SET SESSION AUTHORIZATION postgres", "roles"),
            (
                Postgres,
                "SELECT set_config('role', 'postgres', false)",
                "roles",
            ),
            (
                Postgres,
                "SELECT pg_catalog.set_config('session_authorization', 'postgres', false)",
                "roles",
            ),
            (
                Postgres,
                "SELECT set_config(lower('ROLE'), 'postgres', false)",
                "roles",
            ),
            (
                Postgres,
                "SELECT set_config('standard_conforming_strings', 'off', false)",
                "sql-mode",
            ),
            (
                Postgres,
                "SET standard_conforming_strings = off",
                "sql-mode",
            ),
            (Postgres, "SET client_encoding = 'SJIS'", "sql-mode"),
            (Postgres, "CREATE DATABASE other", "databases"),
            (
                Postgres,
                "ALTER DATABASE other SET search_path = x",
                "databases",
            ),
            (Postgres, "DROP DATABASE other", "databases"),
            (Postgres, "DROP SCHEMA public CASCADE", "databases"),
            (Postgres, "CREATE EXTENSION plpython3u", "extensions"),
            (Postgres, "LOAD 'auto_explain'", "extensions"),
            (
                Postgres,
                "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('/etc/passwd') $$",
                "server-files",
            ),
            (
                Postgres,
                "CREATE OR REPLACE FUNCTION f() RETURNS void AS $body$ BEGIN EXECUTE 'COPY t TO PROGRAM ''id'''; END $body$ LANGUAGE plpgsql",
                "dynamic-sql",
            ),
            (
                Postgres,
                "CREATE PROCEDURE p() LANGUAGE plpgsql AS 'BEGIN PERFORM lo_export(1, ''/tmp/x''); END'",
                "server-files",
            ),
            (
                Postgres,
                "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$",
                "transaction-control",
            ),
            (
                Postgres,
                "DO $$ BEGIN IF true THEN GRANT ALL ON t TO PUBLIC; END IF; END $$",
                "privileges",
            ),
            (
                Postgres,
                "DO $a$ BEGIN PERFORM 1; RAISE NOTICE $b$x$b$; CREATE ROLE r; END $a$",
                "roles",
            ),
            (
                Postgres,
                "CREATE FUNCTION f() RETURNS void LANGUAGE plpython3u AS $$ import os $$",
                "function-language",
            ),
            (
                Postgres,
                "CREATE FUNCTION f() RETURNS int AS '/tmp/evil.so', 'f' LANGUAGE c",
                "function-language",
            ),
            (
                Postgres,
                "SELECT query_to_xml('SELECT 1', true, true, '')",
                "dynamic-sql",
            ),
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
            (
                Mysql,
                "CREATE TABLE t (a INT) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/passwd'",
                "server-files",
            ),
            (
                Mysql,
                "CREATE TABLE t (a INT) ENGINE = FEDERATED CONNECTION='mysql://u@h/d/t'",
                "remote",
            ),
            (Mysql, "CREATE USER evil", "roles"),
            (Mysql, "SET PASSWORD FOR root = PASSWORD('x')", "roles"),
            (
                Mysql,
                "SELECT 1 /*!INTO OUTFILE '/tmp/f' */",
                "executable-comment",
            ),
            (
                Mysql,
                "SELECT 'x' AS a /*M!100000 , 1 AS b */",
                "executable-comment",
            ),
            (Mysql, "SET sql_mode = 'NO_BACKSLASH_ESCAPES'", "sql-mode"),
            (Mysql, "SET SESSION sql_mode = 'ANSI_QUOTES'", "sql-mode"),
            (Mysql, "SET @@session.sql_mode = 'ANSI'", "sql-mode"),
            (Mysql, "SET @@sql_mode := ''", "sql-mode"),
            (Mysql, "SET NAMES gbk", "sql-mode"),
            (Mysql, "SET CHARACTER SET big5", "sql-mode"),
            (
                Mysql,
                "SET STATEMENT sql_mode = '' FOR SELECT 1",
                "sql-mode",
            ),
            (Mysql, "SET GLOBAL general_log = 1", "global-settings"),
            (
                Mysql,
                "SET @@global.general_log_file = '/tmp/x'",
                "global-settings",
            ),
            (Mysql, "SET PERSIST max_connections = 1", "global-settings"),
            (
                Mysql,
                "SET SESSION wait_timeout = 1, GLOBAL general_log = 1",
                "global-settings",
            ),
            (Mysql, "PREPARE s FROM @q", "dynamic-sql"),
            (Mysql, "EXECUTE IMMEDIATE 'SELECT 1'", "dynamic-sql"),
            (
                Mysql,
                "CREATE PROCEDURE p() BEGIN SET sql_mode = ''; END",
                "sql-mode",
            ),
            (
                Mysql,
                "CREATE FUNCTION sys_exec RETURNS INT SONAME 'lib.so'",
                "function-language",
            ),
            (Mysql, "INSTALL SONAME 'ha_connect'", "extensions"),
            (
                Sqlite,
                "UPDATE users SET x = 1; COMMIT",
                "transaction-control",
            ),
            (Sqlite, "this is not sql", "unparseable"),
            (
                Postgres,
                "SELECT $1$, pg_read_file('/etc/passwd'), $1$",
                "unparseable",
            ),
            (Sqlite, "SELECT 1;\n.shell touch /tmp/x", "client-command"),
            (Sqlite, ".shell touch /tmp/x", "client-command"),
            (Mysql, "SELECT 'a' \\! touch /tmp/x", "client-command"),
            (Mysql, "system touch /tmp/x", "client-command"),
            (Mysql, "SELECT 1;\nsource /tmp/evil.sql", "client-command"),
            (Mysql, "USE mysql", "databases"),
            (Mysql, "KILL 12", "server-admin"),
            (Mysql, "SHUTDOWN", "server-admin"),
            (Mysql, "RENAME USER a TO b", "roles"),
            (Postgres, "SELECT pg_reload_conf()", "server-admin"),
            (
                Postgres,
                "CREATE SUBSCRIPTION s CONNECTION 'host=elsewhere' PUBLICATION p",
                "remote",
            ),
            (Sqlite, "SELECT writefile('/tmp/x', 'data')", "server-files"),
            (Sqlite, "SELECT edit('x', 'vi')", "server-files"),
            (
                Sqlite,
                "CREATE VIRTUAL TABLE temp.z USING zipfile('/tmp/x.zip')",
                "server-files",
            ),
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
            (Dialect::Postgres, "SELECT U&'d\\0061t\\+000061' AS s"),
            (
                Dialect::Postgres,
                "SELECT set_config('search_path', 'public', true)",
            ),
            (
                Dialect::Postgres,
                "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
            ),
            (
                Dialect::Postgres,
                "CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch()",
            ),
            (Dialect::Postgres, "UPDATE t SET names = 'x', global = 1"),
            (
                Dialect::Sqlite,
                "UPDATE posts SET edit = 1 WHERE status = 'draft'",
            ),
            (
                Dialect::Mysql,
                "UPDATE users SET email = LOWER(email) WHERE id = ?",
            ),
            (Dialect::Mysql, "SELECT 1 /* an ordinary comment */"),
            (Dialect::Mysql, "SET @names = 1"),
            (Dialect::Mysql, "SELECT 1 --1, LOAD_FILE is a minus here"),
        ] {
            let result = Policy::default().check(d, sql);
            if sql.contains("minus here") {
                // `--1` is no comment to MySQL; the policy reads it the same way.
                assert_eq!(result.unwrap_err().rule, "server-files", "{sql}");
                continue;
            }
            assert_eq!(result, Ok(()), "{sql}");
        }
        let lenient = Policy {
            allow: vec!["privileges".into()],
            extensions: vec!["pg_trgm".into()],
            allow_unparseable: true,
            require_least_privilege: false,
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
        for (d, sql) in [
            (Dialect::Postgres, "SELECT 'a' \\! touch /tmp/x"),
            (Dialect::Sqlite, "not sql;\n.shell touch /tmp/x"),
            (Dialect::Mysql, "SELECT 'unterminated \\! touch /tmp/x"),
            (Dialect::Mysql, "SELECT 'unterminated;\nsystem touch /tmp/x"),
        ] {
            assert_eq!(
                lenient.check(d, sql).unwrap_err().rule,
                "client-command",
                "{sql}"
            );
        }
        let refusal = Policy::default()
            .check(Dialect::Postgres, "CREATE ROLE x")
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "statement refused by rule `roles`: CREATE ROLE x"
        );
    }

    /// The DDL the host renders around a guest's DEFAULT or CHECK expression passes the
    /// token rules; the host's own DDL forms pass.
    #[test]
    fn rendered_ddl_is_checked_on_its_tokens() {
        let p = Policy::default();
        let refused = p.check_rendered(
            Dialect::Postgres,
            "ALTER TABLE \"t\" ADD COLUMN \"c\" TEXT DEFAULT (pg_read_file('/etc/passwd'))",
        );
        assert_eq!(refused.unwrap_err().rule, "server-files");
        for (d, sql) in [
            (
                Dialect::Mysql,
                "ALTER TABLE `t` MODIFY COLUMN `c` VARCHAR(10) NOT NULL DEFAULT ('x') COMMENT 'a'",
            ),
            (
                Dialect::Postgres,
                "ALTER TABLE \"user\" ALTER COLUMN \"global\" SET DEFAULT ('names')",
            ),
            (
                Dialect::Sqlite,
                "CREATE TABLE \"database\" (\n    \"id\" INTEGER PRIMARY KEY,\n    \"engine\" TEXT\n)",
            ),
        ] {
            assert_eq!(p.check_rendered(d, sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn unicode_escapes_decode_as_postgres_reads_them() {
        assert_eq!(
            decode_unicode_escapes("pg\\005fread", '\\').as_deref(),
            Some("pg_read")
        );
        assert_eq!(
            decode_unicode_escapes("a\\\\b!0041", '!').as_deref(),
            Some("a\\\\bA")
        );
        assert_eq!(decode_unicode_escapes("x\\12", '\\'), None);
    }
}
