//! The `retort` command line: parse, call the library, print.
//!
//! Human output and errors go to stderr, `--format json` output to stdout.
//! Exit codes: 0 success, 1 failure, 2 usage or configuration error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::backend::Backend;
use crate::build;
use crate::config::{self, Config};
use crate::dialect::Dialect;
use crate::graph::{Direction, Graph, Step};
use crate::integrity;
use crate::migrate::{Applied, History, Migrator, TransactionMode};
use crate::ops::LogSink;
use crate::revision::{self, Metadata};
use crate::wit::LogLevel;

#[derive(Debug, Parser)]
#[command(
    name = "retort",
    version,
    about = "Database migrations as sandboxed WebAssembly components"
)]
pub struct Cli {
    /// The config file.
    #[arg(short, long, global = true, env = "RETORT_CONFIG", default_value = config::FILE_NAME)]
    pub config: PathBuf,
    /// Database URL, over the config file (also RETORT_DATABASE_URL; DATABASE_URL is the
    /// last fallback).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Output format of read commands: text (stderr) or json (stdout).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Seconds to wait for the migration lock another deployer holds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

/// `--lang`: the library's [`crate::build::Lang`], as clap reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LangArg {
    Rust,
    Python,
    Js,
    C,
}

impl From<LangArg> for crate::build::Lang {
    fn from(l: LangArg) -> Self {
        use crate::build::Lang;
        match l {
            LangArg::Rust => Lang::Rust,
            LangArg::Python => Lang::Python,
            LangArg::Js => Lang::Js,
            LangArg::C => Lang::C,
        }
    }
}

/// `--transaction`: the library's [`TransactionMode`], as clap reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TransactionArg {
    /// Each revision in its own transaction, with its ledger update (the default).
    #[default]
    PerRevision,
    /// The whole run in one transaction: all revisions or none (SQLite, PostgreSQL).
    All,
}

impl From<TransactionArg> for TransactionMode {
    fn from(t: TransactionArg) -> Self {
        match t {
            TransactionArg::PerRevision => TransactionMode::PerRevision,
            TransactionArg::All => TransactionMode::All,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create retort.toml and a migrations folder with a revision template.
    Init {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Write a new Rust revision source after the current head.
    Revision {
        #[arg(short, long)]
        message: String,
        /// The revision id (default: 12 random hex digits).
        #[arg(long)]
        rev_id: Option<String>,
        /// The down revision instead of the head: REV, BRANCH@head, or base for a new
        /// independent base (repeat for several).
        #[arg(long = "head")]
        head: Vec<String>,
        /// Allow --head to name a revision that is not a head (start a branch from it).
        #[arg(long)]
        splice: bool,
        /// A branch label for the new revision (repeatable).
        #[arg(long = "branch-label")]
        branch_label: Vec<String>,
        /// A revision or branch label this one depends on (repeatable).
        #[arg(long = "depends-on")]
        depends_on: Vec<String>,
        /// The source's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: LangArg,
    },
    /// Write a revision that merges two or more heads.
    Merge {
        /// The revisions to merge (e.g. `heads`, or two ids).
        #[arg(required = true)]
        revisions: Vec<String>,
        #[arg(short, long)]
        message: String,
        #[arg(long)]
        rev_id: Option<String>,
        #[arg(long = "branch-label")]
        branch_label: Vec<String>,
    },
    /// Build every revision source into a revision component.
    Build,
    /// Make any component a revision by adding Retort's metadata.
    Pack {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        rev_id: String,
        #[arg(long = "down")]
        down: Vec<String>,
        #[arg(long = "depends-on")]
        depends_on: Vec<String>,
        #[arg(long = "branch-label")]
        branch_label: Vec<String>,
        #[arg(short, long)]
        message: String,
        /// The revision must run outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
        #[arg(long)]
        no_transaction: bool,
    },
    /// Apply revisions up to REV: head, heads, an id or prefix, +N (with --sql, FROM:TO).
    Upgrade {
        #[arg(default_value = "head")]
        revision: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run even though an applied revision's component changed since it ran.
        #[arg(long)]
        allow_modified: bool,
        /// One transaction per revision, or one for the whole run (SQLite, PostgreSQL).
        #[arg(long, value_enum, default_value_t)]
        transaction: TransactionArg,
        /// Show the wasm backtrace of a trap.
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        offline: Offline,
    },
    /// Revert revisions down to REV: base, an id or prefix, -N (with --sql, FROM:TO).
    Downgrade {
        #[arg(allow_hyphen_values = true)]
        revision: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run even though an applied revision's component changed since it ran.
        #[arg(long)]
        allow_modified: bool,
        /// One transaction per revision, or one for the whole run (SQLite, PostgreSQL).
        #[arg(long, value_enum, default_value_t)]
        transaction: TransactionArg,
        /// Show the wasm backtrace of a trap.
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        offline: Offline,
    },
    /// The database's applied heads.
    Current {
        /// Exit 1 unless the database is at every head (a deploy gate).
        #[arg(long)]
        check_heads: bool,
        #[arg(short, long)]
        verbose: bool,
    },
    /// Revisions, newest first, with a text graph.
    History {
        /// A range START:END (either side may be empty; `current`, `base`, `heads`).
        #[arg(short = 'r', long = "rev-range", allow_hyphen_values = true)]
        range: Option<String>,
        #[arg(short, long)]
        verbose: bool,
        /// Mark the database's current revisions (connects to it).
        #[arg(short, long)]
        indicate_current: bool,
    },
    /// The revisions no other revision follows.
    Heads {
        #[arg(short, long)]
        verbose: bool,
        /// Do not count revisions that others depend on as heads.
        #[arg(long)]
        resolve_dependencies: bool,
    },
    /// Branch points: revisions followed by more than one revision.
    Branches {
        #[arg(short, long)]
        verbose: bool,
    },
    /// One revision's metadata.
    Show { revision: String },
    /// Report applied revisions whose component changed or disappeared (exit 1), or with
    /// --sum, files that differ from the sum file (no database needed).
    Verify {
        #[arg(long)]
        sum: bool,
    },
    /// Write the sum file (retort.sum) over the components directory.
    Sum,
    /// A revision's metadata, digest, size, imports and exports, from an id or a file.
    Inspect { target: String },
    /// Set the version table to REV... without running any revision.
    Stamp {
        #[arg(required = true)]
        revisions: Vec<String>,
        /// Delete every row first, even ones naming unknown revisions.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        offline: Offline,
    },
}

/// `--sql` and `--dialect`: render a script instead of touching a database.
#[derive(Debug, Clone, clap::Args)]
pub struct Offline {
    /// Print the SQL to stdout instead of running it; no database is opened.
    #[arg(long)]
    sql: bool,
    /// The dialect of the script (default: the database URL's scheme).
    #[arg(long, value_enum, requires = "sql")]
    dialect: Option<DialectArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    Sqlite,
    Postgres,
    Mysql,
}

impl Offline {
    /// The dialect of an offline run, if this is one.
    fn dialect(&self, config: &Config, url: Option<&str>) -> Result<Option<Dialect>, Failure> {
        if !self.sql {
            return Ok(None);
        }
        if let Some(d) = self.dialect {
            return Ok(Some(match d {
                DialectArg::Sqlite => Dialect::Sqlite,
                DialectArg::Postgres => Dialect::Postgres,
                DialectArg::Mysql => Dialect::Mysql,
            }));
        }
        let url = config.database_url(url).map_err(|_| {
            usage(anyhow::anyhow!(
                "--sql needs --dialect sqlite|postgres|mysql, or a database URL to take it from"
            ))
        })?;
        Dialect::from_url(&url).map(Some).ok_or_else(|| {
            usage(anyhow::anyhow!(
                "cannot tell the dialect of {url:?}: pass --dialect"
            ))
        })
    }
}

/// How a command failed: a usage/config problem (exit 2) or anything else (exit 1).
struct Failure {
    usage: bool,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            usage: false,
            error: e.into(),
        }
    }
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        usage: true,
        error: e.into(),
    }
}

/// Parses the arguments, runs the command, prints the error chain once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let top = failure.error.to_string();
            eprintln!("error: {top}");
            for cause in failure.error.chain().skip(1) {
                // A trap's first line is on the top line already (migrate::StepFailure).
                let cause = cause.to_string();
                let said = cause.strip_prefix("trapped: ").unwrap_or(&cause);
                if !top.contains(said) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(if failure.usage { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Init { dir } = &cli.command {
        return init(dir);
    }
    let config = Config::load(&cli.config).map_err(usage)?;
    let json_out = cli.format == Format::Json;
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Revision {
            message,
            rev_id,
            head,
            splice,
            branch_label,
            depends_on,
            lang,
        } => {
            let request = build::NewRevision {
                message,
                id: rev_id,
                heads: head,
                splice,
                branch_labels: branch_label,
                depends_on,
                lang: Some(lang.into()),
            };
            scaffold(&config, &request, json_out)?;
        }
        Command::Merge {
            revisions,
            message,
            rev_id,
            branch_label,
        } => {
            let request = build::NewRevision {
                message,
                id: rev_id,
                heads: revisions,
                splice: false,
                branch_labels: branch_label,
                depends_on: Vec::new(),
                lang: None,
            };
            scaffold(&config, &request, json_out)?;
        }
        Command::Build => {
            let built = build::build(&config, false)?;
            for b in &built {
                let state = if b.changed { "built" } else { "unchanged" };
                eprintln!(
                    "{state:>9} {} -> {} ({} bytes)",
                    b.id,
                    b.component.display(),
                    b.size
                );
            }
            if built.is_empty() {
                eprintln!("no revision sources in {}", config.sources_dir().display());
            }
            if json_out {
                println!("{}", serde_json::to_string(&built)?);
            }
        }
        Command::Pack {
            input,
            output,
            rev_id,
            down,
            depends_on,
            branch_label,
            message,
            no_transaction,
        } => {
            let bytes = std::fs::read(&input).map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot read {}", input.display()))
            })?;
            let mut meta = Metadata::new(rev_id, message);
            meta.down = down;
            meta.depends_on = depends_on;
            meta.branch_labels = branch_label;
            meta.transactional = !no_transaction;
            let packed = revision::pack(&bytes, &meta, &input)?;
            std::fs::write(&output, &packed).map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot write {}", output.display()))
            })?;
            eprintln!(
                "packed {} as revision {} -> {}",
                input.display(),
                meta.id,
                output.display()
            );
        }
        Command::History {
            range,
            verbose,
            indicate_current,
        } => {
            let history = History::load(&config.components_dir())?;
            let graph = &history.graph;
            let current =
                if indicate_current || range.as_deref().is_some_and(|r| r.contains("current")) {
                    let backend = connect(&config, cli.url.as_deref(), cli.lock_timeout).await?;
                    let heads = backend.heads().await?;
                    backend.close().await;
                    heads
                } else {
                    Vec::new()
                };
            let nodes = match &range {
                None => graph.ordered().rev().collect(),
                Some(range) => {
                    let (start, end) = range.split_once(':').ok_or_else(|| {
                        usage(anyhow::anyhow!(
                            "a range is START:END, e.g. base:head or ae10:"
                        ))
                    })?;
                    let start = match start {
                        "" | "base" => None,
                        "current" => match current.as_slice() {
                            [one] => Some(one.as_str()),
                            [] => None,
                            _ => {
                                return Err(usage(anyhow::anyhow!(
                                    "the database has several heads; name one as START"
                                )));
                            }
                        },
                        s => Some(graph.lookup(s)?),
                    };
                    let end = match end {
                        "" | "heads" => None,
                        "current" => Some(current.clone()),
                        e => Some(graph.upgrade_target(e, &[])?),
                    };
                    graph.range(start, end.as_deref())?
                }
            };
            if json_out {
                let entries: Vec<&Metadata> = nodes.iter().map(|n| &n.meta).collect();
                println!("{}", serde_json::to_string(&entries)?);
            } else {
                let lines: Vec<String> = nodes
                    .iter()
                    .map(|n| {
                        let mut line = history_line(graph, &n.meta);
                        if current.contains(&n.meta.id) {
                            line.push_str(" (current)");
                        }
                        if verbose {
                            line = describe(graph, &history.revisions[&n.meta.id], &line);
                        }
                        line
                    })
                    .collect();
                for line in text_graph(&nodes, &lines) {
                    eprintln!("{line}");
                }
            }
        }
        Command::Heads {
            verbose,
            resolve_dependencies,
        } => {
            let history = History::load(&config.components_dir())?;
            let graph = &history.graph;
            let heads = if resolve_dependencies {
                graph.heads_resolving_dependencies()
            } else {
                graph.heads()
            };
            if json_out {
                let rows: Vec<_> = heads
                    .iter()
                    .map(|h| json!({ "revision": h, "branch_labels": graph.labels_of(h), "message": graph.get(h).map(|n| &n.meta.message) }))
                    .collect();
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for h in heads {
                    let line = history_line(graph, &graph.get(h).expect("head exists").meta);
                    if verbose {
                        eprintln!("{}", describe(graph, &history.revisions[h], &line));
                    } else {
                        eprintln!("{}", head_line(graph, h));
                    }
                }
            }
        }
        Command::Branches { verbose } => {
            let history = History::load(&config.components_dir())?;
            let graph = &history.graph;
            let points = graph.branch_points();
            if json_out {
                let rows: Vec<_> = points
                    .iter()
                    .map(|(id, children)| json!({ "revision": id, "children": children }))
                    .collect();
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for (id, children) in points {
                    let meta = &graph.get(id).expect("exists").meta;
                    eprintln!("{id} (branchpoint), {}", meta.message);
                    for child in children {
                        let c = &graph.get(child).expect("exists").meta;
                        let line = format!("    -> {child}, {}", c.message);
                        if verbose {
                            eprintln!("{}", describe(graph, &history.revisions[child], &line));
                        } else {
                            eprintln!("{line}");
                        }
                    }
                }
            }
        }
        Command::Show { revision } => {
            let history = History::load(&config.components_dir())?;
            let graph = &history.graph;
            let id = graph.lookup(&revision)?;
            let rev = &history.revisions[id];
            if json_out {
                println!(
                    "{}",
                    json!({
                        "metadata": rev.meta,
                        "path": rev.path,
                        "sha256": rev.sha256,
                        "size": rev.size,
                        "head": graph.heads().contains(&id),
                        "branches": graph.labels_of(id),
                        "children": graph.get(id).map(|n| &n.children),
                    })
                );
            } else {
                eprintln!("{}", describe(graph, rev, &history_line(graph, &rev.meta)));
            }
        }
        Command::Current {
            check_heads,
            verbose,
        } => {
            let history = History::load(&config.components_dir())?;
            let graph = &history.graph;
            let backend = connect(&config, cli.url.as_deref(), cli.lock_timeout).await?;
            let heads = backend.heads().await?;
            let failure = backend.unresolved_failure().await?;
            backend.close().await;
            if let Some(f) = &failure {
                eprintln!(
                    "FAILED: revision {} failed to {} and may be partly applied; resolve with `retort stamp`:\n  {}",
                    f.revision,
                    f.verb(),
                    f.detail
                );
            }
            let graph_heads = graph.heads();
            if json_out {
                let rows: Vec<_> = heads
                    .iter()
                    .map(|h| {
                        json!({
                            "revision": h,
                            "head": graph_heads.contains(&h.as_str()),
                            "message": graph.get(h).map(|n| n.meta.message.clone()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string(&rows)?);
            } else if heads.is_empty() {
                eprintln!("(base): no revision applied to {}", backend.url());
            } else {
                for h in &heads {
                    match (graph.get(h), verbose) {
                        (Some(_), true) => eprintln!(
                            "{}",
                            describe(graph, &history.revisions[h], &head_line(graph, h))
                        ),
                        (Some(_), false) => eprintln!("{}", head_line(graph, h)),
                        (None, _) => {
                            eprintln!("{h} (not in {})", config.components_dir().display())
                        }
                    }
                }
            }
            if check_heads {
                let missing: Vec<&str> = graph_heads
                    .iter()
                    .copied()
                    .filter(|h| !heads.iter().any(|c| c == h))
                    .collect();
                if !missing.is_empty() {
                    return Err(anyhow::anyhow!(
                        "the database is not at head: {} not applied (run `retort upgrade heads`)",
                        missing.join(", ")
                    )
                    .into());
                }
            }
        }
        Command::Verify { sum } => {
            let problems = if sum {
                integrity::check_sum(&config.components_dir()).map_err(|e| {
                    anyhow::Error::new(e)
                        .context(format!("cannot read {}", config.components_dir().display()))
                })?
            } else {
                let history = History::load(&config.components_dir())?;
                let backend = connect(&config, cli.url.as_deref(), cli.lock_timeout).await?;
                let applied = backend.applied_digests().await?;
                backend.close().await;
                integrity::check_applied(&history, &applied)
            };
            if json_out {
                println!("{}", serde_json::to_string(&problems)?);
            }
            for p in &problems {
                eprintln!("{p}");
            }
            if !problems.is_empty() {
                return Err(anyhow::anyhow!("verify found {} problem(s)", problems.len()).into());
            }
            eprintln!("ok: nothing changed");
        }
        Command::Sum => {
            let dir = config.components_dir();
            integrity::write_sum(&dir).map_err(|e| {
                anyhow::Error::new(e)
                    .context(format!("cannot write the sum file in {}", dir.display()))
            })?;
            eprintln!("wrote {}", dir.join(integrity::SUM_FILE).display());
        }
        Command::Inspect { target } => {
            let path = if Path::new(&target).is_file() {
                PathBuf::from(&target)
            } else {
                let history = History::load(&config.components_dir())?;
                let id = history.graph.lookup(&target)?;
                history.revisions[id].path.clone()
            };
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
            })?;
            let meta = revision::read_metadata(&bytes, &path).ok();
            let interface = revision::interface(&bytes, &path)?;
            let report = json!({
                "path": path,
                "sha256": revision::sha256_hex(&bytes),
                "size": bytes.len(),
                "metadata": meta,
                "world": interface.world(),
                "needs_wasi": interface.needs_wasi(),
                "imports": interface.imports,
                "exports": interface.exports,
            });
            if json_out {
                println!("{report}");
            } else {
                eprintln!("Path: {}", path.display());
                match &meta {
                    Some(m) => eprintln!(
                        "Revision: {} ({}), down: {}",
                        m.id,
                        m.message,
                        if m.down.is_empty() {
                            "<base>".into()
                        } else {
                            m.down.join(", ")
                        }
                    ),
                    None => eprintln!(
                        "Revision: none (no retort:revision section; `retort pack` adds one)"
                    ),
                }
                eprintln!("SHA-256: {}", report["sha256"].as_str().unwrap_or_default());
                eprintln!("Size: {} bytes", bytes.len());
                eprintln!(
                    "World: {}",
                    interface
                        .world()
                        .unwrap_or_else(|| "not a Retort revision world".into())
                );
                eprintln!(
                    "Needs WASI: {}",
                    if interface.needs_wasi() { "yes" } else { "no" }
                );
                eprintln!("Imports: {}", interface.imports.join(", "));
                eprintln!("Exports: {}", interface.exports.join(", "));
            }
        }
        Command::Stamp {
            revisions,
            purge,
            offline,
        } => {
            let history = History::load(&config.components_dir())?;
            if let Some(d) = offline.dialect(&config, cli.url.as_deref())? {
                let heads = history.graph.stamp_target(&revisions, &[])?;
                print!("{}", crate::migrate::render_stamp(d, &heads).await?);
                return Ok(());
            }
            let backend = connect(&config, cli.url.as_deref(), cli.lock_timeout).await?;
            // With --purge, whatever the table holds is replaced unread.
            let current = if purge {
                Vec::new()
            } else {
                backend.heads().await?
            };
            let heads = history.graph.stamp_target(&revisions, &current)?;
            backend.stamp(&heads).await?;
            backend.close().await;
            eprintln!(
                "Stamped {} as {}",
                backend.url(),
                if heads.is_empty() {
                    "base".into()
                } else {
                    heads.join(", ")
                }
            );
            if json_out {
                println!("{}", serde_json::to_string(&heads)?);
            }
        }
        Command::Upgrade {
            revision,
            dry_run,
            allow_modified,
            transaction,
            verbose,
            offline,
        } => {
            let run = Run {
                dry_run,
                allow_modified,
                json_out,
                transaction,
                lock_secs: cli.lock_timeout,
                verbose,
            };
            move_to(
                &config,
                cli.url.as_deref(),
                &revision,
                Direction::Up,
                run,
                &offline,
            )
            .await?;
        }
        Command::Downgrade {
            revision,
            dry_run,
            allow_modified,
            transaction,
            verbose,
            offline,
        } => {
            let run = Run {
                dry_run,
                allow_modified,
                json_out,
                transaction,
                lock_secs: cli.lock_timeout,
                verbose,
            };
            move_to(
                &config,
                cli.url.as_deref(),
                &revision,
                Direction::Down,
                run,
                &offline,
            )
            .await?;
        }
    }
    Ok(())
}

/// `down -> id (head) (label), message`, Alembic's history line.
fn history_line(graph: &Graph, meta: &Metadata) -> String {
    let down = if meta.down.is_empty() {
        "<base>".to_owned()
    } else {
        meta.down.join(", ")
    };
    format!("{down} -> {}, {}", tagged(graph, &meta.id), meta.message)
}

/// `id (head) (label)`, Alembic's heads line.
fn head_line(graph: &Graph, id: &str) -> String {
    let message = graph.get(id).map_or("", |n| n.meta.message.as_str());
    format!("{}, {message}", tagged(graph, id))
}

fn tagged(graph: &Graph, id: &str) -> String {
    let mut out = id.to_owned();
    let node = graph.get(id);
    if node.is_some_and(|n| n.children.is_empty()) {
        out.push_str(" (head)");
    }
    if node.is_some_and(|n| n.children.len() > 1) {
        out.push_str(" (branchpoint)");
    }
    if node.is_some_and(|n| n.meta.down.len() > 1) {
        out.push_str(" (mergepoint)");
    }
    for label in graph.labels_of(id) {
        out.push_str(&format!(" ({label})"));
    }
    out
}

/// A revision in full, under a heading line.
fn describe(graph: &Graph, rev: &revision::Revision, heading: &str) -> String {
    let m = &rev.meta;
    let node = graph.get(&m.id);
    let mut out = format!("{heading}\n");
    out.push_str(&format!("  Rev: {}\n", tagged(graph, &m.id)));
    out.push_str(&format!(
        "  Parent: {}\n",
        if m.down.is_empty() {
            "<base>".into()
        } else {
            m.down.join(", ")
        }
    ));
    if let Some(n) = node.filter(|n| !n.children.is_empty()) {
        out.push_str(&format!("  Children: {}\n", n.children.join(", ")));
    }
    if !m.depends_on.is_empty() {
        out.push_str(&format!("  Depends on: {}\n", m.depends_on.join(", ")));
    }
    if !m.branch_labels.is_empty() {
        out.push_str(&format!("  Branch names: {}\n", m.branch_labels.join(", ")));
    }
    out.push_str(&format!("  Path: {}\n", rev.path.display()));
    out.push_str(&format!("  SHA-256: {}\n", rev.sha256));
    out.push_str(&format!("  Size: {} bytes\n", rev.size));
    out.push_str(&format!("  Created: {}\n", m.created));
    out.push_str(&format!("\n      {}\n", m.message));
    out
}

/// Draws the revisions (newest first) as lanes, one `*` per revision, `|` for the
/// branches it passes: a text view of forks and merges.
fn text_graph(nodes: &[&crate::graph::Node], lines: &[String]) -> Vec<String> {
    let mut lanes: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (node, line) in nodes.iter().zip(lines) {
        let id = &node.meta.id;
        let col = match lanes.iter().position(|l| l == id) {
            Some(c) => c,
            None => {
                lanes.push(id.clone());
                lanes.len() - 1
            }
        };
        let marks: Vec<&str> = lanes
            .iter()
            .enumerate()
            .map(|(i, _)| if i == col { "*" } else { "|" })
            .collect();
        let prefix = marks.join(" ");
        let mut rows = line.lines();
        out.push(format!("{prefix}  {}", rows.next().unwrap_or_default()));
        // Lanes that waited for this revision join it; its parents take its place.
        lanes.retain(|l| l != id);
        let mut at = col.min(lanes.len());
        for parent in &node.meta.down {
            if !lanes.contains(parent) {
                lanes.insert(at, parent.clone());
                at += 1;
            }
        }
        let pad = "| ".repeat(lanes.len());
        for row in rows {
            out.push(format!("{pad} {row}"));
        }
    }
    out
}

/// How `upgrade`/`downgrade` run.
#[derive(Debug, Clone, Copy)]
struct Run {
    dry_run: bool,
    allow_modified: bool,
    json_out: bool,
    transaction: TransactionArg,
    lock_secs: u64,
    /// Traps with their wasm backtrace.
    verbose: bool,
}

/// `upgrade` or `downgrade`: a script with --sql, else a run against the database.
async fn move_to(
    config: &Config,
    url: Option<&str>,
    target: &str,
    direction: Direction,
    run: Run,
    offline: &Offline,
) -> Result<(), Failure> {
    match offline.dialect(config, url)? {
        Some(d) => render(config, d, target, direction).await,
        None => migrate(config, url, target, direction, run).await,
    }
}

/// Guest log lines go to stderr, attributed to their revision.
fn guest_log() -> LogSink {
    Arc::new(|revision: &str, level: LogLevel, message: &str| {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("  [{revision}] {level}: {message}");
    })
}

/// `upgrade --sql` / `downgrade --sql`: the script on stdout, no database opened.
async fn render(
    config: &Config,
    dialect: Dialect,
    range: &str,
    direction: Direction,
) -> Result<(), Failure> {
    let history = History::load(&config.components_dir())?;
    let graph = &history.graph;
    let (from, to) = match (range.split_once(':'), direction) {
        (Some((from, to)), _) => (from, to),
        (None, Direction::Up) => ("base", range),
        (None, Direction::Down) => {
            return Err(usage(anyhow::anyhow!(
                "downgrade --sql needs a range FROM:TO (e.g. head:base): there is no database to start from"
            )));
        }
    };
    let start = match from {
        "" | "base" => Vec::new(),
        spec => graph.upgrade_target(spec, &[])?,
    };
    let steps = match direction {
        Direction::Up => {
            let target = graph.upgrade_target(to, &start)?;
            crate::graph::plan_upgrade(graph, &start, &target)
        }
        Direction::Down => {
            crate::graph::plan_downgrade(graph, &graph.downgrade_removal(to, &start)?)
        }
    };
    let log = guest_log();
    let plan = crate::migrate::ScriptPlan {
        dialect,
        start,
        steps,
        command: match direction {
            Direction::Up => "upgrade",
            Direction::Down => "downgrade",
        },
    };
    let script = crate::migrate::render_script(config, &history, &plan, log).await?;
    print!("{script}");
    Ok(())
}

/// Writes a revision source for `revision` or `merge`.
fn scaffold(config: &Config, request: &build::NewRevision, json_out: bool) -> Result<(), Failure> {
    let path = build::scaffold(config, request)?;
    eprintln!("Generating {} ... done", path.display());
    if json_out {
        println!("{}", json!({ "path": path }));
    }
    Ok(())
}

async fn connect(config: &Config, url: Option<&str>, lock_secs: u64) -> Result<Backend, Failure> {
    let url = config.database_url(url).map_err(usage)?;
    let timeout = config.file.sandbox.timeout_secs;
    let session = crate::backend::Session {
        lock_timeout: std::time::Duration::from_secs(lock_secs),
        call_limit: (timeout > 0).then(|| std::time::Duration::from_secs(timeout)),
    };
    Backend::connect_with(&url, session)
        .await
        .map_err(|e| match e {
            // A URL Retort cannot use is the configuration's fault, like a missing one.
            e @ crate::backend::BackendError::Scheme { .. } => usage(e),
            e => e.into(),
        })
}

async fn migrate(
    config: &Config,
    url: Option<&str>,
    target: &str,
    direction: Direction,
    run: Run,
) -> Result<(), Failure> {
    let Run {
        dry_run,
        allow_modified,
        json_out,
        transaction,
        lock_secs,
        verbose,
    } = run;
    let history = History::load(&config.components_dir())?;
    let backend = connect(config, url, lock_secs).await?;
    let log = guest_log();
    let progress = Box::new(
        |step: &Step, rev: &revision::Revision, done: Option<&Applied>| match done {
            None => {
                let down = if rev.meta.down.is_empty() {
                    "<base>".to_owned()
                } else {
                    rev.meta.down.join(", ")
                };
                let (from, to) = match step.direction {
                    Direction::Up => (down, rev.meta.id.clone()),
                    Direction::Down => (rev.meta.id.clone(), down),
                };
                eprintln!(
                    "Running {} {} -> {}, {}",
                    step.direction, from, to, rev.meta.message
                );
            }
            Some(a) => eprintln!("  done in {} ms", a.millis),
        },
    );
    let mut migrator = Migrator::new(config, &history, &backend, log, progress)?;
    migrator.transaction = transaction.into();
    migrator.sandbox = migrator.sandbox.with_backtraces(verbose);
    migrator.allow_modified = allow_modified;
    migrator.warn = Box::new(|warning| eprintln!("warning: {warning}"));
    let plan = migrator.plan(direction, target).await?;
    if dry_run {
        if json_out {
            let ops = planned_ops(config, &history, backend.dialect(), &plan, direction).await;
            println!("{}", serde_json::to_string(&ops)?);
        } else if plan.steps.is_empty() {
            eprintln!("nothing to do");
        } else {
            for s in &plan.steps {
                eprintln!("{} {}", s.direction, s.revision);
            }
        }
        return Ok(());
    }
    let at = |heads: &[String]| {
        if heads.is_empty() {
            "base".to_owned()
        } else {
            heads.join(", ")
        }
    };
    let planned = !plan.steps.is_empty();
    let start = plan.start.clone();
    let result = migrator.migrate(plan).await;
    let applied = match result {
        Ok(applied) => applied,
        Err(e) => {
            backend.close().await;
            return Err(e.into());
        }
    };
    if !planned {
        eprintln!("nothing to do: the database is at {}", at(&start));
    } else if applied.is_empty() {
        let heads = backend.heads().await?;
        eprintln!(
            "nothing to do: another deployer got there first; the database is at {}",
            at(&heads)
        );
    }
    backend.close().await;
    if json_out {
        println!("{}", serde_json::to_string(&applied)?);
    }
    Ok(())
}

/// A dry run's steps, each with the ops it would run, found by running the plan against
/// a script target (the `--sql` path, nothing opened). When the revisions cannot run
/// offline (one reads rows), the steps are listed with `"ops": null` and a warning.
async fn planned_ops(
    config: &Config,
    history: &History,
    dialect: Dialect,
    plan: &crate::migrate::Plan,
    direction: Direction,
) -> Vec<serde_json::Value> {
    let script = crate::migrate::ScriptPlan {
        dialect,
        start: plan.start.clone(),
        steps: plan.steps.clone(),
        command: match direction {
            Direction::Up => "upgrade",
            Direction::Down => "downgrade",
        },
    };
    let quiet: LogSink = Arc::new(|_: &str, _: LogLevel, _: &str| {});
    let rendered = if plan.steps.is_empty() {
        None
    } else {
        match crate::migrate::run_script(config, history, &script, quiet).await {
            Ok(r) => Some(r.applied),
            Err(e) => {
                eprintln!("warning: the ops are not listed: {e}");
                None
            }
        }
    };
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let ops = rendered.as_ref().and_then(|a| a.get(i)).map(|a| &a.ops);
            json!({ "revision": step.revision, "direction": step.direction, "ops": ops })
        })
        .collect()
}

fn init(dir: &Path) -> Result<(), Failure> {
    let config_path = dir.join(config::FILE_NAME);
    if config_path.exists() {
        return Err(usage(anyhow::anyhow!(
            "{} exists already",
            config_path.display()
        )));
    }
    // A source checkout's SDK when retort runs from one, else the published crate.
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let spec = match sdk.canonicalize() {
        Ok(p) => format!(
            "{{ path = {} }}",
            toml::Value::String(p.display().to_string())
        ),
        Err(_) => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let versions = dir.join("migrations/versions");
    std::fs::create_dir_all(&versions)?;
    std::fs::write(&config_path, config::template(&spec))?;
    std::fs::write(
        dir.join("migrations/script.rs.tmpl"),
        build::toolchain::rust::TEMPLATE,
    )?;
    std::fs::write(dir.join(".gitignore"), ".retort/\n*.db\n")?;
    eprintln!("Creating {} ... done", config_path.display());
    eprintln!("Creating {} ... done", versions.display());
    eprintln!(
        "Next: `retort revision -m \"create users\"`, edit it, `retort build`, `retort upgrade head`."
    );
    Ok(())
}
