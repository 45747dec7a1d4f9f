//! Function calls: the scalar functions, the SQL special forms sqlparser parses on their own
//! (`SUBSTRING`, `TRIM`, `FLOOR`, `CEIL`), and the argument-list checks aggregates share.
use super::build::{build_list, by_type, concat, ListForm};
use super::compile::{type_name, Compiler};
use super::node::{BoolNode, FloatNode, IntNode, StrNode, TrimSide, Typed};
use eddy_api::diagnostic::did_you_mean;
use eddy_api::{DataType, Diagnostic, Span};
use sqlparser::ast;

/// Scalar functions by name (lower case).
pub(crate) const SCALAR_FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "floor",
    "greatest",
    "least",
    "length",
    "lower",
    "ltrim",
    "replace",
    "round",
    "rtrim",
    "substr",
    "substring",
    "trim",
    "upper",
];

/// Aggregate functions by name (lower case).
pub(crate) const AGGREGATE_FUNCTIONS: &[&str] = &["count", "sum", "min", "max", "avg", "first", "last"];

/// A call's name and plain arguments.
pub(crate) struct CallArgs<'e> {
    pub(crate) name: String,
    pub(crate) args: Vec<&'e ast::Expr>,
    /// `f(*)`.
    pub(crate) star: bool,
    /// `f(DISTINCT x)`.
    pub(crate) distinct: bool,
}

impl Compiler<'_> {
    /// The name and arguments of a call, rejecting clauses Eddy does not support (FILTER, OVER, ...).
    pub(crate) fn call_args<'e>(&mut self, f: &'e ast::Function, e: &ast::Expr) -> Option<CallArgs<'e>> {
        let at = self.at(e);
        let name = match f.name.0.as_slice() {
            [ast::ObjectNamePart::Identifier(id)] => id.value.to_lowercase(),
            _ => return self.fail(Diagnostic::at(at, format!("unknown function `{}`", f.name))),
        };
        let clause = if f.filter.is_some() {
            Some("FILTER")
        } else if f.over.is_some() {
            Some("OVER")
        } else if !f.within_group.is_empty() {
            Some("WITHIN GROUP")
        } else if f.null_treatment.is_some() {
            Some("IGNORE/RESPECT NULLS")
        } else if !matches!(f.parameters, ast::FunctionArguments::None) {
            Some("parameters")
        } else {
            None
        };
        if let Some(clause) = clause {
            return self.fail(Diagnostic::at(at, format!("{clause} is not supported in `{name}(...)`")));
        }
        let list = match &f.args {
            ast::FunctionArguments::None => {
                return Some(CallArgs { name, args: Vec::new(), star: false, distinct: false })
            }
            ast::FunctionArguments::Subquery(_) => {
                return self.fail(Diagnostic::at(at, "subqueries are not supported"));
            }
            ast::FunctionArguments::List(list) => list,
        };
        if let Some(c) = list.clauses.first() {
            return self.fail(Diagnostic::at(at, format!("`{c}` is not supported in `{name}(...)`")));
        }
        let mut args = Vec::with_capacity(list.args.len());
        let mut star = false;
        for a in &list.args {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => args.push(x),
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                other => {
                    return self.fail(Diagnostic::at(at, format!("unsupported argument `{other}` in `{name}(...)`")))
                }
            }
        }
        let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
        Some(CallArgs { name, args, star, distinct })
    }

    /// Checks the argument count; `max` None means no upper bound.
    pub(crate) fn arity(&mut self, name: &str, got: usize, min: usize, max: Option<usize>, at: Span) -> Option<()> {
        if got >= min && max.is_none_or(|m| got <= m) {
            return Some(());
        }
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let want = match max {
            Some(m) if m == min => format!("{min} argument{}", plural(min)),
            Some(m) if m == min + 1 => format!("{min} or {m} arguments"),
            Some(m) => format!("{min} to {m} arguments"),
            None => format!("at least {min} argument{}", plural(min)),
        };
        self.fail(Diagnostic::at(at, format!("`{name}` takes {want}, but got {got}")))
    }

    /// A scalar function call.
    pub(crate) fn function(&mut self, f: &ast::Function, e: &ast::Expr) -> Option<Typed> {
        let at = self.at(e);
        let call = self.call_args(f, e)?;
        let name = call.name.as_str();
        if AGGREGATE_FUNCTIONS.contains(&name) {
            let d = Diagnostic::at(at, format!("aggregate function `{name}` is not allowed here"))
                .with_hint("aggregates are computed by an aggregation, not inside a row expression");
            return self.fail(d);
        }
        if !SCALAR_FUNCTIONS.contains(&name) {
            let d = Diagnostic::at(at, format!("unknown function `{name}`"));
            let d = match did_you_mean(name, SCALAR_FUNCTIONS.iter().copied()) {
                Some(c) => d.with_hint(format!("did you mean `{c}`?")),
                None => d.with_hint(format!("available functions: {}", SCALAR_FUNCTIONS.join(", "))),
            };
            return self.fail(d);
        }
        if call.star {
            return self
                .fail(Diagnostic::at(at, format!("`*` is not an argument of `{name}`: only `count(*)` takes it")));
        }
        if call.distinct {
            return self.fail(Diagnostic::at(at, format!("DISTINCT is only allowed in aggregates, not in `{name}`")));
        }
        let args = self.exprs(call.args.iter().copied())?;
        let args: Vec<(Typed, &ast::Expr)> = args.into_iter().zip(call.args.iter().copied()).collect();
        self.scalar(name, args, at)
    }

    fn scalar(&mut self, name: &str, args: Vec<(Typed, &ast::Expr)>, at: Span) -> Option<Typed> {
        let n = args.len();
        let mut it = args.into_iter();
        match name {
            "lower" | "upper" | "length" | "char_length" | "character_length" => {
                self.arity(name, n, 1, Some(1), at)?;
                let s = self.str_arg(name, it.next())?;
                Some(match name {
                    "lower" => Typed::Str(StrNode::Lower(Box::new(s))),
                    "upper" => Typed::Str(StrNode::Upper(Box::new(s))),
                    _ => Typed::Int(IntNode::Length(Box::new(s))),
                })
            }
            "trim" | "ltrim" | "rtrim" => {
                self.arity(name, n, 1, Some(2), at)?;
                let s = self.str_arg(name, it.next());
                let chars = it.next().map(|a| self.str_arg(name, Some(a)));
                let chars = match chars {
                    Some(c) => Some(c?),
                    None => None,
                };
                let side = match name {
                    "ltrim" => TrimSide::Leading,
                    "rtrim" => TrimSide::Trailing,
                    _ => TrimSide::Both,
                };
                Some(Typed::Str(StrNode::Trim(Box::new((s?, chars)), side)))
            }
            "substring" | "substr" => {
                self.arity(name, n, 2, Some(3), at)?;
                let s = self.str_arg(name, it.next());
                let from = self.int_arg(name, it.next());
                let len = it.next().map(|a| self.int_arg(name, Some(a)));
                let len = match len {
                    Some(l) => Some(l?),
                    None => None,
                };
                Some(Typed::Str(StrNode::Substr(Box::new((s?, from?, len)))))
            }
            "replace" => {
                self.arity(name, n, 3, Some(3), at)?;
                let s = self.str_arg(name, it.next());
                let from = self.str_arg(name, it.next());
                let to = self.str_arg(name, it.next());
                Some(Typed::Str(StrNode::Replace(Box::new((s?, from?, to?)))))
            }
            "concat" => {
                self.arity(name, n, 1, None, at)?;
                Some(concat(it.map(|(t, _)| t).collect()))
            }
            "abs" => {
                self.arity(name, n, 1, Some(1), at)?;
                Some(match self.numeric_arg(name, it.next())? {
                    Typed::Int(v) => Typed::Int(IntNode::Abs(Box::new(v))),
                    Typed::Float(v) => Typed::Float(FloatNode::Abs(Box::new(v))),
                    other => other,
                })
            }
            "round" => {
                self.arity(name, n, 1, Some(2), at)?;
                let v = self.numeric_arg(name, it.next());
                let digits = match it.next() {
                    Some(d) => self.int_arg(name, Some(d)),
                    None => Some(IntNode::Lit(0)),
                };
                Some(match (v?, digits?) {
                    (Typed::Int(v), d) => Typed::Int(IntNode::Round(Box::new((v, d)))),
                    (Typed::Float(v), d) => Typed::Float(FloatNode::Round(Box::new((v, d)))),
                    (other, _) => other,
                })
            }
            "floor" | "ceil" | "ceiling" => {
                self.arity(name, n, 1, Some(1), at)?;
                let v = self.numeric_arg(name, it.next())?;
                Some(floor_ceil_node(v, name != "floor"))
            }
            "coalesce" | "greatest" | "least" => {
                self.arity(name, n, 1, None, at)?;
                let items: Vec<Typed> = it.map(|(t, _)| t).collect();
                let types = items.iter().map(Typed::data_type);
                let ty = self
                    .common_type(types, at, |a, b| format!("`{name}` arguments have different types: {a} and {b}"))?;
                let form = match name {
                    "coalesce" => ListForm::Coalesce,
                    "greatest" => ListForm::Greatest,
                    _ => ListForm::Least,
                };
                Some(by_type!(ty, build_list(form, items)).unwrap_or(Typed::Null))
            }
            _ => {
                let d = Diagnostic::at(at, format!("unknown function `{name}`"));
                self.fail(d)
            }
        }
    }

    /// A text argument: "`lower` needs a string argument, `price` is int".
    fn str_arg(&mut self, name: &str, arg: Option<(Typed, &ast::Expr)>) -> Option<StrNode> {
        let (t, e) = arg?;
        match t {
            Typed::Str(s) => Some(s),
            Typed::Null => Some(StrNode::Null),
            other => self.arg_error(name, "a string", other, e),
        }
    }

    fn int_arg(&mut self, name: &str, arg: Option<(Typed, &ast::Expr)>) -> Option<IntNode> {
        let (t, e) = arg?;
        match t {
            Typed::Int(n) => Some(n),
            Typed::Null => Some(IntNode::Null),
            other => self.arg_error(name, "an int", other, e),
        }
    }

    /// An int or float argument (the untyped NULL becomes an int NULL).
    fn numeric_arg(&mut self, name: &str, arg: Option<(Typed, &ast::Expr)>) -> Option<Typed> {
        let (t, e) = arg?;
        match t {
            Typed::Null => Some(Typed::Int(IntNode::Null)),
            t @ (Typed::Int(_) | Typed::Float(_)) => Some(t),
            other => self.arg_error(name, "a numeric", other, e),
        }
    }

    fn arg_error<T>(&mut self, name: &str, what: &str, t: Typed, e: &ast::Expr) -> Option<T> {
        let at = self.at(e);
        let msg = format!("`{name}` needs {what} argument, `{e}` is {}", type_name(t.data_type()));
        self.fail(Diagnostic::at(at, msg))
    }

    /// `SUBSTRING(s FROM a FOR b)`, `SUBSTRING(s, a, b)` and `SUBSTR(s, a)`.
    pub(crate) fn substring(
        &mut self,
        s: &ast::Expr,
        from: Option<&ast::Expr>,
        len: Option<&ast::Expr>,
    ) -> Option<Typed> {
        let st = self.expr(s);
        let ft = from.map(|f| self.expr(f).map(|t| (t, f)));
        let lt = len.map(|l| self.expr(l).map(|t| (t, l)));
        let s = self.str_arg("substring", Some((st?, s)));
        let from = match ft {
            Some(f) => self.int_arg("substring", Some(f?)),
            None => Some(IntNode::Lit(1)),
        };
        let len = match lt {
            Some(l) => Some(self.int_arg("substring", Some(l?))),
            None => None,
        };
        let len = match len {
            Some(l) => Some(l?),
            None => None,
        };
        Some(Typed::Str(StrNode::Substr(Box::new((s?, from?, len)))))
    }

    /// `TRIM([BOTH|LEADING|TRAILING] [chars FROM] s)` and `TRIM(s, chars)`.
    pub(crate) fn trim(
        &mut self,
        side: Option<ast::TrimWhereField>,
        what: Option<&ast::Expr>,
        characters: Option<&[ast::Expr]>,
        s: &ast::Expr,
        e: &ast::Expr,
    ) -> Option<Typed> {
        let chars_expr = match (what, characters) {
            (Some(w), _) => Some(w),
            (None, Some([c])) => Some(c),
            (None, None) => None,
            (None, Some(_)) => return self.unsupported(e),
        };
        let st = self.expr(s);
        let ct = chars_expr.map(|c| self.expr(c).map(|t| (t, c)));
        let s = self.str_arg("trim", Some((st?, s)));
        let chars = match ct {
            Some(c) => Some(self.str_arg("trim", Some(c?))),
            None => None,
        };
        let chars = match chars {
            Some(c) => Some(c?),
            None => None,
        };
        let side = match side {
            Some(ast::TrimWhereField::Leading) => TrimSide::Leading,
            Some(ast::TrimWhereField::Trailing) => TrimSide::Trailing,
            _ => TrimSide::Both,
        };
        Some(Typed::Str(StrNode::Trim(Box::new((s?, chars)), side)))
    }

    /// `FLOOR(x)` / `CEIL(x)`; the `TO unit` and scale forms are not supported.
    pub(crate) fn floor_ceil(
        &mut self,
        x: &ast::Expr,
        field: &ast::CeilFloorKind,
        ceil: bool,
        e: &ast::Expr,
    ) -> Option<Typed> {
        let name = if ceil { "ceil" } else { "floor" };
        if !matches!(field, ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)) {
            let at = self.at(e);
            let d = Diagnostic::at(at, format!("only the one-argument form `{name}(x)` is supported"))
                .with_hint("use `round(x, digits)` to round to decimal places");
            return self.fail(d);
        }
        let t = self.expr(x)?;
        let v = self.numeric_arg(name, Some((t, x)))?;
        Some(floor_ceil_node(v, ceil))
    }
}

/// Floor/ceil: integers are already whole, floats stay floats (as in Flink).
fn floor_ceil_node(v: Typed, ceil: bool) -> Typed {
    match v {
        Typed::Float(f) if ceil => Typed::Float(FloatNode::Ceil(Box::new(f))),
        Typed::Float(f) => Typed::Float(FloatNode::Floor(Box::new(f))),
        other => other,
    }
}
