//! Output rows of a window: key fields, `window_start`, `window_end`, then the aggregate results.
//!
//! A window's accumulators live in keyed state, and so does the key (`KeyedState::current_key`), so the
//! key is copied once into a one-row batch here before the state is borrowed mutably for the
//! accumulators; every row written then takes the key from that batch.
use crate::expr::{Accumulator, AggregateCall};
use eddy_api::{Batch, Context, Datum, OwnedDatum, Result};

/// Writes result rows for one key at a time.
pub struct Emitter {
    key: Batch,
}

impl Emitter {
    /// An emitter for keys of `key_len` fields.
    pub fn new(key_len: usize) -> Self {
        Emitter { key: Batch::new(key_len) }
    }

    /// Remembers the key of the rows to write next.
    #[inline]
    pub fn set_key(&mut self, key: &[OwnedDatum]) {
        if self.key.width() == 0 {
            return;
        }
        self.key.clear();
        for k in key {
            self.key.push(k.as_datum());
        }
    }

    /// Appends one result row to `out`: the key, the window bounds (NULL when `None`) and the results.
    #[inline]
    pub fn row(&self, out: &mut Batch, bounds: Option<(i64, i64)>, calls: &[AggregateCall], accs: &[Accumulator]) {
        if self.key.width() > 0 {
            if self.key.is_empty() {
                // No key was set: an operator bug; write NULLs rather than a misaligned row.
                (0..self.key.width()).for_each(|_| out.push_null());
            } else {
                let key = self.key.row(0);
                (0..self.key.width()).for_each(|i| out.push_field_from(key, i));
            }
        }
        match bounds {
            Some((start, end)) => {
                out.push(Datum::Timestamp(start));
                out.push(Datum::Timestamp(end));
            }
            None => {
                out.push_null();
                out.push_null();
            }
        }
        for (c, a) in calls.iter().zip(accs) {
            c.push_result(a, out);
        }
    }
}

/// Fresh accumulators for `calls`.
#[inline]
pub fn new_accumulators(calls: &[AggregateCall]) -> Vec<Accumulator> {
    calls.iter().map(AggregateCall::new_accumulator).collect()
}

/// Empties accumulators in place (after a purging firing).
#[inline]
pub fn reset(calls: &[AggregateCall], accs: &mut [Accumulator]) {
    for (c, a) in calls.iter().zip(accs.iter_mut()) {
        *a = c.new_accumulator();
    }
}

/// Sends the late rows of `input` (indices, any order) to side output 0 when `side_output`, else
/// counts them as dropped; either way they show in the metrics.
pub fn send_late(ctx: &mut Context<'_>, input: &Batch, late: &mut [usize], side_output: bool) -> Result<()> {
    if late.is_empty() {
        return Ok(());
    }
    late.sort_unstable();
    let n = late.len() as u64;
    if side_output {
        let side = ctx.side_output(0)?;
        for &i in late.iter() {
            side.push_row_from(input.row(i));
        }
        ctx.record_late(0, n);
    } else {
        ctx.record_late(n, 0);
    }
    Ok(())
}
