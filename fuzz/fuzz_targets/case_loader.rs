//! Any bytes given to the case loader end in a case or in located errors: no panic, no
//! abort, no runaway allocation (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = harness::case::parse(Path::new("fuzz.yaml"), text);
    }
});
