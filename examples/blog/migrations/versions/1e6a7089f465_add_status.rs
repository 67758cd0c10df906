//! Add users.status, 'active' unless said otherwise.
//!
//! ```toml
//! id = "1e6a7089f465"
//! down = ["42a8112dd419"]
//! message = "add status to users"
//! created = "2026-11-24T09:20:00Z"
//! ```

use retort_guest::prelude::*;

struct AddStatus;

impl Revision for AddStatus {
    fn upgrade() -> Result<()> {
        add_column(
            "users",
            Column::new("status", SqlType::Varchar(20)).not_null().server_default("'active'"),
        )
    }

    fn downgrade() -> Result<()> {
        drop_column("users", "status")
    }
}

retort_guest::revision!(AddStatus);
