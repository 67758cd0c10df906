//! `retort check`: the declared schema (examples/blog/schema.sql) against the schema the
//! blog's 13 revisions build, replayed offline in each dialect, and against live
//! SQLite, PostgreSQL and MariaDB databases (issue 15, points 6, 7 and 8 (e), (f)).

use crate::support::{Db, Project, Server, ServerDb, blog_components, retort, workspace};

/// The blog's components in a project that declares `schema` as its schema.
fn blog_declaring(schema: &str) -> Project {
    let p = Project::with_components(blog_components());
    std::fs::write(p.path().join("schema.sql"), schema).unwrap();
    let config = p.path().join("retort.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[autogenerate]\nschema = \"schema.sql\"\n");
    std::fs::write(config, text).unwrap();
    p
}

fn blog_schema() -> String {
    std::fs::read_to_string(workspace().join("examples/blog/schema.sql")).unwrap()
}

/// Runs `retort check --dialect D`: exit code, stdout, stderr.
fn check(p: &Project, dialect: &str, json: bool) -> (i32, String, String) {
    let mut cmd = retort();
    cmd.current_dir(p.path());
    if json {
        cmd.args(["--format", "json"]);
    }
    let out = cmd.args(["check", "--dialect", dialect]).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_blogs_declared_schema_matches_its_history_in_every_dialect() {
    let p = blog_declaring(&blog_schema());
    for dialect in ["sqlite", "postgres", "mysql"] {
        let (code, out, err) = check(&p, dialect, false);
        assert_eq!(code, 0, "{dialect}: {out}{err}");
        assert!(err.contains("No changes detected"), "{dialect}: {err}");
        assert!(out.is_empty(), "{dialect}: {out}");
    }
}

#[test]
fn a_difference_fails_the_check_and_names_each_change() {
    // A column the history lacks, and one it has that the file drops.
    let schema = blog_schema()
        .replace(
            "phone VARCHAR(30),",
            "phone VARCHAR(30),\n    nickname VARCHAR(40),",
        )
        .replace(
            "name VARCHAR(100) NOT NULL UNIQUE,\n    description TEXT\n",
            "name VARCHAR(100) NOT NULL UNIQUE\n",
        );
    let p = blog_declaring(&schema);
    for dialect in ["sqlite", "postgres", "mysql"] {
        let (code, out, err) = check(&p, dialect, false);
        assert_eq!(code, 1, "{dialect}: {out}{err}");
        // Text goes to stderr (stdout carries JSON only).
        assert!(out.is_empty(), "{dialect}: {out}");
        assert!(
            err.contains("add-column users.nickname"),
            "{dialect}: {err}"
        );
        assert!(
            err.contains("drop-column categories.description")
                && err.contains("REVIEW: drops column categories.description and its data"),
            "{dialect}: {err}"
        );
        assert!(err.contains("2 change(s)"), "{dialect}: {err}");
    }
    let (code, out, _) = check(&p, "postgres", true);
    assert_eq!(code, 1);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| r["op"]["op"].as_str().unwrap())
        .collect();
    // Tables in name order: categories, then users.
    assert_eq!(kinds, ["drop-column", "add-column"]);
    assert!(
        rows[0]["review"]
            .as_str()
            .unwrap()
            .starts_with("drops column")
    );
    assert!(rows[1]["review"].is_null());
}

#[test]
fn a_schema_file_it_cannot_model_is_refused_with_the_line() {
    let p = blog_declaring("CREATE TABLE t (id INTEGER);\nCREATE VIEW v AS SELECT id FROM t;\n");
    let (code, _, err) = check(&p, "sqlite", false);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("line 2: CREATE VIEW v is not part of a declared schema"),
        "{err}"
    );
    let p = Project::with_components(blog_components());
    let (code, _, err) = check(&p, "sqlite", false);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("[autogenerate] schema"), "{err}");
}

/// A fresh database of each kind: its URL, and the server database behind it.
fn databases(p: &Project) -> Vec<(String, Option<ServerDb>)> {
    vec![
        (
            format!("sqlite:{}", p.path().join("live.db").display()),
            None,
        ),
        {
            let db = ServerDb::fresh(Server::Postgres);
            (db.url.clone(), Some(db))
        },
        {
            let db = ServerDb::fresh(Server::MySql);
            (db.url.clone(), Some(db))
        },
    ]
}

fn exec(url: &str, server: &Option<ServerDb>, sql: &str) {
    match server {
        Some(db) => db.exec(sql),
        None => {
            Db::at(url.strip_prefix("sqlite:").unwrap().into()).exec(sql);
        }
    }
}

/// Runs retort in `p` with `args`: exit code and stderr.
fn code(p: &Project, args: &[&str]) -> (i32, String) {
    let out = p.run(args);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The blog's revision ids, oldest first.
fn blog_order(p: &Project) -> Vec<String> {
    let history = p.json(&["history"]);
    let mut ids: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    ids
}

/// Issue 15, point 8 (e): no false positives. At every one of the blog's 13 steps, on
/// each database, the schema the database describes (its catalog, `--schema-from`)
/// checks clean against the history of the first k revisions replayed offline in its
/// dialect; on SQLite, the DDL the database keeps (`sqlite_master`), written as the
/// step's schema.sql, checks clean too; and `check --against db` on the declared head
/// schema finds exactly nothing once the last step is applied.
#[test]
fn every_step_of_the_blog_checks_clean_on_every_database() {
    let blog = Project::with_components(blog_components());
    let order = blog_order(&blog);
    assert_eq!(order.len(), 13);
    for (url, server) in databases(&blog) {
        for (k, id) in order.iter().enumerate() {
            blog.ok(&["--url", &url, "upgrade", id]);
            // The first k+1 revisions alone.
            let step = Project::new();
            for entry in std::fs::read_dir(blog_components()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if order[..=k].iter().any(|id| name.starts_with(id.as_str())) {
                    step.add(&path);
                }
            }
            assert_eq!(step.json(&["history"]).as_array().unwrap().len(), k + 1);
            let (c, err) = code(&step, &["--url", &url, "check", "--schema-from", &url]);
            assert_eq!(c, 0, "{url} at step {} ({id}): {err}", k + 1);
            assert!(err.contains("No changes detected"), "{err}");
            if server.is_none() {
                let ddl: String = Db::at(url.strip_prefix("sqlite:").unwrap().into())
                    .rows(
                        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL \
                         AND name NOT LIKE 'sqlite%' AND tbl_name NOT LIKE 'retort%' \
                         ORDER BY type = 'index', rowid",
                    )
                    .iter()
                    .map(|s| format!("{s};\n"))
                    .collect();
                std::fs::write(step.path().join("schema.sql"), &ddl).unwrap();
                step.append_config("\n[autogenerate]\nschema = \"schema.sql\"\n");
                let (c, err) = code(&step, &["check", "--dialect", "sqlite"]);
                assert_eq!(c, 0, "step {} ({id}), schema.sql:\n{ddl}\n{err}", k + 1);
            }
        }
        // Point 7: the declared head schema against the live database at head.
        let declared = blog_declaring(&blog_schema());
        let (c, err) = code(&declared, &["--url", &url, "check", "--against", "db"]);
        assert_eq!(c, 0, "{url}: {err}");
        let _ = server;
    }
}

/// Issue 15, points 6 and 8 (f): a database changed by hand (drift) fails
/// `check --against db`, naming each changed object, and the history is not to blame:
/// `check` offline still passes.
#[test]
fn drift_made_by_hand_is_found_on_every_database() {
    let p = blog_declaring(&blog_schema());
    for (url, server) in databases(&p) {
        p.ok(&["--url", &url, "upgrade", "head"]);
        let (c, err) = code(&p, &["--url", &url, "check", "--against", "db"]);
        assert_eq!(c, 0, "{url}: {err}");
        exec(
            &url,
            &server,
            "ALTER TABLE users ADD COLUMN nickname VARCHAR(40)",
        );
        exec(&url, &server, "CREATE INDEX ix_hand ON posts (title)");
        let (c, err) = code(&p, &["--url", &url, "check", "--against", "db"]);
        assert_eq!(c, 1, "{url}: {err}");
        assert!(
            err.contains("drop-column users.nickname") && err.contains("drop-index ix_hand"),
            "{url}: {err}"
        );
        assert!(
            err.contains("drift") && err.contains("2 change(s)"),
            "{url}: {err}"
        );
        let json = p.run(&[
            "--url",
            &url,
            "--format",
            "json",
            "check",
            "--against",
            "db",
        ]);
        let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
        // The history still builds the declared schema: the database is what moved.
        let (c, err) = code(&p, &["--url", &url, "check"]);
        assert_eq!(c, 0, "{url}: {err}");
        // A database that is not at head is not what autogenerate writes after.
        p.ok(&["--url", &url, "downgrade", "-1"]);
        let (c, err) = code(
            &p,
            &[
                "--url",
                &url,
                "revision",
                "--autogenerate",
                "--against",
                "db",
                "-m",
                "x",
            ],
        );
        assert_ne!(c, 0, "{url}: {err}");
        assert!(err.contains("not up to date"), "{url}: {err}");
    }
}
