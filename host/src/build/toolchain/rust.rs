//! Rust revisions: one cdylib crate per source in a generated cargo workspace under
//! the build directory (the source is the crate's `lib.rs`), compiled with one cargo
//! invocation for `wasm32-unknown-unknown`, each core module made a component with
//! wit-component.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Context, Toolchain};
use crate::build::{BuildError, Source, absolute, io, write_if_changed};
use crate::config::Config;

/// The built-in revision template; `init` writes it to `migrations/script.rs.tmpl`,
/// where a project can change it. Placeholders: `{message}`, `{front_matter}`.
pub const TEMPLATE: &str = r#"//! {message}
//!
//! ```toml
{front_matter}//! ```

use retort_guest::prelude::*;

struct Migration;

impl Revision for Migration {
    fn upgrade() -> Result<()> {
{upgrade}
        Ok(())
    }

    fn downgrade() -> Result<()> {
{downgrade}
        Ok(())
    }
}

retort_guest::revision!(Migration);
"#;

/// What the template's bodies hold when nothing is generated.
pub const EXAMPLE: [&str; 2] = [
    r#"        // Replace this example with the revision's changes (uncommented, it runs as is):
        // create_table(
        //     Table::new("accounts")
        //         .column(Column::new("id", SqlType::Integer).primary_key().autoincrement())
        //         .column(Column::new("email", SqlType::Varchar(100)).not_null().unique()),
        // )?;
        // add_column("accounts", Column::new("phone", SqlType::Varchar(20)))?;"#,
    r#"        // The exact inverse of upgrade, last change first:
        // drop_column("accounts", "phone")?;
        // drop_table("accounts")?;"#,
];

/// The Rust toolchain.
pub struct Rust;

impl Toolchain for Rust {
    fn build(&self, sources: &[&Source], ctx: &Context<'_>) -> Result<Vec<Vec<u8>>, BuildError> {
        let Context {
            config,
            build_dir,
            quiet,
            progress,
        } = *ctx;
        let what = match sources.len() {
            1 => "1 revision with cargo".to_owned(),
            n => format!("{n} revisions with cargo"),
        };
        progress(crate::build::BuildStep::Building {
            what: &what,
            lang: crate::build::Lang::Rust,
        });
        write_workspace(config, build_dir, sources)?;
        let cargo = Cargo::detect()?;
        let target_dir = absolute(&config.build_target_dir())?;
        let mut cmd = cargo.command(build_dir, &target_dir);
        if quiet {
            cmd.arg("--quiet");
        }
        let status = cmd.status().map_err(|source| BuildError::Spawn {
            program: cargo.cargo.display().to_string(),
            source,
        })?;
        if !status.success() {
            return Err(BuildError::Cargo {
                status: crate::build::ended(status),
            });
        }
        progress(crate::build::BuildStep::Built(sources.len()));
        let out_dir = target_dir.join("wasm32-unknown-unknown/release");
        sources
            .iter()
            .map(|source| {
                let module_path = out_dir.join(format!("{}.wasm", source.module_name()));
                let module = std::fs::read(&module_path).map_err(io(&module_path))?;
                componentize(&module, &module_path)
            })
            .collect()
    }
}

/// How to invoke cargo for `wasm32-unknown-unknown` on this machine.
#[derive(Debug, Clone)]
pub struct Cargo {
    cargo: PathBuf,
    rustc: PathBuf,
    /// Build std from source (Debian's `rust-web-src`), for toolchains without a
    /// prebuilt wasm std.
    build_std: bool,
}

impl Cargo {
    /// `RETORT_CARGO`/`RETORT_RUSTC` first; then a toolchain (e.g. rustup's) that has
    /// the wasm target installed; then Debian's `rustc-web` with std built from source.
    pub fn detect() -> Result<Cargo, BuildError> {
        if let Ok(cargo) = std::env::var("RETORT_CARGO") {
            let rustc = std::env::var("RETORT_RUSTC").unwrap_or_else(|_| "rustc".into());
            let build_std = !has_wasm_std(Path::new(&rustc));
            return Ok(Cargo {
                cargo: cargo.into(),
                rustc: rustc.into(),
                build_std,
            });
        }
        if has_wasm_std(Path::new("rustc")) {
            return Ok(Cargo {
                cargo: "cargo".into(),
                rustc: "rustc".into(),
                build_std: false,
            });
        }
        let debian_rustc = Path::new("/usr/bin/rustc");
        if debian_rustc.exists()
            && Path::new("/usr/bin/cargo").exists()
            && Path::new("/usr/lib/rustlib/src/rust/library").exists()
        {
            return Ok(Cargo {
                cargo: "/usr/bin/cargo".into(),
                rustc: debian_rustc.into(),
                build_std: !has_wasm_std(debian_rustc),
            });
        }
        Err(BuildError::NoToolchain)
    }

    fn command(&self, build_dir: &Path, target_dir: &Path) -> Command {
        let mut cmd = Command::new(&self.cargo);
        // What the calling environment set for its own build must not leak in
        // (e.g. when retort itself runs under `cargo run` or `cargo test`).
        for var in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_RUSTFLAGS",
            "RUSTC_BOOTSTRAP",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUSTC", &self.rustc)
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(build_dir)
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"]);
        if self.build_std {
            cmd.env("RUSTC_BOOTSTRAP", "1")
                .arg("-Zbuild-std=std,panic_abort");
        }
        cmd
    }
}

/// True when `rustc`'s sysroot has a prebuilt std for wasm32-unknown-unknown.
fn has_wasm_std(rustc: &Path) -> bool {
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib/wasm32-unknown-unknown/lib")
        .exists()
}

/// A core module with an embedded component type (as wit-bindgen makes) to a component.
pub fn componentize(module: &[u8], path: &Path) -> Result<Vec<u8>, BuildError> {
    let err = |e: anyhow::Error| BuildError::Componentize {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(err)?
        .encode()
        .map_err(err)
}

/// The generated workspace: one crate per source, sharing one lock file and target dir.
fn write_workspace(
    config: &Config,
    build_dir: &Path,
    sources: &[&Source],
) -> Result<(), BuildError> {
    let crates = build_dir.join("revisions");
    std::fs::create_dir_all(&crates).map_err(io(&crates))?;
    let root = absolute(&config.root)?;
    let sdk = if crate::build::sdk::is_bundled(&config.file.build.guest_sdk) {
        let krate = crate::build::sdk::write(&build_dir.join("sdk"))?;
        let krate = krate.canonicalize().map_err(io(&krate))?;
        toml::Value::Table(toml::toml! { path = (krate.display().to_string()) })
    } else {
        absolutize_dependency(&config.file.build.guest_sdk, &root)
    };
    let wanted: Vec<String> = sources.iter().map(|s| s.module_name()).collect();
    // Crates of sources that are gone would break the workspace build.
    for entry in std::fs::read_dir(&crates).map_err(io(&crates))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    write_if_changed(
        &build_dir.join("Cargo.toml"),
        r#"# Generated by `retort build`; edits are overwritten.
[workspace]
resolver = "3"
members = ["revisions/*"]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false
"#,
    )?;
    for source in sources {
        let dir = crates.join(source.module_name());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lib = source.path.canonicalize().map_err(io(&source.path))?;
        let mut deps = toml::Table::new();
        deps.insert("retort-guest".into(), sdk.clone());
        for (name, spec) in &source.front.dependencies {
            deps.insert(name.clone(), absolutize_dependency(spec, &root));
        }
        let manifest: toml::Table = toml::toml! {
            [package]
            name = (source.module_name())
            version = "0.0.0"
            edition = "2024"
            publish = false

            [lib]
            path = (lib.display().to_string())
            crate-type = ["cdylib"]
        };
        let mut manifest = manifest;
        manifest.insert("dependencies".into(), toml::Value::Table(deps));
        let manifest = format!(
            "# Generated by `retort build` from {}.\n{}",
            source.path.display(),
            toml::to_string(&manifest).expect("manifest serializes")
        );
        write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    }
    Ok(())
}

/// Makes a `{ path = "..." }` dependency absolute, relative to the project root.
fn absolutize_dependency(spec: &toml::Value, root: &Path) -> toml::Value {
    let mut spec = spec.clone();
    if let Some(table) = spec.as_table_mut()
        && let Some(toml::Value::String(p)) = table.get("path")
    {
        let abs = root.join(p);
        let abs = abs.canonicalize().unwrap_or(abs);
        table.insert(
            "path".into(),
            toml::Value::String(abs.display().to_string()),
        );
    }
    spec
}
