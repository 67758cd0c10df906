//! Puts the revision components `retort build` wrote (migrations/components/*.wasm)
//! inside the binary, the way sqlx's `migrate!` embeds its migrations.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = root.join("migrations/components");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut components: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    components.sort();
    if components.is_empty() {
        println!(
            "cargo:warning=no revision components in {}: run `retort build` there, then build again (the binary refuses to start without them)",
            dir.display()
        );
    }
    let mut code = String::from(
        "/// The revision components built into this binary: (file name, bytes).\npub const COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for path in &components {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().expect("a file").to_string_lossy();
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("components.rs"), code).expect("OUT_DIR is writable");
}
