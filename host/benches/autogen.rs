//! `retort revision --autogenerate` over a 1,000-revision history, side by side with
//! `alembic revision --autogenerate` on the same history and model, in one run
//! (issue 15, point 9). Writes target/bench/autogen.md (scripts/bench.sh puts it into
//! BENCHMARKS.md).
//!
//! The history: four Rust revisions (host/benches/autogen-guests: create a table and its
//! index; add a column and widen another; drop and narrow them back; drop the table)
//! built once and packed again under 1,000 ids, chained, so every revision is a real
//! component making real ops. Retort replays all of them offline (SQLite's script
//! target, with its table rebuilds) into the schema model and compares it with
//! schema.sql; Alembic loads the same history as Python scripts and compares its
//! SQLAlchemy model with a SQLite database at head (it needs one).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use retort::revision::{Metadata, pack, read_metadata};

const REVISIONS: usize = 1000;

const SCHEMA: &str = "CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    price NUMERIC(10, 2)
);
CREATE INDEX ix_items_name ON items (name);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items (id),
    qty INTEGER NOT NULL DEFAULT 1
);
";

/// The same four revisions as Alembic scripts (bodies only).
const ALEMBIC_BODIES: [(&str, &str); 4] = [
    (
        "op.create_table('items', sa.Column('id', sa.Integer(), primary_key=True),\n        sa.Column('name', sa.String(100), nullable=False),\n        sa.Column('price', sa.Numeric(10, 2)))\n    op.create_index('ix_items_name', 'items', ['name'])",
        "op.drop_table('items')",
    ),
    (
        "op.add_column('items', sa.Column('note', sa.Text()))\n    with op.batch_alter_table('items') as b:\n        b.alter_column('name', type_=sa.String(200))",
        "with op.batch_alter_table('items') as b:\n        b.alter_column('name', type_=sa.String(100))\n    op.drop_column('items', 'note')",
    ),
    (
        "with op.batch_alter_table('items') as b:\n        b.drop_column('note')\n        b.alter_column('name', type_=sa.String(100))",
        "op.add_column('items', sa.Column('note', sa.Text()))",
    ),
    (
        "op.drop_index('ix_items_name', table_name='items')\n    op.drop_table('items')",
        "op.create_table('items', sa.Column('id', sa.Integer(), primary_key=True))",
    ),
];

const ENV_PY: &str = r#"from alembic import context
from sqlalchemy import (Column, ForeignKey, Integer, MetaData, Numeric, String, Table,
                        engine_from_config, pool)

metadata = MetaData()
Table("items", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(100), nullable=False, index=True),
      Column("price", Numeric(10, 2)))
Table("orders", metadata,
      Column("id", Integer, primary_key=True),
      Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
      Column("qty", Integer, nullable=False, server_default="1"))

config = context.config
engine = engine_from_config(config.get_section(config.config_ini_section),
                            prefix="sqlalchemy.", poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
"#;

const MAKO: &str = r#""""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
"#;

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("cannot run");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Writes `n` revisions cycling through the four built components, each packed again
/// under its own id.
fn write_history(built: &Path, components: &Path, n: usize) {
    let empty = wat::parse_str("(component)").unwrap();
    let mut raw = Vec::new();
    for name in ["a0_create", "a1_widen", "a2_narrow", "a3_drop"] {
        let path = built.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap();
        let meta = read_metadata(&bytes, &path).unwrap();
        // pack appends one section: its length is what packing the empty component adds.
        let section = pack(&empty, &meta, &path).unwrap().len() - empty.len();
        raw.push(bytes[..bytes.len() - section].to_vec());
    }
    std::fs::create_dir_all(components).unwrap();
    for i in 0..n {
        let mut m = Metadata::new(format!("r{i:04}"), format!("step {i}"));
        if i > 0 {
            m.down.push(format!("r{:04}", i - 1));
        }
        let path = components.join(format!("r{i:04}.wasm"));
        std::fs::write(&path, pack(&raw[i % 4], &m, &path).unwrap()).unwrap();
    }
}

fn write_alembic(dir: &Path, n: usize) {
    let versions = dir.join("versions");
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        format!(
            "[alembic]\nscript_location = {}\nsqlalchemy.url = sqlite:///{}\n",
            dir.display(),
            dir.join("app.db").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("env.py"), ENV_PY).unwrap();
    std::fs::write(dir.join("script.py.mako"), MAKO).unwrap();
    for i in 0..n {
        let down = if i == 0 {
            "None".to_owned()
        } else {
            format!("'r{:04}'", i - 1)
        };
        let (up, back) = ALEMBIC_BODIES[i % 4];
        std::fs::write(
            versions.join(format!("r{i:04}.py")),
            format!(
                "from alembic import op\nimport sqlalchemy as sa\n\nrevision = 'r{i:04}'\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    {up}\n\n\ndef downgrade():\n    {back}\n"
            ),
        )
        .unwrap();
    }
}

fn main() {
    let workspace = common::workspace();
    let retort = common::retort();
    let work = workspace.join("target/bench/autogen");
    let _ = std::fs::remove_dir_all(work.join("project"));
    std::fs::create_dir_all(&work).unwrap();
    // Build the four guests once.
    let guests = work.join("guests.toml");
    std::fs::write(
        &guests,
        format!(
            "[migrations]\nsources = {:?}\ncomponents = \"components\"\n\n[build]\nguest-sdk = {{ path = {:?} }}\ndir = \"build\"\n",
            workspace.join("host/benches/autogen-guests").display().to_string(),
            workspace.join("guest-sdk").display().to_string(),
        ),
    )
    .unwrap();
    run(Command::new(&retort).arg("-c").arg(&guests).arg("build"));

    let project = work.join("project");
    write_history(
        &work.join("components"),
        &project.join("components"),
        REVISIONS,
    );
    std::fs::create_dir_all(project.join("versions")).unwrap();
    std::fs::write(project.join("schema.sql"), SCHEMA).unwrap();
    std::fs::write(
        project.join("retort.toml"),
        "[migrations]\nsources = \"versions\"\ncomponents = \"components\"\n\n[sandbox]\ncache-dir = \"cache\"\n\n[autogenerate]\nschema = \"schema.sql\"\n",
    )
    .unwrap();
    let config = project.join("retort.toml");
    let autogenerate = || {
        let mut c = Command::new(&retort);
        c.arg("-c")
            .arg(&config)
            .args(["revision", "--autogenerate", "--dialect", "sqlite"])
            .args(["-m", "orders", "--rev-id", "zz"]);
        c
    };
    let written = project.join("versions");
    let clear = || {
        for e in std::fs::read_dir(&written).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    };
    let cold = run(&mut autogenerate());
    let text = std::fs::read_dir(&written)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        text.contains("Table::new(\"orders\")") && text.contains("Table::new(\"items\")"),
        "{text}"
    );
    clear();
    let warm = (0..5)
        .map(|_| {
            let t = run(&mut autogenerate());
            clear();
            t
        })
        .min()
        .unwrap();
    let offline_check = (0..3)
        .map(|_| {
            // check exits 1 (the schema differs): time it whatever the code.
            let start = Instant::now();
            Command::new(&retort)
                .arg("-c")
                .arg(&config)
                .args(["check", "--dialect", "sqlite"])
                .output()
                .unwrap();
            start.elapsed()
        })
        .min()
        .unwrap();

    let alembic_version = Command::new("python3")
        .args(["-c", "import alembic; print(alembic.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let alembic = alembic_version.as_ref().map(|_| {
        let dir: PathBuf = work.join("alembic");
        let _ = std::fs::remove_dir_all(&dir);
        write_alembic(&dir, REVISIONS);
        let alembic = |args: &[&str]| {
            let mut c = Command::new("python3");
            c.args(["-m", "alembic", "-c"])
                .arg(dir.join("alembic.ini"))
                .args(args);
            c
        };
        // Alembic compares with a database at head: the history nets out to no table.
        run(&mut alembic(&["stamp", "head"]));
        (0..3)
            .map(|_| {
                let t = run(&mut alembic(&[
                    "revision",
                    "--autogenerate",
                    "-m",
                    "orders",
                ]));
                for e in std::fs::read_dir(dir.join("versions")).unwrap() {
                    let path = e.unwrap().path();
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    if text.contains("\"\"\"orders") {
                        assert!(text.contains("op.create_table('orders'"), "{text}");
                        std::fs::remove_file(path).unwrap();
                    }
                }
                t
            })
            .min()
            .unwrap()
    });
    let report = format!(
        "## Autogenerate over 1,000 revisions\n\n\
         Made by `cargo bench -p retort --bench autogen` (scripts/bench.sh), one run, {} cores. \
         {REVISIONS} chained revisions, each a real Rust component (four built once, packed again \
         under each id: create a table and its index; add a column and widen another; drop and \
         narrow them back; drop the table). The declared schema adds two tables. Retort \
         replays every revision offline (SQLite's script target, table rebuilds included) into \
         the schema model, compares it with schema.sql and writes the revision: no database. \
         Alembic {} loads the same history as Python scripts and compares its SQLAlchemy model \
         with a SQLite database stamped at head (it cannot work without one). Whole processes, \
         best of several runs.\n\n\
         | | time |\n|---|---|\n\
         | `retort revision --autogenerate`, compile cache empty (1,000 components compiled) | {} |\n\
         | `retort revision --autogenerate`, compile cache warm | {} |\n\
         | `retort check` (same comparison, nothing written), cache warm | {} |\n\
         | `alembic revision --autogenerate` | {} |\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        alembic_version.as_deref().unwrap_or("(not installed)"),
        secs(cold),
        secs(warm),
        secs(offline_check),
        alembic.map_or("n/a".into(), secs),
    );
    println!("{report}");
    std::fs::write(workspace.join("target/bench/autogen.md"), report).unwrap();
}
