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

/// The dialect's bound-parameter markers for `n` parameters.
fn marks(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| if dialect() == Dialect::Postgres { format!("${i}") } else { "?".into() })
        .collect()
}

impl Revision for SplitName {
    fn upgrade() -> Result<()> {
        add_column("users", Column::new("first_name", SqlType::Varchar(50)))?;
        add_column("users", Column::new("last_name", SqlType::Varchar(50)))?;
        let m = marks(3);
        let update = format!("UPDATE users SET first_name = {}, last_name = {} WHERE id = {}", m[0], m[1], m[2]);
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
            execute(&update, params![first, last, id])?;
            count += 1;
        }
        log(LogLevel::Info, &format!("split {count} names"));
        drop_column("users", "full_name")
    }

    fn downgrade() -> Result<()> {
        add_column("users", Column::new("full_name", SqlType::Varchar(100)))?;
        let m = marks(2);
        let update = format!("UPDATE users SET full_name = {} WHERE id = {}", m[0], m[1]);
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
            execute(&update, params![full, id])?;
        }
        drop_column("users", "first_name")?;
        drop_column("users", "last_name")
    }
}

retort_guest::revision!(SplitName);
