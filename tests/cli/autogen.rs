//! `retort revision --autogenerate` (issue 15): the declared schema changes, Retort
//! writes the revision, the revision builds and runs on SQLite, PostgreSQL and MariaDB,
//! and its downgrade undoes it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::support::{Project, Server, ServerDb, blog_components, shared_cache_config, workspace};

/// A project that builds revision sources (sharing the test guests' cargo target dir)
/// and declares `schema.sql`.
fn source_project(schema: &str) -> Project {
    let p = Project::new();
    p.append_config(&format!(
        "\n[build]\nguest-sdk = {{ path = {:?} }}\ndir = \"build\"\ntarget-dir = {:?}\n\n[autogenerate]\nschema = \"schema.sql\"\n",
        workspace().join("guest-sdk").display().to_string(),
        workspace()
            .join("target/test-guests/target")
            .display()
            .to_string(),
    ));
    declare(&p, schema);
    p
}

fn declare(p: &Project, schema: &str) {
    std::fs::write(p.path().join("schema.sql"), schema).unwrap();
}

/// Runs `revision --autogenerate` in SQLite's dialect; the written file and stderr.
fn autogenerate(p: &Project, id: &str, message: &str, extra: &[&str]) -> (PathBuf, String) {
    let mut args = vec![
        "--format",
        "json",
        "revision",
        "--autogenerate",
        "-m",
        message,
        "--rev-id",
        id,
    ];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (PathBuf::from(written["path"].as_str().unwrap()), err)
}

fn sources(p: &Project) -> usize {
    std::fs::read_dir(p.path().join("versions"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The databases of the suite, as `--url` values, each fresh.
fn databases(p: &Project) -> Vec<(String, Option<ServerDb>)> {
    vec![
        (format!("sqlite:{}", p.path().join("t.db").display()), None),
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

/// Runs a statement that writes on the database behind `url`.
fn exec(url: &str, server: &Option<ServerDb>, sql: &str) {
    match server {
        Some(db) => db.exec(sql),
        None => {
            crate::support::Db::at(PathBuf::from(url.strip_prefix("sqlite:").unwrap())).exec(sql)
        }
    }
}

/// Rows of a query on the database behind `url`.
fn rows(url: &str, server: &Option<ServerDb>, sql: &str) -> Vec<String> {
    match server {
        Some(db) => db.rows(sql),
        None => {
            let path = PathBuf::from(url.strip_prefix("sqlite:").unwrap());
            crate::support::Db::at(path).rows(sql)
        }
    }
}

/// The schema of a database as comparable lines: columns (type, nullability,
/// default), indexes (uniqueness, columns in order), foreign keys (columns, target,
/// actions) and, where the catalog has them, constraints by name.
fn catalog(url: &str, server: &Option<ServerDb>) -> BTreeSet<String> {
    let queries: &[&str] = match server.as_ref().map(|s| s.server) {
        None => &[
            "SELECT m.name || '.' || c.name || ' ' || c.type || ' ' || c.\"notnull\" || ' ' || coalesce(c.dflt_value, '-') || ' ' || c.pk \
             FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name NOT LIKE 'retort%' AND m.name NOT LIKE 'sqlite%'",
            "SELECT m.name || ' index ' || i.name || ' ' || i.\"unique\" || ' ' || (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(i.name) ORDER BY seqno)) \
             FROM sqlite_master m, pragma_index_list(m.name) i WHERE m.type = 'table' AND m.name NOT LIKE 'retort%' AND m.name NOT LIKE 'sqlite%' AND i.origin = 'c'",
            "SELECT m.name || ' fk ' || f.\"from\" || ' -> ' || f.\"table\" || '.' || f.\"to\" || ' ' || f.on_delete || ' ' || f.on_update \
             FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND m.name NOT LIKE 'retort%'",
        ],
        Some(Server::Postgres) => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') || ' ' || is_nullable || ' ' || coalesce(column_default, '-') \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE 'retort%'",
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE 'retort%'",
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'retort%'",
        ],
        Some(Server::MySql) => &[
            "SELECT CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable, ' ', coalesce(column_default, '-'), ' ', extra) \
             FROM information_schema.columns WHERE table_schema = database() AND table_name NOT LIKE 'retort%'",
            "SELECT CONCAT(table_name, ' index ', index_name, ' ', non_unique, ' ', group_concat(column_name ORDER BY seq_in_index)) \
             FROM information_schema.statistics WHERE table_schema = database() AND table_name NOT LIKE 'retort%' GROUP BY table_name, index_name, non_unique",
            "SELECT CONCAT(k.table_name, ' ', k.constraint_name, ' ', k.column_name, ' -> ', k.referenced_table_name, '.', k.referenced_column_name, ' ', r.delete_rule, ' ', r.update_rule) \
             FROM information_schema.key_column_usage k JOIN information_schema.referential_constraints r \
             ON r.constraint_schema = k.constraint_schema AND r.constraint_name = k.constraint_name WHERE k.table_schema = database()",
            "SELECT CONCAT(table_name, ' ', constraint_name, ' ', check_clause) FROM information_schema.check_constraints WHERE constraint_schema = database()",
        ],
    };
    queries.iter().flat_map(|q| rows(url, server, q)).collect()
}

const USERS: &str = "CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE
);
";

const POSTS: &str = "CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title VARCHAR(200) NOT NULL,
    price NUMERIC(10, 2) DEFAULT 0 CHECK (price >= 0)
);
CREATE INDEX ix_posts_user_id ON posts (user_id);
";

/// Issue 15, point 8 (a), (b) and (c): the seed's `phone`, a new table with a foreign
/// key, and the rename Alembic writes as drop + add; each revision written by
/// autogenerate, built, applied and undone on every database.
#[test]
fn the_autogenerate_loop_on_every_database() {
    let p = source_project(USERS);
    let (first, _) = autogenerate(&p, "a1", "create users", &[]);
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(
        text.contains("create_table(\n            Table::new(\"users\")"),
        "{text}"
    );
    p.ok(&["build"]);

    // (a) The seed's example.
    declare(
        &p,
        &USERS.replace("UNIQUE\n", "UNIQUE,\n    phone VARCHAR(20)\n"),
    );
    let (path, err) = autogenerate(&p, "b2", "add phone", &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(
            "    fn upgrade() -> Result<()> {\n        add_column(\"users\", Column::new(\"phone\", SqlType::Varchar(20)))?;\n        Ok(())"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "    fn downgrade() -> Result<()> {\n        // REVIEW: drops column users.phone and its data\n        drop_column(\"users\", \"phone\")?;"
        ),
        "{text}"
    );
    assert!(text.contains("down = [\"a1\"]"), "{text}");
    assert!(err.contains("add-column users.phone"), "{err}");
    // A revision not built yet would be missing from the comparison: refused.
    let refused = p.fails(&["revision", "--autogenerate", "-m", "again"], 2);
    assert!(refused.contains("run `retort build` first"), "{refused}");
    p.ok(&["build"]);
    // Nothing new: Alembic's message, exit 0, no file.
    let before = sources(&p);
    let out = p.run(&["revision", "--autogenerate", "-m", "nothing"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No changes detected"));
    assert_eq!(sources(&p), before);

    // (b) A new table with a foreign key to users, a check and an index.
    let with_phone = USERS.replace("UNIQUE\n", "UNIQUE,\n    phone VARCHAR(20)\n");
    declare(&p, &format!("{with_phone}{POSTS}"));
    let (path, _) = autogenerate(&p, "c3", "create posts", &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(".on_delete(ReferentialAction::Cascade)"),
        "{text}"
    );
    assert!(
        text.contains(
            "create_index(Index::new(\"ix_posts_user_id\", \"posts\", &[\"user_id\"]))?;"
        ),
        "{text}"
    );
    p.ok(&["build"]);

    // (c) name renamed to full_name: proposed, not taken, unless asked.
    let renamed = format!(
        "{}{POSTS}",
        with_phone.replace("name VARCHAR", "full_name VARCHAR")
    );
    declare(&p, &renamed);
    let (path, err) = autogenerate(&p, "d4", "rename name", &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        err.contains("--rename users.name=full_name")
            && text.contains("--rename users.name=full_name"),
        "{err}\n{text}"
    );
    assert!(text.contains("drop_column(\"users\", \"name\")"), "{text}");
    std::fs::remove_file(&path).unwrap();
    // --renames auto takes the look-alike as a rename, marked for review in the source
    // and on stderr.
    let (path, err) = autogenerate(&p, "d4", "rename name", &["--renames", "auto"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("REVIEW")
            && text.contains(
                "alter_column(\"users\", \"name\", Alter::new().rename(\"full_name\"))?;"
            )
            && !text.contains("drop_column"),
        "{text}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains("users.name") && l.contains("full_name")),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
    let (path, _) = autogenerate(
        &p,
        "d4",
        "rename name",
        &["--rename", "users.name=full_name"],
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("alter_column(\"users\", \"name\", Alter::new().rename(\"full_name\"))?;")
            && text.contains(
                "alter_column(\"users\", \"full_name\", Alter::new().rename(\"name\"))?;"
            )
            && !text.contains("drop_column"),
        "{text}"
    );
    p.ok(&["build"]);
    p.ok(&["check", "--dialect", "sqlite"]);

    for (url, server) in databases(&p) {
        let at = |args: &[&str]| {
            let mut all = vec!["--url", url.as_str()];
            all.extend_from_slice(args);
            p.ok(&all);
        };
        at(&["upgrade", "c3"]);
        let insert = "INSERT INTO users (id, name, email, phone) VALUES (1, 'Ada', 'ada@example.com', '555');
                      INSERT INTO posts (id, user_id, title, price) VALUES (1, 1, 'Notes', 3.5)";
        for statement in insert.split(';') {
            exec(&url, &server, statement);
        }
        at(&["upgrade", "head"]);
        assert_eq!(
            rows(&url, &server, "SELECT full_name FROM users"),
            ["Ada"],
            "{url}"
        );
        let schema = catalog(&url, &server);
        assert!(
            schema.iter().any(|l| l.contains("posts")
                && l.contains("user_id")
                && l.to_lowercase().contains("cascade")),
            "{url}: {schema:#?}"
        );
        at(&["downgrade", "-1"]);
        assert_eq!(
            rows(&url, &server, "SELECT name FROM users"),
            ["Ada"],
            "{url}"
        );
        at(&["downgrade", "a1"]);
        let columns = catalog(&url, &server);
        assert!(
            !columns
                .iter()
                .any(|l| l.contains("phone") || l.contains("posts")),
            "{url}: {columns:#?}"
        );
        at(&["downgrade", "base"]);
    }
}

/// Issue 15, point 8 (d): from an empty history, the blog's head schema becomes one
/// revision whose schema on each database is the one the blog's 13 revisions build.
#[test]
fn the_blogs_head_schema_from_an_empty_history() {
    let schema = std::fs::read_to_string(workspace().join("examples/blog/schema.sql")).unwrap();
    let p = source_project(&schema);
    let (path, err) = autogenerate(&p, "e1", "the blog at head", &[]);
    let text = std::fs::read_to_string(&path).unwrap();
    // categories before posts, which refers to it; dropped in reverse.
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
    assert!(
        at("Table::new(\"categories\")") < at("Table::new(\"posts\")"),
        "{text}"
    );
    assert!(
        at("drop_table(\"posts\")") < at("drop_table(\"categories\")"),
        "{text}"
    );
    assert!(!err.contains("REVIEW"), "{err}");
    p.ok(&["build"]);
    for dialect in ["sqlite", "postgres", "mysql"] {
        p.ok(&["check", "--dialect", dialect]);
    }
    let blog = Project::with_components(blog_components());
    for ((url, server), (blog_url, blog_server)) in databases(&p).into_iter().zip(databases(&blog))
    {
        p.ok(&["--url", &url, "upgrade", "head"]);
        blog.ok(&["--url", &blog_url, "upgrade", "head"]);
        let ours = catalog(&url, &server);
        let theirs = catalog(&blog_url, &blog_server);
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "{url}");
        p.ok(&["--url", &url, "downgrade", "base"]);
        assert!(catalog(&url, &server).is_empty(), "{url}");
    }
}

/// Issue 15, point 1 and 8 (g): the same schema written as Python, JavaScript and C
/// revisions builds with each language's toolchain, and each gives the catalog the
/// Rust revision gives.
#[test]
fn every_language_writes_a_revision_that_builds_and_applies() {
    let schema = format!("{USERS}{POSTS}");
    let rust = source_project(&schema);
    autogenerate(&rust, "r1", "schema", &[]);
    rust.ok(&["build"]);
    let url = format!("sqlite:{}", rust.path().join("t.db").display());
    rust.ok(&["--url", &url, "upgrade", "head"]);
    let expected = catalog(&url, &None);
    for lang in ["python", "js", "c"] {
        let p = source_project(&schema);
        p.append_config(&shared_cache_config());
        let (path, _) = autogenerate(&p, "l1", "schema", &["--lang", lang]);
        p.ok(&["build"]);
        let url = format!("sqlite:{}", p.path().join("t.db").display());
        p.ok(&["--url", &url, "upgrade", "head"]);
        assert_eq!(
            catalog(&url, &None),
            expected,
            "{lang}: {}",
            std::fs::read_to_string(&path).unwrap()
        );
        p.ok(&["--url", &url, "downgrade", "base"]);
        assert!(catalog(&url, &None).is_empty(), "{lang}");
    }
}

/// Issue 15, point 1 (`--against db`) and `--schema-from`: the revision is written
/// against a live database's catalog, and the wanted schema can come from a database
/// shaped by hand.
#[test]
fn autogenerate_against_a_live_database_and_from_a_reference_one() {
    let base = source_project(USERS);
    for (url, server) in databases(&base) {
        let p = source_project(USERS);
        autogenerate(&p, "a1", "create users", &[]);
        p.ok(&["build"]);
        p.ok(&["--url", &url, "upgrade", "head"]);
        declare(
            &p,
            &USERS.replace("UNIQUE\n", "UNIQUE,\n    phone VARCHAR(20)\n"),
        );
        let (path, _) = autogenerate(&p, "b2", "add phone", &["--url", &url, "--against", "db"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("add_column(\"users\", Column::new(\"phone\", SqlType::Varchar(20)))?;")
                && !text.contains("create_table")
                && !text.contains("constraint"),
            "{url}: {text}"
        );
        p.ok(&["build"]);
        p.ok(&["--url", &url, "upgrade", "head"]);
        p.ok(&["--url", &url, "check", "--against", "db"]);
        exec(
            &url,
            &server,
            "INSERT INTO users (id, name, email, phone) VALUES (1, 'Ada', 'ada@example.com', '555')",
        );
        // The wanted schema from a database someone shaped by hand (SQLite here).
        let reference = p.path().join("reference.db");
        crate::support::Db::at(reference.clone()).exec(
            "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(100) NOT NULL, \
             email VARCHAR(200) NOT NULL UNIQUE, phone VARCHAR(20), age INTEGER DEFAULT 0)",
        );
        if server.is_none() {
            let from = format!("sqlite:{}", reference.display());
            let (path, _) = autogenerate(&p, "c3", "add age", &["--schema-from", &from]);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.contains("Column::new(\"age\", SqlType::Integer).server_default(\"0\")"),
                "{text}"
            );
            p.ok(&["build"]);
            p.ok(&["--url", &url, "upgrade", "head"]);
            assert_eq!(rows(&url, &server, "SELECT age FROM users"), ["0"]);
            p.ok(&[
                "--url",
                &url,
                "check",
                "--against",
                "db",
                "--schema-from",
                &from,
            ]);
        }
        p.ok(&["--url", &url, "downgrade", "base"]);
        assert!(catalog(&url, &server).is_empty(), "{url}");
    }
}
