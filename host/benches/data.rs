//! A data migration of 1,000,000 rows (issue 16, point 7): a Rust guest reads every row
//! of `items` through a cursor, computes a slug in the guest and writes the slugs back
//! one statement per 1,000 rows (host/benches/data-guests/d1_slugs.rs), side by side with
//! the one SQL `UPDATE` that does the same (`sqlite3` / `psql`), on SQLite and on
//! PostgreSQL, interleaved, best of the rounds. Writes target/bench/data.md
//! (scripts/bench.sh puts it into BENCHMARKS.md).
//!
//! `RETORT_BENCH_ROWS` sets the rows (default 1,000,000); PostgreSQL is measured when
//! `RETORT_TEST_POSTGRES_URL` names a server (scripts/bench.sh starts a private one).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const SLUG: &str = "lower(replace(name, ' ', '-'))";

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("cannot run");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("cannot run");
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn main() {
    let rows: u64 = std::env::var("RETORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let workspace = common::workspace();
    let retort = common::retort();
    let work = workspace.join("target/bench/data");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let project = work.join("retort.toml");
    let write_config = |url: &str| {
        std::fs::write(
            &project,
            format!(
                "[database]\nurl = {url:?}\n[migrations]\nsources = {:?}\ncomponents = \"components\"\n[build]\nguest-sdk = {{ path = {:?} }}\ndir = \"build\"\n[sandbox]\ncache-dir = \"cache\"\nfuel = 1000000000000\n",
                workspace.join("host/benches/data-guests").display().to_string(),
                workspace.join("guest-sdk").display().to_string(),
            ),
        )
        .unwrap();
    };
    write_config("sqlite:items.db");
    run(Command::new(&retort).arg("-c").arg(&project).arg("build"));
    let retort_upgrade = || {
        let mut c = Command::new(&retort);
        c.arg("-c").arg(&project).args(["upgrade", "head"]);
        c
    };

    let mut table = Vec::new();

    // SQLite: a template database copied before every run.
    let template = work.join("template.db");
    let db = work.join("items.db");
    let fill = format!(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, slug TEXT);\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})\
         INSERT INTO items SELECT i, 'Item Number ' || i, NULL FROM n;"
    );
    run(Command::new("sqlite3").arg(&template).arg(&fill));
    let check = format!("SELECT count(*) FROM items WHERE slug = {SLUG}");
    // One untimed run fills the compile cache: this measures the data path.
    std::fs::copy(&template, &db).unwrap();
    run(&mut retort_upgrade());
    let (mut sql, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        std::fs::copy(&template, &db).unwrap();
        sql.push(run(Command::new("sqlite3")
            .arg(&db)
            .arg(format!("UPDATE items SET slug = {SLUG}"))));
        std::fs::copy(&template, &db).unwrap();
        ours.push(run(&mut retort_upgrade()));
        let done = output(Command::new("sqlite3").arg(&db).arg(&check));
        assert_eq!(done, rows.to_string(), "the guest slugged every row");
    }
    table.push(row("SQLite", &sql, &ours));

    // PostgreSQL, when a server is given: the table made again before every run.
    if let Ok(url) = std::env::var("RETORT_TEST_POSTGRES_URL") {
        write_config(&url);
        let psql = |sql: &str| {
            let mut c = Command::new("psql");
            c.arg(&url)
                .args(["-q", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
            c
        };
        let reset = format!(
            "DROP TABLE IF EXISTS items, retort_version, retort_log;\
             CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, slug TEXT);\
             INSERT INTO items SELECT i, 'Item Number ' || i, NULL FROM generate_series(1, {rows}) i;"
        );
        let reset = || {
            run(&mut psql(&reset));
            // Outside the reset's transaction: VACUUM cannot run in one.
            run(&mut psql("VACUUM ANALYZE items"));
        };
        let (mut sql, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            reset();
            sql.push(run(&mut psql(&format!("UPDATE items SET slug = {SLUG}"))));
            reset();
            ours.push(run(&mut retort_upgrade()));
            assert_eq!(output(&mut psql(&check)), rows.to_string());
        }
        run(&mut psql(
            "DROP TABLE IF EXISTS items, retort_version, retort_log",
        ));
        table.push(row("PostgreSQL 15", &sql, &ours));
    }

    let report = format!(
        "## A data migration of {rows} rows\n\n\
         Made by `cargo bench -p retort --bench data` (scripts/bench.sh), best of {ROUNDS}\n\
         interleaved rounds, 2 cores, the database on disk. A Rust guest\n\
         (host/benches/data-guests/d1_slugs.rs) reads every row of `items(id, name, slug)`\n\
         through a cursor, computes `slug` in the guest and writes it back one statement per\n\
         1,000 rows (`WITH batch(id, slug) AS (VALUES ...) UPDATE items ... FROM batch`); the\n\
         reference is one `UPDATE items SET slug = {SLUG}` in `sqlite3` / `psql`.\n\
         Whole processes; the guest's component compiled beforehand (cache warm).\n\n\
         | database | one SQL UPDATE | Retort guest | ratio |\n|---|---|---|---|\n{}\n",
        table.join("\n")
    );
    println!("{report}");
    std::fs::write(workspace.join("target/bench/data.md"), report).unwrap();
}

fn row(database: &str, sql: &[Duration], ours: &[Duration]) -> String {
    let best = |d: &[Duration]| d.iter().min().unwrap().as_secs_f64();
    format!(
        "| {database} | {:.2} s | {:.2} s | {:.1}× |",
        best(sql),
        best(ours),
        best(ours) / best(sql)
    )
}
