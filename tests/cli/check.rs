//! `retort check`: the declared schema (examples/blog/schema.sql) against the schema the
//! blog's 13 revisions build, replayed offline in each dialect (issue 15, point 6 offline).

use crate::support::{Project, blog_components, retort, workspace};

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
