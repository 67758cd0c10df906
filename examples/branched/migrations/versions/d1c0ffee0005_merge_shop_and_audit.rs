//! One head again: merges the shop and audit branches (no changes of its own).
//!
//! ```toml
//! id = "d1c0ffee0005"
//! down = ["b2c0ffee0004", "c1c0ffee0003"]
//! message = "merge shop and audit"
//! created = "2026-12-04T09:40:00Z"
//! ```

use retort_guest::prelude::*;

struct Merge;

impl Revision for Merge {
    fn upgrade() -> Result<()> {
        Ok(())
    }

    fn downgrade() -> Result<()> {
        Ok(())
    }
}

retort_guest::revision!(Merge);
