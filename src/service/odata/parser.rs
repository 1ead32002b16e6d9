//! The parser: recursive descent, one function per precedence level, type-checking as it
//! builds, within the limits of [`super::MAX_DEPTH`] and [`super::MAX_CLAUSES`].

use super::*;

/// A parsed sub-expression with its static type and where it came from.
pub(super) struct Node {
    pub(super) expr: Expr,
    pub(super) ty: Ty,
    /// Char offset of its first token.
    pub(super) pos: usize,
    /// Byte range in the source.
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) struct Parser<'s> {
    pub(super) src: &'s str,
    /// Always ends with `Tok::Eof`.
    pub(super) toks: Vec<Token>,
    pub(super) i: usize,
    pub(super) depth: usize,
    pub(super) clauses: usize,
}

pub(super) type PResult<T> = Result<T, FilterError>;

impl<'s> Parser<'s> {
    pub(super) fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    /// Consumes the current token; at the end it keeps returning `Eof`.
    pub(super) fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    pub(super) fn word(&self, t: &Token) -> Option<&'s str> {
        matches!(t.tok, Tok::Word).then(|| &self.src[t.start..t.end])
    }

    pub(super) fn at_keyword(&self, keyword: &str) -> bool {
        self.word(self.peek()) == Some(keyword)
    }

    pub(super) fn peek_cmp(&self) -> Option<CmpOp> {
        self.word(self.peek()).and_then(CmpOp::from_keyword)
    }

    /// The source text of `node`, quoted for a message.
    pub(super) fn excerpt(&self, node: &Node) -> String {
        quoted(&self.src[node.start..node.end])
    }

    pub(super) fn describe(&self, t: &Token) -> String {
        match t.tok {
            Tok::Eof => "the end of the filter".to_owned(),
            Tok::Str(_) => format!("the string {}", clip(&self.src[t.start..t.end])),
            _ => format!("'{}'", clip(&self.src[t.start..t.end])),
        }
    }

    /// A hint for `AND`, `Not`, `EQ` and friends.
    pub(super) fn case_hint(&self, t: &Token) -> String {
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

    pub(super) fn enter(&mut self, at: &Token) -> PResult<()> {
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

    pub(super) fn leave(&mut self) {
        self.depth -= 1;
    }

    pub(super) fn clause(&mut self, pos: usize) -> PResult<()> {
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

    pub(super) fn collection_hint(ty: Ty) -> &'static str {
        if ty == Ty::Collection {
            "; 'groups' can only be used as 'name' in groups or length(groups)"
        } else {
            ""
        }
    }

    /// `or` (`keyword == "or"`) or `and` level: operands joined by `keyword`, all bool.
    pub(super) fn parse_logical(&mut self, keyword: &'static str) -> PResult<Node> {
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

    pub(super) fn parse_or(&mut self) -> PResult<Node> {
        self.parse_logical("or")
    }

    pub(super) fn require_bool(&self, node: &Node, keyword: &str) -> PResult<()> {
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

    pub(super) fn parse_cmp(&mut self) -> PResult<Node> {
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

    pub(super) fn check_comparable(
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

    pub(super) fn parse_unary(&mut self) -> PResult<Node> {
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

    pub(super) fn parse_in(&mut self) -> PResult<Node> {
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

    pub(super) fn parse_in_list(&mut self, left: Node, open: &Token) -> PResult<Node> {
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
            if let Some(end) = self.list_separator("the list", open)? {
                break end;
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

    pub(super) fn parse_primary(&mut self) -> PResult<Node> {
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
                        None => Err(self
                            .misplaced_word()
                            .unwrap_or_else(|| self.unknown_identifier(&t, w))),
                    },
                }
            }
            Tok::RParen | Tok::Comma | Tok::Eof => Err(self.expected_expression(&t, prev.as_ref())),
        }
    }

    pub(super) fn expected_expression(&self, t: &Token, prev: Option<&Token>) -> FilterError {
        let after = prev.map_or(String::new(), |p| format!(" after {}", self.describe(p)));
        FilterError::new(
            t.pos,
            format!("expected an expression{after}, found {}", self.describe(t)),
        )
    }

    /// After an operand, a word that is neither a keyword nor a function call is a syntax error,
    /// and syntax is checked before names (as the service's OData parser does: `invalid filter`
    /// fails at `filter`, docs/protocol.md §7.5), so it is reported before an unknown identifier.
    pub(super) fn misplaced_word(&self) -> Option<FilterError> {
        let next = self.peek();
        let w = self.word(next)?;
        if KEYWORDS.contains(&w.to_ascii_lowercase().as_str())
            || matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::LParen))
        {
            return None;
        }
        Some(FilterError::new(
            next.pos,
            format!(
                "expected 'and', 'or', a comparison operator or the end of the filter, found {}",
                self.describe(next)
            ),
        ))
    }

    pub(super) fn unknown_identifier(&self, t: &Token, w: &str) -> FilterError {
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

    pub(super) fn parse_call(&mut self, name: &Token, w: &str) -> PResult<Node> {
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
        let (args, end) = self.parse_arguments(func)?;
        self.check_arguments(func, name, &args)?;
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

    /// The parenthesized arguments of `func`, and the byte offset after the `)`.
    fn parse_arguments(&mut self, func: Func) -> PResult<(Vec<Node>, usize)> {
        let open = self.bump();
        self.enter(&open)?;
        let mut args: Vec<Node> = Vec::new();
        let end = if matches!(self.peek().tok, Tok::RParen) {
            self.bump().end
        } else {
            let what = format!("the arguments of '{}'", func.name());
            loop {
                args.push(self.parse_or()?);
                if let Some(end) = self.list_separator(&what, &open)? {
                    break end;
                }
            }
        };
        self.leave();
        Ok((args, end))
    }

    /// After an item of a parenthesized list (`what`, opened by `open`): `None` after a `,`, the
    /// byte offset after the closing `)`, or an error naming what was left open.
    fn list_separator(&mut self, what: &str, open: &Token) -> PResult<Option<usize>> {
        let t = self.bump();
        match t.tok {
            Tok::Comma => Ok(None),
            Tok::RParen => Ok(Some(t.end)),
            _ => Err(FilterError::new(
                t.pos,
                format!(
                    "expected ',' or ')' to close {what} opened at position {}, found {}{}",
                    open.pos,
                    self.describe(&t),
                    self.case_hint(&t)
                ),
            )),
        }
    }

    /// Checks the number and static types of `func`'s arguments.
    fn check_arguments(&self, func: Func, name: &Token, args: &[Node]) -> PResult<()> {
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
        Ok(())
    }
}
