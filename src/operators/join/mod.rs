//! Event-time joins of two keyed streams: [`window_join`] (equal keys in the same tumbling or sliding
//! window) and [`interval_join`] (equal keys, right time within `[left time + lower, left time + upper]`).
//! Both are inner joins with Flink's semantics, written on the public keyed state and event-time timers.
//!
//! # Keys: one key, two schemas
//! The two inputs have different schemas, so one key selector cannot read both. The joins therefore
//! key each side on its own and meet in a shared key form:
//! - **Partitioning.** `key_by` (field names or SQL expressions) is compiled against *each* input's
//!   schema, and [`OperatorBuilder::input_partitioning_for`](eddy_api::OperatorBuilder::input_partitioning_for)
//!   hash-partitions input 0 by the left [`KeyExprs`] and input 1 by the right ones. Both hash the key
//!   *values* with [`KeyHasher`](eddy_api::key::KeyHasher), so equal keys from either side land in the
//!   same key group, hence the same subtask, whatever position the key fields have on each side.
//! - **Keyed state.** The state key ([`OperatorBuilder::state_key`](eddy_api::OperatorBuilder::state_key))
//!   is a plain [`FieldKeys`] over `0..k` of a *key row*: per record, the operator evaluates its side's
//!   key expressions into a one-row scratch batch (`KeyRow`) and makes that row's key current. The key
//!   row has the same layout for both sides, so one selector serves both, and its hash (again
//!   `KeyHasher` over the same values) is the partitioning hash: the key's group is always one this
//!   subtask owns.
//!
//! This needs no restriction on field positions; it does need every key expression to exist on both
//! sides with the same type (checked at plan time, with a hint to `CAST` in a `map`), since values of
//! different types never compare equal. A record with a NULL key part joins nothing (SQL's `NULL = NULL`
//! is not true) and is skipped. Without `key_by`, the key is inherited when both inputs come from
//! `key_by` nodes with the same key.
//!
//! # Output fields
//! The key fields first (named like `aggregate` names them: the field name, or the expression text),
//! then the operator's own fields (`window_start`, `window_end` for the window join), then every non-key
//! field of the left input, then every non-key field of the right input, then (interval join) the joined
//! event time. When a key is a bare field, that field appears once, as the key; a computed key
//! (`lower(channel)`) leaves the fields it reads in the data. A data field whose name occurs on both
//! sides, or equals a key or operator field name, is prefixed `left_` / `right_` on the side it comes
//! from; other fields keep their names. The prefixes are fixed rather than the input node names, which a
//! self-join (`inputs: [bids, bids]`) would make equal.
//!
//! # Lateness
//! A record is late when nothing it could still take part in is open: for the window join, when every
//! window it belongs to has already fired (window end - 1 <= watermark, as Flink's window operator); for
//! the interval join, when its time is at or behind the watermark (the definition of late;
//! Flink's interval join drops only records strictly behind it). `allowed_lateness: L` moves both
//! limits L later (a window join keeps a fired window's rows until the watermark passes end - 1 + L;
//! the interval join keeps rows L longer). A record whose time field is NULL counts as late. Late
//! records are counted with [`Context::record_late`](eddy_api::Context::record_late) and dropped, or,
//! with `late_output: NAME`, sent unchanged to the side output `NAME_left` or `NAME_right` (the input
//! they came from: the two inputs' schemas differ), read as `inputs: [join.NAME_left]`.
pub mod interval_join;
pub mod window_join;

use crate::expr::{Expr, KeyExprs};
use eddy_api::config::ConfigDuration;
use eddy_api::key::FieldKeys;
use eddy_api::registry::{InputInfo, PlanContext};
use eddy_api::state::KeyedState;
use eddy_api::{Batch, Context, Diagnostic, Diagnostics, Field, OwnedDatum, Row, Schema, SchemaRef, Span, Spanned};
use std::collections::HashSet;
use std::sync::Arc;

/// A buffered row: the non-key fields of one side, owned.
pub(crate) type StoredRow = Box<[OwnedDatum]>;

/// Which input a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Left,
    Right,
}

impl Side {
    /// The side of input port `port` (0 = left, 1 = right).
    pub(crate) fn of_port(port: usize) -> eddy_api::Result<Side> {
        match port {
            0 => Ok(Side::Left),
            1 => Ok(Side::Right),
            p => Err(eddy_api::EddyError::internal(format!("a join has two inputs, got a batch on input {p}"))),
        }
    }
}

/// One side of a join as planned: its key expressions, time field and the fields it contributes.
#[derive(Clone, Debug)]
pub(crate) struct SidePlan {
    /// The key, compiled against this side's schema.
    pub keys: Arc<KeyExprs>,
    /// The event-time field.
    pub time: usize,
    /// Positions of the fields that go to the output (every field but bare key fields).
    pub cols: Box<[usize]>,
}

impl SidePlan {
    /// The row's event time; NULL (or a non-time value) reads as `i64::MIN`, which is always late.
    #[inline]
    pub(crate) fn time_of(&self, row: Row<'_>) -> i64 {
        row.int(self.time).unwrap_or(i64::MIN)
    }

    /// The output fields of the row, owned.
    pub(crate) fn store(&self, row: Row<'_>) -> StoredRow {
        self.cols.iter().map(|&i| row.get(i).to_owned()).collect()
    }
}

/// What both joins plan alike: the sides, the key fields and the output schema.
pub(crate) struct JoinPlan {
    pub left: SidePlan,
    pub right: SidePlan,
    /// Number of key parts.
    pub key_len: usize,
    /// The output schema.
    pub schema: Arc<Schema>,
}

/// Checks the two inputs and the key, and lays out the output: key fields, `middle` (the operator's own
/// leading fields), the left and right data fields, then `last` (a trailing field, e.g. the joined
/// event time). Every problem is reported, located.
pub(crate) fn plan_join(
    what: &str,
    key_by: Option<Vec<Spanned<String>>>,
    middle: &[Field],
    last: Option<Field>,
    ctx: &PlanContext<'_>,
) -> Result<JoinPlan, Diagnostics> {
    let (left, right) = match ctx.inputs {
        [l, r] => (l, r),
        other => {
            let d = Diagnostic::at(
                ctx.span,
                format!("`{}` ({what}) takes exactly two inputs, left and right, got {}", ctx.node, other.len()),
            )
            .with_hint("write `inputs: [left, right]`");
            return Err(d.into());
        }
    };
    let mut diags = Diagnostics::new();
    for input in [left, right] {
        if input.schema.event_time().is_none() {
            diags.push(
                Diagnostic::at(
                    ctx.span,
                    format!(
                        "{what} `{}` joins in event time, but its input `{}` has no event time",
                        ctx.node, input.name
                    ),
                )
                .with_hint(format!(
                    "declare `event_time: {{ field: ..., max_out_of_orderness: ... }}` beside `type:` on the source \
                     that feeds `{}`, and keep that field through any `map`",
                    input.name
                )),
            );
        }
    }
    let keys = match key_by {
        Some(k) if k.is_empty() => {
            let span = k.first().map_or(ctx.span, |s| s.span);
            diags.push(Diagnostic::at(span, format!("{what}: `key_by` is empty; a join needs a key")));
            None
        }
        Some(k) => Some(k),
        None => match (&left.key, &right.key) {
            (Some(a), Some(b)) if a == b && !a.is_empty() => {
                Some(a.iter().map(|t| Spanned::new(ctx.span, t.clone())).collect())
            }
            _ => {
                diags.push(
                    Diagnostic::at(ctx.span, format!("{what} `{}` needs `key_by`", ctx.node))
                        .with_hint("add `key_by: [field]` naming key fields that both inputs have, with equal types"),
                );
                None
            }
        },
    };
    let Some(keys) = keys else { return Err(diags) };
    let compiled = |input: &InputInfo, side: &str, diags: &mut Diagnostics| {
        KeyExprs::compile(&keys, &input.schema)
            .map_err(|d| {
                diags.extend(d.0.into_iter().map(|mut d| {
                    d.message = format!("{what} key, {side} input `{}`: {}", input.name, d.message);
                    d
                }))
            })
            .ok()
    };
    let lk = compiled(left, "left", &mut diags);
    let rk = compiled(right, "right", &mut diags);
    let (Some(lk), Some(rk)) = (lk, rk) else { return Err(diags) };
    let (lf, rf) = (lk.fields(), rk.fields());
    for ((text, l), r) in keys.iter().zip(&lf).zip(&rf) {
        if l.data_type != r.data_type {
            diags.push(
                Diagnostic::at(
                    text.span,
                    format!(
                        "{what} key `{}` is {} on `{}` but {} on `{}`; keys only match values of the same type",
                        text.value, l.data_type, left.name, r.data_type, right.name
                    ),
                )
                .with_hint(format!(
                    "convert one side in a `map` first, e.g. `set: {{ {}: \"CAST({} AS {})\" }}`",
                    text.value, text.value, l.data_type
                )),
            );
        }
    }
    let side = |input: &InputInfo, k: &KeyExprs| {
        let key_cols: HashSet<usize> = k.exprs().iter().filter_map(Expr::column).collect();
        let cols: Box<[usize]> = (0..input.schema.len()).filter(|i| !key_cols.contains(i)).collect();
        (cols, input.schema.event_time().unwrap_or(0))
    };
    let (lcols, ltime) = side(left, &lk);
    let (rcols, rtime) = side(right, &rk);

    // Output names: prefix a data field that would clash with the other side or a fixed name.
    let mut fixed: Vec<&str> = lf.iter().map(|f| f.name.as_str()).collect();
    fixed.extend(middle.iter().map(|f| f.name.as_str()));
    if let Some(f) = &last {
        fixed.push(&f.name);
    }
    let names = |s: &Schema, cols: &[usize]| -> Vec<Field> { cols.iter().map(|&i| s.fields()[i].clone()).collect() };
    let (ldata, rdata) = (names(&left.schema, &lcols), names(&right.schema, &rcols));
    let clash = |f: &Field, other: &[Field]| fixed.contains(&f.name.as_str()) || other.iter().any(|o| o.name == f.name);
    let renamed = |data: &[Field], other: &[Field], prefix: &str| -> Vec<Field> {
        data.iter()
            .map(|f| if clash(f, other) { Field::new(format!("{prefix}{}", f.name), f.data_type) } else { f.clone() })
            .collect()
    };
    let mut fields = lf.clone();
    fields.extend(middle.iter().cloned());
    fields.extend(renamed(&ldata, &rdata, "left_"));
    fields.extend(renamed(&rdata, &ldata, "right_"));
    let time_index = last.as_ref().map(|_| fields.len());
    fields.extend(last);
    let mut seen = HashSet::new();
    for f in &fields {
        if !seen.insert(f.name.as_str()) {
            diags.push(
                Diagnostic::at(
                    ctx.span,
                    format!("{what} `{}`: output field `{}` would appear twice", ctx.node, f.name),
                )
                .with_hint("rename the field on one input with a `map` first"),
            );
        }
    }
    diags.into_result(())?;
    Ok(JoinPlan {
        left: SidePlan { keys: Arc::new(lk), time: ltime, cols: lcols },
        right: SidePlan { keys: Arc::new(rk), time: rtime, cols: rcols },
        key_len: keys.len(),
        schema: Arc::new(Schema::new(fields).with_event_time(time_index)),
    })
}

/// The keyed-state selector shared by both sides: key parts `0..len` of a [`KeyRow`].
pub(crate) fn state_selector(len: usize) -> Arc<FieldKeys> {
    Arc::new(FieldKeys((0..len).collect()))
}

/// A one-row scratch batch holding the current record's key values, in the layout both sides share.
pub(crate) struct KeyRow(Batch);

impl KeyRow {
    pub(crate) fn new(len: usize) -> Self {
        KeyRow(Batch::new(len))
    }

    /// Makes the key of `row` (evaluated by `keys`, its side's key) current in `state`. False, and no
    /// key made current, when a key part is NULL: as in SQL, NULL equals nothing, so such a record can
    /// never join and is not buffered.
    #[inline]
    pub(crate) fn set_current(&mut self, keys: &KeyExprs, row: Row<'_>, state: &mut KeyedState) -> bool {
        self.0.clear();
        keys.push_into(row, &mut self.0);
        let key = self.0.row(0);
        if key.iter().any(|d| d.is_null()) {
            return false;
        }
        state.set_current_key(key);
        true
    }

    /// The key values last made current (valid until the next `set_current`).
    pub(crate) fn row(&self) -> Row<'_> {
        self.0.row(0)
    }
}

/// Writes output rows, through the optional `where` predicate: with one, a row is built in a scratch
/// batch and copied out only when the predicate holds.
pub(crate) struct Emitter {
    predicate: Option<Expr>,
    scratch: Batch,
}

impl Emitter {
    pub(crate) fn new(predicate: Option<Expr>, width: usize) -> Self {
        Emitter { predicate, scratch: Batch::new(width) }
    }

    /// Where to push the fields of the next row.
    #[inline]
    pub(crate) fn target<'a>(&'a mut self, out: &'a mut Batch) -> &'a mut Batch {
        if self.predicate.is_some() {
            &mut self.scratch
        } else {
            out
        }
    }

    /// Completes the row pushed into [`target`](Self::target).
    #[inline]
    pub(crate) fn finish(&mut self, out: &mut Batch) {
        if let Some(p) = &self.predicate {
            if !self.scratch.is_empty() && p.eval_bool(self.scratch.row(0)) {
                out.push_row_from(self.scratch.row(0));
            }
            self.scratch.clear();
        }
    }
}

/// Compiles the optional `where` over the output schema.
pub(crate) fn compile_where(predicate: Option<&Spanned<String>>, schema: &Schema) -> Result<Option<Expr>, Diagnostics> {
    predicate.map(|p| Expr::compile_predicate(p, schema)).transpose()
}

/// A duration in whole milliseconds, possibly negative (`-5s`, `10s`, `0`, `+2s`).
pub(crate) fn signed_millis(text: &Spanned<String>) -> Result<i64, Diagnostic> {
    let t = text.value.trim();
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = ConfigDuration::parse(rest.trim()).map_err(|e| Diagnostic::at(text.span, e))?;
    let ms = duration_millis(d, text.span)?;
    Ok(if negative { -ms } else { ms })
}

/// A non-negative config duration in whole milliseconds.
pub(crate) fn duration_millis(d: ConfigDuration, span: Span) -> Result<i64, Diagnostic> {
    let d = d.0;
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(Diagnostic::at(span, format!("{d:?} is not a whole number of milliseconds; event time is in ms")));
    }
    i64::try_from(d.as_millis()).map_err(|_| Diagnostic::at(span, format!("{d:?} is too large")))
}

/// `allowed_lateness` and `late_output` of a join, checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lateness {
    /// Allowed lateness in ms.
    pub allowed: i64,
    /// The side outputs for late records, left then right (empty without `late_output`).
    pub sides: Vec<(String, SchemaRef)>,
}

impl Lateness {
    /// Checks the settings against the two inputs (`ctx.inputs`; fewer than two were reported already).
    pub(crate) fn plan(
        what: &str,
        allowed: Option<&Spanned<ConfigDuration>>,
        late_output: Option<&Spanned<String>>,
        ctx: &PlanContext<'_>,
    ) -> Result<Lateness, Diagnostics> {
        let mut diags = Diagnostics::new();
        let allowed = match allowed {
            Some(l) => duration_millis(l.value, l.span).map_err(|d| diags.push(d)).unwrap_or(0),
            None => 0,
        };
        let mut sides = Vec::new();
        if let Some(name) = late_output {
            let n = &name.value;
            if n.is_empty() || !n.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                diags.push(
                    Diagnostic::at(name.span, format!("{what}: `late_output: {n}` is not a usable name")).with_hint(
                        "use a plain name such as `late`: the join reads it as `late_left` and `late_right`",
                    ),
                );
            } else if let [left, right] = ctx.inputs {
                sides.push((format!("{n}_left"), left.schema.clone()));
                sides.push((format!("{n}_right"), right.schema.clone()));
            }
        }
        diags.into_result(Lateness { allowed, sides })
    }

    /// Routes the rows `late` of `input` (from input `port`) to their side output, or counts them dropped.
    pub(crate) fn send(
        &self,
        ctx: &mut Context<'_>,
        input: &Batch,
        port: usize,
        late: &[usize],
    ) -> eddy_api::Result<()> {
        if late.is_empty() {
            return Ok(());
        }
        let n = late.len() as u64;
        if self.sides.is_empty() {
            ctx.record_late(n, 0);
            return Ok(());
        }
        let side = ctx.side_output(port)?;
        for &i in late {
            side.push_row_from(input.row(i));
        }
        ctx.record_late(0, n);
        Ok(())
    }
}
