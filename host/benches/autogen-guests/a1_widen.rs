//! Benchmark history, 2 of 4: a column comes, another widens.
//!
//! ```toml
//! id = "a1"
//! down = ["a0"]
//! message = "add items.note, widen items.name"
//! ```

use retort_guest::prelude::*;

struct Widen;

impl Revision for Widen {
    fn upgrade() -> Result<()> {
        add_column("items", Column::new("note", SqlType::Text))?;
        alter_column("items", "name", Alter::new().set_type(SqlType::Varchar(200)))
    }

    fn downgrade() -> Result<()> {
        alter_column("items", "name", Alter::new().set_type(SqlType::Varchar(100)))?;
        drop_column("items", "note")
    }
}

retort_guest::revision!(Widen);
