//! Retort: database migrations whose revisions are sandboxed WebAssembly components.
//!
//! Start at [`Project`] and [`Database`]: open a project (from `retort.toml`, or from
//! components given in code), connect, plan, upgrade, downgrade, stamp, read the current
//! heads. Every gate lives behind those calls, so the `retort` command line (built on
//! them) can do nothing an embedding application cannot.
//!
//! The data path: [`config`] and the [`revision`] files give a [`graph`], whose plan
//! the [`migrate`] runner executes step by step: each revision runs in the [`sandbox`],
//! every call it makes becomes an [`op::Op`] that one executor validates, renders with
//! the [`dialect`] (SQLite's table rebuilds included) and runs through the [`backend`]
//! in one transaction with the ledger update, or writes into a script (`--sql`). What
//! each database engine does its own way lives in one module per engine (private:
//! `db`), so the public types name dialects, never engines' internals.

#![warn(missing_docs)]

pub mod autogen;
pub mod backend;
pub mod build;
mod cache;
#[doc(hidden)]
pub mod cli;
pub mod config;
mod db;
pub mod dialect;
pub mod graph;
pub mod integrity;
pub mod migrate;
pub mod op;
pub mod ops;
pub mod policy;
pub mod project;
pub mod revision;
pub mod sandbox;
mod schema;
pub mod testing;
mod wasi;

pub use migrate::{Applied, TransactionMode};
pub use ops::{Activity, ActivitySink, LogSink};
pub use project::{Database, Error, Project, RunOptions};

#[allow(missing_docs)] // generated from wit/migration.wit, documented there
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "revision",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        with: { "retort:migration/op.cursor": crate::ops::Cursor },
    });
}

/// The WIT types shared with guests (`retort:migration/types`).
pub mod wit {
    pub use crate::generated::retort::migration::types::*;
}
