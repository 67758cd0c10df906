//! Loading and resolving large histories, side by side with Alembic.
//!
//! For N revisions (a chain with a branch and a merge every 100): the pure graph
//! (build, resolve `head`, plan base->head), then `retort heads` and `retort history`
//! as a user runs them (reading every component's metadata from disk), then Alembic's
//! `alembic heads` over the same history as Python scripts, when Alembic is installed.
//! Results go to stdout and to BENCHMARKS.md at the workspace root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use retort::graph::{Graph, plan_upgrade};
use retort::revision::{Metadata, pack};

/// Revision i follows i-1; every 100th revision starts a side branch of one revision
/// that the next revision merges back.
fn history(n: usize) -> Vec<Metadata> {
    let id = |i: usize| format!("{i:012x}");
    let mut metas = Vec::with_capacity(n);
    let mut side: Option<String> = None;
    for i in 0..n {
        let mut m = Metadata::new(id(i), format!("revision {i}"));
        if i > 0 {
            m.down.push(id(i - 1));
            if let Some(s) = side.take() {
                m.down.push(s);
            }
        }
        if i % 100 == 50 && i + 1 < n {
            // A side branch off this revision, merged by the next but one.
            let mut b = Metadata::new(format!("b{i:011x}"), format!("side {i}"));
            b.down.push(id(i));
            side = Some(b.id.clone());
            metas.push(m);
            metas.push(b);
            continue;
        }
        metas.push(m);
    }
    metas
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn write_components(dir: &Path, metas: &[Metadata]) {
    let component = wat::parse_str("(component)").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for m in metas {
        let bytes = pack(&component, m, Path::new("bench")).unwrap();
        std::fs::write(dir.join(format!("{}.wasm", m.id)), bytes).unwrap();
    }
}

fn write_alembic(dir: &Path, metas: &[Metadata]) {
    let versions = dir.join("versions");
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        format!(
            "[alembic]\nscript_location = {}\nsqlalchemy.url = sqlite://\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("env.py"), "").unwrap();
    std::fs::write(dir.join("script.py.mako"), "").unwrap();
    for m in metas {
        let down = match m.down.as_slice() {
            [] => "None".to_owned(),
            [one] => format!("{one:?}"),
            many => format!(
                "({})",
                many.iter().map(|d| format!("{d:?},")).collect::<String>()
            ),
        };
        std::fs::write(
            versions.join(format!("{}_rev.py", m.id)),
            format!(
                "\"\"\"{}\"\"\"\nrevision = {:?}\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n",
                m.message, m.id
            ),
        )
        .unwrap();
    }
}

fn time_command(runs: usize, cmd: impl Fn() -> Command) -> Option<Duration> {
    let ok = cmd().output().ok()?.status.success();
    if !ok {
        return None;
    }
    Some(best_of(runs, || cmd().output().unwrap()))
}

fn main() {
    let workspace = common::workspace();
    let retort = common::retort();
    let tmp = tempfile::tempdir().unwrap();
    let alembic = Command::new("python3")
        .args(["-c", "import alembic; print(alembic.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut rows = Vec::new();
    for n in [1_000usize, 10_000] {
        let metas = history(n);
        let total = metas.len();
        let build = best_of(5, || Graph::new(metas.clone()).unwrap());
        let graph = Graph::new(metas.clone()).unwrap();
        let resolve = best_of(5, || {
            let target = graph.upgrade_target("head", &[]).unwrap();
            plan_upgrade(&graph, &[], &target)
        });
        let dir: PathBuf = tmp.path().join(format!("retort{n}"));
        write_components(&dir.join("components"), &metas);
        std::fs::write(
            dir.join("retort.toml"),
            "[database]\nurl = \"sqlite::memory:\"\n[migrations]\ncomponents = \"components\"\n",
        )
        .unwrap();
        let cli = |args: &'static [&'static str]| {
            let config = dir.join("retort.toml");
            let retort = retort.clone();
            move || {
                let mut c = Command::new(&retort);
                c.arg("-c").arg(&config).args(args);
                c
            }
        };
        let heads = time_command(3, cli(&["--format", "json", "heads"]));
        let hist = time_command(3, cli(&["--format", "json", "history"]));
        let plan = time_command(
            3,
            cli(&["--format", "json", "upgrade", "head", "--dry-run"]),
        );
        let alembic_heads = alembic.as_ref().and_then(|_| {
            let adir = tmp.path().join(format!("alembic{n}"));
            write_alembic(&adir, &metas);
            time_command(1, || {
                let mut c = Command::new("python3");
                c.args(["-m", "alembic", "-c"])
                    .arg(adir.join("alembic.ini"))
                    .arg("heads");
                c
            })
        });
        let show = |d: Option<Duration>| d.map_or("n/a".into(), ms);
        rows.push(format!(
            "| {total} | {} | {} | {} | {} | {} | {} |",
            ms(build),
            ms(resolve),
            show(heads),
            show(hist),
            show(plan),
            show(alembic_heads)
        ));
    }
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
    let report = format!(
        "# Benchmarks\n\nMade by `scripts/bench.sh` (`cargo bench -p retort --bench history`); best of several runs, {machine}.\n\n\
         ## Loading and resolving a history\n\n\
         A chain with a side branch merged back every 100 revisions. *graph* columns are the pure\n\
         in-process graph (build + validate, then resolve `head` and plan base -> head). The CLI\n\
         columns run the `retort` binary as a user does: read every component's metadata from\n\
         disk (no compilation), build the graph, print JSON. Alembic {}: `alembic heads` over the\n\
         same history as Python revision scripts, same machine, same run.\n\n\
         | revisions | graph: build | graph: plan to head | `retort heads` | `retort history` | `retort upgrade head --dry-run` (in-memory SQLite) | `alembic heads` |\n\
         |---|---|---|---|---|---|---|\n{}\n",
        alembic.as_deref().unwrap_or("(not installed: n/a)"),
        rows.join("\n")
    );
    println!("{report}");
    let out = workspace.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("history.md"), report).unwrap();
}
