//! Restart strategies: whether and when to restart a job after a failure, as pure decision logic.
//!
//! A [`RestartTracker`] is told about each failure with the time it happened (a monotonic [`Duration`]
//! since the job started, so tests drive it with a fake clock) and answers with a [`Decision`]. It never
//! sleeps or spawns: the coordinator waits `after` and restarts. The strategies follow Flink's:
//!
//! - `None`: every failure fails the job.
//! - `FixedDelay`: up to `attempts` restarts in the job's lifetime, each after `delay`.
//! - `FailureRate`: restarts after `delay` as long as no more than `max_failures` failures fall within the
//!   sliding window `interval` (a failure exactly `interval` ago has left the window).
//! - `ExponentialDelay`: never gives up; the delay starts at `initial`, grows by `multiplier` with each
//!   failure up to `max`, carries a seeded ±`jitter` fraction so that restarts do not synchronise, and goes
//!   back to `initial` once the job has run longer than `reset_after` since its last failure.
//!
//! Giving up is final: once a tracker has given up, it gives the same answer to every later failure.
use std::collections::VecDeque;
use std::time::Duration;

/// How a job reacts to failures (`restart:` in the job file).
#[derive(Clone, Debug, PartialEq)]
pub enum RestartStrategy {
    /// Never restart.
    None,
    /// At most `attempts` restarts, each after `delay`.
    FixedDelay { attempts: u32, delay: Duration },
    /// Restart after `delay` while at most `max_failures` failures fall within `interval`.
    FailureRate { max_failures: u32, interval: Duration, delay: Duration },
    /// Restart forever, with a growing, jittered delay that resets after a healthy period.
    ExponentialDelay {
        initial: Duration,
        max: Duration,
        /// At least 1.
        multiplier: f64,
        /// A fraction of the delay, in `0..=1`.
        jitter: f64,
        reset_after: Duration,
    },
}

impl RestartStrategy {
    /// The strategy's name as written in the job file.
    pub fn name(&self) -> &'static str {
        match self {
            RestartStrategy::None => "none",
            RestartStrategy::FixedDelay { .. } => "fixed-delay",
            RestartStrategy::FailureRate { .. } => "failure-rate",
            RestartStrategy::ExponentialDelay { .. } => "exponential-delay",
        }
    }
}

/// What to do about a failure.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Restart the job after waiting `after`; `attempt` counts restarts since the job started, from 1.
    Restart { after: Duration, attempt: u32 },
    /// Fail the job; `reason` is a sentence for the user.
    GiveUp { reason: String },
}

/// A strategy and the failure history it decides on.
#[derive(Clone, Debug)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    /// Restarts granted so far.
    attempts: u32,
    /// Set once the tracker has given up.
    gave_up: Option<String>,
    /// Failure-rate: the times of the failures still inside the window, oldest first.
    window: VecDeque<Duration>,
    /// Exponential: the time of the last failure.
    last_failure: Option<Duration>,
    /// Exponential: the delay before jitter, `None` until the first failure or after a reset.
    backoff: Option<Duration>,
    rng: SplitMix64,
}

impl RestartTracker {
    /// A tracker with no failures yet; `seed` makes the exponential jitter reproducible.
    pub fn new(strategy: RestartStrategy, seed: u64) -> Self {
        RestartTracker {
            strategy,
            attempts: 0,
            gave_up: None,
            window: VecDeque::new(),
            last_failure: None,
            backoff: None,
            rng: SplitMix64(seed),
        }
    }

    /// The strategy this tracker applies.
    pub fn strategy(&self) -> &RestartStrategy {
        &self.strategy
    }

    /// Restarts granted so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decides about a failure at `now` (time since the job started).
    pub fn on_failure(&mut self, now: Duration) -> Decision {
        if let Some(reason) = &self.gave_up {
            return Decision::GiveUp { reason: reason.clone() };
        }
        let verdict = match self.strategy.clone() {
            RestartStrategy::None => Err("restart strategy is `none`: a failure fails the job".to_string()),
            RestartStrategy::FixedDelay { attempts, delay } => {
                if self.attempts < attempts {
                    Ok(delay)
                } else {
                    Err(format!("fixed-delay: {attempts} restart attempt{} used up", plural(attempts)))
                }
            }
            RestartStrategy::FailureRate { max_failures, interval, delay } => {
                self.window.retain(|&t| now.saturating_sub(t) < interval);
                self.window.push_back(now);
                let n = self.window.len();
                if n as u64 > u64::from(max_failures) {
                    Err(format!("failure-rate: {n} failures within {interval:?}, more than the {max_failures} allowed"))
                } else {
                    Ok(delay)
                }
            }
            RestartStrategy::ExponentialDelay { initial, max, multiplier, jitter, .. } => {
                self.reset_if_healthy(now);
                let base = match self.backoff {
                    None => initial.min(max),
                    Some(prev) => scale(prev, multiplier.max(1.0), max),
                };
                self.backoff = Some(base);
                self.last_failure = Some(now);
                Ok(self.jittered(base, jitter, max))
            }
        };
        match verdict {
            Ok(after) => {
                self.attempts += 1;
                Decision::Restart { after, attempt: self.attempts }
            }
            Err(reason) => {
                self.gave_up = Some(reason.clone());
                Decision::GiveUp { reason }
            }
        }
    }

    /// Tells the tracker the job is running fine at `now`: an exponential delay whose last failure is more
    /// than `reset_after` ago goes back to `initial` (the next failure does this check too).
    pub fn on_healthy(&mut self, now: Duration) {
        self.reset_if_healthy(now);
    }

    /// The delay the next exponential restart grows from (before jitter); `None` when it starts at `initial`.
    pub fn current_backoff(&self) -> Option<Duration> {
        self.backoff
    }

    fn reset_if_healthy(&mut self, now: Duration) {
        if let RestartStrategy::ExponentialDelay { reset_after, .. } = self.strategy {
            if self.last_failure.is_some_and(|last| now.saturating_sub(last) > reset_after) {
                self.backoff = None;
                self.last_failure = None;
            }
        }
    }

    /// `base` moved by a uniform fraction in `[-jitter, +jitter]`, never above `max`.
    fn jittered(&mut self, base: Duration, jitter: f64, max: Duration) -> Duration {
        let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        if jitter == 0.0 {
            return base;
        }
        let offset = self.rng.next_signed_unit() * jitter;
        scale(base, 1.0 + offset, max)
    }
}

/// `d × multiplier` (a non-negative factor), capped at `max` (also when the product would overflow).
fn scale(d: Duration, multiplier: f64, max: Duration) -> Duration {
    let secs = d.as_secs_f64() * multiplier;
    if secs.is_finite() && secs < max.as_secs_f64() {
        Duration::from_secs_f64(secs)
    } else {
        max
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// splitmix64: a tiny, good-enough PRNG so jitter is reproducible from a seed without a dependency.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1]`.
    fn next_signed_unit(&mut self) -> f64 {
        // 53 random bits give every representable step of a double in [0, 1].
        let unit = (self.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64;
        unit * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn restart(after: Duration, attempt: u32) -> Decision {
        Decision::Restart { after, attempt }
    }

    fn reason(d: Decision) -> String {
        match d {
            Decision::GiveUp { reason } => reason,
            other => panic!("expected to give up, got {other:?}"),
        }
    }

    fn exponential(jitter: f64) -> RestartStrategy {
        RestartStrategy::ExponentialDelay {
            initial: ms(100),
            max: ms(1000),
            multiplier: 2.0,
            jitter,
            reset_after: secs(60),
        }
    }

    #[test]
    fn none_always_gives_up() {
        let mut t = RestartTracker::new(RestartStrategy::None, 1);
        assert!(reason(t.on_failure(secs(0))).contains("`none`"));
        assert!(matches!(t.on_failure(secs(100)), Decision::GiveUp { .. }));
        assert_eq!(t.attempts(), 0);
    }

    #[test]
    fn fixed_delay_grants_exactly_its_attempts() {
        let mut t = RestartTracker::new(RestartStrategy::FixedDelay { attempts: 3, delay: secs(1) }, 1);
        assert_eq!(t.on_failure(secs(0)), restart(secs(1), 1));
        assert_eq!(t.on_failure(secs(10)), restart(secs(1), 2));
        // However long the job ran in between, attempts are never given back.
        assert_eq!(t.on_failure(secs(100_000)), restart(secs(1), 3));
        assert_eq!(reason(t.on_failure(secs(100_001))), "fixed-delay: 3 restart attempts used up");
        assert_eq!(t.attempts(), 3);
        // Giving up is final.
        assert_eq!(reason(t.on_failure(secs(200_000))), "fixed-delay: 3 restart attempts used up");
    }

    #[test]
    fn fixed_delay_boundaries() {
        let mut t = RestartTracker::new(RestartStrategy::FixedDelay { attempts: 0, delay: secs(1) }, 1);
        assert_eq!(reason(t.on_failure(secs(0))), "fixed-delay: 0 restart attempts used up");
        let mut t = RestartTracker::new(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::ZERO }, 1);
        assert_eq!(t.on_failure(secs(0)), restart(Duration::ZERO, 1));
        assert_eq!(reason(t.on_failure(secs(0))), "fixed-delay: 1 restart attempt used up");
    }

    #[test]
    fn failure_rate_gives_up_on_more_than_max_failures_in_the_window() {
        let s = RestartStrategy::FailureRate { max_failures: 3, interval: secs(60), delay: secs(1) };
        let mut t = RestartTracker::new(s, 1);
        assert_eq!(t.on_failure(secs(0)), restart(secs(1), 1));
        assert_eq!(t.on_failure(secs(10)), restart(secs(1), 2));
        assert_eq!(t.on_failure(secs(20)), restart(secs(1), 3));
        // The fourth failure within a minute is one too many.
        assert_eq!(reason(t.on_failure(secs(59))), "failure-rate: 4 failures within 60s, more than the 3 allowed");
        assert!(matches!(t.on_failure(secs(1000)), Decision::GiveUp { .. }), "giving up is final");
    }

    #[test]
    fn failure_rate_window_slides() {
        let s = RestartStrategy::FailureRate { max_failures: 2, interval: secs(60), delay: ms(500) };
        let mut t = RestartTracker::new(s, 1);
        assert_eq!(t.on_failure(secs(0)), restart(ms(500), 1));
        assert_eq!(t.on_failure(secs(30)), restart(ms(500), 2));
        // Exactly one interval after the first failure, it has left the window: 2 failures in it.
        assert_eq!(t.on_failure(secs(60)), restart(ms(500), 3));
        // Far apart, failures never add up.
        assert_eq!(t.on_failure(secs(200)), restart(ms(500), 4));
        assert_eq!(t.on_failure(secs(300)), restart(ms(500), 5));
        // 300s, 300.5s and 359.999s: three within a minute.
        assert_eq!(t.on_failure(ms(300_500)), restart(ms(500), 6));
        assert!(reason(t.on_failure(ms(359_999))).contains("3 failures within 60s"));
    }

    #[test]
    fn failure_rate_window_edge_is_exclusive() {
        let s = RestartStrategy::FailureRate { max_failures: 1, interval: secs(10), delay: secs(1) };
        let mut t = RestartTracker::new(s.clone(), 1);
        assert_eq!(t.on_failure(secs(5)), restart(secs(1), 1));
        assert_eq!(t.on_failure(secs(15)), restart(secs(1), 2), "10s later is outside the window");
        let mut t = RestartTracker::new(s, 1);
        assert_eq!(t.on_failure(secs(5)), restart(secs(1), 1));
        assert!(matches!(t.on_failure(secs(15) - Duration::from_nanos(1)), Decision::GiveUp { .. }));
    }

    #[test]
    fn failure_rate_zero_failures_allowed_gives_up_at_once() {
        let s = RestartStrategy::FailureRate { max_failures: 0, interval: secs(10), delay: secs(1) };
        let mut t = RestartTracker::new(s, 1);
        assert!(reason(t.on_failure(secs(0))).contains("1 failures within 10s, more than the 0 allowed"));
    }

    #[test]
    fn exponential_grows_caps_and_never_gives_up() {
        let mut t = RestartTracker::new(exponential(0.0), 1);
        let delays: Vec<_> = (0..8u64)
            .map(|i| match t.on_failure(secs(i)) {
                Decision::Restart { after, .. } => after,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000, 1000].map(ms));
        assert_eq!(t.attempts(), 8);
    }

    #[test]
    fn exponential_resets_after_a_healthy_period() {
        let mut t = RestartTracker::new(exponential(0.0), 1);
        assert_eq!(t.on_failure(secs(0)), restart(ms(100), 1));
        assert_eq!(t.on_failure(secs(1)), restart(ms(200), 2));
        // Exactly `reset_after` since the last failure is not more than it: keep growing.
        assert_eq!(t.on_failure(secs(61)), restart(ms(400), 3));
        // Just over: back to the initial delay; attempts keep counting.
        assert_eq!(t.on_failure(secs(121) + Duration::from_nanos(1)), restart(ms(100), 4));
        assert_eq!(t.on_failure(secs(122)), restart(ms(200), 5));
    }

    #[test]
    fn exponential_on_healthy_resets_eagerly() {
        let mut t = RestartTracker::new(exponential(0.0), 1);
        t.on_failure(secs(0));
        t.on_failure(secs(1));
        assert_eq!(t.current_backoff(), Some(ms(200)));
        t.on_healthy(secs(61));
        assert_eq!(t.current_backoff(), Some(ms(200)), "not healthy for more than reset_after yet");
        t.on_healthy(secs(62));
        assert_eq!(t.current_backoff(), None);
        assert_eq!(t.on_failure(secs(63)), restart(ms(100), 3));
    }

    #[test]
    fn exponential_boundaries() {
        // initial above max starts at max; a multiplier of 1 keeps the delay flat.
        let s = RestartStrategy::ExponentialDelay {
            initial: secs(10),
            max: secs(5),
            multiplier: 1.0,
            jitter: 0.0,
            reset_after: secs(1),
        };
        let mut t = RestartTracker::new(s, 1);
        assert_eq!(t.on_failure(ms(0)), restart(secs(5), 1));
        assert_eq!(t.on_failure(ms(1)), restart(secs(5), 2));
        // An absurd multiplier saturates at max instead of overflowing.
        let s = RestartStrategy::ExponentialDelay {
            initial: secs(1),
            max: Duration::MAX,
            multiplier: f64::MAX,
            jitter: 0.0,
            reset_after: secs(1),
        };
        let mut t = RestartTracker::new(s, 1);
        assert_eq!(t.on_failure(ms(0)), restart(secs(1), 1));
        assert_eq!(t.on_failure(ms(1)), restart(Duration::MAX, 2));
        // A clock that goes backwards does not panic.
        assert_eq!(t.on_failure(ms(0)), restart(Duration::MAX, 3));
    }

    #[test]
    fn exponential_jitter_is_bounded_seeded_and_capped() {
        let run = |seed| {
            let mut t = RestartTracker::new(exponential(0.5), seed);
            (0..200u64)
                .map(|i| {
                    t.on_healthy(secs(i * 100)); // every failure starts from `initial` again
                    match t.on_failure(secs(i * 100)) {
                        Decision::Restart { after, .. } => after,
                        other => panic!("{other:?}"),
                    }
                })
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "the same seed gives the same delays");
        assert_ne!(a, run(8), "another seed gives other delays");
        assert!(a.iter().all(|d| (ms(50)..=ms(150)).contains(d)), "{a:?}");
        // Both sides of the base delay are used.
        assert!(a.iter().any(|d| *d < ms(90)) && a.iter().any(|d| *d > ms(110)), "{a:?}");
        // At the cap, jitter may lower the delay but never raise it above max.
        let mut t = RestartTracker::new(exponential(1.0), 3);
        for i in 0..100u64 {
            if let Decision::Restart { after, .. } = t.on_failure(secs(i)) {
                assert!(after <= ms(1000), "{after:?}");
            }
        }
    }

    #[test]
    fn strategy_names() {
        assert_eq!(RestartStrategy::None.name(), "none");
        assert_eq!(exponential(0.1).name(), "exponential-delay");
    }
}
