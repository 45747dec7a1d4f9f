//! Where checkpoints live: parsing a storage URL (`file://`, a plain path, `memory://`, `s3://`) and its
//! options into a [`StorageLocation`], and resolving the S3 settings against the standard AWS environment
//! variables. Pure: no I/O, so every message a user can get here is unit-tested.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Option keys an `s3://` location accepts.
pub const S3_OPTIONS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_anonymous",
    "disable_config_load",
    "disable_ec2_metadata",
    "enable_virtual_host_style",
];

/// Options whose values are never printed.
const SECRET_OPTIONS: &[&str] = &["access_key_id", "secret_access_key", "session_token"];

/// A storage location that cannot be used.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocationError {
    /// Nothing was given.
    #[error("empty storage location: expected file:///absolute/path, a path, s3://bucket/prefix or memory://name")]
    Empty,
    /// A scheme we have no store for.
    #[error("unsupported scheme `{scheme}` in `{url}`: expected file://, s3:// or memory://")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole URL.
        url: String,
    },
    /// A URL whose shape is wrong for its scheme.
    #[error("invalid storage location `{url}`: {reason}")]
    Invalid {
        /// The whole URL.
        url: String,
        /// What was expected.
        reason: String,
    },
    /// An option key the scheme does not know.
    #[error("unknown option `{key}` for `{url}`: {valid}")]
    UnknownOption {
        /// The key as written.
        key: String,
        /// The whole URL.
        url: String,
        /// The valid keys, or that the scheme takes none.
        valid: String,
    },
    /// An option with a value of the wrong shape.
    #[error("invalid value `{value}` for option `{key}` of `{url}`: {expected}")]
    InvalidOption {
        /// The key.
        key: String,
        /// The value as written (secrets are never echoed).
        value: String,
        /// The whole URL.
        url: String,
        /// What was expected.
        expected: String,
    },
}

/// What a location points at, parsed once.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A directory on the local filesystem (absolute, lexically normalised).
    Fs { root: PathBuf },
    /// A named in-process store (shared by every store of the process with that name) and a
    /// sub-directory of it (no leading or trailing `/`, empty for the top).
    Memory { name: String, prefix: String },
    /// A bucket and a key prefix (no leading or trailing `/`, empty for the whole bucket).
    S3 { bucket: String, prefix: String },
}

/// A parsed storage location: a normalised URL and its options.
///
/// `url` is normalised: `file:///abs/path` (no trailing `/`), `memory://name[/dir]`, `s3://bucket[/prefix]`.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageLocation {
    url: String,
    options: BTreeMap<String, String>,
    target: Target,
}

impl fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print credentials, even in debug output.
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), if SECRET_OPTIONS.contains(&k.as_str()) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("StorageLocation").field("url", &self.url).field("options", &options).finish()
    }
}

impl fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl StorageLocation {
    /// Parses `url` (`file:///abs/path`, a plain path resolved against the current directory,
    /// `memory://name[/dir]` or `s3://bucket[/prefix]`) and checks `options` against the scheme
    /// (only `s3://` takes options: see [`S3_OPTIONS`]).
    pub fn parse(url: &str, options: BTreeMap<String, String>) -> Result<Self, LocationError> {
        let raw = url.trim();
        if raw.is_empty() {
            return Err(LocationError::Empty);
        }
        let invalid = |reason: &str| LocationError::Invalid { url: raw.to_string(), reason: reason.to_string() };
        let target = match raw.split_once("://") {
            None => Target::Fs { root: absolute(Path::new(raw)).map_err(|e| invalid(&e))? },
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "file" => {
                    if !rest.starts_with('/') {
                        return Err(invalid("expected file:///absolute/path (three slashes: no host part)"));
                    }
                    Target::Fs { root: absolute(Path::new(rest)).map_err(|e| invalid(&e))? }
                }
                "memory" => {
                    let (name, prefix) = split_first(rest);
                    if name.is_empty() {
                        return Err(invalid("expected memory://name[/dir]: the name is missing"));
                    }
                    Target::Memory { name: name.to_string(), prefix: clean_prefix(prefix).map_err(|e| invalid(&e))? }
                }
                "s3" => {
                    let (bucket, prefix) = split_first(rest);
                    if bucket.is_empty() {
                        return Err(invalid("expected s3://bucket[/prefix]: the bucket is missing"));
                    }
                    if !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
                        return Err(invalid(&format!(
                            "bucket name `{bucket}` may only hold lowercase letters, digits, `-` and `.`"
                        )));
                    }
                    Target::S3 { bucket: bucket.to_string(), prefix: clean_prefix(prefix).map_err(|e| invalid(&e))? }
                }
                _ => return Err(LocationError::UnsupportedScheme { scheme: scheme.to_string(), url: raw.to_string() }),
            },
        };
        let url = target_url(&target);
        check_options(&url, &target, &options)?;
        Ok(StorageLocation { url, options, target })
    }

    /// The normalised URL (for messages and for [`StorageLocation::parse`] again).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The options as given (including secrets: do not print them).
    pub fn options(&self) -> &BTreeMap<String, String> {
        &self.options
    }

    /// `file`, `memory` or `s3`.
    pub fn scheme(&self) -> &'static str {
        match self.target {
            Target::Fs { .. } => "file",
            Target::Memory { .. } => "memory",
            Target::S3 { .. } => "s3",
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The location of a sub-directory (e.g. a savepoint directory), with the same options.
    /// `sub` is relative; empty segments, `.` and leading or trailing `/` are ignored, and `..`
    /// never climbs above this location.
    pub fn child(&self, sub: &str) -> StorageLocation {
        let parts: Vec<&str> = sub.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..").collect();
        let target = match &self.target {
            Target::Fs { root } => Target::Fs { root: parts.iter().fold(root.clone(), |p, s| p.join(s)) },
            Target::Memory { name, prefix } => {
                Target::Memory { name: name.clone(), prefix: join_prefix(prefix, &parts) }
            }
            Target::S3 { bucket, prefix } => Target::S3 { bucket: bucket.clone(), prefix: join_prefix(prefix, &parts) },
        };
        StorageLocation { url: target_url(&target), options: self.options.clone(), target }
    }

    /// The S3 settings: the options, falling back to the standard AWS environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`) unless `disable_config_load` is set. `None` for other schemes.
    pub(crate) fn s3_settings(&self, env: impl Fn(&str) -> Option<String>) -> Option<S3Settings> {
        let Target::S3 { bucket, prefix } = &self.target else { return None };
        let opt = |k: &str| self.options.get(k).filter(|v| !v.is_empty()).cloned();
        let flag = |k: &str| opt(k).is_some_and(|v| parse_bool(&v) == Some(true));
        let disable_config_load = flag("disable_config_load");
        let env = |k: &str| if disable_config_load { None } else { env(k).filter(|v| !v.is_empty()) };
        Some(S3Settings {
            bucket: bucket.clone(),
            root: format!("/{prefix}"),
            endpoint: opt("endpoint").or_else(|| env("AWS_ENDPOINT_URL")),
            region: opt("region").or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: opt("access_key_id").or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: opt("secret_access_key").or_else(|| env("AWS_SECRET_ACCESS_KEY")),
            session_token: opt("session_token").or_else(|| env("AWS_SESSION_TOKEN")),
            allow_anonymous: flag("allow_anonymous"),
            disable_config_load,
            disable_ec2_metadata: flag("disable_ec2_metadata"),
            enable_virtual_host_style: flag("enable_virtual_host_style"),
        })
    }
}

/// Resolved S3 settings (options over environment).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct S3Settings {
    pub bucket: String,
    pub root: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_anonymous: bool,
    pub disable_config_load: bool,
    pub disable_ec2_metadata: bool,
    pub enable_virtual_host_style: bool,
}

fn target_url(t: &Target) -> String {
    let with = |base: String, prefix: &str| if prefix.is_empty() { base } else { format!("{base}/{prefix}") };
    match t {
        Target::Fs { root } => format!("file://{}", root.display()),
        Target::Memory { name, prefix } => with(format!("memory://{name}"), prefix),
        Target::S3 { bucket, prefix } => with(format!("s3://{bucket}"), prefix),
    }
}

fn split_first(rest: &str) -> (&str, &str) {
    rest.split_once('/').unwrap_or((rest, ""))
}

fn clean_prefix(prefix: &str) -> Result<String, String> {
    let parts: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if parts.contains(&"..") {
        return Err("`..` is not allowed in a bucket prefix or memory directory".into());
    }
    Ok(parts.join("/"))
}

fn join_prefix(prefix: &str, parts: &[&str]) -> String {
    let mut all: Vec<&str> = if prefix.is_empty() { Vec::new() } else { vec![prefix] };
    all.extend_from_slice(parts);
    all.join("/")
}

/// Makes `p` absolute against the current directory and removes `.` and `..` lexically (the
/// directory may not exist yet, so no canonicalisation).
fn absolute(p: &Path) -> Result<PathBuf, String> {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|e| format!("cannot resolve a relative path: {e}"))?;
        cwd.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.to_str().is_none() {
        return Err("the path is not valid UTF-8".into());
    }
    Ok(out)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn check_options(url: &str, target: &Target, options: &BTreeMap<String, String>) -> Result<(), LocationError> {
    let scheme = match target {
        Target::Fs { .. } => "file://",
        Target::Memory { .. } => "memory://",
        Target::S3 { .. } => "s3://",
    };
    for (key, value) in options {
        if !matches!(target, Target::S3 { .. }) {
            return Err(LocationError::UnknownOption {
                key: key.clone(),
                url: url.to_string(),
                valid: format!("{scheme} locations take no options"),
            });
        }
        if !S3_OPTIONS.contains(&key.as_str()) {
            return Err(LocationError::UnknownOption {
                key: key.clone(),
                url: url.to_string(),
                valid: format!("expected one of {}", S3_OPTIONS.join(", ")),
            });
        }
        let bad = |expected: &str| LocationError::InvalidOption {
            key: key.clone(),
            value: if SECRET_OPTIONS.contains(&key.as_str()) { "***".into() } else { value.clone() },
            url: url.to_string(),
            expected: expected.to_string(),
        };
        match key.as_str() {
            "allow_anonymous" | "disable_config_load" | "disable_ec2_metadata" | "enable_virtual_host_style"
                if parse_bool(value).is_none() =>
            {
                return Err(bad("expected true or false"));
            }
            "endpoint" if !(value.starts_with("http://") || value.starts_with("https://")) => {
                return Err(bad("expected an http:// or https:// URL, e.g. http://127.0.0.1:9000"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn parse(url: &str) -> Result<StorageLocation, LocationError> {
        StorageLocation::parse(url, BTreeMap::new())
    }

    #[test]
    fn parses_every_scheme_and_normalises() {
        let l = parse("file:///var/eddy/./ckpt/").unwrap();
        assert_eq!(l.url(), "file:///var/eddy/ckpt");
        assert_eq!(l.scheme(), "file");
        assert_eq!(parse("/var/eddy/a/../b").unwrap().url(), "file:///var/eddy/b");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(parse("ckpt").unwrap().url(), format!("file://{}", cwd.join("ckpt").display()));
        assert_eq!(parse("memory://t1").unwrap().url(), "memory://t1");
        assert_eq!(parse("memory://t1//a/").unwrap().url(), "memory://t1/a");
        assert_eq!(parse("s3://bucket").unwrap().url(), "s3://bucket");
        assert_eq!(parse("S3://bucket/a/b/").unwrap().url(), "s3://bucket/a/b");
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert_eq!(
            parse("ftp://x").unwrap_err().to_string(),
            "unsupported scheme `ftp` in `ftp://x`: expected file://, s3:// or memory://"
        );
        assert!(parse("").unwrap_err().to_string().contains("expected file:///absolute/path"));
        assert!(parse("file://host/x").unwrap_err().to_string().contains("three slashes"));
        assert!(parse("s3://").unwrap_err().to_string().contains("bucket is missing"));
        assert!(parse("s3://Bad_Bucket/x").unwrap_err().to_string().contains("lowercase"));
        assert!(parse("memory://").unwrap_err().to_string().contains("name is missing"));
        assert!(parse("s3://b/../x").unwrap_err().to_string().contains("`..`"));
    }

    #[test]
    fn options_are_checked_against_the_scheme() {
        let e = StorageLocation::parse("s3://b/p", opts(&[("endpont", "http://x")])).unwrap_err().to_string();
        assert!(e.contains("unknown option `endpont`") && e.contains("endpoint, region"), "{e}");
        let e = StorageLocation::parse("/tmp/x", opts(&[("region", "x")])).unwrap_err().to_string();
        assert!(e.contains("file:// locations take no options"), "{e}");
        let e = StorageLocation::parse("s3://b", opts(&[("allow_anonymous", "maybe")])).unwrap_err().to_string();
        assert!(e.contains("expected true or false"), "{e}");
        let e = StorageLocation::parse("s3://b", opts(&[("endpoint", "127.0.0.1:9000")])).unwrap_err().to_string();
        assert!(e.contains("http:// or https://"), "{e}");
        let l = StorageLocation::parse("s3://b", opts(&[("secret_access_key", "hunter2")])).unwrap();
        assert!(!format!("{l:?}").contains("hunter2"));
    }

    #[test]
    fn child_keeps_options_and_never_climbs() {
        let l = StorageLocation::parse("s3://b/root", opts(&[("region", "us-east-1")])).unwrap();
        let c = l.child("savepoint-3-1700000000000/");
        assert_eq!(c.url(), "s3://b/root/savepoint-3-1700000000000");
        assert_eq!(c.options(), l.options());
        assert_eq!(parse("/a/b").unwrap().child("../c").url(), "file:///a/b/c");
        assert_eq!(parse("memory://m").unwrap().child("x/y").url(), "memory://m/x/y");
    }

    #[test]
    fn s3_settings_fall_back_to_the_environment() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("envkey".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1".to_string()),
            _ => None,
        };
        let l = StorageLocation::parse("s3://b/p", opts(&[("region", "us-east-1")])).unwrap();
        let s = l.s3_settings(env).unwrap();
        assert_eq!(s.root, "/p");
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.access_key_id.as_deref(), Some("envkey"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        let l = StorageLocation::parse("s3://b", opts(&[("disable_config_load", "true")])).unwrap();
        let s = l.s3_settings(env).unwrap();
        assert_eq!((s.access_key_id, s.region, s.endpoint), (None, None, None));
        assert!(parse("/tmp").unwrap().s3_settings(env).is_none());
    }
}
