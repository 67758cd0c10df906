//! Rename users.name to full_name.
//!
//! ```toml
//! id = "42a8112dd419"
//! down = ["462abb4678b5"]
//! message = "rename users.name to full_name"
//! created = "2026-11-24T09:15:00Z"
//! ```

use retort_guest::prelude::*;

struct RenameName;

impl Revision for RenameName {
    fn upgrade() -> Result<()> {
        alter_column("users", "name", Alter::new().rename("full_name"))
    }

    fn downgrade() -> Result<()> {
        alter_column("users", "full_name", Alter::new().rename("name"))
    }
}

retort_guest::revision!(RenameName);
