//! The evaluator: a parsed expression against one [`super::FilterTarget`], borrowing where it
//! can, and the collection of `'x' in groups` literals for lints.

use std::borrow::Cow;

use super::*;

#[derive(Debug, PartialEq)]
pub(super) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
}

pub(super) fn eval_bool(e: &Expr, t: &dyn FilterTarget) -> bool {
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

pub(super) fn eval<'a>(e: &'a Expr, t: &'a dyn FilterTarget) -> Value<'a> {
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

pub(super) fn compare(op: CmpOp, l: &Value<'_>, r: &Value<'_>) -> bool {
    match op {
        CmpOp::Eq => l == r,
        CmpOp::Ne => l != r,
        _ => match (l, r) {
            (Value::Int(a), Value::Int(b)) => op.holds(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => op.holds(a.as_ref().cmp(b.as_ref())),
            // Ordering with a null is false (docs/protocol.md §0 A3); bools are never ordered.
            _ => false,
        },
    }
}

pub(super) fn call<'a>(f: Func, args: &'a [Expr], t: &'a dyn FilterTarget) -> Value<'a> {
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

pub(super) fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn char_len(s: &str) -> i64 {
    to_i64(s.chars().count())
}

pub(super) fn map_str<'a>(v: Value<'a>, f: impl FnOnce(Cow<'a, str>) -> Cow<'a, str>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(f(s)),
        _ => Value::Null,
    }
}

pub(super) fn predicate(
    s: Value<'_>,
    p: Value<'_>,
    test: impl FnOnce(&str, &str) -> bool,
) -> Value<'static> {
    match (s, p) {
        (Value::Str(s), Value::Str(p)) => Value::Bool(test(&s, &p)),
        // startswith & co. of a null are false (docs/protocol.md §0 A3).
        _ => Value::Bool(false),
    }
}

/// `s[from..to]` (byte offsets on char boundaries), still borrowed if `s` was.
pub(super) fn slice(s: Cow<'_, str>, from: usize, to: usize) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(&b[from..to]),
        Cow::Owned(o) => Cow::Owned(o[from..to].to_owned()),
    }
}

pub(super) fn to_lower(s: Cow<'_, str>) -> Cow<'_, str> {
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

pub(super) fn to_upper(s: Cow<'_, str>) -> Cow<'_, str> {
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

pub(super) fn trim(s: Cow<'_, str>) -> Cow<'_, str> {
    let from = s.len() - s.trim_start().len();
    let to = s.trim_end().len();
    if from >= to {
        slice(s, 0, 0)
    } else {
        slice(s, from, to)
    }
}

/// Chars `start .. start + count` of `s`; null when the range leaves the string.
pub(super) fn substring(s: Cow<'_, str>, start: i64, count: Option<i64>) -> Value<'_> {
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

pub(super) fn collect_group_literals<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
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
