//! What every bench shares: where the workspace is, and the `retort` binary cargo built
//! beside the bench (wherever `CARGO_TARGET_DIR` puts it).

use std::path::{Path, PathBuf};

/// The workspace root: results go to its `target/bench`.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the workspace")
        .to_owned()
}

/// `<target>/release/retort`: the bench runs as `<target>/release/deps/<bench>-<hash>`.
pub fn retort() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench knows where it is");
    exe.parent()
        .and_then(Path::parent)
        .expect("benches run from <target>/<profile>/deps")
        .join("retort")
}
