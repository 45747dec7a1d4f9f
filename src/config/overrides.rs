//! `--set key=value` overrides, applied to the config tree before the job model reads it.
//!
//! The key is a dotted path (`sources.bids.config.path`); missing maps on the way are created. The value
//! is typed like a YAML plain scalar (`4` is an integer, `0` works as a duration, `/tmp/x` is text); a
//! value starting with `[`, `{` or a quote is read as flow YAML, so `inputs=[a, b]` works too.
//!
//! Values set here have no place in the file, so they carry the span `0:k` for the k-th override
//! (see [`override_span`]); diagnostics about them are rendered as coming from the command line.
use super::yaml::{parse_yaml, plain_scalar};
use eddy_api::config::{ConfigKind, ConfigValue, Span, Spanned};
use eddy_api::diagnostic::{Diagnostic, Diagnostics};

/// The span given to nodes created by the `index`-th override (0-based).
pub fn override_span(index: usize) -> Span {
    Span::new(0, u32::try_from(index + 1).unwrap_or(u32::MAX))
}

/// Which override (0-based) a span marks, if it marks one.
pub fn override_index(span: Span) -> Option<usize> {
    (span.line == 0 && span.col > 0).then(|| span.col as usize - 1)
}

/// Applies every override in order; returns the problems (empty when all applied).
pub fn apply_overrides(root: &mut ConfigValue, overrides: &[String]) -> Diagnostics {
    let mut problems = Diagnostics::new();
    for (i, raw) in overrides.iter().enumerate() {
        if let Err(message) = apply_one(root, raw, override_span(i)) {
            problems.push(Diagnostic::new(message));
        }
    }
    problems
}

fn apply_one(root: &mut ConfigValue, raw: &str, span: Span) -> Result<(), String> {
    let Some((key, text)) = raw.split_once('=') else {
        return Err(format!("--set {raw}: expected key=value"));
    };
    let key = key.trim();
    let path: Vec<&str> = key.split('.').map(str::trim).collect();
    if key.is_empty() || path.iter().any(|seg| seg.is_empty()) {
        return Err(format!("--set {raw}: expected key=value, with a key such as `sources.bids.config.path`"));
    }
    let value = parse_value(text.trim(), span).map_err(|e| format!("--set {key}: {e}"))?;
    set_path(root, &path, value).map_err(|e| format!("--set {key}: {e}"))
}

fn parse_value(text: &str, span: Span) -> Result<ConfigValue, String> {
    if !text.starts_with(['[', '{', '\'', '"']) {
        return Ok(plain_scalar(text, span));
    }
    let mut value = parse_yaml(text).map_err(|d| {
        let first = d.0.into_iter().next().map(|d| d.message).unwrap_or_default();
        format!("invalid value `{text}`: {first}")
    })?;
    respan(&mut value, span);
    Ok(value)
}

/// Positions inside the override text mean nothing in the job file: mark the whole value as overridden.
fn respan(value: &mut ConfigValue, span: Span) {
    value.span = span;
    match &mut value.kind {
        ConfigKind::Seq(items) => items.iter_mut().for_each(|v| respan(v, span)),
        ConfigKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            k.span = span;
            respan(v, span);
        }),
        _ => {}
    }
}

/// Walks (and creates) the maps along `path` and puts `value` at its end.
fn set_path(root: &mut ConfigValue, path: &[&str], value: ConfigValue) -> Result<(), String> {
    if !matches!(root.kind, ConfigKind::Map(_) | ConfigKind::Null) {
        return Err("the job file is not a map".to_string());
    }
    let span = value.span;
    let mut node = root;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        if node.kind == ConfigKind::Null {
            node.kind = ConfigKind::Map(Vec::new());
        }
        let child = match &mut node.kind {
            ConfigKind::Map(entries) => {
                let pos = match entries.iter().position(|(k, _)| k.value == *segment) {
                    Some(pos) => pos,
                    None => {
                        entries
                            .push((Spanned::new(span, segment.to_string()), ConfigValue::new(span, ConfigKind::Null)));
                        entries.len() - 1
                    }
                };
                &mut entries[pos].1
            }
            ConfigKind::Seq(items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return Err(format!("`{}` has no item {segment}", path[..depth].join("."))),
            },
            _ => return Err(format!("`{}` is not a map", path[..depth].join("."))),
        };
        if last {
            *child = value;
            return Ok(());
        }
        node = child;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> ConfigValue {
        match parse_yaml(text) {
            Ok(v) => v,
            Err(d) => panic!("{:?}", d.0),
        }
    }

    fn apply(text: &str, sets: &[&str]) -> (ConfigValue, Vec<String>) {
        let mut root = tree(text);
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let problems = apply_overrides(&mut root, &sets);
        (root, problems.0.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn sets_typed_values_at_dotted_paths() {
        let (root, problems) = apply(
            "parallelism: 2\nsources:\n  bids:\n    type: csv\n",
            &["parallelism=4", "sources.bids.config.path=/tmp/x.csv", "buffer_timeout=0", "name = q1 job"],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(root.get("parallelism").map(|v| &v.kind), Some(&ConfigKind::Int(4)));
        assert_eq!(root.get("parallelism").map(|v| v.span), Some(override_span(0)));
        let path =
            root.get("sources").and_then(|s| s.get("bids")).and_then(|b| b.get("config")).and_then(|c| c.get("path"));
        assert_eq!(path.and_then(ConfigValue::as_str), Some("/tmp/x.csv"));
        assert_eq!(path.map(|p| p.span), Some(override_span(1)));
        assert_eq!(root.get("buffer_timeout").map(|v| &v.kind), Some(&ConfigKind::Int(0)));
        assert_eq!(root.get("name").and_then(ConfigValue::as_str), Some("q1 job"));
    }

    #[test]
    fn flow_values_and_list_items() {
        let (root, problems) = apply(
            "sinks:\n  out:\n    inputs: [a]\n",
            &["sinks.out.inputs=[b, c.late]", "sinks.out.inputs.1=d", "x='007'"],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let inputs = root.get("sinks").and_then(|s| s.get("out")).and_then(|o| o.get("inputs"));
        let ConfigKind::Seq(items) = &inputs.map(|i| i.kind.clone()).unwrap_or(ConfigKind::Null) else {
            panic!("not a list")
        };
        assert_eq!(items.iter().filter_map(ConfigValue::as_str).collect::<Vec<_>>(), vec!["b", "d"]);
        assert_eq!(root.get("x").and_then(ConfigValue::as_str), Some("007"));
    }

    #[test]
    fn empty_sections_become_maps() {
        let (root, problems) = apply("operators:\n", &["operators.m.type=map"]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(root.get("operators").and_then(|o| o.get("m")).is_some());
    }

    #[test]
    fn errors_name_the_key() {
        let (_, problems) = apply(
            "sources:\n  bids: csv\n",
            &["sources.bids.config.path=/x", "foo", "=3", "a..b=1", "sources.bids.0=1", "v=[1,"],
        );
        assert_eq!(problems[0], "--set sources.bids.config.path: `sources.bids` is not a map");
        assert_eq!(problems[1], "--set foo: expected key=value");
        assert!(problems[2].starts_with("--set =3: expected key=value"), "{}", problems[2]);
        assert!(problems[3].starts_with("--set a..b=1: expected key=value"), "{}", problems[3]);
        assert_eq!(problems[4], "--set sources.bids.0: `sources.bids` is not a map");
        assert!(problems[5].starts_with("--set v: invalid value `[1,`: YAML syntax error"), "{}", problems[5]);
        let (_, problems) = apply("- a\n", &["x=1"]);
        assert_eq!(problems, vec!["--set x: the job file is not a map".to_string()]);
    }

    #[test]
    fn override_spans_round_trip() {
        assert_eq!(override_index(override_span(3)), Some(3));
        assert_eq!(override_index(Span::new(1, 1)), None);
        assert_eq!(override_index(Span::default()), None);
    }
}
