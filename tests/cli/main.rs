//! End-to-end tests: the `retort` binary, real components, real SQLite databases.

mod alembic;
mod attacks;
mod autogen;
mod check;
mod cold;
mod concurrency;
mod newcomer;
mod offline;
mod polyglot;
mod servers;
mod support;
mod wat_guest;

use support::{Bait, Project, blog_components, fixture};

const CREATE_USERS: &str = "4304dc02e5c9";
const ADD_POSTS: &str = "462abb4678b5";
const RENAME_NAME: &str = "42a8112dd419";
const SPLIT_NAME: &str = "2a1b2e34976d";
const HEAD: &str = "8187be35ba4a";

#[test]
fn blog_upgrades_to_head_and_back_to_base() {
    let p = Project::with_components(blog_components());
    let db = p.db();

    p.ok(&["upgrade", ADD_POSTS]);
    assert_eq!(db.heads(), [ADD_POSTS]);
    assert_eq!(
        db.columns("users"),
        [
            "id INTEGER",
            "email VARCHAR(100) NOT NULL",
            "name VARCHAR(100)",
            "created_at TIMESTAMP",
            "phone VARCHAR(20)"
        ]
    );
    assert_eq!(db.rows("SELECT count(*) FROM posts"), ["4"]);

    // Through the data migrations: role backfilled, emails lower-cased, names split.
    p.ok(&["upgrade", SPLIT_NAME]);
    assert_eq!(
        db.rows("SELECT email, first_name, coalesce(last_name, '-'), role, status FROM users ORDER BY id"),
        [
            "ada@example.com|Ada|Lovelace|member|active",
            "grace@example.com|Grace|Brewster Hopper|member|active",
            "alan@example.com|Alan|Turing|member|active",
            "edsger@example.org|Edsger|-|member|active",
        ]
    );
    // role is NOT NULL after the SQLite table rebuild, and the rebuild kept the index.
    assert!(
        db.columns("users")
            .contains(&"role VARCHAR(50) NOT NULL".to_string())
    );
    assert_eq!(db.indexes("users"), ["ix_users_id"]);

    p.ok(&["upgrade", "head"]);
    assert_eq!(db.heads(), [HEAD]);
    assert_eq!(
        db.columns("users"),
        [
            "id INTEGER",
            "email VARCHAR(100) NOT NULL",
            "created_at TIMESTAMP",
            "phone VARCHAR(30)",
            "status VARCHAR(20) NOT NULL DEFAULT 'active'",
            "role VARCHAR(50) NOT NULL",
            "first_name VARCHAR(50)",
            "last_name VARCHAR(50)",
            "is_verified BOOLEAN NOT NULL DEFAULT false",
        ]
    );
    assert_eq!(db.indexes("users"), ["ix_users_email", "ix_users_id"]);
    assert_eq!(db.indexes("posts"), ["ix_posts_slug"]);
    assert_eq!(
        db.rows("SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list('posts') ORDER BY \"from\""),
        ["categories|category_id|id|SET NULL", "users|user_id|id|CASCADE"]
    );
    assert_eq!(
        db.rows("SELECT slug FROM posts ORDER BY id"),
        [
            "notes-on-the-analytical-engine",
            "hello-world",
            "cobol-the-compiler",
            "on-computable-numbers"
        ]
    );
    assert_eq!(
        db.rows("SELECT count(*) FROM retort_log WHERE direction = 'up'"),
        ["13"]
    );
    // Every log row carries the component's SHA-256.
    let show = &p.json(&["show", HEAD])[0];
    assert_eq!(
        db.rows(&format!(
            "SELECT sha256 FROM retort_log WHERE revision = '{HEAD}'"
        )),
        [show["sha256"].as_str().unwrap()]
    );
    p.ok(&["upgrade", "head"]); // at head already: nothing to do, still success

    // Down past the name split: full_name comes back from first and last name.
    p.ok(&["downgrade", RENAME_NAME]);
    assert_eq!(db.heads(), [RENAME_NAME]);
    assert_eq!(
        db.rows("SELECT full_name FROM users ORDER BY id"),
        [
            "Ada Lovelace",
            "Grace Brewster Hopper",
            "Alan Turing",
            "Edsger"
        ]
    );
    assert_eq!(db.tables().iter().filter(|t| *t == "categories").count(), 0);

    p.ok(&["downgrade", "base"]);
    assert_eq!(
        db.tables(),
        ["retort_log", "retort_version", "sqlite_sequence"]
    );
    assert!(db.heads().is_empty());
    assert_eq!(
        db.rows("SELECT count(*) FROM retort_log WHERE direction = 'down'"),
        ["13"]
    );
}

#[test]
fn relative_targets_step_through_the_history() {
    let p = Project::with_components(blog_components());
    p.ok(&["upgrade", "+2"]);
    assert_eq!(p.db().heads(), ["78317608ccfd"]);
    p.ok(&["downgrade", "-1"]);
    assert_eq!(p.db().heads(), [CREATE_USERS]);
    let err = p.fails(&["downgrade", "-2"], 1);
    assert!(
        err.contains("Relative revision -2 didn't produce 2 migrations"),
        "{err}"
    );
    // A unique prefix is enough.
    p.ok(&["upgrade", &HEAD[..6]]);
    assert_eq!(p.db().heads(), [HEAD]);
    // An applied revision is no target to go back to: nothing to do (Alembic: the same).
    let out = p.run(&["upgrade", CREATE_USERS]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
        "{out:?}"
    );
    assert_eq!(p.db().heads(), [HEAD]);
}

#[test]
fn dry_run_plans_without_changing_anything() {
    let p = Project::with_components(blog_components());
    let plan = p.json(&["upgrade", "+3", "--dry-run"]);
    let ids: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["revision"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [CREATE_USERS, "78317608ccfd", ADD_POSTS]);
    assert!(!p.db_path().exists() || p.db().tables().iter().all(|t| t.starts_with("retort")));
}

#[test]
fn read_commands_need_no_compilation() {
    let p = Project::with_components(blog_components());
    let history = p.json(&["history"]);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 13);
    assert_eq!(history[0]["id"], HEAD);
    assert_eq!(history[12]["id"], CREATE_USERS);
    assert_eq!(history[0]["down"][0], "1ab7ac228c1c");
    assert_eq!(p.json(&["heads"])[0]["revision"], HEAD);
    assert_eq!(p.json(&["current"]), serde_json::json!([]));
    let show = &p.json(&["show", SPLIT_NAME])[0];
    assert_eq!(
        show["metadata"]["message"],
        "split full_name into first and last name"
    );
    assert_eq!(show["sha256"].as_str().unwrap().len(), 64);
    // Nothing was compiled, so nothing was cached.
    assert!(!p.path().join(".retort/cache").exists());
    p.ok(&["upgrade", "+1"]);
    assert!(p.path().join(".retort/cache").exists());
    assert_eq!(p.json(&["current"])[0]["revision"], CREATE_USERS);
}

#[test]
fn a_trap_rolls_the_revision_back_and_names_it() {
    let p = Project::new();
    p.write_component("good.wasm", &wat_guest::revision("w1", &[], "kept", ""));
    p.write_component(
        "trap.wasm",
        &wat_guest::revision("w2", &["w1"], "lost", wat_guest::TRAP),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision w2 failed to upgrade and was rolled back"),
        "{err}"
    );
    assert!(
        err.contains("last op that ran: execute \"CREATE TABLE lost (id INTEGER)\""),
        "{err}"
    );
    assert!(err.contains("unreachable"), "{err}");
    assert!(
        err.contains("applied before it in this run (kept): w1"),
        "{err}"
    );
    let db = p.db();
    assert_eq!(db.heads(), ["w1"]);
    assert!(db.tables().contains(&"kept".to_string()));
    assert!(!db.tables().contains(&"lost".to_string()));
    assert_eq!(db.rows("SELECT revision FROM retort_log"), ["w1"]);
}

#[test]
fn exhausted_limits_name_the_limit_and_roll_back() {
    for (after, limit) in [
        (
            wat_guest::LOOP_FOREVER,
            "the fuel limit of 20000000 per call ran out",
        ),
        (
            wat_guest::MEMORY_BOMB,
            "the memory limit of 64 MiB was reached",
        ),
        (
            wat_guest::DEEP_RECURSION,
            "the wasm stack limit of 256 KiB ran out",
        ),
        (
            wat_guest::HUGE_STRING,
            "execute passed 60000 bytes, over the max-call-bytes limit of 4096",
        ),
    ] {
        let p = Project::new();
        p.append_config(
            "\n[sandbox]\nfuel = 20000000\nmemory-mib = 64\nstack-kib = 256\nmax-call-bytes = 4096\n",
        );
        p.write_component("a.wasm", &wat_guest::revision("ok1", &[], "first", ""));
        p.write_component(
            "b.wasm",
            &wat_guest::revision("bad2", &["ok1"], "second", after),
        );
        let err = p.fails(&["upgrade", "head"], 1);
        assert!(err.contains("revision bad2 failed to upgrade"), "{err}");
        assert!(err.contains(limit), "{err}");
        let db = p.db();
        assert_eq!(db.heads(), ["ok1"]);
        assert!(!db.tables().contains(&"second".to_string()));
        // The next command works as usual.
        p.ok(&["downgrade", "base"]);
        assert!(!p.db().tables().contains(&"first".to_string()));
    }
}

#[test]
fn winch_runs_the_blog_and_keeps_the_limits() {
    // The baseline compiler: the same history, the same result, the same fuel limit.
    let p = Project::with_components(blog_components());
    p.append_config("\n[sandbox]\ncompiler = \"winch\"\n");
    p.ok(&["upgrade", "head"]);
    assert_eq!(p.db().heads().len(), 1);
    p.ok(&["downgrade", "base"]);
    assert!(p.db().heads().is_empty());
    // Winch's artifacts are not Cranelift's: the cache keeps one directory per engine.
    let config = p.path().join("retort.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"winch\"", "\"cranelift\"")).unwrap();
    p.ok(&["upgrade", "head"]);
    let engines = std::fs::read_dir(p.path().join(".retort/cache"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(engines, 2);

    let q = Project::new();
    q.append_config("\n[sandbox]\ncompiler = \"winch\"\nfuel = 20000000\n");
    q.write_component(
        "spin.wasm",
        &wat_guest::revision("spin1", &[], "spun", wat_guest::LOOP_FOREVER),
    );
    let err = q.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("the fuel limit of 20000000 per call ran out"),
        "{err}"
    );
    assert!(!q.db().tables().contains(&"spun".to_string()));
}

#[test]
fn a_guest_error_names_the_failing_op_and_changes_nothing() {
    let p = Project::new();
    p.add(&fixture("fails"));
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("revision f0fails failed to upgrade"), "{err}");
    assert!(
        err.contains(
            "failing op: execute \"INSERT INTO no_such_table (id) VALUES (?)\": not found"
        ),
        "{err}"
    );
    // The table the revision created before failing is gone with the rollback.
    let tables = p.db().tables();
    assert!(!tables.contains(&"half_done".to_string()), "{tables:?}");
}

#[test]
fn a_panic_reaches_the_user_with_its_message() {
    let p = Project::new();
    p.add(&fixture("panics"));
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("revision f0panic failed to upgrade"), "{err}");
    assert!(err.contains("boom at index 42"), "{err}");
    assert!(!p.db().tables().contains(&"half_done".to_string()));
}

#[test]
fn identifiers_are_quoted_and_expressions_checked() {
    let p = Project::new();
    p.add(&fixture("inject"));
    let out = p.ok(&["upgrade", "head"]);
    assert!(out.contains("refused: invalid SQL expression"), "{out}");
    assert!(
        out.contains("refused: statement refused by rule `transaction-control`: COMMIT"),
        "{out}"
    );
    assert!(
        out.contains("rule `attach`: ATTACH DATABASE '/tmp/elsewhere.db' AS x"),
        "{out}"
    );
    assert!(out.contains("rule `pragma`"), "{out}");
    let tables = p.db().tables();
    assert!(tables.contains(&"victims".to_string()), "{tables:?}");
    assert!(
        tables.contains(&"x\"; DROP TABLE victims; --".to_string()),
        "{tables:?}"
    );
    p.ok(&["downgrade", "base"]);
    assert_eq!(
        p.db().tables(),
        ["retort_log", "retort_version", "sqlite_sequence"]
    );
}

#[test]
fn cursors_read_batches_of_every_value_type() {
    let p = Project::new();
    p.add(&fixture("rows"));
    let out = p.ok(&["upgrade", "head"]);
    assert!(out.contains("read 2500 rows, score sum 781562.5"), "{out}");
    assert_eq!(
        p.db().rows("SELECT count(*), sum(doubled) FROM items"),
        ["2500|6252500"]
    );
    // Cursor snapshots live in temp tables: none is left in the schema.
    assert!(p.db().tables().iter().all(|t| !t.contains("cursor")));
}

#[test]
fn pack_makes_any_component_a_revision() {
    let p = Project::new();
    let plain = p.path().join("plain.wasm");
    std::fs::write(
        &plain,
        wat_guest::component(
            "CREATE TABLE made_by_wat (id INTEGER)",
            "DROP TABLE made_by_wat",
            "",
        ),
    )
    .unwrap();
    let packed = p.components().join("packed.wasm");
    p.ok(&[
        "pack",
        plain.to_str().unwrap(),
        "-o",
        packed.to_str().unwrap(),
        "--rev-id",
        "wat001",
        "-m",
        "made from WAT",
        "--branch-label",
        "wat",
    ]);
    let show = &p.json(&["show", "wat001"])[0];
    assert_eq!(show["metadata"]["message"], "made from WAT");
    assert_eq!(show["metadata"]["branch_labels"][0], "wat");
    p.ok(&["upgrade", "head"]);
    assert!(p.db().tables().contains(&"made_by_wat".to_string()));
    p.ok(&["downgrade", "base"]);
    assert!(!p.db().tables().contains(&"made_by_wat".to_string()));
    // Packing twice is refused, as is packing something that is not a component.
    let err = p.fails(
        &[
            "pack",
            packed.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--rev-id",
            "x2",
            "-m",
            "again",
        ],
        1,
    );
    assert!(err.contains("is already revision wat001"), "{err}");
    let module = p.path().join("module.wasm");
    std::fs::write(&module, wat::parse_str("(module)").unwrap()).unwrap();
    let err = p.fails(
        &[
            "pack",
            module.to_str().unwrap(),
            "-o",
            "/dev/null",
            "--rev-id",
            "x3",
            "-m",
            "m",
        ],
        1,
    );
    assert!(
        err.contains("is a core wasm module, not a component"),
        "{err}"
    );
}

#[test]
fn bad_inputs_give_clear_errors() {
    let p = Project::with_components(blog_components());
    let err = p.fails(&["upgrade", "nope"], 1);
    assert!(
        err.contains("Can't locate revision identified by 'nope'"),
        "{err}"
    );
    let err = p.fails(&["show", "zzz"], 1);
    assert!(
        err.contains("Can't locate revision identified by 'zzz'"),
        "{err}"
    );

    // A revision whose down revision is missing.
    let orphan = Project::new();
    orphan.write_component(
        "orphan.wasm",
        &wat_guest::revision("o1", &["gone42"], "o", ""),
    );
    let err = orphan.fails(&["history"], 1);
    assert!(
        err.contains("revision o1 names down revision gone42, which does not exist"),
        "{err}"
    );

    // A malformed file, named in the error; nothing is applied.
    let broken = Project::with_components(blog_components());
    broken.write_component("zz_broken.wasm", b"\0asm\x0d\0\x01\0garbage");
    let err = broken.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("zz_broken.wasm is not a WebAssembly component"),
        "{err}"
    );
    assert!(!broken.db_path().exists() || broken.db().tables().is_empty());

    // A component that is not a revision.
    let plain = Project::new();
    plain.write_component("plain.wasm", &wat::parse_str("(component)").unwrap());
    let err = plain.fails(&["history"], 1);
    assert!(
        err.contains("plain.wasm has no `retort:revision` section"),
        "{err}"
    );

    // Duplicate ids.
    let dup = Project::new();
    dup.write_component("a.wasm", &wat_guest::revision("d1", &[], "a", ""));
    dup.write_component("b.wasm", &wat_guest::revision("d1", &[], "b", ""));
    let err = dup.fails(&["history"], 1);
    assert!(err.contains("revision d1 is defined twice"), "{err}");

    // A config that does not parse is a usage error (exit 2); so is a missing URL.
    let bad = Project::new();
    std::fs::write(bad.path().join("retort.toml"), "[database]\nurll = 1\n").unwrap();
    bad.fails(&["current"], 2);
    let nourl = Project::new();
    std::fs::write(nourl.path().join("retort.toml"), "").unwrap();
    let err = nourl.fails(&["current"], 2);
    assert!(err.contains("no database URL"), "{err}");
}

#[test]
fn url_flag_and_env_override_the_config() {
    let p = Project::with_components(blog_components());
    let other = p.path().join("other.db");
    let url = format!("sqlite:{}", other.display());
    p.ok(&["--url", &url, "upgrade", "+1"]);
    assert!(other.exists());
    assert!(!p.db_path().exists());
    let out = p
        .cmd(&["--format", "json", "current"])
        .env("RETORT_DATABASE_URL", &url)
        .output()
        .unwrap();
    let current: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(current[0]["revision"], CREATE_USERS);
    // DATABASE_URL does not win over the config file.
    let out = p
        .cmd(&["--format", "json", "current"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let current: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(current, serde_json::json!([]));
}

#[test]
fn compiled_components_are_cached_and_bad_entries_rebuilt() {
    let p = Project::new();
    p.write_component("w.wasm", &wat_guest::revision("c1", &[], "t", ""));
    p.ok(&["upgrade", "head"]);
    let entries: Vec<_> = walk(&p.path().join(".retort/cache"))
        .into_iter()
        .filter(|e| e.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let first = std::fs::read(entry).unwrap();
    let modified = std::fs::metadata(entry).unwrap().modified().unwrap();
    // A second run uses the entry as it is.
    p.ok(&["downgrade", "base"]);
    assert_eq!(
        std::fs::metadata(entry).unwrap().modified().unwrap(),
        modified
    );
    // A corrupted entry is not trusted: it is replaced by a fresh compile.
    let mut corrupt = first.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    std::fs::write(entry, &corrupt).unwrap();
    p.ok(&["upgrade", "head"]);
    assert_eq!(std::fs::read(entry).unwrap(), first);
    assert!(p.db().tables().contains(&"t".to_string()));
}

#[test]
fn init_revision_build_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::retort()
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("migrations/script.rs.tmpl").exists());
    // Share the suite's cargo target dir so the build reuses compiled dependencies.
    let config_path = dir.path().join("retort.toml");
    let config = std::fs::read_to_string(&config_path).unwrap().replace(
        "dir = \".retort/build\"",
        &format!(
            "dir = \".retort/build\"\ntarget-dir = {:?}",
            support::workspace()
                .join("target/test-guests/target")
                .display()
                .to_string()
        ),
    );
    std::fs::write(&config_path, config).unwrap();
    let run = |args: &[&str]| {
        let out = support::retort()
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&["revision", "-m", "first one", "--rev-id", "aa01"]);
    run(&["revision", "-m", "second one"]);
    let sources: Vec<_> = walk(&dir.path().join("migrations/versions"));
    assert_eq!(sources.len(), 2);
    let second = sources
        .iter()
        .find(|s| !s.to_string_lossy().contains("aa01"))
        .unwrap();
    let text = std::fs::read_to_string(second).unwrap();
    assert!(text.contains("down = [\"aa01\"]"), "{text}");
    run(&["build"]);
    run(&["upgrade", "head"]);
    let out = run(&["--format", "json", "current"]);
    let current: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(current[0]["message"], "second one");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A project of WAT revisions: `(id, down, table)`, each creating its table.
fn wat_project(revs: &[(&str, &[&str], &str)]) -> Project {
    let p = Project::new();
    for (id, down, table) in revs {
        p.write_component(
            &format!("{id}.wasm"),
            &wat_guest::revision(id, down, table, ""),
        );
    }
    p
}

#[test]
fn branches_merge_in_the_ledger_as_in_alembic() {
    // a -> b -> {c, d} -> m (merge)
    let p = wat_project(&[
        ("a", &[], "ta"),
        ("b", &["a"], "tb"),
        ("c", &["b"], "tc"),
        ("d", &["b"], "td"),
        ("m", &["c", "d"], "tm"),
    ]);
    let branches = p.json(&["branches"]);
    assert_eq!(branches[0]["revision"], "b");
    assert_eq!(branches[0]["children"], serde_json::json!(["c", "d"]));
    p.ok(&["upgrade", "c"]);
    assert_eq!(p.db().heads(), ["c"]);
    // Another branch adds a row to the version table.
    p.ok(&["upgrade", "d"]);
    assert_eq!(p.db().heads(), ["c", "d"]);
    let err = p.fails(&["current", "--check-heads"], 1);
    assert!(
        err.contains("the database is not at head: m not applied"),
        "{err}"
    );
    // -1 with two heads is refused, naming them.
    let err = p.fails(&["downgrade", "-1"], 1);
    assert!(
        err.contains("from multiple heads (c, d) is ambiguous"),
        "{err}"
    );
    // The merge replaces both rows.
    p.ok(&["upgrade", "head"]);
    assert_eq!(p.db().heads(), ["m"]);
    p.ok(&["current", "--check-heads"]);
    // Downgrading one branch leaves the other alone.
    p.ok(&["downgrade", "c"]);
    assert_eq!(p.db().heads(), ["c", "d"]);
    assert!(!p.db().tables().contains(&"tm".to_string()));
    p.ok(&["downgrade", "b"]);
    assert_eq!(p.db().heads(), ["b"]);
    assert_eq!(p.db().rows("SELECT count(*) FROM retort_log"), ["8"]);
}

#[test]
fn labels_dependencies_and_dry_runs() {
    let p = Project::new();
    let put = |id: &str, down: &[&str], dep: &[&str], label: &[&str]| {
        let component = wat_guest::component(
            &format!("CREATE TABLE t_{id} (id INTEGER)"),
            &format!("DROP TABLE t_{id}"),
            "",
        );
        let mut meta = retort::revision::Metadata::new(id, format!("rev {id}"));
        meta.down = down.iter().map(|s| s.to_string()).collect();
        meta.depends_on = dep.iter().map(|s| s.to_string()).collect();
        meta.branch_labels = label.iter().map(|s| s.to_string()).collect();
        let bytes = retort::revision::pack(&component, &meta, std::path::Path::new("x")).unwrap();
        p.write_component(&format!("{id}.wasm"), &bytes);
    };
    put("n1", &[], &[], &["net"]);
    put("n2", &["n1"], &["shop"], &[]);
    put("s1", &[], &[], &["shop"]);
    put("s2", &["s1"], &[], &[]);
    let plan = p.json(&["upgrade", "net@head", "--dry-run"]);
    let ids: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["revision"].as_str().unwrap())
        .collect();
    // Alembic's order (its walk from n2 steps to n1, then to the dependency s1).
    assert_eq!(ids, ["s1", "n1", "n2"]);
    assert!(!p.db_path().exists() || !p.db().tables().contains(&"retort_version".to_string()));
    p.ok(&["upgrade", "net@head"]);
    // As in Alembic, the revision that depends on s1 covers it: one row.
    assert_eq!(p.db().heads(), ["n2"]);
    p.ok(&["upgrade", "shop@+1"]);
    assert_eq!(p.db().heads(), ["n2", "s2"]);
    let plan = p.json(&["downgrade", "shop@base", "--dry-run"]);
    let ids: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["revision"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["n2", "s2", "s1"]);
    let heads = p.json(&["heads", "--resolve-dependencies"]);
    assert_eq!(heads.as_array().unwrap().len(), 2);
    let history = p.ok(&["history", "--indicate-current"]);
    assert!(
        history.contains("n1 -> n2 (head) (net), rev n2 (current)"),
        "{history}"
    );
    let err = p.fails(&["upgrade", "nobranch@head"], 1);
    assert!(
        err.contains("Can't locate revision identified by 'nobranch'"),
        "{err}"
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("Multiple head revisions are present for given argument 'head' (n2, s2)"),
        "{err}"
    );
    assert!(err.contains("BRANCH@head"), "{err}");
}

#[test]
fn stamp_sets_the_version_table_without_running_anything() {
    let p = wat_project(&[("a", &[], "ta"), ("b", &["a"], "tb"), ("c", &["b"], "tc")]);
    p.ok(&["stamp", "b"]);
    assert_eq!(p.db().heads(), ["b"]);
    assert!(!p.db().tables().contains(&"ta".to_string()));
    // Upgrading from the stamp runs only what follows it.
    p.ok(&["upgrade", "head"]);
    assert!(p.db().tables().contains(&"tc".to_string()));
    assert!(!p.db().tables().contains(&"tb".to_string()));
    p.ok(&["stamp", "base"]);
    assert!(p.db().heads().is_empty());
    // An unknown row needs --purge.
    p.ok(&["stamp", "c"]);
    p.db_exec("UPDATE retort_version SET version_num = 'ghost'");
    let err = p.fails(&["stamp", "a"], 1);
    assert!(err.contains("ghost"), "{err}");
    p.ok(&["stamp", "a", "--purge"]);
    assert_eq!(p.db().heads(), ["a"]);
    assert_eq!(
        p.db()
            .rows("SELECT count(*) FROM retort_log WHERE direction = 'stamp'"),
        ["4"]
    );
}

#[test]
fn revision_and_merge_follow_heads_branches_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("retort.toml");
    assert!(
        support::retort()
            .arg("init")
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let run = |args: &[&str]| -> std::process::Output {
        support::retort()
            .arg("-c")
            .arg(&config_path)
            .args(args)
            .output()
            .unwrap()
    };
    let front = |id: &str| -> String {
        let versions = dir.path().join("migrations/versions");
        let file = std::fs::read_dir(&versions)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(id))
            .unwrap();
        std::fs::read_to_string(file).unwrap()
    };
    assert!(
        run(&["revision", "-m", "root", "--rev-id", "r0"])
            .status
            .success()
    );
    assert!(
        run(&[
            "revision",
            "-m",
            "one",
            "--rev-id",
            "r1",
            "--branch-label",
            "feat"
        ])
        .status
        .success()
    );
    // Splicing a second branch off r0 needs --splice, since r0 is no longer a head.
    let out = run(&["revision", "-m", "two", "--rev-id", "r2", "--head", "r0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("r0 is not a head; pass --splice"));
    assert!(
        run(&[
            "revision", "-m", "two", "--rev-id", "r2", "--head", "r0", "--splice"
        ])
        .status
        .success()
    );
    assert!(front("r2").contains("down = [\"r0\"]"));
    let out = run(&["revision", "-m", "three"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("several heads (r1, r2)"), "{err}");
    assert!(
        run(&[
            "revision",
            "-m",
            "three",
            "--rev-id",
            "r3",
            "--head",
            "feat@head",
            "--depends-on",
            "r2"
        ])
        .status
        .success()
    );
    let text = front("r3");
    assert!(
        text.contains("down = [\"r1\"]") && text.contains("depends-on = [\"r2\"]"),
        "{text}"
    );
    let out = run(&[
        "revision",
        "-m",
        "dup",
        "--head",
        "r3",
        "--branch-label",
        "feat",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Branch name 'feat' in revision"));
    assert!(
        run(&["merge", "heads", "-m", "merge them", "--rev-id", "mm"])
            .status
            .success()
    );
    // As Alembic's `merge heads`: `heads` are the heads nothing depends on, and r3
    // depends on r2 (Alembic 1.20.1 writes down_revision = 'r3' here too).
    assert!(front("mm").contains("down = [\"r3\"]"), "{}", front("mm"));
}

#[test]
fn history_draws_forks_and_merges() {
    let p = wat_project(&[
        ("a", &[], "ta"),
        ("b", &["a"], "tb"),
        ("c", &["b"], "tc"),
        ("d", &["b"], "td"),
        ("e", &["c"], "te"),
        ("m", &["e", "d"], "tm"),
    ]);
    let out = p.ok(&["history"]);
    let expected = "\
*  e, d -> m (head) (mergepoint), wat revision m
* |  c -> e, wat revision e
* |  b -> c, wat revision c
| *  b -> d, wat revision d
*  a -> b (branchpoint), wat revision b
*  <base> -> a, wat revision a
";
    assert_eq!(out, expected, "\n{out}");
}

#[test]
fn verify_finds_applied_revisions_that_changed() {
    let p = wat_project(&[("a", &[], "ta"), ("b", &["a"], "tb")]);
    p.ok(&["upgrade", "head"]);
    p.ok(&["verify"]);
    // Someone edits an applied revision: same id, other SQL.
    p.write_component("a.wasm", &wat_guest::revision("a", &[], "other", ""));
    let err = p.fails(&["verify"], 1);
    assert!(
        err.contains("revision a was applied from a component with SHA-256"),
        "{err}"
    );
    let problems = p.run(&["--format", "json", "verify"]);
    let problems: serde_json::Value = serde_json::from_slice(&problems.stdout).unwrap();
    assert_eq!(problems[0]["problem"], "modified");
    assert_eq!(problems[0]["revision"], "a");
    // upgrade and downgrade refuse until told otherwise.
    p.write_component("c.wasm", &wat_guest::revision("c", &["b"], "tc", ""));
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("applied revisions changed since they ran"),
        "{err}"
    );
    assert!(!p.db().tables().contains(&"tc".to_string()));
    p.ok(&["upgrade", "head", "--allow-modified"]);
    assert_eq!(p.db().heads(), ["c"]);
}

/// SQLite runs with foreign keys off (its table rebuild needs it), so each step's
/// foreign keys are checked before the commit: a revision that leaves an orphan row is
/// rolled back, with the offending row named.
#[test]
fn sqlite_checks_foreign_keys_before_each_commit() {
    let p = Project::new();
    p.write_component(
        "a.wasm",
        &wat_guest::revision_of(
            "a",
            &[],
            &[
                "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
                "CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent (id))",
                "INSERT INTO child (id, pid) VALUES (7, 42)",
            ],
            &["DROP TABLE child", "DROP TABLE parent"],
            "",
        ),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("foreign key violations after the revision: child row 7 -> parent"),
        "{err}"
    );
    assert!(!p.db().tables().contains(&"child".to_string()), "{err}");
    assert!(p.db().heads().is_empty());
}

/// Ops are data: a dry run lists, per step, the ops its revision would run, found by
/// running the plan against a script target (nothing reaches the database).
#[test]
fn a_dry_run_lists_the_ops_of_each_step() {
    let p = wat_project(&[("a", &[], "ta"), ("b", &["a"], "tb")]);
    p.ok(&["upgrade", "a"]);
    let plan = p.json(&["upgrade", "head", "--dry-run"]);
    let steps = plan.as_array().unwrap();
    assert_eq!(steps.len(), 1, "{plan}");
    assert_eq!(steps[0]["revision"], "b");
    assert_eq!(
        steps[0]["ops"],
        serde_json::json!([{ "op": "execute", "sql": "CREATE TABLE tb (id INTEGER)", "params": [] }])
    );
    assert!(!p.db().tables().contains(&"tb".to_string()));
    let back = p.json(&["downgrade", "base", "--dry-run"]);
    assert_eq!(back[0]["revision"], "a");
    assert_eq!(back[0]["ops"][0]["sql"], "DROP TABLE ta");
    assert_eq!(p.db().heads(), ["a"]);
}

/// The gates live in the library: an application that embeds `retort` and never runs
/// the CLI still gets the refusal of changed applied components.
#[test]
fn an_embedder_gets_the_integrity_gate() {
    use retort::migrate::{History, MigrateError, Migrator};
    let p = wat_project(&[("a", &[], "ta")]);
    p.ok(&["upgrade", "head"]);
    p.write_component("a.wasm", &wat_guest::revision("a", &[], "other", ""));
    p.write_component("b.wasm", &wat_guest::revision("b", &["a"], "tb", ""));
    let config = retort::config::Config::load(&p.path().join("retort.toml")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = rt.block_on(async {
        let history = History::load(&config.components_dir()).unwrap();
        let url = config.database_url(None).unwrap();
        let backend = retort::backend::Backend::connect(&url).await.unwrap();
        let log: retort::ops::LogSink = std::sync::Arc::new(|_, _, _| {});
        let migrator =
            Migrator::new(&config, &history, &backend, log, Box::new(|_, _, _| {})).unwrap();
        let plan = migrator
            .plan(retort::graph::Direction::Up, "head")
            .await
            .unwrap();
        let refused = migrator.migrate(plan.clone()).await;
        assert!(
            matches!(&refused, Err(MigrateError::Modified { problems }) if problems.len() == 1),
            "{:?}",
            refused.as_ref().err().map(|e| e.to_string())
        );
        backend.close().await;
        refused.is_err()
    });
    assert!(refused);
    assert_eq!(p.db().heads(), ["a"]);
    assert!(!p.db().tables().contains(&"tb".to_string()));
}

#[test]
fn the_sum_file_catches_unreviewed_components() {
    let p = wat_project(&[("a", &[], "ta")]);
    let err = p.fails(&["verify", "--sum"], 1);
    assert!(err.contains("retort.sum: missing"), "{err}");
    p.ok(&["sum"]);
    p.ok(&["verify", "--sum"]);
    p.write_component("b.wasm", &wat_guest::revision("b", &["a"], "tb", ""));
    let err = p.fails(&["verify", "--sum"], 1);
    assert!(err.contains("b.wasm is not in retort.sum"), "{err}");
    p.ok(&["sum"]);
    p.ok(&["verify", "--sum"]);
}

#[test]
fn inspect_reports_world_imports_and_exports() {
    let p = Project::new();
    p.add(&fixture("rows"));
    let by_id = p.json(&["inspect", "f0rows"]);
    assert_eq!(by_id["world"], "retort:migration/revision@0.1.0");
    assert_eq!(by_id["needs_wasi"], false);
    assert_eq!(by_id["metadata"]["id"], "f0rows");
    assert_eq!(
        by_id["imports"],
        serde_json::json!(["retort:migration/types@0.1.0", "retort:migration/op@0.1.0"])
    );
    assert_eq!(
        by_id["exports"],
        serde_json::json!(["upgrade", "downgrade"])
    );
    let file = p.path().join("plain.wasm");
    std::fs::write(&file, wat::parse_str("(component)").unwrap()).unwrap();
    let plain = p.json(&["inspect", file.to_str().unwrap()]);
    assert_eq!(plain["world"], serde_json::Value::Null);
    assert_eq!(plain["metadata"], serde_json::Value::Null);
    assert_eq!(plain["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn components_importing_anything_else_are_refused_at_load() {
    let p = Project::new();
    let component = wat::parse_str(
        r#"(component
            (import "wasi:http/outgoing-handler@0.2.0" (instance))
            (import "acme:vault/secrets" (instance))
        )"#,
    )
    .unwrap();
    let meta = retort::revision::Metadata::new("net1", "wants the network");
    let packed = retort::revision::pack(&component, &meta, std::path::Path::new("x")).unwrap();
    p.write_component("net.wasm", &packed);
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision net1") && err.contains("imports wasi:http/outgoing-handler@0.2.0, acme:vault/secrets, which this host does not provide"),
        "{err}"
    );
    // Nothing ran: not even the ledger was created.
    assert!(!p.db_path().exists() || p.db().tables().is_empty());
    let inspect = p.json(&["inspect", "net1"]);
    assert_eq!(inspect["needs_wasi"], true);
}

/// A project with the WASI probe (tests/fixtures/versions/wasi.rs) and its inputs.
fn wasi_probe_project(port: u16, noise: u64, sleep_ms: u64) -> Project {
    let p = Project::new();
    p.add(&fixture("wasi"));
    p.db_exec("CREATE TABLE probe_target (port INTEGER, noise INTEGER, sleep_ms INTEGER)");
    p.db_exec(&format!(
        "INSERT INTO probe_target VALUES ({port}, {noise}, {sleep_ms})"
    ));
    p
}

fn probe_outcomes(p: &Project) -> std::collections::BTreeMap<String, String> {
    p.db()
        .rows("SELECT check_name, outcome FROM wasi_probe")
        .into_iter()
        .map(|row| {
            let (check, outcome) = row.split_once('|').unwrap();
            (check.to_owned(), outcome.to_owned())
        })
        .collect()
}

#[test]
fn wasi_guests_run_with_nothing_but_the_log() {
    // A listener the guest is told about: it must never see a connection.
    let bait = Bait::new();
    let port = bait.port();
    let p = wasi_probe_project(port, 50_000, 0);
    p.append_config("\n[sandbox]\nmax-output-bytes = 10000\n");
    let out = p
        .cmd(&["upgrade", "head"])
        .env("RETORT_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let seen = probe_outcomes(&p);
    assert_eq!(seen["environment"], "0 variables", "{seen:?}");
    assert_eq!(seen["arguments"], "0 arguments", "{seen:?}");
    assert_eq!(seen["preopens"], "[]", "{seen:?}");
    assert_eq!(seen["read"], "no directory to open files in", "{seen:?}");
    // No socket at all; and "localhost", which the host resolves, does not resolve
    // (wasmtime-wasi answers a disabled lookup with permanent-resolver-failure).
    assert!(
        seen["tcp"].starts_with("no socket") && seen["tcp"].contains("access-denied"),
        "{seen:?}"
    );
    assert!(
        seen["lookup"].starts_with("denied")
            && seen["lookup"].contains("permanent-resolver-failure"),
        "{seen:?}"
    );
    bait.assert_untouched();

    // stdout and stderr reach the log, attributed, and capped.
    assert!(
        stderr.contains("f0wasi") && stderr.contains("hello from the guest's stdout"),
        "{stderr}"
    );
    assert!(stderr.contains("a warning on stderr"), "{stderr}");
    let dropped = 50_000 + "hello from the guest's stdout\n".len() - 10_000;
    assert!(
        stderr.contains(&format!(
            "stdout output over the max-output-bytes limit of 10000 ([sandbox] in retort.toml): {dropped} bytes dropped"
        )),
        "{stderr}"
    );
    assert!(
        stderr.len() < 30_000,
        "the cap let {} bytes through",
        stderr.len()
    );
    assert_eq!(p.db().heads(), ["f0wasi"]);
}

#[test]
fn a_granted_directory_is_read_only_and_cannot_be_escaped() {
    let p = wasi_probe_project(9, 0, 0);
    std::fs::create_dir(p.path().join("seed")).unwrap();
    std::fs::write(p.path().join("seed/seed.txt"), "id,name\n1,ada\n").unwrap();
    std::fs::write(p.path().join("outside.txt"), "secret").unwrap();
    p.append_config("\n[sandbox.read-only-dirs]\nf0wasi = \"seed\"\n");
    p.ok(&["upgrade", "head"]);
    let seen = probe_outcomes(&p);
    assert_eq!(seen["preopens"], "[/data]", "{seen:?}");
    assert_eq!(seen["read"], r#"read "id,name\n1,ada\n""#, "{seen:?}");
    assert!(
        seen["write"].starts_with("denied") && seen["write"].contains("not-permitted"),
        "{seen:?}"
    );
    assert!(
        seen["escape"].starts_with("open failed") && seen["escape"].contains("not-permitted"),
        "{seen:?}"
    );
    assert!(!p.path().join("seed/written.txt").exists());

    // A symlink inside the granted directory does not lead out of it either.
    let r = wasi_probe_project(9, 0, 0);
    std::fs::create_dir(r.path().join("seed")).unwrap();
    std::fs::write(r.path().join("outside.txt"), "secret").unwrap();
    std::os::unix::fs::symlink("../outside.txt", r.path().join("seed/seed.txt")).unwrap();
    r.append_config("\n[sandbox.read-only-dirs]\nf0wasi = \"seed\"\n");
    r.ok(&["upgrade", "head"]);
    let seen = probe_outcomes(&r);
    assert!(
        seen["read"].starts_with("open failed") && !seen["read"].contains("secret"),
        "{seen:?}"
    );

    // A grant of a directory that does not exist names it, and nothing runs.
    let q = wasi_probe_project(9, 0, 0);
    q.append_config("\n[sandbox.read-only-dirs]\nf0wasi = \"no-such-dir\"\n");
    let err = q.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision f0wasi")
            && err.contains("no-such-dir")
            && err.contains("[sandbox.read-only-dirs]"),
        "{err}"
    );
    assert!(q.db().heads().is_empty());
    assert!(!q.db().tables().contains(&"wasi_probe".to_string()));
}

#[test]
fn a_guest_that_waits_forever_meets_the_wall_clock_limit() {
    let p = wasi_probe_project(9, 0, 3_600_000);
    p.append_config("\n[sandbox]\ntimeout-secs = 1\n");
    let started = std::time::Instant::now();
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision f0wasi failed to upgrade")
            && err.contains("the wall-clock limit of 1 s per call ran out"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(600));
    // Its writes were rolled back; the ledger is as before; the next command works.
    assert!(!p.db().tables().contains(&"wasi_probe".to_string()));
    assert!(p.db().heads().is_empty());
    p.ok(&["history"]);
}

#[test]
fn a_million_row_query_arrives_in_capped_batches() {
    let p = Project::new();
    p.append_config("\n[sandbox]\nmax-batch-rows = 50000\n");
    p.add(&fixture("bigquery"));
    let out = p.ok(&["upgrade", "head"]);
    assert!(
        out.contains("read 1000000 rows in 20 batches of at most 50000"),
        "{out}"
    );
}
