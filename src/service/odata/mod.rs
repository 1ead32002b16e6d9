//! OData `filter` expressions of the Web PubSub data-plane REST API (docs/protocol.md §9): a parser that turns
//! the text of a `filter` query parameter (or the `filter` field of an `:addToGroups` /
//! `:removeFromGroups` body) into a type-checked [`Filter`], and an evaluator that decides, per
//! connection, whether the connection is selected.
//!
//! Neighbours: `rest` parses a filter once per call and turns a [`FilterError`] into a 400
//! `Error.BadRequest`; the service core calls [`Filter::matches`] for every candidate connection
//! through the [`FilterTarget`] seam, so this module knows nothing about hubs, sockets or locks.
//! [`Filter::group_literals`] lists the groups named by `'x' in groups` so a lint can warn about
//! groups that do not exist.
//!
//! Decisions where docs/protocol.md §9 and the Azure sources leave room:
//!
//! - **Spelling.** The identifiers `userId`, `connectionId` and `groups` are case-insensitive (docs/protocol.md §0 D3).
//!   Keywords, operators and function names (`and`, `eq`, `in`, `true`, `null`, `tolower`, ...)
//!   are lowercase only, as in OData and Microsoft.OData's default parser; `AND` or `ToLower` is
//!   rejected with a message naming the lowercase spelling.
//! - **Precedence**, high to low: primary (literal, identifier, call, `( )`), `in`, `not`,
//!   comparisons (`eq ne gt ge lt le`), `and`, `or`. `A or B and not C` is `A or (B and (not C))`,
//!   as the Functions binding's generated filters need (docs/protocol.md §7.4). `in` binds tighter than `not`
//!   as in Microsoft.OData, so `not 'g' in groups` is `not ('g' in groups)`; `not` binds tighter
//!   than comparisons, so `not length(userId) gt 5` is a type error (docs/protocol.md §0 D3). Comparisons do not chain
//!   (`a eq b eq c` is rejected; write `(a eq b) eq c`), which is stricter than OData.
//! - **Types** are checked at parse time: bool, int (64-bit), string, the `null` literal, and the
//!   collection `groups`, which is only allowed as `x in groups` and `length(groups)`. `eq`/`ne`
//!   need both sides of the same type, or one side `null`; `gt ge lt le` need two ints or two
//!   strings (or a `null`, which makes them false); bools are not ordered. The whole filter must be
//!   a bool. Strings compare ordinally and case-sensitively, by Unicode scalar value (UTF-8 byte
//!   order, equal to .NET's UTF-16 ordinal order except for astral characters against
//!   U+E000..U+FFFF).
//! - **Null.** `userId` is null for anonymous connections. `null eq null` holds; ordering
//!   comparisons with a null are false; the value functions (`tolower`, `toupper`, `trim`,
//!   `substring`, `concat`, `indexof`, `length`) of a null argument yield null; the predicates
//!   (`startswith`, `endswith`, `contains`) of a null are false; `null in groups` is false; a list
//!   `in (...)` uses `eq`, so a `null` item matches a null value. (docs/protocol.md §0 A3's emulator returns −1 from
//!   `indexof` and skips nulls in `concat`; we follow docs/protocol.md §9's "functions of null yield null".)
//! - **Text positions** count Unicode scalar values (`char`s), not UTF-16 code units: error
//!   positions, `length`, `indexof` and `substring` agree with Azure for text in the Basic
//!   Multilingual Plane. `substring` with a start outside `0..=length` or a count running past the
//!   end yields null, as docs/protocol.md §0 A3's emulator does.
//! - **Limits** ([`MAX_FILTER_LEN`], [`MAX_DEPTH`], [`MAX_CLAUSES`]) bound the parser's work and
//!   recursion, so any input (including fuzzed input) is rejected cleanly instead of overflowing
//!   the stack. docs/protocol.md §0 A3's `protocol` identifier is not supported: Socket.IO connections have none.
//!
//! Evaluation borrows: identifiers and literals are `Cow::Borrowed`, so the common filters
//! (`'g' in groups`, `userId eq 'u'`, their `and`/`or`/`not` combinations) allocate nothing per
//! connection; only `tolower`/`toupper` that change ASCII case or meet non-ASCII text, `concat` of
//! two non-empty strings, and `length(groups)` (through [`FilterTarget::groups`]) allocate.

use std::borrow::Cow;
use std::fmt;

mod ast;
mod eval;
mod lexer;
mod parser;
mod print;
#[cfg(test)]
mod tests;

use ast::*;
use eval::*;
use lexer::*;
use parser::*;

/// Longest filter text accepted, in bytes. Longer filters are rejected before lexing.
pub const MAX_FILTER_LEN: usize = 8 * 1024;

/// Deepest nesting accepted: each `(`, `not`, function argument list and `in (...)` list opens a
/// level. Bounds the parser's, evaluator's and `Display`'s recursion.
pub const MAX_DEPTH: usize = 64;

/// Most clauses (comparisons, `in` tests and `startswith`/`endswith`/`contains` calls) accepted in
/// one filter. docs/protocol.md §0 D3 warns that more than 100 clauses risk rejection by the service; the emulator is
/// a little more lenient but still bounded.
pub const MAX_CLAUSES: usize = 256;

const KNOWN_IDENTIFIERS: &str = "userId, connectionId, groups";
const KEYWORDS: [&str; 13] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in", "true", "false", "null",
];
/// Longest excerpt of the filter quoted in an error message, in chars.
const MAX_EXCERPT: usize = 48;

/// A filter the parser rejected. `position` is the 0-based `char` offset of the offending token in
/// the filter text (the text's length when the filter ended too early).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl FilterError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// Where the service's own message puts a syntax error in `text`: the character offset just past
/// the token `error` names, which is where an OData lexer stands when it gives up (docs/protocol.md
/// §7.5: `invalid filter` fails at 14, past `filter`). `error.position` is the token's start.
pub fn service_position(text: &str, error: &FilterError) -> usize {
    let Ok(tokens) = lex(text) else {
        return error.position;
    };
    tokens
        .iter()
        .find(|t| t.pos == error.position)
        .map_or(error.position, |t| {
            t.pos + text[t.start..t.end].chars().count()
        })
}

/// A filter text as the service's message quotes it: whole, unless it is longer than
/// [`MAX_FILTER_LEN`] bytes (it was refused for that), then cut there with `...`.
pub fn clip_for_message(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_FILTER_LEN {
        return Cow::Borrowed(text);
    }
    let mut cut = MAX_FILTER_LEN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}...", &text[..cut]))
}

/// What a filter can see of a connection.
pub trait FilterTarget {
    fn connection_id(&self) -> &str;
    /// `None` for an anonymous connection.
    fn user_id(&self) -> Option<&str>;
    fn in_group(&self, group: &str) -> bool;
    /// All groups of the connection; only `length(groups)` needs it.
    fn groups(&self) -> Vec<&str>;
}

/// A parsed, type-checked filter. The default (and the parse of an empty or whitespace-only text)
/// matches every connection. `Display` prints a canonical form that parses back to the same
/// filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    expr: Option<Expr>,
}

impl Filter {
    /// Parses and type-checks `s`. An empty or whitespace-only filter matches everything.
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        if s.len() > MAX_FILTER_LEN {
            let position = s
                .char_indices()
                .take_while(|&(byte, _)| byte < MAX_FILTER_LEN)
                .count();
            return Err(FilterError::new(
                position,
                format!(
                    "filter is {} bytes long, more than the limit of {MAX_FILTER_LEN} bytes \
                     (MAX_FILTER_LEN); split the operation into several REST calls",
                    s.len()
                ),
            ));
        }
        if s.trim().is_empty() {
            return Ok(Filter::default());
        }
        let mut parser = Parser {
            src: s,
            toks: lex(s)?,
            i: 0,
            depth: 0,
            clauses: 0,
        };
        let node = parser.parse_or()?;
        let next = parser.peek().clone();
        match next.tok {
            Tok::Eof => {}
            Tok::RParen => {
                return Err(FilterError::new(
                    next.pos,
                    "unmatched ')': no '(' is open here; remove it or add the missing '('",
                ));
            }
            _ => {
                return Err(FilterError::new(
                    next.pos,
                    format!(
                        "expected 'and', 'or', a comparison operator or the end of the filter, \
                         found {}{}",
                        parser.describe(&next),
                        parser.case_hint(&next)
                    ),
                ));
            }
        }
        if node.ty != Ty::Bool {
            return Err(FilterError::new(
                node.pos,
                format!(
                    "a filter must be a bool expression, but {} is {}; compare it, e.g. \
                     userId eq 'alice'",
                    parser.excerpt(&node),
                    node.ty.name()
                ),
            ));
        }
        Ok(Filter {
            expr: Some(node.expr),
        })
    }

    /// Whether connection `t` is selected by this filter.
    pub fn matches(&self, t: &dyn FilterTarget) -> bool {
        self.expr.as_ref().is_none_or(|e| eval_bool(e, t))
    }

    /// Whether this filter selects every connection without looking at it (empty filter).
    pub fn is_match_all(&self) -> bool {
        self.expr.is_none()
    }

    /// The string literals used as `'x' in groups`, in order of first appearance, without
    /// duplicates.
    pub fn group_literals(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(e) = &self.expr {
            collect_group_literals(e, &mut out);
        }
        out
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Some(e) => e.fmt(f),
            None => Ok(()),
        }
    }
}
