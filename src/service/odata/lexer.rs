//! The lexer: filter text to tokens with their character positions, and the helpers that quote
//! and clip text in error messages.

use std::borrow::Cow;

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Tok {
    LParen,
    RParen,
    Comma,
    /// Unescaped content of a string literal.
    Str(Box<str>),
    Int(i64),
    /// Identifier, keyword or function name; its text is `src[start..end]`.
    Word,
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Char offset, for error positions.
    pub(super) pos: usize,
    /// Byte range in the source, for excerpts.
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The source's chars with their byte offsets.
type Chars<'s> = std::iter::Peekable<std::str::CharIndices<'s>>;

pub(super) fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let mut toks = Vec::new();
    let mut chars = src.char_indices().peekable();
    // Char offset of the next char `chars` yields.
    let mut pos = 0;
    while let Some((start, c)) = chars.next() {
        let here = pos;
        pos += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '\'' => lex_string(&mut chars, here, &mut pos)?,
            '0'..='9' | '+' | '-' => lex_number(src, &mut chars, (start, c), here, &mut pos)?,
            c if c.is_alphabetic() || c == '_' => {
                while chars
                    .next_if(|&(_, d)| d.is_alphanumeric() || d == '_')
                    .is_some()
                {
                    pos += 1;
                }
                Tok::Word
            }
            other => return Err(unexpected_char(here, other)),
        };
        let end = chars.peek().map_or(src.len(), |&(i, _)| i);
        toks.push(Token {
            tok,
            pos: here,
            start,
            end,
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos,
        start: src.len(),
        end: src.len(),
    });
    Ok(toks)
}

/// A string literal after its opening quote; `''` is a quote inside it.
fn lex_string(chars: &mut Chars<'_>, here: usize, pos: &mut usize) -> Result<Tok, FilterError> {
    let mut value = String::new();
    loop {
        match chars.next() {
            None => {
                return Err(FilterError::new(
                    here,
                    "unterminated string literal: add the closing ' (write '' for a \
                     quote inside a string)",
                ));
            }
            Some((_, '\'')) => {
                *pos += 1;
                if chars.next_if(|&(_, c)| c == '\'').is_some() {
                    *pos += 1;
                    value.push('\'');
                } else {
                    break;
                }
            }
            Some((_, ch)) => {
                *pos += 1;
                value.push(ch);
            }
        }
    }
    Ok(Tok::Str(value.into_boxed_str()))
}

/// An integer literal starting with `c` (a digit or a sign) at byte `start`.
fn lex_number(
    src: &str,
    chars: &mut Chars<'_>,
    (start, c): (usize, char),
    here: usize,
    pos: &mut usize,
) -> Result<Tok, FilterError> {
    if !c.is_ascii_digit() && !chars.peek().is_some_and(|&(_, d)| d.is_ascii_digit()) {
        return Err(unexpected_char(here, c));
    }
    while chars.next_if(|&(_, d)| d.is_ascii_digit()).is_some() {
        *pos += 1;
    }
    let end = chars.peek().map_or(src.len(), |&(i, _)| i);
    let text = &src[start..end];
    if let Some(&(_, d)) = chars.peek()
        && (d == '.' || d == '_' || d.is_alphanumeric())
    {
        return Err(FilterError::new(
            here,
            format!(
                "invalid number '{text}{d}...': only integer literals such as 42 or \
                 -1 are supported"
            ),
        ));
    }
    text.parse::<i64>().map(Tok::Int).map_err(|_| {
        FilterError::new(
            here,
            format!(
                "integer literal '{}' is out of range: integers are 64-bit signed",
                clip(text)
            ),
        )
    })
}

pub(super) fn unexpected_char(position: usize, c: char) -> FilterError {
    let hint = match c {
        '"' => "; string literals use single quotes, e.g. 'alice'",
        '=' | '!' | '<' | '>' => "; comparison operators are words: eq, ne, gt, ge, lt, le",
        '&' | '|' => "; logical operators are words: and, or, not",
        '+' | '-' => "; a sign must be directly followed by digits, e.g. -1",
        _ => "",
    };
    FilterError::new(
        position,
        format!("unexpected character '{}'{hint}", printable(c)),
    )
}

/// `c` as typed, or escaped when it would not show in a message.
pub(super) fn printable(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        c.escape_debug().to_string()
    } else {
        c.to_string()
    }
}

/// `s` clipped and quoted for a message: in single quotes like the rest of the message, or in
/// double quotes when it holds a single quote itself.
pub(super) fn quoted(s: &str) -> String {
    let s = clip(s);
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

/// `s`, shortened to [`MAX_EXCERPT`] chars for quoting in a message.
pub(super) fn clip(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= MAX_EXCERPT {
        Cow::Borrowed(s)
    } else {
        let head: String = s.chars().take(MAX_EXCERPT - 3).collect();
        Cow::Owned(format!("{head}..."))
    }
}
