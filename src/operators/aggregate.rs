//! `aggregate`: a running aggregate per key (count, sum, min, max, avg, ...), no window.
//!
//! One accumulator per key and aggregate, never the records. `mode: updates` (default) emits the
//! key's new result after every record, like Flink's `keyBy().sum()`; `mode: final` emits each key
//! once when the input ends (bounded jobs). Without a key (none in the config, and the input is not a
//! `key_by`), the whole stream is one group and the operator runs at parallelism 1.
use crate::expr::{Accumulator, AggregateCall, KeyExprs};
use eddy_api::config::Entries;
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::PlanContext;
use eddy_api::{
    Batch, Diagnostic, Diagnostics, Field, Operator, OperatorBuilder, Output, OwnedDatum, Result, Row, Schema,
    SchemaRef, Spanned, TaskInfo,
};
use hashbrown::hash_table::{Entry, HashTable};
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

    fn fixed_parallelism(&self) -> Option<usize> {
        self.keys.is_none().then_some(1)
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Aggregate {
            keys: self.keys.clone(),
            calls: self.calls.clone(),
            mode: self.mode,
            groups: HashTable::new(),
        }))
    }
}

struct Group {
    hash: u64,
    key: Box<[OwnedDatum]>,
    accs: Box<[Accumulator]>,
}

struct Aggregate {
    keys: Option<Arc<KeyExprs>>,
    calls: Arc<[AggregateCall]>,
    mode: EmitMode,
    groups: HashTable<Group>,
}

impl Aggregate {
    fn group_of(&mut self, row: Row<'_>) -> &mut Group {
        let keys = self.keys.as_deref();
        let hash = keys.map_or(0, |k| k.hash(row));
        let entry =
            self.groups.entry(hash, |g| g.hash == hash && keys.is_none_or(|k| k.matches(row, &g.key)), |g| g.hash);
        match entry {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let key = keys.map(|k| k.to_owned_key(row)).unwrap_or_default();
                let accs = self.calls.iter().map(AggregateCall::new_accumulator).collect();
                v.insert(Group { hash, key, accs }).into_mut()
            }
        }
    }

    fn emit(calls: &[AggregateCall], g: &Group, out: &mut Batch) {
        for k in g.key.iter() {
            out.push(k.as_datum());
        }
        for (c, a) in calls.iter().zip(g.accs.iter()) {
            c.push_result(a, out);
        }
    }
}

impl Operator for Aggregate {
    fn process_batch(&mut self, input: &Batch, out: &mut Output<'_>) -> Result<()> {
        let calls = self.calls.clone();
        let updates = self.mode == EmitMode::Updates;
        for row in input.rows() {
            let g = self.group_of(row);
            for (c, a) in calls.iter().zip(g.accs.iter_mut()) {
                c.update(a, row);
            }
            if updates {
                Self::emit(&calls, g, out.batch());
            }
        }
        Ok(())
    }

    fn on_end_of_input(&mut self, out: &mut Output<'_>) -> Result<()> {
        if self.mode == EmitMode::Final {
            for g in self.groups.iter() {
                Self::emit(&self.calls, g, out.batch());
            }
        }
        Ok(())
    }
}
