//! Revision components made in code, for tests and examples: no guest toolchain needed.

use std::path::Path;

/// A revision component for examples and tests: it executes `up` on upgrade and `down`
/// on downgrade (plain statements, through `op.execute`), with `id` and `down_revisions`
/// as its metadata. Written in WAT and made a component by wit-component, as any
/// toolchain would.
pub fn execute_component(id: &str, down_revisions: &[&str], up: &str, down: &str) -> Vec<u8> {
    let component = statement_component(up, down);
    let mut meta = crate::revision::Metadata::new(id, format!("example {id}"));
    meta.down = down_revisions.iter().map(|d| d.to_string()).collect();
    crate::revision::pack(&component, &meta, Path::new(id)).expect("the example packs")
}

/// The component of [`execute_component`] without Retort's metadata, as a toolchain
/// leaves it: `retort pack` makes it a revision.
pub fn statement_component(up: &str, down: &str) -> Vec<u8> {
    let hex = |sql: &str| -> String { sql.bytes().map(|b| format!("\\{b:02x}")).collect() };
    let call = |offset: usize, len: usize| {
        format!(
            "(call $execute (i32.const {offset}) (i32.const {len}) (i32.const 0) (i32.const 0) (i32.const 65536))
    (if (i32.load8_u (i32.const 65536)) (then (unreachable)))"
        )
    };
    let down_at = 16 + up.len().next_multiple_of(8);
    let wat = format!(
        r#"(module
  (import "retort:migration/op@0.1.0" "execute" (func $execute (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 98304))
  (data (i32.const 16) "{}")
  (data (i32.const {down_at}) "{}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (local.get $ptr))
  (func (export "upgrade") (result i32)
    {}
    (i32.store8 (i32.const 65600) (i32.const 0))
    (i32.const 65600))
  (func (export "downgrade") (result i32)
    {}
    (i32.store8 (i32.const 65600) (i32.const 0))
    (i32.const 65600))
)"#,
        hex(up),
        hex(down),
        call(16, up.len()),
        call(down_at, down.len()),
    );
    let mut module = wat::parse_str(&wat).expect("the example's WAT parses");
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str("migration.wit", crate::build::WIT)
        .expect("the host's WIT parses");
    let world = resolve
        .select_world(&[package], Some("revision"))
        .expect("the WIT has the revision world");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("the WIT embeds");
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut e| e.encode())
        .expect("the example encodes as a component")
}
