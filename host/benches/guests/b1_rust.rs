//! Benchmark guest: upgrade makes 100,000 host calls (`is-offline`), downgrade runs
//! 2,000 `execute`s.
//!
//! ```toml
//! id = "brust"
//! message = "rust"
//! ```

use retort_guest::prelude::*;

struct Bench;

impl Revision for Bench {
    fn upgrade() -> Result<()> {
        let mut offline = 0;
        for _ in 0..100_000 {
            offline += is_offline() as u32;
        }
        if offline != 0 {
            return Err(Error::msg("offline?"));
        }
        Ok(())
    }

    fn downgrade() -> Result<()> {
        for _ in 0..2000 {
            execute("UPDATE bench SET n = n + 1", params![])?;
        }
        Ok(())
    }
}

retort_guest::revision!(Bench);
