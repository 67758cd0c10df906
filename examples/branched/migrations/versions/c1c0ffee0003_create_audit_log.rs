//! The audit branch starts: a log of who changed what.
//!
//! ```toml
//! id = "c1c0ffee0003"
//! down = ["a1c0ffee0001"]
//! branch-labels = ["audit"]
//! message = "create audit log"
//! created = "2026-12-04T09:20:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateAuditLog;

impl Revision for CreateAuditLog {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("audit_log")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("entry", SqlType::Text).not_null()),
        )
    }

    fn downgrade() -> Result<()> {
        drop_table("audit_log")
    }
}

retort_guest::revision!(CreateAuditLog);
