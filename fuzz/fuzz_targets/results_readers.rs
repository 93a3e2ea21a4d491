//! Any text given as a results file (`report show`, `report merge`, `diff`) ends in results
//! every view renders, or in an error naming the file and field: no panic, no abort, no
//! runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        harness::report::read_and_show_every_way(text);
    }
});
