//! The job-level `failover:` section: what a task failure restarts, and how long a silent worker thread
//! is given before its tasks are declared failed.
//!
//! ```yaml
//! failover: region              # or: full
//! failover: { mode: region, heartbeat_timeout: 30s }
//! ```
//! `region` (the default, as in Flink) restarts the pipelined region of the failed task: the connected
//! component of the physical graph it belongs to. `full` restarts every task.
use eddy_actors::Failover;
use eddy_api::config::{from_config, ConfigDuration};
use eddy_api::{ConfigValue, Diagnostic, Diagnostics};
use serde::Deserialize;
use std::time::Duration;

/// The `failover:` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverSpec {
    /// What to restart.
    pub mode: Failover,
    /// A worker thread silent this long has its tasks failed; zero turns heartbeats off.
    pub heartbeat_timeout: Duration,
}

impl Default for FailoverSpec {
    fn default() -> Self {
        FailoverSpec { mode: Failover::Region, heartbeat_timeout: Duration::from_secs(30) }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ModeRaw {
    Full,
    Region,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverRaw {
    #[serde(default)]
    mode: Option<ModeRaw>,
    #[serde(default)]
    heartbeat_timeout: Option<ConfigDuration>,
}

fn mode(raw: ModeRaw) -> Failover {
    match raw {
        ModeRaw::Full => Failover::Full,
        ModeRaw::Region => Failover::Region,
    }
}

/// Reads `failover:`: a mode name, or a map with `mode` and `heartbeat_timeout`.
pub fn read_failover(value: &ConfigValue) -> Result<FailoverSpec, Diagnostics> {
    let prefixed = |mut d: Diagnostic| {
        d.message = format!("`failover`: {}", d.message);
        Diagnostics::from(d)
    };
    let defaults = FailoverSpec::default();
    if value.as_str().is_some() {
        let raw: ModeRaw = from_config(value).map_err(prefixed)?;
        return Ok(FailoverSpec { mode: mode(raw), ..defaults });
    }
    let raw: FailoverRaw = from_config(value).map_err(prefixed)?;
    Ok(FailoverSpec {
        mode: raw.mode.map_or(defaults.mode, mode),
        heartbeat_timeout: raw.heartbeat_timeout.map_or(defaults.heartbeat_timeout, |d| d.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;

    fn read(text: &str) -> Result<FailoverSpec, Diagnostics> {
        let v = parse_yaml(text).unwrap();
        read_failover(v.get("failover").unwrap())
    }

    #[test]
    fn a_mode_name_or_a_map() {
        assert_eq!(read("failover: full\n").unwrap().mode, Failover::Full);
        let f = read("failover: { mode: region, heartbeat_timeout: 500ms }\n").unwrap();
        assert_eq!(f, FailoverSpec { mode: Failover::Region, heartbeat_timeout: Duration::from_millis(500) });
        assert_eq!(read("failover: {}\n").unwrap(), FailoverSpec::default());
    }

    #[test]
    fn bad_values_are_located_and_named() {
        let e = format!("{:?}", read("failover: partial\n").unwrap_err());
        assert!(e.contains("`failover`") && e.contains("partial"), "{e}");
        let e = format!("{:?}", read("failover: { mode: full, heartbeat: 1s }\n").unwrap_err());
        assert!(e.contains("heartbeat"), "{e}");
    }
}
