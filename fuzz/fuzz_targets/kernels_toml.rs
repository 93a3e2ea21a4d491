//! Any text given as kernels.toml ends in a validated file or in located diagnostics: no
//! panic, no abort, no runaway allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = harness::kernels::KernelsFile::parse(text, Path::new("/nonexistent/kernels.toml"));
    }
});
