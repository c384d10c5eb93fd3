//! Text from a server that msh prints itself (an error's reason, a signal name) made safe
//! for a terminal: a control character (C0 but newline and tab, DEL, C1) could move the
//! cursor, retitle the window or hide what came before (OpenSSH CVE-2019-6110/6111 class).
//! Each is shown as an escape instead (`\x1b`, `\u{9b}`), as OpenSSH's strnvis does in
//! spirit.

use std::borrow::Cow;

/// `text` with every control character but `\n` and `\t` escaped.
pub(super) fn for_terminal(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn control_sequences_are_escaped() {
        assert_eq!(for_terminal("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            for_terminal("a\u{1b}]0;pwned\u{7}b\rc\u{9b}2J\u{7f}"),
            "a\\x1b]0;pwned\\x07b\\x0dc\\u{9b}2J\\x7f"
        );
        assert_eq!(for_terminal("naïve ü"), "naïve ü");
    }
}
