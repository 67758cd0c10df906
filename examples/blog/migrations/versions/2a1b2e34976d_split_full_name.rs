//! Split users.full_name into first_name and last_name, row by row.
//!
//! ```toml
//! id = "2a1b2e34976d"
//! down = ["a252a2ad46e5"]
//! message = "split full_name into first and last name"
//! created = "2026-11-24T09:35:00Z"
//! ```

use retort_guest::prelude::*;

struct SplitName;

/// The offline (set-based) split: first word, and the rest or NULL.
fn split_statement() -> &'static str {
    match dialect() {
        Dialect::Sqlite => {
            "UPDATE users SET \
             first_name = CASE WHEN instr(trim(full_name), ' ') > 0 \
               THEN substr(trim(full_name), 1, instr(trim(full_name), ' ') - 1) ELSE trim(full_name) END, \
             last_name = CASE WHEN instr(trim(full_name), ' ') > 0 \
               THEN trim(substr(trim(full_name), instr(trim(full_name), ' ') + 1)) ELSE NULL END"
        }
        Dialect::Postgres => {
            "UPDATE users SET first_name = split_part(trim(full_name), ' ', 1), \
             last_name = NULLIF(trim(substr(trim(full_name), length(split_part(trim(full_name), ' ', 1)) + 2)), '')"
        }
        Dialect::Mysql => {
            "UPDATE users SET first_name = SUBSTRING_INDEX(TRIM(full_name), ' ', 1), \
             last_name = NULLIF(TRIM(SUBSTRING(TRIM(full_name), LENGTH(SUBSTRING_INDEX(TRIM(full_name), ' ', 1)) + 2)), '')"
        }
    }
}

/// The offline join of first and last name.
fn join_statement() -> &'static str {
    match dialect() {
        Dialect::Sqlite => "UPDATE users SET full_name = trim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))",
        Dialect::Postgres => "UPDATE users SET full_name = concat_ws(' ', first_name, last_name)",
        Dialect::Mysql => "UPDATE users SET full_name = CONCAT_WS(' ', first_name, last_name)",
    }
}

impl Revision for SplitName {
    fn upgrade() -> Result<()> {
        add_column("users", Column::new("first_name", SqlType::Varchar(50)))?;
        add_column("users", Column::new("last_name", SqlType::Varchar(50)))?;
        if is_offline() {
            // No rows to read when rendering a script: the same split as one statement.
            execute(split_statement(), params![])?;
            return drop_column("users", "full_name");
        }
        // `?` in every dialect: the host writes PostgreSQL's `$n`.
        let update = "UPDATE users SET first_name = ?, last_name = ? WHERE id = ?";
        let mut count = 0;
        for row in query("SELECT id, full_name FROM users ORDER BY id", params![])? {
            let row = row?;
            let id: i64 = row.get("id")?;
            let full: Option<String> = row.get("full_name")?;
            let full = full.unwrap_or_default();
            // "Grace Brewster Hopper" -> ("Grace", "Brewster Hopper"); one word -> no last name.
            let (first, last) = match full.trim().split_once(' ') {
                Some((first, last)) => (first.to_string(), Some(last.trim().to_string())),
                None => (full.trim().to_string(), None),
            };
            execute(update, params![first, last, id])?;
            count += 1;
        }
        log(LogLevel::Info, &format!("split {count} names"));
        drop_column("users", "full_name")
    }

    fn downgrade() -> Result<()> {
        add_column("users", Column::new("full_name", SqlType::Varchar(100)))?;
        if is_offline() {
            execute(join_statement(), params![])?;
            drop_column("users", "first_name")?;
            return drop_column("users", "last_name");
        }
        let update = "UPDATE users SET full_name = ? WHERE id = ?";
        for row in query("SELECT id, first_name, last_name FROM users ORDER BY id", params![])? {
            let row = row?;
            let id: i64 = row.get("id")?;
            let first: Option<String> = row.get("first_name")?;
            let last: Option<String> = row.get("last_name")?;
            let full = match (first, last) {
                (Some(f), Some(l)) => format!("{f} {l}"),
                (Some(f), None) => f,
                (None, Some(l)) => l,
                (None, None) => String::new(),
            };
            execute(update, params![full, id])?;
        }
        drop_column("users", "first_name")?;
        drop_column("users", "last_name")
    }
}

retort_guest::revision!(SplitName);
