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
use crate::graph::{Direction, Step};
use crate::migrate::{Applied, History, Migrator};
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
    #[command(subcommand)]
    pub command: Command,
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
        /// The down revision(s), instead of the current head.
        #[arg(long = "head")]
        head: Vec<String>,
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
    },
    /// Apply revisions up to REV: head, heads, an id or prefix, +N.
    Upgrade {
        #[arg(default_value = "head")]
        revision: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert revisions down to REV: base, an id or prefix, -N.
    Downgrade {
        #[arg(allow_hyphen_values = true)]
        revision: String,
        /// Print the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The database's applied heads.
    Current,
    /// Every revision, newest first.
    History,
    /// The revisions no other revision follows.
    Heads,
    /// One revision's metadata.
    Show { revision: String },
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
            eprintln!("error: {}", failure.error);
            for cause in failure.error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
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
        } => {
            let down = (!head.is_empty()).then_some(head);
            let path = build::scaffold(&config, &message, rev_id.as_deref(), down)?;
            eprintln!("Generating {} ... done", path.display());
            if json_out {
                println!("{}", json!({ "path": path }));
            }
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
        } => {
            let bytes = std::fs::read(&input).map_err(|e| {
                anyhow::Error::new(e).context(format!("cannot read {}", input.display()))
            })?;
            let mut meta = Metadata::new(rev_id, message);
            meta.down = down;
            meta.depends_on = depends_on;
            meta.branch_labels = branch_label;
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
        Command::History => {
            let history = History::load(&config.components_dir())?;
            let entries: Vec<&Metadata> = history.graph.ordered().rev().map(|n| &n.meta).collect();
            if json_out {
                println!("{}", serde_json::to_string(&entries)?);
            } else {
                let heads = history.graph.heads();
                for meta in entries {
                    eprintln!("{}", history_line(meta, heads.contains(&meta.id.as_str())));
                }
            }
        }
        Command::Heads => {
            let history = History::load(&config.components_dir())?;
            let heads = history.graph.heads();
            if json_out {
                println!("{}", serde_json::to_string(&heads)?);
            } else {
                for h in heads {
                    let meta = &history.graph.get(h).expect("head exists").meta;
                    eprintln!("{h} (head), {}", meta.message);
                }
            }
        }
        Command::Show { revision } => {
            let history = History::load(&config.components_dir())?;
            let id = history.graph.lookup(&revision)?;
            let rev = &history.revisions[id];
            if json_out {
                println!(
                    "{}",
                    json!({ "metadata": rev.meta, "path": rev.path, "sha256": rev.sha256, "size": rev.size })
                );
            } else {
                let m = &rev.meta;
                eprintln!(
                    "Rev: {}{}",
                    m.id,
                    if history.graph.heads().contains(&id) {
                        " (head)"
                    } else {
                        ""
                    }
                );
                eprintln!(
                    "Parent: {}",
                    if m.down.is_empty() {
                        "<base>".into()
                    } else {
                        m.down.join(", ")
                    }
                );
                if !m.depends_on.is_empty() {
                    eprintln!("Depends on: {}", m.depends_on.join(", "));
                }
                if !m.branch_labels.is_empty() {
                    eprintln!("Branch names: {}", m.branch_labels.join(", "));
                }
                eprintln!("Path: {}", rev.path.display());
                eprintln!("SHA-256: {}", rev.sha256);
                eprintln!("Size: {} bytes", rev.size);
                eprintln!("Created: {}", m.created);
                eprintln!("\n    {}", m.message);
            }
        }
        Command::Current => {
            let history = History::load(&config.components_dir())?;
            let backend = connect(&config, cli.url.as_deref()).await?;
            let heads = backend.heads().await?;
            backend.close().await;
            let graph_heads = history.graph.heads();
            if json_out {
                let rows: Vec<_> = heads
                    .iter()
                    .map(|h| {
                        json!({
                            "revision": h,
                            "head": graph_heads.contains(&h.as_str()),
                            "message": history.graph.get(h).map(|n| n.meta.message.clone()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string(&rows)?);
            } else if heads.is_empty() {
                eprintln!("(base): no revision applied to {}", backend.url());
            } else {
                for h in &heads {
                    match history.graph.get(h) {
                        Some(n) => eprintln!(
                            "{h}{}, {}",
                            if graph_heads.contains(&h.as_str()) {
                                " (head)"
                            } else {
                                ""
                            },
                            n.meta.message
                        ),
                        None => eprintln!("{h} (not in {})", config.components_dir().display()),
                    }
                }
            }
        }
        Command::Upgrade { revision, dry_run } => {
            migrate(
                &config,
                cli.url.as_deref(),
                &revision,
                Direction::Up,
                dry_run,
                json_out,
            )
            .await?;
        }
        Command::Downgrade { revision, dry_run } => {
            migrate(
                &config,
                cli.url.as_deref(),
                &revision,
                Direction::Down,
                dry_run,
                json_out,
            )
            .await?;
        }
    }
    Ok(())
}

fn history_line(meta: &Metadata, head: bool) -> String {
    let down = if meta.down.is_empty() {
        "<base>".to_owned()
    } else {
        meta.down.join(", ")
    };
    format!(
        "{down} -> {}{}, {}",
        meta.id,
        if head { " (head)" } else { "" },
        meta.message
    )
}

async fn connect(config: &Config, url: Option<&str>) -> Result<Backend, Failure> {
    let url = config.database_url(url).map_err(usage)?;
    Ok(Backend::connect(&url).await?)
}

async fn migrate(
    config: &Config,
    url: Option<&str>,
    target: &str,
    direction: Direction,
    dry_run: bool,
    json_out: bool,
) -> Result<(), Failure> {
    let history = History::load(&config.components_dir())?;
    let backend = connect(config, url).await?;
    let log: LogSink = Arc::new(|revision: &str, level: LogLevel, message: &str| {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("  [{revision}] {level}: {message}");
    });
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
    let migrator = Migrator::new(config, &history, &backend, log, progress)?;
    let steps = match direction {
        Direction::Up => migrator.plan_upgrade(target).await?,
        Direction::Down => migrator.plan_downgrade(target).await?,
    };
    if dry_run {
        if json_out {
            println!("{}", serde_json::to_string(&steps)?);
        } else if steps.is_empty() {
            eprintln!("nothing to do");
        } else {
            for s in &steps {
                eprintln!("{} {}", s.direction, s.revision);
            }
        }
        return Ok(());
    }
    if steps.is_empty() {
        let heads = backend.heads().await?;
        eprintln!(
            "nothing to do: the database is at {}",
            if heads.is_empty() {
                "base".into()
            } else {
                heads.join(", ")
            }
        );
    }
    let result = migrator.run(&steps).await;
    backend.close().await;
    let applied = result?;
    if json_out {
        println!("{}", serde_json::to_string(&applied)?);
    }
    Ok(())
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
    std::fs::write(dir.join("migrations/script.rs.tmpl"), build::TEMPLATE)?;
    std::fs::write(dir.join(".gitignore"), ".retort/\n*.db\n")?;
    eprintln!("Creating {} ... done", config_path.display());
    eprintln!("Creating {} ... done", versions.display());
    eprintln!(
        "Next: `retort revision -m \"create users\"`, edit it, `retort build`, `retort upgrade head`."
    );
    Ok(())
}
