//! The checkpoint store on OpenDAL: [`OpendalStore`] implements the runtime's [`CheckpointStore`] over the
//! `fs`, `s3` and `memory` services, retrying transient errors with exponential backoff, plus the listing
//! helpers that `load` and `list` need (inherent methods, not part of the runtime's interface).
use super::location::{StorageLocation, Target};
use eddy_actors::checkpoint::{CheckpointStore, StoreError, StoreFuture};
use opendal::{Buffer, EntryMode, ErrorKind, Operator};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how patiently a storage call is retried when its error is transient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1: no retry).
    pub attempts: u32,
    /// Pause before the second attempt; it doubles after each failure.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, first_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Whether an OpenDAL error may go away if the call is tried again: outages, throttling, connection
/// errors and errors OpenDAL marks temporary. Missing objects, permissions and configuration never do.
pub fn is_transient(err: &opendal::Error) -> bool {
    if err.is_temporary() {
        return true;
    }
    match err.kind() {
        ErrorKind::RateLimited | ErrorKind::Conflict => true,
        // Connection resets, 5xx answers and unclassified I/O errors arrive as Unexpected.
        ErrorKind::Unexpected => !err.is_persistent(),
        _ => false,
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name within the directory (no trailing `/`).
    pub name: String,
    /// A directory (a common prefix on object stores) rather than a file.
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification in ms since the epoch, when the store reports it.
    pub modified_ms: Option<u64>,
}

/// The in-process stores of `memory://name` locations, so that two runs in one process (a test that
/// restarts a job) see the same data.
fn memory_registry() -> &'static Mutex<HashMap<String, Operator>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Operator>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Installs the process-wide TLS provider (ring) and OpenDAL's HTTP transport, once. reqwest panics
/// when it builds a client with no crypto provider installed, so this must run before the first S3 call.
fn install_http_transport() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first; that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // First installed wins, so a transport the embedding program installed before stays.
        opendal::HttpTransporter::install_default(opendal_http_transport_reqwest::ReqwestTransport::default());
    });
}

/// A checkpoint store over OpenDAL; cheap to clone (the operator is shared).
#[derive(Clone, Debug)]
pub struct OpendalStore {
    op: Operator,
    location: StorageLocation,
    /// Prepended to every path: the sub-directory of a shared memory store, empty otherwise (fs and
    /// s3 set their root in the operator).
    base: String,
    /// Whether `write_atomic` writes a temporary object and renames it (filesystems), rather than
    /// relying on a single PUT being atomic (object stores, memory).
    rename_for_atomic: bool,
    retry: RetryPolicy,
}

impl OpendalStore {
    /// Builds the store for `location`. Needs no running async runtime; no I/O happens except creating
    /// the root directory of a filesystem location.
    pub fn new(location: &StorageLocation) -> Result<Self, StoreError> {
        let fatal = |what: &str, e: opendal::Error| StoreError {
            message: format!("cannot open checkpoint store {}: {what}: {e}", location.url()),
            transient: false,
        };
        let (op, base, rename_for_atomic) = match location.target() {
            Target::Fs { root } => {
                let root = root.to_str().unwrap_or_default();
                let op =
                    Operator::new(opendal::services::Fs::default().root(root)).map_err(|e| fatal("filesystem", e))?;
                (op, String::new(), true)
            }
            Target::Memory { name, prefix } => {
                let mut registry = memory_registry().lock().unwrap_or_else(|p| p.into_inner());
                let op = match registry.get(name) {
                    Some(op) => op.clone(),
                    None => {
                        let op = Operator::new(opendal::services::Memory::default().root("/"))
                            .map_err(|e| fatal("memory", e))?;
                        registry.insert(name.clone(), op.clone());
                        op
                    }
                };
                let base = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
                (op, base, false)
            }
            Target::S3 { .. } => {
                let s = location.s3_settings(|k| std::env::var(k).ok()).unwrap_or_default();
                let Some(region) = s.region.as_deref() else {
                    return Err(StoreError {
                        message: format!(
                            "cannot open checkpoint store {}: no region: set the option `region` or AWS_REGION",
                            location.url()
                        ),
                        transient: false,
                    });
                };
                install_http_transport();
                let mut b = opendal::services::S3::default().bucket(&s.bucket).root(&s.root).region(region);
                if let Some(v) = &s.endpoint {
                    b = b.endpoint(v);
                }
                if let Some(v) = &s.access_key_id {
                    b = b.access_key_id(v);
                }
                if let Some(v) = &s.secret_access_key {
                    b = b.secret_access_key(v);
                }
                if let Some(v) = &s.session_token {
                    b = b.session_token(v);
                }
                if s.allow_anonymous {
                    b = b.skip_signature();
                }
                if s.disable_config_load {
                    b = b.disable_config_load();
                }
                if s.disable_ec2_metadata {
                    b = b.disable_ec2_metadata();
                }
                if s.enable_virtual_host_style {
                    b = b.enable_virtual_host_style();
                }
                (Operator::new(b).map_err(|e| fatal("s3", e))?, String::new(), false)
            }
        };
        Ok(OpendalStore { op, location: location.clone(), base, rename_for_atomic, retry: RetryPolicy::default() })
    }

    /// Parses `url` with no options and builds the store (tests and the CLI).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let location = StorageLocation::parse(url, Default::default())
            .map_err(|e| StoreError { message: e.to_string(), transient: false })?;
        Self::new(&location)
    }

    /// The same store with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Where the store is.
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// The store's URL.
    pub fn url(&self) -> &str {
        self.location.url()
    }

    /// A store for a sub-directory of this one (e.g. a savepoint directory), sharing the options.
    pub fn child(&self, sub: &str) -> Result<OpendalStore, StoreError> {
        OpendalStore::new(&self.location.child(sub)).map(|s| s.with_retry(self.retry))
    }

    /// Reads a whole object into OpenDAL's buffer (no copy when it arrived in one piece).
    pub async fn read_buffer(&self, path: &str) -> Result<Buffer, StoreError> {
        let full = self.full(path);
        let op = self.op.clone();
        self.retrying("read", path, || op.read(&full)).await
    }

    /// Reads a whole object, or `None` when it does not exist.
    pub async fn read_if_exists(&self, path: &str) -> Result<Option<Buffer>, StoreError> {
        let full = self.full(path);
        let op = self.op.clone();
        self.retrying("read", path, || async {
            match op.read(&full).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Deletes one object; missing is not an error.
    pub async fn delete_file(&self, path: &str) -> Result<(), StoreError> {
        let full = self.full(path);
        let op = self.op.clone();
        self.retrying("delete", path, || async {
            match op.delete(&full).await {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Whether an object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, StoreError> {
        let full = self.full(path);
        let op = self.op.clone();
        self.retrying("check", path, || op.exists(&full)).await
    }

    /// The entries of a directory (`""` for the root), sorted by name, without the directory itself;
    /// a missing directory is empty.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        self.list(dir, false).await
    }

    /// Every file under a directory, at any depth, with names relative to it.
    pub async fn list_files_recursive(&self, dir: &str) -> Result<Vec<DirEntry>, StoreError> {
        self.list(dir, true).await
    }

    async fn list(&self, dir: &str, recursive: bool) -> Result<Vec<DirEntry>, StoreError> {
        let trimmed = dir.trim_matches('/');
        let full = if trimmed.is_empty() { self.base.clone() } else { format!("{}{trimmed}/", self.base) };
        let op = self.op.clone();
        let listed = self
            .retrying("list", dir, || async {
                match op.list_with(&full).recursive(recursive).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
                    other => other,
                }
            })
            .await?;
        let mut out: Vec<DirEntry> = listed
            .into_iter()
            .filter_map(|e| {
                let path = e.path().trim_start_matches('/');
                let rel = path.strip_prefix(full.trim_start_matches('/'))?.trim_end_matches('/');
                if rel.is_empty() {
                    return None; // the directory itself
                }
                let meta = e.metadata();
                let is_dir = meta.mode() == EntryMode::DIR;
                if recursive && is_dir {
                    return None;
                }
                let modified_ms = meta
                    .last_modified()
                    .and_then(|t| SystemTime::from(t).duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64);
                let size = if is_dir { 0 } else { meta.content_length() };
                Some(DirEntry { name: rel.to_string(), is_dir, size, modified_ms })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn full(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts are used up; errors name the full
    /// path and the store.
    async fn retrying<T, F, Fut>(&self, what: &str, path: &str, call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = opendal::Result<T>>,
    {
        retry(self.retry, self.location.url(), what, path, call).await
    }
}

/// See [`OpendalStore::retrying`]; free so that `'static` futures can use it with owned arguments.
async fn retry<T, F, Fut>(policy: RetryPolicy, url: &str, what: &str, path: &str, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = opendal::Result<T>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let transient = is_transient(&e);
                let target = format!("{}/{}", url.trim_end_matches('/'), path.trim_start_matches('/'));
                if !transient || attempt >= attempts {
                    let tries = if attempt > 1 { format!(" after {attempt} attempts") } else { String::new() };
                    return Err(StoreError { message: format!("cannot {what} {target}{tries}: {e}"), transient });
                }
                let delay = policy.delay(attempt);
                tracing::warn!(attempt, ?delay, "cannot {what} {target}, retrying: {e}");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// A name for a temporary object that no other writer in any process picks.
fn temp_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("tmp-{}-{}-{nanos:08x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl CheckpointStore for OpendalStore {
    fn write(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()> {
        let (op, full, url, policy) = (self.op.clone(), self.full(&path), self.url().to_string(), self.retry);
        let buf = Buffer::from(bytes);
        Box::pin(async move {
            retry(policy, &url, "write", &path, || op.write(&full, buf.clone())).await?;
            Ok(())
        })
    }

    fn write_atomic(&self, path: String, bytes: Vec<u8>) -> StoreFuture<()> {
        if !self.rename_for_atomic {
            // A PUT (or a memory insert) is atomic: readers see the old object or the whole new one.
            return self.write(path, bytes);
        }
        let (op, full, url, policy) = (self.op.clone(), self.full(&path), self.url().to_string(), self.retry);
        let buf = Buffer::from(bytes);
        Box::pin(async move {
            let tmp = format!("{full}.{}", temp_suffix());
            retry(policy, &url, "write", &tmp, || op.write(&tmp, buf.clone())).await?;
            let renamed = retry(policy, &url, "rename into place", &path, || op.rename(&tmp, &full)).await;
            if renamed.is_err() {
                // Best effort: do not leave the temporary file behind.
                let _ = op.delete(&tmp).await;
            }
            renamed
        })
    }

    fn read(&self, path: String) -> StoreFuture<Vec<u8>> {
        let (op, full, url, policy) = (self.op.clone(), self.full(&path), self.url().to_string(), self.retry);
        Box::pin(async move {
            let buf = retry(policy, &url, "read", &path, || op.read(&full)).await?;
            Ok(buf.to_vec())
        })
    }

    fn delete_dir(&self, dir: String) -> StoreFuture<()> {
        let trimmed = dir.trim_matches('/').to_string();
        let (op, url, policy) = (self.op.clone(), self.url().to_string(), self.retry);
        let full = format!("{}{trimmed}/", self.base);
        Box::pin(async move {
            if trimmed.is_empty() {
                // Never wipe the whole store by accident.
                return Err(StoreError { message: format!("refusing to delete the root of {url}"), transient: false });
            }
            retry(policy, &url, "delete", &dir, || async {
                match op.delete_with(&full).recursive(true).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            })
            .await
        })
    }

    fn describe(&self) -> String {
        self.url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn temp_root(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-store-{tag}-{}", temp_suffix()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn classifies_errors() {
        assert!(is_transient(&opendal::Error::new(ErrorKind::Unexpected, "connection reset")));
        assert!(is_transient(&opendal::Error::new(ErrorKind::RateLimited, "slow down")));
        assert!(is_transient(&opendal::Error::new(ErrorKind::NotFound, "x").set_temporary()));
        for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied, ErrorKind::ConfigInvalid, ErrorKind::Unsupported]
        {
            assert!(!is_transient(&opendal::Error::new(kind, "x")), "{kind:?}");
        }
        assert!(!is_transient(&opendal::Error::new(ErrorKind::Unexpected, "x").set_persistent()));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=8).map(|a| p.delay(a).as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.delay(100), p.max_delay);
    }

    #[test]
    fn retries_transient_errors_only() {
        let policy =
            RetryPolicy { attempts: 4, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        rt().block_on(async {
            let mut calls = 0;
            let r = retry(policy, "memory://m", "read", "a", || {
                calls += 1;
                let c = calls;
                async move {
                    if c < 3 {
                        Err(opendal::Error::new(ErrorKind::Unexpected, "reset"))
                    } else {
                        Ok(c)
                    }
                }
            })
            .await;
            assert_eq!(r.unwrap(), 3);

            let mut calls = 0;
            let r: Result<(), _> = retry(policy, "memory://m", "read", "chk-1/a", || {
                calls += 1;
                async { Err(opendal::Error::new(ErrorKind::NotFound, "gone")) }
            })
            .await;
            let e = r.unwrap_err();
            assert_eq!(calls, 1);
            assert!(!e.transient);
            assert!(e.message.starts_with("cannot read memory://m/chk-1/a: "), "{}", e.message);

            let mut calls = 0;
            let r: Result<(), _> = retry(policy, "s3://b", "write", "x", || {
                calls += 1;
                async { Err(opendal::Error::new(ErrorKind::Unexpected, "503")) }
            })
            .await;
            let e = r.unwrap_err();
            assert_eq!(calls, 4);
            assert!(e.transient && e.message.contains("after 4 attempts"), "{}", e.message);
        });
    }

    fn exercise(store: &OpendalStore) {
        rt().block_on(async {
            store.write("chk-0000000001/a.0".into(), b"hello".to_vec()).await.unwrap();
            store.write_atomic("chk-0000000001/_metadata".into(), b"{}".to_vec()).await.unwrap();
            store.write_atomic("chk-0000000001/_metadata".into(), b"{\"x\":1}".to_vec()).await.unwrap();
            store.write("chk-0000000001/sub/deep".into(), b"d".to_vec()).await.unwrap();
            assert_eq!(store.read("chk-0000000001/a.0".into()).await.unwrap(), b"hello");
            assert_eq!(store.read("chk-0000000001/_metadata".into()).await.unwrap(), b"{\"x\":1}");
            let e = store.read("chk-0000000001/missing".into()).await.unwrap_err();
            assert!(!e.transient);
            assert!(e.message.contains(&format!("{}/chk-0000000001/missing", store.url())), "{}", e.message);

            let top = store.list_dir("").await.unwrap();
            assert_eq!(top.len(), 1, "{top:?}");
            assert_eq!((top[0].name.as_str(), top[0].is_dir), ("chk-0000000001", true));
            let files = store.list_dir("chk-0000000001").await.unwrap();
            let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["_metadata", "a.0", "sub"], "no temporary file is left behind");
            assert_eq!(files[1].size, 5);
            let all = store.list_files_recursive("chk-0000000001/").await.unwrap();
            let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, ["_metadata", "a.0", "sub/deep"]);
            assert!(store.exists("chk-0000000001/a.0").await.unwrap());

            store.delete_dir("chk-0000000001".into()).await.unwrap();
            store.delete_dir("chk-0000000001".into()).await.unwrap(); // missing is fine
            assert!(store.list_files_recursive("chk-0000000001").await.unwrap().is_empty());
            assert!(store.list_dir("nothing-here").await.unwrap().is_empty());
            assert!(store.delete_dir("/".into()).await.is_err());
        });
    }

    #[test]
    fn fs_store_round_trips() {
        let root = temp_root("fs");
        let store = OpendalStore::open(root.to_str().unwrap()).unwrap();
        assert_eq!(store.describe(), format!("file://{}", root.display()));
        exercise(&store);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn memory_store_round_trips_and_is_shared_by_name() {
        let name = format!("memory://store-test-{}", temp_suffix());
        let store = OpendalStore::open(&name).unwrap();
        exercise(&store);
        let sub = OpendalStore::open(&format!("{name}/savepoints")).unwrap();
        exercise(&sub);
        rt().block_on(async {
            store.write("x".into(), b"1".to_vec()).await.unwrap();
            let again = OpendalStore::open(&name).unwrap();
            assert_eq!(again.read("x".into()).await.unwrap(), b"1");
            let child = again.child("sp").unwrap();
            child.write("f".into(), b"2".to_vec()).await.unwrap();
            assert_eq!(store.read("sp/f".into()).await.unwrap(), b"2");
        });
    }

    #[test]
    fn s3_without_region_is_a_clear_error() {
        let loc = StorageLocation::parse(
            "s3://bucket/p",
            [("disable_config_load".to_string(), "true".to_string())].into_iter().collect(),
        )
        .unwrap();
        let e = OpendalStore::new(&loc).unwrap_err();
        assert!(e.message.contains("no region"), "{}", e.message);
    }
}
