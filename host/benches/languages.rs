//! Each guest language side by side: component size, first compile, cached load and the
//! cost of an op call, measured through the `retort` binary as a user runs it. Writes
//! target/bench/languages.md (scripts/bench.sh puts it into BENCHMARKS.md).
//!
//! The guests (host/benches/guests): `upgrade` makes 100,000 host calls (`is-offline`, the
//! bare cost of crossing the boundary), `downgrade` runs 2,000 `execute`s on SQLite.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CALLS: f64 = 100_000.0;
const EXECUTES: f64 = 2000.0;

fn run(cmd: &mut Command) -> (Duration, String) {
    let start = Instant::now();
    let out = cmd.output().expect("cannot run retort");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    (took, stderr)
}

/// The bench table the guests update, in `dir`/bench.db.
fn seed(dir: &Path) {
    let status = Command::new("sqlite3")
        .arg(dir.join("bench.db"))
        .arg("CREATE TABLE bench (n INTEGER); INSERT INTO bench VALUES (0);")
        .status()
        .expect("sqlite3 is needed (scripts/setup.sh installs it)");
    assert!(status.success());
}

/// The next revision of an interpreted language compiled with the first one's cache: one
/// row of the second table.
fn next_revision(
    lang: &str,
    retort: &Path,
    first: Duration,
    cache: &Path,
    component: &Path,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("components")).unwrap();
    std::fs::copy(
        component,
        dir.path()
            .join("components")
            .join(component.file_name().unwrap()),
    )
    .unwrap();
    let project = dir.path().join("retort.toml");
    std::fs::write(
        &project,
        format!(
            "[database]\nurl = \"sqlite:bench.db\"\n[migrations]\ncomponents = \"components\"\n[sandbox]\ncache-dir = {:?}\ncompiler = \"cranelift\"\n",
            cache.display().to_string()
        ),
    )
    .unwrap();
    seed(dir.path());
    let (took, _) = run(Command::new(retort)
        .arg("-c")
        .arg(&project)
        .args(["upgrade", "head"]));
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let artifact = std::fs::read_dir(cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().filter_map(|e| e.ok()))
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0);
    let log = std::fs::metadata(cache.join("functions.log")).map_or(0, |m| m.len());
    format!(
        "| {lang} | {:.2} s | {:.2} s | {:.2} | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        first.as_secs_f64(),
        took.as_secs_f64(),
        took.as_secs_f64() / first.as_secs_f64(),
        mib(std::fs::metadata(component).unwrap().len()),
        mib(artifact),
        mib(log),
    )
}

/// The "done in N ms" the runner prints for the revision.
fn guest_ms(stderr: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("done in "))
        .and_then(|l| l.strip_suffix(" ms"))
        .and_then(|n| n.parse().ok())
        .expect("no timing in retort's output")
}

fn main() {
    let workspace = common::workspace();
    let retort = common::retort();
    let work = workspace.join("target/bench/languages");
    std::fs::create_dir_all(&work).unwrap();
    let config = work.join("retort.toml");
    std::fs::write(
        &config,
        format!(
            "[migrations]\nsources = {:?}\ncomponents = \"components\"\n\n[build]\nguest-sdk = {{ path = {:?} }}\ndir = \"build\"\n",
            workspace.join("host/benches/guests").display().to_string(),
            workspace.join("guest-sdk").display().to_string(),
        ),
    )
    .unwrap();
    run(Command::new(&retort).arg("-c").arg(&config).arg("build"));

    let mut rows = Vec::new();
    let mut next_rows = Vec::new();
    for (lang, file, next) in [
        ("Rust", "b1_rust.wasm", None),
        (
            "Python (componentize-py)",
            "b2_python.wasm",
            Some("b5_python_next.wasm"),
        ),
        (
            "JavaScript (componentize-js)",
            "b3_js.wasm",
            Some("b6_js_next.wasm"),
        ),
        ("C (clang + wasi-libc)", "b4_c.wasm", None),
    ] {
        let component: PathBuf = work.join("components").join(file);
        let size = std::fs::metadata(&component).unwrap().len();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("components")).unwrap();
        std::fs::copy(&component, dir.path().join("components").join(file)).unwrap();
        let project = dir.path().join("retort.toml");
        let write_config = |compiler: &str| {
            std::fs::write(
                &project,
                format!("[database]\nurl = \"sqlite:bench.db\"\n[migrations]\ncomponents = \"components\"\n[sandbox]\ncache-dir = \"cache\"\ncompiler = \"{compiler}\"\n"),
            )
            .unwrap();
        };
        write_config("cranelift");
        seed(dir.path());
        let retort_in = |args: &[&str]| {
            let mut c = Command::new(&retort);
            c.arg("-c").arg(&project).args(args);
            c
        };
        // First run: nothing cached, the component is compiled (Cranelift).
        let (cold, out) = run(&mut retort_in(&["upgrade", "head"]));
        let calls_first = guest_ms(&out);
        if let Some(next) = next {
            next_rows.push(next_revision(
                lang,
                &retort,
                cold,
                &dir.path().join("cache"),
                &work.join("components").join(next),
            ));
        }
        let (_, out) = run(&mut retort_in(&["downgrade", "base"]));
        let executes = guest_ms(&out);
        // Second run: the compiled artifact comes from the cache.
        let (warm, out) = run(&mut retort_in(&["upgrade", "head"]));
        let calls = guest_ms(&out).min(calls_first);
        // The same with Winch, the baseline compiler (its own cache entries).
        run(&mut retort_in(&["downgrade", "base"]));
        write_config("winch");
        let (winch_cold, out) = run(&mut retort_in(&["upgrade", "head"]));
        let winch_calls = guest_ms(&out);
        rows.push(format!(
            "| {lang} | {:.0} KiB | {:.2} s | {:.0} ms | {:.2} µs | {:.1} µs | {:.2} s | {:.2} µs |",
            size as f64 / 1024.0,
            cold.as_secs_f64(),
            warm.as_millis(),
            calls * 1000.0 / CALLS,
            executes * 1000.0 / EXECUTES,
            winch_cold.as_secs_f64(),
            winch_calls * 1000.0 / CALLS,
        ));
    }
    let report = format!(
        "## Guest languages\n\n\
         Made by `cargo bench -p retort --bench languages`, one run on this machine: one\n\
         revision per language (host/benches/guests) whose `upgrade` makes 100,000 host calls\n\
         (`is-offline`) and whose `downgrade` runs 2,000 `execute`s on SQLite. *first upgrade*\n\
         is the whole `retort upgrade head` process with an empty cache (the component compiled\n\
         with Cranelift); *cached upgrade* the same later, the compiled artifact loaded from the\n\
         cache; *per host call* the runner's time for the upgrade (instantiation included) over\n\
         100,000; *per execute* the downgrade's over 2,000 (policy check and SQLite included).\n\
         The last two columns repeat the first upgrade and the host calls with\n\
         `[sandbox] compiler = \"winch\"` (wasmtime's baseline compiler).\n\n\
         | language | component | first upgrade | cached upgrade | per host call | per execute | first upgrade, Winch | per host call, Winch |\n\
         |---|---|---|---|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    let report = format!(
        "{report}\n### Interpreted guests: the next revision\n\n\
         Every Python or JavaScript revision carries its interpreter, so compiling the second\n\
         one repeats most of the first one's work unless the compiled functions are kept:\n\
         with a cache directory, Cranelift's compiled functions go to `functions.log` beside\n\
         the compiled components (wasmtime's incremental compilation cache, every record under\n\
         the cache's HMAC). *next revision* is the whole `retort upgrade head` of another\n\
         revision of the same language (host/benches/guests/b5, b6: other code), in a project\n\
         whose cache holds only what the first revision's compile left. Disk per revision: the\n\
         component and its compiled artifact; *function log* is what both revisions' compiles\n\
         added to it (shared by every later revision).\n\n\
         | language | first revision | next revision | next / first | component | compiled artifact | function log |\n\
         |---|---|---|---|---|---|---|\n{}\n",
        next_rows.join("\n")
    );
    println!("{report}");
    let out = workspace.join("target/bench/languages.md");
    std::fs::write(out, report).unwrap();
}
