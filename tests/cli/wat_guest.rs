//! Revisions written by hand in WAT: a core module that calls `op.execute` through the
//! canonical ABI, made a component by wit-component, as any toolchain would.

use std::path::Path;

/// `cabi_realloc` for the guests here: a bump allocator from `$heap` (align up, hand
/// out, never free).
const ALLOCATOR: &str = r#"  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (local.get $ptr))"#;

/// Instructions a guest runs after its first op.
pub const TRAP: &str = "(unreachable)";
pub const LOOP_FOREVER: &str = "(loop $spin (br $spin))";
/// Asks for 10,000 pages (625 MiB) of linear memory.
pub const MEMORY_BOMB: &str = "(drop (memory.grow (i32.const 10000)))";
/// Recurses without end.
pub const DEEP_RECURSION: &str = "(drop (call $deep (i32.const 0)))";
/// Passes a 60,000-byte string to `execute`.
pub const HUGE_STRING: &str =
    "(call $execute (i32.const 16) (i32.const 60000) (i32.const 0) (i32.const 0) (i32.const 4096))";

/// Counts to 4 billion in a global: seconds of computing between ops (what a long data
/// migration looks like from outside). It needs about 3.2e10 fuel: a project that runs
/// it raises `[sandbox] fuel` (400 million ended within 0.2 s on a fast machine, before
/// a test could kill it mid-revision).
pub const SPIN: &str = "(loop $spin (global.set $count (i32.add (global.get $count) (i32.const 1))) (br_if $spin (i32.lt_u (global.get $count) (i32.const 4000000000))))";

/// A component whose `upgrade` executes `up`, then runs the WAT instructions `after`,
/// and whose `downgrade` executes `down`.
pub fn component(up: &str, down: &str, after: &str) -> Vec<u8> {
    statements(&[up], &[down], after)
}

/// A component whose `upgrade` executes each of `ups` in order, then runs `after`, and
/// whose `downgrade` executes each of `downs`. A failing statement traps.
pub fn statements(ups: &[&str], downs: &[&str], after: &str) -> Vec<u8> {
    let hex = |sql: &str| -> String { sql.bytes().map(|b| format!("\\{b:02x}")).collect() };
    // Statements live from offset 16 on; results at 512 KiB; the heap at 1 MiB.
    let mut data = String::new();
    let mut offset = 16usize;
    let mut calls = |sqls: &[&str]| -> String {
        let mut code = String::new();
        for sql in sqls {
            data.push_str(&format!("  (data (i32.const {offset}) \"{}\")\n", hex(sql)));
            code.push_str(&format!(
                "    (call $execute (i32.const {offset}) (i32.const {}) (i32.const 0) (i32.const 0) (i32.const 524288))\n    ;; result<u64, error>: a non-zero discriminant is an error.\n    (if (i32.load8_u (i32.const 524288)) (then (unreachable)))\n",
                sql.len()
            ));
            offset += sql.len().next_multiple_of(8);
        }
        code
    };
    let up_code = calls(ups);
    let down_code = calls(downs);
    assert!(offset < 524288, "statements too long for the WAT guest");
    let wat = format!(
        r#"(module
  (import "retort:migration/op@0.1.0" "execute" (func $execute (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 32)
  (global $heap (mut i32) (i32.const 1048576))
  (global $count (mut i32) (i32.const 0))
{data}
{ALLOCATOR}
  (func $deep (param i32) (result i32)
    (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "upgrade") (result i32)
{up_code}
    {after}
    (i32.store8 (i32.const 524544) (i32.const 0))
    (i32.const 524544))
  (func (export "downgrade") (result i32)
{down_code}
    (i32.store8 (i32.const 524544) (i32.const 0))
    (i32.const 524544))
)"#
    );
    encode(&wat)
}

/// A WAT core module targeting the revision world, made a component.
fn encode(wat: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (pkg, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("revision")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

/// A revision `id` after `down` that creates table `table` (then runs `after`) and
/// drops it on downgrade.
pub fn revision(id: &str, down: &[&str], table: &str, after: &str) -> Vec<u8> {
    let up = format!("CREATE TABLE {table} (id INTEGER)");
    let component = component(&up, &format!("DROP TABLE {table}"), after);
    packed(id, down, &component)
}

/// A revision `id` after `down` running several statements each way.
pub fn revision_of(id: &str, down: &[&str], ups: &[&str], downs: &[&str], after: &str) -> Vec<u8> {
    packed(id, down, &statements(ups, downs, after))
}

/// Like [`revision_of`], for a revision that must run outside a transaction.
pub fn outside_transaction(id: &str, down: &[&str], ups: &[&str], after: &str) -> Vec<u8> {
    let mut meta = metadata(id, down);
    meta.transactional = false;
    retort::revision::pack(&statements(ups, &[], after), &meta, Path::new("test.wasm")).unwrap()
}

fn metadata(id: &str, down: &[&str]) -> retort::revision::Metadata {
    let mut meta = retort::revision::Metadata::new(id, format!("wat revision {id}"));
    meta.down = down.iter().map(|s| s.to_string()).collect();
    meta
}

fn packed(id: &str, down: &[&str], component: &[u8]) -> Vec<u8> {
    retort::revision::pack(component, &metadata(id, down), Path::new("test.wasm")).unwrap()
}

/// One op call of a [`calls`] guest.
pub enum Call<'a> {
    /// `execute(sql, params)`, each param a text value.
    Execute(&'a str, &'a [&'a str]),
    /// `query(sql, params)`, each param a text value; one batch of rows is read (the
    /// cursor is left to the host to close).
    Query(&'a str, &'a [&'a str]),
}

/// What a [`calls`] guest does when a call returns an error.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Trap: the revision fails.
    Trap,
    /// Carry on with the next call (the guest handled the error).
    Continue,
}

/// A component whose `upgrade` makes each call in order (text parameters), trapping or
/// carrying on when one returns an error; `downgrade` does nothing.
pub fn calls(ups: &[(Call, OnError)]) -> Vec<u8> {
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("\\{b:02x}")).collect() };
    let mut data = String::new();
    let mut offset = 16usize;
    let mut place = |bytes: &[u8], data: &mut String| -> usize {
        let at = offset;
        data.push_str(&format!("  (data (i32.const {at}) \"{}\")\n", hex(bytes)));
        offset += bytes.len().next_multiple_of(8).max(8);
        at
    };
    let mut code = String::new();
    for (call, on_error) in ups {
        let (function, sql, params) = match call {
            Call::Execute(sql, params) => ("$execute", *sql, *params),
            Call::Query(sql, params) => ("$query", *sql, *params),
        };
        let sql_at = place(sql.as_bytes(), &mut data);
        // list<value>: 16 bytes each, discriminant 4 (text), then (ptr, len) at +8.
        let mut list = Vec::new();
        for p in params {
            let at = place(p.as_bytes(), &mut data);
            let mut element = [0u8; 16];
            element[0] = 4;
            element[8..12].copy_from_slice(&(at as u32).to_le_bytes());
            element[12..16].copy_from_slice(&(p.len() as u32).to_le_bytes());
            list.extend_from_slice(&element);
        }
        let list_at = if list.is_empty() {
            0
        } else {
            place(&list, &mut data)
        };
        code.push_str(&format!(
            "    (call {function} (i32.const {sql_at}) (i32.const {}) (i32.const {list_at}) (i32.const {}) (i32.const 524288))\n",
            sql.len(),
            params.len()
        ));
        if *on_error == OnError::Trap {
            code.push_str("    (if (i32.load8_u (i32.const 524288)) (then (unreachable)))\n");
        }
        if function == "$query" {
            // A cursor came back (result<own<cursor>, error>: the handle at +4): read
            // one batch, so that the query really runs.
            code.push_str(
                "    (if (i32.eqz (i32.load8_u (i32.const 524288))) (then (call $next (i32.load (i32.const 524292)) (i32.const 100) (i32.const 524800))))\n",
            );
        }
    }
    assert!(offset < 524288, "statements too long for the WAT guest");
    let wat = format!(
        r#"(module
  (import "retort:migration/op@0.1.0" "execute" (func $execute (param i32 i32 i32 i32 i32)))
  (import "retort:migration/op@0.1.0" "query" (func $query (param i32 i32 i32 i32 i32)))
  (import "retort:migration/op@0.1.0" "[method]cursor.next" (func $next (param i32 i32 i32)))
  (memory (export "memory") 32)
  (global $heap (mut i32) (i32.const 1048576))
{data}
{ALLOCATOR}
  (func (export "upgrade") (result i32)
{code}
    (i32.store8 (i32.const 524544) (i32.const 0))
    (i32.const 524544))
  (func (export "downgrade") (result i32)
    (i32.store8 (i32.const 524544) (i32.const 0))
    (i32.const 524544))
)"#
    );
    encode(&wat)
}

/// A packed revision `id` after `down` made of [`calls`].
pub fn calling(id: &str, down: &[&str], ups: &[(Call, OnError)]) -> Vec<u8> {
    packed(id, down, &calls(ups))
}
