//! Create posts, each written by a user.
//!
//! ```toml
//! id = "462abb4678b5"
//! down = ["78317608ccfd"]
//! message = "create posts"
//! created = "2026-11-24T09:10:00Z"
//! ```

use retort_guest::prelude::*;

struct CreatePosts;

impl Revision for CreatePosts {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("posts")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("title", SqlType::Varchar(200)).not_null())
                .column(Column::new("user_id", SqlType::Integer).not_null())
                .foreign_key(
                    ForeignKey::new(&["user_id"], "users", &["id"])
                        .name("fk_posts_user_id")
                        .on_delete(ReferentialAction::Cascade),
                ),
        )?;
        bulk_insert(
            "posts",
            &["title", "user_id"],
            vec![
                params!["Notes on the Analytical Engine", 1],
                params!["Hello, World!", 1],
                params!["COBOL & the Compiler", 2],
                params!["On Computable Numbers", 3],
            ],
        )?;
        Ok(())
    }

    fn downgrade() -> Result<()> {
        drop_table("posts")
    }
}

retort_guest::revision!(CreatePosts);
