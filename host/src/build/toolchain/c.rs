//! C revisions: wit-bindgen's C bindings, clang for wasm32-wasi with Debian's wasi-libc, made a component with wasmtime's WASI preview1 reactor adapter.

use std::path::Path;
use std::process::Command;

use super::{Context, Toolchain, one_by_one, run, tool, write};
use crate::build::{BuildError, Lang, Source, io};

/// The scaffold of a new C revision (`{message}` and `{front_matter}` are
/// filled in).
pub const TEMPLATE: &str = r#"// {message}
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

// Fails naming the op and the host's error case; frees the error.
static bool fail(revision_string_t *err, retort_migration_op_error_t *error, const char *what) {
  char message[512];
  snprintf(message, sizeof message, "%s failed (error case %d)", what, (int)error->tag);
  revision_string_dup(err, message);
  retort_migration_op_error_free(error);
  return false;
}

bool exports_revision_upgrade(revision_string_t *err) {
  retort_migration_op_error_t error;
{upgrade}
  (void)exec, (void)fail, (void)error, (void)err;
  return true;
}

bool exports_revision_downgrade(revision_string_t *err) {
  retort_migration_op_error_t error;
{downgrade}
  (void)error, (void)err;
  return true;
}
"#;

/// What the template's bodies hold when nothing is generated.
pub const EXAMPLE: [&str; 2] = [
    "  // Replace this example with the revision's changes (uncommented, it runs as is):\n  // if (!exec(\"CREATE TABLE accounts (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL)\", err)) return false;\n  // if (!exec(\"ALTER TABLE accounts ADD COLUMN phone VARCHAR(20)\", err)) return false;",
    "  // The exact inverse of upgrade, last change first:\n  // if (!exec(\"ALTER TABLE accounts DROP COLUMN phone\", err)) return false;\n  // if (!exec(\"DROP TABLE accounts\", err)) return false;",
];

/// The C toolchain (wit-bindgen C bindings, clang, the preview1 adapter).
pub struct C;

impl Toolchain for C {
    fn build(&self, sources: &[&Source], ctx: &Context<'_>) -> Result<Vec<Vec<u8>>, BuildError> {
        one_by_one(sources, ctx, |work: &Path, module: &str, text: &[u8]| {
            let lang = Lang::C;
            let quiet = ctx.quiet;
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
            cmd.current_dir(work)
                .args(["c", "wit", "--world", "revision", "--out-dir", "."]);
            run(cmd, &bindgen, true)?;
            write(&work.join(format!("{module}.c")), text)?;
            let mut cmd = Command::new(&clang);
            cmd.current_dir(work)
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
            write(&work.join("component.wasm"), &component)?;
            Ok(())
        })
    }
}
