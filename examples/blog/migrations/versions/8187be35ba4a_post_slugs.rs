//! Give every post a URL slug made from its title.
//!
//! ```toml
//! id = "8187be35ba4a"
//! down = ["1ab7ac228c1c"]
//! message = "add slugs to posts"
//! created = "2026-11-24T10:00:00Z"
//! ```

use retort_guest::prelude::*;

struct PostSlugs;

/// "COBOL & the Compiler" -> "cobol-the-compiler"
fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

impl Revision for PostSlugs {
    fn upgrade() -> Result<()> {
        add_column("posts", Column::new("slug", SqlType::Varchar(220)))?;
        if is_offline() {
            // Set-based for a script. PostgreSQL and MariaDB have regular expressions;
            // SQLite's core does not, so its offline slugs replace the usual punctuation
            // only (online, every revision computes the exact slug in Rust).
            let sql = match dialect() {
                Dialect::Postgres => {
                    "UPDATE posts SET slug = trim(both '-' from lower(regexp_replace(title, '[^A-Za-z0-9]+', '-', 'g')))"
                }
                Dialect::Mysql => {
                    "UPDATE posts SET slug = TRIM(BOTH '-' FROM LOWER(REGEXP_REPLACE(title, '[^A-Za-z0-9]+', '-')))"
                }
                Dialect::Sqlite => {
                    "UPDATE posts SET slug = ltrim(rtrim(lower(replace(replace(replace(replace(replace(replace(\
                     title, ' & ', '-'), ', ', '-'), ' ', '-'), '!', ''), '?', ''), '.', '')), '-'), '-')"
                }
            };
            execute(sql, params![])?;
            return create_index(Index::new("ix_posts_slug", "posts", &["slug"]).unique());
        }
        let update = "UPDATE posts SET slug = ? WHERE id = ?";
        for row in query("SELECT id, title FROM posts ORDER BY id", params![])? {
            let row = row?;
            let id: i64 = row.get(0)?;
            let title: String = row.get(1)?;
            execute(update, params![slugify(&title), id])?;
        }
        create_index(Index::new("ix_posts_slug", "posts", &["slug"]).unique())
    }

    fn downgrade() -> Result<()> {
        drop_index("posts", "ix_posts_slug")?;
        drop_column("posts", "slug")
    }
}

retort_guest::revision!(PostSlugs);
