//! Revision sources and how they become revision components.
//!
//! This module is the source model: a source is one file in a language Retort builds
//! ([`Lang`]), whose leading line comments hold a TOML front matter block:
//!
//! ```text
//! //! Add a phone column to users.
//! //!
//! //! ```toml
//! //! id = "3f2a9c1d0b7e"
//! //! down = ["1a2b3c4d5e6f"]
//! //! message = "add phone"
//! //! created = "2026-11-24T09:30:00Z"
//! //! ```
//! ```
//!
//! (`#` in Python, `//` in JavaScript and C). `build` hands each language's sources to
//! its [`toolchain`] (one file per language), which makes components; this module packs
//! each with its metadata section: the result is all that deploying needs. `scaffold`
//! writes new sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Config;
use crate::graph::{Graph, GraphError};
use crate::revision::{self, Metadata};

pub mod sdk;
pub mod toolchain;

/// Why revision sources could not be read, built or written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file or directory that could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A source without its metadata block.
    #[error("{path}: no ```toml front matter in the leading //! comment")]
    NoFrontMatter {
        /// The source.
        path: PathBuf,
    },
    /// Metadata that is not valid TOML of the expected shape.
    #[error("{path}: invalid front matter")]
    FrontMatter {
        /// The source.
        path: PathBuf,
        /// What TOML said.
        #[source]
        source: toml::de::Error,
    },
    /// A revision id outside `[A-Za-z0-9_-]{1,32}`.
    #[error(
        "{path}: invalid revision id {id:?}: use 1 to 32 characters from [A-Za-z0-9_-], not starting with '-'"
    )]
    BadId {
        /// The source.
        path: PathBuf,
        /// The id.
        id: String,
    },
    /// A template autogenerate cannot write ops into.
    #[error("{path} has no {missing} placeholder: autogenerate writes the ops there")]
    Template {
        /// The template.
        path: PathBuf,
        /// The placeholder.
        missing: &'static str,
    },
    /// Two sources with one id.
    #[error("revision {id} is defined twice: {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// One source.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// No Rust compiler for wasm32.
    #[error(
        "no Rust toolchain that targets wasm32-unknown-unknown: run scripts/setup-guest-toolchain.sh \
         (Debian: rustc-web, rust-web-src, cargo-web, lld-22) or `rustup target add wasm32-unknown-unknown`"
    )]
    NoToolchain,
    /// cargo failed; its output went to the terminal.
    #[error("cargo failed to build the revisions ({status}); its errors are above")]
    Cargo {
        /// How it ended: `exit code 101`, `killed by signal 9`.
        status: String,
    },
    /// A tool that could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The tool.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A core module that could not be made a component.
    #[error("{path}: cannot make the core module a component: {reason}")]
    Componentize {
        /// The module.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A built component that is not a valid revision.
    #[error(transparent)]
    Revision(#[from] revision::RevisionError),
    /// A new revision was asked for where the history has several heads.
    #[error("the sources have several heads ({}): pass --head REV (or BRANCH@head), or merge them first with `retort merge`", .heads.join(", "))]
    SeveralHeads {
        /// The heads.
        heads: Vec<String>,
    },
    /// The sources do not make a valid history.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A file that would be overwritten.
    #[error("{path} exists already")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A language's toolchain is not installed.
    #[error("building {lang} revisions needs {tool}, which is not installed: {hint}")]
    MissingTool {
        /// The language.
        lang: String,
        /// The missing tool.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// A language's tool failed; its output went to the terminal.
    #[error("{tool} failed ({status}); its errors are above")]
    Tool {
        /// The tool.
        tool: String,
        /// How it ended: `exit code 1`, `killed by signal 9`.
        status: String,
    },
}

/// How a tool ended, in words: `exit code 101`, `killed by signal 9`.
pub(crate) fn ended(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The WIT package every revision targets, as this host was built with it.
pub const WIT: &str = include_str!("../../../wit/migration.wit");

/// A revision source's language, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Rust (`.rs`), built with cargo and the guest SDK.
    Rust,
    /// Python (`.py`), built with componentize-py.
    Python,
    /// JavaScript (`.js`), built with componentize-js.
    Js,
    /// C (`.c`), built with clang for wasm32 and wit-bindgen's C bindings.
    C,
}

impl Lang {
    /// Every language.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// The language of a source file, by its extension.
    pub fn of(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?;
        Lang::ALL.into_iter().find(|l| l.extension() == ext)
    }

    /// Its file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Lang::Rust => "rs",
            Lang::Python => "py",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    /// The line-comment prefix that carries the front matter.
    pub fn comment(self) -> &'static str {
        match self {
            Lang::Rust => "//!",
            Lang::Python => "#",
            Lang::Js | Lang::C => "//",
        }
    }

    /// What the scaffold's `{upgrade}` and `{downgrade}` become when no ops are
    /// generated: an example, commented out.
    pub fn example(self) -> [&'static str; 2] {
        match self {
            Lang::Rust => toolchain::rust::EXAMPLE,
            Lang::Python => toolchain::python::EXAMPLE,
            Lang::Js => toolchain::js::EXAMPLE,
            Lang::C => toolchain::c::EXAMPLE,
        }
    }

    /// The built-in scaffold (`{message}`, `{front_matter}`, `{upgrade}` and
    /// `{downgrade}` are filled in).
    pub fn template(self) -> &'static str {
        match self {
            Lang::Rust => toolchain::rust::TEMPLATE,
            Lang::Python => toolchain::python::TEMPLATE,
            Lang::Js => toolchain::js::TEMPLATE,
            Lang::C => toolchain::c::TEMPLATE,
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        })
    }
}

/// The TOML front matter of a source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FrontMatter {
    /// The revision id.
    pub id: String,
    /// The revisions it follows (several for a merge, none for a base).
    #[serde(default)]
    pub down: Vec<String>,
    /// Revisions (or branch labels) that must be applied first, without being parents.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Names of the branch it starts.
    #[serde(default)]
    pub branch_labels: Vec<String>,
    /// What it does, in a line.
    #[serde(default)]
    pub message: String,
    /// When it was written.
    #[serde(default)]
    pub created: String,
    /// Extra crates this revision uses, as in Cargo.toml.
    #[serde(default)]
    pub dependencies: BTreeMap<String, toml::Value>,
    /// `false`: the revision runs outside a transaction.
    #[serde(default)]
    pub transactional: Option<bool>,
}

/// A revision source file.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its language.
    pub lang: Lang,
    /// Its metadata block.
    pub front: FrontMatter,
}

impl Source {
    /// Reads a source's metadata block (the code is read only when it is built).
    pub fn read(path: &Path) -> Result<Source, BuildError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let lang = Lang::of(path).unwrap_or(Lang::Rust);
        let front = parse_front_matter(&text, lang, path)?;
        Ok(Source {
            path: path.to_owned(),
            lang,
            front,
        })
    }

    /// The metadata a component built from it carries.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            format: revision::FORMAT,
            id: self.front.id.clone(),
            down: self.front.down.clone(),
            depends_on: self.front.depends_on.clone(),
            branch_labels: self.front.branch_labels.clone(),
            message: self.front.message.clone(),
            created: self.front.created.clone(),
            transactional: self.front.transactional.unwrap_or(true),
        }
    }

    /// A crate, module or file name for the revision: `rev_<id>`.
    pub fn module_name(&self) -> String {
        format!("rev_{}", self.front.id.to_lowercase().replace('-', "_"))
    }

    fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.front.id.clone())
    }
}

fn parse_front_matter(text: &str, lang: Lang, path: &Path) -> Result<FrontMatter, BuildError> {
    let doc: Vec<&str> = text
        .lines()
        .map_while(|l| l.strip_prefix(lang.comment()))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.trim() == "```toml")
        .ok_or_else(|| BuildError::NoFrontMatter {
            path: path.to_owned(),
        })?;
    let len = doc[start + 1..]
        .iter()
        .position(|l| l.trim() == "```")
        .ok_or_else(|| BuildError::NoFrontMatter {
            path: path.to_owned(),
        })?;
    let toml_text = doc[start + 1..start + 1 + len].join("\n");
    let mut front: FrontMatter =
        toml::from_str(&toml_text).map_err(|source| BuildError::FrontMatter {
            path: path.to_owned(),
            source,
        })?;
    for id in std::iter::once(&front.id)
        .chain(&front.down)
        .chain(&front.depends_on)
    {
        if !revision::valid_id(id) {
            return Err(BuildError::BadId {
                path: path.to_owned(),
                id: id.clone(),
            });
        }
    }
    if front.message.is_empty() {
        front.message = doc.first().map(|l| l.trim().to_owned()).unwrap_or_default();
    }
    Ok(front)
}

/// Every source in the sources directory, sorted by file name.
pub fn sources(config: &Config) -> Result<Vec<Source>, BuildError> {
    let dir = config.sources_dir();
    let mut paths = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry.map_err(io(&dir))?.path();
                if Lang::of(&path).is_some() {
                    paths.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&dir)(e)),
    }
    paths.sort();
    let mut out: Vec<Source> = Vec::new();
    for path in paths {
        let source = Source::read(&path)?;
        if let Some(first) = out.iter().find(|s| s.front.id == source.front.id) {
            return Err(BuildError::DuplicateId {
                id: source.front.id.clone(),
                first: first.path.clone(),
                second: path,
            });
        }
        out.push(source);
    }
    Ok(out)
}

/// What `build` produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// The revision id.
    pub id: String,
    /// The component file.
    pub component: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// False when the component was already up to date.
    pub changed: bool,
}

/// Builds every source into a revision component in the components directory.
pub fn build(config: &Config, quiet: bool) -> Result<Vec<Built>, BuildError> {
    build_with_progress(config, quiet, &|_| {})
}

/// What `retort build` is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildStep<'a> {
    /// This many sources will be built.
    Sources(usize),
    /// A source (or, for Rust, `N revisions`, built in one cargo run) is being built.
    Building {
        /// The source's path, or what the tool builds at once.
        what: &'a str,
        /// Its language.
        lang: Lang,
    },
    /// This many more sources are built (or were cached).
    Built(usize),
}

/// [`build`], telling `progress` what it builds as it goes.
pub fn build_with_progress(
    config: &Config,
    quiet: bool,
    progress: &(dyn Fn(BuildStep<'_>) + Sync),
) -> Result<Vec<Built>, BuildError> {
    let sources = sources(config)?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    progress(BuildStep::Sources(sources.len()));
    let build_dir = absolute(&config.build_dir())?;
    let components = config.components_dir();
    std::fs::create_dir_all(&components).map_err(io(&components))?;
    // Each language's toolchain builds its sources (Rust's all at once, in one cargo
    // workspace; the others one by one, cached).
    let ctx = toolchain::Context {
        config,
        build_dir: &build_dir,
        quiet,
        progress,
    };
    let mut unpacked: std::collections::HashMap<String, Vec<u8>> = Default::default();
    for lang in Lang::ALL {
        let of_lang: Vec<&Source> = sources.iter().filter(|s| s.lang == lang).collect();
        if of_lang.is_empty() {
            continue;
        }
        let components = toolchain::of(lang).build(&of_lang, &ctx)?;
        for (source, component) in of_lang.iter().zip(components) {
            unpacked.insert(source.front.id.clone(), component);
        }
    }
    let mut built = Vec::new();
    for source in &sources {
        let component = unpacked
            .remove(&source.front.id)
            .expect("every source was built by its language's toolchain");
        let target = components.join(format!("{}.wasm", source.stem()));
        let bytes = revision::pack(&component, &source.metadata(), &target)?;
        let changed = std::fs::read(&target).ok().as_deref() != Some(bytes.as_slice());
        if changed {
            std::fs::write(&target, &bytes).map_err(io(&target))?;
        }
        built.push(Built {
            id: source.front.id.clone(),
            component: target,
            size: bytes.len() as u64,
            changed,
        });
    }
    Ok(built)
}

/// A directory's absolute path, creating it when missing.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, BuildError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    path.canonicalize().map_err(io(path))
}

pub(crate) fn write_if_changed(path: &Path, contents: &str) -> Result<(), BuildError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    std::fs::write(path, contents).map_err(io(path))
}

/// A new 12-hex-digit revision id.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

/// A file-name-friendly slug of a message.
pub fn slug(message: &str) -> String {
    let mut slug = String::new();
    for c in message.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    slug.trim_end_matches('_').to_owned()
}

/// Why `init` could not make a project.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory holds a project already (this `retort.toml`).
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    /// The skeleton could not be written.
    #[error("cannot write the project skeleton in {}", .path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `retort init`: `retort.toml`, the sources folder with the revision template, and a
/// `.gitignore`, in `dir`. Returns the config file and the sources folder it created.
pub fn init_project(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let config_path = dir.join(crate::config::FILE_NAME);
    if config_path.exists() {
        return Err(InitError::Exists(config_path));
    }
    let versions = dir.join("migrations/versions");
    let io = |source| InitError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(&versions).map_err(io)?;
    std::fs::write(
        &config_path,
        crate::config::template(&format!("{:?}", sdk::BUNDLED)),
    )
    .map_err(io)?;
    std::fs::write(
        dir.join("migrations/script.rs.tmpl"),
        toolchain::rust::TEMPLATE,
    )
    .map_err(io)?;
    std::fs::write(dir.join(".gitignore"), ".retort/\n*.db\n").map_err(io)?;
    Ok(vec![config_path, versions])
}

/// What `revision` and `merge` ask for.
#[derive(Debug, Clone, Default)]
pub struct NewRevision {
    /// Its message (`-m`).
    pub message: String,
    /// Its id (`--rev-id`); a random one otherwise.
    pub id: Option<String>,
    /// Down revisions as identifiers (`REV`, `branch@head`, `base`); empty: the head.
    pub heads: Vec<String>,
    /// Allow a down revision that is not a head (start a branch from the middle).
    pub splice: bool,
    /// Branch labels it starts.
    pub branch_labels: Vec<String>,
    /// Revisions it depends on without following them.
    pub depends_on: Vec<String>,
    /// The source's language (Rust unless asked).
    pub lang: Option<Lang>,
    /// The bodies of `upgrade` and `downgrade`, written by autogenerate; the template's
    /// examples otherwise.
    pub bodies: Option<[String; 2]>,
}

/// `template` with each placeholder replaced, in one pass: text that fills one
/// placeholder is never read for another.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match values.iter().find(|(key, _)| rest.starts_with(key)) {
            Some((key, value)) => {
                out.push_str(value);
                rest = &rest[key.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Writes a new revision source; its down revisions are resolved against the sources'
/// own graph (the components may not be built yet).
pub fn scaffold(config: &Config, request: &NewRevision) -> Result<PathBuf, BuildError> {
    let message = request.message.as_str();
    let id = request.id.clone().unwrap_or_else(new_id);
    let dir = config.sources_dir();
    let lang = request.lang.unwrap_or(Lang::Rust);
    let path = dir.join(format!("{id}_{}.{}", slug(message), lang.extension()));
    if !revision::valid_id(&id) {
        return Err(BuildError::BadId { path, id });
    }
    let existing = sources(config)?;
    if let Some(other) = existing.iter().find(|s| s.front.id == id) {
        return Err(BuildError::DuplicateId {
            id,
            first: other.path.clone(),
            second: path,
        });
    }
    let metas: Vec<Metadata> = existing.iter().map(Source::metadata).collect();
    let graph = Graph::new(metas.clone())?;
    let down: Vec<String> = if request.heads.is_empty() {
        match graph.heads().as_slice() {
            [] => Vec::new(),
            [one] => vec![one.to_string()],
            many => {
                return Err(BuildError::SeveralHeads {
                    heads: many.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
    } else {
        let mut down = Vec::new();
        for spec in &request.heads {
            for rev in graph.upgrade_target(spec, &[])? {
                let is_head = graph.get(&rev).is_some_and(|n| n.children.is_empty());
                if !is_head && !request.splice {
                    return Err(GraphError::NotAHead { id: rev }.into());
                }
                if !down.contains(&rev) {
                    down.push(rev);
                }
            }
        }
        down
    };
    let mut depends_on = Vec::new();
    for dep in &request.depends_on {
        // A label stays a label (it names a branch); an id or prefix becomes the full id.
        let resolved = if graph.label(dep).is_some() {
            dep.clone()
        } else {
            graph.lookup(dep)?.to_owned()
        };
        depends_on.push(resolved);
    }
    let mut meta = Metadata::new(id, message);
    meta.down = down;
    meta.depends_on = depends_on;
    meta.branch_labels = request.branch_labels.clone();
    // The new revision must leave a valid graph (labels unique, no cycle).
    Graph::new(metas.into_iter().chain([meta.clone()]))?;
    // Written by hand to keep the fields in reading order (id first).
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let ids = |v: &[String]| {
        format!(
            "[{}]",
            v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
        )
    };
    let c = lang.comment();
    let mut front_matter = format!(
        "{c} id = {}\n{c} down = {}\n",
        quote(&meta.id),
        ids(&meta.down)
    );
    if !meta.depends_on.is_empty() {
        front_matter.push_str(&format!("{c} depends-on = {}\n", ids(&meta.depends_on)));
    }
    if !meta.branch_labels.is_empty() {
        front_matter.push_str(&format!(
            "{c} branch-labels = {}\n",
            ids(&meta.branch_labels)
        ));
    }
    front_matter.push_str(&format!(
        "{c} message = {}\n{c} created = {}\n",
        quote(&meta.message),
        quote(&meta.created)
    ));
    let template_path = config
        .root
        .join(format!("migrations/script.{}.tmpl", lang.extension()));
    let template =
        std::fs::read_to_string(&template_path).unwrap_or_else(|_| lang.template().to_owned());
    let first_line = message.lines().next().unwrap_or_default();
    let [upgrade, downgrade] = match &request.bodies {
        Some([up, down]) => {
            if let Some(missing) = ["{upgrade}", "{downgrade}"]
                .into_iter()
                .find(|p| !template.contains(p))
            {
                return Err(BuildError::Template {
                    path: template_path,
                    missing,
                });
            }
            [up.as_str(), down.as_str()]
        }
        None => lang.example(),
    };
    let text = fill(
        &template,
        &[
            ("{message}", first_line),
            ("{front_matter}", &front_matter),
            ("{upgrade}", upgrade),
            ("{downgrade}", downgrade),
        ],
    );
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    if path.exists() {
        return Err(BuildError::Exists { path });
    }
    std::fs::write(&path, text).map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_round_trips_through_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("retort.toml")).unwrap();
        let new = |message: &str, id: Option<&str>| NewRevision {
            message: message.into(),
            id: id.map(str::to_owned),
            ..NewRevision::default()
        };
        let first = scaffold(&config, &new("Create users!", Some("aaaa"))).unwrap();
        assert!(first.ends_with("migrations/versions/aaaa_create_users.rs"));
        let second = scaffold(&config, &new("add phone", None)).unwrap();
        let s = Source::read(&second).unwrap();
        assert_eq!(s.front.down, ["aaaa"]);
        assert_eq!(s.front.message, "add phone");
        assert_eq!(s.front.id.len(), 12);
        assert!(matches!(
            scaffold(&config, &new("again", Some("aaaa"))),
            Err(BuildError::DuplicateId { .. })
        ));
        // Every language's scaffold reads back with its front matter.
        for lang in [Lang::Python, Lang::Js, Lang::C] {
            let request = NewRevision {
                lang: Some(lang),
                ..new(&format!("in {lang}"), None)
            };
            let path = scaffold(&config, &request).unwrap();
            assert_eq!(Lang::of(&path), Some(lang));
            let s = Source::read(&path).unwrap();
            assert_eq!(s.front.message, format!("in {lang}"));
            assert_eq!(s.lang, lang);
        }
        assert!(matches!(
            parse_front_matter("//! nothing here\nfn x() {}", Lang::Rust, Path::new("x.rs")),
            Err(BuildError::NoFrontMatter { .. })
        ));
    }
}
