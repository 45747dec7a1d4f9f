//! `union`: merges streams with equal schemas. A routing node: the planner wires its inputs straight to
//! its consumers, so no task copies records through it.
use eddy_api::registry::PlanContext;
use eddy_api::{Diagnostic, Diagnostics, EddyError, Operator, OperatorBuilder, Result, SchemaRef, TaskInfo};
use serde::Deserialize;

/// Config of `union` (none).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UnionConfig {}

/// The planned `union`.
pub struct UnionBuilder {
    schema: SchemaRef,
}

/// Checks that every input has the same schema.
pub fn plan(_cfg: UnionConfig, ctx: &PlanContext<'_>) -> Result<UnionBuilder, Diagnostics> {
    let Some(first) = ctx.inputs.first() else {
        return Err(Diagnostic::at(ctx.span, "union needs at least one input").into());
    };
    let mut diags = Diagnostics::new();
    for other in &ctx.inputs[1..] {
        if other.schema != first.schema {
            diags.push(Diagnostic::at(
                ctx.span,
                format!(
                    "union `{}`: input `{}` has {} but `{}` has {}",
                    ctx.node, other.name, other.schema, first.name, first.schema
                ),
            ));
        }
    }
    diags.into_result(UnionBuilder { schema: first.schema.clone() })
}

impl OperatorBuilder for UnionBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn passthrough(&self) -> bool {
        true
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Err(EddyError::internal("union is a routing node and never runs as a task"))
    }
}
