//! The notes table.
//!
//! ```toml
//! id = "5e1a0c0f0001"
//! down = []
//! message = "create notes"
//! created = "2026-12-03T12:00:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateNotes;

impl Revision for CreateNotes {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("notes")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("body", SqlType::Text).not_null()),
        )
    }

    fn downgrade() -> Result<()> {
        drop_table("notes")
    }
}

retort_guest::revision!(CreateNotes);
