//! What a name may be: of a case, a kernel in kernels.toml, a case's map, socket or
//! program. Names label report rows, key report pages (`report.html#6.1/update-noexist`),
//! become file and directory names (a kernel's results and console log, a case's cgroup)
//! and are printed everywhere, so they keep to characters that are safe in all of these.

/// The rule, as messages and the book (docs/src/cases/language.md) state it.
pub const RULE: &str = "letters, digits, `_`, `.`, `+` and `-`, beginning with a letter or digit, at most 64 characters";

/// The longest name: the longest in cases/ and kernels.toml has 37 characters.
pub const MAX_LENGTH: usize = 64;

/// Whether `name` keeps to [`RULE`]. Beginning with a letter or digit leaves out `.`, `..`
/// and names that read as options (`-x`).
pub fn is_valid(name: &str) -> bool {
    name.len() <= MAX_LENGTH
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_to_the_rule() {
        for name in ["6.1", "update-noexist", "s0", "m_12", "6.13.0-rc1+", "A.b"] {
            assert!(is_valid(name), "{name}");
        }
        let long = "a".repeat(MAX_LENGTH + 1);
        for name in [
            "", ".", "..", "-x", "_s", "a/b", "s{i}", "a b", "a\x1b[2J", &long,
        ] {
            assert!(!is_valid(name), "{name:?}");
        }
    }
}
