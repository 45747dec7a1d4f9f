//! Node construction: implicit and explicit conversions, constant folding, and the specialised
//! shapes (`col op literal`, `col cmp literal`) the evaluator runs fastest.
use super::node::{ArithOp, BoolNode, Choice, CmpOp, Eval, FloatNode, InList, IntNode, StrNode, Typed};
use super::time;
use eddy_api::{Batch, DataType};
use sqlparser::ast;

/// Calls `f::<N>(ty, args..)` with the node type of `ty` (None when `ty` is the untyped NULL).
macro_rules! by_type {
    ($ty:expr, $f:ident ( $($arg:expr),* )) => {
        match $ty {
            None => None,
            Some(t @ (DataType::Int | DataType::Timestamp)) => Some($f::<IntNode>(t, $($arg),*)),
            Some(t @ DataType::Float) => Some($f::<FloatNode>(t, $($arg),*)),
            Some(t @ DataType::String) => Some($f::<StrNode>(t, $($arg),*)),
            Some(t @ DataType::Bool) => Some($f::<BoolNode>(t, $($arg),*)),
        }
    };
}
pub(crate) use by_type;

/// Parses a text literal compared with a timestamp (`ts > '2024-01-01 00:00:00'`), as Flink does;
/// text that is not a timestamp is left for the type check to reject.
pub(crate) fn ts_literal(t: Typed, with_ts: bool) -> Typed {
    match &t {
        Typed::Str(StrNode::Lit(s)) if with_ts => match time::parse_timestamp(s) {
            Some(ms) => Typed::Ts(IntNode::Lit(ms)),
            None => t,
        },
        _ => t,
    }
}

/// [`ts_literal`] over values compared with each other.
pub(crate) fn ts_literals<const N: usize>(items: [Typed; N]) -> [Typed; N] {
    let with_ts = items.iter().any(|t| matches!(t, Typed::Ts(_)));
    items.map(|t| ts_literal(t, with_ts))
}

/// The SQL type a CAST names.
pub(crate) fn cast_target(dt: &ast::DataType) -> Option<DataType> {
    let name = dt.to_string().to_ascii_lowercase();
    let base = name.split('(').next().unwrap_or_default().trim();
    DataType::parse(base).or(match base {
        "smallint" | "tinyint" | "int2" | "int4" | "int8" | "int64" => Some(DataType::Int),
        "real" | "double precision" | "float4" | "float8" | "float64" | "decimal" | "numeric" | "dec" => {
            Some(DataType::Float)
        }
        "char" | "character" | "character varying" | "nvarchar" => Some(DataType::String),
        "date" | "datetime" => Some(DataType::Timestamp),
        b if b.starts_with("timestamp") => Some(DataType::Timestamp),
        _ => None,
    })
}

/// Which types two values can be compared or combined as (None: both untyped NULL).
pub(crate) fn unify(a: Option<DataType>, b: Option<DataType>) -> Option<Option<DataType>> {
    use DataType::{Float, Int, Timestamp};
    Some(match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        (Some(Int | Timestamp | Float), Some(Float)) | (Some(Float), Some(Int | Timestamp)) => Some(Float),
        (Some(Int), Some(Timestamp)) | (Some(Timestamp), Some(Int)) => Some(Timestamp),
        _ => return None,
    })
}

/// Converts to `to`, or None when no such cast exists. Implicit conversions are a subset of these.
pub(crate) fn cast(t: Typed, to: DataType) -> Option<Typed> {
    use DataType as D;
    Some(match (t, to) {
        (Typed::Null, D::Bool) => Typed::Bool(BoolNode::Null),
        (Typed::Null, D::Int) => Typed::Int(IntNode::Null),
        (Typed::Null, D::Timestamp) => Typed::Ts(IntNode::Null),
        (Typed::Null, D::Float) => Typed::Float(FloatNode::Null),
        (Typed::Null, D::String) => Typed::Str(StrNode::Null),
        (Typed::Int(n) | Typed::Ts(n), D::Int) => Typed::Int(n),
        (Typed::Int(n) | Typed::Ts(n), D::Timestamp) => Typed::Ts(n),
        (Typed::Int(n) | Typed::Ts(n), D::Float) => Typed::Float(float_from_int(n)),
        (Typed::Int(n), D::String) => Typed::Str(StrNode::FromInt(Box::new(n))),
        (Typed::Ts(n), D::String) => Typed::Str(StrNode::FromTs(Box::new(n))),
        (Typed::Int(n), D::Bool) => Typed::Bool(BoolNode::FromInt(Box::new(n))),
        (Typed::Float(n), D::Float) => Typed::Float(n),
        (Typed::Float(n), D::Int) => Typed::Int(IntNode::FromFloat(Box::new(n))),
        (Typed::Float(n), D::Timestamp) => Typed::Ts(IntNode::FromFloat(Box::new(n))),
        (Typed::Float(n), D::String) => Typed::Str(StrNode::FromFloat(Box::new(n))),
        (Typed::Float(n), D::Bool) => Typed::Bool(BoolNode::FromFloat(Box::new(n))),
        (Typed::Str(n), D::String) => Typed::Str(n),
        (Typed::Str(n), D::Int) => Typed::Int(IntNode::FromStr(Box::new(n))),
        (Typed::Str(n), D::Timestamp) => Typed::Ts(IntNode::TsFromStr(Box::new(n))),
        (Typed::Str(n), D::Float) => Typed::Float(FloatNode::FromStr(Box::new(n))),
        (Typed::Str(n), D::Bool) => Typed::Bool(BoolNode::FromStr(Box::new(n))),
        (Typed::Bool(n), D::Bool) => Typed::Bool(n),
        (Typed::Bool(n), D::Int) => Typed::Int(IntNode::FromBool(Box::new(n))),
        (Typed::Bool(n), D::Float) => Typed::Float(FloatNode::FromBool(Box::new(n))),
        (Typed::Bool(n), D::String) => Typed::Str(StrNode::FromBool(Box::new(n))),
        (Typed::Bool(_), D::Timestamp) | (Typed::Ts(_), D::Bool) => return None,
    })
}

/// An int node read as float; columns read as float directly (rows widen ints).
fn float_from_int(n: IntNode) -> FloatNode {
    match n {
        IntNode::Null => FloatNode::Null,
        IntNode::Lit(v) => FloatNode::Lit(v as f64),
        IntNode::Col(i) => FloatNode::Col(i),
        n => FloatNode::FromInt(Box::new(n)),
    }
}

pub(crate) fn int_of(t: Typed) -> IntNode {
    match cast(t, DataType::Int) {
        Some(Typed::Int(n)) => n,
        _ => IntNode::Null,
    }
}

pub(crate) fn float_of(t: Typed) -> FloatNode {
    match cast(t, DataType::Float) {
        Some(Typed::Float(n)) => n,
        _ => FloatNode::Null,
    }
}

pub(crate) fn str_of(t: Typed) -> StrNode {
    match cast(t, DataType::String) {
        Some(Typed::Str(n)) => n,
        _ => StrNode::Null,
    }
}

pub(crate) fn bool_of(t: Typed) -> BoolNode {
    match cast(t, DataType::Bool) {
        Some(Typed::Bool(n)) => n,
        _ => BoolNode::Null,
    }
}

/// A NULL of a type.
fn typed_null(dt: DataType) -> Typed {
    cast(Typed::Null, dt).unwrap_or(Typed::Null)
}

/// Evaluates a constant expression once and makes it a literal.
pub(crate) fn fold(t: Typed) -> Typed {
    // Constants read no field, so any row will do.
    let mut batch = Batch::new(1);
    batch.push_null();
    let v = t.eval(batch.row(0)).into_owned_datum();
    use eddy_api::OwnedDatum as O;
    match (t.data_type(), v) {
        (None, _) => Typed::Null,
        (Some(dt), O::Null) => typed_null(dt),
        (_, O::Bool(b)) => Typed::Bool(BoolNode::Lit(b)),
        (Some(DataType::Timestamp), O::Int(v) | O::Timestamp(v)) => Typed::Ts(IntNode::Lit(v)),
        (_, O::Int(v) | O::Timestamp(v)) => Typed::Int(IntNode::Lit(v)),
        (_, O::Float(v)) => Typed::Float(FloatNode::Lit(v)),
        (_, O::Str(s)) => Typed::Str(StrNode::Lit(s)),
    }
}

pub(crate) fn int_arith(op: ArithOp, a: IntNode, b: IntNode) -> IntNode {
    match (a, b) {
        (IntNode::Null, _) | (_, IntNode::Null) => IntNode::Null,
        (IntNode::Col(i), IntNode::Lit(v)) => IntNode::ColLit(op, i, v),
        (a, b) => IntNode::Arith(op, Box::new((a, b))),
    }
}

pub(crate) fn float_arith(op: ArithOp, a: FloatNode, b: FloatNode) -> FloatNode {
    match (a, b) {
        (FloatNode::Null, _) | (_, FloatNode::Null) => FloatNode::Null,
        (FloatNode::Col(i), FloatNode::Lit(v)) => FloatNode::ColLit(op, i, v),
        (a, b) => FloatNode::Arith(op, Box::new((a, b))),
    }
}

/// A comparison of two values already known to unify to `ty`.
pub(crate) fn cmp_node(op: CmpOp, l: Typed, r: Typed, ty: Option<DataType>) -> BoolNode {
    if l.is_null_literal() || r.is_null_literal() {
        return BoolNode::Null;
    }
    match ty {
        None => BoolNode::Null,
        Some(DataType::Int | DataType::Timestamp) => int_cmp(op, int_of(l), int_of(r)),
        Some(DataType::Float) => float_cmp(op, float_of(l), float_of(r)),
        Some(DataType::String) => str_cmp(op, str_of(l), str_of(r)),
        Some(DataType::Bool) => BoolNode::CmpBool(op, Box::new((bool_of(l), bool_of(r)))),
    }
}

fn int_cmp(op: CmpOp, a: IntNode, b: IntNode) -> BoolNode {
    match (a, b) {
        (IntNode::Col(i), IntNode::Lit(v)) => BoolNode::ColCmpInt(op, i, v),
        (IntNode::Lit(v), IntNode::Col(i)) => BoolNode::ColCmpInt(op.flip(), i, v),
        (a, IntNode::Lit(v)) => BoolNode::CmpIntLit(op, Box::new(a), v),
        (IntNode::Lit(v), b) => BoolNode::CmpIntLit(op.flip(), Box::new(b), v),
        (a, b) => BoolNode::CmpInt(op, Box::new((a, b))),
    }
}

fn float_cmp(op: CmpOp, a: FloatNode, b: FloatNode) -> BoolNode {
    match (a, b) {
        (FloatNode::Col(i), FloatNode::Lit(v)) => BoolNode::ColCmpFloat(op, i, v),
        (FloatNode::Lit(v), FloatNode::Col(i)) => BoolNode::ColCmpFloat(op.flip(), i, v),
        (a, b) => BoolNode::CmpFloat(op, Box::new((a, b))),
    }
}

fn str_cmp(op: CmpOp, a: StrNode, b: StrNode) -> BoolNode {
    match (a, b) {
        (StrNode::Col(i), StrNode::Lit(v)) => BoolNode::ColCmpStr(op, i, v),
        (StrNode::Lit(v), StrNode::Col(i)) => BoolNode::ColCmpStr(op.flip(), i, v),
        (a, b) => BoolNode::CmpStr(op, Box::new((a, b))),
    }
}

pub(crate) fn and(a: BoolNode, b: BoolNode) -> BoolNode {
    match (a, b) {
        (BoolNode::Lit(false), _) | (_, BoolNode::Lit(false)) => BoolNode::Lit(false),
        (BoolNode::Lit(true), x) | (x, BoolNode::Lit(true)) => x,
        (a, b) => BoolNode::And(Box::new((a, b))),
    }
}

pub(crate) fn or(a: BoolNode, b: BoolNode) -> BoolNode {
    match (a, b) {
        (BoolNode::Lit(true), _) | (_, BoolNode::Lit(true)) => BoolNode::Lit(true),
        (BoolNode::Lit(false), x) | (x, BoolNode::Lit(false)) => x,
        (a, b) => BoolNode::Or(Box::new((a, b))),
    }
}

pub(crate) fn not(b: BoolNode) -> BoolNode {
    match b {
        BoolNode::Lit(v) => BoolNode::Lit(!v),
        BoolNode::Null => BoolNode::Null,
        BoolNode::Not(inner) => *inner,
        b => BoolNode::Not(Box::new(b)),
    }
}

pub(crate) fn is_null(t: Typed) -> BoolNode {
    if t.is_literal() {
        return BoolNode::Lit(t.is_null_literal());
    }
    match t.as_column() {
        Some(i) => BoolNode::ColIsNull(i),
        None => BoolNode::IsNull(Box::new(t)),
    }
}

/// `a || b || ...`: any type converts to text; NULL if any part is NULL.
pub(crate) fn concat(parts: Vec<Typed>) -> Typed {
    if parts.iter().any(Typed::is_null_literal) {
        return Typed::Str(StrNode::Null);
    }
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match str_of(p) {
            StrNode::Concat(inner) => out.extend(inner.into_vec()),
            n => out.push(n),
        }
    }
    Typed::Str(StrNode::Concat(out.into()))
}

/// The node types, for building type-generic forms.
pub(crate) trait NodeType: Eval + Sized {
    fn of(t: Typed) -> Self;
    fn wrap(c: Choice<Self>, ty: DataType) -> Typed;
    fn in_list(l: InList<Self>) -> BoolNode;
}

impl NodeType for IntNode {
    fn of(t: Typed) -> Self {
        int_of(t)
    }
    fn wrap(c: Choice<Self>, ty: DataType) -> Typed {
        let n = IntNode::Choice(Box::new(c));
        if ty == DataType::Timestamp {
            Typed::Ts(n)
        } else {
            Typed::Int(n)
        }
    }
    fn in_list(l: InList<Self>) -> BoolNode {
        BoolNode::InInt(Box::new(l))
    }
}

impl NodeType for FloatNode {
    fn of(t: Typed) -> Self {
        float_of(t)
    }
    fn wrap(c: Choice<Self>, _: DataType) -> Typed {
        Typed::Float(FloatNode::Choice(Box::new(c)))
    }
    fn in_list(l: InList<Self>) -> BoolNode {
        BoolNode::InFloat(Box::new(l))
    }
}

impl NodeType for StrNode {
    fn of(t: Typed) -> Self {
        str_of(t)
    }
    fn wrap(c: Choice<Self>, _: DataType) -> Typed {
        Typed::Str(StrNode::Choice(Box::new(c)))
    }
    fn in_list(l: InList<Self>) -> BoolNode {
        BoolNode::InStr(Box::new(l))
    }
}

impl NodeType for BoolNode {
    fn of(t: Typed) -> Self {
        bool_of(t)
    }
    fn wrap(c: Choice<Self>, _: DataType) -> Typed {
        Typed::Bool(BoolNode::Choice(Box::new(c)))
    }
    fn in_list(l: InList<Self>) -> BoolNode {
        BoolNode::InBool(Box::new(l))
    }
}

pub(crate) fn build_in<N: NodeType>(_: DataType, needle: Typed, items: Vec<Typed>) -> BoolNode {
    N::in_list(InList { needle: N::of(needle), list: items.into_iter().map(N::of).collect() })
}

pub(crate) fn build_case<N: NodeType>(ty: DataType, pairs: Vec<(BoolNode, Typed)>, otherwise: Typed) -> Typed {
    let whens = pairs.into_iter().map(|(c, v)| (c, N::of(v))).collect();
    N::wrap(Choice::Case(whens, N::of(otherwise)), ty)
}

/// Which list form [`build_list`] makes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ListForm {
    Coalesce,
    Greatest,
    Least,
}

pub(crate) fn build_list<N: NodeType>(ty: DataType, form: ListForm, items: Vec<Typed>) -> Typed {
    let items: Box<[N]> = items.into_iter().map(N::of).collect();
    let c = match form {
        ListForm::Coalesce => Choice::Coalesce(items),
        ListForm::Greatest => Choice::Greatest(items),
        ListForm::Least => Choice::Least(items),
    };
    N::wrap(c, ty)
}
