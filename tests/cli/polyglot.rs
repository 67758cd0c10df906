//! Revisions in Python, JavaScript and C beside Rust: examples/polyglot reaches the same
//! schema and data as the same history written in Rust, on every database; other
//! languages' components run in the locked-down WASI context.

use crate::support::{
    Bait, Project, Server, ServerDb, language_fixture, polyglot_components,
    polyglot_rust_components, shared_cache_config,
};

/// The schema and data the history leaves, as comparable strings.
fn snapshot(rows: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut out = rows("SELECT id, full_name, first_name, last_name FROM authors ORDER BY id");
    out.extend(rows(
        "SELECT id, author_id, title, slug FROM books ORDER BY id",
    ));
    out
}

fn polyglot_on(server: Option<Server>) {
    let mixed = Project::with_components(polyglot_components());
    let rust = Project::with_components(polyglot_rust_components());
    let dbs: Vec<Option<ServerDb>> = [&mixed, &rust]
        .iter()
        .map(|p| {
            p.append_config(&shared_cache_config());
            server.map(|s| {
                let db = ServerDb::fresh(s);
                p.use_url(&db.url);
                db
            })
        })
        .collect();
    let reader = |p: &Project, db: &Option<ServerDb>| {
        let p = p.path().to_owned();
        let db = db.as_ref().map(|d| (d.server, d.url.clone()));
        move |sql: &str| match &db {
            Some((server, url)) => ServerDb {
                server: *server,
                url: url.clone(),
            }
            .rows(sql),
            None => crate::support::Db::at(p.join("app.db")).rows(sql),
        }
    };
    let read_mixed = reader(&mixed, &dbs[0]);
    let read_rust = reader(&rust, &dbs[1]);

    let out = mixed.ok(&["upgrade", "head"]);
    assert!(out.contains("[b2] info: split 4 names"), "{out}");
    assert!(out.contains("[d4] info: gave 4 books a slug"), "{out}");
    rust.ok(&["upgrade", "head"]);
    let got = snapshot(&read_mixed);
    assert_eq!(got, snapshot(&read_rust));
    assert!(
        got.contains(&"2|Grace Brewster Hopper|Grace Brewster|Hopper".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"3|3|A Discipline of Programming|a-discipline-of-programming".to_string()),
        "{got:?}"
    );
    assert_eq!(read_mixed("SELECT version_num FROM retort_version"), ["d4"]);

    // Down again, one language at a time, to base.
    mixed.ok(&["downgrade", "c3"]);
    assert_eq!(read_mixed("SELECT count(*) FROM books"), ["4"]);
    mixed.ok(&["downgrade", "base"]);
    rust.ok(&["downgrade", "base"]);
    let tables = |read: &dyn Fn(&str) -> Vec<String>| {
        read(match server {
            None => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
            Some(Server::Postgres) => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            }
            Some(Server::MySql) => {
                "SELECT table_name FROM information_schema.tables WHERE table_schema = database() ORDER BY 1"
            }
        })
    };
    assert_eq!(tables(&read_mixed), ["retort_log", "retort_version"]);
    assert_eq!(tables(&read_mixed), tables(&read_rust));
}

#[test]
fn polyglot_history_matches_rust_on_sqlite() {
    polyglot_on(None);
}

#[test]
fn polyglot_history_matches_rust_on_postgres() {
    polyglot_on(Some(Server::Postgres));
}

#[test]
fn polyglot_history_matches_rust_on_mariadb() {
    polyglot_on(Some(Server::MySql));
}

#[test]
fn a_python_revision_cannot_reach_files_sockets_or_the_environment() {
    // A listener the guest is told about: it must never see a connection.
    let bait = Bait::new();
    let port = bait.port();
    let p = Project::new();
    p.append_config(&shared_cache_config());
    p.add(&language_fixture("lpy_escape"));
    p.db_exec("CREATE TABLE probe_target (port INTEGER)");
    p.db_exec(&format!("INSERT INTO probe_target VALUES ({port})"));
    let out = p
        .cmd(&["upgrade", "head"])
        .env("RETORT_TEST_SECRET", "hunter2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: std::collections::BTreeMap<String, String> = p
        .db()
        .rows("SELECT check_name, outcome FROM escape_probe")
        .into_iter()
        .map(|r| {
            let (k, v) = r.split_once('|').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    for check in ["file", "listdir", "socket"] {
        assert!(seen[check].starts_with("denied"), "{check}: {seen:?}");
        // (componentize-py's CPython has no socket module at all; the WASI-level denial of
        // sockets is shown by tests/fixtures/versions/wasi.rs.)
    }
    assert_eq!(seen["environ"], "0 variables", "{seen:?}");
    bait.assert_untouched();
}

#[test]
fn python_and_javascript_failures_reach_the_user_and_roll_back() {
    for (fixture, id, said) in [
        (
            "lraise_raises",
            "lraise",
            "ValueError: expected 42, found 41",
        ),
        (
            "ljs_error",
            "ljs",
            "the data is not what this revision expects",
        ),
    ] {
        let p = Project::new();
        p.append_config(&shared_cache_config());
        p.add(&language_fixture(fixture));
        let err = p.fails(&["upgrade", "head"], 1);
        assert!(
            err.contains(&format!(
                "revision {id} failed to upgrade and was rolled back"
            )),
            "{err}"
        );
        assert!(err.contains(said), "{err}");
        assert!(!p.db().tables().contains(&"half_done".to_string()));
        assert!(p.db().heads().is_empty());
    }
}

#[test]
fn revision_scaffolds_every_language() {
    let p = Project::new();
    let mut previous: Option<String> = None;
    for (lang, ext, comment) in [
        ("python", "py", "#"),
        ("js", "js", "//"),
        ("c", "c", "//"),
        ("rust", "rs", "//!"),
    ] {
        let out = p.json(&["revision", "-m", &format!("in {lang}"), "--lang", lang]);
        let path = std::path::PathBuf::from(out["path"].as_str().unwrap());
        assert_eq!(path.extension().unwrap(), ext, "{out}");
        let text = std::fs::read_to_string(&path).unwrap();
        // Each follows the one before, whatever the language, in its own comments.
        let down = match &previous {
            Some(id) => format!("{comment} down = [\"{id}\"]"),
            None => format!("{comment} down = []"),
        };
        assert!(text.contains(&down), "{text}");
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        previous = Some(stem.split('_').next().unwrap().to_owned());
    }
}

#[test]
fn a_missing_toolchain_says_how_to_get_it() {
    let p = Project::new();
    let out = p.json(&["revision", "-m", "in python", "--lang", "python"]);
    assert!(out["path"].as_str().unwrap().ends_with(".py"), "{out}");
    // A PATH with no componentize-py on it.
    let empty = tempfile::tempdir().unwrap();
    let out = p
        .cmd(&["build"])
        .env("PATH", empty.path())
        .env_remove("RETORT_COMPONENTIZE_PY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("building Python revisions needs componentize-py, which is not installed")
            && err.contains("pip install componentize-py==0.25.1"),
        "{err}"
    );
}
