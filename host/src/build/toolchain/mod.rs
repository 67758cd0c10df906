//! One toolchain per language, behind one interface: each turns that language's
//! sources into components (without Retort's metadata, which build/mod.rs adds).
//!
//! | language | file | toolchain |
//! |---|---|---|
//! | Rust | `.rs` | cargo for wasm32-unknown-unknown, one generated workspace; wit-component |
//! | Python | `.py` | componentize-py (PyPI) |
//! | JavaScript | `.js` | componentize-js (npm, StarlingMonkey) |
//! | C | `.c` | wit-bindgen's C bindings + clang for wasm32-wasi with wasi-libc (Debian), made a component with the WASI preview1 adapter |
//!
//! A new language is one file here, one [`Lang`] variant and one line in [`of`].

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{BuildError, Lang, Source, WIT, io};
use crate::config::Config;

pub mod c;
pub mod js;
pub mod python;
pub mod rust;

/// What a toolchain builds with.
pub struct Context<'a> {
    /// The project's configuration.
    pub config: &'a Config,
    /// The project's build directory (absolute).
    pub build_dir: &'a Path,
    /// Keep the tools' own output to errors.
    pub quiet: bool,
    /// Told what is being built as it happens.
    pub progress: &'a (dyn Fn(crate::build::BuildStep<'_>) + Sync),
}

/// One language's way from sources to components.
pub trait Toolchain {
    /// Builds `sources` (all in this toolchain's language) into components without
    /// metadata, one per source, in order.
    fn build(&self, sources: &[&Source], ctx: &Context<'_>) -> Result<Vec<Vec<u8>>, BuildError>;
}

/// The toolchain of `lang`.
pub fn of(lang: Lang) -> &'static dyn Toolchain {
    match lang {
        Lang::Rust => &rust::Rust,
        Lang::Python => &python::Python,
        Lang::Js => &js::Js,
        Lang::C => &c::C,
    }
}

/// Builds each source on its own with `make`, cached under the build directory and
/// keyed by the source, the WIT and the language (these toolchains take seconds per
/// revision). `make` gets the work directory (holding `wit/`) and the module name, and
/// leaves `component.wasm` there.
pub(crate) fn one_by_one(
    sources: &[&Source],
    ctx: &Context<'_>,
    make: impl Fn(&Path, &str, &[u8]) -> Result<(), BuildError>,
) -> Result<Vec<Vec<u8>>, BuildError> {
    sources
        .iter()
        .map(|source| {
            let lang = source.lang;
            let text = std::fs::read(&source.path).map_err(io(&source.path))?;
            let module = source.module_name();
            let work = ctx.build_dir.join(lang.extension()).join(&module);
            let out = work.join("component.wasm");
            let key_path = work.join("input.sha256");
            let mut keyed = text.clone();
            keyed.extend_from_slice(WIT.as_bytes());
            keyed.extend_from_slice(lang.extension().as_bytes());
            let key = crate::revision::sha256_hex(&keyed);
            if std::fs::read_to_string(&key_path).is_ok_and(|k| k == key)
                && let Ok(bytes) = std::fs::read(&out)
            {
                (ctx.progress)(crate::build::BuildStep::Built(1));
                return Ok(bytes);
            }
            (ctx.progress)(crate::build::BuildStep::Building {
                what: &source.path.file_name().map_or_else(
                    || source.path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                lang,
            });
            let _ = std::fs::remove_file(&key_path);
            write(&work.join("wit/migration.wit"), WIT.as_bytes())?;
            make(&work, &module, &text)?;
            let bytes = std::fs::read(&out).map_err(io(&out))?;
            write(&key_path, key.as_bytes())?;
            (ctx.progress)(crate::build::BuildStep::Built(1));
            Ok(bytes)
        })
        .collect()
}

/// A program on PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A tool: the environment variable that names it, else the first of `names` on PATH.
pub(crate) fn tool(
    lang: Lang,
    var: &str,
    names: &[&str],
    hint: &str,
) -> Result<PathBuf, BuildError> {
    if let Some(p) = std::env::var_os(var) {
        return Ok(PathBuf::from(p));
    }
    names
        .iter()
        .find_map(|n| which(n))
        .ok_or_else(|| BuildError::MissingTool {
            lang: lang.to_string(),
            tool: names[0].to_owned(),
            hint: format!("{hint}; or set {var} to its path"),
        })
}

pub(crate) fn run(mut cmd: Command, tool: &Path, quiet: bool) -> Result<(), BuildError> {
    if quiet {
        cmd.stdout(std::process::Stdio::null());
    }
    let status = cmd.status().map_err(|source| BuildError::Spawn {
        program: tool.display().to_string(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Tool {
            tool: tool.display().to_string(),
            status: crate::build::ended(status),
        });
    }
    Ok(())
}

pub(crate) fn write(path: &Path, contents: &[u8]) -> Result<(), BuildError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, contents).map_err(io(path))
}
