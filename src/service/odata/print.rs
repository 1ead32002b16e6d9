//! Canonical printing: parentheses exactly where the tree needs them, so that printing and
//! parsing again yields the same tree.

use std::fmt;

use super::*;

pub(super) const LEVEL_OR: u8 = 1;
pub(super) const LEVEL_AND: u8 = 2;
pub(super) const LEVEL_CMP: u8 = 3;
pub(super) const LEVEL_NOT: u8 = 4;
pub(super) const LEVEL_IN: u8 = 5;
pub(super) const LEVEL_PRIMARY: u8 = 6;

impl Expr {
    pub(super) fn level(&self) -> u8 {
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
    pub(super) fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.level() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    pub(super) fn fmt_joined(
        f: &mut fmt::Formatter<'_>,
        items: &[Expr],
        sep: &str,
        min: u8,
    ) -> fmt::Result {
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
