//! `dedup`: drops a record when a record with the same key was seen within `ttl` (processing time), and
//! passes the others through unchanged.
//!
//! ```yaml
//! first_clicks: { type: dedup, inputs: [clicks], config: { key: [user, url], ttl: 10min } }
//! ```
//!
//! Per key, one value state with a time-to-live ([`StateTtl`]) remembers that the key was seen; every
//! sighting (a duplicate too) writes it again, so the key is forgotten `ttl` after it was last seen.
//! Nothing else is needed to bound the state: expired entries are invisible at once and removed by the
//! runtime's incremental TTL sweep, keys with them.
use crate::fields;
use eddy_api::config::ConfigDuration;
use eddy_api::key::FieldKeys;
use eddy_api::operator::InputPartitioning;
use eddy_api::state::{Namespace, StateDescriptor, StateTtl, ValueState};
use eddy_api::{
    Batch, Context, Diagnostic, Diagnostics, EddyError, OpenContext, Operator, OperatorBuilder, PlanContext, Result,
    SchemaRef, Spanned, TaskInfo,
};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Config of `dedup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// The fields that make two records duplicates when they are equal, e.g. `[user, url]`.
    pub key: Spanned<Vec<Spanned<String>>>,
    /// How long a key is remembered after it was last seen, in processing time, e.g. `10min`.
    pub ttl: Spanned<ConfigDuration>,
}

/// The planned `dedup`.
pub struct DedupBuilder {
    schema: SchemaRef,
    keys: Arc<FieldKeys>,
    ttl: Duration,
}

/// Resolves the key fields and checks the TTL.
pub fn plan(cfg: DedupConfig, ctx: &PlanContext<'_>) -> Result<DedupBuilder, Diagnostics> {
    let input = ctx.single_input()?;
    let mut diags = Diagnostics::new();
    if cfg.key.value.is_empty() {
        diags.push(
            Diagnostic::at(cfg.key.span, "dedup: `key` is empty").with_hint("name the fields that identify a record"),
        );
    }
    let keys: Vec<Option<usize>> = cfg
        .key
        .value
        .iter()
        .map(|name| fields::find(&input.schema, &input.name, name, "dedup", &[], &mut diags))
        .collect();
    if cfg.ttl.value.0.is_zero() {
        diags.push(Diagnostic::at(cfg.ttl.span, "dedup: `ttl` must be more than 0").with_hint("e.g. `ttl: 10min`"));
    }
    let keys: Option<Vec<usize>> = keys.into_iter().collect();
    match (keys, diags.is_empty()) {
        (Some(keys), true) => {
            Ok(DedupBuilder { schema: input.schema.clone(), keys: Arc::new(FieldKeys(keys)), ttl: cfg.ttl.value.0 })
        }
        _ => Err(diags),
    }
}

impl OperatorBuilder for DedupBuilder {
    fn output_schema(&self) -> SchemaRef {
        // Records pass unchanged, event time included.
        self.schema.clone()
    }

    fn input_partitioning(&self) -> InputPartitioning {
        InputPartitioning::Hash(self.keys.clone())
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Dedup { ttl: self.ttl, seen: None }))
    }
}

/// One subtask of `dedup`.
struct Dedup {
    ttl: Duration,
    seen: Option<ValueState<bool>>,
}

impl Operator for Dedup {
    fn open(&mut self, ctx: &mut OpenContext<'_>) -> Result<()> {
        let desc = StateDescriptor::new("seen").with_ttl(StateTtl::new(self.ttl));
        self.seen = Some(ctx.state()?.value(desc)?);
        Ok(())
    }

    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        let seen = self.seen.ok_or_else(|| EddyError::internal("dedup used before open"))?;
        let (st, out) = ctx.state_and_batch()?;
        for r in input.rows() {
            st.set_current_key(r);
            if seen.get(st, Namespace::NONE).is_none() {
                out.push_row_from(r);
            }
            // Written on every sighting: the TTL runs from the last one.
            seen.set(st, Namespace::NONE, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::registry::InputInfo;
    use eddy_api::testing::{row, OperatorHarness};
    use eddy_api::{DataType, Datum, Field, Schema, Span};

    fn builder(key: &[&str], ttl: Duration) -> Result<DedupBuilder, Diagnostics> {
        let f = Field::new;
        let schema = Schema::new(vec![f("user", DataType::String), f("url", DataType::String), f("n", DataType::Int)]);
        let inputs = [InputInfo { name: "clicks".into(), schema: Arc::new(schema), key: None }];
        let ctx = PlanContext {
            job: "test",
            node: "dedup",
            span: Span::new(1, 1),
            parallelism: 1,
            inputs: &inputs,
            checkpointing: false,
        };
        let key = key.iter().enumerate().map(|(i, k)| Spanned::new(Span::new(2, 10 + 6 * i as u32), k.to_string()));
        let cfg = DedupConfig {
            key: Spanned::new(Span::new(2, 9), key.collect()),
            ttl: Spanned::new(Span::new(2, 40), ConfigDuration(ttl)),
        };
        plan(cfg, &ctx)
    }

    fn click(user: &'static str, url: &'static str, n: i64) -> [Datum<'static>; 3] {
        [Datum::Str(user), Datum::Str(url), Datum::Int(n)]
    }

    #[test]
    fn duplicates_within_the_ttl_are_dropped() {
        let b = builder(&["user", "url"], Duration::from_secs(10)).unwrap();
        let mut h = OperatorHarness::new(&b).unwrap();
        h.process_rows(&[click("ann", "/a", 1), click("ann", "/a", 2), click("ann", "/b", 3), click("bob", "/a", 4)])
            .unwrap();
        assert_eq!(
            h.take_output(),
            [row(&click("ann", "/a", 1)), row(&click("ann", "/b", 3)), row(&click("bob", "/a", 4))]
        );
        // 9.999 s later ann /a is still known (and seen again: remembered until 19.999 s).
        h.set_processing_time(9_999).unwrap();
        h.process_rows(&[click("ann", "/a", 5)]).unwrap();
        assert!(h.output().is_empty());
        // At 10 s, ann /b and bob /a (last seen at 0) are forgotten, ann /a is not.
        h.set_processing_time(10_000).unwrap();
        h.process_rows(&[click("ann", "/a", 6), click("ann", "/b", 7), click("bob", "/a", 8)]).unwrap();
        assert_eq!(h.take_output(), [row(&click("ann", "/b", 7)), row(&click("bob", "/a", 8))]);
        h.set_processing_time(19_999).unwrap();
        h.process_rows(&[click("ann", "/a", 9)]).unwrap();
        assert!(h.output().is_empty(), "the duplicate at 10 s renewed the TTL");
    }

    #[test]
    fn expired_keys_leave_the_state() {
        let b = builder(&["user"], Duration::from_secs(1)).unwrap();
        let mut h = OperatorHarness::new(&b).unwrap();
        let rows: Vec<[Datum<'static>; 3]> = (0..100).map(|_| click("x", "/", 0)).collect();
        h.process_rows(&rows).unwrap();
        h.process_rows(&[click("y", "/", 0)]).unwrap();
        assert_eq!(h.take_output().len(), 2);
        assert_eq!(h.state().unwrap().entry_count(), 2);
        h.set_processing_time(1_000).unwrap();
        // What the runtime's periodic sweep does.
        h.state().unwrap().cleanup_expired(usize::MAX);
        assert_eq!(h.state().unwrap().entry_count(), 0);
    }

    #[test]
    fn unknown_key_fields_and_a_zero_ttl_are_located() {
        let Err(d) = builder(&["user", "ulr"], Duration::ZERO) else { panic!("accepted") };
        let text: Vec<String> = d.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "2:16: dedup: the input `clicks` has no field `ulr` (did you mean `url`?)",
                "2:40: dedup: `ttl` must be more than 0 (e.g. `ttl: 10min`)",
            ]
        );
        let Err(d) = builder(&[], Duration::from_secs(1)) else { panic!("accepted") };
        assert_eq!(d.0[0].to_string(), "2:9: dedup: `key` is empty (name the fields that identify a record)");
    }
}
