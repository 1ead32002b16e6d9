//! "Copy as curl": a webhook call as one shell command that sends the same request again
//! (same method, URL, headers and body, byte for byte), for the `curl` field of
//! `GET /_emu/entries/<seq>` ([`super::timeline`]).
//!
//! The text is pasted into a terminal, and a namespace, an event name or a body is a peer's
//! text: pasted raw, an ESC, a Ctrl-U or a CR is acted on by the shell's line editor before
//! any quoting applies (a Ctrl-U erases the `curl` typed so far, a CR runs what follows). So
//! the command is one line of printable ASCII and nothing else, valid in bash, zsh and fish
//! alike:
//!
//! - a value of printable ASCII is single-quoted; a `'` or `\` inside is written outside the
//!   quotes as `\'` or `\\` (fish reads those two escapes even inside single quotes);
//! - any other header value or URL becomes `"$(printf '…')"`, where every byte that is not a
//!   plain letter, digit or harmless sign is an octal escape `\ooo` (a header value cannot end
//!   in a newline, so the command substitution loses nothing);
//! - any other body, or one starting with `@` (which curl would read as a file name), is
//!   piped in: `printf '…' | curl … --data-binary @-`.
//!
//! curl's own `Accept` and `User-Agent` are switched off unless the call had them, so the
//! receiver sees exactly the headers the emulator sent.

use std::fmt::Write;

use http::HeaderMap;

use crate::upstream::cloudevents::WebhookRequest;

/// A shell command that sends `request` again: same headers (so the same `ce-signature`,
/// valid while the access key is the same) and the same body.
pub fn command(request: &WebhookRequest) -> String {
    let mut out = String::new();
    let piped = !request.body.is_empty() && !plain(&request.body);
    if piped {
        out.push_str("printf ");
        out.push_str(&printf_format(&request.body));
        out.push_str(" | ");
    }
    out.push_str("curl -sS -X ");
    out.push_str(&word(request.method.as_str().as_bytes()));
    out.push(' ');
    out.push_str(&word(request.url.as_bytes()));
    for (name, value) in &request.headers {
        // `Name:` would remove the header; `Name;` sends it empty.
        let separator: &[u8] = if value.is_empty() { b";" } else { b": " };
        let header = [name.as_str().as_bytes(), separator, value.as_bytes()].concat();
        out.push_str(" -H ");
        out.push_str(&word(&header));
    }
    for default in unsent_defaults(&request.headers) {
        out.push_str(" -H ");
        out.push_str(&word(default.as_bytes()));
    }
    if piped {
        out.push_str(" --data-binary @-");
    } else if !request.body.is_empty() {
        out.push_str(" --data-binary ");
        out.push_str(&word(&request.body));
    }
    out
}

/// The headers curl adds by itself that the call did not have, each as `Name:` (which tells
/// curl to leave it out).
fn unsent_defaults(headers: &HeaderMap) -> impl Iterator<Item = &'static str> + '_ {
    [
        (http::header::ACCEPT, "Accept:"),
        (http::header::USER_AGENT, "User-Agent:"),
    ]
    .into_iter()
    .filter(|(name, _)| !headers.contains_key(name))
    .map(|(_, off)| off)
}

/// Whether `bytes` can be one single-quoted word: printable ASCII, not read by curl as `@file`.
fn plain(bytes: &[u8]) -> bool {
    bytes.first() != Some(&b'@') && bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// One shell word that is exactly `bytes` in bash, zsh and fish.
fn word(bytes: &[u8]) -> String {
    if !plain(bytes) {
        return format!("\"$(printf {})\"", printf_format(bytes));
    }
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('\'');
    for &b in bytes {
        match b {
            b'\'' => out.push_str(r"'\''"),
            b'\\' => out.push_str(r"'\\'"),
            b => out.push(char::from(b)),
        }
    }
    out.push('\'');
    out
}

/// A single-quoted `printf` format that prints exactly `bytes`: letters, digits and signs
/// no shell treats specially inside quotes stay, `%` is `%%`, every other byte is `\ooo`.
fn printf_format(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + 2);
    out.push('\'');
    for &b in bytes {
        match b {
            b'%' => out.push_str("%%"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(char::from(b)),
            b' ' | b',' | b'.' | b'/' | b':' | b';' | b'=' | b'_' | b'+' | b'@' | b'#' | b'['
            | b']' | b'{' | b'}' | b'(' | b')' | b'&' | b'|' | b'<' | b'>' | b'~' | b'^' | b'*'
            | b'?' => out.push(char::from(b)),
            // A leading `-` would be read as an option of printf.
            b'-' if out.len() > 1 => out.push('-'),
            b => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_values_are_single_quoted() {
        assert_eq!(word(b"a b"), "'a b'");
        assert_eq!(word(br"it's a\b"), r"'it'\''s a'\\'b'");
        assert_eq!(word(b"@file"), r#""$(printf '@file')""#);
    }

    #[test]
    fn other_values_are_printf_escapes() {
        assert_eq!(
            word("x\u{1b}\u{15}\r\n'\"$`!%-\u{202e}".as_bytes()),
            r#""$(printf 'x\033\025\015\012\047\042\044\140\041%%-\342\200\256')""#
        );
        assert_eq!(printf_format(b"-n"), r"'\055n'");
    }

    #[test]
    fn the_command_is_one_line_of_printable_ascii() {
        let request = WebhookRequest {
            method: http::Method::POST,
            url: "http://localhost:7071/api/x".into(),
            uri: "http://localhost:7071/api/x".parse().unwrap(),
            headers: HeaderMap::from_iter([(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            )]),
            body: bytes::Bytes::from_static(b"42/a\x15\rb,[\"x\"]"),
        };
        let text = command(&request);
        assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text}");
        assert!(text.starts_with(r"printf '42/a\025\015b,[\042x\042]' | curl -sS -X 'POST'"));
        assert!(text.ends_with("-H 'Accept:' -H 'User-Agent:' --data-binary @-"));
    }
}
