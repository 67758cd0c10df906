//! Notes can be done; the existing ones are not.
//!
//! ```toml
//! id = "5e1a0c0f0002"
//! down = ["5e1a0c0f0001"]
//! message = "add done"
//! created = "2026-12-03T12:05:00Z"
//! ```

use retort_guest::prelude::*;

struct AddDone;

impl Revision for AddDone {
    fn upgrade() -> Result<()> {
        add_column(
            "notes",
            Column::new("done", SqlType::Boolean)
                .not_null()
                .server_default("0"),
        )
    }

    fn downgrade() -> Result<()> {
        drop_column("notes", "done")
    }
}

retort_guest::revision!(AddDone);
