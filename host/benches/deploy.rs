//! The cold path (issue 16): a first deploy of N linear revisions on a SQLite file, side
//! by side with Alembic on the same history and with `sqlite3` executing the same
//! statements (the floor), interleaved in one run. Writes target/bench/deploy.md
//! (scripts/bench.sh puts it into BENCHMARKS.md).
//!
//! Revision i creates table t{i} when i is even and adds a column to t{i-1} when odd:
//! small WAT components (tests/cli/wat_guest.rs, packed as `retort pack` does), each
//! different, so nothing is shared between them. Alembic gets the same history as
//! Python scripts (`op.create_table`, `op.add_column`). Every process is measured by
//! `/usr/bin/time`: wall time, peak RSS, and context switches.
//!
//! `RETORT_BENCH_SIZES=100,1000` chooses the sizes (default 100, 1000, 10000).

mod common;

#[allow(dead_code)]
#[path = "../../tests/cli/wat_guest.rs"]
mod wat_guest;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What `/usr/bin/time` saw of one process.
#[derive(Debug, Clone, Copy)]
struct Run {
    secs: f64,
    rss_kib: u64,
    /// Voluntary + involuntary context switches.
    switches: u64,
}

impl Run {
    fn best(runs: &[Run]) -> Run {
        *runs
            .iter()
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .expect("at least one run")
    }
}

/// Runs `cmd` under `/usr/bin/time`, asserting it succeeds.
fn measure(cmd: &mut Command, stdin: Option<&Path>) -> Run {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-o")
        .arg(report.path())
        .args(["-f", "%e %M %w %c"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(input) = stdin {
        timed.stdin(std::fs::File::open(input).unwrap());
    }
    let out = timed.stdout(Stdio::null()).output().expect("cannot run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    let line = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = line.split_whitespace().collect();
    Run {
        secs: f[0].parse().unwrap(),
        rss_kib: f[1].parse().unwrap(),
        switches: f[2].parse::<u64>().unwrap() + f[3].parse::<u64>().unwrap(),
    }
}

fn id(i: usize) -> String {
    format!("r{i:05}")
}

fn write_retort(dir: &Path, n: usize) {
    let components = dir.join("components");
    let marker = components.join(format!(".complete-{n}"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(&components);
    std::fs::create_dir_all(&components).unwrap();
    for i in 0..n {
        let (up, down) = if i % 2 == 0 {
            (
                format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY)"),
                format!("DROP TABLE t{i}"),
            )
        } else {
            (
                format!("ALTER TABLE t{} ADD COLUMN c{i} VARCHAR(50)", i - 1),
                format!("ALTER TABLE t{} DROP COLUMN c{i}", i - 1),
            )
        };
        let down_rev: Vec<String> = (i > 0).then(|| id(i - 1)).into_iter().collect();
        let downs: Vec<&str> = down_rev.iter().map(String::as_str).collect();
        let bytes = wat_guest::revision_of(&id(i), &downs, &[&up], &[&down], "");
        std::fs::write(components.join(format!("{}.wasm", id(i))), bytes).unwrap();
    }
    std::fs::write(
        dir.join("retort.toml"),
        "[database]\nurl = \"sqlite:app.db\"\n\n[migrations]\nsources = \"versions\"\ncomponents = \"components\"\n\n[sandbox]\ncache-dir = \"cache\"\n",
    )
    .unwrap();
    // Cranelift for every compile: its cache is what `retort compile` fills, which the
    // default (`auto`) then loads (precompiled.toml).
    std::fs::write(
        dir.join("cranelift.toml"),
        "[database]\nurl = \"sqlite:app.db\"\n\n[migrations]\nsources = \"versions\"\ncomponents = \"components\"\n\n[sandbox]\ncache-dir = \"cache-cranelift\"\ncompiler = \"cranelift\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("precompiled.toml"),
        "[database]\nurl = \"sqlite:app.db\"\n\n[migrations]\nsources = \"versions\"\ncomponents = \"components\"\n\n[sandbox]\ncache-dir = \"cache-cranelift\"\n",
    )
    .unwrap();
    std::fs::write(marker, "").unwrap();
}

const ENV_PY: &str = r#"from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
"#;

fn write_alembic(dir: &Path, n: usize) {
    let versions = dir.join("versions");
    let marker = versions.join(format!(".complete-{n}"));
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(&versions);
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        "[alembic]\nscript_location = %(here)s\nsqlalchemy.url = sqlite:///%(here)s/app.db\n",
    )
    .unwrap();
    std::fs::write(dir.join("env.py"), ENV_PY).unwrap();
    for i in 0..n {
        let down = if i == 0 {
            "None".to_owned()
        } else {
            format!("'{}'", id(i - 1))
        };
        let (up, back) = if i % 2 == 0 {
            (
                format!("op.create_table('t{i}', sa.Column('id', sa.Integer(), primary_key=True))"),
                format!("op.drop_table('t{i}')"),
            )
        } else {
            (
                format!(
                    "op.add_column('t{}', sa.Column('c{i}', sa.String(50)))",
                    i - 1
                ),
                format!("op.drop_column('t{}', 'c{i}')", i - 1),
            )
        };
        std::fs::write(
            versions.join(format!("{}.py", id(i))),
            format!(
                "from alembic import op\nimport sqlalchemy as sa\n\nrevision = '{}'\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    {up}\n\n\ndef downgrade():\n    {back}\n",
                id(i)
            ),
        )
        .unwrap();
    }
    std::fs::write(marker, "").unwrap();
}

/// One size on one disk: every measurement, interleaved.
struct Sample {
    n: usize,
    cold: Run,
    warm: Run,
    cranelift_cold: Run,
    precompiled: Run,
    sql: Run,
    history: Run,
    alembic: Run,
    alembic_sql: Run,
    floor: Run,
}

fn sample(retort: &Path, root: &Path, n: usize, rounds: usize) -> Sample {
    let project = root.join(format!("retort-{n}"));
    let alembic_dir = root.join(format!("alembic-{n}"));
    write_retort(&project, n);
    write_alembic(&alembic_dir, n);
    let script = project.join("script.sql");
    let floor_db = project.join("floor.db");
    let retort_cmd = |config: &str, args: &[&str]| {
        let mut c = Command::new(retort);
        c.current_dir(&project).args(["-c", config]).args(args);
        c
    };
    let alembic_cmd = |args: &[&str]| {
        let mut c = Command::new("python3");
        c.current_dir(&alembic_dir)
            .args(["-m", "alembic", "-c", "alembic.ini"])
            .args(args);
        c
    };
    let fresh = |dir: &Path, files: &[&str]| {
        for f in files {
            let _ = std::fs::remove_file(dir.join(f));
            let _ = std::fs::remove_dir_all(dir.join(f));
        }
    };
    let (mut cold, mut warm, mut cranelift_cold, mut precompiled) =
        (vec![], vec![], vec![], vec![]);
    let (mut sql, mut history) = (vec![], vec![]);
    let (mut alembic, mut alembic_sql, mut floor) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        fresh(&project, &["app.db", "cache", "cache-cranelift"]);
        cold.push(measure(
            &mut retort_cmd("retort.toml", &["upgrade", "head"]),
            None,
        ));
        fresh(&alembic_dir, &["app.db"]);
        alembic.push(measure(&mut alembic_cmd(&["upgrade", "head"]), None));
        fresh(&project, &["app.db"]);
        warm.push(measure(
            &mut retort_cmd("retort.toml", &["upgrade", "head"]),
            None,
        ));
        fresh(&project, &["app.db"]);
        cranelift_cold.push(measure(
            &mut retort_cmd("cranelift.toml", &["upgrade", "head"]),
            None,
        ));
        fresh(&project, &["app.db"]);
        precompiled.push(measure(
            &mut retort_cmd("precompiled.toml", &["upgrade", "head"]),
            None,
        ));
        sql.push(measure(
            &mut retort_cmd("retort.toml", &["upgrade", "head", "--sql"]),
            None,
        ));
        alembic_sql.push(measure(
            &mut alembic_cmd(&["upgrade", "head", "--sql"]),
            None,
        ));
        history.push(measure(&mut retort_cmd("retort.toml", &["history"]), None));
        // The floor: sqlite3 runs the statements Retort's script holds (the same DDL and
        // ledger writes, one transaction per revision).
        let out = retort_cmd("retort.toml", &["upgrade", "head", "--sql"])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(&script, &out.stdout).unwrap();
        fresh(&project, &["floor.db"]);
        floor.push(measure(
            Command::new("sqlite3").arg(&floor_db),
            Some(&script),
        ));
    }
    Sample {
        n,
        cold: Run::best(&cold),
        warm: Run::best(&warm),
        cranelift_cold: Run::best(&cranelift_cold),
        precompiled: Run::best(&precompiled),
        sql: Run::best(&sql),
        history: Run::best(&history),
        alembic: Run::best(&alembic),
        alembic_sql: Run::best(&alembic_sql),
        floor: Run::best(&floor),
    }
}

fn table(title: &str, samples: &[Sample]) -> String {
    let mut md = format!(
        "### {title}\n\n| N | work | time | × Alembic | × sqlite3 | peak RSS | switches / revision |\n|---|---|---|---|---|---|---|\n"
    );
    for s in samples {
        let row = |md: &mut String, work: &str, r: Run, versus: Option<Run>| {
            let ratio = |base: Run| format!("{:.2}", r.secs / base.secs.max(0.001));
            let _ = writeln!(
                md,
                "| {} | {work} | {:.2} s | {} | {} | {} MiB | {:.1} |",
                s.n,
                r.secs,
                versus.map_or("".into(), ratio),
                ratio(s.floor),
                r.rss_kib / 1024,
                r.switches as f64 / s.n as f64
            );
        };
        row(
            &mut md,
            "`upgrade head`, empty cache (`auto`: Winch)",
            s.cold,
            Some(s.alembic),
        );
        row(
            &mut md,
            "`upgrade head`, empty cache, Cranelift",
            s.cranelift_cold,
            Some(s.alembic),
        );
        row(
            &mut md,
            "`upgrade head`, warm cache (Winch's artifacts)",
            s.warm,
            Some(s.alembic),
        );
        row(
            &mut md,
            "`upgrade head`, precompiled (`retort compile`'s Cranelift artifacts)",
            s.precompiled,
            Some(s.alembic),
        );
        row(&mut md, "`upgrade head --sql`", s.sql, Some(s.alembic_sql));
        row(&mut md, "`history`", s.history, None);
        row(&mut md, "alembic `upgrade head`", s.alembic, None);
        row(&mut md, "alembic `upgrade head --sql`", s.alembic_sql, None);
        row(
            &mut md,
            "sqlite3, the same statements (floor)",
            s.floor,
            None,
        );
    }
    md
}

fn main() {
    let workspace = common::workspace();
    let retort = common::retort();
    let sizes: Vec<usize> = std::env::var("RETORT_BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("RETORT_BENCH_SIZES: numbers"))
        .collect();
    let disk: PathBuf = workspace.join("target/bench/deploy");
    let shm = PathBuf::from("/dev/shm/retort-bench-deploy");
    let alembic_version = Command::new("python3")
        .args(["-c", "import alembic; print(alembic.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("Alembic is installed (scripts/setup-alembic.sh)");
    let mut md = format!(
        "## The cold path: a first deploy of N revisions\n\n\
         Made by `cargo bench -p retort --bench deploy` (scripts/bench.sh), {} cores. N linear \
         revisions on a SQLite file, each creating a table or adding a column, as small WAT \
         components packed like `retort pack`'s; Alembic {alembic_version} on the same history \
         as Python scripts (one transaction per migration); the floor is `sqlite3` executing \
         Retort's own `--sql` script (the same DDL and ledger writes, one transaction per \
         revision). Interleaved, best of the rounds; wall time, peak RSS and context switches \
         (voluntary + involuntary) from `/usr/bin/time`. *Empty cache*: every component \
         compiled in that run (by default, `compiler = \"auto\"`, with Winch); *warm*: the \
         artifacts that run cached; *precompiled*: Cranelift's artifacts, what `retort \
         compile` leaves, loaded by the default configuration. Sizes run: {} (`RETORT_BENCH_SIZES`).\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sizes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (title, root) in [
        ("On tmpfs (the tool's own cost)", &shm),
        ("On the disk", &disk),
    ] {
        std::fs::create_dir_all(root).unwrap();
        let samples: Vec<Sample> = sizes
            .iter()
            .map(|&n| {
                let rounds = if n >= 10_000 { 1 } else { 3 };
                eprintln!("deploy bench: {title}, N={n}");
                sample(&retort, root, n, rounds)
            })
            .collect();
        md.push_str(&table(title, &samples));
        md.push('\n');
    }
    let _ = std::fs::remove_dir_all(&shm);
    println!("{md}");
    std::fs::create_dir_all(workspace.join("target/bench")).unwrap();
    std::fs::write(workspace.join("target/bench/deploy.md"), md).unwrap();
}
