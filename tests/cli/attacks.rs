//! The SQL path as an attacker sees it: every attack is a guest component (WAT) run
//! against the real database, online and through `--sql` scripts run by the database's
//! own client; nothing forbidden may happen, and the database must stay as it was.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::offline::{normalize, run_server, run_sqlite, script};
use crate::support::{Project, Server, ServerDb};
use crate::wat_guest::{Call, OnError, calling};

/// Where the database is for one test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Sqlite,
    Postgres,
    MySql,
}

impl Target {
    fn dialect(self) -> &'static str {
        match self {
            Target::Sqlite => "sqlite",
            Target::Postgres => "postgres",
            Target::MySql => "mysql",
        }
    }

    fn server(self) -> Option<Server> {
        match self {
            Target::Sqlite => None,
            Target::Postgres => Some(Server::Postgres),
            Target::MySql => Some(Server::MySql),
        }
    }

    /// A placeholder for the n-th (1-based) parameter.
    fn mark(self, n: usize) -> String {
        match self {
            Target::Postgres => format!("${n}"),
            _ => "?".into(),
        }
    }
}

/// A project on a fresh database of `target`.
fn project(target: Target) -> (Project, Option<ServerDb>) {
    let p = Project::new();
    let db = target.server().map(|s| {
        let db = ServerDb::fresh(s);
        p.use_url(&db.url);
        db
    });
    (p, db)
}

fn tables(p: &Project, db: &Option<ServerDb>) -> Vec<String> {
    match db {
        Some(db) => db.tables(),
        None => p.db().tables(),
    }
}

fn rows(p: &Project, db: &Option<ServerDb>, sql: &str) -> Vec<String> {
    match db {
        Some(db) => db.rows(sql),
        None => p.db().rows(sql),
    }
}

/// A file path no test has used, which an attack would create.
fn marker(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("retort-attack-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// An attack: a statement and the rule that must refuse it.
struct Attack {
    sql: String,
    query: bool,
    rule: &'static str,
    /// A file the attack would create if it ran.
    creates: Option<PathBuf>,
}

fn attack(sql: &str, rule: &'static str) -> Attack {
    Attack {
        sql: sql.to_owned(),
        query: false,
        rule,
        creates: None,
    }
}

/// An attack that would create a file (its path handed to `sql`) if it ran.
fn attack_on_file(name: &str, rule: &'static str, sql: impl Fn(&str) -> String) -> Attack {
    let file = marker(name);
    attack(&sql(&file.display().to_string()), rule).creating(file)
}

impl Attack {
    fn query(mut self) -> Self {
        self.query = true;
        self
    }

    fn creating(mut self, file: PathBuf) -> Self {
        self.creates = Some(file);
        self
    }
}

/// Every attack of the policy tests that a database of `target` could act on.
fn attacks(target: Target) -> Vec<Attack> {
    match target {
        Target::Sqlite => {
            let attached = marker("attached.db");
            let vacuumed = marker("vacuumed.db");
            vec![
                attack(
                    &format!("ATTACH DATABASE '{}' AS x", attached.display()),
                    "attach",
                )
                .creating(attached),
                attack(
                    &format!("VACUUM INTO '{}'", vacuumed.display()),
                    "server-files",
                )
                .creating(vacuumed),
                attack("SELECT load_extension('/tmp/nothing')", "server-files").query(),
                attack("PRAGMA writable_schema = 1", "pragma"),
                attack("UPDATE canary SET v = 'x'; COMMIT", "transaction-control"),
                attack("this is not sql", "unparseable"),
                attack_on_file("shell", "client-command", |f| {
                    format!("SELECT 1;\n.shell touch {}", f)
                }),
                attack_on_file("writefile", "server-files", |f| {
                    format!("SELECT writefile('{}', 'x')", f)
                }),
            ]
        }
        Target::Postgres => {
            let program = marker("program");
            let copied = marker("copied");
            let exported = marker("exported");
            let body = marker("body");
            vec![
                attack("SELECT pg_read_file('/etc/passwd')", "server-files").query(),
                attack(
                    "SELECT U&\"pg\\005fread\\005ffile\"('/etc/passwd')",
                    "server-files",
                )
                .query(),
                attack(
                    "SELECT u&\"lo!005fexport\" UESCAPE '!' (lo_from_bytea(0, 'x'), '/tmp/x')",
                    "server-files",
                ),
                attack(
                    &format!("COPY (SELECT 1) TO PROGRAM 'touch {}'", program.display()),
                    "server-files",
                )
                .creating(program),
                attack(
                    &format!("COPY (SELECT 1) TO '{}'", copied.display()),
                    "server-files",
                )
                .creating(copied),
                attack(
                    &format!(
                        "SELECT lo_export(lo_from_bytea(0, 'x'), '{}')",
                        exported.display()
                    ),
                    "server-files",
                )
                .creating(exported),
                attack(
                    &format!(
                        "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}'''; END $$",
                        body.display()
                    ),
                    "dynamic-sql",
                )
                .creating(body.clone()),
                attack(
                    "CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('/etc/passwd') $$",
                    "server-files",
                ),
                attack(
                    "CREATE FUNCTION rd(text) RETURNS text AS 'pg_read_file' LANGUAGE internal",
                    "function-language",
                ),
                attack(
                    "SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')",
                    "dynamic-sql",
                )
                .query(),
                attack("SELECT set_config('role', 'postgres', false)", "roles").query(),
                attack("SET standard_conforming_strings = off", "sql-mode"),
                attack("ALTER SYSTEM SET work_mem = '1MB'", "alter-system"),
                attack("CREATE ROLE intruder SUPERUSER", "roles"),
                attack("GRANT ALL ON canary TO PUBLIC", "privileges"),
                attack("COMMIT", "transaction-control"),
                attack_on_file("shell", "client-command", |f| {
                    format!("SELECT 1 \\! touch {}\n", f)
                }),
            ]
        }
        Target::MySql => {
            let outfile = marker("outfile");
            let comment = marker("comment");
            vec![
                attack("SELECT LOAD_FILE('/etc/passwd')", "server-files").query(),
                attack(
                    &format!("SELECT 1 INTO OUTFILE '{}'", outfile.display()),
                    "server-files",
                )
                .creating(outfile),
                attack(
                    &format!("SELECT 1 /*!INTO OUTFILE '{}' */", comment.display()),
                    "executable-comment",
                )
                .creating(comment),
                attack(
                    "SELECT 'x' AS a /*!, LOAD_FILE('/etc/passwd') AS b */",
                    "executable-comment",
                )
                .query(),
                attack("SELECT 1 /*M!100000 , 2 */", "executable-comment").query(),
                attack("SET sql_mode = 'NO_BACKSLASH_ESCAPES'", "sql-mode"),
                attack("SET SESSION sql_mode = 'ANSI_QUOTES'", "sql-mode"),
                attack("SET NAMES gbk", "sql-mode"),
                attack("SET GLOBAL general_log = 1", "global-settings"),
                attack(
                    "SET @@global.general_log_file = '/tmp/x'",
                    "global-settings",
                ),
                attack("SET PERSIST max_connections = 1", "global-settings"),
                attack(
                    "PREPARE s FROM 'SELECT LOAD_FILE(''/etc/passwd'')'",
                    "dynamic-sql",
                ),
                attack("CREATE USER intruder", "roles"),
                attack("SET autocommit = 1", "transaction-control"),
                attack("USE mysql", "databases"),
                attack_on_file("system", "client-command", |f| {
                    format!("system touch {}", f)
                }),
                attack_on_file("shell", "client-command", |f| {
                    format!("SELECT 1 \\! touch {}\n", f)
                }),
            ]
        }
    }
}

/// The guest: a canary table, then the attack (trapping when it is refused).
fn attack_revision(target: Target, a: &Attack, on_error: OnError) -> Vec<u8> {
    let insert = format!("INSERT INTO canary (v) VALUES ({})", target.mark(1));
    let call = if a.query {
        Call::Query(&a.sql, &[])
    } else {
        Call::Execute(&a.sql, &[])
    };
    calling(
        "atk1",
        &[],
        &[
            (
                Call::Execute("CREATE TABLE canary (v VARCHAR(200))", &[]),
                OnError::Trap,
            ),
            (call, on_error),
            (Call::Execute(&insert, &["after"]), OnError::Trap),
        ],
    )
}

/// Online: every attack is refused with its rule named, the revision rolls back, and
/// nothing the attack would create exists.
fn attacks_are_refused_online(target: Target) {
    let (mut p, mut db) = project(target);
    for a in attacks(target) {
        if target == Target::MySql {
            // MariaDB records the failed revision, which blocks the next upgrade.
            (p, db) = project(target);
        }
        p.write_component("atk1.wasm", &attack_revision(target, &a, OnError::Trap));
        let err = p.fails(&["upgrade", "head"], 1);
        assert!(
            err.contains("revision atk1 failed to upgrade"),
            "{target:?} {}: {err}",
            a.sql
        );
        assert!(
            err.contains(&format!("refused by rule `{}`", a.rule)),
            "{target:?} {}: {err}",
            a.sql
        );
        let t = tables(&p, &db);
        if target == Target::MySql {
            // MariaDB commits DDL as it runs: the table stays, what followed does not.
            assert_eq!(rows(&p, &db, "SELECT count(*) FROM canary"), ["0"]);
        } else {
            assert!(!t.contains(&"canary".to_string()), "{target:?} {}", a.sql);
        }
        if let Some(file) = &a.creates {
            assert!(!file.exists(), "{target:?} {} created {file:?}", a.sql);
        }
    }
}

#[test]
fn attacks_are_refused_online_on_sqlite() {
    attacks_are_refused_online(Target::Sqlite);
}

#[test]
fn attacks_are_refused_online_on_postgres() {
    attacks_are_refused_online(Target::Postgres);
}

#[test]
fn attacks_are_refused_online_on_mariadb() {
    attacks_are_refused_online(Target::MySql);
}

/// Values that try to leave their literal in a script, in every quoting form.
const PAYLOADS: &[&str] = &[
    "a'; CREATE TABLE injected (i INT); --",
    "a''; CREATE TABLE injected (i INT); --",
    "a\\'; CREATE TABLE injected (i INT); -- ",
    "a\\\\'; CREATE TABLE injected (i INT); #",
    "$$; CREATE TABLE injected (i INT); $$",
    "*/ CREATE TABLE injected (i INT); /*",
    "x\n; CREATE TABLE injected (i INT);\n--",
    "\\'); CREATE TABLE injected (i INT); -- '",
    "é 😀 \t end\\",
];

/// `--sql`: each attack, handled by the guest, is left out of the script; values that
/// try to break out of their literal stay values. The script, run by the database's own
/// client as a superuser, creates nothing the attacks wanted and holds the values exactly.
fn scripts_are_as_safe_as_online(target: Target) {
    let insert = format!("INSERT INTO canary (v) VALUES ({})", target.mark(1));
    let payloads: Vec<[&str; 1]> = PAYLOADS.iter().map(|v| [*v]).collect();
    let quoted = format!(
        "INSERT INTO canary (v) VALUES ('it''s ? -- not a comment'), ({})",
        target.mark(1)
    );
    let guest = |attack: Option<&str>| {
        let mut ups: Vec<(Call, OnError)> = vec![(
            Call::Execute("CREATE TABLE canary (v VARCHAR(200))", &[]),
            OnError::Trap,
        )];
        if let Some(sql) = attack {
            ups.push((Call::Execute(sql, &[]), OnError::Continue));
        }
        for v in &payloads {
            ups.push((Call::Execute(&insert, v), OnError::Trap));
        }
        // The guest's own escaped quote, and a `?` inside its string, stay as written.
        ups.push((Call::Execute(&quoted, &["p"]), OnError::Trap));
        calling("atk1", &[], &ups)
    };
    let render = |component: &[u8]| {
        let p = Project::new();
        p.write_component("atk1.wasm", component);
        normalize(&script(
            &p,
            &["upgrade", "head", "--dialect", target.dialect()],
        ))
    };
    // The script of the same revision without the attack.
    let baseline = render(&guest(None));
    for a in attacks(target).iter().filter(|a| !a.query) {
        let (p, db) = project(target);
        p.write_component("atk1.wasm", &guest(Some(&a.sql)));
        let sql = script(&p, &["upgrade", "head", "--dialect", target.dialect()]);
        assert_eq!(
            normalize(&sql),
            baseline,
            "{target:?}: the refused {} left a trace in the script",
            a.sql
        );
        match &db {
            Some(db) => run_server(db, &sql),
            None => run_sqlite(&p.db_path(), &sql),
        }
        let t = tables(&p, &db);
        assert!(t.contains(&"canary".to_string()), "{target:?}: {t:?}");
        assert!(!t.contains(&"injected".to_string()), "{target:?} {}", a.sql);
        let mut stored = rows(&p, &db, "SELECT v FROM canary");
        stored.sort();
        let mut expected: Vec<String> = PAYLOADS.iter().map(|v| v.to_string()).collect();
        expected.extend(["it's ? -- not a comment".to_owned(), "p".to_owned()]);
        expected.sort();
        assert_eq!(stored, expected, "{target:?}");
        if let Some(file) = &a.creates {
            assert!(!file.exists(), "{target:?} {} created {file:?}", a.sql);
        }
    }
}

#[test]
fn scripts_are_as_safe_as_online_on_sqlite() {
    scripts_are_as_safe_as_online(Target::Sqlite);
}

#[test]
fn scripts_are_as_safe_as_online_on_postgres() {
    scripts_are_as_safe_as_online(Target::Postgres);
}

#[test]
fn scripts_are_as_safe_as_online_on_mariadb() {
    scripts_are_as_safe_as_online(Target::MySql);
}

/// A guest that handles a refusal goes on in the same transaction (PostgreSQL used to
/// abort it: the refusal tried to roll back to a savepoint it never took).
fn a_handled_refusal_leaves_the_transaction_usable(target: Target) {
    let (p, db) = project(target);
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[
                (
                    Call::Execute("GRANT ALL ON t TO PUBLIC", &[]),
                    OnError::Continue,
                ),
                (Call::Execute("COMMIT", &[]), OnError::Continue),
                (
                    Call::Execute("CREATE TABLE after_refusal (id INTEGER)", &[]),
                    OnError::Trap,
                ),
            ],
        ),
    );
    p.ok(&["upgrade", "head"]);
    assert!(tables(&p, &db).contains(&"after_refusal".to_string()));
    assert_eq!(
        rows(&p, &db, "SELECT version_num FROM retort_version"),
        ["atk1"]
    );
}

#[test]
fn a_handled_refusal_leaves_the_transaction_usable_on_postgres() {
    a_handled_refusal_leaves_the_transaction_usable(Target::Postgres);
}

#[test]
fn a_handled_refusal_leaves_the_transaction_usable_on_sqlite_and_mariadb() {
    a_handled_refusal_leaves_the_transaction_usable(Target::Sqlite);
    a_handled_refusal_leaves_the_transaction_usable(Target::MySql);
}

/// PostgreSQL `query` used to re-print the guest's SQL from tokens, undoing its quote
/// escaping: `'…'' || f() || ''…'` became a call of f. A sequence shows whether the
/// function ran.
#[test]
fn a_quoted_string_stays_a_string_in_a_postgres_cursor() {
    let (p, db) = project(Target::Postgres);
    let db = db.unwrap();
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[
                (Call::Execute("CREATE SEQUENCE probe", &[]), OnError::Trap),
                (
                    Call::Query(
                        "SELECT ''' || nextval(''probe'') || ''' AS x, $1 AS y",
                        &["p"],
                    ),
                    OnError::Trap,
                ),
            ],
        ),
    );
    p.ok(&["upgrade", "head"]);
    assert_eq!(db.rows("SELECT is_called::text FROM probe"), ["false"]);
}

/// The wall-clock limit ends a statement that runs too long in the database, and rolls
/// back, within seconds of the limit.
fn database_time_is_bounded(target: Target, statement: &str) {
    let (p, db) = project(target);
    p.append_config("\n[sandbox]\ntimeout-secs = 2\n");
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[
                (
                    Call::Execute("CREATE TABLE canary (v VARCHAR(200))", &[]),
                    OnError::Trap,
                ),
                (Call::Execute(statement, &[]), OnError::Trap),
            ],
        ),
    );
    let started = Instant::now();
    let err = p.fails(&["--lock-timeout", "1", "upgrade", "head"], 1);
    let took = started.elapsed();
    eprintln!("{target:?}: a 2 s limit ended the run after {took:?}");
    assert!(
        err.contains("the wall-clock limit of 2 s per call ran out"),
        "{target:?}: {err}"
    );
    // The statement asks for 30 s (or forever); the statement is cancelled at the
    // limit (measured here: about 2.05 s in all, before the servers' own per-statement
    // cap of 3 s), so the run ends within 2 s of it plus the process's start.
    assert!(took < Duration::from_secs(6), "{target:?} took {took:?}");
    assert!(!tables(&p, &db).contains(&"canary".to_string()) || target == Target::MySql);
    // The next command works as usual.
    let out = p.run(&["current"]);
    assert!(out.status.success(), "{target:?}");
}

#[test]
fn database_time_is_bounded_on_postgres() {
    database_time_is_bounded(Target::Postgres, "SELECT pg_sleep(30)");
}

#[test]
fn database_time_is_bounded_on_mariadb() {
    database_time_is_bounded(Target::MySql, "SELECT SLEEP(30)");
}

#[test]
fn database_time_is_bounded_on_sqlite() {
    database_time_is_bounded(
        Target::Sqlite,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    );
}

/// A killed Retort leaves no statement running and no lock held on MariaDB beyond the
/// session's statement limit (the call limit, at least the lock timeout, plus a second).
#[test]
fn a_killed_retort_leaves_nothing_running_on_mariadb() {
    let (p, db) = project(Target::MySql);
    let db = db.unwrap();
    p.append_config("\n[sandbox]\ntimeout-secs = 3\n");
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[(Call::Execute("SELECT SLEEP(600)", &[]), OnError::Trap)],
        ),
    );
    let mut child = p
        .cmd(&["--lock-timeout", "1", "upgrade", "head"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let sleeping = format!(
        "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = '{name}' AND INFO LIKE 'SELECT SLEEP%'"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.rows(&sleeping) != ["1"] {
        assert!(Instant::now() < deadline, "the guest's statement never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let started = Instant::now();
    let free = format!("SELECT IS_FREE_LOCK('retort:{name}')");
    while db.rows(&sleeping) != ["0"] || db.rows(&free) != ["1"] {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a statement or the lock outlived the killed retort"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The role is the boundary: Retort names a role's dangerous privileges, refuses them on
/// request, and migrates quietly as a role with only the README's grants.
#[test]
fn least_privilege_is_checked_on_postgres() {
    let (p, db) = project(Target::Postgres);
    let db = db.unwrap();
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[(
                Call::Execute("CREATE TABLE made (id INTEGER)", &[]),
                OnError::Trap,
            )],
        ),
    );
    p.append_config("\n[policy]\nrequire-least-privilege = true\n");
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("SUPERUSER"), "{err}");
    assert!(db.tables().is_empty(), "{:?}", db.tables());
    // The README's migration role.
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let role = format!("{name}_migrator");
    db.exec(&format!("DROP ROLE IF EXISTS {role}"));
    db.exec(&format!("CREATE ROLE {role} LOGIN"));
    db.exec(&format!(
        "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {name} TO {role}"
    ));
    db.exec(&format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"));
    let as_role = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let out = p.run(&["--url", &as_role, "upgrade", "head"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(db.tables().contains(&"made".to_string()));
    // As a superuser without the setting: a warning, and the run goes on.
    let p2 = Project::new();
    p2.use_url(&ServerDb::fresh(Server::Postgres).url);
    p2.write_component(
        "atk1.wasm",
        &std::fs::read(p.components().join("atk1.wasm")).unwrap(),
    );
    let warned = p2.ok(&["upgrade", "head"]);
    assert!(
        warned.contains("warning: the database role holds SUPERUSER"),
        "{warned}"
    );
}

#[test]
fn least_privilege_is_checked_on_mariadb() {
    let (p, db) = project(Target::MySql);
    let db = db.unwrap();
    p.write_component(
        "atk1.wasm",
        &calling(
            "atk1",
            &[],
            &[(
                Call::Execute("CREATE TABLE made (id INTEGER)", &[]),
                OnError::Trap,
            )],
        ),
    );
    let warned = p.ok(&["upgrade", "head", "--dry-run"]);
    assert!(
        !warned.contains("warning"),
        "a dry run connects but runs nothing: {warned}"
    );
    p.append_config("\n[policy]\nrequire-least-privilege = true\n");
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(err.contains("FILE ON *.*"), "{err}");
    assert!(err.contains("GRANT OPTION ON *.*"), "{err}");
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("{name}_m");
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    db.exec(&format!("CREATE USER '{user}'@'%'"));
    db.exec(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, \
         CREATE TEMPORARY TABLES, LOCK TABLES, CREATE VIEW, SHOW VIEW, TRIGGER ON `{name}`.* TO '{user}'@'%'"
    ));
    let as_user = db.url.replacen("root@", &format!("{user}@"), 1);
    let out = p.run(&["--url", &as_user, "upgrade", "head"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(db.tables().contains(&"made".to_string()));
}

/// Secrets in database URLs never reach the output, whatever shape the URL has.
#[test]
fn passwords_in_urls_are_never_printed() {
    let p = Project::new();
    for (url, code) in [
        ("postgres://u@127.0.0.1:9/db?password=SECRET1", 1),
        ("postgres://u:ab/SECRET2@127.0.0.1/db", 1),
        ("postgres://u:SECRET3@127.0.0.1:9/db", 1),
        ("mysql://u:SECRET4@127.0.0.1:9/db", 1),
        ("oracle:user/SECRET5@host", 2),
        ("oracle://user:SECRET6@host/db", 2),
        ("", 2),
    ] {
        let out = p.run(&["--url", url, "current"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {stderr}");
        assert!(!stderr.contains("SECRET"), "{url}: {stderr}");
        assert!(!stderr.is_empty());
    }
}

/// `pack` refuses what would forge `history` lines or read as a flag.
#[test]
fn pack_refuses_line_breaks_and_flag_like_ids() {
    let p = Project::new();
    let component = p.path().join("plain.wasm");
    std::fs::write(
        &component,
        crate::wat_guest::calls(&[(Call::Execute("SELECT 1", &[]), OnError::Trap)]),
    )
    .unwrap();
    let c = component.to_str().unwrap();
    let out_path = p.components().join("x.wasm");
    let o = out_path.to_str().unwrap();
    let err = p.fails(
        &[
            "pack",
            c,
            "-o",
            o,
            "--rev-id",
            "abc1",
            "-m",
            "fine\n  forged line",
        ],
        1,
    );
    assert!(err.contains("line break"), "{err}");
    let err = p.fails(&["pack", c, "-o", o, "--rev-id=--help", "-m", "x"], 1);
    assert!(err.contains("not starting with '-'"), "{err}");
    assert!(!out_path.exists());
}

/// A trap says what ran out on its first line; the wasm backtrace only with -v.
#[test]
fn traps_are_one_line_unless_verbose() {
    let p = Project::new();
    p.append_config("\n[sandbox]\nfuel = 20000000\n");
    p.write_component(
        "a.wasm",
        &crate::wat_guest::revision("spin1", &[], "t", crate::wat_guest::LOOP_FOREVER),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    let first = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        first.contains("revision spin1") && first.contains("the fuel limit of 20000000"),
        "{err}"
    );
    assert!(!err.contains("wasm function"), "{err}");
    let verbose = p.fails(&["upgrade", "head", "-v"], 1);
    assert!(verbose.contains("wasm function"), "{verbose}");
}

/// Strings built from every quoting form of the three dialects: quotes, backslashes,
/// dollar quotes, comments, placeholders, NUL, line breaks, unicode, and long runs.
fn hard_strings() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just("'".to_owned()),
        Just("''".to_owned()),
        Just("\\".to_owned()),
        Just("\\'".to_owned()),
        Just("\\\\".to_owned()),
        Just("$$".to_owned()),
        Just("$t$".to_owned()),
        Just("--".to_owned()),
        Just("/*".to_owned()),
        Just("*/".to_owned()),
        Just("/*!".to_owned()),
        Just("#".to_owned()),
        Just(";".to_owned()),
        Just("\"".to_owned()),
        Just("`".to_owned()),
        Just("?".to_owned()),
        Just("$1".to_owned()),
        Just("\0".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\t".to_owned()),
        Just("é".to_owned()),
        Just("😀".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("%_".to_owned()),
        Just("U&".to_owned()),
        Just("E'".to_owned()),
        "[a-z ]{0,6}",
        "\\PC{0,4}",
        Just("x".repeat(5000)),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// Point 1 of the contract: for arbitrary strings, the literal Retort writes, read back
/// by the real database (`SELECT <literal>`), is the string. PostgreSQL text cannot hold
/// NUL: there the literal must be refused, never mangled.
fn literals_read_back_exactly(target: Target) {
    use proptest::test_runner::{Config, TestRunner};
    let dialect = match target {
        Target::Sqlite => retort::dialect::Dialect::Sqlite,
        Target::Postgres => retort::dialect::Dialect::Postgres,
        Target::MySql => retort::dialect::Dialect::Mysql,
    };
    let (p, db) = project(target);
    if db.is_none() {
        p.db_exec("CREATE TABLE unused (x INTEGER)");
    }
    // Bounded for the suite; the fuzz targets run longer (README, Development).
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(hard_strings(), 1..8);
    runner
        .run(&strategy, |batch| {
            let mut literals = Vec::new();
            let mut expected = Vec::new();
            for s in &batch {
                let value = retort::wit::Value::Text(s.clone());
                match dialect.literal(&value) {
                    Ok(l) => {
                        literals.push(format!("({l}) AS c{}", literals.len()));
                        expected.push(s.clone());
                    }
                    Err(_) if target == Target::Postgres && s.contains('\0') => {}
                    Err(e) => panic!("{target:?}: no literal for {s:?}: {e}"),
                }
            }
            if literals.is_empty() {
                return Ok(());
            }
            let sql = format!("SELECT {}", literals.join(", "));
            let got = match &db {
                Some(db) => db.row_texts(&sql),
                None => p.db().row_texts(&sql),
            };
            proptest::prop_assert_eq!(&got, &expected, "{:?}: {}", target, sql);
            Ok(())
        })
        .unwrap();
}

#[test]
fn literals_read_back_exactly_on_sqlite() {
    literals_read_back_exactly(Target::Sqlite);
}

#[test]
fn literals_read_back_exactly_on_postgres() {
    literals_read_back_exactly(Target::Postgres);
}

#[test]
fn literals_read_back_exactly_on_mariadb() {
    literals_read_back_exactly(Target::MySql);
}
