//! The limits a case must keep, in one place. Each bounds what checking, running or
//! reporting a case may cost, so that any case `harness check` accepts runs in bounded time
//! and memory (the book's Validation and limits, docs/src/cases/validation.md, has the table
//! with the figures measured at each limit).
//! The cost model (`validate/cost.rs`) computes a case's figures from the file as
//! written, before anything is expanded; the bounds on nesting, types and values apply
//! while it is read, and the file's size ([`MAX_CASE_FILE_BYTES`]) before that.

use std::time::Duration;

/// The deepest nesting of mappings and sequences a case may have. Real cases nest at most 7
/// levels (a struct value in a forked child's step); 64 leaves ample room, stays under
/// serde_yaml's own recursion limit (128), and keeps the scanners' per-token cost small.
pub const MAX_NESTING: usize = 64;

/// The most YAML nodes a case may hold once its aliases are expanded: serde builds a copy of
/// an anchor's node for each alias. A 1 MiB file holds at most about 500,000 nodes (`1,`
/// each), so this leaves room for aliases while keeping what serde builds to about 100 MB.
pub const MAX_YAML_NODES: u64 = 1_000_000;

/// The largest key or value type a case may declare, in bytes. The kernel refuses sk storage
/// values above just under 64 KiB (`BPF_LOCAL_STORAGE_MAX_VALUE_SIZE`), so larger types only
/// serve to check that refusal, which 1 MiB leaves ample room for (`u8[65536]` is a real
/// case). Validation builds values of the type (an update's bytes, an expected value), so the
/// bound is what keeps a short case from asking for gigabytes. `value_size` is not a type: it
/// goes to BPF_MAP_CREATE as given, up to u32, and nothing is allocated from it here.
pub const MAX_TYPE_SIZE: u32 = 1 << 20;

/// The most bytes of values one case may build while it is validated: each update's bytes
/// and each expected value count at their type's size. The largest case in cases/ builds
/// about 84 KB; 1 MiB is 16 values of the kernel's largest (just under 64 KiB). Types are
/// bounded by [`MAX_TYPE_SIZE`], but without this a 1 MiB file of one-line updates of a
/// 1 MiB type would still build tens of gigabytes. An expected value is JSON, about 32 bytes
/// per element, so this also keeps those under about 32 MB.
pub const MAX_CASE_VALUE_BYTES: u32 = 1 << 20;

/// The most bytes of values a case's steps may read, each lookup at its map's value size
/// and each diag at its maps': each is decoded into the results (a JSON number per element,
/// up to 32 bytes each in memory), which nothing else bounds. A repeat of 100,000 lookups
/// of 40-byte values fits; 100,000 lookups of a 60 KB value would read 6 GB.
pub const MAX_READ_BYTES: u64 = 4 << 20;

/// The most copies the repeated declarations of one case add up to: maps and sockets are
/// kernel objects, and a thousand sockets already need a larger `RLIMIT_NOFILE`.
pub const MAX_DECLARED_COPIES: u64 = 10_000;

/// The most steps a case's `steps` run, each repeat's steps as often as it repeats them
/// (a fork's own steps included): each is a row of the results and of every report. Enough
/// for the kernel selftest's stress scenarios and sweeps of a value's size byte by byte;
/// at this limit checking, running and reporting each take about a second.
pub const MAX_STEPS: u64 = 100_000;

/// The most map operations all the threads of a case run, repeats multiplied out: each is
/// prepared (its key and value buffers) before its thread starts.
pub const MAX_THREAD_OPERATIONS: u64 = 100_000;

/// The most threads one `threads` step starts at once; the machines that run cases have a
/// few cores.
pub const MAX_THREADS_AT_ONCE: u64 = 64;

/// The most steps of the kinds that take milliseconds each, repeats multiplied out: `fork`
/// (a process), `attach` and `detach` (a program's link), `threads` (up to 64 threads
/// started), `diag` (a netlink dump) and `iterate` (an iterator program). About 3 ms each at
/// worst, so a few seconds at this limit.
pub const MAX_SLOW_STEPS: u64 = 1_000;

/// The most bytes all of a case's strings may come to once repeats and repeated declarations
/// are expanded: validation builds every copy, and the results and reports repeat each
/// step's label and reason. 16 MiB is 160 bytes for each of [`MAX_STEPS`] steps; the
/// largest case in cases/ has 40 KB.
pub const MAX_STRING_BYTES: u64 = 16 << 20;

/// What one `{…}` counts towards [`MAX_STRING_BYTES`], or its own length when that is
/// longer: the longest integer it can become (`-9223372036854775808`).
pub const EXPRESSION_EXPANDS_TO: u64 = 20;

/// The longest `{…}` expression, braces included. Real ones are a few bytes (`{t*64+i}`),
/// and each is evaluated once per copy of its string.
pub const MAX_EXPRESSION_BYTES: u64 = 64;

/// The most time the `within` waits of a case's steps may add up to, repeats multiplied
/// out: a step whose expectation never holds waits all of its `within`, and a kernel's VM
/// has 5 minutes for all the cases by default.
pub const MAX_WITHIN_TOTAL: Duration = Duration::from_secs(30);

/// The most bytes a case's `send` and `recv` steps may move in all, repeats multiplied out:
/// each builds a buffer of its size. Socket buffers hold a few MiB at most.
pub const MAX_TRANSFER_BYTES: u64 = 64 << 20;

/// `RLIMIT_NOFILE`'s hard limit for a kernel's first process (`INR_OPEN_MAX`), which the
/// guest's executor inherits; a case's soft limit above it is refused at run time (EINVAL),
/// so validation refuses it first.
pub const MAX_NOFILE: u64 = 4096;

/// The largest case file read, in bytes. The largest case in cases/ is under 3 KB; 1 MiB is
/// hundreds of times that, and bounds what parsing and validation may cost (a 50 MB file
/// took gigabytes). A larger file, and one that is no regular file (a FIFO, a link to
/// /dev/zero), is refused before it is read.
pub const MAX_CASE_FILE_BYTES: u64 = 1 << 20;

/// The longest `within` a step may wait for its expectation: what it waits for (storages
/// freed after an RCU grace period) takes milliseconds, and the case's whole run is bounded
/// by [`crate::exec::CASE_TIMEOUT`].
pub const MAX_WITHIN: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    /// `100,000`.
    fn thousands(n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    }

    fn mib(bytes: u64) -> String {
        format!("{} MiB", bytes >> 20)
    }

    /// The book's limits table (docs/src/cases/validation.md) states every limit with the
    /// value it has here.
    #[test]
    fn the_book_states_every_limit() {
        let page = include_str!("../../../docs/src/cases/validation.md");
        let rows = [
            ("case file", mib(MAX_CASE_FILE_BYTES)),
            ("nesting", format!("{MAX_NESTING} levels")),
            ("YAML nodes, aliases expanded", thousands(MAX_YAML_NODES)),
            ("type", mib(MAX_TYPE_SIZE.into())),
            ("values built", mib(MAX_CASE_VALUE_BYTES.into())),
            ("values read", mib(MAX_READ_BYTES)),
            ("declared copies", thousands(MAX_DECLARED_COPIES)),
            ("steps", thousands(MAX_STEPS)),
            ("strings", mib(MAX_STRING_BYTES)),
            ("thread operations", thousands(MAX_THREAD_OPERATIONS)),
            ("threads at once", thousands(MAX_THREADS_AT_ONCE)),
            ("slow steps", thousands(MAX_SLOW_STEPS)),
            ("`within` of a step", format!("{} s", MAX_WITHIN.as_secs())),
            (
                "`within`, added up",
                format!("{} s", MAX_WITHIN_TOTAL.as_secs()),
            ),
            ("`rlimits.nofile`", thousands(MAX_NOFILE)),
            ("bytes sent and received", mib(MAX_TRANSFER_BYTES)),
            ("expression", format!("{MAX_EXPRESSION_BYTES} bytes")),
        ];
        for (limit, value) in rows {
            let row = format!("\n| {limit} | {value} |");
            assert!(
                page.contains(&row),
                "docs/src/cases/validation.md's limits table lacks `{row}`"
            );
        }
        assert!(page.contains(&format!("a `{{…}}` counts {EXPRESSION_EXPANDS_TO} bytes")));
    }
}
