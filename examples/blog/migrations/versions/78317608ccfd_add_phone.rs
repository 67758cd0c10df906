//! Add a nullable phone number to users.
//!
//! ```toml
//! id = "78317608ccfd"
//! down = ["4304dc02e5c9"]
//! message = "add phone to users"
//! created = "2026-11-24T09:05:00Z"
//! ```

use retort_guest::prelude::*;

struct AddPhone;

impl Revision for AddPhone {
    fn upgrade() -> Result<()> {
        add_column("users", Column::new("phone", SqlType::Varchar(20)))
    }

    fn downgrade() -> Result<()> {
        drop_column("users", "phone")
    }
}

retort_guest::revision!(AddPhone);
