//! The dashboard in a real browser: headless Chromium loads the page of a running job; the graph must show
//! every node, with non-zero rates that move between two loads; a screenshot is saved under
//! `target/test-artifacts/`. Chromium is Debian's `chromium` package, installed by `.ci/install-chromium`;
//! without it this test fails (it does not skip).
mod http_support;
use http_support::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn chromium() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .collect();
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "headless Chromium is required by the dashboard test and was not found at /usr/bin/chromium: \
             run `bash .ci/install-chromium` (installs Debian's `chromium` package; .ci/run does this), \
             or point CHROMIUM at a Chromium binary"
        )
    })
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its stdout. Bounded: killed after 60 s.
fn browse(url: &str, extra: &[&str]) -> String {
    let profile = temp_dir("chromium-profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,900", "--virtual-time-budget=5000"])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().expect("poll chromium") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium did not finish within 60 s on {url}");
    };
    let out = reader.join().expect("stdout reader");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium failed ({status}) on {url}");
    out
}

/// The `data-*` attributes of every `<g class="node">` of the graph, by node name.
fn graph_nodes(dom: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut nodes = BTreeMap::new();
    for part in dom.split("<g class=\"node\"").skip(1) {
        let tag = &part[..part.find('>').unwrap_or(part.len())];
        let mut attrs = BTreeMap::new();
        for piece in tag.split("\" ") {
            if let Some((k, v)) = piece.trim().split_once("=\"") {
                attrs.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        if let Some(name) = attrs.get("data-node").cloned() {
            nodes.insert(name, attrs);
        }
    }
    nodes
}

fn number(attrs: &BTreeMap<String, String>, key: &str) -> f64 {
    attrs.get(key).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[test]
fn the_dashboard_shows_every_node_with_moving_rates() {
    let browser = chromium();
    assert!(browser.is_file());
    let dir = temp_dir("dashboard");
    let file = job_file(
        &dir,
        "name: dashboard\nparallelism: 2\nsources:\n  bids: { type: generator, config: { kind: bids, rate: 5000 } }\n\
         operators:\n  hot: { type: filter, inputs: [bids], config: { where: \"auction % 3 <> 0\" } }\n\
         \x20 by_auction: { type: key_by, inputs: [hot], config: { key: [auction] } }\n\
         \x20 per_auction: { type: aggregate, inputs: [by_auction], config: { emit: { n: \"count(*)\" } } }\n\
         sinks:\n  out: { type: blackhole, inputs: [per_auction] }\n",
    );
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0"], &[]);
    let j = job.until_state("running", None);
    let nodes: Vec<(String, String, bool)> = j["logical"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["name"].as_str().unwrap().into(), n["kind"].as_str().unwrap().into(), n["routing"] == true))
        .collect();
    assert_eq!(nodes.len(), 5);
    job.until("non-zero rates at every node", |j| {
        let m = j.json("api/v1/job/metrics", None);
        m["nodes"]
            .as_array()?
            .iter()
            .all(|n| {
                n["records_in_per_second"].as_f64().unwrap_or(0.0) + n["records_out_per_second"].as_f64().unwrap_or(0.0)
                    > 0.0
            })
            .then_some(())
    });

    let page = format!("{}/", job.url);
    let first = graph_nodes(&browse(&page, &["--dump-dom"]));
    for (name, kind, routing) in &nodes {
        let attrs = first.get(name).unwrap_or_else(|| panic!("node {name} missing from the graph: {first:?}"));
        if *routing {
            continue;
        }
        if kind != "sink" {
            assert!(number(attrs, "data-rate-out") > 0.0, "{name} has an output rate: {attrs:?}");
        }
        if kind != "source" {
            assert!(number(attrs, "data-rate-in") > 0.0, "{name} has an input rate: {attrs:?}");
        }
    }
    let before = number(&first["bids"], "data-records-out");
    job.until("more records", |j| {
        let m = j.json("api/v1/job/metrics", None);
        (node(&m, "bids")["records_out"].as_f64()? > before).then_some(())
    });
    let second = graph_nodes(&browse(&page, &["--dump-dom"]));
    assert!(number(&second["bids"], "data-records-out") > before, "the figures move: {first:?} then {second:?}");
    assert!(number(&second["out"], "data-rate-in") > 0.0);

    let shot = artifacts().join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(&page, &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());
    eprintln!("dashboard screenshot: {}", shot.display());

    assert_eq!(job.post("api/v1/job/cancel", None).status, 202);
    let (status, stderr) = job.wait();
    assert!(!status.success() && stderr.contains("cancelled"), "{stderr}");
}
