//! The checkpoint store against a real S3 server (moto on 127.0.0.1:9000, or EDDY_S3_PORT): writes, reads,
//! atomic writes, listings, recursive deletes, retries on a dead endpoint, and restoring the newest
//! undamaged checkpoint. Starts the server with `.ci/start-s3` when nothing answers on the port.
use eddy::checkpoint::{
    checkpoint_dir, format_listing, list_checkpoints, load_checkpoint, load_checkpoint_blocking, retention_victims,
    savepoint_dir, CheckpointKind, LoadError, OpendalStore, RestoreTarget, RetryPolicy, StorageLocation, METADATA_FILE,
};
use eddy_actors::checkpoint::format::{encode_task_file, NodeEntry, TaskFile, FORMAT_VERSION};
use eddy_actors::checkpoint::{CheckpointMetadata, CheckpointStore, NodeState, TaskSnapshot};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

const BUCKET: &str = "eddy-test";

fn port() -> u16 {
    std::env::var("EDDY_S3_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(9000)
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).is_ok()
}

/// Makes sure the S3 server runs and the bucket exists (once per test process).
fn ensure_server() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        // Always run the script: it is quick when the server is up and makes sure the bucket exists.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/start-s3");
        let out = std::process::Command::new("bash")
            .arg(script)
            .env("EDDY_S3_PORT", port().to_string())
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !out.status.success() || !listening(port()) {
            return Err(format!(
                "{script} could not start an S3 server on 127.0.0.1:{} ({}): {}",
                port(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

fn options(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("endpoint", endpoint),
        ("region", "us-east-1"),
        ("access_key_id", "test"),
        ("secret_access_key", "test"),
        ("disable_config_load", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A store under a prefix no other test (or earlier run) uses.
fn store(test: &str) -> OpendalStore {
    ensure_server();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let url = format!("s3://{BUCKET}/test-{}-{nanos}-{test}", std::process::id());
    let location = StorageLocation::parse(&url, options(&format!("http://127.0.0.1:{}", port()))).unwrap();
    OpendalStore::new(&location).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn write_checkpoint(store: &OpendalStore, dir: &str, id: u64, subtasks: usize, finished: bool) {
    let mut tasks = Vec::new();
    for s in 0..subtasks {
        let node = NodeState {
            node: "count".into(),
            subtask: s,
            parallelism: subtasks,
            schema: "word:str,n:int".into(),
            keyed: Some(format!("state of {id}/{s}").into_bytes()),
            ..NodeState::default()
        };
        let bytes = encode_task_file("wordcount", id, &TaskSnapshot { nodes: vec![node] }).unwrap();
        let path = format!("count-{s}.snap");
        tasks.push(TaskFile {
            path: path.clone(),
            size: bytes.len() as u64,
            nodes: vec![NodeEntry {
                node: "count".into(),
                subtask: s,
                parallelism: subtasks,
                key_groups: None,
                schema: "word:str,n:int".into(),
            }],
        });
        store.write(format!("{dir}/{path}"), bytes).await.unwrap();
    }
    let meta = CheckpointMetadata {
        format_version: FORMAT_VERSION,
        job: "wordcount".into(),
        id,
        savepoint: dir.starts_with("savepoint-"),
        finished,
        time_ms: 1_700_000_000_000 + id * 1000,
        duration_ms: 12,
        max_parallelism: 128,
        tasks,
    };
    store.write_atomic(format!("{dir}/{METADATA_FILE}"), meta.to_bytes()).await.unwrap();
}

#[test]
fn s3_write_read_list_delete() {
    let store = store("basic");
    rt().block_on(async {
        store.write("chk-0000000001/a".into(), b"alpha".to_vec()).await.unwrap();
        store.write_atomic("chk-0000000001/_metadata".into(), b"{}".to_vec()).await.unwrap();
        store.write_atomic("chk-0000000001/_metadata".into(), b"{\"v\":2}".to_vec()).await.unwrap();
        store.write("chk-0000000001/nested/b".into(), vec![7u8; 10]).await.unwrap();
        // Larger than one multipart chunk would be, to be sure big snapshots go through.
        let big: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| i as u8).collect();
        store.write("chk-0000000002/big".into(), big.clone()).await.unwrap();

        assert_eq!(store.read("chk-0000000001/a".into()).await.unwrap(), b"alpha");
        assert_eq!(store.read("chk-0000000001/_metadata".into()).await.unwrap(), b"{\"v\":2}");
        assert_eq!(store.read("chk-0000000002/big".into()).await.unwrap(), big);

        let top: Vec<(String, bool)> =
            store.list_dir("").await.unwrap().into_iter().map(|e| (e.name, e.is_dir)).collect();
        assert_eq!(top, [("chk-0000000001".to_string(), true), ("chk-0000000002".to_string(), true)]);
        let files = store.list_dir("chk-0000000001").await.unwrap();
        let names: Vec<&str> = files.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["_metadata", "a", "nested"]);
        assert_eq!(files[1].size, 5);
        let deep = store.list_files_recursive("chk-0000000001").await.unwrap();
        let names: Vec<&str> = deep.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["_metadata", "a", "nested/b"]);

        let missing = store.read("chk-0000000001/nope".into()).await.unwrap_err();
        assert!(!missing.transient);
        assert!(missing.message.contains(&format!("{}/chk-0000000001/nope", store.url())), "{}", missing.message);

        store.delete_dir("chk-0000000001".into()).await.unwrap();
        store.delete_dir("chk-0000000001".into()).await.unwrap(); // missing is fine
        assert!(store.list_files_recursive("chk-0000000001").await.unwrap().is_empty());
        let left: Vec<String> = store.list_dir("").await.unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(left, ["chk-0000000002"]);
        store.delete_dir("chk-0000000002".into()).await.unwrap();
    });
}

#[test]
fn s3_restores_the_newest_undamaged_checkpoint() {
    let store = store("fallback");
    rt().block_on(async {
        write_checkpoint(&store, &checkpoint_dir(1), 1, 2, false).await;
        write_checkpoint(&store, &checkpoint_dir(2), 2, 2, false).await;
        let newest = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap();
        assert_eq!(newest.restored.id, 2);

        // Corrupt one byte of the newest checkpoint's second file.
        let path = format!("{}/count-1.snap", checkpoint_dir(2));
        let mut bytes = store.read(path.clone()).await.unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        store.write(path, bytes).await.unwrap();

        let loaded = load_checkpoint(&store, RestoreTarget::Latest).await.unwrap();
        assert_eq!(loaded.restored.id, 1);
        assert_eq!(loaded.restored.location, format!("{}/chk-0000000001", store.url()));
        assert_eq!(loaded.restored.node("count")[1].keyed.as_deref(), Some(&b"state of 1/1"[..]));
        assert_eq!(loaded.skipped.len(), 1);
        assert_eq!(loaded.skipped[0].id, 2);
        assert!(loaded.skipped[0].reason.starts_with("count-1.snap: "), "{:?}", loaded.skipped);

        // Asked for by name, the damaged checkpoint is an error.
        let e = load_checkpoint(&store, RestoreTarget::Path(checkpoint_dir(2))).await.unwrap_err();
        assert!(matches!(e, LoadError::Damaged { .. }), "{e}");
    });
}

#[test]
fn s3_listing_and_retention() {
    let store = store("listing");
    rt().block_on(async {
        for id in 1..=4 {
            write_checkpoint(&store, &checkpoint_dir(id), id, 2, id == 4).await;
        }
        write_checkpoint(&store, &savepoint_dir(2, 1_700_000_002_000), 2, 1, false).await;
        store.write(format!("{}/count-0.snap", checkpoint_dir(5)), b"in progress".to_vec()).await.unwrap();

        let listing = list_checkpoints(&store).await.unwrap();
        let summary: Vec<(u64, CheckpointKind, bool, bool, usize)> =
            listing.iter().map(|l| (l.id, l.kind, l.complete, l.finished, l.task_files)).collect();
        assert_eq!(
            summary,
            [
                (1, CheckpointKind::Checkpoint, true, false, 2),
                (2, CheckpointKind::Checkpoint, true, false, 2),
                (2, CheckpointKind::Savepoint, true, false, 1),
                (3, CheckpointKind::Checkpoint, true, false, 2),
                (4, CheckpointKind::Checkpoint, true, true, 2),
                (5, CheckpointKind::Checkpoint, false, false, 1),
            ]
        );
        assert!(listing.iter().all(|l| l.size > 0));
        let table = format_listing(&listing);
        assert!(table.contains("savepoint-2-1700000002000") && table.contains("finished"), "{table}");

        let victims = retention_victims(&listing, 2, &[]);
        assert_eq!(victims, ["chk-0000000001", "chk-0000000002"]);
        for dir in victims {
            store.delete_dir(dir).await.unwrap();
        }
        let after: Vec<String> = list_checkpoints(&store).await.unwrap().into_iter().map(|l| l.dir).collect();
        assert_eq!(after, ["savepoint-2-1700000002000", "chk-0000000003", "chk-0000000004", "chk-0000000005"]);
    });
    // The CLI's path: a savepoint by its full URL, on a runtime of its own.
    let url = format!("{}/{}", store.url(), savepoint_dir(2, 1_700_000_002_000));
    let sp = load_checkpoint_blocking(&store, RestoreTarget::Path(url.clone())).unwrap();
    assert_eq!((sp.restored.id, sp.metadata.savepoint, sp.restored.location), (2, true, url));
}

#[test]
fn s3_dead_endpoint_is_transient_after_retries() {
    // A port that nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let location =
        StorageLocation::parse(&format!("s3://{BUCKET}/dead"), options(&format!("http://127.0.0.1:{port}"))).unwrap();
    let retry =
        RetryPolicy { attempts: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(20) };
    let store = OpendalStore::new(&location).unwrap().with_retry(retry);
    let e = rt().block_on(store.read("chk-0000000001/_metadata".into())).unwrap_err();
    assert!(e.transient, "{}", e.message);
    assert!(e.message.contains("after 3 attempts"), "{}", e.message);
    assert!(e.message.contains("s3://eddy-test/dead/chk-0000000001/_metadata"), "{}", e.message);
}
