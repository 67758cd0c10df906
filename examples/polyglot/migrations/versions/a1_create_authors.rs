//! Create authors, with a few rows.
//!
//! ```toml
//! id = "a1"
//! down = []
//! message = "create authors"
//! created = "2026-11-24T08:00:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateAuthors;

impl Revision for CreateAuthors {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("authors")
                .column(Column::new("id", SqlType::Integer).primary_key())
                .column(Column::new("full_name", SqlType::Varchar(200)).not_null()),
        )?;
        let names = ["Ada Lovelace", "Grace Brewster Hopper", "Edsger Dijkstra", "Barbara Liskov"];
        let rows = names
            .iter()
            .enumerate()
            .map(|(i, name)| params![i as i64 + 1, *name])
            .collect();
        bulk_insert("authors", &["id", "full_name"], rows)?;
        Ok(())
    }

    fn downgrade() -> Result<()> {
        drop_table("authors")
    }
}

retort_guest::revision!(CreateAuthors);
