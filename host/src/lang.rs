//! Revision sources in languages other than Rust, and how each becomes a component:
//!
//! | language | file | toolchain |
//! |---|---|---|
//! | Python | `.py` | componentize-py (PyPI) |
//! | JavaScript | `.js` | componentize-js (npm, StarlingMonkey) |
//! | C | `.c` | wit-bindgen's C bindings + clang for wasm32-wasi with wasi-libc (Debian), made a component with the WASI preview1 adapter |
//!
//! Every source carries the same TOML front matter as a Rust one, in the language's line
//! comments. These toolchains take seconds per revision, so each build is cached under
//! the build directory, keyed by the source, the WIT and the language.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{BuildError, Source, io};

/// The WIT package every revision targets, as this host was built with it.
pub const WIT: &str = include_str!("../../wit/migration.wit");

/// A revision source's language, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    pub fn of(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?;
        Lang::ALL.into_iter().find(|l| l.extension() == ext)
    }

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

    /// The built-in scaffold (`{message}` and `{front_matter}` are filled in).
    pub fn template(self) -> &'static str {
        match self {
            Lang::Rust => crate::build::TEMPLATE,
            Lang::Python => PYTHON_TEMPLATE,
            Lang::Js => JS_TEMPLATE,
            Lang::C => C_TEMPLATE,
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

const PYTHON_TEMPLATE: &str = r#"# {message}
#
# ```toml
{front_matter}# ```
#
# Built by `retort build` with componentize-py. The host's ops are in
# wit_world.imports.op, values are wit_world.imports.types.Value_*; raise
# componentize_py_types.Err("why") to fail (see docs/languages/python.md).

import wit_world
from wit_world.imports import op, types
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def upgrade(self) -> None:
        # e.g. op.execute("ALTER TABLE users ADD COLUMN phone VARCHAR(20)", [])
        pass

    def downgrade(self) -> None:
        pass
"#;

const JS_TEMPLATE: &str = r#"// {message}
//
// ```toml
{front_matter}// ```
//
// Built by `retort build` with componentize-js. Values are { tag: 's64', val: 1n },
// { tag: 'text', val: 'x' }, ...; throw a string to fail (see docs/languages/js.md).

import { execute, query, log } from 'retort:migration/op@0.1.0';

export function upgrade() {
  // e.g. execute("ALTER TABLE users ADD COLUMN phone VARCHAR(20)", []);
}

export function downgrade() {
}
"#;

const C_TEMPLATE: &str = r#"// {message}
//
// ```toml
{front_matter}// ```
//
// Built by `retort build`: wit-bindgen's C bindings (revision.h), clang for wasm32-wasi
// with wasi-libc (see docs/languages/c.md). Return false and set *err to fail.

#include <stdio.h>
#include "revision.h"

// Runs one statement; on failure puts a message in *err.
static bool exec(const char *sql, revision_string_t *err) {
  revision_string_t s;
  revision_string_set(&s, sql);
  retort_migration_op_list_value_t params = {NULL, 0};
  uint64_t rows;
  retort_migration_op_error_t error;
  if (retort_migration_op_execute(&s, &params, &rows, &error)) {
    return true;
  }
  char message[512];
  snprintf(message, sizeof message, "cannot run \"%s\"", sql);
  revision_string_dup(err, message);
  retort_migration_op_error_free(&error);
  return false;
}

bool exports_revision_upgrade(revision_string_t *err) {
  // e.g. return exec("ALTER TABLE users ADD COLUMN phone VARCHAR(20)", err);
  (void)exec;
  return true;
}

bool exports_revision_downgrade(revision_string_t *err) {
  return true;
}
"#;

/// A program on PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A tool: the environment variable that names it, else the first of `names` on PATH.
fn tool(lang: Lang, var: &str, names: &[&str], hint: &str) -> Result<PathBuf, BuildError> {
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

fn run(mut cmd: Command, tool: &Path, quiet: bool) -> Result<(), BuildError> {
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
            status: status.to_string(),
        });
    }
    Ok(())
}

fn write(path: &Path, contents: &[u8]) -> Result<(), BuildError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, contents).map_err(io(path))
}

/// Builds one non-Rust source into a component (without Retort's metadata), or takes
/// it from the build cache when the source and the WIT are unchanged.
pub fn build(source: &Source, build_dir: &Path, quiet: bool) -> Result<Vec<u8>, BuildError> {
    let lang = source.lang;
    let text = std::fs::read(&source.path).map_err(io(&source.path))?;
    let work = build_dir.join(lang.extension()).join(source.module_name());
    let out = work.join("component.wasm");
    let key_path = work.join("input.sha256");
    let mut keyed = text.clone();
    keyed.extend_from_slice(WIT.as_bytes());
    keyed.extend_from_slice(lang.extension().as_bytes());
    let key = crate::revision::sha256_hex(&keyed);
    if std::fs::read_to_string(&key_path).is_ok_and(|k| k == key)
        && let Ok(bytes) = std::fs::read(&out)
    {
        return Ok(bytes);
    }
    let _ = std::fs::remove_file(&key_path);
    write(&work.join("wit/migration.wit"), WIT.as_bytes())?;
    let module = source.module_name();
    match lang {
        Lang::Rust => unreachable!("Rust sources build in one cargo workspace"),
        Lang::Python => {
            let program = tool(
                lang,
                "RETORT_COMPONENTIZE_PY",
                &["componentize-py"],
                "install it with `pip install componentize-py==0.25.1` (scripts/setup-languages.sh does)",
            )?;
            write(&work.join(format!("{module}.py")), &text)?;
            let mut cmd = Command::new(&program);
            cmd.current_dir(&work)
                .args(["-d", "wit", "-w", "revision", "componentize", &module])
                .args(["-p", ".", "-o", "component.wasm"]);
            run(cmd, &program, quiet)?;
        }
        Lang::Js => {
            let program = tool(
                lang,
                "RETORT_COMPONENTIZE_JS",
                &["componentize-js"],
                "install it with `npm install -g @bytecodealliance/componentize-js@0.23.0` (scripts/setup-languages.sh does)",
            )?;
            write(&work.join(format!("{module}.js")), &text)?;
            let mut cmd = Command::new(&program);
            // No wasi:http and no fetch event: a revision gets only what the host links.
            cmd.current_dir(&work)
                .arg(format!("{module}.js"))
                .args(["--wit", "wit", "--world-name", "revision"])
                .args(["-d", "http", "-d", "fetch-event", "-o", "component.wasm"]);
            run(cmd, &program, quiet)?;
        }
        Lang::C => {
            let bindgen = tool(
                lang,
                "RETORT_WIT_BINDGEN",
                &["wit-bindgen"],
                "install it with `cargo install wit-bindgen-cli --version 0.61.1 --locked` (scripts/setup-languages.sh does)",
            )?;
            let clang = tool(
                lang,
                "RETORT_CLANG",
                &["clang-14", "clang"],
                "install Debian's clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 (scripts/setup-languages.sh does)",
            )?;
            let mut cmd = Command::new(&bindgen);
            cmd.current_dir(&work)
                .args(["c", "wit", "--world", "revision", "--out-dir", "."]);
            run(cmd, &bindgen, true)?;
            write(&work.join(format!("{module}.c")), &text)?;
            let mut cmd = Command::new(&clang);
            cmd.current_dir(&work)
                .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-I."])
                .args([
                    &format!("{module}.c"),
                    "revision.c",
                    "revision_component_type.o",
                ])
                .args(["-o", "core.wasm"]);
            run(cmd, &clang, quiet)?;
            let core = work.join("core.wasm");
            let bytes = std::fs::read(&core).map_err(io(&core))?;
            let component = wit_component::ComponentEncoder::default()
                .validate(true)
                .module(&bytes)
                .and_then(|e| {
                    e.adapter(
                        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
                    )
                })
                .and_then(|mut e| e.encode())
                .map_err(|e| BuildError::Componentize {
                    path: core.clone(),
                    reason: format!("{e:#}"),
                })?;
            write(&out, &component)?;
        }
    }
    let bytes = std::fs::read(&out).map_err(io(&out))?;
    write(&key_path, key.as_bytes())?;
    Ok(bytes)
}
