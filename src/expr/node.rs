//! Typed evaluation trees: the per-record hot path.
//!
//! Compilation resolves names and types once, so every node knows its result type: integer and
//! timestamp nodes yield `Option<i64>`, float nodes `Option<f64>`, boolean nodes `Option<bool>` and
//! string nodes `Option<Cow<str>>`, with `None` standing for SQL NULL. Evaluation reads fields by
//! position and never allocates, except in string functions that build a new string. The shapes that
//! dominate real jobs (`col op literal`, `col cmp literal`) have their own variants to save a level of
//! dispatch.
use super::like::{like_dynamic, LikePattern};
use super::time;
use super::value::Value;
use eddy_api::{Batch, DataType, Datum, Row};
use std::borrow::Cow;
use std::cmp::Ordering;

/// `+ - * / %`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    /// Integer arithmetic: wraps on overflow (as Java and Flink do); NULL on division by zero.
    #[inline]
    pub(crate) fn int(self, a: i64, b: i64) -> Option<i64> {
        match self {
            ArithOp::Add => Some(a.wrapping_add(b)),
            ArithOp::Sub => Some(a.wrapping_sub(b)),
            ArithOp::Mul => Some(a.wrapping_mul(b)),
            ArithOp::Div => (b != 0).then(|| a.wrapping_div(b)),
            ArithOp::Mod => (b != 0).then(|| a.wrapping_rem(b)),
        }
    }

    /// Float arithmetic; NULL on division by zero rather than an infinity.
    #[inline]
    pub(crate) fn float(self, a: f64, b: f64) -> Option<f64> {
        match self {
            ArithOp::Add => Some(a + b),
            ArithOp::Sub => Some(a - b),
            ArithOp::Mul => Some(a * b),
            ArithOp::Div => (b != 0.0).then(|| a / b),
            ArithOp::Mod => (b != 0.0).then(|| a % b),
        }
    }
}

/// `= <> < <= > >=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    #[inline]
    pub(crate) fn test<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }

    /// The operator with its operands swapped (`1 < x` is `x > 1`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }
}

/// Which ends `TRIM` works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrimSide {
    Both,
    Leading,
    Trailing,
}

/// Evaluation of a typed node to its Rust value (`None` is NULL).
pub(crate) trait Eval {
    type Out<'a>: PartialOrd
    where
        Self: 'a;
    fn eval<'a>(&'a self, row: Row<'a>) -> Option<Self::Out<'a>>;
}

/// The type-generic forms: they pick one of several values of the same type.
#[derive(Clone, Debug)]
pub(crate) enum Choice<N> {
    /// `CASE WHEN c THEN v ... ELSE e END`.
    Case(Box<[(BoolNode, N)]>, N),
    /// First non-NULL argument.
    Coalesce(Box<[N]>),
    /// Largest argument; NULL if any is NULL (as in Flink).
    Greatest(Box<[N]>),
    /// Smallest argument; NULL if any is NULL.
    Least(Box<[N]>),
}

impl<N: Eval> Choice<N> {
    fn eval<'a>(&'a self, row: Row<'a>) -> Option<N::Out<'a>> {
        match self {
            Choice::Case(whens, otherwise) => {
                for (cond, value) in whens.iter() {
                    if cond.eval(row) == Some(true) {
                        return value.eval(row);
                    }
                }
                otherwise.eval(row)
            }
            Choice::Coalesce(items) => items.iter().find_map(|n| n.eval(row)),
            Choice::Greatest(items) => extreme(items, row, Ordering::Greater),
            Choice::Least(items) => extreme(items, row, Ordering::Less),
        }
    }
}

fn extreme<'a, N: Eval>(items: &'a [N], row: Row<'a>, want: Ordering) -> Option<N::Out<'a>> {
    let mut best: Option<N::Out<'a>> = None;
    for n in items {
        let v = n.eval(row)?;
        best = match best {
            Some(b) if v.partial_cmp(&b) != Some(want) => Some(b),
            _ => Some(v),
        };
    }
    best
}

/// `needle IN (list)` with SQL semantics: TRUE on a match, else NULL if anything was NULL, else FALSE.
#[derive(Clone, Debug)]
pub(crate) struct InList<N> {
    pub(crate) needle: N,
    pub(crate) list: Box<[N]>,
}

impl<N: Eval> InList<N> {
    fn eval(&self, row: Row<'_>) -> Option<bool> {
        let v = self.needle.eval(row)?;
        let mut saw_null = false;
        for n in self.list.iter() {
            match n.eval(row) {
                Some(x) if x == v => return Some(true),
                Some(_) => {}
                None => saw_null = true,
            }
        }
        (!saw_null).then_some(false)
    }
}

/// An integer- or timestamp-valued node.
#[derive(Clone, Debug)]
pub(crate) enum IntNode {
    Null,
    Lit(i64),
    Col(usize),
    /// `col op literal`.
    ColLit(ArithOp, usize, i64),
    Arith(ArithOp, Box<(IntNode, IntNode)>),
    Neg(Box<IntNode>),
    Abs(Box<IntNode>),
    /// `round(x, d)` for integers: only negative `d` changes anything.
    Round(Box<(IntNode, IntNode)>),
    /// Characters in a string.
    Length(Box<StrNode>),
    /// Truncating cast (NaN gives 0, out-of-range values saturate, as in Java).
    FromFloat(Box<FloatNode>),
    FromBool(Box<BoolNode>),
    /// Parsed integer, NULL when the text is not one.
    FromStr(Box<StrNode>),
    /// Parsed timestamp text, NULL when it is not one.
    TsFromStr(Box<StrNode>),
    Choice(Box<Choice<IntNode>>),
}

impl Eval for IntNode {
    type Out<'a> = i64;

    #[inline]
    fn eval<'a>(&'a self, row: Row<'a>) -> Option<i64> {
        match self {
            IntNode::Null => None,
            IntNode::Lit(v) => Some(*v),
            IntNode::Col(i) => row.int(*i),
            IntNode::ColLit(op, i, v) => op.int(row.int(*i)?, *v),
            IntNode::Arith(op, ab) => op.int(ab.0.eval(row)?, ab.1.eval(row)?),
            IntNode::Neg(n) => Some(n.eval(row)?.wrapping_neg()),
            IntNode::Abs(n) => Some(n.eval(row)?.wrapping_abs()),
            IntNode::Round(nd) => Some(round_int(nd.0.eval(row)?, nd.1.eval(row)?)),
            IntNode::Length(s) => Some(s.eval(row)?.chars().count() as i64),
            IntNode::FromFloat(f) => Some(f.eval(row)? as i64),
            IntNode::FromBool(b) => Some(i64::from(b.eval(row)?)),
            IntNode::FromStr(s) => s.eval(row)?.trim().parse().ok(),
            IntNode::TsFromStr(s) => time::parse_timestamp(&s.eval(row)?),
            IntNode::Choice(c) => c.eval(row),
        }
    }
}

/// Rounds half away from zero to `digits` decimal places (negative: tens, hundreds, ...).
fn round_int(v: i64, digits: i64) -> i64 {
    if digits >= 0 {
        return v;
    }
    if digits < -18 {
        return 0;
    }
    let p = 10i128.pow(digits.unsigned_abs() as u32);
    let v = i128::from(v);
    let rounded = (v + v.signum() * (p / 2)) / p * p;
    rounded as i64
}

/// Rounds half away from zero to `digits` decimal places.
fn round_float(v: f64, digits: i64) -> f64 {
    match digits {
        0 => v.round(),
        // An f64 has at most 17 significant digits: more places cannot change it.
        17.. => v,
        1..=16 => {
            let p = 10f64.powi(digits as i32);
            (v * p).round() / p
        }
        -308..=-1 => {
            let p = 10f64.powi(-digits as i32);
            (v / p).round() * p
        }
        _ => 0.0,
    }
}

/// A float-valued node.
#[derive(Clone, Debug)]
pub(crate) enum FloatNode {
    Null,
    Lit(f64),
    /// A float column, or an int/timestamp column read as float.
    Col(usize),
    /// `col op literal`.
    ColLit(ArithOp, usize, f64),
    Arith(ArithOp, Box<(FloatNode, FloatNode)>),
    Neg(Box<FloatNode>),
    Abs(Box<FloatNode>),
    Round(Box<(FloatNode, IntNode)>),
    Floor(Box<FloatNode>),
    Ceil(Box<FloatNode>),
    FromInt(Box<IntNode>),
    FromBool(Box<BoolNode>),
    FromStr(Box<StrNode>),
    Choice(Box<Choice<FloatNode>>),
}

impl Eval for FloatNode {
    type Out<'a> = f64;

    #[inline]
    fn eval<'a>(&'a self, row: Row<'a>) -> Option<f64> {
        match self {
            FloatNode::Null => None,
            FloatNode::Lit(v) => Some(*v),
            FloatNode::Col(i) => row.float(*i),
            FloatNode::ColLit(op, i, v) => op.float(row.float(*i)?, *v),
            FloatNode::Arith(op, ab) => op.float(ab.0.eval(row)?, ab.1.eval(row)?),
            FloatNode::Neg(n) => Some(-n.eval(row)?),
            FloatNode::Abs(n) => Some(n.eval(row)?.abs()),
            FloatNode::Round(nd) => Some(round_float(nd.0.eval(row)?, nd.1.eval(row)?)),
            FloatNode::Floor(n) => Some(n.eval(row)?.floor()),
            FloatNode::Ceil(n) => Some(n.eval(row)?.ceil()),
            FloatNode::FromInt(n) => Some(n.eval(row)? as f64),
            FloatNode::FromBool(b) => Some(if b.eval(row)? { 1.0 } else { 0.0 }),
            FloatNode::FromStr(s) => s.eval(row)?.trim().parse().ok(),
            FloatNode::Choice(c) => c.eval(row),
        }
    }
}

/// A boolean-valued node, evaluated with three-valued logic.
#[derive(Clone, Debug)]
pub(crate) enum BoolNode {
    Null,
    Lit(bool),
    Col(usize),
    Not(Box<BoolNode>),
    And(Box<(BoolNode, BoolNode)>),
    Or(Box<(BoolNode, BoolNode)>),
    ColIsNull(usize),
    IsNull(Box<Typed>),
    /// `col cmp literal` on an int or timestamp column.
    ColCmpInt(CmpOp, usize, i64),
    CmpIntLit(CmpOp, Box<IntNode>, i64),
    CmpInt(CmpOp, Box<(IntNode, IntNode)>),
    ColCmpFloat(CmpOp, usize, f64),
    CmpFloat(CmpOp, Box<(FloatNode, FloatNode)>),
    ColCmpStr(CmpOp, usize, Box<str>),
    CmpStr(CmpOp, Box<(StrNode, StrNode)>),
    CmpBool(CmpOp, Box<(BoolNode, BoolNode)>),
    InInt(Box<InList<IntNode>>),
    InFloat(Box<InList<FloatNode>>),
    InStr(Box<InList<StrNode>>),
    InBool(Box<InList<BoolNode>>),
    Like(Box<(StrNode, LikePattern)>),
    LikeDyn(Box<(StrNode, StrNode)>),
    /// `'true'`/`'false'` (also `t`/`f`, `yes`/`no`, `1`/`0`), else NULL.
    FromStr(Box<StrNode>),
    FromInt(Box<IntNode>),
    FromFloat(Box<FloatNode>),
    Choice(Box<Choice<BoolNode>>),
}

impl Eval for BoolNode {
    type Out<'a> = bool;

    #[inline]
    fn eval<'a>(&'a self, row: Row<'a>) -> Option<bool> {
        match self {
            BoolNode::Null => None,
            BoolNode::Lit(b) => Some(*b),
            BoolNode::Col(i) => row.get(*i).as_bool(),
            BoolNode::Not(b) => Some(!b.eval(row)?),
            BoolNode::And(ab) => and3(&ab.0, &ab.1, row),
            BoolNode::Or(ab) => or3(&ab.0, &ab.1, row),
            BoolNode::ColIsNull(i) => Some(row.get(*i).is_null()),
            BoolNode::IsNull(t) => Some(t.is_null(row)),
            BoolNode::ColCmpInt(op, i, v) => Some(op.test(&row.int(*i)?, v)),
            BoolNode::CmpIntLit(op, n, v) => Some(op.test(&n.eval(row)?, v)),
            BoolNode::CmpInt(op, ab) => Some(op.test(&ab.0.eval(row)?, &ab.1.eval(row)?)),
            BoolNode::ColCmpFloat(op, i, v) => Some(op.test(&row.float(*i)?, v)),
            BoolNode::CmpFloat(op, ab) => Some(op.test(&ab.0.eval(row)?, &ab.1.eval(row)?)),
            BoolNode::ColCmpStr(op, i, v) => Some(op.test(row.str(*i)?, &**v)),
            BoolNode::CmpStr(op, ab) => Some(op.test(&*ab.0.eval(row)?, &*ab.1.eval(row)?)),
            BoolNode::CmpBool(op, ab) => Some(op.test(&ab.0.eval(row)?, &ab.1.eval(row)?)),
            BoolNode::InInt(l) => l.eval(row),
            BoolNode::InFloat(l) => l.eval(row),
            BoolNode::InStr(l) => l.eval(row),
            BoolNode::InBool(l) => l.eval(row),
            BoolNode::Like(sp) => Some(sp.1.matches(&sp.0.eval(row)?)),
            BoolNode::LikeDyn(sp) => Some(like_dynamic(&sp.0.eval(row)?, &sp.1.eval(row)?)),
            BoolNode::FromStr(s) => parse_bool(&s.eval(row)?),
            BoolNode::FromInt(n) => Some(n.eval(row)? != 0),
            BoolNode::FromFloat(f) => Some(f.eval(row)? != 0.0),
            BoolNode::Choice(c) => c.eval(row),
        }
    }
}

/// SQL AND: FALSE wins over NULL.
#[inline]
fn and3(a: &BoolNode, b: &BoolNode, row: Row<'_>) -> Option<bool> {
    match a.eval(row) {
        Some(false) => Some(false),
        l => match b.eval(row) {
            Some(false) => Some(false),
            r => l.and(r),
        },
    }
}

/// SQL OR: TRUE wins over NULL.
#[inline]
fn or3(a: &BoolNode, b: &BoolNode, row: Row<'_>) -> Option<bool> {
    match a.eval(row) {
        Some(true) => Some(true),
        l => match b.eval(row) {
            Some(true) => Some(true),
            r => l.and(r),
        },
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    const TRUE: [&str; 4] = ["true", "t", "yes", "1"];
    const FALSE: [&str; 4] = ["false", "f", "no", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// A string-valued node. Results borrow from the row or the expression when they can (columns,
/// literals, `substring`, `trim`, `lower` of lower-case text) and own a new string otherwise.
#[derive(Clone, Debug)]
pub(crate) enum StrNode {
    Null,
    Lit(Box<str>),
    Col(usize),
    /// `a || b || ...` and `concat(...)`: NULL if any part is NULL.
    Concat(Box<[StrNode]>),
    Lower(Box<StrNode>),
    Upper(Box<StrNode>),
    /// The text, and the characters to strip (whitespace when absent).
    Trim(Box<(StrNode, Option<StrNode>)>, TrimSide),
    /// 1-based start and optional length, in characters.
    Substr(Box<(StrNode, IntNode, Option<IntNode>)>),
    Replace(Box<(StrNode, StrNode, StrNode)>),
    FromInt(Box<IntNode>),
    FromFloat(Box<FloatNode>),
    FromBool(Box<BoolNode>),
    FromTs(Box<IntNode>),
    Choice(Box<Choice<StrNode>>),
}

impl Eval for StrNode {
    type Out<'a> = Cow<'a, str>;

    fn eval<'a>(&'a self, row: Row<'a>) -> Option<Cow<'a, str>> {
        Some(match self {
            StrNode::Null => return None,
            StrNode::Lit(s) => Cow::Borrowed(&**s),
            StrNode::Col(i) => Cow::Borrowed(row.str(*i)?),
            StrNode::Concat(parts) => {
                let mut out = String::new();
                for p in parts.iter() {
                    out.push_str(&p.eval(row)?);
                }
                Cow::Owned(out)
            }
            StrNode::Lower(s) => lower(s.eval(row)?),
            StrNode::Upper(s) => upper(s.eval(row)?),
            StrNode::Trim(sc, side) => {
                let s = sc.0.eval(row)?;
                match &sc.1 {
                    None => map_cow(s, |x| trim_by(x, *side, char::is_whitespace)),
                    Some(chars) => {
                        let chars = chars.eval(row)?;
                        map_cow(s, |x| trim_by(x, *side, |c| chars.contains(c)))
                    }
                }
            }
            StrNode::Substr(sfl) => {
                let s = sfl.0.eval(row)?;
                let from = sfl.1.eval(row)?;
                let len = match &sfl.2 {
                    Some(n) => Some(n.eval(row)?),
                    None => None,
                };
                if len.is_some_and(|l| l < 0) {
                    return None;
                }
                map_cow(s, |x| substring(x, from, len))
            }
            StrNode::Replace(sft) => {
                let s = sft.0.eval(row)?;
                let from = sft.1.eval(row)?;
                let to = sft.2.eval(row)?;
                if from.is_empty() || !s.contains(&*from) {
                    s
                } else {
                    Cow::Owned(s.replace(&*from, &to))
                }
            }
            StrNode::FromInt(n) => Cow::Owned(n.eval(row)?.to_string()),
            StrNode::FromFloat(f) => Cow::Owned(format!("{:?}", f.eval(row)?)),
            StrNode::FromBool(b) => Cow::Borrowed(if b.eval(row)? { "true" } else { "false" }),
            StrNode::FromTs(n) => Cow::Owned(time::format_timestamp(n.eval(row)?)),
            StrNode::Choice(c) => return c.eval(row),
        })
    }
}

/// Applies a slicing function, keeping the result borrowed when the input was.
fn map_cow<'a>(s: Cow<'a, str>, f: impl for<'b> FnOnce(&'b str) -> &'b str) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => {
            let part = f(&o);
            if part.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(part.to_owned())
            }
        }
    }
}

fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    // Keys are usually already lower case: skip the allocation then.
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        s
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn upper(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_lowercase()) {
        s
    } else {
        Cow::Owned(s.to_uppercase())
    }
}

fn trim_by(s: &str, side: TrimSide, strip: impl Fn(char) -> bool) -> &str {
    match side {
        TrimSide::Both => s.trim_matches(strip),
        TrimSide::Leading => s.trim_start_matches(strip),
        TrimSide::Trailing => s.trim_end_matches(strip),
    }
}

/// SQL `SUBSTRING(s FROM start FOR len)`: characters `start .. start+len` (1-based), clipped to the
/// string, so a start before 1 shortens the result as in standard SQL.
fn substring(s: &str, start: i64, len: Option<i64>) -> &str {
    let begin = start.max(1);
    let end = len.map(|l| start.saturating_add(l));
    if end.is_some_and(|e| e <= begin) {
        return "";
    }
    let rest = &s[char_offset(s, begin - 1)..];
    match end {
        None => rest,
        Some(e) => &rest[..char_offset(rest, e - begin)],
    }
}

/// Byte offset of character `n` (the end of the string if it is shorter).
fn char_offset(s: &str, n: i64) -> usize {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if s.is_ascii() {
        return n.min(s.len());
    }
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// A compiled expression of any type. `Null` is the untyped NULL literal, which only survives
/// compilation inside another expression that gives it a type.
#[derive(Clone, Debug)]
pub(crate) enum Typed {
    Null,
    Bool(BoolNode),
    Int(IntNode),
    Ts(IntNode),
    Float(FloatNode),
    Str(StrNode),
}

impl Typed {
    /// The result type; `None` for the untyped NULL.
    pub(crate) fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Typed::Null => return None,
            Typed::Bool(_) => DataType::Bool,
            Typed::Int(_) => DataType::Int,
            Typed::Ts(_) => DataType::Timestamp,
            Typed::Float(_) => DataType::Float,
            Typed::Str(_) => DataType::String,
        })
    }

    /// A field reference of the given type.
    pub(crate) fn column(i: usize, dt: DataType) -> Typed {
        match dt {
            DataType::Bool => Typed::Bool(BoolNode::Col(i)),
            DataType::Int => Typed::Int(IntNode::Col(i)),
            DataType::Timestamp => Typed::Ts(IntNode::Col(i)),
            DataType::Float => Typed::Float(FloatNode::Col(i)),
            DataType::String => Typed::Str(StrNode::Col(i)),
        }
    }

    /// The field position when this is a bare field reference.
    pub(crate) fn as_column(&self) -> Option<usize> {
        match self {
            Typed::Bool(BoolNode::Col(i))
            | Typed::Int(IntNode::Col(i))
            | Typed::Ts(IntNode::Col(i))
            | Typed::Float(FloatNode::Col(i))
            | Typed::Str(StrNode::Col(i)) => Some(*i),
            _ => None,
        }
    }

    /// True for a literal (including a typed or untyped NULL).
    pub(crate) fn is_literal(&self) -> bool {
        matches!(
            self,
            Typed::Null
                | Typed::Bool(BoolNode::Lit(_) | BoolNode::Null)
                | Typed::Int(IntNode::Lit(_) | IntNode::Null)
                | Typed::Ts(IntNode::Lit(_) | IntNode::Null)
                | Typed::Float(FloatNode::Lit(_) | FloatNode::Null)
                | Typed::Str(StrNode::Lit(_) | StrNode::Null)
        )
    }

    /// True for a NULL literal of any type.
    pub(crate) fn is_null_literal(&self) -> bool {
        matches!(
            self,
            Typed::Null
                | Typed::Bool(BoolNode::Null)
                | Typed::Int(IntNode::Null)
                | Typed::Ts(IntNode::Null)
                | Typed::Float(FloatNode::Null)
                | Typed::Str(StrNode::Null)
        )
    }

    /// Whether the value is NULL for this row.
    pub(crate) fn is_null(&self, row: Row<'_>) -> bool {
        match self {
            Typed::Null => true,
            Typed::Bool(n) => n.eval(row).is_none(),
            Typed::Int(n) | Typed::Ts(n) => n.eval(row).is_none(),
            Typed::Float(n) => n.eval(row).is_none(),
            Typed::Str(n) => n.eval(row).is_none(),
        }
    }

    /// The value for this row.
    pub(crate) fn eval<'a>(&'a self, row: Row<'a>) -> Value<'a> {
        Value::Datum(match self {
            Typed::Null => Datum::Null,
            Typed::Bool(n) => n.eval(row).map_or(Datum::Null, Datum::Bool),
            Typed::Int(n) => n.eval(row).map_or(Datum::Null, Datum::Int),
            Typed::Ts(n) => n.eval(row).map_or(Datum::Null, Datum::Timestamp),
            Typed::Float(n) => n.eval(row).map_or(Datum::Null, Datum::Float),
            Typed::Str(n) => match n.eval(row) {
                None => Datum::Null,
                Some(Cow::Borrowed(s)) => Datum::Str(s),
                Some(Cow::Owned(s)) => return Value::Owned(s),
            },
        })
    }

    /// Evaluates and appends the value as the next field of `out`'s open row.
    #[inline]
    pub(crate) fn push_into(&self, row: Row<'_>, out: &mut Batch) {
        match self {
            Typed::Null => out.push_null(),
            Typed::Bool(n) => out.push(n.eval(row).map_or(Datum::Null, Datum::Bool)),
            Typed::Int(n) => out.push(n.eval(row).map_or(Datum::Null, Datum::Int)),
            Typed::Ts(n) => out.push(n.eval(row).map_or(Datum::Null, Datum::Timestamp)),
            Typed::Float(n) => out.push(n.eval(row).map_or(Datum::Null, Datum::Float)),
            Typed::Str(n) => match n.eval(row) {
                Some(s) => out.push_str(&s),
                None => out.push_null(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_is_sql_style() {
        assert_eq!(substring("hello", 2, Some(3)), "ell");
        assert_eq!(substring("hello", 1, None), "hello");
        assert_eq!(substring("hello", 0, Some(3)), "he");
        assert_eq!(substring("hello", -5, Some(3)), "");
        assert_eq!(substring("hello", 4, Some(10)), "lo");
        assert_eq!(substring("hello", 9, None), "");
        assert_eq!(substring("héllo", 2, Some(2)), "él");
        assert_eq!(substring("hello", i64::MAX, Some(i64::MAX)), "");
    }

    #[test]
    fn rounding() {
        assert_eq!(round_int(1234, -2), 1200);
        assert_eq!(round_int(1250, -2), 1300);
        assert_eq!(round_int(-1250, -2), -1300);
        // Overflow wraps, like every other integer operation.
        assert_eq!(round_int(i64::MAX, -1), 9_223_372_036_854_775_810i128 as i64);
        assert_eq!(round_int(5, -30), 0);
        assert_eq!(round_float(2.5, 0), 3.0);
        assert_eq!(round_float(-2.5, 0), -3.0);
        assert_eq!(round_float(1.2345, 2), 1.23);
        assert_eq!(round_float(1250.0, -2), 1300.0);
        assert_eq!(round_float(0.1, 400), 0.1);
    }
}
