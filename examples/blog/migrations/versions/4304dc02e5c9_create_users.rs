//! Create the users table, with a few users to migrate.
//!
//! ```toml
//! id = "4304dc02e5c9"
//! down = []
//! message = "create users"
//! created = "2026-11-24T09:00:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateUsers;

impl Revision for CreateUsers {
    fn upgrade() -> Result<()> {
        create_table(
            Table::new("users")
                .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
                .column(Column::new("email", SqlType::Varchar(100)).not_null().unique())
                .column(Column::new("name", SqlType::Varchar(100)))
                .column(Column::new("created_at", SqlType::Timestamp)),
        )?;
        create_index(Index::new("ix_users_id", "users", &["id"]))?;
        bulk_insert(
            "users",
            &["email", "name", "created_at"],
            vec![
                params!["Ada@Example.com", "Ada Lovelace", "2024-01-10 09:00:00"],
                params!["GRACE@example.COM", "Grace Brewster Hopper", "2024-02-11 10:30:00"],
                params!["alan@example.com", "Alan Turing", "2024-03-12 11:45:00"],
                params!["Edsger@Example.org", "Edsger", "2024-04-13 12:00:00"],
            ],
        )?;
        Ok(())
    }

    fn downgrade() -> Result<()> {
        drop_index("users", "ix_users_id")?;
        drop_table("users")
    }
}

retort_guest::revision!(CreateUsers);
