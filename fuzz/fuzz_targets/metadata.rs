//! The metadata reader must turn any bytes into metadata or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.wasm");
    let _ = retort::revision::read_metadata(data, path);
    let _ = retort::revision::interface(data, path);
});
