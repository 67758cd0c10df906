//! The guest SDK (`retort-guest`) and the WIT it is generated from, carried inside the
//! binary: `guest-sdk = "bundled"` (the default, and what `retort init` writes) makes
//! `retort build` write them into the build directory and depend on that copy, so that
//! an installed or copied `retort` builds Rust revisions without its source checkout
//! and always against the WIT it runs them with.

use std::path::{Path, PathBuf};

use crate::build::{BuildError, WIT, io, write_if_changed};

/// The `[build] guest-sdk` value that selects the bundled SDK.
pub const BUNDLED: &str = "bundled";

/// The SDK's sources, by their path in the crate.
const SOURCES: [(&str, &str); 4] = [
    ("src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    ("src/ops.rs", include_str!("../../../guest-sdk/src/ops.rs")),
    (
        "src/rows.rs",
        include_str!("../../../guest-sdk/src/rows.rs"),
    ),
    (
        "src/schema.rs",
        include_str!("../../../guest-sdk/src/schema.rs"),
    ),
];

/// The workspace manifest this binary was built in: its `wit-bindgen` requirement is the
/// one the SDK was tested with.
const WORKSPACE: &str = include_str!("../../../Cargo.toml");

/// True when `spec` (`[build] guest-sdk`) asks for the bundled SDK.
pub fn is_bundled(spec: &toml::Value) -> bool {
    spec.as_str() == Some(BUNDLED)
}

/// The SDK's `Cargo.toml`: the checkout's, with the workspace's inherited fields filled in.
pub fn manifest() -> String {
    let workspace: toml::Table = toml::from_str(WORKSPACE).expect("the workspace manifest parses");
    let wit_bindgen = workspace["workspace"]["dependencies"]["wit-bindgen"].clone();
    let package = &workspace["workspace"]["package"];
    let mut deps = toml::Table::new();
    deps.insert("wit-bindgen".into(), wit_bindgen);
    let manifest: toml::Table = toml::toml! {
        [package]
        name = "retort-guest"
        version = (env!("CARGO_PKG_VERSION"))
        edition = (package["edition"].clone())
        publish = false
    };
    let mut manifest = manifest;
    manifest.insert("dependencies".into(), toml::Value::Table(deps));
    format!(
        "# Written by `retort build` from the SDK inside retort {}; edits are overwritten.\n{}",
        env!("CARGO_PKG_VERSION"),
        toml::to_string(&manifest).expect("a table serializes")
    )
}

/// Writes the SDK into `dir` (`dir/guest-sdk`, `dir/wit`) where it differs, and returns
/// the crate's directory.
pub fn write(dir: &Path) -> Result<PathBuf, BuildError> {
    let krate = dir.join("guest-sdk");
    for sub in [krate.join("src"), dir.join("wit")] {
        std::fs::create_dir_all(&sub).map_err(io(&sub))?;
    }
    write_if_changed(&krate.join("Cargo.toml"), &manifest())?;
    for (path, text) in SOURCES {
        write_if_changed(&krate.join(path), text)?;
    }
    // The SDK's bindings read `../wit` (as in the checkout).
    write_if_changed(&dir.join("wit/migration.wit"), WIT)?;
    Ok(krate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checkout this binary was built from (tests run in it).
    fn checkout() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_bundled_sdk_is_the_checkouts_and_its_wit_is_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let krate = write(dir.path()).unwrap();
        for entry in std::fs::read_dir(checkout().join("guest-sdk/src")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let bundled = std::fs::read_to_string(krate.join("src").join(name))
                .unwrap_or_else(|_| panic!("{name} is not bundled: add it to SOURCES"));
            assert_eq!(bundled, std::fs::read_to_string(&path).unwrap(), "{name}");
        }
        // One WIT: the file the host's bindings and the SDK's bindings are made from.
        let wit = std::fs::read_to_string(checkout().join("wit/migration.wit")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("wit/migration.wit")).unwrap(),
            wit
        );
        assert_eq!(WIT, wit);
        assert!(
            SOURCES[0].1.contains("path: \"../wit\""),
            "the SDK reads ../wit"
        );
        let host_lib = std::fs::read_to_string(checkout().join("host/src/lib.rs")).unwrap();
        assert!(
            host_lib.contains("path: \"../wit\""),
            "the host reads the checkout's wit/"
        );
        // The manifest: the SDK's own name and the workspace's wit-bindgen.
        let manifest: toml::Table = toml::from_str(&manifest()).unwrap();
        let theirs: toml::Table = toml::from_str(
            &std::fs::read_to_string(checkout().join("guest-sdk/Cargo.toml")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["package"]["name"], theirs["package"]["name"]);
        let workspace: toml::Table = toml::from_str(WORKSPACE).unwrap();
        assert_eq!(
            manifest["dependencies"]["wit-bindgen"],
            workspace["workspace"]["dependencies"]["wit-bindgen"]
        );
        assert_eq!(
            theirs["dependencies"]
                .as_table()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["wit-bindgen"],
            "the SDK gained a dependency: carry it in manifest()"
        );
    }
}
