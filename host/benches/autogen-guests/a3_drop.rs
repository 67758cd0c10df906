//! Benchmark history, 4 of 4: items goes.
//!
//! ```toml
//! id = "a3"
//! down = ["a2"]
//! message = "drop items"
//! ```

use retort_guest::prelude::*;

struct DropItems;

impl Revision for DropItems {
    fn upgrade() -> Result<()> {
        drop_index("items", "ix_items_name")?;
        drop_table("items")
    }

    fn downgrade() -> Result<()> {
        create_table(
            Table::new("items")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("name", SqlType::Varchar(100)).not_null())
                .column(Column::new("price", SqlType::Numeric((10, 2)))),
        )?;
        create_index(Index::new("ix_items_name", "items", &["name"]))
    }
}

retort_guest::revision!(DropItems);
