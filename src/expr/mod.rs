//! SQL expressions compiled against a schema: evaluation, keys and aggregate functions.
//!
//! Expressions are written in the job file (`where: "auction % 123 = 0"`, `set: { price: "price *
//! 0.908" }`, `key_by: [auction]`, aggregates such as `"max(price)"`). Each is parsed once with
//! sqlparser and compiled against the input [`Schema`] into a typed tree over field positions, so
//! evaluating a record does no name lookups and no allocation (only functions that build a new string
//! allocate). Compile errors are [`Diagnostics`] that point into the job file.
//!
//! Semantics follow Flink SQL:
//! - SQL NULL: operators and functions return NULL when an input is NULL; `AND`/`OR` use
//!   three-valued logic; a `where` that evaluates to NULL drops the record.
//! - int op int gives int (division truncates toward zero); any float operand gives float;
//!   integer overflow wraps, as in Java.
//! - **Division or modulo by zero gives NULL** (for ints and floats) instead of failing the job.
//! - Timestamps are milliseconds since the epoch: `ts + int` and `ts - int` are timestamps,
//!   `ts - ts` is an int; ints, floats and timestamps compare with each other. `INTERVAL '5' SECOND`
//!   is an int of milliseconds, and `TIMESTAMP '2024-01-01 00:00:00'` a timestamp (UTC); a text
//!   literal compared with a timestamp is read as one (`ts > '2024-01-01'`).
//! - Text compares by bytes (lexicographic code-point order). `substring` is 1-based; `length`
//!   counts characters; `trim` strips whitespace unless given characters.
//! - `CAST` of text that does not parse (`CAST('abc' AS int)`) gives NULL; a literal that cannot
//!   convert is a compile error.
mod aggregate;
mod build;
mod compile;
mod functions;
mod key;
mod like;
mod node;
mod parse;
#[cfg(test)]
mod tests;
mod time;
mod value;

pub use aggregate::{Accumulator, AggregateCall, DistinctSet};
pub use key::KeyExprs;
pub use value::Value;

use compile::{strip_nested, Compiler};
use eddy_api::{Batch, DataType, Diagnostic, Diagnostics, Row, Schema, Spanned};
use node::{Eval, Typed};

/// A compiled scalar expression.
#[derive(Clone, Debug)]
pub struct Expr {
    text: String,
    node: Typed,
    data_type: DataType,
    /// Set for a bare field reference, which is read and copied as stored.
    column: Option<usize>,
}

impl Expr {
    /// Parses and compiles `text` against `schema`.
    pub fn compile(text: &Spanned<String>, schema: &Schema) -> Result<Expr, Diagnostics> {
        let ast = parse::parse(&text.value, text.span)?;
        let mut c = Compiler::new(schema, &text.value, text.span);
        let node = c.expr(&ast);
        let mut diags = c.diags;
        let (node, data_type) = match node {
            Some(n) if diags.is_empty() => match n.data_type() {
                Some(dt) => (n, dt),
                None => {
                    let d = Diagnostic::at(text.span, format!("`{}` has no type", text.value))
                        .with_hint("give NULL a type, e.g. `CAST(NULL AS int)`");
                    return Err(d.into());
                }
            },
            _ => {
                if diags.is_empty() {
                    diags.push(Diagnostic::at(text.span, format!("cannot compile `{}`", text.value)));
                }
                return Err(diags);
            }
        };
        let column = match strip_nested(&ast) {
            sqlparser::ast::Expr::Identifier(_) => node.as_column(),
            _ => None,
        };
        Ok(Expr { text: text.value.clone(), node, data_type, column })
    }

    /// Compiles a `where` condition, which must be boolean.
    pub fn compile_predicate(text: &Spanned<String>, schema: &Schema) -> Result<Expr, Diagnostics> {
        Self::compile_predicate_for("where", text, schema)
    }

    /// Compiles a boolean expression for the config key `key` (named in the error message).
    pub fn compile_predicate_for(key: &str, text: &Spanned<String>, schema: &Schema) -> Result<Expr, Diagnostics> {
        let e = Self::compile(text, schema)?;
        if e.data_type == DataType::Bool {
            return Ok(e);
        }
        let msg = format!("`{key}` must be a boolean expression, but `{}` is {}", text.value, e.data_type);
        Err(Diagnostic::at(text.span, msg).with_hint("compare it with something, e.g. `... > 0`").into())
    }

    /// The result type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The field position when the expression is a bare field reference.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value for `row`.
    #[inline]
    pub fn eval<'a>(&'a self, row: Row<'a>) -> Value<'a> {
        match self.column {
            Some(i) => Value::Datum(row.get(i)),
            None => self.node.eval(row),
        }
    }

    /// The value as a condition: NULL (and any non-boolean expression) counts as false.
    #[inline]
    pub fn eval_bool(&self, row: Row<'_>) -> bool {
        match &self.node {
            Typed::Bool(b) => b.eval(row) == Some(true),
            _ => false,
        }
    }

    /// The value of an int or timestamp expression (None for NULL or another type).
    #[inline]
    pub fn eval_int(&self, row: Row<'_>) -> Option<i64> {
        match &self.node {
            Typed::Int(n) | Typed::Ts(n) => n.eval(row),
            _ => None,
        }
    }

    /// The value of a numeric or timestamp expression as float (None for NULL or another type).
    #[inline]
    pub fn eval_float(&self, row: Row<'_>) -> Option<f64> {
        match &self.node {
            Typed::Float(n) => n.eval(row),
            Typed::Int(n) | Typed::Ts(n) => n.eval(row).map(|v| v as f64),
            _ => None,
        }
    }

    /// Whether the value is NULL for `row`.
    #[inline]
    pub fn is_null(&self, row: Row<'_>) -> bool {
        match self.column {
            Some(i) => row.get(i).is_null(),
            None => self.node.is_null(row),
        }
    }

    /// Evaluates and appends the value as the next field of the row being written to `out`.
    #[inline]
    pub fn push_into(&self, row: Row<'_>, out: &mut Batch) {
        match self.column {
            Some(i) => out.push_field_from(row, i),
            None => self.node.push_into(row, out),
        }
    }
}
