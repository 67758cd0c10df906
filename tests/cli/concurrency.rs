//! Concurrent deployers, crashes, dropped connections and transaction modes, on real
//! databases: nothing applied twice, nothing half-applied.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, Server, ServerDb};
use crate::wat_guest;

/// Where a test runs: the project's SQLite file or a fresh server database.
enum Target {
    Sqlite,
    Server(ServerDb),
}

impl Target {
    fn new(server: Option<Server>) -> (Project, Target) {
        let p = Project::new();
        match server {
            None => (p, Target::Sqlite),
            Some(s) => {
                let db = ServerDb::fresh(s);
                p.use_url(&db.url);
                (p, Target::Server(db))
            }
        }
    }

    fn rows(&self, p: &Project, sql: &str) -> Vec<String> {
        match self {
            Target::Sqlite => p.db().rows(sql),
            Target::Server(db) => db.rows(sql),
        }
    }

    fn tables(&self, p: &Project) -> Vec<String> {
        match self {
            Target::Sqlite => p.db().tables(),
            Target::Server(db) => db.tables(),
        }
    }

    fn heads(&self, p: &Project) -> Vec<String> {
        match self {
            Target::Sqlite => p.db().heads(),
            Target::Server(db) => db.heads(),
        }
    }
}

/// Seven revisions: the first creates a counter, each other one creates its own table
/// and increments the counter.
fn counting_history(p: &Project) {
    p.write_component(
        "c1.wasm",
        &wat_guest::revision_of(
            "c1",
            &[],
            &[
                "CREATE TABLE deploy_counter (n INTEGER NOT NULL)",
                "INSERT INTO deploy_counter (n) VALUES (0)",
            ],
            &["DROP TABLE deploy_counter"],
            "",
        ),
    );
    for i in 2..=7 {
        let id = format!("c{i}");
        let down = format!("c{}", i - 1);
        let create = format!("CREATE TABLE t{i} (id INTEGER)");
        let drop = format!("DROP TABLE t{i}");
        p.write_component(
            &format!("{id}.wasm"),
            &wat_guest::revision_of(
                &id,
                &[&down],
                &[&create, "UPDATE deploy_counter SET n = n + 1"],
                &[&drop, "UPDATE deploy_counter SET n = n - 1"],
                "",
            ),
        );
    }
}

fn eight_deployers_at_once(server: Option<Server>) {
    let (p, target) = Target::new(server);
    counting_history(&p);
    let children: Vec<Child> = (0..8)
        .map(|_| {
            p.cmd(&["upgrade", "head"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a deployer failed:\n{stderr}");
        // Each one either applied revisions or found that others had.
        assert!(
            stderr.contains("Running upgrade") || stderr.contains("nothing to do"),
            "{stderr}"
        );
    }
    // Every revision ran exactly once, whoever ran it.
    assert_eq!(target.rows(&p, "SELECT n FROM deploy_counter"), ["6"]);
    assert_eq!(
        target.rows(
            &p,
            "SELECT revision FROM retort_log WHERE direction = 'up' AND status = 'done' ORDER BY id"
        ),
        ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    );
    assert_eq!(target.rows(&p, "SELECT count(*) FROM retort_log"), ["7"]);
    assert_eq!(target.heads(&p), ["c7"]);
    let tables = target.tables(&p);
    for i in 2..=7 {
        assert!(tables.contains(&format!("t{i}")), "{tables:?}");
    }
}

#[test]
fn eight_deployers_at_once_on_sqlite() {
    eight_deployers_at_once(None);
}

#[test]
fn eight_deployers_at_once_on_postgres() {
    eight_deployers_at_once(Some(Server::Postgres));
}

#[test]
fn eight_deployers_at_once_on_mariadb() {
    eight_deployers_at_once(Some(Server::MySql));
}

/// A base revision with a table, then one that creates another, fills the first and
/// computes for a while.
fn long_data_migration(p: &Project, server: Option<Server>) {
    p.append_config("\n[sandbox]\nfuel = 100000000000\n");
    let fill = match server {
        Some(Server::Postgres) => {
            "INSERT INTO big (id) SELECT g FROM generate_series(1, 200000) AS g"
        }
        // MariaDB's Sequence engine (recursive CTEs stop at 1000 iterations by default).
        Some(Server::MySql) => "INSERT INTO big (id) SELECT seq FROM seq_1_to_200000",
        None => {
            "INSERT INTO big (id) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c"
        }
    };
    p.write_component(
        "k1.wasm",
        &wat_guest::revision_of(
            "k1",
            &[],
            &["CREATE TABLE big (id INTEGER)"],
            &["DROP TABLE big"],
            "",
        ),
    );
    p.write_component(
        "k2.wasm",
        &wat_guest::revision_of(
            "k2",
            &["k1"],
            // DDL first: on MariaDB it commits implicitly, and the rows that follow must
            // still be in a transaction of their own.
            &["CREATE TABLE after_fill (id INTEGER)", fill],
            &["DELETE FROM big", "DROP TABLE after_fill"],
            wat_guest::SPIN,
        ),
    );
}

/// Starts `retort upgrade head` and returns once it is inside revision k2.
fn start_until_k2(p: &Project) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = p
        .cmd(&["upgrade", "head"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("-> k2") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("retort never started k2");
    (child, reader)
}

fn killed_mid_revision(server: Option<Server>) {
    let (p, target) = Target::new(server);
    long_data_migration(&p, server);
    let (mut child, reader) = start_until_k2(&p);
    // Well inside the revision: its INSERT ran, it is computing.
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stderr = reader.join().unwrap();
    // The kill came inside k2, not after it.
    assert_eq!(stderr.matches("done in").count(), 1, "{stderr}");
    if matches!(target, Target::Sqlite) {
        // SQLite's design: the next connection that opens the file rolls the killed
        // process's hot journal back (the tests' reader opens read-only, so write once).
        p.db_exec("SELECT 1");
    }

    // As before k2: its rows are gone, the ledger says k1.
    assert_eq!(target.rows(&p, "SELECT count(*) FROM big"), ["0"]);
    assert!(!target.tables(&p).contains(&"after_fill".to_string()));
    assert_eq!(target.heads(&p), ["k1"]);
    assert_eq!(
        target.rows(
            &p,
            "SELECT revision || ':' || status FROM retort_log ORDER BY id"
        ),
        ["k1:done"]
    );
    if let Target::Server(db) = &target {
        // The killed session's lock ends with it (PostgreSQL checks the client every second).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held = db.rows(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275282",
            );
            if held == ["0"] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the advisory lock outlived its session"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The next deploy completes.
    p.ok(&["upgrade", "head"]);
    assert_eq!(target.rows(&p, "SELECT count(*) FROM big"), ["200000"]);
    assert_eq!(target.heads(&p), ["k2"]);
}

#[test]
fn a_deploy_killed_mid_revision_leaves_sqlite_as_before() {
    killed_mid_revision(None);
}

#[test]
fn a_deploy_killed_mid_revision_leaves_postgres_as_before() {
    killed_mid_revision(Some(Server::Postgres));
}

fn connection_dropped_mid_revision(server: Server) {
    let (p, target) = Target::new(Some(server));
    let Target::Server(db) = &target else {
        unreachable!()
    };
    long_data_migration(&p, Some(server));
    let (child, reader) = start_until_k2(&p);
    std::thread::sleep(Duration::from_millis(300));
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    match server {
        Server::Postgres => {
            let killed = db.rows(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND application_name LIKE 'retort %'"
            ));
            assert_eq!(killed, ["t"], "no retort session to terminate");
        }
        Server::MySql => {
            let ids = db.rows(&format!(
                "SELECT id FROM information_schema.processlist WHERE db = '{name}' AND id <> CONNECTION_ID()"
            ));
            assert_eq!(ids.len(), 1, "{ids:?}");
            db.exec(&format!("KILL {}", ids[0]));
        }
    }
    let status = child.wait_with_output().unwrap().status;
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("revision k2 failed to upgrade: the database connection was lost")
            && stderr.contains("not recorded as applied"),
        "{stderr}"
    );
    // Nothing recorded as applied that was not.
    assert_eq!(target.heads(&p), ["k1"]);
    let log = target.rows(
        &p,
        "SELECT CONCAT(revision, ':', status) FROM retort_log ORDER BY id",
    );
    assert_eq!(log[0], "k1:done");
    assert!(log[1..].iter().all(|l| l == "k2:failed"), "{log:?}");
    // The rows were rolled back. MariaDB keeps the DDL that ran (as the error says);
    // PostgreSQL rolled it back too.
    assert_eq!(target.rows(&p, "SELECT count(*) FROM big"), ["0"]);
    assert_eq!(
        target.tables(&p).contains(&"after_fill".to_string()),
        server == Server::MySql
    );
}

#[test]
fn a_dropped_connection_on_postgres_is_a_clear_error() {
    connection_dropped_mid_revision(Server::Postgres);
}

#[test]
fn a_dropped_connection_on_mariadb_is_a_clear_error() {
    connection_dropped_mid_revision(Server::MySql);
}

/// Three revisions; the third fails (a trap) after its first statement.
fn failing_third(p: &Project) {
    p.write_component("a.wasm", &wat_guest::revision("ta", &[], "ta_t", ""));
    p.write_component("b.wasm", &wat_guest::revision("tb", &["ta"], "tb_t", ""));
    p.write_component(
        "c.wasm",
        &wat_guest::revision("tc", &["tb"], "tc_t", wat_guest::TRAP),
    );
}

fn transaction_all(server: Option<Server>) {
    let (p, target) = Target::new(server);
    failing_third(&p);
    let err = p.fails(&["upgrade", "head", "--transaction", "all"], 1);
    assert!(
        err.contains("revision tc failed to upgrade and was rolled back")
            && err.contains("rolled back too: ta, tb"),
        "{err}"
    );
    assert_eq!(target.heads(&p), Vec::<String>::new());
    let tables = target.tables(&p);
    assert!(!tables.iter().any(|t| t.ends_with("_t")), "{tables:?}");

    // Per revision (the default), the first two stay.
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("applied before it in this run (kept): ta, tb"),
        "{err}"
    );
    assert_eq!(target.heads(&p), ["tb"]);

    // All or nothing also when all goes well: one commit, every ledger row.
    p.ok(&["downgrade", "base"]);
    std::fs::remove_file(p.components().join("c.wasm")).unwrap();
    p.ok(&["upgrade", "head", "--transaction", "all"]);
    assert_eq!(target.heads(&p), ["tb"]);
    assert_eq!(
        target.rows(
            &p,
            "SELECT revision FROM retort_log WHERE direction = 'up' ORDER BY id"
        ),
        ["ta", "tb", "ta", "tb"]
    );
}

#[test]
fn transaction_all_is_all_or_nothing_on_sqlite() {
    transaction_all(None);
}

#[test]
fn transaction_all_is_all_or_nothing_on_postgres() {
    transaction_all(Some(Server::Postgres));
}

#[test]
fn transaction_all_is_refused_on_mariadb() {
    let (p, target) = Target::new(Some(Server::MySql));
    failing_third(&p);
    let err = p.fails(&["upgrade", "head", "--transaction", "all"], 1);
    assert!(
        err.contains("--transaction all needs transactional DDL"),
        "{err}"
    );
    assert!(!target.tables(&p).contains(&"ta_t".to_string()));
}

/// Holds the migration lock from another connection and checks that retort waits
/// `--lock-timeout`, then names the holder and changes nothing; for a revision that runs
/// in a transaction, or (`outside`) one that runs outside any.
fn lock_timeout(server: Option<Server>, outside: bool) {
    let (p, target) = Target::new(server);
    let create = "CREATE TABLE la_t (id INTEGER)";
    p.write_component(
        "a.wasm",
        &if outside {
            wat_guest::outside_transaction("la", &[], &[create], "")
        } else {
            wat_guest::revision_of("la", &[], &[create], &["DROP TABLE la_t"], "")
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    use sqlx::{ConnectOptions as _, Connection as _};
    let expected = match &target {
        Target::Sqlite => {
            let mut conn = rt
                .block_on(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(p.db_path())
                        .create_if_missing(true)
                        .connect(),
                )
                .unwrap();
            rt.block_on(sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn))
                .unwrap();
            let err = p.fails(&["--lock-timeout", "1", "upgrade", "head"], 1);
            drop(conn);
            (err, "another connection holds the database's write lock")
        }
        Target::Server(db) if db.server == Server::Postgres => {
            let url = format!("{}?application_name=lock-holder-test", db.url);
            let mut conn = rt.block_on(sqlx::PgConnection::connect(&url)).unwrap();
            rt.block_on(sqlx::raw_sql("SELECT pg_advisory_lock(1380275282, 0)").execute(&mut conn))
                .unwrap();
            let err = p.fails(&["--lock-timeout", "1", "upgrade", "head"], 1);
            drop(conn);
            (err, "held by PostgreSQL backend")
        }
        Target::Server(db) => {
            let mut conn = rt
                .block_on(sqlx::MySqlConnection::connect(&db.url))
                .unwrap();
            rt.block_on(
                sqlx::raw_sql("DO GET_LOCK(CONCAT('retort:', DATABASE()), 0)").execute(&mut conn),
            )
            .unwrap();
            let err = p.fails(&["--lock-timeout", "1", "upgrade", "head"], 1);
            drop(conn);
            (err, "held by connection")
        }
    };
    let (err, holder) = expected;
    assert!(
        err.contains("could not take the migration lock") && err.contains("within 1 s"),
        "{err}"
    );
    assert!(err.contains(holder), "{err}");
    if server == Some(Server::Postgres) {
        assert!(err.contains("lock-holder-test"), "{err}");
    }
    assert!(!target.tables(&p).contains(&"la_t".to_string()));
    // Once the holder is gone, the deploy goes through.
    p.ok(&["upgrade", "head"]);
    assert_eq!(target.heads(&p), ["la"]);
}

#[test]
fn lock_timeout_names_the_holder_on_sqlite() {
    lock_timeout(None, false);
}

#[test]
fn lock_timeout_names_the_holder_on_postgres() {
    lock_timeout(Some(Server::Postgres), false);
    lock_timeout(Some(Server::Postgres), true);
}

#[test]
fn lock_timeout_names_the_holder_on_mariadb() {
    lock_timeout(Some(Server::MySql), false);
    lock_timeout(Some(Server::MySql), true);
}

#[test]
fn at_head_says_so_and_below_base_is_an_error() {
    let p = Project::new();
    p.write_component("a.wasm", &wat_guest::revision("ha", &[], "ha_t", ""));
    p.ok(&["upgrade", "head"]);
    let again = p.ok(&["upgrade", "head"]);
    assert!(
        again.contains("nothing to do: the database is at ha"),
        "{again}"
    );
    p.ok(&["downgrade", "base"]);
    let err = p.fails(&["downgrade", "-1"], 1);
    assert!(err.contains("base"), "{err}");
    assert_eq!(p.db().heads(), Vec::<String>::new());
}

fn outside_a_transaction(server: Option<Server>) {
    let (p, target) = Target::new(server);
    // Statements that refuse to run in a transaction block.
    let (statement, indexes) = match server {
        Some(_) => (
            "CREATE INDEX CONCURRENTLY items_id ON items (id)",
            Some("SELECT indexname FROM pg_indexes WHERE tablename = 'items'"),
        ),
        // VACUUM leaves nothing to look at; that it ran at all is the point.
        None => ("VACUUM", None),
    };
    p.write_component(
        "n1.wasm",
        &wat_guest::revision_of(
            "n1",
            &[],
            &[
                "CREATE TABLE items (id INTEGER)",
                "INSERT INTO items (id) VALUES (1)",
            ],
            &["DROP TABLE items"],
            "",
        ),
    );
    // In a transaction, the statement is refused by the database itself.
    p.write_component(
        "n2.wasm",
        &wat_guest::revision_of("n2", &["n1"], &[statement], &[], ""),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("revision n2 failed to upgrade"), "{err}");
    assert_eq!(target.heads(&p), ["n1"]);

    // Declared non-transactional, it runs and is recorded.
    p.write_component(
        "n2.wasm",
        &wat_guest::outside_transaction("n2", &["n1"], &[statement], ""),
    );
    let err = p.fails(&["upgrade", "head", "--transaction", "all"], 1);
    assert!(
        err.contains("revision n2 must run outside a transaction"),
        "{err}"
    );
    p.ok(&["upgrade", "head"]);
    assert_eq!(target.heads(&p), ["n2"]);
    if let Some(indexes) = indexes {
        assert_eq!(target.rows(&p, indexes), ["items_id"]);
    }
    assert_eq!(
        target.rows(
            &p,
            "SELECT revision FROM retort_log WHERE status = 'done' ORDER BY id"
        ),
        ["n1", "n2"]
    );

    // A failure outside a transaction is recorded honestly and blocks the next run.
    p.write_component(
        "n3.wasm",
        &wat_guest::outside_transaction(
            "n3",
            &["n2"],
            &["CREATE TABLE partial (id INTEGER)"],
            wat_guest::TRAP,
        ),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision n3 failed to upgrade; it runs outside a transaction, so what it did before the failure remains"),
        "{err}"
    );
    assert!(target.tables(&p).contains(&"partial".to_string()));
    assert_eq!(target.heads(&p), ["n2"]);
    assert_eq!(
        target.rows(&p, "SELECT status FROM retort_log WHERE revision = 'n3'"),
        ["failed"]
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("could not be rolled back"), "{err}");
    p.ok(&["stamp", "n3"]);
    let again = p.ok(&["upgrade", "head"]);
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn revisions_can_run_outside_a_transaction_on_sqlite() {
    outside_a_transaction(None);
}

#[test]
fn revisions_can_run_outside_a_transaction_on_postgres() {
    outside_a_transaction(Some(Server::Postgres));
}
