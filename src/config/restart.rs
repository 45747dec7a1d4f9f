//! The job-level `restart:` section: which [`RestartStrategy`] the coordinator applies to failures.
//!
//! ```yaml
//! restart: none                 # or a strategy name alone, with its defaults
//! restart: { strategy: fixed-delay, attempts: 3, delay: 1s }
//! restart: { strategy: failure-rate, max_failures: 3, interval: 1min, delay: 1s }
//! restart: { strategy: exponential-delay, initial: 100ms, max: 10s, multiplier: 2.0, jitter: 0.1, reset_after: 1min }
//! ```
//! Omitted settings take Flink's defaults; `fixed_delay` is accepted for `fixed-delay` (and so on), as the
//! rest of the job file is snake_case.
use eddy_actors::restart::RestartStrategy;
use eddy_api::config::{from_config, ConfigDuration, ConfigKind};
use eddy_api::{ConfigValue, Diagnostic, Diagnostics};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use std::time::Duration;

/// The strategy names, as written in the file.
const STRATEGIES: [&str; 4] = ["none", "fixed-delay", "failure-rate", "exponential-delay"];

// One struct per strategy, so that a key of another strategy (`attempts` under failure-rate) is an error.
// Each names `strategy` only so that `deny_unknown_fields` lets it through; it has been read already.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoneRaw {
    #[allow(dead_code)]
    strategy: IgnoredAny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedDelayRaw {
    #[allow(dead_code)]
    strategy: IgnoredAny,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    delay: Option<ConfigDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailureRateRaw {
    #[allow(dead_code)]
    strategy: IgnoredAny,
    #[serde(default)]
    max_failures: Option<u32>,
    #[serde(default)]
    interval: Option<ConfigDuration>,
    #[serde(default)]
    delay: Option<ConfigDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExponentialRaw {
    #[allow(dead_code)]
    strategy: IgnoredAny,
    #[serde(default)]
    initial: Option<ConfigDuration>,
    #[serde(default)]
    max: Option<ConfigDuration>,
    #[serde(default)]
    multiplier: Option<f64>,
    #[serde(default)]
    jitter: Option<f64>,
    #[serde(default)]
    reset_after: Option<ConfigDuration>,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// Reads `restart:`: a strategy name, or a map with `strategy` and its settings.
pub fn read_restart(value: &ConfigValue) -> Result<RestartStrategy, Diagnostics> {
    let (name, name_span) = match &value.kind {
        ConfigKind::Str(name) => (name.as_str(), value.span),
        ConfigKind::Map(_) => match value.get("strategy") {
            Some(v) => match v.as_str() {
                Some(name) => (name, v.span),
                None => {
                    return Err(Diagnostic::at(
                        v.span,
                        format!("`restart.strategy`: expected a strategy name, got {}", v.kind_name()),
                    )
                    .with_hint(format!("one of {}", STRATEGIES.join(", ")))
                    .into())
                }
            },
            None => {
                return Err(Diagnostic::at(value.span, "`restart` needs a `strategy`")
                    .with_hint(format!("one of {}", STRATEGIES.join(", ")))
                    .into())
            }
        },
        _ => {
            return Err(Diagnostic::at(
                value.span,
                format!("`restart`: expected a strategy name or a map with `strategy`, got {}", value.kind_name()),
            )
            .with_hint("e.g. `restart: { strategy: fixed-delay, attempts: 3, delay: 1s }`")
            .into())
        }
    };
    let is_map = matches!(value.kind, ConfigKind::Map(_));
    let strategy = match name.replace('_', "-").as_str() {
        "none" => {
            if is_map {
                settings::<NoneRaw>(value)?;
            }
            RestartStrategy::None
        }
        "fixed-delay" => {
            let raw = if is_map { Some(settings::<FixedDelayRaw>(value)?) } else { None };
            let raw = raw.as_ref();
            RestartStrategy::FixedDelay {
                attempts: raw.and_then(|r| r.attempts).unwrap_or(3),
                delay: raw.and_then(|r| r.delay).map_or(SECOND, |d| d.0),
            }
        }
        "failure-rate" => {
            let raw = if is_map { Some(settings::<FailureRateRaw>(value)?) } else { None };
            let raw = raw.as_ref();
            let interval = raw.and_then(|r| r.interval).map_or(MINUTE, |d| d.0);
            if interval.is_zero() {
                return Err(Diagnostic::at(at(value, "interval"), "`restart.interval` must be more than 0")
                    .with_hint("e.g. `interval: 1min`")
                    .into());
            }
            RestartStrategy::FailureRate {
                max_failures: raw.and_then(|r| r.max_failures).unwrap_or(3),
                interval,
                delay: raw.and_then(|r| r.delay).map_or(SECOND, |d| d.0),
            }
        }
        "exponential-delay" => {
            let raw = if is_map { Some(settings::<ExponentialRaw>(value)?) } else { None };
            let raw = raw.as_ref();
            let initial = raw.and_then(|r| r.initial).map_or(SECOND, |d| d.0);
            let max = raw.and_then(|r| r.max).map_or(5 * MINUTE, |d| d.0);
            let multiplier = raw.and_then(|r| r.multiplier).unwrap_or(2.0);
            let jitter = raw.and_then(|r| r.jitter).unwrap_or(0.1);
            let mut diags = Diagnostics::new();
            // `!(x >= 1.0)` also catches NaN.
            if !(multiplier >= 1.0 && multiplier.is_finite()) {
                diags.push(
                    Diagnostic::at(
                        at(value, "multiplier"),
                        format!("`restart.multiplier` must be at least 1, got {multiplier}"),
                    )
                    .with_hint("e.g. `multiplier: 2.0` doubles the delay after each failure"),
                );
            }
            if !(0.0..=1.0).contains(&jitter) {
                diags.push(
                    Diagnostic::at(
                        at(value, "jitter"),
                        format!("`restart.jitter` must be between 0 and 1, got {jitter}"),
                    )
                    .with_hint("a fraction of the delay, e.g. `jitter: 0.1` for ±10%"),
                );
            }
            if initial > max {
                diags.push(Diagnostic::at(
                    at(value, "initial"),
                    format!("`restart.initial` ({initial:?}) is longer than `restart.max` ({max:?})"),
                ));
            }
            diags.into_result(RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                jitter,
                reset_after: raw.and_then(|r| r.reset_after).map_or(60 * MINUTE, |d| d.0),
            })?
        }
        _ => {
            return Err(Diagnostic::at(
                name_span,
                format!("`restart`: unknown strategy `{name}` (one of {})", STRATEGIES.join(", ")),
            )
            .did_you_mean(name, STRATEGIES)
            .into())
        }
    };
    Ok(strategy)
}

/// A strategy's settings, with errors prefixed by the section's name.
fn settings<T: DeserializeOwned>(value: &ConfigValue) -> Result<T, Diagnostics> {
    from_config(value).map_err(|mut d| {
        d.message = format!("`restart`: {}", d.message);
        Diagnostics::from(d)
    })
}

/// Where a setting is written, or the section when it was omitted.
fn at(value: &ConfigValue, key: &str) -> eddy_api::Span {
    value.get(key).map_or(value.span, |v| v.span)
}

/// The strategy of a job without `restart:`: as in Flink, a job that checkpoints restarts with an
/// exponential delay (the defaults of `restart: exponential-delay`); one that does not, never.
pub fn default_restart(checkpoints: bool) -> RestartStrategy {
    if !checkpoints {
        return RestartStrategy::None;
    }
    RestartStrategy::ExponentialDelay {
        initial: SECOND,
        max: 5 * MINUTE,
        multiplier: 2.0,
        jitter: 0.1,
        reset_after: 60 * MINUTE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;

    fn read(text: &str) -> Result<RestartStrategy, Diagnostics> {
        let v = parse_yaml(text).unwrap();
        read_restart(v.get("restart").unwrap())
    }

    fn error(text: &str) -> Diagnostic {
        let e = read(text).unwrap_err();
        assert_eq!(e.0.len(), 1, "{:?}", e.0);
        e.0.into_iter().next().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reads_each_strategy() {
        assert_eq!(read("restart: none\n").unwrap(), RestartStrategy::None);
        assert_eq!(read("restart: { strategy: none }\n").unwrap(), RestartStrategy::None);
        assert_eq!(
            read("restart: { strategy: fixed-delay, attempts: 5, delay: 250ms }\n").unwrap(),
            RestartStrategy::FixedDelay { attempts: 5, delay: ms(250) }
        );
        assert_eq!(
            read("restart:\n  strategy: failure-rate\n  max_failures: 2\n  interval: 30s\n  delay: 2s\n").unwrap(),
            RestartStrategy::FailureRate { max_failures: 2, interval: ms(30_000), delay: ms(2000) }
        );
        assert_eq!(
            read(
                "restart: { strategy: exponential-delay, initial: 100ms, max: 10s, multiplier: 2.0, jitter: 0.1, \
                 reset_after: 1min }\n"
            )
            .unwrap(),
            RestartStrategy::ExponentialDelay {
                initial: ms(100),
                max: ms(10_000),
                multiplier: 2.0,
                jitter: 0.1,
                reset_after: ms(60_000)
            }
        );
        // Integers are fine for the floats, and the snake_case spelling is accepted.
        assert_eq!(
            read("restart: { strategy: exponential_delay, multiplier: 3, jitter: 0 }\n").unwrap(),
            RestartStrategy::ExponentialDelay {
                initial: ms(1000),
                max: ms(300_000),
                multiplier: 3.0,
                jitter: 0.0,
                reset_after: ms(3_600_000)
            }
        );
    }

    #[test]
    fn omitted_settings_take_the_defaults() {
        let fixed = RestartStrategy::FixedDelay { attempts: 3, delay: ms(1000) };
        assert_eq!(read("restart: fixed-delay\n").unwrap(), fixed);
        assert_eq!(read("restart: { strategy: fixed-delay }\n").unwrap(), fixed);
        let rate = RestartStrategy::FailureRate { max_failures: 3, interval: ms(60_000), delay: ms(1000) };
        assert_eq!(read("restart: failure-rate\n").unwrap(), rate);
        assert_eq!(read("restart: { strategy: failure-rate, delay: 1s }\n").unwrap(), rate);
        assert_eq!(
            read("restart: exponential-delay\n").unwrap(),
            RestartStrategy::ExponentialDelay {
                initial: ms(1000),
                max: ms(300_000),
                multiplier: 2.0,
                jitter: 0.1,
                reset_after: ms(3_600_000)
            }
        );
    }

    #[test]
    fn unknown_strategy_is_located_with_a_suggestion() {
        let e = error("restart: fixed-dealy\n");
        assert!(e.message.contains("unknown strategy `fixed-dealy`"), "{e:?}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `fixed-delay`?"));
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((1, 10)));
        let e = error("job: x\nrestart:\n  attempts: 3\n  strategy: exponental-delay\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `exponential-delay`?"));
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((4, 13)));
        let e = error("restart: { strategy: retry-forever }\n");
        assert_eq!(e.hint, None);
        assert!(e.message.contains("none, fixed-delay, failure-rate, exponential-delay"), "{e:?}");
    }

    #[test]
    fn malformed_sections_are_located() {
        let e = error("restart:\n  attempts: 3\n");
        assert!(e.message.contains("needs a `strategy`"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(2));
        let e = error("restart:\n  strategy: [fixed-delay]\n");
        assert!(e.message.contains("expected a strategy name, got a list"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(2));
        let e = error("restart: [none]\n");
        assert!(e.message.contains("expected a strategy name or a map"), "{e:?}");
    }

    #[test]
    fn unknown_and_foreign_keys_are_located() {
        let e = error("restart:\n  strategy: fixed-delay\n  attemps: 3\n");
        assert!(e.message.contains("unknown key `attemps`"), "{e:?}");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("attempts")), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));
        // A setting of another strategy is an error, not silently ignored.
        let e = error("restart:\n  strategy: failure-rate\n  attempts: 3\n");
        assert!(e.message.contains("unknown key `attempts`"), "{e:?}");
        let e = error("restart:\n  strategy: none\n  delay: 1s\n");
        assert!(e.message.contains("unknown key `delay`"), "{e:?}");
    }

    #[test]
    fn invalid_values_are_located() {
        let e = error("restart:\n  strategy: fixed-delay\n  attempts: -1\n");
        assert!(e.message.starts_with("`restart`: `attempts`"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));
        let e = error("restart:\n  strategy: fixed-delay\n  delay: soon\n");
        assert!(e.message.contains("invalid duration `soon`"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));
        let e = error("restart:\n  strategy: failure-rate\n  interval: 0\n");
        assert!(e.message.contains("`restart.interval` must be more than 0"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));
        let e = error("restart:\n  strategy: exponential-delay\n  multiplier: 0.5\n");
        assert!(e.message.contains("`restart.multiplier` must be at least 1, got 0.5"), "{e:?}");
        assert_eq!(e.span.map(|s| (s.line, s.col)), Some((3, 15)));
        let e = error("restart:\n  strategy: exponential-delay\n  initial: 1min\n  max: 1s\n");
        assert!(e.message.contains("longer than `restart.max`"), "{e:?}");
        assert_eq!(e.span.map(|s| s.line), Some(3));
        // Every problem with the values is reported at once.
        let e = read("restart:\n  strategy: exponential-delay\n  multiplier: 0.9\n  jitter: 1.5\n").unwrap_err();
        assert_eq!(e.0.len(), 2, "{:?}", e.0);
        assert!(e.0[1].message.contains("`restart.jitter` must be between 0 and 1, got 1.5"), "{:?}", e.0);
        assert_eq!(e.0[1].span.map(|s| s.line), Some(4));
        // The bounds themselves are fine.
        assert!(read("restart: { strategy: exponential-delay, multiplier: 1, jitter: 1 }\n").is_ok());
        assert!(read("restart: { strategy: exponential-delay, jitter: -0.01 }\n").is_err());
    }
}
