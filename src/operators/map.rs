//! `map`: computes fields with SQL expressions (`set`), and picks (`select`) or removes (`drop`) fields.
//!
//! Every expression sees the input record, as in a SQL `SELECT`. A `set` of an existing field replaces it
//! in place (its type may change); a new name is appended.
use crate::expr::Expr;
use eddy_api::config::Entries;
use eddy_api::registry::PlanContext;
use eddy_api::{
    Batch, Context, Diagnostic, Diagnostics, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef, Spanned,
    TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;

/// Config of `map`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// Keep only these input fields, in this order (applied first).
    #[serde(default)]
    pub select: Option<Vec<Spanned<String>>>,
    /// Remove these input fields.
    #[serde(default)]
    pub drop: Vec<Spanned<String>>,
    /// Fields to compute: `name: "SQL expression"`.
    #[serde(default)]
    pub set: Entries<Spanned<String>>,
}

#[derive(Clone)]
enum Column {
    Copy(usize),
    Compute(Expr),
}

/// The planned `map`.
pub struct MapBuilder {
    schema: SchemaRef,
    columns: Arc<[Column]>,
}

fn field_index(schema: &Schema, name: &Spanned<String>, what: &str, diags: &mut Diagnostics) -> Option<usize> {
    let idx = schema.index_of(name);
    if idx.is_none() {
        diags.push(
            Diagnostic::at(name.span, format!("{what}: unknown field `{}`; the input has {schema}", name.value))
                .did_you_mean(name, schema.names()),
        );
    }
    idx
}

/// Derives the output schema and compiles the expressions.
pub fn plan(cfg: MapConfig, ctx: &PlanContext<'_>) -> Result<MapBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let mut diags = Diagnostics::new();
    let mut out: Vec<(Field, Column)> = match &cfg.select {
        Some(names) => names
            .iter()
            .filter_map(|n| field_index(schema, n, "select", &mut diags))
            .map(|i| (schema.fields()[i].clone(), Column::Copy(i)))
            .collect(),
        None => schema.fields().iter().enumerate().map(|(i, f)| (f.clone(), Column::Copy(i))).collect(),
    };
    for name in &cfg.drop {
        if field_index(schema, name, "drop", &mut diags).is_some() {
            out.retain(|(f, _)| f.name != name.value);
        }
    }
    for (name, text) in cfg.set.iter() {
        match Expr::compile(text, schema) {
            Ok(expr) => {
                let field = Field::new(name.value.clone(), expr.data_type());
                let column = match expr.column() {
                    Some(i) => Column::Copy(i),
                    None => Column::Compute(expr),
                };
                match out.iter_mut().find(|(f, _)| f.name == name.value) {
                    Some(slot) => *slot = (field, column),
                    None => out.push((field, column)),
                }
            }
            Err(d) => diags.extend(d.0),
        }
    }
    if out.is_empty() && diags.is_empty() {
        diags.push(Diagnostic::at(ctx.span, format!("map `{}` leaves no fields", ctx.node)));
    }
    // Event time survives when its field is copied through under the same name.
    let event_time = schema.event_time().and_then(|et| {
        out.iter().position(|(f, c)| matches!(c, Column::Copy(i) if *i == et) && f.name == schema.fields()[et].name)
    });
    let (fields, columns): (Vec<Field>, Vec<Column>) = out.into_iter().unzip();
    let schema = Schema::new(fields).with_event_time(event_time);
    diags.into_result(MapBuilder { schema: Arc::new(schema), columns: columns.into() })
}

impl OperatorBuilder for MapBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Map { columns: self.columns.clone() }))
    }
}

struct Map {
    columns: Arc<[Column]>,
}

impl Operator for Map {
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()> {
        let out = out.batch();
        for row in input.rows() {
            for c in self.columns.iter() {
                match c {
                    Column::Copy(i) => out.push(row.get(*i)),
                    Column::Compute(e) => e.push_into(row, out),
                }
            }
        }
        Ok(())
    }
}
