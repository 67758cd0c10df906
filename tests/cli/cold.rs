//! The cold path (issue 16): components compiled ahead on other threads, checked before
//! anything runs, and compiled ahead of a deploy with `retort compile`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::support::Project;
use crate::wat_guest;

/// Appends a component-level custom section named `name` holding `data`.
fn with_custom_section(component: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut out = component.to_vec();
    out.push(0); // custom section
    leb(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// The metadata section `retort pack` adds, without the validation `pack` does: how a
/// broken component can still carry revision metadata.
fn with_metadata_unchecked(component: &[u8], meta: &retort::revision::Metadata) -> Vec<u8> {
    with_custom_section(
        component,
        retort::revision::SECTION,
        &serde_json::to_vec(meta).unwrap(),
    )
}

fn meta(id: &str, down: &[&str]) -> retort::revision::Metadata {
    let mut m = retort::revision::Metadata::new(id, format!("revision {id}"));
    m.down = down.iter().map(|s| s.to_string()).collect();
    m
}

#[test]
fn a_bad_component_late_in_the_plan_stops_the_run_before_the_first_step() {
    // Step 2 of 3 does not validate (a function returns an i64 as an i32): it parses,
    // so its metadata reads, but it cannot compile.
    let invalid = Project::new();
    invalid.write_component("a1.wasm", &wat_guest::revision("a1", &[], "t1", ""));
    let broken =
        wat::parse_str(r#"(component (core module (func (result i32) (i64.const 0))))"#).unwrap();
    invalid.write_component(
        "b2.wasm",
        &with_metadata_unchecked(&broken, &meta("b2", &["a1"])),
    );
    invalid.write_component("c3.wasm", &wat_guest::revision("c3", &["b2"], "t3", ""));
    let err = invalid.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision b2") && err.contains("b2.wasm) is not a valid component"),
        "{err}"
    );
    assert!(!invalid.db_path().exists() || invalid.db().tables().is_empty());

    // Step 3 of 3 imports what the host does not provide.
    let forbidden = Project::new();
    forbidden.write_component("a1.wasm", &wat_guest::revision("a1", &[], "t1", ""));
    forbidden.write_component("b2.wasm", &wat_guest::revision("b2", &["a1"], "t2", ""));
    let net = wat::parse_str(r#"(component (import "acme:vault/secrets" (instance)))"#).unwrap();
    let packed = retort::revision::pack(&net, &meta("c3", &["b2"]), Path::new("c3.wasm")).unwrap();
    forbidden.write_component("c3.wasm", &packed);
    let err = forbidden.fails(&["upgrade", "head"], 1);
    assert!(
        err.contains("revision c3") && err.contains("imports acme:vault/secrets"),
        "{err}"
    );
    assert!(!forbidden.db_path().exists() || forbidden.db().tables().is_empty());
}

/// Every entry of the compile cache, with its modification time.
fn entries(cache: &Path) -> BTreeMap<String, SystemTime> {
    let mut all = BTreeMap::new();
    for dir in std::fs::read_dir(cache).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".cwasm") {
                all.insert(name, e.metadata().unwrap().modified().unwrap());
            }
        }
    }
    all
}

/// Engine folder -> its entries, with their modification times (folders holding none
/// are left out).
fn folders(cache: &Path) -> BTreeMap<String, BTreeMap<String, SystemTime>> {
    let mut all = BTreeMap::new();
    for dir in std::fs::read_dir(cache).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let entries = entries_in(&dir);
            if !entries.is_empty() {
                all.insert(name, entries);
            }
        }
    }
    all
}

fn entries_in(dir: &Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// A project of `n` chained WAT revisions, each creating a table.
fn chain(n: usize) -> Project {
    let p = Project::new();
    for i in 0..n {
        let down: Vec<String> = (i > 0)
            .then(|| format!("r{:02}", i - 1))
            .into_iter()
            .collect();
        let down: Vec<&str> = down.iter().map(String::as_str).collect();
        p.write_component(
            &format!("r{i:02}.wasm"),
            &wat_guest::revision(&format!("r{i:02}"), &down, &format!("t{i}"), ""),
        );
    }
    p
}

/// The component with a custom section of `bytes` zeros appended: as large on disk as
/// a component carrying an interpreter, as quick to compile as the original.
fn padded(component: &[u8], bytes: usize) -> Vec<u8> {
    with_custom_section(component, "padding", &vec![0; bytes])
}

#[test]
fn auto_compiles_large_components_with_winch_the_rest_and_compile_with_cranelift() {
    let tables = |p: &Project| {
        p.db()
            .tables()
            .iter()
            .filter(|t| t.starts_with('t'))
            .count()
    };
    // The engine folder each compiler writes to, from projects that name it.
    let folder_of = |compiler: &str| {
        let p = chain(1);
        p.append_config(&format!("\n[sandbox]\ncompiler = \"{compiler}\"\n"));
        p.ok(&["upgrade", "head"]);
        let folders = folders(&p.path().join(".retort/cache"));
        assert_eq!(folders.len(), 1, "{folders:?}");
        folders.into_keys().next().unwrap()
    };
    let (winch, cranelift) = (folder_of("winch"), folder_of("cranelift"));
    assert_ne!(winch, cranelift);

    // `auto` (the default): four small revisions, then one of 1 MiB and more (the size
    // of a component with an interpreter inside).
    let small = 4;
    let p = chain(small);
    let big = retort::sandbox::BASELINE_FROM_BYTES as usize;
    p.write_component(
        "r99.wasm",
        &padded(&wat_guest::revision("r99", &["r03"], "t99", ""), big),
    );
    let big_entry = format!(
        "{}.cwasm",
        retort::revision::sha256_hex(&std::fs::read(p.path().join("components/r99.wasm")).unwrap())
    );
    let cache = p.path().join(".retort/cache");
    p.ok(&["upgrade", "head"]);
    assert_eq!(tables(&p), small + 1);
    let after_run = folders(&cache);
    assert_eq!(after_run[&cranelift].len(), small, "{after_run:?}");
    assert_eq!(
        after_run[&winch].keys().collect::<Vec<_>>(),
        vec![&big_entry],
        "the large one went to Winch"
    );

    // `retort compile` makes Cranelift's artifacts: only the large one lacked one.
    let said = p.ok(&["compile"]);
    assert!(said.contains("compiled 1 of 5 components"), "{said}");
    let compiled = folders(&cache);
    assert_eq!(compiled[&cranelift].len(), small + 1);
    assert_eq!(compiled[&winch], after_run[&winch]);
    // Cranelift kept its compiled functions for the next component (FunctionCache).
    assert!(
        std::fs::metadata(cache.join("functions.log"))
            .unwrap()
            .len()
            > 0
    );

    // A run then loads Cranelift's artifacts and compiles nothing.
    p.ok(&["downgrade", "base"]);
    p.ok(&["upgrade", "head"]);
    assert_eq!(tables(&p), small + 1);
    assert_eq!(folders(&cache), compiled);

    // A Cranelift artifact that fails its HMAC is not loaded: the run compiles that
    // component again (the large one with Winch), the others still load. (Winch's
    // entries are removed first, so that one appears only for what was compiled.)
    p.ok(&["downgrade", "base"]);
    std::fs::remove_dir_all(cache.join(&winch)).unwrap();
    let path = cache.join(&cranelift).join(&big_entry);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let tampered = entries_in(&cache.join(&cranelift));
    p.ok(&["upgrade", "head"]);
    assert_eq!(tables(&p), small + 1);
    let after = folders(&cache);
    assert_eq!(after[&cranelift], tampered, "no Cranelift entry written");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
    assert_eq!(
        after[&winch].keys().collect::<Vec<_>>(),
        vec![&big_entry],
        "only the refused component is compiled again"
    );
}

#[test]
fn compile_ahead_then_a_deploy_compiles_nothing_and_a_tampered_artifact_is_refused() {
    let n = 12;
    let p = chain(n);
    // One compiler for runs and `compile` alike (with `auto` a refused artifact is
    // compiled with Winch instead: the test above).
    p.append_config("\n[sandbox]\ncompiler = \"cranelift\"\n");
    let cache = p.path().join(".retort/cache");
    let said = p.ok(&["compile"]);
    assert!(
        said.contains(&format!("compiled {n} of {n} components")),
        "{said}"
    );
    let compiled = entries(&cache);
    assert_eq!(compiled.len(), n, "{compiled:?}");
    // Again: everything is cached.
    let said = p.ok(&["compile"]);
    assert!(
        said.contains(&format!("compiled 0 of {n} components")),
        "{said}"
    );

    // The deploy loads every artifact and writes none: nothing was compiled.
    let made = || {
        p.db()
            .tables()
            .iter()
            .filter(|t| t.starts_with('t'))
            .count()
    };
    p.ok(&["upgrade", "head"]);
    assert_eq!(made(), n);
    assert_eq!(entries(&cache), compiled);

    // An artifact changed after `compile` (here: one byte of its code) fails its HMAC:
    // it is not loaded, the component is compiled again and the entry rewritten.
    p.ok(&["downgrade", "base"]);
    let victim = compiled.keys().next().unwrap().clone();
    let path = std::fs::read_dir(&cache)
        .unwrap()
        .map(|d| d.unwrap().path().join(&victim))
        .find(|p| p.exists())
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let before = entries(&cache);
    p.ok(&["upgrade", "head"]);
    assert_eq!(made(), n);
    let after = entries(&cache);
    assert_ne!(
        after[&victim], before[&victim],
        "the tampered entry was rebuilt"
    );
    assert_ne!(std::fs::read(&path).unwrap(), bytes);
    for (name, time) in &after {
        if *name != victim {
            assert_eq!(before[name], *time, "{name} was compiled again");
        }
    }
}

#[test]
fn compile_without_a_cache_directory_says_how_to_set_one() {
    let p = Project::new();
    p.write_component("a1.wasm", &wat_guest::revision("a1", &[], "t1", ""));
    p.append_config("\n[sandbox]\ncache-dir = \"\"\n");
    let err = p.fails(&["compile"], 2);
    assert!(
        err.contains("set [sandbox] cache-dir in retort.toml"),
        "{err}"
    );
}

/// On SQLite a step's ledger writes go in one batch with their values as literals
/// (issue 16): a message, and a failure's detail, full of quotes, statement separators,
/// comments, placeholders and non-ASCII reach the ledger as written, and nothing in
/// them runs.
#[test]
fn hostile_text_reaches_the_sqlite_ledger_as_written() {
    let p = Project::new();
    let message = "it's'); DROP TABLE retort_version; -- ?1 $1 :name /* é ✓ 日本 \\";
    let mut a1 = meta("a1", &[]);
    a1.message = message.into();
    let create = wat_guest::component("CREATE TABLE t1 (id INTEGER)", "DROP TABLE t1", "");
    p.write_component(
        "a1.wasm",
        &retort::revision::pack(&create, &a1, Path::new("a1.wasm")).unwrap(),
    );
    // Outside a transaction, a failure is recorded with its detail (SQLite names the
    // missing table in its error).
    let mut b2 = meta("b2", &["a1"]);
    b2.transactional = false;
    let bad = "INSERT INTO \"x'); DROP TABLE retort_log; --\" VALUES (1)";
    let failing = wat_guest::statements(&[bad], &[], "");
    p.write_component(
        "b2.wasm",
        &retort::revision::pack(&failing, &b2, Path::new("b2.wasm")).unwrap(),
    );
    p.fails(&["upgrade", "head"], 1);
    let db = p.db();
    assert_eq!(db.rows("SELECT version_num FROM retort_version"), ["a1"]);
    assert_eq!(
        db.row_texts("SELECT message FROM retort_log WHERE revision = 'a1'"),
        [message]
    );
    let detail =
        db.row_texts("SELECT detail FROM retort_log WHERE revision = 'b2' AND status = 'failed'");
    assert!(
        detail[0].contains("x'); DROP TABLE retort_log; --"),
        "{detail:?}"
    );
}
