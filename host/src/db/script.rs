//! The script target (`--sql`, dry runs): statements are written, not sent. No database
//! is opened; SQLite's table rebuilds read an in-memory model of the schema so far, and
//! MySQL/MariaDB's `MODIFY COLUMN` and constraint drops read [`crate::schema::Schema`].
//!
//! The in-memory model is brought up to date only when something reads it: executing
//! every statement costs what the database would (SQLite parses its whole schema again
//! after each `ALTER TABLE`, quadratic over a long history), and most histories never
//! rebuild a table. Statements the model refuses are found then, not as they are
//! written: `--sql` renders, the database validates (as with Alembic).

use std::str::FromStr;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteConnectOptions;

use super::{BoxFuture, Conn};
use crate::dialect::Dialect;
use crate::wit::Value;

/// A run that writes SQL instead of executing it.
pub(crate) struct Script {
    pub dialect: Dialect,
    /// Statements of the revision being rendered.
    pub statements: Vec<String>,
    /// False while replaying earlier revisions only to learn their schema.
    pub recording: bool,
    /// SQLite: the schema so far in an in-memory database, which table rebuilds read.
    model: Option<sqlx::SqliteConnection>,
    /// Statements written but not yet executed in `model`.
    pending: Vec<String>,
    /// MySQL/MariaDB: columns and constraints so far, for `MODIFY COLUMN` and drops.
    pub schema: crate::schema::Schema,
}

fn offline_error(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!(
        "{what} needs a database; none is opened with --sql"
    ))
}

impl Script {
    pub(crate) async fn new(dialect: Dialect) -> Result<Script, sqlx::Error> {
        let model = if super::capabilities(dialect).script_in_memory {
            Some(
                sqlx::ConnectOptions::connect(
                    &SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(false),
                )
                .await?,
            )
        } else {
            None
        };
        let mut script = Script {
            dialect,
            statements: Vec::new(),
            recording: false,
            model,
            pending: Vec::new(),
            schema: Default::default(),
        };
        // The model needs the ledger too, for the ledger writes each revision renders.
        // Nothing reads the model yet: these wait in `pending` like every statement.
        for sql in crate::backend::ledger_tables(dialect) {
            script.write(&sql).await?;
        }
        script.recording = true;
        Ok(script)
    }

    async fn write(&mut self, sql: &str) -> Result<u64, sqlx::Error> {
        if self.model.is_some() {
            self.pending.push(sql.to_owned());
        }
        if self.recording {
            self.statements.push(sql.to_owned());
        }
        Ok(0)
    }

    /// Executes the pending statements in the model, one at a time (a statement is never
    /// joined with the next: an unclosed comment in one cannot swallow another).
    async fn catch_up(&mut self) -> Result<(), sqlx::Error> {
        let Some(model) = &mut self.model else {
            return Ok(());
        };
        for sql in self.pending.drain(..) {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut *model)
                .await
                .map_err(|e| {
                    sqlx::Error::Protocol(format!(
                        "the schema model (SQLite in memory) refused an earlier statement \
                         ({e}): {}",
                        sql.lines().next().unwrap_or_default()
                    ))
                })?;
        }
        Ok(())
    }
}

impl Conn for Script {
    fn run<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(self.write(sql))
    }

    fn run_with<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let inlined = self
                .dialect
                .inline(sql, params)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            self.write(&inlined).await
        })
    }

    fn columns_of<'a>(
        &'a mut self,
        _sql: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
        Box::pin(async { Err(offline_error("a query")) })
    }

    fn rows<'a>(
        &'a mut self,
        _sql: &'a str,
        _skip: usize,
    ) -> BoxFuture<'a, Result<Vec<Vec<Value>>, sqlx::Error>> {
        Box::pin(async { Err(offline_error("reading rows")) })
    }

    fn strings<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, sqlx::Error>> {
        Box::pin(async move {
            self.catch_up().await?;
            let Some(model) = &mut self.model else {
                return Err(offline_error("reading the catalog"));
            };
            let mut query = sqlx::query(AssertSqlSafe(sql.to_owned()));
            for p in params {
                query = query.bind(p.to_string());
            }
            super::text_rows(&query.fetch_all(&mut *model).await?)
        })
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        Box::pin(async { Ok(()) })
    }

    fn in_transaction(&self) -> bool {
        false
    }

    fn is_script(&self) -> bool {
        true
    }

    fn script(&mut self) -> Option<&mut Script> {
        Some(self)
    }

    fn into_script(self: Box<Self>) -> Option<Box<Script>> {
        Some(self)
    }
}
