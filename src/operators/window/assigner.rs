//! Window assignment: which windows a timestamp belongs to, as in Flink's window assigners.
//!
//! Time windows are aligned to the epoch (offset 0): a tumbling window of size `s` holding `t` starts at
//! `t - t mod s`; a record belongs to the `size / slide` sliding windows whose start is a multiple of
//! `slide` in `(t - size, t]`. A window `[start, end)` is identified in keyed state by the namespace
//! `Namespace::window(start, end)`; its last timestamp (Flink's `maxTimestamp`) is `end - 1`.
use eddy_api::state::Namespace;

/// The windows a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assigner {
    /// Fixed, non-overlapping windows of `size` ms.
    Tumbling {
        /// Window length in ms.
        size: i64,
    },
    /// Windows of `size` ms starting every `slide` ms (`slide < size`).
    Sliding {
        /// Window length in ms.
        size: i64,
        /// Distance between window starts in ms.
        slide: i64,
    },
    /// Per key, activity separated by gaps of at least `gap` ms; windows merge.
    Session {
        /// Inactivity gap in ms.
        gap: i64,
    },
    /// Per key, the last `size` records, every `slide` records (`slide == size`: tumbling).
    Count {
        /// Records per window.
        size: u64,
        /// Records between firings.
        slide: u64,
    },
    /// One window per key over all time, fired at the end of the input and by the trigger.
    Global,
}

/// The tumbling window of size `size` holding `ts`.
#[inline]
pub fn tumbling(ts: i64, size: i64) -> Namespace {
    let start = ts - ts.rem_euclid(size);
    Namespace::window(start, start.saturating_add(size))
}

/// The start of the latest sliding window holding `ts` (the others start `slide`, `2 * slide`, ... ms
/// earlier, as long as they still hold `ts`).
#[inline]
pub fn last_sliding_start(ts: i64, slide: i64) -> i64 {
    ts - ts.rem_euclid(slide)
}

/// Calls `f` for every sliding window holding `ts`, latest first.
#[inline]
pub fn sliding(ts: i64, size: i64, slide: i64, mut f: impl FnMut(Namespace)) {
    let mut start = last_sliding_start(ts, slide);
    let first = ts.saturating_sub(size);
    while start > first {
        f(Namespace::window(start, start.saturating_add(size)));
        start -= slide;
    }
}

/// The last timestamp of a window (`end - 1`), when its firing timer is due.
#[inline]
pub fn max_timestamp(ns: Namespace) -> i64 {
    ns.end.saturating_sub(1)
}

/// Whether two session windows `[a0, a1)` and `[b0, b1)` merge: they overlap or touch (Flink's
/// `TimeWindow.intersects`).
#[inline]
pub fn sessions_merge(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Greatest common divisor (pane size of sliding count windows).
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_are_aligned_to_the_epoch_also_before_it() {
        assert_eq!(tumbling(0, 10), Namespace::window(0, 10));
        assert_eq!(tumbling(9, 10), Namespace::window(0, 10));
        assert_eq!(tumbling(10, 10), Namespace::window(10, 20));
        assert_eq!(tumbling(-1, 10), Namespace::window(-10, 0));
        assert_eq!(tumbling(i64::MAX, 10).end, i64::MAX);
    }

    #[test]
    fn sliding_windows_hold_the_timestamp() {
        let mut seen = Vec::new();
        sliding(12, 10, 4, |ns| seen.push((ns.start, ns.end)));
        assert_eq!(seen, [(12, 22), (8, 18), (4, 14)]);
        seen.clear();
        sliding(10, 10, 5, |ns| seen.push((ns.start, ns.end)));
        assert_eq!(seen, [(10, 20), (5, 15)], "the window ending at 10 does not hold 10");
        seen.clear();
        sliding(-3, 10, 5, |ns| seen.push((ns.start, ns.end)));
        assert_eq!(seen, [(-5, 5), (-10, 0)]);
        assert_eq!(max_timestamp(Namespace::window(0, 10)), 9);
    }

    #[test]
    fn sessions_merge_when_they_overlap_or_touch() {
        assert!(sessions_merge((0, 10), (10, 20)));
        assert!(sessions_merge((5, 15), (0, 10)));
        assert!(!sessions_merge((0, 10), (11, 21)));
        assert_eq!(gcd(100, 10), 10);
        assert_eq!(gcd(10, 4), 2);
        assert_eq!(gcd(7, 7), 7);
    }
}
