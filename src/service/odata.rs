//! OData `filter` expressions of the Web PubSub data-plane REST API (SPEC §9): a parser that turns
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
//! Decisions where SPEC §9 and the Azure sources leave room:
//!
//! - **Spelling.** The identifiers `userId`, `connectionId` and `groups` are case-insensitive (D3).
//!   Keywords, operators and function names (`and`, `eq`, `in`, `true`, `null`, `tolower`, ...)
//!   are lowercase only, as in OData and Microsoft.OData's default parser; `AND` or `ToLower` is
//!   rejected with a message naming the lowercase spelling.
//! - **Precedence**, high to low: primary (literal, identifier, call, `( )`), `in`, `not`,
//!   comparisons (`eq ne gt ge lt le`), `and`, `or`. `A or B and not C` is `A or (B and (not C))`,
//!   as the Functions binding's generated filters need (SPEC §7.4). `in` binds tighter than `not`
//!   as in Microsoft.OData, so `not 'g' in groups` is `not ('g' in groups)`; `not` binds tighter
//!   than comparisons, so `not length(userId) gt 5` is a type error (D3). Comparisons do not chain
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
//!   `in (...)` uses `eq`, so a `null` item matches a null value. (A3's emulator returns −1 from
//!   `indexof` and skips nulls in `concat`; we follow SPEC §9's "functions of null yield null".)
//! - **Text positions** count Unicode scalar values (`char`s), not UTF-16 code units: error
//!   positions, `length`, `indexof` and `substring` agree with Azure for text in the Basic
//!   Multilingual Plane. `substring` with a start outside `0..=length` or a count running past the
//!   end yields null, as A3's emulator does.
//! - **Limits** ([`MAX_FILTER_LEN`], [`MAX_DEPTH`], [`MAX_CLAUSES`]) bound the parser's work and
//!   recursion, so any input (including fuzzed input) is rejected cleanly instead of overflowing
//!   the stack. A3's `protocol` identifier is not supported: Socket.IO connections have none.
//!
//! Evaluation borrows: identifiers and literals are `Cow::Borrowed`, so the common filters
//! (`'g' in groups`, `userId eq 'u'`, their `and`/`or`/`not` combinations) allocate nothing per
//! connection; only `tolower`/`toupper` that change ASCII case or meet non-ASCII text, `concat` of
//! two non-empty strings, and `length(groups)` (through [`FilterTarget::groups`]) allocate.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// Longest filter text accepted, in bytes. Longer filters are rejected before lexing.
pub const MAX_FILTER_LEN: usize = 8 * 1024;

/// Deepest nesting accepted: each `(`, `not`, function argument list and `in (...)` list opens a
/// level. Bounds the parser's, evaluator's and `Display`'s recursion.
pub const MAX_DEPTH: usize = 64;

/// Most clauses (comparisons, `in` tests and `startswith`/`endswith`/`contains` calls) accepted in
/// one filter. D3 warns that more than 100 clauses risk rejection by the service; the emulator is
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

// ---------------------------------------------------------------------------------------------
// Syntax tree and static types

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    UserId,
    ConnectionId,
    Groups,
}

impl Prop {
    fn name(self) -> &'static str {
        match self {
            Prop::UserId => "userId",
            Prop::ConnectionId => "connectionId",
            Prop::Groups => "groups",
        }
    }

    fn lookup(word: &str) -> Option<Prop> {
        [Prop::UserId, Prop::ConnectionId, Prop::Groups]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(word))
    }

    fn ty(self) -> Ty {
        match self {
            Prop::UserId | Prop::ConnectionId => Ty::Str,
            Prop::Groups => Ty::Collection,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }

    fn from_keyword(word: &str) -> Option<CmpOp> {
        [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Lt,
            CmpOp::Le,
        ]
        .into_iter()
        .find(|op| op.keyword() == word)
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Ne => ord.is_ne(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Ge => ord.is_ge(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Le => ord.is_le(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    ToLower,
    ToUpper,
    Trim,
    Substring,
    EndsWith,
    StartsWith,
    Contains,
    IndexOf,
    Concat,
    Length,
}

const FUNCS: [Func; 10] = [
    Func::ToLower,
    Func::ToUpper,
    Func::Trim,
    Func::Substring,
    Func::EndsWith,
    Func::StartsWith,
    Func::Contains,
    Func::IndexOf,
    Func::Concat,
    Func::Length,
];
const KNOWN_FUNCTIONS: &str =
    "tolower, toupper, trim, substring, endswith, startswith, contains, indexof, concat, length";

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::ToLower => "tolower",
            Func::ToUpper => "toupper",
            Func::Trim => "trim",
            Func::Substring => "substring",
            Func::EndsWith => "endswith",
            Func::StartsWith => "startswith",
            Func::Contains => "contains",
            Func::IndexOf => "indexof",
            Func::Concat => "concat",
            Func::Length => "length",
        }
    }

    fn usage(self) -> &'static str {
        match self {
            Func::ToLower => "tolower(string)",
            Func::ToUpper => "toupper(string)",
            Func::Trim => "trim(string)",
            Func::Substring => "substring(string, start[, length])",
            Func::EndsWith => "endswith(string, suffix)",
            Func::StartsWith => "startswith(string, prefix)",
            Func::Contains => "contains(string, part)",
            Func::IndexOf => "indexof(string, part)",
            Func::Concat => "concat(string, string)",
            Func::Length => "length(string or groups)",
        }
    }

    fn from_name(word: &str) -> Option<Func> {
        FUNCS.into_iter().find(|f| f.name() == word)
    }

    fn from_name_ignore_case(word: &str) -> Option<Func> {
        FUNCS
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(word))
    }

    /// (minimum, maximum) argument count.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::ToLower | Func::ToUpper | Func::Trim | Func::Length => (1, 1),
            Func::Substring => (2, 3),
            _ => (2, 2),
        }
    }

    /// Types accepted by argument `i` (besides the `null` literal, always accepted).
    fn param(self, i: usize) -> &'static [Ty] {
        match (self, i) {
            (Func::Length, _) => &[Ty::Str, Ty::Collection],
            (Func::Substring, 1 | 2) => &[Ty::Int],
            _ => &[Ty::Str],
        }
    }

    fn result(self) -> Ty {
        match self {
            Func::EndsWith | Func::StartsWith | Func::Contains => Ty::Bool,
            Func::IndexOf | Func::Length => Ty::Int,
            _ => Ty::Str,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Str(Box<str>),
    Prop(Prop),
    Not(Box<Expr>),
    /// Two or more operands; a parenthesized `and` inside stays a nested node.
    And(Vec<Expr>),
    /// Two or more operands; a parenthesized `or` inside stays a nested node.
    Or(Vec<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `x in groups`.
    InGroups(Box<Expr>),
    /// `x in (a, b, ...)`, one or more items.
    InList(Box<Expr>, Vec<Expr>),
    Call(Func, Vec<Expr>),
}

/// Static type of an expression. `Null` is the type of the `null` literal only: identifiers and
/// function results that may be null at run time have their value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Str,
    Null,
    Collection,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Null => "null",
            Ty::Collection => "a collection",
        }
    }
}

/// Whether `eq`/`ne` (and list membership) may compare these types.
fn eq_compatible(a: Ty, b: Ty) -> bool {
    match (a, b) {
        (Ty::Collection, _) | (_, Ty::Collection) => false,
        (Ty::Null, _) | (_, Ty::Null) => true,
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone)]
enum Tok {
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
struct Token {
    tok: Tok,
    /// Char offset, for error positions.
    pos: usize,
    /// Byte range in the source, for excerpts.
    start: usize,
    end: usize,
}

fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
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
            '\'' => {
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
                            pos += 1;
                            if chars.next_if(|&(_, c)| c == '\'').is_some() {
                                pos += 1;
                                value.push('\'');
                            } else {
                                break;
                            }
                        }
                        Some((_, ch)) => {
                            pos += 1;
                            value.push(ch);
                        }
                    }
                }
                Tok::Str(value.into_boxed_str())
            }
            '0'..='9' | '+' | '-' => {
                if !c.is_ascii_digit() && !chars.peek().is_some_and(|&(_, d)| d.is_ascii_digit()) {
                    return Err(unexpected_char(here, c));
                }
                while chars.next_if(|&(_, d)| d.is_ascii_digit()).is_some() {
                    pos += 1;
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
                match text.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => {
                        return Err(FilterError::new(
                            here,
                            format!(
                                "integer literal '{}' is out of range: integers are 64-bit signed",
                                clip(text)
                            ),
                        ));
                    }
                }
            }
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

fn unexpected_char(position: usize, c: char) -> FilterError {
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
fn printable(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        c.escape_debug().to_string()
    } else {
        c.to_string()
    }
}

/// `s` clipped and quoted for a message: in single quotes like the rest of the message, or in
/// double quotes when it holds a single quote itself.
fn quoted(s: &str) -> String {
    let s = clip(s);
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

/// `s`, shortened to [`MAX_EXCERPT`] chars for quoting in a message.
fn clip(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= MAX_EXCERPT {
        Cow::Borrowed(s)
    } else {
        let head: String = s.chars().take(MAX_EXCERPT - 3).collect();
        Cow::Owned(format!("{head}..."))
    }
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent, one function per precedence level, type-checking as it builds.

/// A parsed sub-expression with its static type and where it came from.
struct Node {
    expr: Expr,
    ty: Ty,
    /// Char offset of its first token.
    pos: usize,
    /// Byte range in the source.
    start: usize,
    end: usize,
}

struct Parser<'s> {
    src: &'s str,
    /// Always ends with `Tok::Eof`.
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    clauses: usize,
}

type PResult<T> = Result<T, FilterError>;

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    /// Consumes the current token; at the end it keeps returning `Eof`.
    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn word(&self, t: &Token) -> Option<&'s str> {
        matches!(t.tok, Tok::Word).then(|| &self.src[t.start..t.end])
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.word(self.peek()) == Some(keyword)
    }

    fn peek_cmp(&self) -> Option<CmpOp> {
        self.word(self.peek()).and_then(CmpOp::from_keyword)
    }

    /// The source text of `node`, quoted for a message.
    fn excerpt(&self, node: &Node) -> String {
        quoted(&self.src[node.start..node.end])
    }

    fn describe(&self, t: &Token) -> String {
        match t.tok {
            Tok::Eof => "the end of the filter".to_owned(),
            Tok::Str(_) => format!("the string {}", clip(&self.src[t.start..t.end])),
            _ => format!("'{}'", clip(&self.src[t.start..t.end])),
        }
    }

    /// A hint for `AND`, `Not`, `EQ` and friends.
    fn case_hint(&self, t: &Token) -> String {
        match self.word(t) {
            Some(w) => {
                let lower = w.to_ascii_lowercase();
                if lower != w && KEYWORDS.contains(&lower.as_str()) {
                    format!("; keywords and operators are lowercase: write '{lower}'")
                } else {
                    String::new()
                }
            }
            None => String::new(),
        }
    }

    fn enter(&mut self, at: &Token) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                at.pos,
                format!(
                    "filter nests deeper than {MAX_DEPTH} levels (MAX_DEPTH) of parentheses, \
                     'not', function calls and lists; simplify it"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn clause(&mut self, pos: usize) -> PResult<()> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(FilterError::new(
                pos,
                format!(
                    "filter has more than {MAX_CLAUSES} clauses (MAX_CLAUSES); split the \
                     operation into several REST calls"
                ),
            ));
        }
        Ok(())
    }

    fn collection_hint(ty: Ty) -> &'static str {
        if ty == Ty::Collection {
            "; 'groups' can only be used as 'name' in groups or length(groups)"
        } else {
            ""
        }
    }

    /// `or` (`keyword == "or"`) or `and` level: operands joined by `keyword`, all bool.
    fn parse_logical(&mut self, keyword: &'static str) -> PResult<Node> {
        let operand = |p: &mut Self| {
            if keyword == "or" {
                p.parse_logical("and")
            } else {
                p.parse_cmp()
            }
        };
        let first = operand(self)?;
        if !self.at_keyword(keyword) {
            return Ok(first);
        }
        self.require_bool(&first, keyword)?;
        let (pos, start, mut end) = (first.pos, first.start, first.end);
        let mut items = vec![first.expr];
        while self.at_keyword(keyword) {
            self.bump();
            let next = operand(self)?;
            self.require_bool(&next, keyword)?;
            end = next.end;
            items.push(next.expr);
        }
        let expr = if keyword == "or" {
            Expr::Or(items)
        } else {
            Expr::And(items)
        };
        Ok(Node {
            expr,
            ty: Ty::Bool,
            pos,
            start,
            end,
        })
    }

    fn parse_or(&mut self) -> PResult<Node> {
        self.parse_logical("or")
    }

    fn require_bool(&self, node: &Node, keyword: &str) -> PResult<()> {
        if node.ty == Ty::Bool {
            return Ok(());
        }
        Err(FilterError::new(
            node.pos,
            format!(
                "'{keyword}' needs bool operands, but {} is {}{}",
                self.excerpt(node),
                node.ty.name(),
                Self::collection_hint(node.ty)
            ),
        ))
    }

    fn parse_cmp(&mut self) -> PResult<Node> {
        let left = self.parse_unary()?;
        let Some(op) = self.peek_cmp() else {
            return Ok(left);
        };
        let op_tok = self.bump();
        let right = self.parse_unary()?;
        self.check_comparable(&left, op, &op_tok, &right)?;
        self.clause(left.pos)?;
        if let Some(next) = self.peek_cmp() {
            let whole = &self.src[left.start..right.end];
            return Err(FilterError::new(
                self.peek().pos,
                format!(
                    "comparisons cannot be chained: {} already is a comparison; add \
                     parentheses, e.g. {}",
                    quoted(whole),
                    quoted(&format!("({}) {} ...", clip(whole), next.keyword()))
                ),
            ));
        }
        Ok(Node {
            expr: Expr::Cmp(op, Box::new(left.expr), Box::new(right.expr)),
            ty: Ty::Bool,
            pos: left.pos,
            start: left.start,
            end: right.end,
        })
    }

    fn check_comparable(
        &self,
        left: &Node,
        op: CmpOp,
        op_tok: &Token,
        right: &Node,
    ) -> PResult<()> {
        for side in [left, right] {
            if side.ty == Ty::Collection {
                return Err(FilterError::new(
                    side.pos,
                    format!(
                        "{} is a collection and cannot be compared with '{}'{}",
                        self.excerpt(side),
                        op.keyword(),
                        Self::collection_hint(side.ty)
                    ),
                ));
            }
        }
        if op.is_ordering() && (left.ty == Ty::Bool || right.ty == Ty::Bool) {
            return Err(FilterError::new(
                op_tok.pos,
                format!(
                    "'{}' is not defined for bool values; only eq and ne compare bools",
                    op.keyword()
                ),
            ));
        }
        if !eq_compatible(left.ty, right.ty) {
            return Err(FilterError::new(
                right.pos,
                format!(
                    "cannot compare {} {} with {} {} using '{}': both sides must have the \
                     same type",
                    left.ty.name(),
                    self.excerpt(left),
                    right.ty.name(),
                    self.excerpt(right),
                    op.keyword()
                ),
            ));
        }
        Ok(())
    }

    fn parse_unary(&mut self) -> PResult<Node> {
        if !self.at_keyword("not") {
            return self.parse_in();
        }
        let not_tok = self.bump();
        self.enter(&not_tok)?;
        let operand = self.parse_unary()?;
        self.leave();
        if operand.ty != Ty::Bool {
            let mut message = format!(
                "type mismatch in {}: 'not' needs a bool operand, but {} is {}",
                quoted(&self.src[not_tok.start..operand.end]),
                self.excerpt(&operand),
                operand.ty.name()
            );
            if let Some(op) = self.peek_cmp() {
                message += &format!(
                    "; 'not' binds tighter than '{}', so write {}",
                    op.keyword(),
                    quoted(&format!(
                        "not ({} {} ...)",
                        clip(&self.src[operand.start..operand.end]),
                        op.keyword()
                    ))
                );
            } else {
                message += Self::collection_hint(operand.ty);
            }
            return Err(FilterError::new(operand.pos, message));
        }
        Ok(Node {
            expr: Expr::Not(Box::new(operand.expr)),
            ty: Ty::Bool,
            pos: not_tok.pos,
            start: not_tok.start,
            end: operand.end,
        })
    }

    fn parse_in(&mut self) -> PResult<Node> {
        let left = self.parse_primary()?;
        if !self.at_keyword("in") {
            return Ok(left);
        }
        self.bump();
        if left.ty == Ty::Collection {
            return Err(FilterError::new(
                left.pos,
                "'groups' cannot be on the left of 'in'; write 'name' in groups",
            ));
        }
        let next = self.peek().clone();
        match next.tok {
            Tok::LParen => self.parse_in_list(left, &next),
            Tok::Word if self.word(&next).and_then(Prop::lookup) == Some(Prop::Groups) => {
                self.bump();
                if !matches!(left.ty, Ty::Str | Ty::Null) {
                    return Err(FilterError::new(
                        left.pos,
                        format!(
                            "'in groups' tests a group name, which is a string, but {} is {}",
                            self.excerpt(&left),
                            left.ty.name()
                        ),
                    ));
                }
                self.clause(left.pos)?;
                Ok(Node {
                    expr: Expr::InGroups(Box::new(left.expr)),
                    ty: Ty::Bool,
                    pos: left.pos,
                    start: left.start,
                    end: next.end,
                })
            }
            _ => Err(FilterError::new(
                next.pos,
                format!(
                    "expected 'groups' or a parenthesized list such as ('a', 'b') after 'in', \
                     found {}",
                    self.describe(&next)
                ),
            )),
        }
    }

    fn parse_in_list(&mut self, left: Node, open: &Token) -> PResult<Node> {
        self.bump();
        self.enter(open)?;
        if matches!(self.peek().tok, Tok::RParen) {
            return Err(FilterError::new(
                self.peek().pos,
                "empty list after 'in': give at least one value, e.g. userId in ('u1', 'u2')",
            ));
        }
        let mut items = Vec::new();
        let end = loop {
            let item = self.parse_or()?;
            if !eq_compatible(left.ty, item.ty) {
                return Err(FilterError::new(
                    item.pos,
                    format!(
                        "list item {} is {}, but {} on the left of 'in' is {}",
                        self.excerpt(&item),
                        item.ty.name(),
                        self.excerpt(&left),
                        left.ty.name()
                    ),
                ));
            }
            items.push(item.expr);
            let t = self.bump();
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => break t.end,
                _ => {
                    return Err(FilterError::new(
                        t.pos,
                        format!(
                            "expected ',' or ')' to close the list opened at position {}, \
                             found {}{}",
                            open.pos,
                            self.describe(&t),
                            self.case_hint(&t)
                        ),
                    ));
                }
            }
        };
        self.leave();
        self.clause(left.pos)?;
        Ok(Node {
            expr: Expr::InList(Box::new(left.expr), items),
            ty: Ty::Bool,
            pos: left.pos,
            start: left.start,
            end,
        })
    }

    fn parse_primary(&mut self) -> PResult<Node> {
        let prev = self.i.checked_sub(1).map(|i| self.toks[i].clone());
        let t = self.bump();
        let leaf = |expr, ty| {
            Ok(Node {
                expr,
                ty,
                pos: t.pos,
                start: t.start,
                end: t.end,
            })
        };
        match &t.tok {
            Tok::LParen => {
                self.enter(&t)?;
                let inner = self.parse_or()?;
                let close = self.bump();
                if !matches!(close.tok, Tok::RParen) {
                    return Err(FilterError::new(
                        close.pos,
                        format!(
                            "expected ')' to close '(' opened at position {}, found {}{}",
                            t.pos,
                            self.describe(&close),
                            self.case_hint(&close)
                        ),
                    ));
                }
                self.leave();
                Ok(Node {
                    expr: inner.expr,
                    ty: inner.ty,
                    pos: t.pos,
                    start: t.start,
                    end: close.end,
                })
            }
            Tok::Str(s) => leaf(Expr::Str(s.clone()), Ty::Str),
            Tok::Int(n) => leaf(Expr::Int(*n), Ty::Int),
            Tok::Word => {
                let w = self.word(&t).unwrap_or_default();
                match w {
                    "true" => leaf(Expr::Bool(true), Ty::Bool),
                    "false" => leaf(Expr::Bool(false), Ty::Bool),
                    "null" => leaf(Expr::Null, Ty::Null),
                    _ if KEYWORDS.contains(&w) => Err(self.expected_expression(&t, prev.as_ref())),
                    _ if matches!(self.peek().tok, Tok::LParen) => self.parse_call(&t, w),
                    _ => match Prop::lookup(w) {
                        Some(p) => leaf(Expr::Prop(p), p.ty()),
                        None => Err(self.unknown_identifier(&t, w)),
                    },
                }
            }
            Tok::RParen | Tok::Comma | Tok::Eof => Err(self.expected_expression(&t, prev.as_ref())),
        }
    }

    fn expected_expression(&self, t: &Token, prev: Option<&Token>) -> FilterError {
        let after = prev.map_or(String::new(), |p| format!(" after {}", self.describe(p)));
        FilterError::new(
            t.pos,
            format!("expected an expression{after}, found {}", self.describe(t)),
        )
    }

    fn unknown_identifier(&self, t: &Token, w: &str) -> FilterError {
        let lower = w.to_ascii_lowercase();
        let message = if let Some(f) = Func::from_name_ignore_case(w) {
            format!("'{w}' is a function: call it as {}", f.usage())
        } else if KEYWORDS.contains(&lower.as_str()) {
            format!("keywords and operators are lowercase: write '{lower}' instead of '{w}'")
        } else if lower == "protocol" {
            format!(
                "identifier 'protocol' is not supported: Socket.IO connections have no \
                 subprotocol; known: {KNOWN_IDENTIFIERS}"
            )
        } else {
            format!(
                "unknown identifier '{}'; known: {KNOWN_IDENTIFIERS}",
                clip(w)
            )
        };
        FilterError::new(t.pos, message)
    }

    fn parse_call(&mut self, name: &Token, w: &str) -> PResult<Node> {
        let Some(func) = Func::from_name(w) else {
            let lower = w.to_ascii_lowercase();
            let message = match Func::from_name_ignore_case(w) {
                _ if KEYWORDS.contains(&lower.as_str()) => format!(
                    "keywords and operators are lowercase: write '{lower}' instead of '{w}'"
                ),
                Some(f) => format!(
                    "function names are lowercase: write '{}' instead of '{w}'",
                    f.name()
                ),
                None => format!("unknown function '{}'; known: {KNOWN_FUNCTIONS}", clip(w)),
            };
            return Err(FilterError::new(name.pos, message));
        };
        let open = self.bump();
        self.enter(&open)?;
        let mut args: Vec<Node> = Vec::new();
        let end = if matches!(self.peek().tok, Tok::RParen) {
            self.bump().end
        } else {
            loop {
                args.push(self.parse_or()?);
                let t = self.bump();
                match t.tok {
                    Tok::Comma => {}
                    Tok::RParen => break t.end,
                    _ => {
                        return Err(FilterError::new(
                            t.pos,
                            format!(
                                "expected ',' or ')' to close the arguments of '{}' opened at \
                                 position {}, found {}{}",
                                func.name(),
                                open.pos,
                                self.describe(&t),
                                self.case_hint(&t)
                            ),
                        ));
                    }
                }
            }
        };
        self.leave();
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let takes = match (min, max) {
                (1, 1) => "1 argument".to_owned(),
                (a, b) if a == b => format!("{a} arguments"),
                (a, b) => format!("{a} or {b} arguments"),
            };
            return Err(FilterError::new(
                name.pos,
                format!(
                    "'{}' takes {takes}, found {}; use {}",
                    func.name(),
                    args.len(),
                    func.usage()
                ),
            ));
        }
        for (i, arg) in args.iter().enumerate() {
            let accepted = func.param(i);
            if arg.ty != Ty::Null && !accepted.contains(&arg.ty) {
                let expected: Vec<&str> = accepted.iter().map(|t| t.name()).collect();
                return Err(FilterError::new(
                    arg.pos,
                    format!(
                        "argument {} of '{}' must be {}, but {} is {}; use {}{}",
                        i + 1,
                        func.name(),
                        expected.join(" or "),
                        self.excerpt(arg),
                        arg.ty.name(),
                        func.usage(),
                        Self::collection_hint(arg.ty)
                    ),
                ));
            }
        }
        if func.result() == Ty::Bool {
            self.clause(name.pos)?;
        }
        Ok(Node {
            expr: Expr::Call(func, args.into_iter().map(|a| a.expr).collect()),
            ty: func.result(),
            pos: name.pos,
            start: name.start,
            end,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluator. Type checking happened at parse time; a mismatch here (unreachable for parsed
// filters) evaluates to null / false rather than panicking.

#[derive(Debug, PartialEq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
}

fn eval_bool(e: &Expr, t: &dyn FilterTarget) -> bool {
    match e {
        Expr::Bool(b) => *b,
        Expr::Not(x) => !eval_bool(x, t),
        Expr::And(xs) => xs.iter().all(|x| eval_bool(x, t)),
        Expr::Or(xs) => xs.iter().any(|x| eval_bool(x, t)),
        Expr::Cmp(op, l, r) => compare(*op, &eval(l, t), &eval(r, t)),
        Expr::InGroups(x) => match eval(x, t) {
            Value::Str(group) => t.in_group(&group),
            _ => false,
        },
        Expr::InList(x, items) => {
            let v = eval(x, t);
            items.iter().any(|item| eval(item, t) == v)
        }
        Expr::Call(f, args) => call(*f, args, t) == Value::Bool(true),
        Expr::Null | Expr::Int(_) | Expr::Str(_) | Expr::Prop(_) => false,
    }
}

fn eval<'a>(e: &'a Expr, t: &'a dyn FilterTarget) -> Value<'a> {
    match e {
        Expr::Null => Value::Null,
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Int(n) => Value::Int(*n),
        Expr::Str(s) => Value::Str(Cow::Borrowed(s)),
        Expr::Prop(Prop::UserId) => t
            .user_id()
            .map_or(Value::Null, |u| Value::Str(Cow::Borrowed(u))),
        Expr::Prop(Prop::ConnectionId) => Value::Str(Cow::Borrowed(t.connection_id())),
        // Type checking keeps the collection out of scalar positions.
        Expr::Prop(Prop::Groups) => Value::Null,
        Expr::Call(f, args) => call(*f, args, t),
        Expr::Not(_)
        | Expr::And(_)
        | Expr::Or(_)
        | Expr::Cmp(..)
        | Expr::InGroups(_)
        | Expr::InList(..) => Value::Bool(eval_bool(e, t)),
    }
}

fn compare(op: CmpOp, l: &Value<'_>, r: &Value<'_>) -> bool {
    match op {
        CmpOp::Eq => l == r,
        CmpOp::Ne => l != r,
        _ => match (l, r) {
            (Value::Int(a), Value::Int(b)) => op.holds(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => op.holds(a.as_ref().cmp(b.as_ref())),
            // Ordering with a null is false (A3); bools are never ordered.
            _ => false,
        },
    }
}

fn call<'a>(f: Func, args: &'a [Expr], t: &'a dyn FilterTarget) -> Value<'a> {
    let arg = |i: usize| -> Value<'a> { args.get(i).map_or(Value::Null, |a| eval(a, t)) };
    match f {
        Func::Length => match args.first() {
            Some(Expr::Prop(Prop::Groups)) => Value::Int(to_i64(t.groups().len())),
            _ => match arg(0) {
                Value::Str(s) => Value::Int(char_len(&s)),
                _ => Value::Null,
            },
        },
        Func::ToLower => map_str(arg(0), to_lower),
        Func::ToUpper => map_str(arg(0), to_upper),
        Func::Trim => map_str(arg(0), trim),
        Func::Substring => {
            let (Value::Str(s), Value::Int(start)) = (arg(0), arg(1)) else {
                return Value::Null;
            };
            let count = if args.len() > 2 {
                match arg(2) {
                    Value::Int(n) => Some(n),
                    _ => return Value::Null,
                }
            } else {
                None
            };
            substring(s, start, count)
        }
        Func::StartsWith => predicate(arg(0), arg(1), |s, p| s.starts_with(p)),
        Func::EndsWith => predicate(arg(0), arg(1), |s, p| s.ends_with(p)),
        Func::Contains => predicate(arg(0), arg(1), |s, p| s.contains(p)),
        Func::IndexOf => match (arg(0), arg(1)) {
            (Value::Str(s), Value::Str(p)) => {
                Value::Int(s.find(p.as_ref()).map_or(-1, |byte| char_len(&s[..byte])))
            }
            _ => Value::Null,
        },
        Func::Concat => match (arg(0), arg(1)) {
            (Value::Str(a), Value::Str(b)) => Value::Str(if b.is_empty() {
                a
            } else if a.is_empty() {
                b
            } else {
                Cow::Owned([a.as_ref(), b.as_ref()].concat())
            }),
            _ => Value::Null,
        },
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn char_len(s: &str) -> i64 {
    to_i64(s.chars().count())
}

fn map_str<'a>(v: Value<'a>, f: impl FnOnce(Cow<'a, str>) -> Cow<'a, str>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(f(s)),
        _ => Value::Null,
    }
}

fn predicate(s: Value<'_>, p: Value<'_>, test: impl FnOnce(&str, &str) -> bool) -> Value<'static> {
    match (s, p) {
        (Value::Str(s), Value::Str(p)) => Value::Bool(test(&s, &p)),
        // startswith & co. of a null are false (A3).
        _ => Value::Bool(false),
    }
}

/// `s[from..to]` (byte offsets on char boundaries), still borrowed if `s` was.
fn slice(s: Cow<'_, str>, from: usize, to: usize) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(&b[from..to]),
        Cow::Owned(o) => Cow::Owned(o[from..to].to_owned()),
    }
}

fn to_lower(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            s
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn to_upper(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(s.to_ascii_uppercase())
        } else {
            s
        }
    } else {
        Cow::Owned(s.to_uppercase())
    }
}

fn trim(s: Cow<'_, str>) -> Cow<'_, str> {
    let from = s.len() - s.trim_start().len();
    let to = s.trim_end().len();
    if from >= to {
        slice(s, 0, 0)
    } else {
        slice(s, from, to)
    }
}

/// Chars `start .. start + count` of `s`; null when the range leaves the string.
fn substring(s: Cow<'_, str>, start: i64, count: Option<i64>) -> Value<'_> {
    let total = char_len(&s);
    if start < 0 || start > total {
        return Value::Null;
    }
    let count = match count {
        None => total - start,
        Some(n) if (0..=total - start).contains(&n) => n,
        Some(_) => return Value::Null,
    };
    let byte_at = |n: i64| {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        s.char_indices().nth(n).map_or(s.len(), |(b, _)| b)
    };
    let (from, to) = (byte_at(start), byte_at(start + count));
    Value::Str(slice(s, from, to))
}

fn collect_group_literals<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    match e {
        Expr::InGroups(x) => match &**x {
            Expr::Str(s) => {
                if !out.contains(&&**s) {
                    out.push(s);
                }
            }
            other => collect_group_literals(other, out),
        },
        Expr::Not(x) => collect_group_literals(x, out),
        Expr::And(xs) | Expr::Or(xs) | Expr::Call(_, xs) => {
            xs.iter().for_each(|x| collect_group_literals(x, out));
        }
        Expr::Cmp(_, l, r) => {
            collect_group_literals(l, out);
            collect_group_literals(r, out);
        }
        Expr::InList(x, items) => {
            collect_group_literals(x, out);
            items.iter().for_each(|i| collect_group_literals(i, out));
        }
        Expr::Null | Expr::Bool(_) | Expr::Int(_) | Expr::Str(_) | Expr::Prop(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical printing: parentheses exactly where the tree needs them, so that printing and
// parsing again yields the same tree.

const LEVEL_OR: u8 = 1;
const LEVEL_AND: u8 = 2;
const LEVEL_CMP: u8 = 3;
const LEVEL_NOT: u8 = 4;
const LEVEL_IN: u8 = 5;
const LEVEL_PRIMARY: u8 = 6;

impl Expr {
    fn level(&self) -> u8 {
        match self {
            Expr::Or(_) => LEVEL_OR,
            Expr::And(_) => LEVEL_AND,
            Expr::Cmp(..) => LEVEL_CMP,
            Expr::Not(_) => LEVEL_NOT,
            Expr::InGroups(_) | Expr::InList(..) => LEVEL_IN,
            _ => LEVEL_PRIMARY,
        }
    }

    /// Prints `self` as an operand that must bind at least as tightly as `min`.
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.level() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    fn fmt_joined(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str, min: u8) -> fmt::Result {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            item.fmt_operand(f, min)?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Null => f.write_str("null"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Int(n) => write!(f, "{n}"),
            Expr::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Prop(p) => f.write_str(p.name()),
            // `not ('g' in groups)` keeps its parentheses: the form the Functions binding sends,
            // and readable without knowing that `in` binds tighter than `not`.
            Expr::Not(x) => {
                f.write_str("not ")?;
                let min = if x.level() == LEVEL_IN {
                    LEVEL_PRIMARY
                } else {
                    LEVEL_NOT
                };
                x.fmt_operand(f, min)
            }
            // An operand of the same level is a parenthesized group in the source: keep it so.
            Expr::And(xs) => Self::fmt_joined(f, xs, " and ", LEVEL_CMP),
            Expr::Or(xs) => Self::fmt_joined(f, xs, " or ", LEVEL_AND),
            Expr::Cmp(op, l, r) => {
                l.fmt_operand(f, LEVEL_NOT)?;
                write!(f, " {} ", op.keyword())?;
                r.fmt_operand(f, LEVEL_NOT)
            }
            Expr::InGroups(x) => {
                x.fmt_operand(f, LEVEL_PRIMARY)?;
                f.write_str(" in groups")
            }
            Expr::InList(x, items) => {
                x.fmt_operand(f, LEVEL_PRIMARY)?;
                f.write_str(" in (")?;
                Self::fmt_joined(f, items, ", ", 0)?;
                f.write_str(")")
            }
            Expr::Call(func, args) => {
                write!(f, "{}(", func.name())?;
                Self::fmt_joined(f, args, ", ", 0)?;
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Conn {
        id: &'static str,
        user: Option<&'static str>,
        groups: &'static [&'static str],
    }

    impl FilterTarget for Conn {
        fn connection_id(&self) -> &str {
            self.id
        }
        fn user_id(&self) -> Option<&str> {
            self.user
        }
        fn in_group(&self, group: &str) -> bool {
            self.groups.contains(&group)
        }
        fn groups(&self) -> Vec<&str> {
            self.groups.to_vec()
        }
    }

    const CONNS: [Conn; 7] = [
        Conn {
            id: "c1",
            user: Some("alice"),
            groups: &["g1", "0~Lw~c29ja2V0MQ", "it's"],
        },
        Conn {
            id: "c2",
            user: Some("bob"),
            groups: &["g2", "0~Lw~c29ja2V0Mg"],
        },
        Conn {
            id: "c3",
            user: None,
            groups: &["g1", "g2", "0~L25z~c2lk"],
        },
        Conn {
            id: "c4",
            user: Some("O'Brien"),
            groups: &[],
        },
        Conn {
            id: "c5",
            user: Some("  Alice  "),
            groups: &["0~L25z~", "0~L25z~c2lk"],
        },
        Conn {
            id: "c6",
            user: None,
            groups: &["0~L25z~"],
        },
        Conn {
            id: "c7",
            user: Some("héllo🎉"),
            groups: &["G1"],
        },
    ];

    const ALL: &[&str] = &["c1", "c2", "c3", "c4", "c5", "c6", "c7"];
    const NONE: &[&str] = &[];
    const NAMED: &[&str] = &["c1", "c2", "c4", "c5", "c7"];
    const ANONYMOUS: &[&str] = &["c3", "c6"];

    fn selected(f: &Filter) -> Vec<&'static str> {
        CONNS
            .iter()
            .filter(|c| f.matches(*c))
            .map(|c| c.id)
            .collect()
    }

    /// (filter, connection ids it selects)
    #[rustfmt::skip]
    const MATCHES: &[(&str, &[&str])] = &[
        // Empty filter and literals.
        ("", ALL),
        ("  \t\n ", ALL),
        ("true", ALL),
        ("false", NONE),
        ("(true)", ALL),
        // Identifiers, case-insensitive names, case-sensitive values.
        ("userId eq 'alice'", &["c1"]),
        ("USERID eq 'alice'", &["c1"]),
        ("userid eq 'alice'", &["c1"]),
        ("userId eq 'Alice'", NONE),
        ("'alice' eq userId", &["c1"]),
        ("userId eq 'O''Brien'", &["c4"]),
        ("connectionId eq 'c2'", &["c2"]),
        ("ConnectionID eq 'c2'", &["c2"]),
        // Every comparison operator, ordinal string order.
        ("userId ne 'alice'", &["c2", "c3", "c4", "c5", "c6", "c7"]),
        ("connectionId gt 'c5'", &["c6", "c7"]),
        ("connectionId ge 'c5'", &["c5", "c6", "c7"]),
        ("connectionId lt 'c2'", &["c1"]),
        ("connectionId le 'c2'", &["c1", "c2"]),
        ("userId gt 'a'", &["c1", "c2", "c7"]),
        ("userId lt 'a'", &["c4", "c5"]),
        // Null rules.
        ("userId eq null", ANONYMOUS),
        ("null eq userId", ANONYMOUS),
        ("userId ne null", NAMED),
        ("userId gt null", NONE),
        ("userId le null", NONE),
        ("null eq null", ALL),
        ("null ne null", NONE),
        ("null ge null", NONE),
        ("userId ge 'a' or userId lt 'a'", NAMED),
        ("null in groups", NONE),
        ("userId in groups", NONE),
        // Group membership, including the SPEC §7.4 strings.
        ("'g1' in groups", &["c1", "c3"]),
        ("'G1' in groups", &["c7"]),
        ("'g1' in GROUPS", &["c1", "c3"]),
        ("'it''s' in groups", &["c1"]),
        ("not ('0~L25z~c2lk' in groups)", &["c1", "c2", "c4", "c6", "c7"]),
        ("'0~Lw~c29ja2V0MQ' in groups or '0~Lw~c29ja2V0Mg' in groups", &["c1", "c2"]),
        ("not ('0~L25z~c2lk' in groups) and not ('0~L25z~' in groups)", &["c1", "c2", "c4", "c7"]),
        // Precedence: A or B and not C = A or (B and (not C)).
        ("'g1' in groups or 'g2' in groups and not ('0~L25z~c2lk' in groups)", &["c1", "c2", "c3"]),
        ("('g1' in groups or 'g2' in groups) and not ('0~L25z~c2lk' in groups)", &["c1", "c2"]),
        ("true or true and false", ALL),
        ("(true or true) and false", NONE),
        ("false and false or true", ALL),
        // `in` binds tighter than `not`.
        ("not 'g1' in groups", &["c2", "c4", "c5", "c6", "c7"]),
        ("not not 'g1' in groups", &["c1", "c3"]),
        ("not true eq false", ALL),
        // Lists.
        ("userId in ('alice', 'bob')", &["c1", "c2"]),
        ("userId in ('alice', null)", &["c1", "c3", "c6"]),
        ("connectionId in ('c3')", &["c3"]),
        ("length(userId) in (3, 7)", &["c2", "c4"]),
        ("connectionId in ('c1', 'c2') and not ('g1' in groups)", &["c2"]),
        ("(userId eq 'bob') in (true)", &["c2"]),
        // Functions.
        ("tolower(userId) eq 'alice'", &["c1"]),
        ("tolower(trim(userId)) eq 'alice'", &["c1", "c5"]),
        ("tolower(userId) eq null", ANONYMOUS),
        ("tolower(userId) eq 'héllo🎉'", &["c7"]),
        ("toupper(userId) eq 'BOB'", &["c2"]),
        ("toupper(userId) eq 'HÉLLO🎉'", &["c7"]),
        ("trim(userId) eq 'Alice'", &["c5"]),
        ("trim(' ') eq ''", ALL),
        ("length(userId) eq 5", &["c1"]),
        ("length(userId) eq 6", &["c7"]),
        ("length(userId) eq null", ANONYMOUS),
        ("length(userId) gt 100", NONE),
        ("length('') eq 0", ALL),
        ("length(groups) eq 0", &["c4"]),
        ("length(groups) ge 3", &["c1", "c3"]),
        ("length(groups) gt 1", &["c1", "c2", "c3", "c5"]),
        ("startswith(userId, 'al')", &["c1"]),
        ("startswith(userId, '')", NAMED),
        ("not startswith(userId, 'al')", &["c2", "c3", "c4", "c5", "c6", "c7"]),
        ("startswith(tolower(userId), 'o''b')", &["c4"]),
        ("startswith(null, '')", NONE),
        ("endswith(userId, 'ce  ')", &["c5"]),
        ("endswith(userId, '🎉')", &["c7"]),
        ("contains(userId, 'o')", &["c2", "c7"]),
        ("contains(connectionId, '3')", &["c3"]),
        ("contains(userId, null)", NONE),
        ("indexof(userId, 'l') eq 1", &["c1"]),
        ("indexof(userId, 'l') eq 2", &["c7"]),
        ("indexof(userId, 'z') eq -1", NAMED),
        ("indexof(userId, '') eq 0", NAMED),
        ("indexof(userId, 'z') eq null", ANONYMOUS),
        ("substring(userId, 1) eq 'lice'", &["c1"]),
        ("substring(userId, 1, 2) eq 'él'", &["c7"]),
        ("substring(userId, 4) eq 'o🎉'", &["c7"]),
        ("substring(userId, 0, 3) eq 'bob'", &["c2"]),
        ("substring(userId, 3) eq ''", &["c2"]),
        ("substring(userId, 10) eq null", ALL),
        ("substring(userId, -1) eq null", ALL),
        ("substring(userId, 0, 100) eq null", ALL),
        ("substring(userId, 0, -1) eq null", ALL),
        ("substring(userId, null) eq null", ALL),
        ("concat(userId, '!') eq 'bob!'", &["c2"]),
        ("concat(userId, '') eq 'bob'", &["c2"]),
        ("concat('', userId) eq 'bob'", &["c2"]),
        ("concat(userId, 'x') eq null", ANONYMOUS),
        ("concat('g', '1') in groups", &["c1", "c3"]),
        ("concat(concat('0~', 'Lw~'), 'c29ja2V0Mg') in groups", &["c2"]),
        ("concat(connectionId, userId) eq 'c1alice'", &["c1"]),
        // Integers compare numerically; signs.
        ("1 eq 1", ALL),
        ("2 gt 10", NONE),
        ("-1 lt 0", ALL),
        ("+5 eq 5", ALL),
        ("-9223372036854775808 lt 9223372036854775807", ALL),
        // Bools compare with eq/ne.
        ("true eq true", ALL),
        ("true ne false", ALL),
        ("(userId eq 'alice') eq false", &["c2", "c3", "c4", "c5", "c6", "c7"]),
        ("startswith(userId, 'b') eq true", &["c2"]),
        // Longer combinations and whitespace.
        ("userId eq 'alice' or userId eq 'bob' or userId eq null", &["c1", "c2", "c3", "c6"]),
        ("( ( userId eq 'alice' ) )", &["c1"]),
        ("userId ne 'alice' and userId ne null", &["c2", "c4", "c5", "c7"]),
        ("userId eq 'a' or true", ALL),
        ("\tuserId\neq\r'alice'  ", &["c1"]),
        ("'g1'in groups", &["c1", "c3"]),
        ("userId in('alice','bob')", &["c1", "c2"]),
    ];

    #[test]
    fn table_of_matches() {
        for (text, expected) in MATCHES {
            let filter =
                Filter::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse, got: {e}"));
            assert_eq!(&selected(&filter), expected, "filter {text:?}");
            // The canonical form selects the same connections.
            let printed = filter.to_string();
            let again = Filter::parse(&printed)
                .unwrap_or_else(|e| panic!("canonical {printed:?} of {text:?}: {e}"));
            assert_eq!(again, filter, "round trip of {text:?} via {printed:?}");
        }
    }

    /// (filter, error position, part of the message)
    #[rustfmt::skip]
    const ERRORS: &[(&str, usize, &str)] = &[
        ("userId eq", 9, "expected an expression after 'eq', found the end of the filter"),
        ("userId eq 'abc", 10, "unterminated string literal"),
        ("userId eq 'it''s", 10, "unterminated string literal"),
        ("(userId eq 'a'", 14, "expected ')' to close '(' opened at position 0"),
        ("(('a' in groups) or true", 24, "expected ')' to close '(' opened at position 0"),
        ("('a' in groups or", 17, "expected an expression after 'or'"),
        ("'a' in groups)", 13, "unmatched ')'"),
        ("user eq 'a'", 0, "unknown identifier 'user'; known: userId, connectionId, groups"),
        ("protocol eq 'json'", 0, "'protocol' is not supported"),
        ("not length(userId) gt 5", 4, "'not' needs a bool operand, but 'length(userId)' is int"),
        ("not length(userId) gt 5", 4, "write 'not (length(userId) gt ...)'"),
        ("not userId", 4, "'not' needs a bool operand"),
        ("length(userId) gt 5 and userId", 24, "'and' needs bool operands, but 'userId' is string"),
        ("userId or true", 0, "'or' needs bool operands"),
        ("userId", 0, "a filter must be a bool expression, but 'userId' is string"),
        ("null", 0, "a filter must be a bool expression, but 'null' is null"),
        ("length(groups)", 0, "must be a bool expression"),
        ("userId eq 1", 10, "cannot compare string 'userId' with int '1'"),
        ("1 lt 'a'", 5, "cannot compare int"),
        ("'a' in groups eq 1", 17, "cannot compare bool"),
        ("userId eq 'a' AND userId eq 'b'", 14, "write 'and'"),
        ("NOT ('a' in groups)", 0, "write 'not' instead of 'NOT'"),
        ("userId EQ 'a'", 7, "write 'eq'"),
        ("userId eq TRUE", 10, "write 'true'"),
        ("ToLower(userId) eq 'a'", 0, "function names are lowercase: write 'tolower'"),
        ("foo(userId)", 0, "unknown function 'foo'"),
        ("tolower eq 'a'", 0, "'tolower' is a function: call it as tolower(string)"),
        ("substring(userId)", 0, "'substring' takes 2 or 3 arguments, found 1"),
        ("tolower(userId, 'a') eq 'a'", 0, "'tolower' takes 1 argument, found 2"),
        ("concat(userId) eq 'a'", 0, "'concat' takes 2 arguments, found 1"),
        ("startswith()", 0, "takes 2 arguments, found 0"),
        ("startswith(userId, 1)", 19, "argument 2 of 'startswith' must be string, but '1' is int"),
        ("substring(userId, 'a') eq 'b'", 18, "argument 2 of 'substring' must be int"),
        ("length(1) eq 1", 7, "must be string or a collection"),
        ("tolower(groups) eq 'a'", 8, "'groups' can only be used as"),
        ("startswith(userId 'a')", 18, "expected ',' or ')' to close the arguments of 'startswith'"),
        ("groups eq 'a'", 0, "'groups' is a collection"),
        ("'a' eq groups", 7, "'groups' is a collection"),
        ("groups in ('a')", 0, "'groups' cannot be on the left of 'in'"),
        ("userId in userId", 10, "expected 'groups' or a parenthesized list"),
        ("userId in", 9, "expected 'groups' or a parenthesized list"),
        ("userId in ()", 11, "empty list after 'in'"),
        ("userId in ('a' 'b')", 15, "expected ',' or ')' to close the list opened at position 10"),
        ("userId in ('a', 1)", 16, "list item '1' is int, but 'userId' on the left of 'in' is string"),
        ("1 in groups", 0, "'in groups' tests a group name"),
        ("userId eq \"a\"", 10, "unexpected character '\"'; string literals use single quotes"),
        ("userId == 'a'", 7, "unexpected character '='"),
        ("true && false", 5, "logical operators are words"),
        ("userId eq - 1", 10, "a sign must be directly followed by digits"),
        ("@", 0, "unexpected character '@'"),
        ("1.5 eq 1", 0, "only integer literals"),
        ("1e3 eq 1", 0, "only integer literals"),
        ("99999999999999999999 eq 1", 0, "out of range"),
        ("true gt false", 5, "'gt' is not defined for bool values"),
        ("userId eq 'a' eq 'b'", 14, "comparisons cannot be chained"),
        ("userId eq 'a' userId", 14, "expected 'and', 'or', a comparison operator or the end"),
        ("'a' in groups in groups", 14, "expected 'and', 'or'"),
        ("not", 3, "expected an expression after 'not', found the end of the filter"),
        ("and", 0, "expected an expression, found 'and'"),
        ("userId eq 'a' and", 17, "expected an expression after 'and'"),
        ("userId eq 'a' and or", 18, "expected an expression after 'and', found 'or'"),
        ("()", 1, "expected an expression after '(', found ')'"),
        (",", 0, "expected an expression, found ','"),
        ("userId eq 'é' eq 'ü'", 14, "comparisons cannot be chained"),
        ("'é🎉' eq userId and 1", 19, "'and' needs bool operands"),
    ];

    #[test]
    fn table_of_errors() {
        for (text, position, fragment) in ERRORS {
            let err = Filter::parse(text).expect_err(text);
            assert_eq!(err.position, *position, "position for {text:?}: {err}");
            assert!(
                err.message.contains(fragment),
                "message for {text:?} should contain {fragment:?}, got {:?}",
                err.message
            );
        }
    }

    #[test]
    fn error_display_names_the_position() {
        let err = Filter::parse("user eq 'a'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown identifier 'user'; known: userId, connectionId, groups (at position 0)"
        );
        let err = Filter::parse("(userId eq 'a'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected ')' to close '(' opened at position 0, found the end of the filter \
             (at position 14)"
        );
    }

    #[test]
    fn long_excerpts_are_clipped() {
        let long = format!("'{}'", "x".repeat(200));
        let err = Filter::parse(&long).unwrap_err();
        assert!(err.message.len() < 200, "{}", err.message);
        assert!(err.message.contains("..."), "{}", err.message);
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}true{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Filter::parse(&ok).unwrap().matches(&CONNS[0]));
        let deep = format!(
            "{}true{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let err = Filter::parse(&deep).unwrap_err();
        assert_eq!(err.position, MAX_DEPTH);
        assert!(err.message.contains("MAX_DEPTH"), "{err}");

        let nots = format!("{}true", "not ".repeat(MAX_DEPTH + 1));
        assert_eq!(Filter::parse(&nots).unwrap_err().position, 4 * MAX_DEPTH);
        let calls = format!(
            "{}userId{} eq 'a'",
            "trim(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            Filter::parse(&calls).unwrap_err().position,
            5 * MAX_DEPTH + 4
        );
        let lists = format!(
            "{}true{}",
            "true in (".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            Filter::parse(&lists).unwrap_err().position,
            9 * MAX_DEPTH + 8
        );

        // Far past the limit: rejected without exhausting the stack.
        let huge = "(".repeat(MAX_FILTER_LEN);
        assert!(Filter::parse(&huge).is_err());
        let huge_not = "not ".repeat(MAX_FILTER_LEN / 4);
        assert!(Filter::parse(&huge_not).is_err());
    }

    #[test]
    fn clauses_are_bounded() {
        let clause = "true eq true";
        let ok = vec![clause; MAX_CLAUSES].join(" or ");
        assert!(Filter::parse(&ok).is_ok());
        let many = vec![clause; MAX_CLAUSES + 1].join(" or ");
        let err = Filter::parse(&many).unwrap_err();
        assert_eq!(err.position, MAX_CLAUSES * (clause.len() + 4));
        assert!(err.message.contains("MAX_CLAUSES"), "{err}");
        // Long flat `and` / `or` chains of literals are fine: they do not nest.
        let flat = vec!["true"; 800].join(" and ");
        assert!(Filter::parse(&flat).unwrap().matches(&CONNS[0]));
    }

    #[test]
    fn length_is_bounded_and_counted_in_chars() {
        let exact = format!("{}true", " ".repeat(MAX_FILTER_LEN - 4));
        assert!(Filter::parse(&exact).is_ok());
        let over = format!("{}true", " ".repeat(MAX_FILTER_LEN - 3));
        let err = Filter::parse(&over).unwrap_err();
        assert_eq!(err.position, MAX_FILTER_LEN);
        assert!(err.message.contains("MAX_FILTER_LEN"), "{err}");
        // Positions are char offsets: 11 ASCII chars, then two-byte chars.
        let wide = format!("userId eq '{}'", "é".repeat(5000));
        let err = Filter::parse(&wide).unwrap_err();
        assert_eq!(err.position, 11 + (MAX_FILTER_LEN - 11).div_ceil(2));
    }

    #[test]
    fn group_literals_in_order_without_duplicates() {
        let f = Filter::parse(
            "'0~Lw~c29ja2V0MQ' in groups or ('b' in groups and not ('0~Lw~c29ja2V0MQ' in \
             groups)) or userId in groups or concat('x', 'y') in groups or \
             startswith(userId, 'not-a-group')",
        )
        .unwrap();
        assert_eq!(f.group_literals(), vec!["0~Lw~c29ja2V0MQ", "b"]);
        assert!(Filter::parse("").unwrap().group_literals().is_empty());
    }

    #[test]
    fn empty_filter_matches_all() {
        let f = Filter::parse(" ").unwrap();
        assert!(f.is_match_all());
        assert_eq!(f.to_string(), "");
        assert!(!Filter::parse("true").unwrap().is_match_all());
    }

    #[test]
    fn canonical_form() {
        for (text, canonical) in [
            ("USERID eq 'O''Brien'", "userId eq 'O''Brien'"),
            (
                "'a' in groups or 'b' in groups and not ('c' in groups)",
                "'a' in groups or 'b' in groups and not ('c' in groups)",
            ),
            (
                "(('a' in groups or true)) and false",
                "('a' in groups or true) and false",
            ),
            ("(true or false) or true", "(true or false) or true"),
            ("not (userId eq 'a')", "not (userId eq 'a')"),
            ("userId in('a',null)", "userId in ('a', null)"),
            ("+7 eq length( groups )", "7 eq length(groups)"),
            ("(userId eq 'a') eq (true)", "(userId eq 'a') eq true"),
        ] {
            assert_eq!(
                Filter::parse(text).unwrap().to_string(),
                canonical,
                "{text:?}"
            );
        }
    }

    #[test]
    fn evaluation_borrows_for_common_filters() {
        let f = Filter::parse("trim(substring(userId, 1)) eq 'lice'").unwrap();
        let Some(Expr::Cmp(_, l, _)) = &f.expr else {
            panic!("not a comparison")
        };
        assert!(matches!(
            eval(l, &CONNS[0]),
            Value::Str(Cow::Borrowed("lice"))
        ));
        let lower = Filter::parse("tolower(userId) eq 'x'").unwrap();
        let Some(Expr::Cmp(_, l, _)) = &lower.expr else {
            panic!("not a comparison")
        };
        assert!(matches!(
            eval(l, &CONNS[0]),
            Value::Str(Cow::Borrowed("alice"))
        ));
    }

    // --- property tests ---------------------------------------------------------------------

    fn call(f: Func, args: Vec<Expr>) -> Expr {
        Expr::Call(f, args)
    }

    fn str_leaf() -> BoxedStrategy<Expr> {
        prop_oneof![
            3 => "[a-zA-Z0-9' ~é🎉]{0,6}".prop_map(|s| Expr::Str(s.into_boxed_str())),
            2 => Just(Expr::Prop(Prop::UserId)),
            1 => Just(Expr::Prop(Prop::ConnectionId)),
            1 => Just(Expr::Null),
        ]
        .boxed()
    }

    fn int_leaf() -> BoxedStrategy<Expr> {
        prop_oneof![
            (-3i64..10).prop_map(Expr::Int),
            any::<i64>().prop_map(Expr::Int),
            Just(call(Func::Length, vec![Expr::Prop(Prop::Groups)])),
        ]
        .boxed()
    }

    fn str_expr() -> BoxedStrategy<Expr> {
        str_leaf()
            .prop_recursive(3, 12, 3, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|s| call(Func::ToLower, vec![s])),
                    inner.clone().prop_map(|s| call(Func::ToUpper, vec![s])),
                    inner.clone().prop_map(|s| call(Func::Trim, vec![s])),
                    (inner.clone(), inner.clone())
                        .prop_map(|(a, b)| call(Func::Concat, vec![a, b])),
                    (inner.clone(), int_leaf())
                        .prop_map(|(s, i)| call(Func::Substring, vec![s, i])),
                    (inner, int_leaf(), int_leaf())
                        .prop_map(|(s, i, n)| call(Func::Substring, vec![s, i, n])),
                ]
            })
            .boxed()
    }

    fn int_expr() -> BoxedStrategy<Expr> {
        prop_oneof![
            int_leaf(),
            str_expr().prop_map(|s| call(Func::Length, vec![s])),
            (str_expr(), str_expr()).prop_map(|(a, b)| call(Func::IndexOf, vec![a, b])),
        ]
        .boxed()
    }

    fn any_cmp() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
        ]
    }

    fn cmp(op: CmpOp, l: Expr, r: Expr) -> Expr {
        Expr::Cmp(op, Box::new(l), Box::new(r))
    }

    fn bool_expr() -> BoxedStrategy<Expr> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Expr::Bool),
            (any_cmp(), str_expr(), str_expr()).prop_map(|(op, l, r)| cmp(op, l, r)),
            (any_cmp(), int_expr(), int_expr()).prop_map(|(op, l, r)| cmp(op, l, r)),
            str_expr().prop_map(|s| Expr::InGroups(Box::new(s))),
            (str_expr(), proptest::collection::vec(str_expr(), 1..3))
                .prop_map(|(x, items)| Expr::InList(Box::new(x), items)),
            (
                prop_oneof![
                    Just(Func::StartsWith),
                    Just(Func::EndsWith),
                    Just(Func::Contains)
                ],
                str_expr(),
                str_expr()
            )
                .prop_map(|(f, a, b)| call(f, vec![a, b])),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|x| Expr::Not(Box::new(x))),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                (
                    prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)],
                    inner.clone(),
                    inner.clone()
                )
                    .prop_map(|(op, l, r)| cmp(op, l, r)),
                (inner.clone(), proptest::collection::vec(inner, 1..3))
                    .prop_map(|(x, items)| Expr::InList(Box::new(x), items)),
            ]
        })
        .boxed()
    }

    const SOUP: &[&str] = &[
        "userId",
        "connectionId",
        "groups",
        "GROUPS",
        "'a'",
        "'it''s'",
        "'g1'",
        "''",
        "1",
        "-2",
        "(",
        "(",
        ")",
        ")",
        ",",
        "and",
        "or",
        "not",
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "in",
        "true",
        "false",
        "null",
        "tolower",
        "toupper",
        "trim",
        "length",
        "substring",
        "concat",
        "startswith",
        "endswith",
        "contains",
        "indexof",
        "'",
        "AND",
        "x",
    ];

    /// Parsing never panics; errors point inside the text (or just past it); accepted filters
    /// evaluate without panicking and print a form that parses back to the same filter.
    fn check_text(text: &str) -> Result<(), TestCaseError> {
        match Filter::parse(text) {
            Ok(f) => {
                for c in &CONNS {
                    f.matches(c);
                }
                let printed = f.to_string();
                // The canonical form spaces every operator, so it may outgrow the length limit.
                if printed.len() <= MAX_FILTER_LEN {
                    let again = Filter::parse(&printed);
                    prop_assert_eq!(
                        again.as_ref(),
                        Ok(&f),
                        "reprint {:?} of {:?}",
                        printed,
                        text
                    );
                }
            }
            Err(e) => prop_assert!(e.position <= text.chars().count(), "{e} for {text:?}"),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn random_text_never_panics(text in "\\PC{0,64}") {
            check_text(&text)?;
        }

        #[test]
        fn random_bytes_never_panic(text in any::<String>()) {
            check_text(&text)?;
        }

        #[test]
        fn token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(SOUP), 0..24)) {
            check_text(&words.join(" "))?;
        }

        #[test]
        fn generated_filters_round_trip(expr in bool_expr()) {
            let filter = Filter { expr: Some(expr) };
            let printed = filter.to_string();
            let parsed = Filter::parse(&printed);
            prop_assert_eq!(parsed.as_ref(), Ok(&filter), "printed as {:?}", printed);
            for c in &CONNS {
                filter.matches(c);
            }
        }
    }
}
