//! `retort.toml`: where revisions live, which database, how revisions are built and run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The config file's name, looked for in the current directory.
pub const FILE_NAME: &str = "retort.toml";

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key Retort does not know.
    #[error("invalid config {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: toml::de::Error,
    },
    /// Nothing names a database.
    #[error(
        "no database URL: set [database] url in {path}, pass --url, or set RETORT_DATABASE_URL or DATABASE_URL"
    )]
    NoUrl {
        /// The config file that could have named one.
        path: PathBuf,
    },
    /// `[policy] allow` names a rule that does not exist.
    #[error("{path}: [policy] allow names no rule {rule:?}; the rules are: {}", crate::policy::rule_names().collect::<Vec<_>>().join(", "))]
    UnknownRule {
        /// The config file.
        path: PathBuf,
        /// The name it gave.
        rule: String,
    },
}

/// The parsed file, with relative paths still relative.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    #[serde(default)]
    /// `[database]`
    pub database: Database,
    #[serde(default)]
    /// `[migrations]`
    pub migrations: Migrations,
    #[serde(default)]
    /// `[build]`
    pub build: Build,
    #[serde(default)]
    /// `[sandbox]`
    pub sandbox: Limits,
    /// What guest SQL may do (host/src/policy.rs).
    #[serde(default)]
    pub policy: crate::policy::Policy,
    /// `[autogenerate]`
    #[serde(default)]
    pub autogenerate: Autogenerate,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
/// `[autogenerate]`: the schema the project declares (`retort check`).
pub struct Autogenerate {
    /// A file of `CREATE TABLE` and `CREATE INDEX` statements in the project's dialect.
    pub schema: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
/// `[database]`: which database, unless `--url` or the environment says.
pub struct Database {
    /// A URL: `sqlite:PATH`, `postgres://…`, `mysql://…`, `mariadb://…`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
/// `[migrations]`: where revision sources and components live.
pub struct Migrations {
    /// Revision sources (`*.rs`), read by `build` and `revision`.
    pub sources: PathBuf,
    /// Built revisions (`*.wasm`): all that deploying needs.
    pub components: PathBuf,
}

impl Default for Migrations {
    fn default() -> Self {
        Migrations {
            sources: "migrations/versions".into(),
            components: "migrations/components".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
/// `[build]`: how `retort build` turns sources into components.
pub struct Build {
    /// The `retort-guest` dependency of revision crates: `"bundled"` (the default: the
    /// SDK inside this binary, written into the build directory), or a Cargo dependency
    /// specification, e.g. `{ path = "../guest-sdk" }`.
    pub guest_sdk: toml::Value,
    /// Where revision crates are generated.
    pub dir: PathBuf,
    /// Cargo's target directory for revision crates (default: `<dir>/target`); projects
    /// may share one to share compiled dependencies.
    #[serde(default)]
    pub target_dir: Option<PathBuf>,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            guest_sdk: toml::Value::String(crate::build::sdk::BUNDLED.into()),
            dir: ".retort/build".into(),
            target_dir: None,
        }
    }
}

/// Limits for every revision call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Wasm fuel (roughly, instructions) one `upgrade` or `downgrade` call may use.
    pub fuel: u64,
    /// Largest linear memory, in MiB.
    pub memory_mib: u64,
    /// Most elements of any wasm table.
    pub table_elements: usize,
    /// Most (core and component) instances a revision may create.
    pub instances: usize,
    /// The wasm call stack, in KiB (deep recursion ends there).
    pub stack_kib: usize,
    /// Most bytes of strings and lists one op call may pass to the host.
    pub max_call_bytes: usize,
    /// Most rows the host reads for one `cursor.next` (what a query buffers).
    pub max_batch_rows: u32,
    /// Most bytes of stdout, and of stderr, a WASI guest may write to the log per call.
    pub max_output_bytes: usize,
    /// Wall-clock seconds one call may take, waits included (`0`: no limit).
    pub timeout_secs: u64,
    /// Revisions granted one read-only directory (seen as `/data` in the guest):
    /// revision id = directory, relative to retort.toml. Off unless listed here.
    pub read_only_dirs: std::collections::BTreeMap<String, PathBuf>,
    /// Where compiled components are cached (`""` turns the cache off).
    pub cache_dir: PathBuf,
    /// Which compiler turns components into machine code: `auto` (the default:
    /// Cranelift, except for a component of 1 MiB or more, an interpreter inside, that a
    /// run must compile itself: Winch), `cranelift` (optimising) or `winch` (a baseline
    /// compiler: compiles large guests several times faster, runs slower).
    pub compiler: Compiler,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
/// The compiler that turns components into machine code.
pub enum Compiler {
    #[default]
    /// The optimising compiler, except for a large component (1 MiB or more: an
    /// interpreter inside) that a run must compile itself: the baseline compiler there,
    /// where compiling costs more than the slower code (docs/design.md, note 50).
    /// `retort compile` always uses the optimising compiler.
    Auto,
    /// The optimising compiler, always.
    Cranelift,
    /// The baseline compiler, always: compiles several times faster, runs slower.
    Winch,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_mib: 256,
            table_elements: 100_000,
            instances: 100,
            stack_kib: 1024,
            max_call_bytes: 64 << 20,
            max_batch_rows: 10_000,
            max_output_bytes: 1 << 20,
            timeout_secs: 6 * 3600,
            read_only_dirs: Default::default(),
            cache_dir: ".retort/cache".into(),
            compiler: Compiler::Auto,
        }
    }
}

/// The configuration in force: the file, resolved against its directory, and the URL.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the config file; relative paths start here.
    pub root: PathBuf,
    /// The config file (it need not exist).
    pub path: PathBuf,
    /// Its contents (the defaults when it does not exist).
    pub file: File,
}

impl Config {
    /// Reads `path`. A missing file yields the defaults, rooted at its directory, so
    /// that commands taking everything from flags still work.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Some(rule) = file
            .policy
            .allow
            .iter()
            .find(|a| !crate::policy::rule_names().any(|r| r == a.as_str()))
        {
            return Err(ConfigError::UnknownRule {
                path: path.to_owned(),
                rule: rule.clone(),
            });
        }
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Config {
            root,
            path: path.to_owned(),
            file,
        })
    }

    /// The default settings, as if an empty `retort.toml` were in `root`.
    pub fn default_in(root: &Path) -> Self {
        Config {
            root: root.to_owned(),
            path: root.join(FILE_NAME),
            file: File::default(),
        }
    }

    /// Where revision sources are (`[migrations] sources`).
    pub fn sources_dir(&self) -> PathBuf {
        self.root.join(&self.file.migrations.sources)
    }

    /// Where revision components are (`[migrations] components`).
    pub fn components_dir(&self) -> PathBuf {
        self.root.join(&self.file.migrations.components)
    }

    /// The declared schema's file (`[autogenerate] schema`), if the project has one.
    pub fn schema_file(&self) -> Option<PathBuf> {
        self.file
            .autogenerate
            .schema
            .as_ref()
            .map(|f| self.root.join(f))
    }

    /// Where `retort build` works (`[build] dir`).
    pub fn build_dir(&self) -> PathBuf {
        self.root.join(&self.file.build.dir)
    }

    /// The cargo target directory of Rust revisions.
    pub fn build_target_dir(&self) -> PathBuf {
        match &self.file.build.target_dir {
            Some(dir) => self.root.join(dir),
            None => self.build_dir().join("target"),
        }
    }

    /// Where compiled components are cached (`None`: no cache).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        let dir = &self.file.sandbox.cache_dir;
        (!dir.as_os_str().is_empty()).then(|| self.root.join(dir))
    }

    /// Read-only directory grants, by revision id, resolved against the config's directory.
    pub fn read_only_dirs(&self) -> std::collections::BTreeMap<String, PathBuf> {
        self.file
            .sandbox
            .read_only_dirs
            .iter()
            .map(|(rev, dir)| (rev.clone(), self.root.join(dir)))
            .collect()
    }

    /// The database URL: `--url`, then `RETORT_DATABASE_URL`, then the config file, then
    /// `DATABASE_URL` (a generic variable, so it only fills in when nothing else names a
    /// database). A relative SQLite path is taken from the config's directory.
    pub fn database_url(&self, flag: Option<&str>) -> Result<String, ConfigError> {
        let url = flag
            .map(str::to_owned)
            .or_else(|| std::env::var("RETORT_DATABASE_URL").ok())
            .or_else(|| self.file.database.url.clone())
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .ok_or_else(|| ConfigError::NoUrl {
                path: self.path.clone(),
            })?;
        Ok(self.rooted_sqlite(url))
    }

    fn rooted_sqlite(&self, url: String) -> String {
        let Some(rest) = url.strip_prefix("sqlite:") else {
            return url;
        };
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        if rest.starts_with('/') || rest.starts_with(":memory:") || rest.is_empty() {
            return url;
        }
        format!("sqlite:{}", self.root.join(rest).display())
    }
}

/// The `retort.toml` that `init` writes.
pub fn template(guest_sdk: &str) -> String {
    format!(
        r#"# Retort configuration. Paths are relative to this file.

[database]
# sqlite:FILE, postgres://..., mysql://... Overridden by --url and by
# RETORT_DATABASE_URL; DATABASE_URL is used only when this is unset.
url = "sqlite:retort.db"

[migrations]
sources = "migrations/versions"       # revision sources, read by `retort build`
components = "migrations/components"  # built revisions: all a deploy needs

[build]
guest-sdk = {guest_sdk}      # the SDK inside retort, or a Cargo dependency such as {{ path = "..." }}
dir = ".retort/build"

[sandbox]
fuel = 10000000000        # per upgrade/downgrade call
memory-mib = 256          # largest linear memory of a revision
table-elements = 100000   # largest wasm table
instances = 100           # core and component instances per revision
stack-kib = 1024          # wasm call stack
max-call-bytes = 67108864 # strings and lists one op call passes to the host
max-batch-rows = 10000    # rows the host reads per cursor.next
cache-dir = ".retort/cache"

[policy]
# Rules to switch off (e.g. "privileges"), extensions revisions may create, and whether
# SQL the parser cannot read may pass. See docs/policy.md for every rule. Warn (false) or
# refuse (true) when the database role holds dangerous privileges (README, Security).
allow = []
extensions = []
allow-unparseable = false
require-least-privilege = false
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_urls_resolve_in_order() {
        let file: File = toml::from_str(&template(r#"{ path = "../guest-sdk" }"#)).unwrap();
        let config = Config {
            root: "/proj".into(),
            path: "/proj/retort.toml".into(),
            file,
        };
        assert_eq!(config.database_url(None).unwrap(), "sqlite:/proj/retort.db");
        assert_eq!(
            config.database_url(Some("sqlite:/tmp/x.db")).unwrap(),
            "sqlite:/tmp/x.db"
        );
        assert_eq!(
            config.components_dir(),
            Path::new("/proj/migrations/components")
        );
    }

    #[test]
    fn sections_may_be_partial() {
        let file: File =
            toml::from_str("[build]\nguest-sdk = \"0.1\"\n[sandbox]\nfuel = 5").unwrap();
        assert_eq!(file.build.dir, Path::new(".retort/build"));
        assert_eq!(file.sandbox.memory_mib, 256);
        assert_eq!(
            file.migrations.components,
            Path::new("migrations/components")
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<File>("[database]\nurll = 'x'").is_err());
    }
}
