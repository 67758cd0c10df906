//! The base: accounts.
//!
//! ```toml
//! id = "a1c0ffee0001"
//! down = []
//! message = "create accounts"
//! created = "2026-12-04T09:00:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateAccounts;

impl Revision for CreateAccounts {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("accounts")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("email", SqlType::Varchar(100)).not_null().unique()),
        )
    }

    fn downgrade() -> Result<()> {
        drop_table("accounts")
    }
}

retort_guest::revision!(CreateAccounts);
