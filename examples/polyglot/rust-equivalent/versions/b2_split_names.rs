//! Split authors.full_name into first and last names, row by row.
//!
//! ```toml
//! id = "b2"
//! down = ["a1"]
//! message = "split author names"
//! created = "2026-11-24T08:01:00Z"
//! ```

use retort_guest::prelude::*;

struct SplitNames;

fn placeholder(n: usize) -> String {
    if dialect() == Dialect::Postgres { format!("${n}") } else { "?".into() }
}

impl Revision for SplitNames {
    fn upgrade() -> Result<()> {
        execute("ALTER TABLE authors ADD COLUMN first_name VARCHAR(100)", params![])?;
        execute("ALTER TABLE authors ADD COLUMN last_name VARCHAR(100)", params![])?;
        let update = format!(
            "UPDATE authors SET first_name = {}, last_name = {} WHERE id = {}",
            placeholder(1),
            placeholder(2),
            placeholder(3)
        );
        let mut done = 0;
        for row in query("SELECT id, full_name FROM authors ORDER BY id", params![])? {
            let row = row?;
            let id: i64 = row.get("id")?;
            let full: String = row.get("full_name")?;
            let (first, last) = full.rsplit_once(' ').unwrap_or(("", full.as_str()));
            execute(&update, params![first, last, id])?;
            done += 1;
        }
        log(LogLevel::Info, &format!("split {done} names"));
        Ok(())
    }

    fn downgrade() -> Result<()> {
        execute("ALTER TABLE authors DROP COLUMN last_name", params![])?;
        execute("ALTER TABLE authors DROP COLUMN first_name", params![])?;
        Ok(())
    }
}

retort_guest::revision!(SplitNames);
