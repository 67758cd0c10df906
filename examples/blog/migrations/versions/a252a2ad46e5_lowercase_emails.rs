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
        let changed = execute("UPDATE users SET email = LOWER(email) WHERE email <> LOWER(email)", params![])?;
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
