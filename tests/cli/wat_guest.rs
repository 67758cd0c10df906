//! Revisions written by hand in WAT: a core module that calls `op.execute` through the
//! canonical ABI, made a component by wit-component, as any toolchain would.

use std::path::Path;

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

/// A component whose `upgrade` executes `up`, then runs the WAT instructions `after`,
/// and whose `downgrade` executes `down`.
pub fn component(up: &str, down: &str, after: &str) -> Vec<u8> {
    let hex = |sql: &str| -> String { sql.bytes().map(|b| format!("\\{b:02x}")).collect() };
    let wat = format!(
        r#"(module
  (import "retort:migration/op@0.1.0" "execute" (func $execute (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 16) "{up_data}")
  (data (i32.const 2048) "{down_data}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    ;; A bump allocator: align up, hand out, never free.
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (local.get $ptr))
  (func $deep (param i32) (result i32)
    (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "upgrade") (result i32)
    (call $execute (i32.const 16) (i32.const {len}) (i32.const 0) (i32.const 0) (i32.const 4096))
    ;; result<u64, error>: a non-zero discriminant is an error.
    (if (i32.load8_u (i32.const 4096)) (then (unreachable)))
    {after}
    (i32.store8 (i32.const 6144) (i32.const 0))
    (i32.const 6144))
  (func (export "downgrade") (result i32)
    (call $execute (i32.const 2048) (i32.const {down_len}) (i32.const 0) (i32.const 0) (i32.const 4096))
    (if (i32.load8_u (i32.const 4096)) (then (unreachable)))
    (i32.store8 (i32.const 6144) (i32.const 0))
    (i32.const 6144))
)"#,
        len = up.len(),
        down_len = down.len(),
        up_data = hex(up),
        down_data = hex(down),
    );
    let mut module = wat::parse_str(&wat).unwrap();
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
    let mut meta = retort::revision::Metadata::new(id, format!("wat revision {id}"));
    meta.down = down.iter().map(|s| s.to_string()).collect();
    retort::revision::pack(&component, &meta, Path::new("test.wasm")).unwrap()
}
