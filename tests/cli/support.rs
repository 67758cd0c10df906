//! Helpers: the `retort` binary, guests built once, projects in temp dirs, and reading
//! the database back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `retort` with an environment that names no database.
pub fn retort() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_retort"));
    for var in ["RETORT_DATABASE_URL", "DATABASE_URL", "RETORT_CONFIG"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Builds a retort project (sources to components) once per test run; `project` gives
/// its config file and components folder (and may write the config).
fn build_once(
    cell: &'static OnceLock<PathBuf>,
    project: impl FnOnce() -> (PathBuf, PathBuf),
) -> &'static Path {
    // Builds share one cargo target dir; run them one at a time.
    static BUILD: Mutex<()> = Mutex::new(());
    cell.get_or_init(|| {
        let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let (config, components) = project();
        let out = retort()
            .arg("-c")
            .arg(&config)
            .arg("build")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "retort build -c {} failed:\n{}",
            config.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        components
    })
}

/// The blog example's components, built from examples/blog into target/.
pub fn blog_components() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, || {
        guest_project(
            "blog",
            &workspace().join("examples/blog/migrations/versions"),
        )
    })
}

/// A project directory under target/test-guests that builds the revision sources in
/// `sources` (Rust ones with the workspace's guest SDK).
fn guest_project(name: &str, sources: &Path) -> (PathBuf, PathBuf) {
    let dir = workspace().join("target/test-guests").join(name);
    let config = dir.join("retort.toml");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[migrations]\nsources = {:?}\ncomponents = \"components\"\n\n[build]\nguest-sdk = {{ path = {:?} }}\ndir = \"build\"\ntarget-dir = \"../target\"\n",
        sources.display().to_string(),
        workspace().join("guest-sdk").display().to_string(),
    );
    // Unchanged files keep their times (cargo and retort build look at them).
    if std::fs::read_to_string(&config).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&config, text).unwrap();
    }
    (config, dir.join("components"))
}

/// examples/branched's components (two labelled branches, a dependency, a merge).
pub fn branched_components() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, || {
        guest_project(
            "branched",
            &workspace().join("examples/branched/migrations/versions"),
        )
    })
}

/// examples/polyglot's components (Rust, Python, C and JavaScript revisions).
pub fn polyglot_components() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, || {
        guest_project(
            "polyglot",
            &workspace().join("examples/polyglot/migrations/versions"),
        )
    })
}

/// The same history written in Rust only (examples/polyglot/rust-equivalent).
pub fn polyglot_rust_components() -> &'static Path {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    build_once(&CELL, || {
        guest_project(
            "polyglot-rust",
            &workspace().join("examples/polyglot/rust-equivalent/versions"),
        )
    })
}

/// Revisions in other languages for the tests (tests/fixtures/languages).
pub fn language_fixture(name: &str) -> PathBuf {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    let dir = build_once(&CELL, || {
        guest_project("languages", &workspace().join("tests/fixtures/languages"))
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no language fixture {name}");
    path
}

/// One cache of compiled components for all tests that run the large (Python,
/// JavaScript) components: entries are keyed by digest and engine, so sharing is safe.
pub fn shared_cache_config() -> String {
    format!(
        "\n[sandbox]\ncache-dir = {:?}\n",
        workspace()
            .join("target/test-guests/cache")
            .display()
            .to_string()
    )
}

/// The test fixtures' components (tests/fixtures), built into target/.
pub fn fixture(name: &str) -> PathBuf {
    static CELL: OnceLock<PathBuf> = OnceLock::new();
    let dir = build_once(&CELL, || {
        (
            workspace().join("tests/fixtures/retort.toml"),
            workspace().join("target/test-guests/fixtures/components"),
        )
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no fixture {name}");
    path
}

/// A loopback TCP listener a guest is told about and must never reach.
pub struct Bait(std::net::TcpListener);

impl Bait {
    pub fn new() -> Bait {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Bait(listener)
    }

    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// Fails if anything connected.
    pub fn assert_untouched(&self) {
        assert_eq!(
            self.0.accept().unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "the guest reached the listener"
        );
    }
}

/// A project in a temp dir: a config, a components folder, an SQLite database.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("components")).unwrap();
        std::fs::write(
            dir.path().join("retort.toml"),
            "[database]\nurl = \"sqlite:app.db\"\n\n[migrations]\nsources = \"versions\"\ncomponents = \"components\"\n",
        )
        .unwrap();
        Project { dir }
    }

    /// A project holding every component of `dir`.
    pub fn with_components(dir: &Path) -> Project {
        let p = Project::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wasm") {
                p.add(&path);
            }
        }
        p
    }

    /// Appends TOML to the project's retort.toml.
    pub fn append_config(&self, toml: &str) {
        let path = self.path().join("retort.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(toml);
        std::fs::write(path, text).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn components(&self) -> PathBuf {
        self.path().join("components")
    }

    pub fn add(&self, component: &Path) {
        std::fs::copy(
            component,
            self.components().join(component.file_name().unwrap()),
        )
        .unwrap();
    }

    pub fn write_component(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.components().join(name), bytes).unwrap();
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join("app.db")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = retort();
        cmd.arg("-c")
            .arg(self.path().join("retort.toml"))
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; returns stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "retort {args:?} failed:\n{stderr}");
        stderr
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "retort {args:?}:\n{stderr}");
        stderr
    }

    /// Runs with `--format json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "retort {all:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Changes the database behind retort's back (to simulate damage).
    pub fn db_exec(&self, sql: &str) {
        let path = self.db_path();
        let sql = sql.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        });
    }

    pub fn db(&self) -> Db {
        Db(self.db_path())
    }
}

/// Rows as strings ("NULL" for null), columns joined by '|'.
fn joined(rows: Vec<Vec<Option<String>>>) -> Vec<String> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The first row's columns ("NULL" for null).
fn first_row(rows: Vec<Vec<Option<String>>>) -> Vec<String> {
    rows.into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "NULL".into()))
        .collect()
}

/// Reads an SQLite database back, independently of retort.
pub struct Db(PathBuf);

impl Db {
    pub fn at(path: PathBuf) -> Db {
        Db(path)
    }

    /// Runs statements that write (a change made by hand), creating the file if needed.
    pub fn exec(&self, sql: &str) {
        let path = self.0.clone();
        let sql = sql.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        })
    }

    fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let path = self.0.clone();
        let sql = sql.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true)
                .connect()
                .await
                .unwrap();
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            let raw = r.try_get_raw(i).unwrap();
                            if sqlx::ValueRef::is_null(&raw) {
                                None
                            } else {
                                Some(
                                    r.try_get_unchecked::<String, _>(i)
                                        .or_else(|_| {
                                            r.try_get_unchecked::<i64, _>(i).map(|v| v.to_string())
                                        })
                                        .unwrap(),
                                )
                            }
                        })
                        .collect()
                })
                .collect()
        })
    }

    /// Rows as strings ("NULL" for null), one string per row, columns joined by '|'.
    pub fn rows(&self, sql: &str) -> Vec<String> {
        joined(self.query(sql))
    }

    /// The columns of the first row, as text, exactly.
    pub fn row_texts(&self, sql: &str) -> Vec<String> {
        first_row(self.query(sql))
    }

    /// User tables, sorted (SQLite's own and retort's ledger included).
    pub fn tables(&self) -> Vec<String> {
        self.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    }

    /// A table's columns as `name type notnull default`.
    pub fn columns(&self, table: &str) -> Vec<String> {
        self.rows(&format!(
            "SELECT name || ' ' || type || CASE WHEN \"notnull\" THEN ' NOT NULL' ELSE '' END || \
             COALESCE(' DEFAULT ' || dflt_value, '') FROM pragma_table_info('{table}') ORDER BY cid"
        ))
    }

    pub fn indexes(&self, table: &str) -> Vec<String> {
        self.rows(&format!(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}' AND sql IS NOT NULL ORDER BY name"
        ))
    }

    /// The ledger's heads; none when the ledger was never created (or rolled back).
    pub fn heads(&self) -> Vec<String> {
        if !self.tables().contains(&"retort_version".to_string()) {
            return Vec::new();
        }
        self.rows("SELECT version_num FROM retort_version ORDER BY version_num")
    }
}

/// A database server of the full suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MySql,
}

impl Server {
    fn env(self) -> &'static str {
        match self {
            Server::Postgres => "RETORT_TEST_POSTGRES_URL",
            Server::MySql => "RETORT_TEST_MYSQL_URL",
        }
    }
}

/// A fresh database on a real server, so that tests run in parallel. The server comes
/// from `RETORT_TEST_POSTGRES_URL` / `RETORT_TEST_MYSQL_URL` (scripts/test.sh starts
/// private ones); without it the test fails: the full suite never skips a server.
pub struct ServerDb {
    pub server: Server,
    pub url: String,
}

impl ServerDb {
    pub fn fresh(server: Server) -> ServerDb {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = std::env::var(server.env()).unwrap_or_else(|_| {
            panic!(
                "{} is not set: run the suite with scripts/test.sh, which starts PostgreSQL and MariaDB",
                server.env()
            )
        });
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("retort_t{}_{n}", std::process::id());
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_owned();
        let db = ServerDb {
            server,
            url: admin.clone(),
        };
        db.exec(&format!("DROP DATABASE IF EXISTS {name}"));
        db.exec(&match server {
            Server::Postgres => {
                format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")
            }
            Server::MySql => {
                format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            }
        });
        ServerDb {
            server,
            url: format!("{base}/{name}"),
        }
    }

    /// Runs statements (no results).
    pub fn exec(&self, sql: &str) {
        let _ = self.query(sql);
    }

    /// Rows as strings ("NULL" for null), one string per row, columns joined by '|'.
    pub fn rows(&self, sql: &str) -> Vec<String> {
        joined(self.query(sql))
    }

    /// The columns of the first row, as text, exactly.
    pub fn row_texts(&self, sql: &str) -> Vec<String> {
        first_row(self.query(sql))
    }

    fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sql = sql.to_owned();
        rt.block_on(async {
            match self.server {
                Server::Postgres => {
                    let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    rows.iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|i| {
                                    let raw = r.try_get_raw(i).unwrap();
                                    (!sqlx::ValueRef::is_null(&raw))
                                        .then(|| raw.as_str().unwrap().to_owned())
                                })
                                .collect()
                        })
                        .collect()
                }
                Server::MySql => {
                    let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    rows.iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|i| r.try_get_unchecked::<Option<String>, _>(i).unwrap())
                                .collect()
                        })
                        .collect()
                }
            }
        })
    }

    /// Tables of the database, sorted.
    pub fn tables(&self) -> Vec<String> {
        self.rows(match self.server {
            Server::Postgres => "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            Server::MySql => "SELECT table_name FROM information_schema.tables WHERE table_schema = database() ORDER BY 1",
        })
    }

    /// A table's columns as `name type nullable`, in order.
    pub fn columns(&self, table: &str) -> Vec<String> {
        self.rows(&match self.server {
            Server::Postgres => format!(
                "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position"
            ),
            Server::MySql => format!(
                "SELECT CONCAT(column_name, ' ', data_type, ' ', is_nullable) FROM information_schema.columns \
                 WHERE table_schema = database() AND table_name = '{table}' ORDER BY ordinal_position"
            ),
        })
    }

    /// The ledger's heads; none when the ledger was never created (or rolled back).
    pub fn heads(&self) -> Vec<String> {
        if !self.tables().contains(&"retort_version".to_string()) {
            return Vec::new();
        }
        self.rows("SELECT version_num FROM retort_version ORDER BY version_num")
    }
}

impl Project {
    /// The same project pointed at another database URL.
    pub fn use_url(&self, url: &str) {
        let path = self.path().join("retort.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("url = \"sqlite:app.db\"", &format!("url = {url:?}"));
        std::fs::write(path, text).unwrap();
    }
}
