//! Add users.role: nullable first, backfilled with 'member', then NOT NULL.
//!
//! ```toml
//! id = "08882223cace"
//! down = ["1e6a7089f465"]
//! message = "add role to users"
//! created = "2026-11-24T09:25:00Z"
//! ```

use retort_guest::prelude::*;

struct AddRole;

impl Revision for AddRole {
    fn upgrade() -> Result<()> {
        add_column("users", Column::new("role", SqlType::Varchar(50)))?;
        let filled = execute("UPDATE users SET role = 'member' WHERE role IS NULL", params![])?;
        log(LogLevel::Info, &format!("backfilled role for {filled} users"));
        alter_column("users", "role", Alter::new().nullable(false))
    }

    fn downgrade() -> Result<()> {
        drop_column("users", "role")
    }
}

retort_guest::revision!(AddRole);
