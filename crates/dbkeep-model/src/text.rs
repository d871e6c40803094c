//! Text for people: text from elsewhere (a database server's error, a login form's user name)
//! made safe to print, its control characters written as escapes so they can neither forge a
//! log line nor send commands to a terminal; and sizes written as a setting takes them.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) written as an escape such as `\n`,
/// `\x1b` or `\u{9b}`; `keep_newlines` leaves line breaks and tabs as they are, for messages
/// meant to span lines.
pub fn escape_controls(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_newlines && (c == '\n' || c == '\t');
    if !text.chars().any(|c| c.is_control() && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if kept(c) || !c.is_control() => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `bytes` in the largest binary unit that divides it, else in bytes: `256 MiB`.
pub fn exact_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape_controls("plain text", false), "plain text");
        assert_eq!(
            escape_controls("a\nINFO logged in user=admin\r\x1b[31m\u{9b}2J\x7f", false),
            "a\\nINFO logged in user=admin\\r\\x1b[31m\\u{9b}2J\\x7f"
        );
        assert_eq!(
            escape_controls("line 1\n\tline 2\x1b]0;x\x07", true),
            "line 1\n\tline 2\\x1b]0;x\\x07"
        );
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(exact_size(256 << 20), "256 MiB");
        assert_eq!(exact_size(1 << 30), "1 GiB");
        assert_eq!(exact_size(3 << 10), "3 KiB");
        assert_eq!(exact_size(1536), "1536 bytes");
        assert_eq!(exact_size(10), "10 bytes");
    }
}
