//! `aggregate`: a running aggregate per key (count, sum, min, max, avg, ...), no window.
//!
//! Written on the public keyed-state API like any user operator: one list of accumulators per key in a
//! [`ValueState`], never the records. `mode: updates` (default) emits the key's new result after every
//! record, like Flink's `keyBy().sum()`; `mode: final` emits each key once when the input ends (an
//! event-time timer at the end of time per key, which the final watermark of a bounded input fires).
//! Without a key (none in the config, and the input is not a `key_by`), the whole stream is one group
//! and the operator runs at parallelism 1.
use crate::expr::{Accumulator, AggregateCall, KeyExprs};
use eddy_api::config::Entries;
use eddy_api::key::{FieldKeys, KeySelector};
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::PlanContext;
use eddy_api::state::{Namespace, StateDescriptor, Timer, ValueState};
use eddy_api::{
    Batch, Context, Diagnostic, Diagnostics, Field, OpenContext, Operator, OperatorBuilder, Result, Schema, SchemaRef,
    Spanned, TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;

/// When results are emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitMode {
    /// After every input record, the updated result of its key.
    #[default]
    Updates,
    /// Once per key when all input has ended.
    Final,
}

/// Config of `aggregate`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Key fields or expressions; omit after a `key_by` (inherits its key) or for one global group.
    #[serde(default)]
    pub key_by: Option<Vec<Spanned<String>>>,
    /// Output fields: `name: "aggregate(expression)"`, e.g. `bids: "count(*)"`.
    pub emit: Entries<Spanned<String>>,
    /// `updates` (default) or `final`.
    #[serde(default)]
    pub mode: EmitMode,
}

/// The planned `aggregate`.
pub struct AggregateBuilder {
    schema: SchemaRef,
    keys: Option<Arc<KeyExprs>>,
    calls: Arc<[AggregateCall]>,
    mode: EmitMode,
}

/// Resolves the key, compiles the aggregate calls and derives the output schema.
pub fn plan(cfg: AggregateConfig, ctx: &PlanContext<'_>) -> Result<AggregateBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let schema = &input.schema;
    let key_texts = cfg
        .key_by
        .clone()
        .or_else(|| input.key.as_ref().map(|k| k.iter().map(|t| Spanned::new(ctx.span, t.clone())).collect()));
    let mut diags = Diagnostics::new();
    let keys = match key_texts {
        Some(k) if k.is_empty() => {
            diags.push(Diagnostic::at(ctx.span, "aggregate: `key_by` is empty; omit it for one global group"));
            None
        }
        Some(k) => KeyExprs::compile(&k, schema).map_err(|d| diags.extend(d.0)).ok(),
        None => None,
    };
    if cfg.emit.is_empty() {
        diags.push(Diagnostic::at(ctx.span, "aggregate: `emit` needs at least one `name: \"function(field)\"`"));
    }
    let mut fields: Vec<Field> = keys.as_ref().map(|k| k.fields()).unwrap_or_default();
    let mut calls = Vec::new();
    for (name, text) in cfg.emit.iter() {
        if fields.iter().any(|f| f.name == name.value) {
            diags.push(Diagnostic::at(name.span, format!("aggregate: output field `{}` is defined twice", name.value)));
        }
        match AggregateCall::compile(text, schema) {
            Ok(call) => {
                fields.push(Field::new(name.value.clone(), call.output_type()));
                calls.push(call);
            }
            Err(d) => diags.extend(d.0),
        }
    }
    diags.into_result(AggregateBuilder {
        schema: Arc::new(Schema::new(fields)),
        keys: keys.map(Arc::new),
        calls: calls.into(),
        mode: cfg.mode,
    })
}

impl OperatorBuilder for AggregateBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        match &self.keys {
            Some(k) => InputPartitioning::Hash(k.clone()),
            None => InputPartitioning::Any,
        }
    }

    fn state_key(&self) -> Option<Arc<dyn KeySelector>> {
        // One global group: state under the empty key.
        Some(match &self.keys {
            Some(k) => k.clone(),
            None => Arc::new(FieldKeys(Vec::new())),
        })
    }

    fn fixed_parallelism(&self) -> Option<usize> {
        self.keys.is_none().then_some(1)
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Aggregate { keys: self.keys.clone(), calls: self.calls.clone(), mode: self.mode, accs: None }))
    }
}

struct Aggregate {
    keys: Option<Arc<KeyExprs>>,
    calls: Arc<[AggregateCall]>,
    mode: EmitMode,
    accs: Option<ValueState<Vec<Accumulator>>>,
}

impl Aggregate {
    fn handle(&self) -> Result<ValueState<Vec<Accumulator>>> {
        self.accs.ok_or_else(|| eddy_api::EddyError::internal("aggregate used before open"))
    }
}

impl Operator for Aggregate {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        self.accs = Some(ctx.state()?.value(StateDescriptor::new("accumulators"))?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let handle = self.handle()?;
        let calls = &*self.calls;
        let (st, out) = ctx.state_and_batch()?;
        let updates = self.mode == EmitMode::Updates;
        for row in input.rows() {
            st.set_current_key(row);
            if updates {
                // The key values come from the row itself, so the accumulators need no copy to emit.
                if let Some(k) = &self.keys {
                    k.push_into(row, out);
                }
            }
            let mut created = false;
            let accs = handle.get_or_insert_with(st, Namespace::NONE, || {
                created = true;
                calls.iter().map(AggregateCall::new_accumulator).collect()
            });
            for (c, a) in calls.iter().zip(accs.iter_mut()) {
                c.update(a, row);
            }
            if updates {
                for (c, a) in calls.iter().zip(accs.iter()) {
                    c.push_result(a, out);
                }
            } else if created {
                st.register_event_timer(i64::MAX, Namespace::NONE);
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, _timer: Timer, ctx: &mut Context<'_>) -> Result<()> {
        let handle = self.handle()?;
        let (st, out) = ctx.state_and_batch()?;
        for k in st.current_key() {
            out.push(k.as_datum());
        }
        match handle.get(st, Namespace::NONE) {
            Some(accs) => self.calls.iter().zip(accs).for_each(|(c, a)| c.push_result(a, out)),
            None => out.abandon_row(),
        }
        handle.clear(st, Namespace::NONE);
        Ok(())
    }
}
