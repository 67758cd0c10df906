//! Add users.is_verified, false by default.
//!
//! ```toml
//! id = "1ab7ac228c1c"
//! down = ["0c42fcf69deb"]
//! message = "add is_verified to users"
//! created = "2026-11-24T09:55:00Z"
//! ```

use retort_guest::prelude::*;

struct AddIsVerified;

impl Revision for AddIsVerified {
    fn upgrade() -> Result<()> {
        add_column(
            "users",
            Column::new("is_verified", SqlType::Boolean).not_null().server_default("false"),
        )
    }

    fn downgrade() -> Result<()> {
        drop_column("users", "is_verified")
    }
}

retort_guest::revision!(AddIsVerified);
