//! Widen users.phone from 20 to 30 characters.
//!
//! ```toml
//! id = "7600821d3182"
//! down = ["1f34baec9930"]
//! message = "widen users.phone to 30"
//! created = "2026-11-24T09:45:00Z"
//! ```

use retort_guest::prelude::*;

struct WidenPhone;

impl Revision for WidenPhone {
    fn upgrade() -> Result<()> {
        alter_column("users", "phone", Alter::new().set_type(SqlType::Varchar(30)))
    }

    fn downgrade() -> Result<()> {
        alter_column("users", "phone", Alter::new().set_type(SqlType::Varchar(20)))
    }
}

retort_guest::revision!(WidenPhone);
