//! Lower-case every email address.
//!
//! ```toml
//! id = "a252a2ad46e5"
//! down = ["08882223cace"]
//! message = "lower-case emails"
//! created = "2026-11-24T09:30:00Z"
//! ```

use retort_guest::prelude::*;

struct LowercaseEmails;

impl Revision for LowercaseEmails {
    fn upgrade() -> Result<()> {
        // MySQL/MariaDB compare with a case-insensitive collation by default: compare bytes.
        let differs = if dialect() == Dialect::Mysql {
            "CAST(email AS BINARY) <> CAST(LOWER(email) AS BINARY)"
        } else {
            "email <> LOWER(email)"
        };
        let changed = execute(&format!("UPDATE users SET email = LOWER(email) WHERE {differs}"), params![])?;
        log(LogLevel::Info, &format!("lower-cased {changed} emails"));
        Ok(())
    }

    /// The original case is gone; reverting keeps the lower-case addresses.
    fn downgrade() -> Result<()> {
        log(LogLevel::Warn, "emails stay lower-case: the original case was not kept");
        Ok(())
    }
}

retort_guest::revision!(LowercaseEmails);
