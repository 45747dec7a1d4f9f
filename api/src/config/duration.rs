//! Durations in config files: `5ms`, `2s`, `1m 30s`, `0`.
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration written the human way (`200ms`, `2s`, `1min`, `1h`; a bare `0` is zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t == "0" {
            return Ok(ConfigDuration(Duration::ZERO));
        }
        const EXPECTED: &str = "expected a number and a unit (ns, us, ms, s, min, h, d), e.g. `5ms`, `2s`, `1min`";
        humantime::parse_duration(t).map(ConfigDuration).map_err(|e| match e {
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("invalid duration `{text}`: unknown unit `{unit}` ({EXPECTED})")
            }
            humantime::DurationError::NumberOverflow => format!("duration `{text}` is too large"),
            _ => format!("invalid duration `{text}` ({EXPECTED})"),
        })
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(ConfigDuration(Duration::ZERO)),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "invalid duration `{n}`: a duration needs a unit (e.g. `{n}ms` or `{n}s`)"
            ))),
            Raw::Text(s) => ConfigDuration::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_garbage() {
        assert_eq!(ConfigDuration::parse("5ms").unwrap().0, Duration::from_millis(5));
        assert_eq!(ConfigDuration::parse("2s").unwrap().0, Duration::from_secs(2));
        assert_eq!(ConfigDuration::parse("0").unwrap().0, Duration::ZERO);
        assert!(ConfigDuration::parse("5 parsecs").is_err());
        assert!(ConfigDuration::parse("fast").is_err());
    }
}
