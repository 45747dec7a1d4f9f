//! Aggregate calls (`count(*)`, `sum(price)`, `max(lower(channel))`, ...) and their accumulators.
//!
//! As in SQL, NULL arguments are skipped and a group without a non-NULL value gives NULL, except
//! `count`, which gives 0. `first`/`last` keep the first/last non-NULL value in arrival order (like
//! Flink's FIRST_VALUE/LAST_VALUE). Accumulators are plain serde data so they can be checkpointed;
//! numeric ones hold no heap memory.
use super::compile::{strip_nested, Compiler};
use super::functions::{AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS};
use super::node::{Eval, Typed};
use super::parse;
use eddy_api::diagnostic::did_you_mean;
use eddy_api::{Batch, DataType, Datum, Diagnostic, Diagnostics, OwnedDatum, Row, Schema, Spanned};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use sqlparser::ast;
use std::collections::HashSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
}

/// A compiled aggregate call.
#[derive(Clone, Debug)]
pub struct AggregateCall {
    text: String,
    name: &'static str,
    kind: Kind,
    /// The argument (`Typed::Null` for `count(*)`).
    arg: Typed,
    output: DataType,
}

/// The running state of one aggregate for one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Accumulator {
    /// `count`.
    Count(i64),
    /// `sum` of ints (wrapping on overflow).
    SumInt(Option<i64>),
    /// `sum` of floats.
    SumFloat(Option<f64>),
    /// `avg`.
    Avg {
        /// Sum of the values.
        sum: f64,
        /// Number of values.
        count: i64,
    },
    /// `min`/`max`/`first`/`last` of ints or timestamps.
    Int(Option<i64>),
    /// `min`/`max`/`first`/`last` of floats.
    Float(Option<f64>),
    /// `min`/`max`/`first`/`last` of booleans.
    Bool(Option<bool>),
    /// `min`/`max`/`first`/`last` of text (the buffer is reused when the value changes).
    Str(Option<String>),
    /// `count(distinct x)`.
    Distinct(DistinctSet),
}

/// The values seen by `count(distinct x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DistinctSet {
    /// Ints, timestamps, booleans (0/1) and floats (by canonical bits).
    Ints(HashSet<i64, FxBuildHasher>),
    /// Text.
    Strs(HashSet<Box<str>, FxBuildHasher>),
}

impl DistinctSet {
    /// Number of distinct values.
    pub fn len(&self) -> usize {
        match self {
            DistinctSet::Ints(s) => s.len(),
            DistinctSet::Strs(s) => s.len(),
        }
    }

    /// True when no value was seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AggregateCall {
    /// Parses and compiles an aggregate call against the input schema.
    pub fn compile(text: &Spanned<String>, schema: &Schema) -> Result<AggregateCall, Diagnostics> {
        let ast = parse::parse(&text.value, text.span)?;
        let mut c = Compiler::new(schema, &text.value, text.span);
        match compile_call(&mut c, &ast, &text.value) {
            Some(call) if c.diags.is_empty() => Ok(call),
            _ if c.diags.is_empty() => {
                Err(Diagnostic::at(text.span, format!("cannot compile `{}`", text.value)).into())
            }
            _ => Err(c.diags),
        }
    }

    /// The call as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The function name (`count`, `sum`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The result type.
    pub fn output_type(&self) -> DataType {
        self.output
    }

    /// An empty accumulator.
    pub fn new_accumulator(&self) -> Accumulator {
        match (self.kind, self.arg.data_type()) {
            (Kind::CountStar | Kind::Count, _) => Accumulator::Count(0),
            (Kind::CountDistinct, Some(DataType::String)) => {
                Accumulator::Distinct(DistinctSet::Strs(HashSet::default()))
            }
            (Kind::CountDistinct, _) => Accumulator::Distinct(DistinctSet::Ints(HashSet::default())),
            (Kind::Sum, Some(DataType::Float)) => Accumulator::SumFloat(None),
            (Kind::Sum, _) => Accumulator::SumInt(None),
            (Kind::Avg, _) => Accumulator::Avg { sum: 0.0, count: 0 },
            (_, Some(DataType::Float)) => Accumulator::Float(None),
            (_, Some(DataType::Bool)) => Accumulator::Bool(None),
            (_, Some(DataType::String)) => Accumulator::Str(None),
            (_, _) => Accumulator::Int(None),
        }
    }

    /// Adds the row's argument to the accumulator. An accumulator made by another call is left alone.
    #[inline]
    pub fn update(&self, acc: &mut Accumulator, row: Row<'_>) {
        match (self.kind, acc) {
            (Kind::CountStar, Accumulator::Count(n)) => *n += 1,
            (Kind::Count, Accumulator::Count(n)) => *n += i64::from(!self.arg.is_null(row)),
            (Kind::CountDistinct, Accumulator::Distinct(set)) => self.insert_distinct(set, row),
            (Kind::Sum, Accumulator::SumInt(s)) => {
                if let Some(v) = self.int_arg(row) {
                    *s = Some(s.unwrap_or(0).wrapping_add(v));
                }
            }
            (Kind::Sum, Accumulator::SumFloat(s)) => {
                if let Some(v) = self.float_arg(row) {
                    *s = Some(s.unwrap_or(0.0) + v);
                }
            }
            (Kind::Avg, Accumulator::Avg { sum, count }) => {
                if let Some(v) = self.float_arg(row) {
                    *sum += v;
                    *count += 1;
                }
            }
            (kind, Accumulator::Int(cur)) => {
                if let Some(v) = self.int_arg(row) {
                    pick(kind, cur, v);
                }
            }
            (kind, Accumulator::Float(cur)) => {
                if let Some(v) = self.float_arg(row) {
                    pick(kind, cur, v);
                }
            }
            (kind, Accumulator::Bool(cur)) => {
                if let Typed::Bool(n) = &self.arg {
                    if let Some(v) = n.eval(row) {
                        pick(kind, cur, v);
                    }
                }
            }
            (kind, Accumulator::Str(cur)) => {
                if let Typed::Str(n) = &self.arg {
                    if let Some(v) = n.eval(row) {
                        pick_str(kind, cur, &v);
                    }
                }
            }
            _ => {}
        }
    }

    /// Folds `other` (a later partial result of the same call) into `acc`, e.g. when sessions merge.
    pub fn merge(&self, acc: &mut Accumulator, other: &Accumulator) {
        use Accumulator as A;
        match (acc, other) {
            (A::Count(a), A::Count(b)) => *a = a.wrapping_add(*b),
            (A::SumInt(a), A::SumInt(Some(b))) => *a = Some(a.unwrap_or(0).wrapping_add(*b)),
            (A::SumFloat(a), A::SumFloat(Some(b))) => *a = Some(a.unwrap_or(0.0) + b),
            (A::Avg { sum, count }, A::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (A::Int(a), A::Int(Some(b))) => pick(self.kind, a, *b),
            (A::Float(a), A::Float(Some(b))) => pick(self.kind, a, *b),
            (A::Bool(a), A::Bool(Some(b))) => pick(self.kind, a, *b),
            (A::Str(a), A::Str(Some(b))) => pick_str(self.kind, a, b),
            (A::Distinct(DistinctSet::Ints(a)), A::Distinct(DistinctSet::Ints(b))) => a.extend(b.iter().copied()),
            (A::Distinct(DistinctSet::Strs(a)), A::Distinct(DistinctSet::Strs(b))) => a.extend(b.iter().cloned()),
            _ => {}
        }
    }

    /// The aggregate's value, borrowing text from the accumulator.
    pub fn result<'a>(&self, acc: &'a Accumulator) -> Datum<'a> {
        match acc {
            Accumulator::Count(n) => Datum::Int(*n),
            Accumulator::SumInt(v) => v.map_or(Datum::Null, Datum::Int),
            Accumulator::SumFloat(v) => v.map_or(Datum::Null, Datum::Float),
            Accumulator::Avg { sum, count } if *count > 0 => Datum::Float(sum / *count as f64),
            Accumulator::Avg { .. } => Datum::Null,
            Accumulator::Int(Some(v)) if self.output == DataType::Timestamp => Datum::Timestamp(*v),
            Accumulator::Int(v) => v.map_or(Datum::Null, Datum::Int),
            Accumulator::Float(v) => v.map_or(Datum::Null, Datum::Float),
            Accumulator::Bool(v) => v.map_or(Datum::Null, Datum::Bool),
            Accumulator::Str(v) => v.as_deref().map_or(Datum::Null, Datum::Str),
            Accumulator::Distinct(set) => Datum::Int(set.len() as i64),
        }
    }

    /// The aggregate's value, owned.
    pub fn owned_result(&self, acc: &Accumulator) -> OwnedDatum {
        self.result(acc).to_owned()
    }

    /// Appends the aggregate's value as the next field of the row being written to `out`.
    #[inline]
    pub fn push_result(&self, acc: &Accumulator, out: &mut Batch) {
        out.push(self.result(acc));
    }

    #[inline]
    fn int_arg(&self, row: Row<'_>) -> Option<i64> {
        match &self.arg {
            Typed::Int(n) | Typed::Ts(n) => n.eval(row),
            _ => None,
        }
    }

    #[inline]
    fn float_arg(&self, row: Row<'_>) -> Option<f64> {
        match &self.arg {
            Typed::Float(n) => n.eval(row),
            Typed::Int(n) | Typed::Ts(n) => n.eval(row).map(|v| v as f64),
            _ => None,
        }
    }

    fn insert_distinct(&self, set: &mut DistinctSet, row: Row<'_>) {
        match (set, &self.arg) {
            (DistinctSet::Strs(s), Typed::Str(n)) => {
                if let Some(v) = n.eval(row) {
                    // Only new values allocate.
                    if !s.contains(&*v) {
                        s.insert(v.into_owned().into_boxed_str());
                    }
                }
            }
            (DistinctSet::Ints(s), arg) => {
                let key = match arg {
                    Typed::Int(n) | Typed::Ts(n) => n.eval(row),
                    Typed::Bool(n) => n.eval(row).map(i64::from),
                    Typed::Float(n) => n.eval(row).map(float_key),
                    _ => None,
                };
                if let Some(k) = key {
                    s.insert(k);
                }
            }
            _ => {}
        }
    }
}

/// A float's identity for DISTINCT: 0.0 = -0.0 and all NaNs are one value.
fn float_key(f: f64) -> i64 {
    let canonical = if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    };
    canonical.to_bits() as i64
}

/// Applies min/max/first/last to a scalar accumulator.
#[inline]
fn pick<T: PartialOrd + Copy>(kind: Kind, cur: &mut Option<T>, v: T) {
    let replace = match *cur {
        None => true,
        Some(c) => match kind {
            Kind::Min => v < c,
            Kind::Max => v > c,
            Kind::Last => true,
            _ => false,
        },
    };
    if replace {
        *cur = Some(v);
    }
}

/// Like [`pick`] for text, reusing the accumulator's buffer.
fn pick_str(kind: Kind, cur: &mut Option<String>, v: &str) {
    let replace = match cur.as_deref() {
        None => true,
        Some(c) => match kind {
            Kind::Min => v < c,
            Kind::Max => v > c,
            Kind::Last => v != c,
            _ => false,
        },
    };
    if !replace {
        return;
    }
    match cur {
        Some(buf) => {
            buf.clear();
            buf.push_str(v);
        }
        None => *cur = Some(v.to_owned()),
    }
}

fn compile_call(c: &mut Compiler<'_>, e: &ast::Expr, text: &str) -> Option<AggregateCall> {
    let e = strip_nested(e);
    let ast::Expr::Function(f) = e else {
        return c.fail(not_an_aggregate(c, e, text));
    };
    let at = c.at(e);
    let call = c.call_args(f, e)?;
    let Some(name) = AGGREGATE_FUNCTIONS.iter().copied().find(|n| *n == canonical(&call.name)) else {
        return c.fail(unknown_aggregate(&call.name, at));
    };
    if call.star {
        if name != "count" || !call.args.is_empty() || call.distinct {
            let d = Diagnostic::at(at, format!("`*` is only allowed in `count(*)`, not in `{text}`"));
            return c.fail(d.with_hint(format!("write e.g. `{name}(price)`")));
        }
        return Some(AggregateCall {
            text: text.into(),
            name,
            kind: Kind::CountStar,
            arg: Typed::Null,
            output: DataType::Int,
        });
    }
    c.arity(name, call.args.len(), 1, Some(1), at)?;
    let arg_ast = call.args.first().copied()?;
    let arg = c.expr(arg_ast)?;
    let kind = match (name, call.distinct) {
        ("count", true) => Kind::CountDistinct,
        ("count", false) => Kind::Count,
        ("sum" | "avg", true) => {
            let d = Diagnostic::at(at, format!("DISTINCT is only supported in `count(distinct ...)`, not in `{name}`"));
            return c.fail(d);
        }
        ("sum", _) => Kind::Sum,
        ("avg", _) => Kind::Avg,
        ("min", _) => Kind::Min,
        ("max", _) => Kind::Max,
        ("first", _) => Kind::First,
        _ => Kind::Last,
    };
    let output = match output_type(kind, arg.data_type()) {
        Ok(t) => t,
        Err(t) => {
            let at = c.at(arg_ast);
            let msg = match t {
                None => format!("`{name}({arg_ast})` has no type: give NULL one, e.g. `CAST(NULL AS int)`"),
                Some(t) => format!("`{name}` needs a numeric argument, `{arg_ast}` is {t}"),
            };
            return c.fail(Diagnostic::at(at, msg));
        }
    };
    Some(AggregateCall { text: text.into(), name, kind, arg, output })
}

/// Maps aliases (`first_value`) to the canonical name.
fn canonical(name: &str) -> &str {
    match name {
        "first_value" => "first",
        "last_value" => "last",
        other => other,
    }
}

/// The result type, or the argument type that does not fit (None: the untyped NULL).
fn output_type(kind: Kind, arg: Option<DataType>) -> Result<DataType, Option<DataType>> {
    match (kind, arg) {
        (Kind::Count | Kind::CountDistinct, _) => Ok(DataType::Int),
        (_, None) => Err(None),
        (Kind::Sum, Some(DataType::Int)) => Ok(DataType::Int),
        (Kind::Sum, Some(DataType::Float)) | (Kind::Avg, Some(DataType::Int | DataType::Float)) => Ok(DataType::Float),
        (Kind::Sum | Kind::Avg, other) => Err(other),
        (_, Some(t)) => Ok(t),
    }
}

fn not_an_aggregate(c: &Compiler<'_>, e: &ast::Expr, text: &str) -> Diagnostic {
    let at = c.at(e);
    match e {
        ast::Expr::Identifier(id) => {
            Diagnostic::at(at, format!("`{}` is not an aggregate: write e.g. `max({})`", id.value, id.value))
        }
        _ => Diagnostic::at(
            at,
            format!("`{text}` is not an aggregate: write a single call such as `count(*)` or `max(price)`"),
        ),
    }
}

fn unknown_aggregate(name: &str, at: eddy_api::Span) -> Diagnostic {
    let list = AGGREGATE_FUNCTIONS.join(", ");
    if SCALAR_FUNCTIONS.contains(&name) {
        return Diagnostic::at(at, format!("`{name}` is not an aggregate function"))
            .with_hint(format!("aggregate functions: {list}"));
    }
    let d = Diagnostic::at(at, format!("unknown aggregate function `{name}`"));
    match did_you_mean(name, AGGREGATE_FUNCTIONS.iter().copied()) {
        Some(m) => d.with_hint(format!("did you mean `{m}`?")),
        None => d.with_hint(format!("aggregate functions: {list}")),
    }
}
