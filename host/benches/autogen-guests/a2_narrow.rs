//! Benchmark history, 3 of 4: the column goes, the other narrows back.
//!
//! ```toml
//! id = "a2"
//! down = ["a1"]
//! message = "drop items.note, narrow items.name"
//! ```

use retort_guest::prelude::*;

struct Narrow;

impl Revision for Narrow {
    fn upgrade() -> Result<()> {
        drop_column("items", "note")?;
        alter_column("items", "name", Alter::new().set_type(SqlType::Varchar(100)))
    }

    fn downgrade() -> Result<()> {
        alter_column("items", "name", Alter::new().set_type(SqlType::Varchar(200)))?;
        add_column("items", Column::new("note", SqlType::Text))
    }
}

retort_guest::revision!(Narrow);
