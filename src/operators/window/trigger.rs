//! Triggers: when a window emits, besides at its end.
//!
//! The default trigger fires a time window once when the watermark (or, in processing time, the clock)
//! passes its end, and again for every record that arrives within the allowed lateness after that
//! (Flink's `EventTimeTrigger`). Early firings come on top:
//! - `{ every: 1s }`: every interval of processing time, aligned to multiples of it (Flink's
//!   `ContinuousProcessingTimeTrigger`), one processing-time timer per window (per key for sessions);
//!   unlike Flink, a firing with nothing new since the previous one emits nothing;
//! - `{ count: 1000 }`: whenever a window has received that many records since its last firing (Flink's
//!   `CountTrigger`).
//!
//! `purge: false` (default) accumulates: every firing emits the whole window so far. `purge: true`
//! clears the window's accumulators after each firing, so each row covers only the records since the
//! previous one (Flink's `PurgingTrigger`); the final firing then emits only if something is new.

/// An early firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Early {
    /// Every this many ms of processing time.
    Every(i64),
    /// Every this many records of a window.
    Count(u64),
}

/// A window's trigger beyond the end-of-window firing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trigger {
    /// Early firings, if any.
    pub early: Option<Early>,
    /// Whether a firing clears the window's accumulators.
    pub purge: bool,
}

impl Trigger {
    /// The count of an early count trigger.
    #[inline]
    pub fn count(&self) -> Option<u64> {
        match self.early {
            Some(Early::Count(n)) => Some(n),
            _ => None,
        }
    }

    /// The interval of an early processing-time trigger.
    #[inline]
    pub fn every(&self) -> Option<i64> {
        match self.early {
            Some(Early::Every(ms)) => Some(ms),
            _ => None,
        }
    }

    /// Whether a window that received `pending` records since its last firing emits now: early firings
    /// only with something new; the final one also without, unless purging (then the window is empty).
    #[inline]
    pub fn emits(&self, pending: u64, last: bool) -> bool {
        pending > 0 || (last && !self.purge)
    }
}

/// The first aligned firing time of an `every` trigger after `now` (Flink's
/// `ContinuousProcessingTimeTrigger`: the next multiple of the interval).
#[inline]
pub fn next_every(now: i64, interval: i64) -> i64 {
    (now - now.rem_euclid(interval)).saturating_add(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_is_aligned_and_emission_follows_the_mode() {
        assert_eq!(next_every(1_234, 1_000), 2_000);
        assert_eq!(next_every(2_000, 1_000), 3_000);
        let acc = Trigger { early: Some(Early::Count(3)), purge: false };
        assert_eq!(acc.count(), Some(3));
        assert_eq!(acc.every(), None);
        assert!(acc.emits(0, true), "the final firing of an accumulating window always emits");
        assert!(!acc.emits(0, false), "an early firing without news does not");
        let purge = Trigger { purge: true, ..acc };
        assert!(!purge.emits(0, true));
        assert!(purge.emits(1, false));
    }
}
