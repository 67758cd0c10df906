//! The shop branch starts: orders.
//!
//! ```toml
//! id = "b1c0ffee0002"
//! down = ["a1c0ffee0001"]
//! branch-labels = ["shop"]
//! message = "create orders"
//! created = "2026-12-04T09:10:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateOrders;

impl Revision for CreateOrders {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("orders")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("account_id", SqlType::Integer).not_null()),
        )
    }

    fn downgrade() -> Result<()> {
        drop_table("orders")
    }
}

retort_guest::revision!(CreateOrders);
