//! Benchmark guest: a data migration over every row of `items`. It reads the rows
//! through a cursor, computes each slug in the guest (what one `UPDATE` does with
//! `lower(replace(name, ' ', '-'))`) and writes them back a batch at a time: one
//! statement per 1,000 rows, joining the table with the batch's values.
//!
//! ```toml
//! id = "dslugs"
//! message = "slugs for every item"
//! ```

use retort_guest::prelude::*;

const BATCH: usize = 1000;

struct Slugs;

impl Revision for Slugs {
    fn upgrade() -> Result<()> {
        let postgres = dialect() == Dialect::Postgres;
        let mut batch: Vec<Value> = Vec::with_capacity(2 * BATCH);
        for row in query("SELECT id, name FROM items", params![])? {
            let row = row?;
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            batch.push(id.into());
            batch.push(name.to_lowercase().replace(' ', "-").into());
            if batch.len() == 2 * BATCH {
                write(postgres, std::mem::take(&mut batch))?;
            }
        }
        if !batch.is_empty() {
            write(postgres, batch)?;
        }
        Ok(())
    }

    fn downgrade() -> Result<()> {
        execute("UPDATE items SET slug = NULL", params![])?;
        Ok(())
    }
}

/// One statement for the batch: `WITH batch(id, slug) AS (VALUES ...) UPDATE ... FROM`.
fn write(postgres: bool, values: Vec<Value>) -> Result<()> {
    let mut sql = String::from("WITH batch(id, slug) AS (VALUES ");
    for i in 0..values.len() / 2 {
        if i > 0 {
            sql.push_str(", ");
        }
        if postgres {
            // PostgreSQL types a VALUES list from its first row.
            sql.push_str(&format!("(${}::bigint, ${}::text)", 2 * i + 1, 2 * i + 2));
        } else {
            sql.push_str("(?, ?)");
        }
    }
    sql.push_str(") UPDATE items SET slug = batch.slug FROM batch WHERE items.id = batch.id");
    execute(&sql, values)?;
    Ok(())
}

retort_guest::revision!(Slugs);
