//! A newcomer's first hour (issue 17): an installed binary without the checkout, finding
//! the project, errors that say how to fix them, completions and the manual page.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{self, Project, blog_components, branched_components};

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

/// Uncomments the template's example lines (any language): what it shows must run as
/// written.
fn uncomment_examples(source: &Path) {
    const CODE: [&str; 8] = [
        "create_table",
        "add_column",
        "drop_",
        "Table::",
        ".column",
        ")?;",
        "op.execute(",
        "if (!exec(",
    ];
    let text = std::fs::read_to_string(source).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let bare = line.trim_start();
        let code = bare.strip_prefix("// ").or_else(|| bare.strip_prefix("# "));
        match code {
            Some(code) if CODE.iter().any(|c| code.trim_start().starts_with(c)) => {
                out.push_str(&line[..line.len() - bare.len()]);
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
fn every_languages_template_example_runs_up_and_down() {
    for lang in ["python", "js", "c"] {
        let p = Project::new();
        p.append_config(&support::shared_cache_config());
        let out = p.json(&["revision", "-m", "create accounts", "--lang", lang]);
        let source = Path::new(out["path"].as_str().unwrap());
        uncomment_examples(source);
        // On a terminal, the build names the source in the works (these tools take
        // seconds, so the bar is drawn).
        let tty = on_a_terminal(&p, &["build"]);
        let name = source.file_name().unwrap().to_string_lossy();
        assert!(tty.contains(&format!("building {name}")), "{tty}");
        p.ok(&["upgrade", "head"]);
        assert_eq!(
            p.db().columns("accounts"),
            [
                "id INTEGER",
                "email VARCHAR(100) NOT NULL",
                "phone VARCHAR(20)"
            ],
            "{lang}"
        );
        p.ok(&["downgrade", "base"]);
        assert!(!p.db().tables().contains(&"accounts".to_string()), "{lang}");
    }
}

#[test]
fn an_installed_then_copied_binary_runs_the_whole_workflow_without_the_checkout() {
    // `cargo install --path host` into a prefix outside the checkout (with the suite's
    // target dir, so it reuses this build), then the binary copied somewhere else again.
    let built = Path::new(env!("CARGO_BIN_EXE_retort"));
    let prefix = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", "--quiet", "--path"])
        .arg(support::workspace().join("host"))
        .arg("--root")
        .arg(prefix.path())
        .env(
            "CARGO_TARGET_DIR",
            built.parent().unwrap().parent().unwrap(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = tempfile::tempdir().unwrap();
    let bin = copied.path().join("retort");
    std::fs::copy(prefix.path().join("bin/retort"), &bin).unwrap();
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
    let twins = Project::new();
    twins.write_component(
        "abcd01.wasm",
        &crate::wat_guest::revision("abcd01", &[], "t1", ""),
    );
    twins.write_component(
        "abcd02.wasm",
        &crate::wat_guest::revision("abcd02", &["abcd01"], "t2", ""),
    );
    let err = twins.fails(&["upgrade", "abcd"], 1);
    assert!(
        err.contains("Multiple revisions start with 'abcd': abcd01 (") && err.contains("abcd02 ("),
        "{err}"
    );
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

#[test]
fn history_draws_branches_merges_dependencies_and_the_current_heads() {
    let p = Project::new();
    let put = |id: &str, down: &[&str], dep: &[&str], label: &[&str]| {
        let component = crate::wat_guest::component(
            &format!("CREATE TABLE t_{id} (id INTEGER)"),
            &format!("DROP TABLE t_{id}"),
            "",
        );
        let mut meta = retort::revision::Metadata::new(id, format!("make \"t_{id}\""));
        meta.down = down.iter().map(|s| s.to_string()).collect();
        meta.depends_on = dep.iter().map(|s| s.to_string()).collect();
        meta.branch_labels = label.iter().map(|s| s.to_string()).collect();
        let bytes = retort::revision::pack(&component, &meta, Path::new("x")).unwrap();
        p.write_component(&format!("{id}.wasm"), &bytes);
    };
    // a -> {b, c} -> m (merge); s (own base, label shop) <- depends on by c.
    put("a", &[], &[], &[]);
    put("b", &["a"], &[], &[]);
    put("c", &["a"], &["shop"], &[]);
    put("m", &["b", "c"], &[], &[]);
    put("s", &[], &[], &["shop"]);
    p.ok(&["upgrade", "b"]);
    let url = format!("sqlite:{}", p.db_path().display());

    let stdout = |args: &[&str]| {
        let out = p.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dot = stdout(&["history", "--graph", "dot", "--url", &url]);
    assert!(dot.starts_with("digraph history {"), "{dot}");
    for edge in [
        "\"a\" -> \"b\";",
        "\"a\" -> \"c\";",
        "\"b\" -> \"m\";",
        "\"c\" -> \"m\";",
    ] {
        assert!(dot.contains(edge), "{edge} in\n{dot}");
    }
    assert!(
        dot.contains("\"s\" -> \"c\" [style=dashed, label=\"depends on\"];"),
        "{dot}"
    );
    // Labels: branch point, merge point, branch label, the message with its quotes escaped.
    assert!(
        dot.contains("\"a\" [label=\"a (branchpoint)\\nmake \\\"t_a\\\"\"]"),
        "{dot}"
    );
    assert!(dot.contains("m (head) (mergepoint)"), "{dot}");
    assert!(dot.contains("s (head) (shop)"), "{dot}");
    // The database is at b: b is marked, a (below it) is not.
    let marked: Vec<&str> = dot.lines().filter(|l| l.contains("fillcolor")).collect();
    assert_eq!(marked.len(), 1, "{dot}");
    assert!(marked[0].trim_start().starts_with("\"b\""), "{dot}");
    // Without --url nothing is marked, and no database is opened.
    let plain = stdout(&["history", "--graph", "dot"]);
    assert!(!plain.contains("fillcolor"));

    let mermaid = stdout(&["history", "--graph", "mermaid", "--url", &url]);
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(
        mermaid.contains("r_b --> r_m") && mermaid.contains("r_c --> r_m"),
        "{mermaid}"
    );
    assert!(mermaid.contains("r_s -. depends on .-> r_c"), "{mermaid}");
    assert!(mermaid.contains("make #quot;t_a#quot;"), "{mermaid}");
    assert!(mermaid.contains("class r_b current"), "{mermaid}");
    // A range draws only its revisions and the edges between them.
    let range = stdout(&["history", "--graph", "dot", "-r", "b:m"]);
    assert!(
        range.contains("\"b\" -> \"m\";") && !range.contains("\"a\" ["),
        "{range}"
    );
}

#[test]
fn the_branched_example_builds_runs_branch_by_branch_and_draws() {
    let p = Project::with_components(branched_components());
    // The shop branch's head needs the audit branch's table (depends-on), not its head.
    p.ok(&["upgrade", "shop@head"]);
    let tables = p.db().tables();
    for t in ["accounts", "orders", "audit_log"] {
        assert!(tables.contains(&t.to_string()), "{tables:?}");
    }
    assert_eq!(
        p.db().rows("SELECT entry FROM audit_log"),
        ["orders are audited"]
    );
    p.ok(&["upgrade", "head"]);
    assert_eq!(p.db().heads(), ["d1c0ffee0005"]);
    let out = p.run(&["history", "--graph", "mermaid"]);
    let picture = String::from_utf8(out.stdout).unwrap();
    assert!(
        picture.contains("r_c1c0ffee0003 -. depends on .-> r_b2c0ffee0004"),
        "{picture}"
    );
    assert!(
        picture.contains("r_b2c0ffee0004 --> r_d1c0ffee0005"),
        "{picture}"
    );
    p.ok(&["downgrade", "base"]);
    assert!(!p.db().tables().contains(&"orders".to_string()));
}

/// Runs `retort ARGS` in `p` under a pseudo-terminal (util-linux `script`), returning
/// what the terminal received.
fn on_a_terminal(p: &Project, args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_retort");
    let config = p.path().join("retort.toml");
    let mut line = format!("'{bin}' -c '{}'", config.display());
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("RETORT_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env("TERM", "xterm")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?} on a terminal:\n{text}");
    text
}

#[test]
fn progress_shows_on_a_terminal_only_and_verbose_adds_statements() {
    // Computes ~1 s after its first statement: long enough for the bar to be drawn.
    const COMPUTE: &str = "(loop $spin (global.set $count (i32.add (global.get $count) (i32.const 1))) (br_if $spin (i32.lt_u (global.get $count) (i32.const 1500000000))))";
    let project = || {
        let p = Project::new();
        p.append_config("\n[sandbox]\nfuel = 100000000000\n");
        p.write_component(
            "p1.wasm",
            &crate::wat_guest::revision_of(
                "p1",
                &[],
                &["CREATE TABLE p1 (id INTEGER)"],
                &["DROP TABLE p1"],
                COMPUTE,
            ),
        );
        p.write_component(
            "p2.wasm",
            &crate::wat_guest::revision("p2", &["p1"], "p2", ""),
        );
        p
    };
    let p = project();
    let tty = on_a_terminal(&p, &["upgrade", "head"]);
    assert!(tty.contains("Running upgrade <base> -> p1"), "{tty}");
    assert!(
        tty.contains("revision 1 of 2 · execute · p1"),
        "the bar, the running op: {tty}"
    );
    assert!(!tty.contains("SQL: "), "{tty}");
    assert_eq!(p.db().heads(), ["p2"]);

    // Not a terminal: the lines only, no bar, no escape sequences.
    let p = project();
    let piped = p.ok(&["upgrade", "head"]);
    assert!(piped.contains("Running upgrade p1 -> p2"), "{piped}");
    assert!(
        !piped.contains("revision 1 of") && !piped.contains('\u{1b}'),
        "{piped}"
    );

    // --quiet: nothing of it, on a terminal too; -v: each statement.
    let p = project();
    let quiet = on_a_terminal(&p, &["--quiet", "upgrade", "head"]);
    assert!(
        !quiet.contains("Running") && !quiet.contains("revision 1 of"),
        "{quiet}"
    );
    assert_eq!(p.db().heads(), ["p2"]);
    let verbose = p.ok(&["downgrade", "base", "-v"]);
    assert!(verbose.contains("SQL: DROP TABLE p2"), "{verbose}");
    assert!(verbose.contains("SQL: DROP TABLE p1"), "{verbose}");

    // A data migration: the rows its cursor has read (a million, 1,000 per batch, which
    // takes seconds: the bar is redrawn several times meanwhile).
    let p = Project::new();
    p.append_config("\n[sandbox]\nmax-batch-rows = 1000\n");
    p.add(&support::fixture("bigquery"));
    let tty = on_a_terminal(&p, &["upgrade", "head"]);
    let counts: Vec<u64> = tty
        .split(" rows read")
        .filter_map(|before| before.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        counts.len() >= 2 && counts.windows(2).all(|w| w[0] <= w[1]),
        "{counts:?} in {tty}"
    );
    assert!(
        counts.iter().all(|&n| n > 0 && n <= 1_000_000),
        "{counts:?}"
    );
}

#[test]
fn a_revision_that_does_not_compile_is_one_plain_line_after_cargos_errors() {
    let p = Project::new();
    p.append_config(&format!(
        "\n[build]\ntarget-dir = {:?}\n",
        support::workspace()
            .join("target/test-guests/target")
            .display()
            .to_string()
    ));
    std::fs::create_dir_all(p.path().join("versions")).unwrap();
    std::fs::write(
        p.path().join("versions/bad1_broken.rs"),
        "//! Broken.\n//!\n//! ```toml\n//! id = \"bad1\"\n//! message = \"broken\"\n//! ```\n\nfn upgrade( {}\n",
    )
    .unwrap();
    let err = p.fails(&["build"], 1);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last, "error: cargo failed to build the revisions (exit code 101); its errors are above",
        "{err}"
    );
}
