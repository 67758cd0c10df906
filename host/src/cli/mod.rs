//! The `retort` command line: parse, call the library, print.
//!
//! Human output and errors go to stderr, `--format json` output to stdout.
//! Exit codes: 0 success, 1 failure, 2 usage or configuration error.

mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use self::output::Output;
use crate::build;
use crate::config::{self, Config};
use crate::dialect::Dialect;
use crate::graph::Direction;
use crate::integrity;
use crate::migrate::{MigrateError, ScriptPlan, TransactionMode};
use crate::project::{Database, Project, RunOptions};
use crate::revision::{self, Metadata};
use crate::sandbox::Sandbox;
use crate::wit::LogLevel;

#[derive(Debug, Parser)]
#[command(
    name = "retort",
    version,
    about = "Database migrations as sandboxed WebAssembly components"
)]
pub struct Cli {
    /// The config file (default: retort.toml in this directory or the nearest parent
    /// that has one).
    #[arg(short, long, global = true, env = "RETORT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, over the config file (also RETORT_DATABASE_URL; DATABASE_URL is the
    /// last fallback).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Output format of read commands: text (stderr) or json (stdout).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No progress output (revisions running, bars); results and errors still print.
    #[arg(short, long, global = true)]
    pub quiet: bool,
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

/// What `check` and `revision --autogenerate` compare.
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArgs {
    /// The dialect to read and replay in (default: the database URL's).
    #[arg(long, value_enum)]
    dialect: Option<Dialect>,
    /// What the declared schema is compared with: the history at its heads, replayed
    /// offline (no database), or the live database (its catalog).
    #[arg(long, value_enum, default_value = "head")]
    against: Against,
    /// Take the wanted schema from this database's catalog instead of the declared
    /// schema file (a database shaped by hand).
    #[arg(long, value_name = "URL")]
    schema_from: Option<String>,
}

/// `--against`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Against {
    /// The schema the history builds, replayed offline.
    Head,
    /// The live database (`--url`, `RETORT_DATABASE_URL` or `retort.toml`).
    Db,
}

/// `--renames`: what autogenerate does with a look-alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenamesArg {
    /// Write a drop and an add, whose REVIEW comment proposes the rename (the default).
    Ask,
    /// Write the rename, with a REVIEW comment.
    Auto,
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
        /// Write the ops that turn the schema the history builds into the declared
        /// schema (`[autogenerate] schema`), with their exact inverse as the downgrade.
        #[arg(long)]
        autogenerate: bool,
        /// With --autogenerate: TABLE.OLD=NEW renames a column, OLD=NEW a table,
        /// instead of dropping one and adding the other (repeatable).
        #[arg(long = "rename", value_name = "RENAME", requires = "autogenerate")]
        rename: Vec<crate::autogen::diff::Rename>,
        /// With --autogenerate: `auto` also takes every unambiguous look-alike (a column
        /// or table that went and one alike that came) as a rename, marked REVIEW.
        #[arg(long, value_enum, default_value = "ask", requires = "autogenerate")]
        renames: RenamesArg,
        #[command(flatten)]
        schema: SchemaArgs,
    },
    /// Write a revision that merges two or more heads.
    Merge {
        /// The revisions to merge (e.g. `heads`, or two ids).
        #[arg(required = true, add = revision_completer())]
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
    /// Compile every revision component into the compile cache (`[sandbox] cache-dir`,
    /// with its engine settings), on every core, so that a deploy that ships the cache
    /// directory with the components compiles nothing.
    Compile,
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
    /// Apply revisions up to REV: head, heads, an id or prefix, +N, REV-N, BRANCH@head,
    /// ... (docs/graph.md lists every form; with --sql, FROM:TO).
    Upgrade {
        #[arg(default_value = "head", allow_negative_numbers = true, add = revision_completer())]
        revision: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Revert revisions down to REV: base, an id or prefix, -N, REV+N, BRANCH@-N, ...
    /// (docs/graph.md lists every form; with --sql, FROM:TO).
    Downgrade {
        #[arg(allow_hyphen_values = true, add = revision_completer())]
        revision: String,
        #[command(flatten)]
        run: RunArgs,
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
        /// Print the history as a graph for a renderer, on stdout: Mermaid or Graphviz
        /// dot (down-revision edges solid, depends-on edges dashed; with --url or -i,
        /// the database's current revisions marked).
        #[arg(long, value_enum, value_name = "FORMAT")]
        graph: Option<output::GraphFormat>,
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
    /// The metadata of each revision a spec names (`heads`, `current`, BRANCH@head, ...).
    Show {
        #[arg(allow_negative_numbers = true, add = revision_completer())]
        revision: String,
    },
    /// Report applied revisions whose component changed or disappeared (exit 1), or with
    /// --sum, files that differ from the sum file (no database needed).
    Verify {
        #[arg(long)]
        sum: bool,
    },
    /// Write the sum file (retort.sum) over the components directory.
    Sum,
    /// Compare the declared schema (`[autogenerate] schema`) with the schema the history
    /// builds at its heads, replayed offline (no database), or with a live database
    /// (--against db, which also finds drift: changes made by hand): exit 0 when they
    /// match, 1 with the differences (a CI gate, like `alembic check`).
    Check {
        #[command(flatten)]
        schema: SchemaArgs,
    },
    /// A revision's metadata, digest, size, imports and exports, from an id or a file.
    Inspect { target: String },
    /// Set the version table to REV... without running any revision.
    /// Print a shell completion script: revision ids, branch labels and spec words
    /// complete from the project in the working directory. Install with e.g.
    /// `retort completions bash > ~/.local/share/bash-completion/completions/retort`.
    Completions { shell: CompletionShell },
    /// Print the manual page (roff): `retort man > retort.1 && man ./retort.1`.
    Man,
    Stamp {
        #[arg(required = true, allow_negative_numbers = true, add = revision_completer())]
        revisions: Vec<String>,
        /// Delete every row first, even ones naming unknown revisions.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        offline: Offline,
    },
}

/// The shells `retort completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Completes a revision argument from the project clap_complete finds it run in:
/// ids (with their messages), branch labels as `LABEL@head`, and the spec words.
fn revision_completer() -> clap_complete::engine::ArgValueCompleter {
    clap_complete::engine::ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        use clap_complete::engine::CompletionCandidate;
        let current = current.to_string_lossy();
        let mut out: Vec<CompletionCandidate> = ["head", "heads", "base", "current"]
            .into_iter()
            .map(CompletionCandidate::new)
            .collect();
        let named = std::env::var_os("RETORT_CONFIG").map(PathBuf::from);
        if let Ok(config) = locate_config(named.as_deref(), true)
            && let Ok(project) = Project::from_config(config)
        {
            let graph = project.graph();
            let mut ids: Vec<_> = project.history().revisions.values().collect();
            ids.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
            for rev in ids {
                out.push(
                    CompletionCandidate::new(rev.meta.id.as_str())
                        .help(Some(rev.meta.message.clone().into())),
                );
            }
            for (label, _) in graph.labels() {
                out.push(CompletionCandidate::new(format!("{label}@head")));
            }
        }
        out.retain(|c| c.get_value().to_string_lossy().starts_with(&*current));
        out
    })
}

/// `retort completions SHELL`: the script that asks this binary for candidates
/// (clap_complete's environment protocol, `COMPLETE=SHELL retort -- ...`).
fn completions(shell: CompletionShell) -> Result<(), Failure> {
    use clap_complete::env::EnvCompleter;
    let completer: &dyn EnvCompleter = match shell {
        CompletionShell::Bash => &clap_complete::env::Bash,
        CompletionShell::Zsh => &clap_complete::env::Zsh,
        CompletionShell::Fish => &clap_complete::env::Fish,
    };
    let mut out = std::io::stdout().lock();
    completer.write_registration("COMPLETE", "retort", "retort", "retort", &mut out)?;
    Ok(())
}

/// `retort man`: the manual page, made from the same definitions as `--help`.
fn man() -> Result<(), Failure> {
    use clap::CommandFactory;
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())?;
    Ok(())
}

impl Command {
    /// False for the commands that work on files named on the command line alone.
    fn needs_project(&self) -> bool {
        match self {
            Command::Init { .. }
            | Command::Pack { .. }
            | Command::Completions { .. }
            | Command::Man => false,
            Command::Inspect { target } => !Path::new(target).is_file(),
            _ => true,
        }
    }
}

/// The options `upgrade` and `downgrade` share.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run even though an applied revision's component changed since it ran.
    #[arg(long)]
    allow_modified: bool,
    /// One transaction per revision, or one for the whole run (SQLite, PostgreSQL).
    #[arg(long, value_enum, default_value_t)]
    transaction: TransactionArg,
    /// Print each SQL statement as it is sent, and the wasm backtrace of a trap.
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    offline: Offline,
}

/// `--sql` and `--dialect`: render a script instead of touching a database.
#[derive(Debug, Clone, clap::Args)]
pub struct Offline {
    /// Print the SQL to stdout instead of running it; no database is opened.
    #[arg(long)]
    sql: bool,
    /// The dialect of the script (default: the database URL's scheme).
    #[arg(long, value_enum, requires = "sql")]
    dialect: Option<Dialect>,
}

/// `--dialect` takes every dialect's name.
impl ValueEnum for Dialect {
    fn value_variants<'a>() -> &'a [Self] {
        &Dialect::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl Offline {
    /// The dialect of an offline run, if this is one.
    fn dialect(&self, config: &Config, url: Option<&str>) -> Result<Option<Dialect>, Failure> {
        if !self.sql {
            return Ok(None);
        }
        if let Some(d) = self.dialect {
            return Ok(Some(d));
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
    // A shell asking for completions (`COMPLETE=bash retort -- ...`) is answered here.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = Cli::parse();
    // One thread: the work is sequential, and every hop between runtime threads costs
    // context switches per revision (issue 16). Components compile on threads of their
    // own (sandbox::Pipeline); sqlx's SQLite connections run on theirs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
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

/// The configuration: the file `-c`/`RETORT_CONFIG` names, which must exist, or else
/// `retort.toml` in the working directory or its nearest parent that has one (as cargo
/// and git look). Without one, a command that needs a project is a usage error saying
/// how to make one; the others run with the defaults.
fn locate_config(named: Option<&Path>, needs_project: bool) -> Result<Config, Failure> {
    if let Some(path) = named {
        if !path.is_file() {
            return Err(usage(anyhow::anyhow!(
                "config file {} not found (named by -c/--config or RETORT_CONFIG): check the path, or create a project there with `retort init`",
                path.display()
            )));
        }
        return Config::load(path).map_err(usage);
    }
    let cwd = std::env::current_dir()
        .map_err(|e| usage(anyhow::anyhow!("cannot read the working directory: {e}")))?;
    if let Some(found) = cwd
        .ancestors()
        .map(|dir| dir.join(config::FILE_NAME))
        .find(|candidate| candidate.is_file())
    {
        return Config::load(&found).map_err(usage);
    }
    if needs_project {
        return Err(usage(anyhow::anyhow!(
            "no {} in {} or any parent directory: run `retort init` to start a project, or name the config file with -c",
            config::FILE_NAME,
            cwd.display()
        )));
    }
    Ok(Config::default_in(&cwd))
}

/// The settings and the output, shared by every command.
struct Ctx {
    config: Config,
    /// `--quiet`: no progress output.
    quiet: bool,
    url: Option<String>,
    lock_timeout: Duration,
    out: Output,
}

impl Ctx {
    /// The project: the settings and the revisions (their metadata; nothing compiled).
    fn project(&self) -> Result<Project, Failure> {
        Project::from_config(self.config.clone()).map_err(failure)
    }

    async fn connect<'p>(&self, project: &'p Project) -> Result<Database<'p>, Failure> {
        project
            .connect_with(self.url.as_deref(), self.lock_timeout)
            .await
            .map_err(failure)
    }
}

/// Sorts a library error: the configuration's fault (a missing or unusable URL, a bad
/// range) is a usage error (exit 2), anything else a failure (exit 1).
fn failure(e: crate::Error) -> Failure {
    use crate::backend::BackendError;
    use crate::graph::GraphError;
    match e {
        crate::Error::Config(_)
        | crate::Error::Migrate(MigrateError::NeedsRange)
        | crate::Error::Migrate(MigrateError::Graph(GraphError::RangeSyntax { .. }))
        | crate::Error::Migrate(MigrateError::Backend(BackendError::Scheme { .. })) => usage(e),
        e => e.into(),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let out = Output {
        json: cli.format == Format::Json,
    };
    if let Command::Init { dir } = &cli.command {
        return init(dir, out);
    }
    let ctx = Ctx {
        config: locate_config(cli.config.as_deref(), cli.command.needs_project())?,
        quiet: cli.quiet,
        url: cli.url,
        lock_timeout: Duration::from_secs(cli.lock_timeout),
        out,
    };
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
            autogenerate,
            rename,
            renames,
            schema,
        } => {
            let mut request = build::NewRevision {
                message,
                id: rev_id,
                heads: head,
                splice,
                branch_labels: branch_label,
                depends_on,
                lang: Some(lang.into()),
                bodies: None,
            };
            if autogenerate {
                let renames = crate::autogen::diff::Renames {
                    given: rename,
                    auto: renames == RenamesArg::Auto,
                };
                match autogenerated(&ctx, &schema, &renames, lang.into()).await? {
                    Some(bodies) => request.bodies = Some(bodies),
                    None => return Ok(()),
                }
            }
            scaffold(&ctx, &request)
        }
        Command::Merge {
            revisions,
            message,
            rev_id,
            branch_label,
        } => scaffold(
            &ctx,
            &build::NewRevision {
                message,
                id: rev_id,
                heads: revisions,
                splice: false,
                branch_labels: branch_label,
                depends_on: Vec::new(),
                lang: None,
                bodies: None,
            },
        ),
        Command::Build => build_all(&ctx),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Compile => compile(&ctx),
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
            let mut meta = Metadata::new(rev_id, message);
            meta.down = down;
            meta.depends_on = depends_on;
            meta.branch_labels = branch_label;
            meta.transactional = !no_transaction;
            pack(&ctx, &input, &output, &meta)
        }
        Command::History {
            range,
            verbose,
            indicate_current,
            graph,
        } => history(&ctx, range.as_deref(), verbose, indicate_current, graph).await,
        Command::Heads {
            verbose,
            resolve_dependencies,
        } => heads(&ctx, verbose, resolve_dependencies),
        Command::Branches { verbose } => branches(&ctx, verbose),
        Command::Show { revision } => show(&ctx, &revision).await,
        Command::Current {
            check_heads,
            verbose,
        } => current(&ctx, check_heads, verbose).await,
        Command::Verify { sum } => verify(&ctx, sum).await,
        Command::Sum => sum(&ctx),
        Command::Check { schema } => check(&ctx, &schema).await,
        Command::Inspect { target } => inspect(&ctx, &target),
        Command::Stamp {
            revisions,
            purge,
            offline,
        } => stamp(&ctx, &revisions, purge, &offline).await,
        Command::Upgrade { revision, run } => move_to(&ctx, &revision, Direction::Up, &run).await,
        Command::Downgrade { revision, run } => {
            move_to(&ctx, &revision, Direction::Down, &run).await
        }
    }
}

/// `init`: a project skeleton in `dir`.
fn init(dir: &Path, out: Output) -> Result<(), Failure> {
    let created = build::init_project(dir).map_err(|e| match e {
        e @ build::InitError::Exists(_) => usage(e),
        e => e.into(),
    })?;
    for path in created {
        out.say(format!("Creating {} ... done", path.display()));
    }
    out.say(
        "Next: `retort revision -m \"create users\"`, edit it, `retort build`, `retort upgrade head`.",
    );
    Ok(())
}

/// `revision` and `merge`: a revision source.
fn scaffold(ctx: &Ctx, request: &build::NewRevision) -> Result<(), Failure> {
    let path = build::scaffold(&ctx.config, request)?;
    ctx.out
        .say(format!("Generating {} ... done", path.display()));
    ctx.out.say(format!(
        "Next: write upgrade and downgrade in {}, then `retort build` and `retort upgrade head`.",
        path.display()
    ));
    ctx.out.data(&json!({ "path": path }))?;
    Ok(())
}

/// `build`: every revision source into a component.
fn build_all(ctx: &Ctx) -> Result<(), Failure> {
    let display = output::BuildDisplay::new(ctx.quiet);
    let built = build::build_with_progress(&ctx.config, false, &|step| display.step(step));
    drop(display);
    let built = built?;
    for b in &built {
        let state = if b.changed { "built" } else { "unchanged" };
        ctx.out.say(format!(
            "{state:>9} {} -> {} ({} bytes)",
            b.id,
            b.component.display(),
            b.size
        ));
    }
    if built.is_empty() {
        ctx.out.say(format!(
            "no revision sources in {}",
            ctx.config.sources_dir().display()
        ));
    }
    ctx.out.data(&built)?;
    Ok(())
}

/// `pack`: any component made a revision.
fn pack(ctx: &Ctx, input: &Path, output: &Path, meta: &Metadata) -> Result<(), Failure> {
    let bytes = std::fs::read(input)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {}", input.display())))?;
    let packed = revision::pack(&bytes, meta, input)?;
    std::fs::write(output, &packed)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot write {}", output.display())))?;
    ctx.out.say(format!(
        "packed {} as revision {} -> {}",
        input.display(),
        meta.id,
        output.display()
    ));
    Ok(())
}

/// The database's version rows when `needed` (it is opened only then), else none.
async fn rows_if(ctx: &Ctx, project: &Project, needed: bool) -> Result<Vec<String>, Failure> {
    if !needed {
        return Ok(Vec::new());
    }
    let db = ctx.connect(project).await?;
    let heads = db.current().await;
    db.close().await;
    heads.map_err(failure)
}

/// The dialect a schema command reads and replays in: `--dialect`, else the URL's.
fn schema_dialect(ctx: &Ctx, what: &str, dialect: Option<Dialect>) -> Result<Dialect, Failure> {
    if let Some(d) = dialect {
        return Ok(d);
    }
    let url = ctx.config.database_url(ctx.url.as_deref()).map_err(|_| {
        usage(anyhow::anyhow!(
            "{what} needs --dialect sqlite|postgres|mysql, or a database URL to take it from"
        ))
    })?;
    Dialect::from_url(&url).ok_or_else(|| {
        usage(anyhow::anyhow!(
            "cannot tell the dialect of {url:?}: pass --dialect"
        ))
    })
}

/// The two schemas `check` and `revision --autogenerate` compare: what is (the history
/// replayed offline, or the live database), what is wanted (the declared schema, or a
/// reference database's catalog), and the dialect both are read in.
struct Schemas {
    d: Dialect,
    is: crate::autogen::model::Model,
    wanted: crate::autogen::model::Model,
    /// What `is` is, for messages (`the history at head`, `the database at URL`).
    is_what: String,
}

/// Opens a database whose catalog is read (not migrated: no lock is taken).
async fn open_catalog(url: &str) -> Result<crate::backend::Backend, Failure> {
    crate::backend::Backend::connect(url)
        .await
        .map_err(|e| failure(crate::Error::Migrate(MigrateError::from(e))))
}

async fn read_catalog(
    db: &crate::backend::Backend,
) -> Result<crate::autogen::model::Model, Failure> {
    crate::autogen::live::introspect(db)
        .await
        .map_err(|e| anyhow::Error::new(e).into())
}

/// Reads the schemas `args` name. With `up_to_date`, a live database must be at the
/// history's heads (autogenerate writes the revision after them, as Alembic insists).
async fn schemas(
    ctx: &Ctx,
    project: &Project,
    args: &SchemaArgs,
    what: &str,
    up_to_date: bool,
) -> Result<Schemas, Failure> {
    let mut dialect = args.dialect;
    let mut tied = |d: Dialect, by: &str| -> Result<(), Failure> {
        match dialect {
            Some(given) if given != d => Err(usage(anyhow::anyhow!(
                "{what}: {by} is {}, not {}",
                d.name(),
                given.name()
            ))),
            _ => {
                dialect = Some(d);
                Ok(())
            }
        }
    };
    // What is.
    let live = if args.against == Against::Db {
        let db = ctx.connect(project).await?;
        tied(db.backend().dialect(), "the database")?;
        if up_to_date {
            let current = db.current().await.map_err(failure)?;
            let mut heads: Vec<String> = project
                .graph()
                .heads()
                .into_iter()
                .map(String::from)
                .collect();
            heads.sort();
            let mut at = current.clone();
            at.sort();
            if at != heads {
                db.backend().close().await;
                return Err(anyhow::anyhow!(
                    "the database {} is at {} and the history's heads are {}: the target database is not up to date; run `retort upgrade heads` first",
                    db.url(),
                    if at.is_empty() { "base".into() } else { at.join(", ") },
                    heads.join(", ")
                )
                .into());
            }
        }
        let model = read_catalog(db.backend()).await;
        let url = db.url().to_owned();
        db.backend().close().await;
        Some((model?, format!("the database {url}")))
    } else {
        None
    };
    // What is wanted.
    let reference = match &args.schema_from {
        Some(url) => {
            let db = open_catalog(url).await?;
            tied(db.dialect(), "--schema-from")?;
            let model = read_catalog(&db).await;
            db.close().await;
            Some(model?)
        }
        None => None,
    };
    let d = match dialect {
        Some(d) => d,
        None => schema_dialect(ctx, what, None)?,
    };
    let mut wanted = match reference {
        Some(m) => m,
        None => crate::autogen::declared_model(&ctx.config, d).map_err(|e| match e {
            crate::autogen::AutogenError::NoSchema => usage(e),
            e => anyhow::Error::new(e).into(),
        })?,
    };
    let (mut is, is_what) = match live {
        Some(found) => found,
        None => {
            let built = crate::autogen::history_model(&ctx.config, project.history(), d)
                .await
                .map_err(anyhow::Error::new)?;
            for sql in &built.untracked {
                eprintln!(
                    "note: a revision runs SQL the comparison cannot see: {}",
                    sql.lines().next().unwrap_or_default()
                );
            }
            (built, "the history at head".to_owned())
        }
    };
    // A catalog says some things in its own words: read them against the other side.
    if args.against == Against::Db {
        crate::autogen::live::align(&mut is, &wanted);
    }
    if args.schema_from.is_some() {
        crate::autogen::live::align(&mut wanted, &is);
    }
    Ok(Schemas {
        d,
        is,
        wanted,
        is_what,
    })
}

/// `revision --autogenerate`: the bodies of the new revision, or none when the
/// schemas match (said on stderr, as Alembic says it).
async fn autogenerated(
    ctx: &Ctx,
    args: &SchemaArgs,
    renames: &crate::autogen::diff::Renames,
    lang: build::Lang,
) -> Result<Option<[String; 2]>, Failure> {
    let project = ctx.project()?;
    // The history is read from the components: a source not built yet would be left
    // out of the comparison, and its changes written again.
    let sources = build::sources(&ctx.config)?;
    let unbuilt: Vec<&str> = sources
        .iter()
        .map(|s| s.front.id.as_str())
        .filter(|id| project.history().graph.get(id).is_none())
        .collect();
    if !unbuilt.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "revision(s) {} have no component yet: run `retort build` first, so that autogenerate compares with the whole history",
            unbuilt.join(", ")
        )));
    }
    let Schemas { d, is, wanted, .. } =
        schemas(ctx, &project, args, "revision --autogenerate", true).await?;
    let by_hand = crate::autogen::diff::unwritable(&is, &wanted);
    if !by_hand.is_empty() {
        return Err(anyhow::anyhow!(
            "autogenerate cannot write every difference; change these by hand (a revision's execute, or the declared schema), then run it again:\n  {}",
            by_hand.join("\n  ")
        )
        .into());
    }
    let up = crate::autogen::diff::diff_with(d, &is, &wanted, renames).map_err(usage)?;
    if up.is_empty() {
        eprintln!("No changes detected");
        return Ok(None);
    }
    let down = crate::autogen::inverse::inverse(d, &is, &up).map_err(anyhow::Error::new)?;
    for c in &up {
        match &c.review {
            Some(why) => eprintln!("  {}    REVIEW: {why}", c.op),
            None => eprintln!("  {}", c.op),
        }
    }
    let reviews = up.iter().filter(|c| c.review.is_some()).count();
    if reviews > 0 {
        eprintln!(
            "warning: {reviews} op(s) marked REVIEW in the source: read them before `retort upgrade`"
        );
    }
    let write = crate::autogen::write::body;
    Ok(Some([write(lang, &up), write(lang, &down)]))
}

/// `check`: the declared schema against the history at head (offline) or the live
/// database.
async fn check(ctx: &Ctx, args: &SchemaArgs) -> Result<(), Failure> {
    let project = ctx.project()?;
    let Schemas {
        d,
        is,
        wanted,
        is_what,
    } = schemas(ctx, &project, args, "check", false).await?;
    let changes = crate::autogen::diff::diff(d, &is, &wanted);
    let by_hand = crate::autogen::diff::unwritable(&is, &wanted);
    let rows: Vec<_> = changes
        .iter()
        .map(|c| json!({ "op": c.op, "review": c.review }))
        .chain(
            by_hand
                .iter()
                .map(|why| json!({ "op": null, "review": why, "by-hand": true })),
        )
        .collect();
    ctx.out.either(&rows, || {
        for c in &changes {
            match &c.review {
                Some(why) => ctx.out.say(format!("{}    REVIEW: {why}", c.op)),
                None => ctx.out.say(c.op.to_string()),
            }
        }
        for why in &by_hand {
            ctx.out.say(format!("by hand: {why}"));
        }
    })?;
    let wanted_what = match &args.schema_from {
        Some(url) => format!("the schema of {}", crate::backend::redact(url)),
        None => "the declared schema".to_owned(),
    };
    if changes.is_empty() && by_hand.is_empty() {
        eprintln!("No changes detected: {wanted_what} matches {is_what}");
        return Ok(());
    }
    let hint = if args.against == Against::Db {
        "the ops a revision would need to make it so; a change made by hand outside Retort (drift) shows here"
    } else {
        "which a new revision must make"
    };
    Err(anyhow::anyhow!(
        "{wanted_what} differs from {is_what}: {} change(s) listed above, {hint}",
        changes.len() + by_hand.len()
    )
    .into())
}

/// `history`: revisions newest first, with the text graph.
async fn history(
    ctx: &Ctx,
    range: Option<&str>,
    verbose: bool,
    indicate_current: bool,
    picture: Option<output::GraphFormat>,
) -> Result<(), Failure> {
    let project = ctx.project()?;
    let graph = project.graph();
    let needed = indicate_current
        || range.is_some_and(|r| r.contains("current"))
        || picture.is_some() && ctx.url.is_some();
    let current = rows_if(ctx, &project, needed).await?;
    let nodes = graph
        .history_range(range, &current)
        .map_err(|e| failure(MigrateError::from(e).into()))?;
    if let Some(format) = picture {
        print!("{}", output::picture(format, graph, &nodes, &current));
        return Ok(());
    }
    let entries: Vec<&Metadata> = nodes.iter().map(|n| &*n.meta).collect();
    ctx.out.either(&entries, || {
        let lines: Vec<String> = nodes
            .iter()
            .map(|n| {
                let mut line = output::history_line(graph, &n.meta);
                if current.contains(&n.meta.id) {
                    line.push_str(" (current)");
                }
                if verbose {
                    line = output::describe(graph, &project.history().revisions[&n.meta.id], &line);
                }
                line
            })
            .collect();
        for line in output::text_graph(&nodes, &lines) {
            ctx.out.say(line);
        }
    })?;
    Ok(())
}

/// `heads`: the revisions no other follows.
fn heads(ctx: &Ctx, verbose: bool, resolve_dependencies: bool) -> Result<(), Failure> {
    let project = ctx.project()?;
    let graph = project.graph();
    let heads = if resolve_dependencies {
        graph.heads_resolving_dependencies()
    } else {
        graph.heads()
    };
    let rows: Vec<_> = heads
        .iter()
        .map(|h| json!({ "revision": h, "branch_labels": graph.labels_of(h), "message": graph.get(h).map(|n| &n.meta.message) }))
        .collect();
    ctx.out.either(&rows, || {
        for h in &heads {
            let line = output::history_line(graph, &graph.get(h).expect("head exists").meta);
            if verbose {
                ctx.out.say(output::describe(
                    graph,
                    &project.history().revisions[*h],
                    &line,
                ));
            } else {
                ctx.out.say(output::head_line(graph, h));
            }
        }
    })?;
    Ok(())
}

/// `branches`: branch points and their children.
fn branches(ctx: &Ctx, verbose: bool) -> Result<(), Failure> {
    let project = ctx.project()?;
    let graph = project.graph();
    let points = graph.branch_points();
    let rows: Vec<_> = points
        .iter()
        .map(|(id, children)| json!({ "revision": id, "children": children }))
        .collect();
    ctx.out.either(&rows, || {
        for (id, children) in &points {
            let meta = &graph.get(id).expect("exists").meta;
            ctx.out.say(format!("{id} (branchpoint), {}", meta.message));
            for child in children.iter() {
                let c = &graph.get(child).expect("exists").meta;
                let line = format!("    -> {child}, {}", c.message);
                if verbose {
                    ctx.out.say(output::describe(
                        graph,
                        &project.history().revisions[child.as_str()],
                        &line,
                    ));
                } else {
                    ctx.out.say(line);
                }
            }
        }
    })?;
    Ok(())
}

/// `show`: the metadata of each revision a spec names (as Alembic's `show`: `heads`
/// shows every head, `current` the database's rows, `base` nothing).
async fn show(ctx: &Ctx, spec: &str) -> Result<(), Failure> {
    let project = ctx.project()?;
    let graph = project.graph();
    let current = rows_if(ctx, &project, spec == "current").await?;
    let nodes = graph
        .show_revisions(spec, &current)
        .map_err(|e| failure(MigrateError::from(e).into()))?;
    let reports: Vec<_> = nodes
        .iter()
        .map(|n| {
            let id = n.meta.id.as_str();
            let rev = &project.history().revisions[id];
            json!({
                "metadata": rev.meta,
                "path": rev.path,
                "sha256": rev.sha256,
                "size": rev.size,
                "head": n.children.is_empty(),
                "branches": graph.labels_of(id),
                "children": n.children,
            })
        })
        .collect();
    ctx.out.either(&reports, || {
        for n in &nodes {
            let rev = &project.history().revisions[&n.meta.id];
            ctx.out.say(output::describe(
                graph,
                rev,
                &output::history_line(graph, &rev.meta),
            ));
        }
    })?;
    Ok(())
}

/// `current`: the database's heads (and an unresolved failure).
async fn current(ctx: &Ctx, check_heads: bool, verbose: bool) -> Result<(), Failure> {
    let project = ctx.project()?;
    let graph = project.graph();
    let db = ctx.connect(&project).await?;
    let read =
        async { Ok::<_, crate::Error>((db.current().await?, db.unresolved_failure().await?)) }
            .await;
    let url = db.url().to_owned();
    db.close().await;
    let (heads, failed) = read.map_err(failure)?;
    if let Some(f) = &failed {
        ctx.out.say(format!(
            "FAILED: revision {} failed to {} and may be partly applied; resolve with `retort stamp`:\n  {}",
            f.revision,
            f.verb(),
            f.detail
        ));
    }
    let graph_heads = graph.heads();
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
    ctx.out.either(&rows, || {
        if heads.is_empty() {
            ctx.out.say(format!("(base): no revision applied to {url}"));
        }
        for h in &heads {
            match (graph.get(h), verbose) {
                (Some(_), true) => ctx.out.say(output::describe(
                    graph,
                    &project.history().revisions[h],
                    &output::head_line(graph, h),
                )),
                (Some(_), false) => ctx.out.say(output::head_line(graph, h)),
                (None, _) => ctx.out.say(format!(
                    "{h} (not in {})",
                    ctx.config.components_dir().display()
                )),
            }
        }
    })?;
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
    Ok(())
}

/// `verify`: applied revisions whose component changed, or files against the sum file.
async fn verify(ctx: &Ctx, sum: bool) -> Result<(), Failure> {
    let problems = if sum {
        let dir = ctx.config.components_dir();
        integrity::check_sum(&dir)
            .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {}", dir.display())))?
    } else {
        let project = ctx.project()?;
        let db = ctx.connect(&project).await?;
        let applied = db.backend().applied_digests().await;
        db.close().await;
        integrity::check_applied(project.history(), &applied?)
    };
    ctx.out.data(&problems)?;
    for p in &problems {
        ctx.out.say(p);
    }
    if !problems.is_empty() {
        return Err(anyhow::anyhow!("verify found {} problem(s)", problems.len()).into());
    }
    ctx.out.say("ok: nothing changed");
    Ok(())
}

/// `sum`: the sum file over the components directory.
fn sum(ctx: &Ctx) -> Result<(), Failure> {
    let dir = ctx.config.components_dir();
    integrity::write_sum(&dir).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot write the sum file in {}", dir.display()))
    })?;
    ctx.out
        .say(format!("wrote {}", dir.join(integrity::SUM_FILE).display()));
    Ok(())
}

/// `compile`: every component into the compile cache.
fn compile(ctx: &Ctx) -> Result<(), Failure> {
    let project = ctx.project()?;
    let Some(dir) = ctx.config.cache_dir() else {
        return Err(usage(anyhow::anyhow!(
            "no compile cache to write to: set [sandbox] cache-dir in retort.toml"
        )));
    };
    let started = std::time::Instant::now();
    let sandbox = Sandbox::new(&ctx.config.file.sandbox, Some(&dir))?;
    let mut revisions: Vec<_> = project.history().revisions.values().cloned().collect();
    revisions.sort_by(|a, b| a.path.cmp(&b.path));
    let compiled = sandbox.compile_all(&revisions)?;
    ctx.out.say(format!(
        "compiled {compiled} of {} components into {} in {:.2} s ({} were cached)",
        revisions.len(),
        dir.display(),
        started.elapsed().as_secs_f64(),
        revisions.len() - compiled
    ));
    Ok(())
}

/// `inspect`: a component's metadata, digest, imports and exports.
fn inspect(ctx: &Ctx, target: &str) -> Result<(), Failure> {
    let path = if Path::new(target).is_file() {
        PathBuf::from(target)
    } else {
        let project = ctx.project()?;
        let id = project.graph().lookup(target)?;
        project.history().revisions[id].path.clone()
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot read {}", path.display())))?;
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
    ctx.out.either(&report, || {
        let say = |line: String| ctx.out.say(line);
        say(format!("Path: {}", path.display()));
        say(match &meta {
            Some(m) => format!(
                "Revision: {} ({}), down: {}",
                m.id,
                m.message,
                if m.down.is_empty() {
                    "<base>".into()
                } else {
                    m.down.join(", ")
                }
            ),
            None => "Revision: none (no retort:revision section; `retort pack` adds one)".into(),
        });
        say(format!(
            "SHA-256: {}",
            report["sha256"].as_str().unwrap_or_default()
        ));
        say(format!("Size: {} bytes", bytes.len()));
        say(format!(
            "World: {}",
            interface
                .world()
                .unwrap_or_else(|| "not a Retort revision world".into())
        ));
        say(format!(
            "Needs WASI: {}",
            if interface.needs_wasi() { "yes" } else { "no" }
        ));
        say(format!("Imports: {}", interface.imports.join(", ")));
        say(format!("Exports: {}", interface.exports.join(", ")));
    })?;
    Ok(())
}

/// `stamp`: the version table set without running anything (or its SQL with --sql).
async fn stamp(
    ctx: &Ctx,
    revisions: &[String],
    purge: bool,
    offline: &Offline,
) -> Result<(), Failure> {
    let project = ctx.project()?;
    if let Some(d) = offline.dialect(&ctx.config, ctx.url.as_deref())? {
        let heads = project.graph().stamp_target(revisions, &[])?;
        print!("{}", crate::migrate::render_stamp(d, &heads).await?);
        return Ok(());
    }
    let db = ctx.connect(&project).await?;
    let stamped = db.stamp(revisions, purge).await;
    let url = db.url().to_owned();
    db.close().await;
    let heads = stamped.map_err(failure)?;
    ctx.out.say(format!(
        "Stamped {url} as {}",
        if heads.is_empty() {
            "base".into()
        } else {
            heads.join(", ")
        }
    ));
    ctx.out.data(&heads)?;
    Ok(())
}

/// `upgrade` or `downgrade`: a script with --sql, else a run against the database.
async fn move_to(
    ctx: &Ctx,
    target: &str,
    direction: Direction,
    run: &RunArgs,
) -> Result<(), Failure> {
    match run.offline.dialect(&ctx.config, ctx.url.as_deref())? {
        Some(d) => render(ctx, d, target, direction).await,
        None => migrate(ctx, target, direction, run).await,
    }
}

/// `upgrade --sql` / `downgrade --sql`: the script on stdout, no database opened.
async fn render(
    ctx: &Ctx,
    dialect: Dialect,
    range: &str,
    direction: Direction,
) -> Result<(), Failure> {
    let project = ctx.project()?;
    let plan = ScriptPlan::for_range(project.graph(), dialect, range, direction)
        .map_err(|e| failure(e.into()))?;
    let script =
        crate::migrate::render_script(&ctx.config, project.history(), &plan, output::guest_log())
            .await?;
    print!("{script}");
    Ok(())
}

/// `upgrade`/`downgrade` against the database, through the library's gates.
async fn migrate(
    ctx: &Ctx,
    target: &str,
    direction: Direction,
    run: &RunArgs,
) -> Result<(), Failure> {
    let project = ctx.project()?;
    let db = ctx.connect(&project).await?;
    let result = migrate_on(ctx, &project, &db, target, direction, run).await;
    db.close().await;
    result
}

async fn migrate_on(
    ctx: &Ctx,
    project: &Project,
    db: &Database<'_>,
    target: &str,
    direction: Direction,
    run: &RunArgs,
) -> Result<(), Failure> {
    let plan = db.plan(direction, target).await.map_err(failure)?;
    if run.dry_run {
        if ctx.out.json {
            let ops = planned_ops(ctx, project, db.backend().dialect(), &plan, direction).await;
            ctx.out.data(&ops)?;
        } else if plan.steps.is_empty() {
            ctx.out.say("nothing to do");
        } else {
            for s in &plan.steps {
                ctx.out.say(format!("{} {}", s.direction, s.revision));
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
    let (progress, activity, display) = output::run_display(ctx.quiet, run.verbose);
    let options = RunOptions {
        transaction: run.transaction.into(),
        allow_modified: run.allow_modified,
        backtraces: run.verbose,
        log: output::guest_log(),
        progress,
        activity,
        warn: Arc::new(|warning| eprintln!("warning: {warning}")),
    };
    let applied = db.run_plan(plan.clone(), options).await;
    drop(display);
    let applied = applied.map_err(failure)?;
    if plan.steps.is_empty() {
        ctx.out.say(format!(
            "nothing to do: the database is at {}",
            at(&plan.start)
        ));
    } else if applied.is_empty() {
        let heads = db.current().await.map_err(failure)?;
        ctx.out.say(format!(
            "nothing to do: another deployer got there first; the database is at {}",
            at(&heads)
        ));
    }
    ctx.out.data(&applied)?;
    Ok(())
}

/// A dry run's steps, each with the ops it would run, found by running the plan against
/// a script target (the `--sql` path, nothing opened). When the revisions cannot run
/// offline (one reads rows), the steps are listed with `"ops": null` and a warning.
async fn planned_ops(
    ctx: &Ctx,
    project: &Project,
    dialect: Dialect,
    plan: &crate::migrate::Plan,
    direction: Direction,
) -> Vec<serde_json::Value> {
    let script = ScriptPlan {
        dialect,
        start: plan.start.clone(),
        steps: plan.steps.clone(),
        command: match direction {
            Direction::Up => "upgrade",
            Direction::Down => "downgrade",
        },
    };
    let quiet: crate::LogSink = Arc::new(|_: &str, _: LogLevel, _: &str| {});
    let rendered = if plan.steps.is_empty() {
        None
    } else {
        match crate::migrate::run_script(&ctx.config, project.history(), &script, quiet).await {
            Ok(r) => Some(r.applied),
            Err(e) => {
                ctx.out.say(format!("warning: the ops are not listed: {e}"));
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

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (flag clashes such as two `-q`, defaults that do
    /// not parse), which release builds skip at run time.
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
