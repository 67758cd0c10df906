//! Differential tests against real Alembic (installed by scripts/setup.sh): the same
//! histories and commands through both tools, compared by tests/alembic/differential.py
//! (heads, history order, upgrade and downgrade order, the version table, refusals).

use crate::support::{retort, workspace};

/// Runs the differential harness with `args`; a disagreement fails the test with the
/// harness's reproduction.
fn differential(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    // RETORT_BARE_COMPONENT keeps the component, to run the harness by hand.
    let bare = std::env::var_os("RETORT_BARE_COMPONENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bare.wasm"));
    std::fs::write(
        &bare,
        retort::testing::statement_component("SELECT 1", "SELECT 1"),
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(workspace().join("tests/alembic/differential.py"))
        .arg("--retort")
        .arg(retort().get_program())
        .arg("--component")
        .arg(&bare)
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "retort and Alembic disagree:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 disagreeing"), "{stdout}");
}

#[test]
fn alembic_test_suite_histories_agree() {
    let fixtures = workspace().join("tests/alembic/fixtures.json");
    differential(&["--fixtures", fixtures.to_str().unwrap(), "--keep-going"]);
}

/// Every revision graph of Alembic's own tests/test_revision.py and
/// tests/test_version_traversal.py (tests/alembic/suite.json, written by
/// tests/alembic/extract_suite.py), each with targets of every form from base, from the
/// heads and from each revision, history ranges, stamps and show.
#[test]
fn alembic_own_test_graphs_agree() {
    let suite = workspace().join("tests/alembic/suite.json");
    differential(&["--fixtures", suite.to_str().unwrap(), "--keep-going"]);
}

/// 500 random histories (branches, merges of 2–3 parents, several bases, `depends_on`
/// across branches and on labels, branch labels) with random commands and targets of
/// every form, seeded: a disagreement prints the seed's case and the commands.
#[test]
fn random_histories_agree() {
    differential(&["--random", "500", "--seed", "20261203"]);
}
