//! Orders are audited: needs the audit branch's table, without following that branch.
//!
//! ```toml
//! id = "b2c0ffee0004"
//! down = ["b1c0ffee0002"]
//! depends-on = ["audit"]
//! message = "audit orders"
//! created = "2026-12-04T09:30:00Z"
//! ```

use retort_guest::prelude::*;

struct AuditOrders;

impl Revision for AuditOrders {
    fn upgrade() -> Result<()> {
        add_column("orders", Column::new("audited", SqlType::Boolean).not_null().server_default("0"))?;
        execute("INSERT INTO audit_log (entry) VALUES (?)", params!["orders are audited"])?;
        Ok(())
    }

    fn downgrade() -> Result<()> {
        execute("DELETE FROM audit_log WHERE entry = ?", params!["orders are audited"])?;
        drop_column("orders", "audited")
    }
}

retort_guest::revision!(AuditOrders);
