//! Compilation: type-checks a parsed expression against a schema and builds its typed tree.
//!
//! Problems are collected rather than returned at the first one, so one run reports every unknown
//! field or type mismatch in an expression; each diagnostic points at the sub-expression it is about.
//! Sub-expressions without field references are evaluated here, once (constant folding).
use super::build::{
    and, build_case, build_in, by_type, cast, cast_target, cmp_node, concat, float_arith, float_of, fold, int_arith,
    int_of, is_null, not, or, ts_literal, ts_literals, unify,
};
use super::like::LikePattern;
use super::node::{ArithOp, BoolNode, Choice, CmpOp, FloatNode, IntNode, StrNode, Typed};
use super::parse::map_location;
use super::time;
use eddy_api::diagnostic::did_you_mean;
use eddy_api::{DataType, Diagnostic, Diagnostics, Schema, Span};
use sqlparser::ast::{self, BinaryOperator, Spanned as _, UnaryOperator};

/// Compiles the sub-expressions of one expression text.
pub(crate) struct Compiler<'s> {
    schema: &'s Schema,
    text: &'s str,
    origin: Span,
    pub(crate) diags: Diagnostics,
    /// Field references compiled so far: a sub-expression that adds none is a constant.
    fields_seen: usize,
}

/// A type's name for messages (`null` for the untyped NULL).
pub(crate) fn type_name(t: Option<DataType>) -> &'static str {
    t.map_or("null", DataType::name)
}

/// The expression inside any parentheses.
pub(crate) fn strip_nested(mut e: &ast::Expr) -> &ast::Expr {
    while let ast::Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

impl<'s> Compiler<'s> {
    pub(crate) fn new(schema: &'s Schema, text: &'s str, origin: Span) -> Self {
        Compiler { schema, text, origin, diags: Diagnostics::new(), fields_seen: 0 }
    }

    /// Where a sub-expression starts in the job file.
    pub(crate) fn at(&self, e: &ast::Expr) -> Span {
        map_location(self.origin, e.span().start)
    }

    /// Records a problem; returns None so callers can `return self.fail(..)`.
    pub(crate) fn fail<T>(&mut self, d: Diagnostic) -> Option<T> {
        self.diags.push(d);
        None
    }

    /// Compiles a sub-expression, folding it to a literal when it reads no field.
    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Option<Typed> {
        let before = self.fields_seen;
        let t = self.expr_inner(e)?;
        Some(if self.fields_seen == before && !t.is_literal() { fold(t) } else { t })
    }

    /// Compiles every expression (reporting all problems), None if any failed.
    pub(crate) fn exprs<'e>(&mut self, es: impl IntoIterator<Item = &'e ast::Expr>) -> Option<Vec<Typed>> {
        let all: Vec<Option<Typed>> = es.into_iter().map(|e| self.expr(e)).collect();
        all.into_iter().collect()
    }

    fn expr_inner(&mut self, e: &ast::Expr) -> Option<Typed> {
        use ast::Expr as E;
        match e {
            E::Identifier(id) => self.field(id),
            E::CompoundIdentifier(ids) => self.compound(ids, e),
            E::Value(v) => self.literal(&v.value, e),
            E::Nested(inner) => self.expr(inner),
            E::UnaryOp { op, expr } => self.unary(*op, expr, e),
            E::BinaryOp { left, op, right } => self.binary(left, op, right, e),
            E::IsNull(x) => Some(Typed::Bool(is_null(self.expr(x)?))),
            E::IsNotNull(x) => Some(Typed::Bool(not(is_null(self.expr(x)?)))),
            E::IsTrue(x) => self.truth(x, true, false),
            E::IsNotTrue(x) => self.truth(x, true, true),
            E::IsFalse(x) => self.truth(x, false, false),
            E::IsNotFalse(x) => self.truth(x, false, true),
            E::Between { expr, negated, low, high } => self.between(expr, *negated, low, high, e),
            E::InList { expr, list, negated } => self.in_list(expr, list, *negated, e),
            E::Like { negated, any: false, expr, pattern, escape_char } => {
                self.like(expr, pattern, escape_char.as_deref(), *negated)
            }
            E::Case { operand, conditions, else_result, .. } => {
                self.case(operand.as_deref(), conditions, else_result.as_deref(), e)
            }
            E::Cast { expr, data_type, format: None, .. } => self.cast_expr(expr, data_type, e),
            E::TypedString(ts) => self.typed_string(ts, e),
            E::Interval(iv) => self.interval(iv, e),
            E::Function(f) => self.function(f, e),
            E::Substring { expr, substring_from, substring_for, .. } => {
                self.substring(expr, substring_from.as_deref(), substring_for.as_deref())
            }
            E::Trim { trim_where, trim_what, expr, trim_characters } => {
                self.trim(*trim_where, trim_what.as_deref(), trim_characters.as_deref(), expr, e)
            }
            E::Floor { expr, field } => self.floor_ceil(expr, field, false, e),
            E::Ceil { expr, field } => self.floor_ceil(expr, field, true, e),
            _ => self.unsupported(e),
        }
    }

    pub(crate) fn unsupported<T>(&mut self, e: &ast::Expr) -> Option<T> {
        let hint = "expressions support fields, literals, arithmetic, comparisons, AND/OR/NOT, IS NULL, \
                    BETWEEN, IN, LIKE, CASE, CAST and scalar functions";
        let at = self.at(e);
        self.fail(Diagnostic::at(at, format!("`{e}` is not supported in `{}`", self.text)).with_hint(hint))
    }

    fn field(&mut self, id: &ast::Ident) -> Option<Typed> {
        let fields = self.schema.fields();
        let found = self.schema.index_of(&id.value).or_else(|| {
            // Unquoted names also match case-insensitively when that is unambiguous.
            if id.quote_style.is_some() {
                return None;
            }
            let mut hits = fields.iter().enumerate().filter(|(_, f)| f.name.eq_ignore_ascii_case(&id.value));
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        });
        match found.and_then(|i| Some((i, fields.get(i)?.data_type))) {
            Some((i, dt)) => {
                self.fields_seen += 1;
                Some(Typed::column(i, dt))
            }
            None => {
                let d = self.unknown_field(&id.value, id.quote_style, map_location(self.origin, id.span.start));
                self.fail(d)
            }
        }
    }

    fn unknown_field(&self, name: &str, quote: Option<char>, at: Span) -> Diagnostic {
        let d = Diagnostic::at(at, format!("unknown field `{name}` in `{}`", self.text));
        if let Some(c) = did_you_mean(name, self.schema.names()) {
            d.with_hint(format!("did you mean `{c}`?"))
        } else if quote == Some('"') {
            d.with_hint(format!("double quotes name a field; write text in single quotes: '{name}'"))
        } else if self.schema.is_empty() {
            d.with_hint("the input has no fields")
        } else {
            d.with_hint(format!("available fields: {}", self.schema.names().collect::<Vec<_>>().join(", ")))
        }
    }

    fn compound(&mut self, ids: &[ast::Ident], e: &ast::Expr) -> Option<Typed> {
        let joined = ids.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(".");
        let at = self.at(e);
        let d = Diagnostic::at(at, format!("qualified names like `{e}` are not supported in `{}`", self.text));
        let d = if self.schema.index_of(&joined).is_some() {
            d.with_hint(format!("quote the field name: \"{joined}\""))
        } else {
            d.with_hint("refer to fields by their plain name")
        };
        self.fail(d)
    }

    fn literal(&mut self, v: &ast::Value, e: &ast::Expr) -> Option<Typed> {
        match v {
            ast::Value::Number(s, _) => self.number(s, false, e),
            ast::Value::Boolean(b) => Some(Typed::Bool(BoolNode::Lit(*b))),
            ast::Value::Null => Some(Typed::Null),
            other => match other.clone().into_string() {
                Some(s) => Some(Typed::Str(StrNode::Lit(s.into()))),
                None => {
                    let at = self.at(e);
                    self.fail(Diagnostic::at(at, format!("unsupported literal `{other}` in `{}`", self.text)))
                }
            },
        }
    }

    /// A numeric literal; `negative` when it follows a unary minus, so that i64::MIN is reachable.
    fn number(&mut self, digits: &str, negative: bool, e: &ast::Expr) -> Option<Typed> {
        let text = format!("{}{}", if negative { "-" } else { "" }, digits.replace('_', ""));
        let is_float = text.contains(['.', 'e', 'E']);
        if !is_float {
            if let Ok(v) = text.parse::<i64>() {
                return Some(Typed::Int(IntNode::Lit(v)));
            }
        }
        let at = self.at(e);
        match text.parse::<f64>() {
            Ok(v) if is_float => Some(Typed::Float(FloatNode::Lit(v))),
            Ok(_) => self.fail(
                Diagnostic::at(at, format!("integer literal `{text}` is out of range"))
                    .with_hint(format!("ints are 64-bit; write `{text}.0` for a float")),
            ),
            Err(_) => self.fail(Diagnostic::at(at, format!("invalid number `{text}`"))),
        }
    }

    fn unary(&mut self, op: UnaryOperator, x: &ast::Expr, e: &ast::Expr) -> Option<Typed> {
        let at = self.at(e);
        match op {
            UnaryOperator::Minus => {
                if let ast::Expr::Value(ast::ValueWithSpan { value: ast::Value::Number(s, _), .. }) = x {
                    return self.number(s, true, x);
                }
                match self.expr(x)? {
                    Typed::Null => Some(Typed::Null),
                    Typed::Int(n) => Some(Typed::Int(IntNode::Neg(Box::new(n)))),
                    Typed::Float(n) => Some(Typed::Float(FloatNode::Neg(Box::new(n)))),
                    other => {
                        let msg = format!("cannot apply `-` to {}", type_name(other.data_type()));
                        self.fail(Diagnostic::at(at, msg))
                    }
                }
            }
            UnaryOperator::Plus => match self.expr(x)? {
                t @ (Typed::Null | Typed::Int(_) | Typed::Float(_)) => Some(t),
                other => self.fail(Diagnostic::at(at, format!("cannot apply `+` to {}", type_name(other.data_type())))),
            },
            UnaryOperator::Not => {
                let t = self.expr(x)?;
                let b = self.expect_bool(t, x, "`NOT` needs a boolean operand")?;
                Some(Typed::Bool(not(b)))
            }
            other => self.fail(Diagnostic::at(at, format!("operator `{other}` is not supported"))),
        }
    }

    fn binary(&mut self, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr, e: &ast::Expr) -> Option<Typed> {
        use BinaryOperator as B;
        let at = self.at(e);
        let l = self.expr(left);
        let r = self.expr(right);
        let (l, r) = (l?, r?);
        match op {
            B::Plus => self.arith(ArithOp::Add, "+", l, r, at),
            B::Minus => self.arith(ArithOp::Sub, "-", l, r, at),
            B::Multiply => self.arith(ArithOp::Mul, "*", l, r, at),
            B::Divide => self.arith(ArithOp::Div, "/", l, r, at),
            B::Modulo => self.arith(ArithOp::Mod, "%", l, r, at),
            B::Eq => self.compare(CmpOp::Eq, l, r, at),
            B::NotEq => self.compare(CmpOp::Ne, l, r, at),
            B::Lt => self.compare(CmpOp::Lt, l, r, at),
            B::LtEq => self.compare(CmpOp::Le, l, r, at),
            B::Gt => self.compare(CmpOp::Gt, l, r, at),
            B::GtEq => self.compare(CmpOp::Ge, l, r, at),
            B::And | B::Or => {
                let ctx = format!("`{}` needs boolean operands", if *op == B::And { "AND" } else { "OR" });
                let a = self.expect_bool(l, left, &ctx);
                let b = self.expect_bool(r, right, &ctx);
                let (a, b) = (a?, b?);
                Some(Typed::Bool(if *op == B::And { and(a, b) } else { or(a, b) }))
            }
            B::StringConcat => Some(concat(vec![l, r])),
            other => self.fail(Diagnostic::at(at, format!("operator `{other}` is not supported"))),
        }
    }

    fn arith(&mut self, op: ArithOp, sym: &str, l: Typed, r: Typed, at: Span) -> Option<Typed> {
        use DataType::{Float, Int, Timestamp as Ts};
        let (lt, rt) = (l.data_type(), r.data_type());
        let numeric = |t: Option<DataType>| t.is_none_or(DataType::is_numeric);
        let additive = matches!(op, ArithOp::Add | ArithOp::Sub);
        let result = match (lt, rt) {
            (None, None) => return Some(Typed::Null),
            (Some(Int) | None, Some(Int) | None) => Int,
            _ if numeric(lt) && numeric(rt) => Float,
            (Some(Ts), Some(Int) | None) if additive => Ts,
            (Some(Int) | None, Some(Ts)) if op == ArithOp::Add => Ts,
            (Some(Ts), Some(Ts)) if op == ArithOp::Sub => Int,
            _ => {
                let d = Diagnostic::at(at, format!("cannot apply `{sym}` to {} and {}", type_name(lt), type_name(rt)));
                let d = match (sym, lt, rt) {
                    ("+", Some(DataType::String), _) | ("+", _, Some(DataType::String)) => {
                        d.with_hint("use `||` to join text")
                    }
                    (_, Some(DataType::String), _) | (_, _, Some(DataType::String)) => {
                        d.with_hint("convert text with CAST, e.g. `CAST(x AS int)`")
                    }
                    _ => d,
                };
                return self.fail(d);
            }
        };
        Some(match result {
            Float => Typed::Float(float_arith(op, float_of(l), float_of(r))),
            Ts => Typed::Ts(int_arith(op, int_of(l), int_of(r))),
            _ => Typed::Int(int_arith(op, int_of(l), int_of(r))),
        })
    }

    fn compare(&mut self, op: CmpOp, l: Typed, r: Typed, at: Span) -> Option<Typed> {
        let [l, r] = ts_literals([l, r]);
        let ty = self.common_type([l.data_type(), r.data_type()], at, |a, b| format!("cannot compare {a} and {b}"))?;
        Some(Typed::Bool(cmp_node(op, l, r, ty)))
    }

    /// The type all of `types` convert to, or a diagnostic built by `what(a, b)` for the first clash.
    pub(crate) fn common_type(
        &mut self,
        types: impl IntoIterator<Item = Option<DataType>>,
        at: Span,
        what: impl Fn(&str, &str) -> String,
    ) -> Option<Option<DataType>> {
        let mut acc = None;
        for t in types {
            match unify(acc, t) {
                Some(u) => acc = u,
                None => {
                    let d = Diagnostic::at(at, what(type_name(acc), type_name(t)));
                    let d = if acc == Some(DataType::String) || t == Some(DataType::String) {
                        d.with_hint("convert with CAST, e.g. `CAST(x AS int)`")
                    } else {
                        d
                    };
                    return self.fail(d);
                }
            }
        }
        Some(acc)
    }

    /// Requires a boolean; `ctx` starts the message ("`AND` needs boolean operands").
    pub(crate) fn expect_bool(&mut self, t: Typed, e: &ast::Expr, ctx: &str) -> Option<BoolNode> {
        match t {
            Typed::Bool(b) => Some(b),
            Typed::Null => Some(BoolNode::Null),
            other => {
                let at = self.at(e);
                self.fail(Diagnostic::at(at, format!("{ctx}, but `{e}` is {}", type_name(other.data_type()))))
            }
        }
    }

    /// Requires text; `ctx` starts the message.
    pub(crate) fn expect_str(&mut self, t: Typed, e: &ast::Expr, ctx: &str) -> Option<StrNode> {
        match t {
            Typed::Str(s) => Some(s),
            Typed::Null => Some(StrNode::Null),
            other => {
                let at = self.at(e);
                self.fail(Diagnostic::at(at, format!("{ctx}, but `{e}` is {}", type_name(other.data_type()))))
            }
        }
    }

    /// `x IS [NOT] TRUE|FALSE`: never NULL.
    fn truth(&mut self, x: &ast::Expr, want: bool, negated: bool) -> Option<Typed> {
        let t = self.expr(x)?;
        let b = self.expect_bool(t, x, "`IS TRUE` and `IS FALSE` need a boolean")?;
        let b = if want { b } else { not(b) };
        let is = BoolNode::Choice(Box::new(Choice::Coalesce(Box::new([b, BoolNode::Lit(false)]))));
        Some(Typed::Bool(if negated { not(is) } else { is }))
    }

    fn between(
        &mut self,
        x: &ast::Expr,
        negated: bool,
        low: &ast::Expr,
        high: &ast::Expr,
        e: &ast::Expr,
    ) -> Option<Typed> {
        let at = self.at(e);
        let v = self.expr(x);
        let lo = self.expr(low);
        let hi = self.expr(high);
        let [v, lo, hi] = ts_literals([v?, lo?, hi?]);
        let types = [v.data_type(), lo.data_type(), hi.data_type()];
        let ty = self.common_type(types, at, |a, b| format!("cannot compare {a} and {b} in `BETWEEN`"))?;
        let within = and(cmp_node(CmpOp::Ge, v.clone(), lo, ty), cmp_node(CmpOp::Le, v, hi, ty));
        Some(Typed::Bool(if negated { not(within) } else { within }))
    }

    fn in_list(&mut self, x: &ast::Expr, list: &[ast::Expr], negated: bool, e: &ast::Expr) -> Option<Typed> {
        let at = self.at(e);
        let needle = self.expr(x);
        let items = self.exprs(list);
        let (needle, mut items) = (needle?, items?);
        let needle = if matches!(needle, Typed::Ts(_)) {
            items = items.into_iter().map(|t| ts_literal(t, true)).collect();
            needle
        } else {
            let ts = items.iter().any(|t| matches!(t, Typed::Ts(_)));
            ts_literal(needle, ts)
        };
        let types = std::iter::once(needle.data_type()).chain(items.iter().map(Typed::data_type));
        let ty = self.common_type(types, at, |a, b| format!("cannot compare {a} and {b} in `IN`"))?;
        let node = if needle.is_null_literal() {
            BoolNode::Null
        } else {
            by_type!(ty, build_in(needle, items)).unwrap_or(BoolNode::Null)
        };
        Some(Typed::Bool(if negated { not(node) } else { node }))
    }

    fn like(&mut self, x: &ast::Expr, pattern: &ast::Expr, escape: Option<&ast::Expr>, negated: bool) -> Option<Typed> {
        let s = self.expr(x);
        let p = self.expr(pattern);
        let (s, p) = (s?, p?);
        let s = self.expect_str(s, x, "`LIKE` needs text");
        let p = self.expect_str(p, pattern, "`LIKE` needs a text pattern");
        let (s, p) = (s?, p?);
        let escape = match escape {
            Some(esc) => Some(self.escape_char(esc)?),
            None => None,
        };
        let node = match p {
            StrNode::Null => BoolNode::Null,
            StrNode::Lit(text) => match LikePattern::compile(&text, escape) {
                Ok(lp) => BoolNode::Like(Box::new((s, lp))),
                Err(msg) => {
                    let at = self.at(pattern);
                    return self.fail(Diagnostic::at(at, msg));
                }
            },
            p if escape.is_none() => BoolNode::LikeDyn(Box::new((s, p))),
            _ => {
                let at = self.at(pattern);
                return self.fail(Diagnostic::at(at, "`ESCAPE` needs a literal pattern"));
            }
        };
        Some(Typed::Bool(if negated { not(node) } else { node }))
    }

    fn escape_char(&mut self, esc: &ast::Expr) -> Option<char> {
        if let Typed::Str(StrNode::Lit(s)) = self.expr(esc)? {
            let mut cs = s.chars();
            if let (Some(c), None) = (cs.next(), cs.next()) {
                return Some(c);
            }
        }
        let at = self.at(esc);
        self.fail(Diagnostic::at(at, "`ESCAPE` needs a single character, such as '!'"))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        whens: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
        e: &ast::Expr,
    ) -> Option<Typed> {
        let at = self.at(e);
        let operand = operand.map(|o| self.expr(o));
        let conds = self.exprs(whens.iter().map(|w| &w.condition));
        let results = self.exprs(whens.iter().map(|w| &w.result));
        let otherwise = match otherwise {
            Some(x) => self.expr(x),
            None => Some(Typed::Null),
        };
        let (conds, results, otherwise) = (conds?, results?, otherwise?);
        let operand = match operand {
            Some(o) => Some(o?),
            None => None,
        };
        let mut tests = Vec::with_capacity(conds.len());
        for (c, w) in conds.into_iter().zip(whens) {
            let test = match &operand {
                Some(x) => {
                    let at = self.at(&w.condition);
                    self.common_type([x.data_type(), c.data_type()], at, |a, b| {
                        format!("cannot compare {a} and {b} in `CASE`")
                    })
                    .map(|ty| cmp_node(CmpOp::Eq, x.clone(), c, ty))
                }
                None => self.expect_bool(c, &w.condition, "`WHEN` needs a boolean condition"),
            };
            tests.push(test);
        }
        let types = results.iter().chain([&otherwise]).map(Typed::data_type);
        let ty = self.common_type(types, at, |a, b| format!("`CASE` branches have different types: {a} and {b}"));
        let tests: Vec<BoolNode> = tests.into_iter().collect::<Option<_>>()?;
        let pairs: Vec<(BoolNode, Typed)> = tests.into_iter().zip(results).collect();
        Some(by_type!(ty?, build_case(pairs, otherwise)).unwrap_or(Typed::Null))
    }

    fn cast_expr(&mut self, x: &ast::Expr, dt: &ast::DataType, e: &ast::Expr) -> Option<Typed> {
        let at = self.at(e);
        let t = self.expr(x)?;
        let Some(to) = cast_target(dt) else {
            let d = Diagnostic::at(at, format!("cannot cast to `{dt}`"))
                .with_hint("supported types: int, bigint, double, float, varchar, string, boolean, timestamp");
            return self.fail(d);
        };
        self.checked_cast(t, to, x, at)
    }

    /// Casts, rejecting impossible casts and literals that do not convert (`CAST('abc' AS int)`).
    fn checked_cast(&mut self, t: Typed, to: DataType, x: &ast::Expr, at: Span) -> Option<Typed> {
        let from = t.data_type();
        let literal = t.is_literal() && !t.is_null_literal();
        let Some(out) = cast(t, to) else {
            return self.fail(Diagnostic::at(at, format!("cannot cast {} to {to}", type_name(from))));
        };
        if literal && fold(out.clone()).is_null_literal() {
            return self.fail(Diagnostic::at(at, format!("cannot cast `{x}` to {to}")));
        }
        Some(out)
    }

    /// `TIMESTAMP '2024-01-01 00:00:00'` and friends: a cast of the text.
    fn typed_string(&mut self, ts: &ast::TypedString, e: &ast::Expr) -> Option<Typed> {
        let at = self.at(e);
        match (cast_target(&ts.data_type), ts.value.value.clone().into_string()) {
            (Some(to), Some(s)) => self.checked_cast(Typed::Str(StrNode::Lit(s.into())), to, e, at),
            _ => self.unsupported(e),
        }
    }

    /// `INTERVAL '5' SECOND` or `INTERVAL '10 minutes'`: an int of milliseconds.
    fn interval(&mut self, iv: &ast::Interval, e: &ast::Expr) -> Option<Typed> {
        let amount = match &*iv.value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(s, _) => Some(s.clone()),
                other => other.clone().into_string(),
            },
            _ => None,
        };
        let unit = match &iv.leading_field {
            Some(f) => time::unit_millis(&f.to_string()).map(Some),
            None => Some(None),
        };
        let ms = match (amount, unit, &iv.last_field) {
            (Some(a), Some(u), None) => time::interval_millis(&a, u),
            _ => None,
        };
        match ms {
            Some(ms) => Some(Typed::Int(IntNode::Lit(ms))),
            None => {
                let at = self.at(e);
                let d = Diagnostic::at(at, format!("unsupported interval `{e}`")).with_hint(
                    "write e.g. INTERVAL '5' SECOND or INTERVAL '10 minutes' (months and years vary in length)",
                );
                self.fail(d)
            }
        }
    }
}
