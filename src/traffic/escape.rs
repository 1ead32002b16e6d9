//! The one escaping rule for text a peer controls on its way to a terminal (the pretty live
//! log on stdout, messages on stderr): a terminal acts on control characters, so a namespace,
//! an event name or a token's `sub` holding `ESC ] 52 ;…` could write the clipboard, retitle
//! the window or clear the screen, and a bidi override could make a line read differently
//! from what it says. Every C0 control, DEL, C1 control and invisible format character
//! (bidi embeddings, overrides and isolates, zero-width characters, the byte order mark, tag
//! characters) becomes a visible escape: `\e` for ESC, `\n`, `\r`, `\t`, `\xHH` for the other
//! C0 controls and DEL, `\u{hex}` for the rest. Everything else, backslashes included, is
//! shown as it is, so ordinary text reads unchanged.
//!
//! [`pretty`](super::pretty) wraps every string field in [`Term`]; `cli` runs its stderr
//! messages through [`terminal_lines`]. The JSON log needs none of this: JSON escapes controls.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// Printable ASCII only (space to `~`): nothing in it needs escaping anywhere. Checked a byte at a
/// time, far quicker than a search by character, and the usual case for ids, names and packets.
pub(super) fn printable_ascii(text: &[u8]) -> bool {
    text.iter().all(|b| (b' '..=b'~').contains(b))
}

/// Writes `text` with every character a terminal could act on replaced by a visible escape.
fn write_escaped(out: &mut impl Write, text: &str) -> fmt::Result {
    if printable_ascii(text.as_bytes()) {
        return out.write_str(text);
    }
    let mut rest = text;
    while let Some(at) = rest.find(unsafe_char) {
        out.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\x1b' => out.write_str("\\e")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32)?,
            c => write!(out, "\\u{{{:x}}}", c as u32)?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `text` as it may be shown on a terminal; borrowed when nothing needed escaping.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if printable_ascii(text.as_bytes()) || !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let _ = write_escaped(&mut out, text);
    Cow::Owned(out)
}

/// A message of several lines for stderr: each line escaped with [`terminal`], the line breaks
/// kept (a message composed of our own lines with a peer's string inside).
pub fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string formatted with [`terminal`]'s escapes, without an intermediate copy.
#[derive(Debug, Clone, Copy)]
pub struct Term<'a>(pub &'a str);

impl fmt::Display for Term<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            terminal("\x1b]52;c;aGk=\x07\x1b[2J\r\n\t\x00\x7f"),
            r"\e]52;c;aGk=\x07\e[2J\r\n\t\x00\x7f"
        );
        assert_eq!(terminal("a\u{9b}31mb"), r"a\u{9b}31mb");
        assert_eq!(
            terminal("\u{202e}exe.txt\u{200b}\u{2066}\u{feff}\u{e0041}"),
            r"\u{202e}exe.txt\u{200b}\u{2066}\u{feff}\u{e0041}"
        );
        assert_eq!(Term("x\x1by").to_string(), r"x\ey");
        assert_eq!(terminal_lines("a\x07\nb\rc"), "a\\x07\nb\\rc");
    }

    #[test]
    fn ordinary_text_is_untouched_and_borrowed() {
        for text in ["/chat", "événement 💬", r"C:\path\n", "a b\u{a0}c"] {
            assert!(matches!(terminal(text), Cow::Borrowed(t) if t == text));
        }
    }
}
