//! `filter`: keeps the records for which a SQL predicate is true (NULL counts as false).
use crate::expr::Expr;
use eddy_api::registry::PlanContext;
use eddy_api::{Batch, Context, Diagnostics, Operator, OperatorBuilder, Result, SchemaRef, Spanned, TaskInfo};
use serde::Deserialize;

/// Config of `filter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// A boolean SQL expression over the input fields, e.g. `auction % 123 = 0`.
    #[serde(rename = "where")]
    pub predicate: Spanned<String>,
}

/// The planned `filter`.
pub struct FilterBuilder {
    schema: SchemaRef,
    predicate: Expr,
}

/// Validates the predicate against the input schema.
pub fn plan(cfg: FilterConfig, ctx: &PlanContext<'_>) -> Result<FilterBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let predicate = Expr::compile_predicate(&cfg.predicate, &input.schema)?;
    Ok(FilterBuilder { schema: input.schema.clone(), predicate })
}

impl OperatorBuilder for FilterBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Filter { predicate: self.predicate.clone() }))
    }
}

struct Filter {
    predicate: Expr,
}

impl Operator for Filter {
    fn process_batch(&mut self, input: &Batch, out: &mut Context<'_>) -> Result<()> {
        for row in input.rows() {
            if self.predicate.eval_bool(row) {
                out.emit_row(row);
            }
        }
        Ok(())
    }
}
