//! A newcomer's first hour (issue 17): an installed binary without the checkout, finding
//! the project, errors that say how to fix them, completions and the manual page.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{self, Project, blog_components};

/// Runs `retort` from `bin` in `dir` with the source checkout hidden: a private mount
/// namespace lays an empty tmpfs over it (needs root or user namespaces, as on CI).
fn hidden_checkout(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    let checkout = support::workspace();
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs tmpfs "$0" && [ -z "$(ls -A "$0")" ] && exec "$@""#)
        .arg(&checkout)
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("RETORT_CONFIG")
        .env_remove("RETORT_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("unshare (util-linux) runs")
}

fn ok(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stderr}");
    stderr
}

/// Uncomments the template's example lines: what it shows must run as written.
fn uncomment_examples(source: &Path) {
    let text = std::fs::read_to_string(source).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let code = line.trim_start().strip_prefix("// ");
        match code.map(|c| (c, c.trim_start())) {
            Some((code, bare))
                if bare.starts_with("create_table")
                    || bare.starts_with("add_column")
                    || bare.starts_with("drop_")
                    || bare.starts_with("Table::")
                    || bare.starts_with(".column")
                    || bare.starts_with(")?;") =>
            {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(indent);
                out.push_str(code);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    assert_ne!(out, text, "the template shows no example");
    std::fs::write(source, out).unwrap();
}

#[test]
fn a_copied_binary_runs_the_whole_workflow_without_the_checkout() {
    // "Installed": the binary alone, copied into a prefix outside the checkout.
    let prefix = tempfile::tempdir().unwrap();
    let bin = prefix.path().join("bin/retort");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_retort"), &bin).unwrap();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let run = |args: &[&str]| hidden_checkout(&bin, dir, args);

    ok(run(&["init"]), "init");
    let config = std::fs::read_to_string(dir.join("retort.toml")).unwrap();
    assert!(config.contains("guest-sdk = \"bundled\""), "{config}");
    // Compiled dependencies outlive the test (a cache outside the checkout, like ~/.cargo).
    let target = std::env::temp_dir().join("retort-test-newcomer-target");
    let config = config.replace(
        "dir = \".retort/build\"",
        &format!(
            "dir = \".retort/build\"\ntarget-dir = {:?}",
            target.display().to_string()
        ),
    );
    std::fs::write(dir.join("retort.toml"), config).unwrap();

    let said = ok(
        run(&["revision", "-m", "create accounts", "--rev-id", "acc1"]),
        "revision",
    );
    let source = dir.join("migrations/versions/acc1_create_accounts.rs");
    assert!(said.contains(&source.display().to_string()), "{said}");
    assert!(said.contains("retort build"), "the next command: {said}");
    uncomment_examples(&source);

    // From a subdirectory: the project is found in a parent, as cargo and git look.
    let sub = dir.join("migrations");
    ok(hidden_checkout(&bin, &sub, &["build"]), "build");
    ok(
        hidden_checkout(&bin, &sub, &["upgrade", "head"]),
        "upgrade head",
    );
    let db = support::Db::at(dir.join("retort.db"));
    assert_eq!(
        db.columns("accounts"),
        [
            "id INTEGER",
            "email VARCHAR(100) NOT NULL",
            "phone VARCHAR(20)"
        ]
    );
    // The SDK and WIT the build used came out of the binary, and are the host's.
    assert_eq!(
        std::fs::read_to_string(dir.join(".retort/build/sdk/wit/migration.wit")).unwrap(),
        std::fs::read_to_string(support::workspace().join("wit/migration.wit")).unwrap()
    );
    ok(run(&["downgrade", "base"]), "downgrade base");
    assert!(!db.tables().contains(&"accounts".to_string()));
}

#[test]
fn a_missing_config_file_or_project_is_a_usage_error_that_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("nowhere/retort.toml");
    let out = support::retort()
        .args(["-c", missing.to_str().unwrap(), "upgrade", "head"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("retort init"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = support::retort()
        .env("RETORT_CONFIG", &missing)
        .arg("history")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&missing.display().to_string()));

    // No retort.toml here or above (a temp dir's parents have none).
    assert!(
        empty
            .path()
            .ancestors()
            .all(|d| !d.join("retort.toml").exists()),
        "a retort.toml above the temp dir spoils this test"
    );
    let out = support::retort()
        .args(["upgrade", "head"])
        .current_dir(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no retort.toml in") && err.contains("run `retort init`"),
        "{err}"
    );
    // What needs no project still runs there.
    let out = support::retort()
        .arg("man")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH retort"));
}

#[test]
fn unknown_revisions_and_commands_suggest_the_closest() {
    let p = Project::with_components(blog_components());
    // 4304dc02e5c9 with two digits swapped.
    let err = p.fails(&["upgrade", "4304cd02e5c9"], 1);
    assert!(err.contains("did you mean '4304dc02e5c9'?"), "{err}");
    let err = p.fails(&["show", "haeds"], 1);
    assert!(err.contains("did you mean 'heads'"), "{err}");
    // An ambiguous prefix lists its candidates with their messages.
    let history = p.json(&["history"]);
    let ids: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let shared = ids
        .iter()
        .flat_map(|a| ids.iter().filter(move |b| *b != a).map(move |b| (a, b)))
        .find(|(a, b)| a[..4] == b[..4]);
    if let Some((a, _)) = shared {
        let err = p.fails(&["upgrade", &a[..4]], 1);
        assert!(err.contains("Multiple revisions start with"), "{err}");
    }
    // Commands: clap's own suggestion.
    let out = p.run(&["upgarde", "head"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upgrade"));
}

#[test]
fn completions_offer_the_projects_revisions() {
    let p = Project::with_components(blog_components());
    for shell in ["bash", "zsh", "fish"] {
        let out = p.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("COMPLETE") && script.contains("retort"),
            "{shell}: {script}"
        );
    }
    // What the fish script asks at a prompt `retort upgrade 4304<TAB>`.
    let out = support::retort()
        .env("COMPLETE", "fish")
        .env("RETORT_CONFIG", p.path().join("retort.toml"))
        .args(["--", "retort", "upgrade", "4304"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.lines().any(|l| l.starts_with("4304dc02e5c9")),
        "{said}"
    );
    let out = support::retort()
        .env("COMPLETE", "fish")
        .env("RETORT_CONFIG", p.path().join("retort.toml"))
        .args(["--", "retort", "downgrade", "ba"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "base")
    );
}
