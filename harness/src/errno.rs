//! Errno names as cases write them and reports print them.
//!
//! `ENOTSUPP` (524) is kernel-internal and absent from libc, yet the bpf(2) syscall leaks it
//! for sk storage iteration, so it is named here explicitly.

/// The errnos a case may name. Keep in the kernel's numbering.
const NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("E2BIG", libc::E2BIG),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENODEV", libc::ENODEV),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("ENOSPC", libc::ENOSPC),
    ("ERANGE", libc::ERANGE),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ENOTCONN", libc::ENOTCONN),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("ENOTSUPP", ENOTSUPP),
];

/// Linux's kernel-internal "operation not supported" (include/linux/errno.h).
pub const ENOTSUPP: i32 = 524;

pub fn code(name: &str) -> Option<i32> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// The name of an errno, or `E<number>` for one outside the table.
pub fn name(code: i32) -> String {
    NAMES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| format!("E{code}"), |(n, _)| (*n).to_string())
}

pub fn known_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (n, c) in NAMES {
            assert_eq!(code(n), Some(*c));
            assert_eq!(name(*c), *n);
        }
        assert_eq!(code("ENOTSUPP"), Some(524));
        assert_eq!(name(9999), "E9999");
        assert_eq!(code("EWHATEVER"), None);
    }
}
