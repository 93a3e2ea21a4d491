//! Text from outside the harness (a case, a results file, kernels.toml, a kernel's console)
//! made safe to print: a control character in it could move the cursor, rewrite lines,
//! retitle the terminal or set its clipboard (escape sequences), and bidirectional
//! formatting characters could make text read in another order than it is.

use std::borrow::Cow;

/// `text` with every control character (C0 but the tab, DEL, C1) and bidirectional
/// formatting character written as an escape: `\x1b`, `\x0a` (a line break too: callers
/// that print several lines escape each), `\u{202e}`. Text without any is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !needs_escape(c) => escaped.push(c),
            c if c.is_ascii() => escaped.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(escaped)
}

/// Whether `text` holds a character [`escape`] would escape.
pub fn has_control(text: &str) -> bool {
    text.chars().any(needs_escape)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(escape("6.1 → ok\té"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\x1b]0;pwned\x07b\r\n\u{9b}\u{202e}"),
            "a\\x1b]0;pwned\\x07b\\x0d\\x0a\\u{9b}\\u{202e}"
        );
        assert!(has_control("\x7f") && !has_control("plain"));
    }
}
