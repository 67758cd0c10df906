//! Retort: database migrations whose revisions are sandboxed WebAssembly components.
//!
//! The data path: [`config`] and the [`revision`] files give a [`graph`], whose plan
//! the [`migrate`] runner executes step by step: each revision runs in the [`sandbox`],
//! its ops are rendered by [`dialect`] (and [`rebuild`] for SQLite's table rebuilds)
//! and run by the [`backend`] in one transaction with the ledger update.

pub mod backend;
pub mod build;
mod cache;
pub mod cli;
pub mod config;
pub mod dialect;
pub mod graph;
pub mod integrity;
pub mod migrate;
pub mod op;
pub mod ops;
pub mod policy;
pub mod project;
mod rebuild;
pub mod revision;
pub mod sandbox;
mod schema;
pub mod testing;
mod wasi;

pub use migrate::{Applied, TransactionMode};
pub use project::{Database, Error, Project, RunOptions};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "revision",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize],
        with: { "retort:migration/op.cursor": crate::ops::Cursor },
    });
}

/// The WIT types shared with guests (`retort:migration/types`).
pub mod wit {
    pub use crate::generated::retort::migration::types::*;
}
