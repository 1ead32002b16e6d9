//! The syntax tree of a filter and its static types: properties, comparison operators,
//! functions and expressions, as the parser builds them and the evaluator reads them.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prop {
    UserId,
    ConnectionId,
    Groups,
}

impl Prop {
    pub(super) fn name(self) -> &'static str {
        match self {
            Prop::UserId => "userId",
            Prop::ConnectionId => "connectionId",
            Prop::Groups => "groups",
        }
    }

    pub(super) fn lookup(word: &str) -> Option<Prop> {
        [Prop::UserId, Prop::ConnectionId, Prop::Groups]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(word))
    }

    pub(super) fn ty(self) -> Ty {
        match self {
            Prop::UserId | Prop::ConnectionId => Ty::Str,
            Prop::Groups => Ty::Collection,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub(super) fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }

    pub(super) fn from_keyword(word: &str) -> Option<CmpOp> {
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

    pub(super) fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    pub(super) fn holds(self, ord: Ordering) -> bool {
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
pub(super) enum Func {
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

pub(super) const FUNCS: [Func; 10] = [
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
pub(super) const KNOWN_FUNCTIONS: &str =
    "tolower, toupper, trim, substring, endswith, startswith, contains, indexof, concat, length";

impl Func {
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn usage(self) -> &'static str {
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

    pub(super) fn from_name(word: &str) -> Option<Func> {
        FUNCS.into_iter().find(|f| f.name() == word)
    }

    pub(super) fn from_name_ignore_case(word: &str) -> Option<Func> {
        FUNCS
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(word))
    }

    /// (minimum, maximum) argument count.
    pub(super) fn arity(self) -> (usize, usize) {
        match self {
            Func::ToLower | Func::ToUpper | Func::Trim | Func::Length => (1, 1),
            Func::Substring => (2, 3),
            _ => (2, 2),
        }
    }

    /// Types accepted by argument `i` (besides the `null` literal, always accepted).
    pub(super) fn param(self, i: usize) -> &'static [Ty] {
        match (self, i) {
            (Func::Length, _) => &[Ty::Str, Ty::Collection],
            (Func::Substring, 1 | 2) => &[Ty::Int],
            _ => &[Ty::Str],
        }
    }

    pub(super) fn result(self) -> Ty {
        match self {
            Func::EndsWith | Func::StartsWith | Func::Contains => Ty::Bool,
            Func::IndexOf | Func::Length => Ty::Int,
            _ => Ty::Str,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
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
pub(super) enum Ty {
    Bool,
    Int,
    Str,
    Null,
    Collection,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
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
pub(super) fn eq_compatible(a: Ty, b: Ty) -> bool {
    match (a, b) {
        (Ty::Collection, _) | (_, Ty::Collection) => false,
        (Ty::Null, _) | (_, Ty::Null) => true,
        _ => a == b,
    }
}
