//! Create books, referring to authors, with a few rows.
//!
//! ```toml
//! id = "c3"
//! down = ["b2"]
//! message = "create books"
//! created = "2026-11-24T08:02:00Z"
//! ```

use retort_guest::prelude::*;

struct CreateBooks;

impl Revision for CreateBooks {
    fn upgrade() -> Result<()> {
        for sql in [
            "CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL \
             REFERENCES authors (id), title VARCHAR(200) NOT NULL)",
            "INSERT INTO books (id, author_id, title) VALUES (1, 1, 'Notes on the Analytical Engine')",
            "INSERT INTO books (id, author_id, title) VALUES (2, 2, 'A Manual of Operation for the Automatic Sequence Controlled Calculator')",
            "INSERT INTO books (id, author_id, title) VALUES (3, 3, 'A Discipline of Programming')",
            "INSERT INTO books (id, author_id, title) VALUES (4, 4, 'Abstraction and Specification in Program Development')",
        ] {
            execute(sql, params![])?;
        }
        Ok(())
    }

    fn downgrade() -> Result<()> {
        execute("DROP TABLE books", params![])?;
        Ok(())
    }
}

retort_guest::revision!(CreateBooks);
