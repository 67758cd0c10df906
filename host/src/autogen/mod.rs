//! Autogenerate and check (issue 15, in progress): the declared schema ([`declared`])
//! and the schema the history builds at head ([`history_model`], replayed offline with
//! no database) as [`model::Model`]s, their difference as ops ([`diff`]), its exact
//! inverse ([`inverse`]) and both written as a revision's source ([`write`](mod@write)).

pub mod declared;
pub mod diff;
pub mod inverse;
pub mod live;
pub mod model;
pub mod write;

use std::path::PathBuf;

use crate::config::Config;
use crate::dialect::Dialect;
use crate::graph;
use crate::migrate::{History, MigrateError, ScriptPlan};
use crate::ops::LogSink;

/// Why the schemas cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum AutogenError {
    /// `retort.toml` names no declared schema.
    #[error("no declared schema: add `[autogenerate] schema = \"schema.sql\"` to retort.toml")]
    NoSchema,
    /// The declared schema's file cannot be read.
    #[error("cannot read the declared schema {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The declared schema is not one the model holds.
    #[error("{path}: {source}")]
    Declared {
        /// The file.
        path: PathBuf,
        /// Why.
        source: declared::DeclaredError,
    },
    /// A database's catalog describes a schema the model cannot read.
    #[error("reading the schema of {url}: {why}")]
    Catalog {
        /// The database (secrets masked).
        url: String,
        /// Why, with the DDL read.
        why: String,
    },
    /// Reading the catalog failed.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// Replaying the history failed.
    #[error("replaying the history: {0}")]
    Replay(#[from] MigrateError),
    /// An op does not apply to the schema its predecessors built.
    #[error("{what}: {source}")]
    Model {
        /// Where (the declared schema, or a revision).
        what: String,
        /// Why.
        source: model::ModelError,
    },
}

/// The declared schema of the project, read in `dialect`.
pub fn declared_model(config: &Config, dialect: Dialect) -> Result<model::Model, AutogenError> {
    let path = config.schema_file().ok_or(AutogenError::NoSchema)?;
    let sql = std::fs::read_to_string(&path).map_err(|source| AutogenError::Read {
        path: path.clone(),
        source,
    })?;
    let ops = declared::parse(&sql, dialect).map_err(|source| AutogenError::Declared {
        path: path.clone(),
        source,
    })?;
    model::Model::from_ops(dialect, &ops).map_err(|source| AutogenError::Model {
        what: path.display().to_string(),
        source,
    })
}

/// The schema the history builds at its heads, replayed offline (as `upgrade heads
/// --sql` runs it: no database), folded from each revision's ops.
pub async fn history_model(
    config: &Config,
    history: &History,
    dialect: Dialect,
) -> Result<model::Model, AutogenError> {
    let g = &history.graph;
    let heads = g.upgrade_target("heads", &[]).map_err(MigrateError::from)?;
    let plan = ScriptPlan {
        dialect,
        start: Vec::new(),
        steps: graph::plan_upgrade(g, &[], &heads),
        command: "upgrade",
    };
    let quiet: LogSink = std::sync::Arc::new(|_, _, _| {});
    let rendered = crate::migrate::run_script(config, history, &plan, quiet).await?;
    let mut model = model::Model::default();
    for applied in &rendered.applied {
        for op in &applied.ops {
            model
                .apply(dialect, op)
                .map_err(|source| AutogenError::Model {
                    what: format!("revision {}", applied.revision),
                    source,
                })?;
        }
    }
    Ok(model)
}
