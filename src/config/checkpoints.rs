//! The job-level `checkpoints:` and `state:` sections, read with their locations.
//!
//! ```yaml
//! checkpoints:
//!   interval: 1s
//!   mode: exactly_once          # | at_least_once
//!   storage: file:///var/lib/eddy/checkpoints   # | s3://bucket/prefix | memory://name
//!   timeout: 60s
//!   retain: 3
//!   tolerable_failures: 3
//! state:
//!   backend: heap               # | redb
//!   dir: /var/lib/eddy/state
//! ```
//! `storage` is a URL, or a map with `url` and the store's options (`endpoint`, `region`, ...).
use eddy_api::config::{from_config, ConfigDuration};
use eddy_api::{ConfigValue, Diagnostic, Diagnostics, Span, Spanned};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `checkpoints.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    /// Aligned barriers.
    #[default]
    ExactlyOnce,
    /// No alignment.
    AtLeastOnce,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// How often to checkpoint.
    interval: ConfigDuration,
    #[serde(default)]
    mode: ModeSpec,
    /// Where: a URL string or `{ url, ...options }` (read separately).
    #[serde(default)]
    #[allow(dead_code)]
    storage: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    timeout: Option<ConfigDuration>,
    #[serde(default)]
    retain: Option<usize>,
    #[serde(default)]
    tolerable_failures: Option<usize>,
    #[serde(default)]
    max_concurrent: Option<usize>,
    #[serde(default)]
    min_pause: Option<ConfigDuration>,
}

/// The `checkpoints:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointsSpec {
    /// How often the coordinator triggers a checkpoint.
    pub interval: Duration,
    /// Barrier alignment.
    pub mode: ModeSpec,
    /// The storage URL (`None`: the default local directory).
    pub storage: Option<Spanned<String>>,
    /// Store options (`endpoint`, `region`, ...).
    pub storage_options: BTreeMap<String, String>,
    /// Where the storage is written in the file.
    pub storage_span: Span,
    /// Abort a checkpoint after this long (default 60s).
    pub timeout: Duration,
    /// Completed checkpoints kept (default 3).
    pub retain: usize,
    /// Failed checkpoints in a row tolerated (default 3).
    pub tolerable_failures: usize,
    /// Checkpoints in flight at once (default 1).
    pub max_concurrent: usize,
    /// Least pause between checkpoints (default 0).
    pub min_pause: Duration,
}

/// `state.backend`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendSpec {
    /// Hash maps in memory.
    #[default]
    Heap,
    /// On local disk, for state larger than memory.
    Redb,
}

/// The `state:` section.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// `heap` (default) or `redb`.
    #[serde(default)]
    pub backend: BackendSpec,
    /// Working directory of the redb backend (default: a directory under the system's temp dir).
    #[serde(default)]
    pub dir: Option<String>,
    /// redb: state entries kept in memory per subtask before they spill to disk (default 100000).
    #[serde(default)]
    pub cache_entries: Option<usize>,
}

/// Reads `checkpoints:`.
pub fn read_checkpoints(value: &ConfigValue) -> Result<CheckpointsSpec, Diagnostics> {
    let raw: Raw = from_config(value).map_err(|mut d| {
        d.message = format!("`checkpoints`: {}", d.message);
        Diagnostics::from(d)
    })?;
    let mut diags = Diagnostics::new();
    if raw.interval.0.is_zero() {
        let at = value.get("interval").map_or(value.span, |v| v.span);
        diags.push(Diagnostic::at(at, "`checkpoints.interval` must be more than 0").with_hint("e.g. `interval: 1s`"));
    }
    let (storage, storage_options, storage_span) = match value.get("storage") {
        None => (None, BTreeMap::new(), value.span),
        Some(v) => match read_storage(v) {
            Ok((url, opts)) => (Some(url), opts, v.span),
            Err(d) => {
                diags.push(d);
                (None, BTreeMap::new(), v.span)
            }
        },
    };
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(CheckpointsSpec {
        interval: raw.interval.0,
        mode: raw.mode,
        storage,
        storage_options,
        storage_span,
        timeout: raw.timeout.map_or(Duration::from_secs(60), |d| d.0),
        retain: raw.retain.unwrap_or(3).max(1),
        tolerable_failures: raw.tolerable_failures.unwrap_or(3),
        max_concurrent: raw.max_concurrent.unwrap_or(1).max(1),
        min_pause: raw.min_pause.map_or(Duration::ZERO, |d| d.0),
    })
}

/// `storage: URL` or `storage: { url: URL, option: value, ... }`.
fn read_storage(v: &ConfigValue) -> Result<(Spanned<String>, BTreeMap<String, String>), Diagnostic> {
    use eddy_api::config::ConfigKind;
    match &v.kind {
        ConfigKind::Str(url) => Ok((Spanned::new(v.span, url.clone()), BTreeMap::new())),
        ConfigKind::Map(entries) => {
            let mut url = None;
            let mut opts = BTreeMap::new();
            for (k, val) in entries {
                let text = match &val.kind {
                    ConfigKind::Str(s) => s.clone(),
                    ConfigKind::Int(i) => i.to_string(),
                    ConfigKind::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Diagnostic::at(
                            val.span,
                            format!("`checkpoints.storage.{}`: expected a string, got {}", k.value, val.kind_name()),
                        ))
                    }
                };
                if k.value == "url" {
                    url = Some(Spanned::new(val.span, text));
                } else {
                    opts.insert(k.value.clone(), text);
                }
            }
            let url = url.ok_or_else(|| {
                Diagnostic::at(
                    v.span,
                    "`checkpoints.storage` needs a `url` (file:///path, s3://bucket/prefix or memory://name)",
                )
            })?;
            Ok((url, opts))
        }
        _ => Err(Diagnostic::at(
            v.span,
            format!("`checkpoints.storage`: expected a URL or a map with `url`, got {}", v.kind_name()),
        )
        .with_hint("e.g. `storage: file:///var/lib/eddy/checkpoints`")),
    }
}

/// Reads `state:`.
pub fn read_state(value: &ConfigValue) -> Result<StateSpec, Diagnostics> {
    from_config(value).map_err(|mut d| {
        d.message = format!("`state`: {}", d.message);
        Diagnostics::from(d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_yaml;

    fn section(text: &str, key: &str) -> ConfigValue {
        let v = parse_yaml(text).unwrap();
        v.get(key).cloned().unwrap()
    }

    #[test]
    fn reads_every_setting_with_defaults() {
        let c =
            read_checkpoints(&section("checkpoints:\n  interval: 2s\n  storage: memory://t\n", "checkpoints")).unwrap();
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.mode, ModeSpec::ExactlyOnce);
        assert_eq!(c.storage.as_ref().map(|s| s.value.as_str()), Some("memory://t"));
        assert_eq!((c.retain, c.tolerable_failures, c.max_concurrent), (3, 3, 1));
        let c = read_checkpoints(&section(
            "checkpoints:\n  interval: 1s\n  mode: at_least_once\n  storage: { url: s3://b/p, region: eu }\n",
            "checkpoints",
        ))
        .unwrap();
        assert_eq!(c.mode, ModeSpec::AtLeastOnce);
        assert_eq!(c.storage_options.get("region").map(String::as_str), Some("eu"));
    }

    #[test]
    fn errors_are_located() {
        let e = read_checkpoints(&section("checkpoints:\n  interval: 1s\n  retian: 3\n", "checkpoints")).unwrap_err();
        assert!(e.0[0].message.contains("retian"), "{:?}", e.0);
        assert_eq!(e.0[0].span.map(|s| s.line), Some(3));
        let e = read_checkpoints(&section("checkpoints:\n  interval: 1s\n  mode: twice\n", "checkpoints")).unwrap_err();
        assert!(e.0[0].message.contains("twice"), "{:?}", e.0);
        let e =
            read_checkpoints(&section("checkpoints:\n  interval: 1s\n  storage: [1]\n", "checkpoints")).unwrap_err();
        assert!(e.0[0].message.contains("expected a URL"), "{:?}", e.0);
        let e = read_state(&section("state:\n  backend: rocksdb\n", "state")).unwrap_err();
        assert!(e.0[0].message.contains("rocksdb"), "{:?}", e.0);
    }
}
