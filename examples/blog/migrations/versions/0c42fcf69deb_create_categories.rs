//! Create categories, and give posts a category through a named foreign key.
//!
//! ```toml
//! id = "0c42fcf69deb"
//! down = ["7600821d3182"]
//! message = "create categories"
//! created = "2026-11-24T09:50:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateCategories;

impl Revision for CreateCategories {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("categories")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("name", SqlType::Varchar(100)).not_null().unique())
                .column(Column::new("description", SqlType::Text)),
        )?;
        add_column("posts", Column::new("category_id", SqlType::Integer))?;
        create_foreign_key(
            "posts",
            ForeignKey::new(&["category_id"], "categories", &["id"])
                .name("fk_posts_category_id")
                .on_delete(ReferentialAction::SetNull),
        )
    }

    fn downgrade() -> Result<()> {
        drop_constraint("posts", "fk_posts_category_id")?;
        drop_column("posts", "category_id")?;
        drop_table("categories")
    }
}

retort_guest::revision!(CreateCategories);
