//! Write Retort revisions in Rust.
//!
//! A revision is a type implementing [`Revision`], exported with [`revision!`]. Every
//! change goes through the host, which validates identifiers, renders SQL for the target
//! dialect and sends every value as a bound parameter.
//!
//! ```no_run
//! use retort_guest::prelude::*;
//!
//! struct CreateUsers;
//!
//! impl Revision for CreateUsers {
//!     fn upgrade() -> Result<()> {
//!         create_table(
//!             Table::new("users")
//!                 .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
//!                 .column(Column::new("email", SqlType::Varchar(100)).not_null().unique()),
//!         )?;
//!         execute("INSERT INTO users (email) VALUES (?)", params!["ada@example.com"])?;
//!         Ok(())
//!     }
//!
//!     fn downgrade() -> Result<()> {
//!         drop_table("users")
//!     }
//! }
//!
//! retort_guest::revision!(CreateUsers);
//! ```

mod ops;
mod rows;
mod schema;

pub use ops::{
    add_column, alter_column, bulk_insert, create_check_constraint, create_foreign_key,
    create_index, create_table, create_unique_constraint, dialect, drop_column, drop_constraint,
    drop_index, drop_table, execute, is_offline, log, query, rename_table,
};
pub use rows::{ColumnIndex, FromValue, Row, Rows};
pub use schema::{Alter, CheckConstraint, Column, ForeignKey, Index, Table, UniqueConstraint};

pub use bindings::retort::migration::types::{
    Error as DbError, LogLevel, ReferentialAction, SqlDialect as Dialect, SqlType, Value,
};

use std::fmt;

/// What a revision returns: a database error the host reported, or the author's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The host refused or the database failed an operation.
    Db(DbError),
    /// A message from the revision itself.
    Message(String),
}

impl Error {
    /// An error with a message of the revision's own.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Message(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Message(m) => f.write_str(m),
            Error::Db(e) => match e {
                DbError::NotFound(m) => write!(f, "not found: {m}"),
                DbError::AlreadyExists(m) => write!(f, "already exists: {m}"),
                DbError::ConstraintViolation(m) => write!(f, "constraint violation: {m}"),
                DbError::Denied(m) => write!(f, "denied: {m}"),
                DbError::Unsupported(m) => write!(f, "unsupported: {m}"),
                DbError::Offline => f.write_str("no rows can be read in offline (--sql) mode"),
                DbError::Database(m) => write!(f, "database error: {m}"),
            },
        }
    }
}

impl std::error::Error for Error {}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        Error::Db(e)
    }
}

/// The result of every operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One revision: how to apply it and how to revert it.
pub trait Revision {
    /// Applies the revision.
    fn upgrade() -> Result<()>;
    /// Reverts what [`Revision::upgrade`] did.
    fn downgrade() -> Result<()>;
}

/// Everything a revision usually needs.
pub mod prelude {
    pub use crate::{
        Alter, CheckConstraint, Column, DbError, Dialect, Error, ForeignKey, Index, LogLevel,
        ReferentialAction, Result, Revision, Row, SqlType, Table, UniqueConstraint, Value,
        add_column, alter_column, bulk_insert, create_check_constraint, create_foreign_key,
        create_index, create_table, create_unique_constraint, dialect, drop_column,
        drop_constraint, drop_index, drop_table, execute, is_offline, log, params, query,
        rename_table,
    };
}

/// A `Vec<Value>` from anything that converts into [`Value`].
///
/// `params![1, "text", None::<i64>]`
#[macro_export]
macro_rules! params {
    () => { ::std::vec::Vec::<$crate::Value>::new() };
    ($($v:expr),+ $(,)?) => { ::std::vec![$($crate::Value::from($v)),+] };
}

/// Exports a [`Revision`] implementation as the component's `upgrade` and `downgrade`.
#[macro_export]
macro_rules! revision {
    ($ty:ty) => {
        const _: () = {
            struct __RetortExport;
            impl $crate::__private::Guest for __RetortExport {
                fn upgrade() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::run(<$ty as $crate::Revision>::upgrade)
                }
                fn downgrade() -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::run(<$ty as $crate::Revision>::downgrade)
                }
            }
            $crate::bindings::__export_revision_world!(__RetortExport with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "revision",
        pub_export_macro: true,
        export_macro_name: "__export_revision_world",
        default_bindings_module: "retort_guest::bindings",
        additional_derives: [PartialEq],
    });
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::Guest;

    /// Runs one direction of a revision, reporting a panic's message to the host
    /// before the panic aborts the instance.
    pub fn run(f: fn() -> crate::Result<()>) -> Result<(), String> {
        std::panic::set_hook(Box::new(|info| {
            crate::log(crate::LogLevel::Error, &format!("panic: {info}"));
        }));
        f().map_err(|e| e.to_string())
    }
}
