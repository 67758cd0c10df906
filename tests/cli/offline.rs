//! `--sql`: scripts rendered with no database, run by each database's own client, must
//! leave the same schema and data as running online.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Project, Server, ServerDb, blog_components, fixture, workspace};

/// The script `retort ARGS --sql` prints.
pub(crate) fn script(p: &Project, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--sql");
    let out = p.run(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Feeds a script to a database's command-line client, stopping at the first error.
fn run_client(mut cmd: Command, script: &str) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn run_sqlite(db: &Path, script: &str) {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail").arg(db);
    run_client(cmd, script);
}

pub(crate) fn run_server(db: &ServerDb, script: &str) {
    let cmd = match db.server {
        Server::Postgres => {
            let mut c = Command::new("psql");
            c.args(["-v", "ON_ERROR_STOP=1", "-q"]).arg(&db.url);
            c
        }
        Server::MySql => {
            // mysql://user@host:port/db
            let rest = db.url.split_once("://").unwrap().1;
            let (auth, rest) = rest.split_once('@').unwrap();
            let (hostport, name) = rest.split_once('/').unwrap();
            let (host, port) = hostport.split_once(':').unwrap();
            let mut c = Command::new("mariadb");
            c.args(["--no-defaults", "-u", auth, "-h", host, "-P", port, name]);
            c
        }
    };
    run_client(cmd, script);
}

/// Schema of an SQLite database: every stored definition.
fn sqlite_schema(p: &Project, file: &str) -> Vec<String> {
    let db = crate::support::Db::at(p.path().join(file));
    db.rows("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
}

/// Schema of a server database: columns, constraints and indexes.
fn server_schema(db: &ServerDb) -> Vec<String> {
    let queries: &[&str] = match db.server {
        Server::Postgres => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '-') \
             || ' ' || coalesce(character_maximum_length::text, '') FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace ORDER BY 1",
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        ],
        Server::MySql => &[
            "SELECT CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable, ' ', coalesce(column_default, '-'), ' ', column_comment) \
             FROM information_schema.columns WHERE table_schema = database() ORDER BY 1",
            "SELECT CONCAT(table_name, ' ', constraint_name, ' ', constraint_type) FROM information_schema.table_constraints \
             WHERE constraint_schema = database() ORDER BY 1",
            "SELECT CONCAT(table_name, ' ', index_name, ' ', seq_in_index, ' ', column_name, ' ', non_unique) FROM information_schema.statistics \
             WHERE table_schema = database() ORDER BY 1",
        ],
    };
    queries.iter().flat_map(|q| db.rows(q)).collect()
}

#[test]
fn blog_script_matches_online_on_sqlite() {
    let p = Project::with_components(blog_components());
    p.ok(&["upgrade", "head"]);
    let up = script(&p, &["upgrade", "head"]);
    run_sqlite(&p.path().join("offline.db"), &up);
    assert_eq!(sqlite_schema(&p, "app.db"), sqlite_schema(&p, "offline.db"));
    // Data too: the same seed rows, split names and slugs.
    let online = crate::support::Db::at(p.path().join("app.db"));
    let offline = crate::support::Db::at(p.path().join("offline.db"));
    let data = "SELECT email, first_name, coalesce(last_name, '-'), role FROM users ORDER BY id";
    assert_eq!(online.rows(data), offline.rows(data));
    assert_eq!(offline.heads(), ["8187be35ba4a"]);

    let down = script(&p, &["downgrade", "head:base"]);
    run_sqlite(&p.path().join("offline.db"), &down);
    p.ok(&["downgrade", "base"]);
    assert_eq!(sqlite_schema(&p, "app.db"), sqlite_schema(&p, "offline.db"));
    assert!(offline.heads().is_empty());
}

fn blog_script_matches_online_on(server: Server) {
    let online = ServerDb::fresh(server);
    let offline = ServerDb::fresh(server);
    let p = Project::with_components(blog_components());
    p.use_url(&online.url);
    p.ok(&["upgrade", "head"]);
    let up = script(&p, &["upgrade", "head"]);
    run_server(&offline, &up);
    assert_eq!(server_schema(&online), server_schema(&offline));
    assert_eq!(offline.heads(), ["8187be35ba4a"]);
    let data = "SELECT email, first_name, coalesce(last_name, '-'), slug FROM users JOIN posts ON posts.user_id = users.id ORDER BY posts.id";
    assert_eq!(online.rows(data), offline.rows(data));

    let down = script(&p, &["downgrade", "head:base"]);
    run_server(&offline, &down);
    p.ok(&["downgrade", "base"]);
    assert_eq!(server_schema(&online), server_schema(&offline));
    assert_eq!(offline.tables(), ["retort_log", "retort_version"]);
}

#[test]
fn blog_script_matches_online_on_postgres() {
    blog_script_matches_online_on(Server::Postgres);
}

#[test]
fn blog_script_matches_online_on_mariadb() {
    blog_script_matches_online_on(Server::MySql);
}

#[test]
fn no_connection_is_opened_and_ranges_work() {
    let p = Project::with_components(blog_components());
    // An address nothing listens on: any connection attempt would fail.
    let url = "postgres://retort:secret@127.0.0.1:1/nowhere";
    let whole = script(&p, &["--url", url, "upgrade", "head"]);
    assert!(whole.starts_with("-- Generated by retort"), "{whole}");
    assert!(whole.contains("CREATE TABLE IF NOT EXISTS retort_version"));
    assert!(whole.contains("BEGIN;") && whole.contains("COMMIT;"));
    // A range from a revision: no ledger creation, only the later revisions.
    let part = script(&p, &["--url", url, "upgrade", "7600821d3182:head"]);
    assert!(
        !part.contains("CREATE TABLE IF NOT EXISTS retort_version"),
        "{part}"
    );
    assert!(
        part.contains("-- Running upgrade 7600821d3182 -> 0c42fcf69deb"),
        "{part}"
    );
    assert!(!part.contains("-> 7600821d3182,"), "{part}");
    // SQLite's rebuild of users (widening phone) needs the table as the earlier,
    // replayed revisions left it; MariaDB's MODIFY needs the column likewise.
    let sqlite_part = script(&p, &["upgrade", "1f34baec9930:head", "--dialect", "sqlite"]);
    assert!(
        sqlite_part.contains("CREATE TABLE \"_retort_rebuild_users\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT, \"email\" VARCHAR(100) NOT NULL UNIQUE"),
        "{sqlite_part}"
    );
    assert!(
        sqlite_part.contains("\"phone\" VARCHAR(30)"),
        "{sqlite_part}"
    );
    let mysql_part = script(&p, &["upgrade", "1f34baec9930:head", "--dialect", "mysql"]);
    assert!(
        mysql_part.contains("ALTER TABLE `users` MODIFY COLUMN `phone` VARCHAR(30) NULL"),
        "{mysql_part}"
    );
    let mysql = script(&p, &["--url", url, "upgrade", "head", "--dialect", "mysql"]);
    assert!(
        mysql.contains("START TRANSACTION;") && mysql.contains("`users`"),
        "{mysql}"
    );
    let stamp = script(&p, &["--url", url, "stamp", "head"]);
    assert!(
        stamp.contains("INSERT INTO retort_version (version_num) VALUES ('8187be35ba4a')"),
        "{stamp}"
    );
    // Offline downgrade needs a range; without a URL or --dialect there is no dialect.
    let err = p.fails(&["--url", url, "downgrade", "base", "--sql"], 2);
    assert!(err.contains("needs a range FROM:TO"), "{err}");
    let bare = Project::with_components(blog_components());
    std::fs::write(
        bare.path().join("retort.toml"),
        "[migrations]\ncomponents = \"components\"\n",
    )
    .unwrap();
    let err = bare.fails(&["upgrade", "head", "--sql"], 2);
    assert!(err.contains("--dialect"), "{err}");
}

#[test]
fn a_revision_that_reads_rows_explains_offline_mode() {
    let p = Project::new();
    p.add(&fixture("rows"));
    let err = p.fails(&["upgrade", "head", "--sql", "--dialect", "sqlite"], 1);
    assert!(
        err.contains("revision f0rows reads rows with `query`, which --sql cannot do"),
        "{err}"
    );
    assert!(err.contains("is-offline()"), "{err}");
}

fn literal_values(online_rows: Vec<String>, offline_rows: Vec<String>) {
    assert_eq!(online_rows.len(), 2);
    assert_eq!(online_rows, offline_rows);
    assert!(online_rows[0].contains("é ✓ 日本"), "{online_rows:?}");
}

#[test]
fn hard_values_become_safe_literals_on_every_dialect() {
    // SQLite
    let p = Project::new();
    p.add(&fixture("literals"));
    p.ok(&["upgrade", "head"]);
    run_sqlite(
        &p.path().join("offline.db"),
        &script(&p, &["upgrade", "head"]),
    );
    let q = "SELECT t, hex(b), f, flag, coalesce(n, 'NULL') FROM lit ORDER BY id";
    literal_values(
        crate::support::Db::at(p.path().join("app.db")).rows(q),
        crate::support::Db::at(p.path().join("offline.db")).rows(q),
    );
    for server in [Server::Postgres, Server::MySql] {
        let online = ServerDb::fresh(server);
        let offline = ServerDb::fresh(server);
        let p = Project::new();
        p.use_url(&online.url);
        p.add(&fixture("literals"));
        p.ok(&["upgrade", "head"]);
        run_server(&offline, &script(&p, &["upgrade", "head"]));
        let q = match server {
            Server::Postgres => {
                "SELECT t, encode(b, 'hex'), f::text, flag::text, coalesce(n, 'NULL') FROM lit ORDER BY id"
            }
            Server::MySql => "SELECT t, HEX(b), f, flag, coalesce(n, 'NULL') FROM lit ORDER BY id",
        };
        literal_values(online.rows(q), offline.rows(q));
    }
}

/// Replaces what varies between runs and machines (times, component digests).
pub(crate) fn normalize(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    for line in script.lines() {
        let mut l = line.to_owned();
        for (i, _) in line
            .match_indices('\'')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let tail = &line[i + 1..];
            let Some(end) = tail.find('\'') else { continue };
            let value = &tail[..end];
            let is_time = value.len() == 24 && value.ends_with('Z') && value.as_bytes()[10] == b'T';
            let is_digest = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
            if is_time || is_digest {
                let placeholder = if is_time { "<time>" } else { "<sha256>" };
                l = format!("{}{placeholder}{}", &l[..i + 1], &l[i + 1 + end..]);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Golden files of the blog's scripts per dialect: any change to the SQL Retort
/// generates shows up in review. Re-bless with `RETORT_BLESS=1`.
#[test]
fn blog_scripts_match_the_golden_files() {
    let p = Project::with_components(blog_components());
    for dialect in ["sqlite", "postgres", "mysql"] {
        let up = normalize(&script(&p, &["upgrade", "head", "--dialect", dialect]));
        let down = normalize(&script(
            &p,
            &["downgrade", "head:base", "--dialect", dialect],
        ));
        let golden = workspace().join(format!("tests/golden/blog-{dialect}.sql"));
        let rendered = format!("{up}-- ---- downgrade head:base ----\n{down}");
        if std::env::var_os("RETORT_BLESS").is_some() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{} is missing: run with RETORT_BLESS=1", golden.display()));
        assert!(
            expected == rendered,
            "{} differs from the rendered script; review and re-bless with RETORT_BLESS=1",
            golden.display()
        );
    }
}
