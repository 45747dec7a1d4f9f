//! `key_by`: partitions a stream by key (hash of the key into key groups, key-group ranges per
//! subtask). A routing node: consumers inherit the key, and the planner turns it into a hash edge.
use crate::expr::KeyExprs;
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::PlanContext;
use eddy_api::{Diagnostics, EddyError, Operator, OperatorBuilder, Result, SchemaRef, Spanned, TaskInfo};
use serde::Deserialize;
use std::sync::Arc;

/// Config of `key_by`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyByConfig {
    /// Key fields or SQL expressions, e.g. `[auction]` or `[auction, "lower(channel)"]`.
    pub key: Vec<Spanned<String>>,
}

/// The planned `key_by`.
pub struct KeyByBuilder {
    schema: SchemaRef,
    keys: Arc<KeyExprs>,
    texts: Vec<String>,
}

/// Compiles the key expressions.
pub fn plan(cfg: KeyByConfig, ctx: &PlanContext<'_>) -> Result<KeyByBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let keys = KeyExprs::compile(&cfg.key, &input.schema)?;
    Ok(KeyByBuilder {
        schema: input.schema.clone(),
        keys: Arc::new(keys),
        texts: cfg.key.into_iter().map(|k| k.value).collect(),
    })
}

impl OperatorBuilder for KeyByBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Hash(self.keys.clone())
    }

    fn output_key(&self) -> Option<Vec<String>> {
        Some(self.texts.clone())
    }

    fn passthrough(&self) -> bool {
        true
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Err(EddyError::internal("key_by is a routing node and never runs as a task"))
    }
}
