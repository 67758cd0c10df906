//! The SQL classifier must decide on any text, for every dialect, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use retort::dialect::Dialect;
use retort::policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let policy = Policy::default();
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let _ = policy.check(dialect, sql);
        }
    }
});
