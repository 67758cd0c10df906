//! Benchmark history, 1 of 4: create items and its index.
//!
//! ```toml
//! id = "a0"
//! message = "create items"
//! ```

use retort_guest::prelude::*;

struct CreateItems;

impl Revision for CreateItems {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("items")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("name", SqlType::Varchar(100)).not_null())
                .column(Column::new("price", SqlType::Numeric((10, 2)))),
        )?;
        create_index(Index::new("ix_items_name", "items", &["name"]))
    }

    fn downgrade() -> Result<()> {
        drop_table("items")
    }
}

retort_guest::revision!(CreateItems);
