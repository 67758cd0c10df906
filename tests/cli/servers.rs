//! The same revisions on real PostgreSQL and MariaDB servers.

use crate::support::{Project, Server, ServerDb, blog_components, fixture};
use crate::wat_guest;

fn blog_on(server: Server) {
    let db = ServerDb::fresh(server);
    let p = Project::with_components(blog_components());
    p.use_url(&db.url);
    p.ok(&["upgrade", "2a1b2e34976d"]);
    assert_eq!(
        db.rows("SELECT email, first_name, coalesce(last_name, '-'), role, status FROM users ORDER BY id"),
        [
            "ada@example.com|Ada|Lovelace|member|active",
            "grace@example.com|Grace|Brewster Hopper|member|active",
            "alan@example.com|Alan|Turing|member|active",
            "edsger@example.org|Edsger|-|member|active",
        ]
    );
    p.ok(&["upgrade", "head"]);
    assert_eq!(db.heads(), ["8187be35ba4a"]);
    let (varchar, timestamp, boolean, integer) = match server {
        Server::Postgres => (
            "character varying",
            "timestamp without time zone",
            "boolean",
            "integer",
        ),
        Server::MySql => ("varchar", "datetime", "tinyint", "int"),
    };
    assert_eq!(
        db.columns("users"),
        [
            format!("id {integer} NO"),
            format!("email {varchar} NO"),
            format!("created_at {timestamp} YES"),
            format!("phone {varchar} YES"),
            format!("status {varchar} NO"),
            format!("role {varchar} NO"),
            format!("first_name {varchar} YES"),
            format!("last_name {varchar} YES"),
            format!("is_verified {boolean} NO"),
        ]
    );
    let phone = match server {
        Server::Postgres => {
            "SELECT character_maximum_length::text FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'"
        }
        Server::MySql => {
            "SELECT character_maximum_length FROM information_schema.columns WHERE table_schema = database() AND table_name = 'users' AND column_name = 'phone'"
        }
    };
    assert_eq!(db.rows(phone), ["30"]);
    assert_eq!(
        db.rows("SELECT slug FROM posts ORDER BY id"),
        [
            "notes-on-the-analytical-engine",
            "hello-world",
            "cobol-the-compiler",
            "on-computable-numbers"
        ]
    );
    // The named foreign key exists, with its action.
    let fk = match server {
        Server::Postgres => {
            "SELECT delete_rule::text FROM information_schema.referential_constraints WHERE constraint_name = 'fk_posts_category_id'"
        }
        Server::MySql => {
            "SELECT delete_rule FROM information_schema.referential_constraints WHERE constraint_schema = database() AND constraint_name = 'fk_posts_category_id'"
        }
    };
    assert_eq!(db.rows(fk), ["SET NULL"]);
    // Defaults apply to new rows.
    db.exec("INSERT INTO users (email, role) VALUES ('new@example.com', 'member')");
    assert_eq!(
        db.rows("SELECT status, CASE WHEN is_verified THEN 'yes' ELSE 'no' END FROM users WHERE email = 'new@example.com'"),
        ["active|no"]
    );

    p.ok(&["downgrade", "42a8112dd419"]);
    assert_eq!(
        db.rows("SELECT full_name FROM users ORDER BY id"),
        [
            "Ada Lovelace",
            "Grace Brewster Hopper",
            "Alan Turing",
            "Edsger",
            ""
        ]
    );
    p.ok(&["downgrade", "base"]);
    assert_eq!(db.tables(), ["retort_log", "retort_version"]);
    assert_eq!(db.rows("SELECT count(*) FROM retort_log"), ["26"]);
}

#[test]
fn blog_on_postgres() {
    blog_on(Server::Postgres);
}

#[test]
fn blog_on_mariadb() {
    blog_on(Server::MySql);
}

fn cursors_and_values_on(server: Server) {
    let db = ServerDb::fresh(server);
    let p = Project::new();
    p.use_url(&db.url);
    p.add(&fixture("rows"));
    let out = p.ok(&["upgrade", "head"]);
    assert!(out.contains("read 2500 rows, score sum 781562.5"), "{out}");
    assert_eq!(
        db.rows("SELECT count(*), sum(doubled) FROM items"),
        ["2500|6252500"]
    );
    p.ok(&["downgrade", "base"]);
    assert_eq!(db.tables(), ["retort_log", "retort_version"]);
}

#[test]
fn cursors_and_values_on_postgres() {
    cursors_and_values_on(Server::Postgres);
}

#[test]
fn cursors_and_values_on_mariadb() {
    cursors_and_values_on(Server::MySql);
}

#[test]
fn postgres_rolls_a_failed_revision_back_whole() {
    let db = ServerDb::fresh(Server::Postgres);
    let p = Project::new();
    p.use_url(&db.url);
    p.write_component("a.wasm", &wat_guest::revision("w1", &[], "kept", ""));
    p.write_component(
        "b.wasm",
        &wat_guest::revision("w2", &["w1"], "lost", wat_guest::TRAP),
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision w2 failed to upgrade and was rolled back"),
        "{err}"
    );
    assert_eq!(db.heads(), ["w1"]);
    assert_eq!(db.tables(), ["kept", "retort_log", "retort_version"]);
}

#[test]
fn mariadb_records_a_failed_revision_and_waits_for_a_stamp() {
    let db = ServerDb::fresh(Server::MySql);
    let p = Project::new();
    p.use_url(&db.url);
    p.write_component("a.wasm", &wat_guest::revision("w1", &[], "kept", ""));
    p.write_component(
        "b.wasm",
        &wat_guest::revision("w2", &["w1"], "half", wat_guest::TRAP),
    );
    p.write_component("c.wasm", &wat_guest::revision("w3", &["w2"], "later", ""));
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision w2 failed to upgrade; MariaDB/MySQL commit DDL"),
        "{err}"
    );
    assert!(
        err.contains("last op that ran: execute \"CREATE TABLE half (id INTEGER)\""),
        "{err}"
    );
    // The DDL before the failure was committed by MariaDB: the ledger says so.
    assert!(db.tables().contains(&"half".to_string()));
    assert_eq!(db.heads(), ["w1"]);
    assert_eq!(
        db.rows("SELECT revision, direction, status FROM retort_log ORDER BY id"),
        ["w1|up|done", "w2|up|failed"]
    );
    let current = p.ok(&["current"]);
    assert!(
        current.contains("FAILED: revision w2 failed to upgrade"),
        "{current}"
    );
    let err = p.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision w2 failed to upgrade earlier"),
        "{err}"
    );
    assert!(err.contains("retort stamp"), "{err}");
    // The user finishes w2 by hand and records it; upgrade goes on from there.
    p.ok(&["stamp", "w2"]);
    p.ok(&["upgrade", "head"]);
    assert_eq!(db.heads(), ["w3"]);
    assert!(db.tables().contains(&"later".to_string()));
}

#[test]
fn connection_errors_are_one_clear_line_without_the_password() {
    let p = Project::with_components(blog_components());
    let cases = [
        (
            "mysql://root:s3cret-pw@127.0.0.1:1/x",
            "connection refused by 127.0.0.1:1",
        ),
        (
            "postgres://postgres:s3cret-pw@127.0.0.1:1/x",
            "connection refused by 127.0.0.1:1",
        ),
    ];
    for (url, expected) in cases {
        let err = p.fails(&["--url", url, "current"], 1);
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("s3cret-pw"), "{err}");
        assert!(err.contains(":***@"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // A wrong password (MariaDB's root has none) and an unknown database.
    let my =
        std::env::var("RETORT_TEST_MYSQL_URL").expect("RETORT_TEST_MYSQL_URL: run scripts/test.sh");
    let wrong = my.replacen("root@", "root:s3cret-pw@", 1);
    let err = p.fails(&["--url", &wrong, "current"], 1);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let pg = std::env::var("RETORT_TEST_POSTGRES_URL")
        .expect("RETORT_TEST_POSTGRES_URL: run scripts/test.sh");
    let unknown = format!("{}/no_such_db_here", pg.rsplit_once('/').unwrap().0);
    let err = p.fails(&["--url", &unknown, "current"], 1);
    assert!(err.contains("no such database"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// Runs the op catalogue fixture on one database and checks what it left.
fn catalogue_on(
    p: &Project,
    tables: impl Fn() -> Vec<String>,
    columns: impl Fn(&str) -> Vec<String>,
) {
    p.add(&fixture("catalogue"));
    p.ok(&["upgrade", "head"]);
    let t = tables();
    for table in ["kinds_renamed", "other", "parent"] {
        assert!(t.contains(&table.to_string()), "{table} missing from {t:?}");
    }
    assert!(!t.contains(&"kinds".to_string()), "{t:?}");
    let names: Vec<String> = columns("kinds_renamed")
        .into_iter()
        .map(|c| c.split(' ').next().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"label".to_string()) && !names.contains(&"varchar_col".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"extra".to_string()), "{names:?}");
    p.ok(&["downgrade", "base"]);
    let t = tables();
    assert!(
        t.iter()
            .all(|t| t.starts_with("retort_") || t == "sqlite_sequence"),
        "{t:?}"
    );
}

#[test]
fn op_catalogue_on_sqlite() {
    let p = Project::new();
    // sqlparser cannot read SQLite's CREATE TRIGGER: this project opts out of refusing
    // unparseable SQL, as the policy allows.
    p.append_config("\n[policy]\nallow-unparseable = true\n");
    let db = p.db();
    catalogue_on(&p, || db.tables(), |t| db.columns(t));
}

#[test]
fn op_catalogue_on_postgres() {
    let db = ServerDb::fresh(Server::Postgres);
    let p = Project::new();
    p.use_url(&db.url);
    p.add(&fixture("catalogue"));
    p.ok(&["upgrade", "head"]);
    assert_eq!(
        db.rows(
            "SELECT conname::text, contype::text FROM pg_constraint WHERE conrelid IN ('kinds_renamed'::regclass, 'parent'::regclass) ORDER BY 1"
        ),
        [
            "ck_kinds_positive|c",
            "fk_kinds_parent|f",
            "kinds_pkey|p",
            "parent_code_key|u",
            "parent_pkey|p",
            "uq_kinds_pair|u"
        ]
    );
    assert_eq!(
        db.rows("SELECT confdeltype::text, confupdtype::text FROM pg_constraint WHERE conname = 'fk_kinds_parent'"),
        ["c|r"]
    );
    assert_eq!(
        db.rows(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'kinds_renamed' ORDER BY 1"
        ),
        ["ix_kinds_big", "kinds_pkey", "uq_kinds_pair"]
    );
    assert_eq!(
        db.rows(
            "SELECT col_description('kinds_renamed'::regclass, (SELECT attnum FROM pg_attribute \
             WHERE attrelid = 'kinds_renamed'::regclass AND attname = 'label')), obj_description('parent'::regclass)"
        ),
        ["a label|parents of kinds"]
    );
    assert_eq!(
        db.rows(
            "SELECT column_name::text, data_type::text, is_nullable::text, coalesce(column_default::text, '-') FROM information_schema.columns \
             WHERE table_name = 'kinds_renamed' AND column_name IN ('small_col', 'char_col', 'label', 'numeric_col', 'json_col', 'uuid_col', 'tstz_col', 'blob_col') ORDER BY 1"
        ),
        [
            "blob_col|bytea|YES|-",
            "char_col|character|NO|-",
            "json_col|jsonb|YES|-",
            "label|character varying|YES|-",
            "numeric_col|numeric|YES|1",
            "small_col|integer|YES|-",
            "tstz_col|timestamp with time zone|YES|-",
            "uuid_col|uuid|YES|-"
        ]
    );
    assert_eq!(
        db.rows("SELECT numeric_col::text, json_col->>'a', uuid_col::text, ts_col::text FROM kinds_renamed WHERE id = 1"),
        ["12.34|1|123e4567-e89b-12d3-a456-426614174000|2024-01-02 10:11:12"]
    );
    p.ok(&["downgrade", "base"]);
    assert_eq!(db.tables(), ["retort_log", "retort_version"]);
    // Also through the generic table checks.
    let again = Project::new();
    let db2 = ServerDb::fresh(Server::Postgres);
    again.use_url(&db2.url.replacen("postgres://", "postgresql://", 1));
    catalogue_on(&again, || db2.tables(), |t| db2.columns(t));
}

#[test]
fn op_catalogue_on_mariadb() {
    let db = ServerDb::fresh(Server::MySql);
    let p = Project::new();
    p.use_url(&db.url.replacen("mysql://", "mariadb://", 1));
    p.add(&fixture("catalogue"));
    p.ok(&["upgrade", "head"]);
    assert_eq!(
        db.rows(
            "SELECT constraint_name, constraint_type FROM information_schema.table_constraints \
             WHERE constraint_schema = database() AND table_name IN ('kinds_renamed', 'parent') ORDER BY 1, 2"
        ),
        // (MariaDB's JSON is LONGTEXT with a json_valid CHECK named after the column.)
        [
            "ck_kinds_positive|CHECK",
            "code|UNIQUE",
            "fk_kinds_parent|FOREIGN KEY",
            "ix_kinds_big|UNIQUE",
            "json_col|CHECK",
            "PRIMARY|PRIMARY KEY",
            "PRIMARY|PRIMARY KEY",
            "uq_kinds_pair|UNIQUE"
        ]
    );
    assert_eq!(
        db.rows(
            "SELECT delete_rule, update_rule FROM information_schema.referential_constraints \
             WHERE constraint_schema = database() AND constraint_name = 'fk_kinds_parent'"
        ),
        ["CASCADE|RESTRICT"]
    );
    assert_eq!(
        db.rows(
            "SELECT column_name, column_type, is_nullable, coalesce(column_default, '-'), column_comment FROM information_schema.columns \
             WHERE table_schema = database() AND table_name = 'kinds_renamed' \
             AND column_name IN ('small_col', 'char_col', 'label', 'numeric_col', 'uuid_col', 'tstz_col', 'blob_col') ORDER BY 1"
        ),
        [
            "blob_col|longblob|YES|NULL|",
            "char_col|char(2)|NO|-|",
            "label|varchar(50)|YES|NULL|a label",
            "numeric_col|decimal(10,2)|YES|1.00|",
            "small_col|int(11)|YES|NULL|",
            "tstz_col|timestamp(6)|YES|NULL|",
            "uuid_col|char(36)|YES|NULL|"
        ]
    );
    assert_eq!(
        db.rows("SELECT numeric_col, json_value(json_col, '$.a'), text_col FROM kinds_renamed WHERE id = 1"),
        ["12.34|1|it's \u{e9}\\ text"]
    );
    p.ok(&["downgrade", "base"]);
    assert_eq!(db.tables(), ["retort_log", "retort_version"]);
}
