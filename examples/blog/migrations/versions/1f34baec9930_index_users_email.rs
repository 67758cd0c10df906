//! Index users.email.
//!
//! ```toml
//! id = "1f34baec9930"
//! down = ["2a1b2e34976d"]
//! message = "index users.email"
//! created = "2026-11-24T09:40:00Z"
//! ```

use retort_guest::prelude::*;

struct IndexEmail;

impl Revision for IndexEmail {
    fn upgrade() -> Result<()> {
        create_index(Index::new("ix_users_email", "users", &["email"]))
    }

    fn downgrade() -> Result<()> {
        drop_index("users", "ix_users_email")
    }
}

retort_guest::revision!(IndexEmail);
