//! `flat_map`: splits a string field into one record per piece (e.g. lines into words).
use eddy_api::registry::PlanContext;
use eddy_api::{
    Batch, Context, DataType, Diagnostic, Diagnostics, Field, Operator, OperatorBuilder, Result, Schema, SchemaRef,
    Spanned, TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;

/// Config of `flat_map`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatMapConfig {
    /// The string field to split.
    pub split: Spanned<String>,
    /// The separator; omit to split on runs of whitespace.
    #[serde(default)]
    pub separator: Option<String>,
    /// Name of the field holding each piece (replaces the split field); defaults to the split field.
    #[serde(default, rename = "as")]
    pub as_name: Option<Spanned<String>>,
    /// Drop empty pieces (default true).
    #[serde(default = "yes")]
    pub skip_empty: bool,
    /// Lower-case every piece (default false).
    #[serde(default)]
    pub lowercase: bool,
}

fn yes() -> bool {
    true
}

/// The planned `flat_map`.
pub struct FlatMapBuilder {
    schema: SchemaRef,
    field: usize,
    separator: Option<Arc<str>>,
    skip_empty: bool,
    lowercase: bool,
}

/// Checks the split field and derives the output schema.
pub fn plan(cfg: FlatMapConfig, ctx: &PlanContext<'_>) -> Result<FlatMapBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let Some(field) = schema.index_of(&cfg.split) else {
        return Err(Diagnostic::at(
            cfg.split.span,
            format!("flat_map: unknown field `{}`; the input has {schema}", cfg.split.value),
        )
        .did_you_mean(&cfg.split, schema.names())
        .into());
    };
    if schema.fields()[field].data_type != DataType::String {
        return Err(Diagnostic::at(
            cfg.split.span,
            format!("flat_map splits strings, but `{}` is {}", cfg.split.value, schema.fields()[field].data_type),
        )
        .into());
    }
    if matches!(&cfg.separator, Some(s) if s.is_empty()) {
        return Err(Diagnostic::at(ctx.span, "flat_map: `separator` must not be empty").into());
    }
    let name = cfg.as_name.map(|n| n.value).unwrap_or(cfg.split.value);
    let mut fields = schema.fields().to_vec();
    fields[field] = Field::new(name.clone(), DataType::String);
    if fields.iter().filter(|f| f.name == name).count() > 1 {
        return Err(Diagnostic::at(ctx.span, format!("flat_map: field `{name}` already exists in the input")).into());
    }
    Ok(FlatMapBuilder {
        schema: Arc::new(Schema::new(fields).with_event_time(schema.event_time().filter(|&et| et != field))),
        field,
        separator: cfg.separator.map(Into::into),
        skip_empty: cfg.skip_empty,
        lowercase: cfg.lowercase,
    })
}

impl OperatorBuilder for FlatMapBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(FlatMap {
            field: self.field,
            separator: self.separator.clone(),
            skip_empty: self.skip_empty,
            lowercase: self.lowercase,
            scratch: String::new(),
        }))
    }
}

struct FlatMap {
    field: usize,
    separator: Option<Arc<str>>,
    skip_empty: bool,
    lowercase: bool,
    scratch: String,
}

impl FlatMap {
    fn emit_piece(&mut self, row: eddy_api::Row<'_>, piece: &str, out: &mut Batch) {
        if self.skip_empty && piece.is_empty() {
            return;
        }
        let piece = if self.lowercase {
            self.scratch.clear();
            self.scratch.extend(piece.chars().flat_map(char::to_lowercase));
            self.scratch.as_str()
        } else {
            piece
        };
        for i in 0..row.len() {
            if i == self.field {
                out.push_str(piece);
            } else {
                out.push(row.get(i));
            }
        }
    }
}

impl Operator for FlatMap {
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()> {
        let out = out.batch();
        for row in input.rows() {
            let Some(text) = row.str(self.field) else { continue };
            match self.separator.clone() {
                Some(sep) => text.split(&*sep).for_each(|p| self.emit_piece(row, p, out)),
                None => text.split_whitespace().for_each(|p| self.emit_piece(row, p, out)),
            }
        }
        Ok(())
    }
}
