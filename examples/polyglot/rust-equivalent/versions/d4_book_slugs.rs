//! Give every book a URL slug, computed row by row.
//!
//! ```toml
//! id = "d4"
//! down = ["c3"]
//! message = "book slugs"
//! created = "2026-11-24T08:03:00Z"
//! ```

use retort_guest::prelude::*;

struct BookSlugs;

fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    slug.chars().take(60).collect()
}

impl Revision for BookSlugs {
    fn upgrade() -> Result<()> {
        execute("ALTER TABLE books ADD COLUMN slug VARCHAR(80)", params![])?;
        let update = "UPDATE books SET slug = ? WHERE id = ?";
        let mut done = 0;
        for row in query("SELECT id, title FROM books ORDER BY id", params![])? {
            let row = row?;
            let id: i64 = row.get("id")?;
            let title: String = row.get("title")?;
            execute(update, params![slugify(&title), id])?;
            done += 1;
        }
        log(LogLevel::Info, &format!("gave {done} books a slug"));
        Ok(())
    }

    fn downgrade() -> Result<()> {
        execute("ALTER TABLE books DROP COLUMN slug", params![])?;
        Ok(())
    }
}

retort_guest::revision!(BookSlugs);
