//! The `notes` binary migrates its own database at start-up: twice (the second start has
//! nothing to do), and once against a database a newer build took further (refused,
//! untouched).

use std::path::Path;
use std::process::{Command, Output};

fn notes(db: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notes"))
        .arg(db)
        .output()
        .expect("the notes binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Rows of a one-column query, as text.
fn column(db: &Path, sql: &str) -> Vec<String> {
    let url = format!("sqlite:{}", db.display());
    let sql = sql.to_owned();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        })
}

fn execute(db: &Path, sql: &str) {
    let url = format!("sqlite:{}", db.display());
    let sql = sql.to_owned();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
}

#[test]
fn the_binary_carries_its_revisions_and_upgrades_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let first = notes(&db);
    let out = text(&first.stdout);
    assert!(first.status.success(), "{out}{}", text(&first.stderr));
    assert!(out.contains("applied 5e1a0c0f0001 (create notes)"), "{out}");
    assert!(out.contains("applied 5e1a0c0f0002 (add done)"), "{out}");
    assert_eq!(
        column(
            &db,
            "SELECT name FROM pragma_table_info('notes') ORDER BY cid"
        ),
        ["id", "body", "done"]
    );
    assert_eq!(
        column(&db, "SELECT version_num FROM retort_version"),
        ["5e1a0c0f0002"]
    );

    let second = notes(&db);
    let out = text(&second.stdout);
    assert!(second.status.success(), "{out}{}", text(&second.stderr));
    assert!(!out.contains("applied"), "{out}");
    assert!(out.contains("database up to date at 5e1a0c0f0002"), "{out}");
    // One row per revision applied, none for the second start.
    assert_eq!(
        column(&db, "SELECT revision FROM retort_log ORDER BY id"),
        ["5e1a0c0f0001", "5e1a0c0f0002"]
    );
}

#[test]
fn a_database_a_newer_build_took_further_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    assert!(notes(&db).status.success());
    // A newer build applied a revision this binary does not carry.
    execute(&db, "CREATE TABLE tags (id INTEGER PRIMARY KEY)");
    execute(
        &db,
        "UPDATE retort_version SET version_num = '5e1a0c0f0003'",
    );
    let schema_before = column(&db, "SELECT sql FROM sqlite_master ORDER BY name");

    let ahead = notes(&db);
    let err = text(&ahead.stderr);
    assert!(!ahead.status.success(), "{}", text(&ahead.stdout));
    assert!(err.starts_with("notes: cannot start: "), "{err}");
    assert!(
        err.contains("5e1a0c0f0003"),
        "the refusal names the unknown revision: {err}"
    );
    assert_eq!(
        column(&db, "SELECT sql FROM sqlite_master ORDER BY name"),
        schema_before
    );
    assert_eq!(
        column(&db, "SELECT version_num FROM retort_version"),
        ["5e1a0c0f0003"]
    );
}
