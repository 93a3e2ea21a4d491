//! Errno names as cases write them and reports print them: every errno Linux defines, by
//! nix's table, plus `ENOTSUPP` (524), which is kernel-internal and absent from libc yet
//! leaks out of bpf(2) for sk storage iteration and batch commands.

use std::sync::LazyLock;

use nix::errno::Errno;

/// Linux's kernel-internal "operation not supported" (include/linux/errno.h).
pub const ENOTSUPP: i32 = 524;

/// Linux's errno numbers run from EPERM (1) to EHWPOISON (133).
const LAST_ERRNO: i32 = 133;

/// Every errno with its name, in the kernel's numbering (an alias such as EWOULDBLOCK
/// appears under the name nix gives its number, EAGAIN).
static NAMES: LazyLock<Vec<(String, i32)>> = LazyLock::new(|| {
    (1..=LAST_ERRNO)
        .filter_map(|code| match Errno::from_raw(code) {
            Errno::UnknownErrno => None,
            errno => Some((format!("{errno:?}"), code)),
        })
        .chain(std::iter::once(("ENOTSUPP".to_string(), ENOTSUPP)))
        .collect()
});

pub fn code(name: &str) -> Option<i32> {
    NAMES.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
}

/// The name of an errno, or `E<number>` for one no table names.
pub fn name(code: i32) -> String {
    NAMES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("E{code}"), |(n, _)| n.clone())
}

/// A helper's return value: `0`, or `-ENOENT (-2)`.
pub fn describe_return(value: i64) -> String {
    if value < 0 {
        format!("-{} ({value})", name(-value as i32))
    } else {
        value.to_string()
    }
}

pub fn known_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (n, c) in NAMES.iter() {
            assert_eq!(code(n), Some(*c));
            assert_eq!(name(*c), *n);
        }
        for (n, c) in [
            ("EPERM", libc::EPERM),
            ("EPIPE", libc::EPIPE),
            ("ECONNRESET", libc::ECONNRESET),
            ("EBADFD", libc::EBADFD),
            ("EAGAIN", libc::EAGAIN),
            ("EOPNOTSUPP", libc::EOPNOTSUPP),
            ("EHWPOISON", libc::EHWPOISON),
            ("ENOTSUPP", 524),
        ] {
            assert_eq!(code(n), Some(c), "{n}");
        }
        assert_eq!(name(9999), "E9999");
        assert_eq!(code("EWHATEVER"), None);
    }
}
