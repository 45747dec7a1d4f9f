//! The web server of `eddy run` against real jobs: every endpoint, exact metric values, the token on a
//! non-loopback listener, cancel and stop, the client subcommands, and JSON logs. Every job listens on an
//! ephemeral port, so the tests run in parallel.
mod http_support;
use http_support::*;
use serde_json::Value;
use std::collections::BTreeSet;

const BIDS: &str = "examples/data/bids.csv";
const BID_SCHEMA: &str =
    "{ auction: int, bidder: int, price: int, channel: string, url: string, date_time: timestamp_ms, extra: string }";

/// An unbounded, rate-limited job: it runs until cancelled or stopped.
fn endless(name: &str) -> String {
    format!(
        "name: {name}\nparallelism: 2\nsources:\n  gen: {{ type: generator, config: {{ kind: sequence, rate: 4000 }} }}\n\
         operators:\n  evens: {{ type: filter, inputs: [gen], config: {{ where: \"id % 2 = 0\" }} }}\n\
         sinks:\n  out: {{ type: blackhole, inputs: [evens] }}\n"
    )
}

fn auctions() -> Vec<i64> {
    std::fs::read_to_string(BIDS)
        .expect("bids")
        .lines()
        .map(|l| l.split(',').next().and_then(|a| a.parse().ok()).expect("auction"))
        .collect()
}

#[test]
fn every_endpoint_answers_while_a_job_runs_and_cancel_ends_it() {
    let dir = temp_dir("endpoints");
    let file = job_file(&dir, &endless("endless"));
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0"], &[]);

    let j = job.until_state("running", None);
    assert_eq!(j["name"], "endless");
    assert_eq!(j["bounded"], false);
    assert_eq!(j["tasks"], 2, "one chain of parallelism 2");
    assert!(j["start_time"].as_u64().is_some(), "{j}");
    let names: Vec<&str> =
        j["logical"]["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gen", "evens", "out"]);
    assert_eq!(j["physical"]["vertices"][0]["nodes"], serde_json::json!(["gen", "evens", "out"]), "chained");

    // Rates need two samples; then the source produces about 4000 records/s.
    let m = job.until("non-zero rates", |j| {
        let m = j.json("api/v1/job/metrics", None);
        (node(&m, "gen")["records_out_per_second"].as_f64().unwrap_or(0.0) > 0.0).then_some(m)
    });
    let gen = node(&m, "gen");
    assert_eq!(gen["parallelism"], 2);
    assert_eq!(gen["subtasks"].as_array().unwrap().len(), 2);
    let sum: u64 = gen["subtasks"].as_array().unwrap().iter().map(|s| s["records_out"].as_u64().unwrap()).sum();
    assert_eq!(Some(sum), gen["records_out"].as_u64(), "totals are sums of subtasks: {gen}");
    assert!(m["rate_window_ms"].as_f64().unwrap() > 0.0);
    let evens = node(&m, "evens");
    assert!(evens["records_in"].as_u64().unwrap() >= evens["records_out"].as_u64().unwrap());

    let jobs = job.json("api/v1/jobs", None);
    assert_eq!(jobs["jobs"][0]["id"], j["id"]);
    assert_eq!(jobs["jobs"][0]["state"], "running");

    let h = job.until("history points", |j| {
        let h = j.json("api/v1/job/history", None);
        (!h["times"].as_array().unwrap().is_empty()).then_some(h)
    });
    assert_eq!(h["capacity"], 300);
    assert_eq!(h["interval_ms"], 1000.0);
    let points = h["times"].as_array().unwrap().len();
    assert_eq!(h["nodes"]["gen"]["records_out_per_second"].as_array().unwrap().len(), points);

    let c = job.json("api/v1/job/checkpoints", None);
    assert_eq!(c["available"], false);
    assert!(c["message"].as_str().unwrap().contains("without checkpoints"));
    assert!(c["latest_completed"].is_null());

    let x = job.json("api/v1/job/exceptions", None);
    assert_eq!(x["restarts"], 0);
    assert_eq!(x["failures"], serde_json::json!([]));

    let prom = job.get("metrics", None);
    assert_eq!(prom.status, 200);
    assert!(prom.header("content-type").unwrap_or_default().starts_with("text/plain; version=0.0.4"));
    for series in [
        "eddy_records_out_total{job=\"endless\",node=\"gen\",subtask=\"0\"}",
        "eddy_records_in_total{job=\"endless\",node=\"out\",subtask=\"1\"}",
        "eddy_busy_seconds_total{job=\"endless\",node=\"evens\",subtask=\"0\"}",
        "eddy_job_state{job=\"endless\",state=\"running\"} 1",
        "# TYPE eddy_records_in_total counter",
    ] {
        assert!(prom.body.contains(series), "{series} in\n{}", prom.body);
    }

    let page = job.get("", None);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    assert!(page.body.contains("api/v1/job/metrics"), "the dashboard polls the API");

    // The OpenAPI document describes exactly what is served: every GET path answers.
    let doc = job.json("api/openapi.json", None);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for (path, ops) in paths {
        if ops.get("get").is_some() {
            let r = job.get(path, None);
            // This job has no `checkpoints:`: savepoints are refused with a conflict that says why.
            let expected = if path.ends_with("savepoints") { 409 } else { 200 };
            assert_eq!(r.status, expected, "GET {path}: {}", r.body);
        }
    }
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    for p in ["/api/v1/job/cancel", "/api/v1/job/stop", "/api/v1/job/savepoints", "/metrics", "/"] {
        assert!(documented.contains(p), "{p} is documented");
    }

    let sp = job.post("api/v1/job/savepoints", None);
    assert_eq!(sp.status, 409);
    assert!(sp.json().unwrap()["error"].as_str().unwrap().contains("add a `checkpoints:` section"));
    let missing = job.get("api/v1/nope", None);
    assert_eq!(missing.status, 404);
    assert!(missing.json().unwrap()["error"].is_string());
    assert_eq!(job.get("api/v1/job/cancel", None).status, 404, "actions need POST");

    let r = job.post("api/v1/job/cancel", None);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json().unwrap()["state"], "cancelling");
    let (status, stderr) = job.wait();
    assert!(!status.success(), "a cancelled job fails: {stderr}");
    assert!(stderr.contains("error: job `endless` cancelled"), "{stderr}");
}

#[test]
fn final_metrics_match_the_input_sizes_and_the_cli_talks_to_the_job() {
    let all = auctions();
    let big: Vec<i64> = all.iter().copied().filter(|a| a % 123 == 0).collect();
    let distinct: BTreeSet<i64> = big.iter().copied().collect();
    assert!(!big.is_empty());
    let dir = temp_dir("final");
    let yaml = format!(
        "name: counted\nparallelism: 2\nsources:\n  bids: {{ type: file, config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }} }}\n\
         operators:\n  euros: {{ type: map, inputs: [bids], config: {{ set: {{ price: \"price * 0.908\" }} }} }}\n\
         \x20 big: {{ type: filter, inputs: [euros], config: {{ where: \"auction % 123 = 0\" }} }}\n\
         \x20 by_auction: {{ type: key_by, inputs: [big], config: {{ key: [auction] }} }}\n\
         \x20 per_auction: {{ type: aggregate, inputs: [by_auction], config: {{ emit: {{ n: \"count(*)\" }}, mode: final }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [per_auction], parallelism: 1, config: {{ path: {} }} }}\n",
        dir.join("out.jsonl").display()
    );
    let file = job_file(&dir, &yaml);
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0", "--linger"], &[]);
    let j = job.until_state("finished", None);
    assert_eq!(j["lingering"], true);
    assert!(j["end_time"].as_u64() >= j["start_time"].as_u64());
    let routing: Vec<&str> = j["logical"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["routing"] == true)
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(routing, ["by_auction"]);

    let m = job.json("api/v1/job/metrics", None);
    let expect = [
        ("bids", 0, all.len()),
        ("euros", all.len(), all.len()),
        ("big", all.len(), big.len()),
        ("per_auction", big.len(), distinct.len()),
        ("out", distinct.len(), distinct.len()),
    ];
    for (name, records_in, records_out) in expect {
        let n = node(&m, name);
        assert_eq!(n["records_in"].as_u64(), Some(records_in as u64), "{name} in: {n}");
        assert_eq!(n["records_out"].as_u64(), Some(records_out as u64), "{name} out: {n}");
        let subs: u64 = n["subtasks"].as_array().unwrap().iter().map(|s| s["records_out"].as_u64().unwrap()).sum();
        assert_eq!(subs, records_out as u64, "{name}: subtasks add up");
    }
    assert!(m["nodes"].as_array().unwrap().iter().all(|n| n["node"] != "by_auction"), "routing nodes have no task");

    // Prometheus reports the same figures.
    let prom = job.get("metrics", None).body;
    let total = |family: &str, node: &str| -> u64 {
        prom.lines()
            .filter(|l| l.starts_with(&format!("{family}{{job=\"counted\",node=\"{node}\",")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(total("eddy_records_out_total", "bids"), all.len() as u64);
    assert_eq!(total("eddy_records_in_total", "out"), distinct.len() as u64);
    assert!(prom.contains("eddy_job_state{job=\"counted\",state=\"finished\"} 1"));

    // The client subcommands.
    let list = eddy().args(["list", "--url", &job.url]).output().unwrap();
    let out = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(out.lines().next().unwrap().starts_with("ID"), "{out}");
    assert!(out.contains("counted") && out.contains("finished"), "{out}");
    let sp = eddy().args(["savepoint", "--url", &job.url]).output().unwrap();
    assert_eq!(sp.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&sp.stderr).contains("`checkpoints:` section"),
        "{}",
        String::from_utf8_lossy(&sp.stderr)
    );
    let cancel = eddy().args(["cancel", "--url", "http://127.0.0.1:1"]).output().unwrap();
    assert_eq!(cancel.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cancel.stderr).contains("cannot reach"));

    // `eddy stop` releases the lingering process, which exits with the job's own result.
    let stop = eddy().args(["stop", "--url", &job.url]).output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    assert!(String::from_utf8_lossy(&stop.stdout).contains("had already finished"));
    let (status, stderr) = job.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("job `counted` finished in"), "{stderr}");
    assert!(!stderr.contains('\r'), "no progress line when stderr is not a terminal");
}

#[test]
fn a_public_listener_needs_the_token_and_unauthorised_requests_do_nothing() {
    let dir = temp_dir("token");
    let file = job_file(&dir, &endless("guarded"));
    let token = "s3cret-token";
    let mut job = RunningJob::start(&file, &["--listen", "0.0.0.0:0"], &[("EDDY_TOKEN", token)]);
    job.until_state("running", Some(token));

    let paths = [
        "",
        "metrics",
        "api/openapi.json",
        "api/v1/jobs",
        "api/v1/job",
        "api/v1/job/metrics",
        "api/v1/job/history",
        "api/v1/job/checkpoints",
        "api/v1/job/exceptions",
        "api/v1/job/savepoints",
        "api/v1/nope",
    ];
    for path in paths {
        for bad in [None, Some("wrong"), Some("s3cret-toke"), Some("s3cret-token2")] {
            let r = job.get(path, bad);
            assert_eq!(r.status, 401, "GET /{path} with {bad:?}: {}", r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"eddy\""));
        }
    }
    for path in ["api/v1/job/cancel", "api/v1/job/stop", "api/v1/job/savepoints"] {
        assert_eq!(job.post(path, None).status, 401, "POST /{path}");
        assert_eq!(job.post(path, Some("wrong")).status, 401, "POST /{path}");
    }
    // Nothing happened: the job still runs and still produces.
    let before = node(&job.json("api/v1/job/metrics", Some(token)), "gen")["records_out"].as_u64().unwrap();
    job.until("more records after the refused actions", |j| {
        let m = j.json("api/v1/job/metrics", Some(token));
        (node(&m, "gen")["records_out"].as_u64().unwrap() > before).then_some(())
    });
    assert_eq!(job.json("api/v1/job", Some(token))["state"], "running");
    // The dashboard opens with the token in the query (browsers cannot set headers on navigation).
    assert_eq!(job.get(&format!("?token={token}"), None).status, 200);
    assert_eq!(job.get("api/v1/job?token=wrong", None).status, 401);

    let list = eddy().args(["list", "--url", &job.url]).output().unwrap();
    assert_eq!(list.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&list.stderr).contains("missing or wrong bearer token (401)"));
    let list = eddy().args(["list", "--url", &job.url]).env("EDDY_TOKEN", token).output().unwrap();
    assert!(list.status.success());
    let cancel = eddy().args(["cancel", "--url", &job.url, "--token", token]).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    assert!(String::from_utf8_lossy(&cancel.stdout).contains("job `guarded`"));
    let (status, stderr) = job.wait();
    assert!(!status.success());
    assert!(stderr.contains("cancelled"), "{stderr}");
}

#[test]
fn a_public_listener_without_a_token_is_refused() {
    let dir = temp_dir("notoken");
    let file = job_file(&dir, &endless("open"));
    let out = eddy().args(["run", file.to_str().unwrap(), "--listen", "0.0.0.0:0"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0") && stderr.contains("EDDY_TOKEN"), "{stderr}");
    let out = eddy().args(["run", file.to_str().unwrap(), "--listen", "not-an-address"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot use `not-an-address`"));
}

#[test]
fn stop_ends_an_unbounded_job_successfully() {
    let dir = temp_dir("stop");
    let file = job_file(&dir, &endless("stoppable"));
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0"], &[]);
    job.until_state("running", None);
    job.until("records", |j| {
        let m = j.json("api/v1/job/metrics", None);
        (node(&m, "out")["records_in"].as_u64().unwrap() > 0).then_some(())
    });
    let r = job.post("api/v1/job/stop", None);
    assert_eq!(r.status, 202, "{}", r.body);
    let body: Value = r.json().unwrap();
    assert_eq!(body["state"], "stopping");
    assert!(body["note"].as_str().unwrap().contains("?savepoint=true"));
    let (status, stderr) = job.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("job `stoppable` stopped after"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = temp_dir("jsonlogs");
    let yaml = format!(
        "name: logged\nsources:\n  bids: {{ type: file, config: {{ path: {BIDS}, format: csv, schema: {BID_SCHEMA} }} }}\n\
         sinks:\n  out: {{ type: blackhole, inputs: [bids] }}\n"
    );
    let file = job_file(&dir, &yaml);
    let out = eddy()
        .args(["run", file.to_str().unwrap(), "--no-http", "--log-format", "json"])
        .env("EDDY_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("web UI on"), "--no-http: {stderr}");
    let logs: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let deployed = logs.iter().find(|l| l["fields"]["message"] == "job deployed").expect("a `job deployed` event");
    assert_eq!(deployed["level"], "INFO");
    assert_eq!(deployed["span"]["job"], "logged");
    assert!(stderr.lines().any(|l| l.starts_with("job `logged` finished in")), "{stderr}");
}

#[test]
fn a_bounded_job_shows_progress_on_a_terminal_only() {
    let dir = temp_dir("progress");
    let yaml =
        "name: progress\nsources:\n  gen: { type: generator, config: { kind: sequence, count: 3000, rate: 3000 } }\n\
                sinks:\n  out: { type: blackhole, inputs: [gen] }\n";
    let file = job_file(&dir, yaml);
    // `script` (util-linux, in every Debian) gives the job a pseudo-terminal.
    let cmd = format!("{} run {} --no-http", env!("CARGO_BIN_EXE_eddy"), file.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("EDDY_TOKEN")
        .output()
        .expect("run `script` (util-linux) for a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\r\x1b[2K") && text.contains(" records "), "a progress line: {text:?}");
    assert!(text.contains("job `progress` finished in"), "{text}");
    // Without a terminal (the other tests), stderr has no progress line: see
    // final_metrics_match_the_input_sizes_and_the_cli_talks_to_the_job.
}

/// A bounded, rate-limited job with checkpoints: 6000 sequence records at 20000/s (0.3 s), counted per
/// key into an exactly-once file sink.
fn checkpointed(dir: &std::path::Path, name: &str) -> String {
    format!(
        "name: {name}\n\
         checkpoints: {{ interval: 50ms, storage: \"file://{chk}\" }}\n\
         sources:\n  seq: {{ type: generator, config: {{ kind: sequence, count: 6000, keys: 50, rate: 20000 }} }}\n\
         operators:\n  counts: {{ type: aggregate, inputs: [seq], config: {{ key_by: [key], mode: final, emit: {{ n: \"count(*)\", total: \"sum(value)\" }} }} }}\n\
         sinks:\n  out: {{ type: file, inputs: [counts], config: {{ path: {out} }} }}\n",
        chk = dir.join("chk").display(),
        out = dir.join("out").display(),
    )
}

fn committed(dir: &std::path::Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_dir(dir.join("out"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
                .flat_map(|e| std::fs::read_to_string(e.path()).unwrap().lines().map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    lines
}

#[test]
fn stop_with_a_savepoint_through_the_api_and_restore_it() {
    let clean = temp_dir("sp-clean");
    let out =
        eddy().args(["run", "--no-http", "-q"]).arg(job_file(&clean, &checkpointed(&clean, "sp"))).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = committed(&clean);
    assert_eq!(expected.len(), 50);

    let dir = temp_dir("sp");
    let file = job_file(&dir, &checkpointed(&dir, "sp"));
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0"], &[]);
    job.until_state("running", None);
    job.until("records", |j| {
        let m = j.json("api/v1/job/metrics", None);
        (node(&m, "seq")["records_out"].as_u64().unwrap() > 500).then_some(())
    });
    let stop = eddy().args(["stop", "--savepoint", "--url", &job.url]).output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let (status, stderr) = job.wait();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped after"), "{stderr}");
    assert!(committed(&dir).len() < 50, "the job stopped before its end: only final counts of a finished run are 50");
    let savepoint = std::fs::read_dir(dir.join("chk"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|n| n.starts_with("savepoint-"))
        .expect("a savepoint directory");
    let listing = eddy().args(["checkpoints"]).arg(dir.join("chk")).output().unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("savepoint"), "{listing:?}");
    let resumed = eddy().args(["run", "--no-http", "-q", "--restore", &savepoint]).arg(&file).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(committed(&dir), expected, "resumed from the savepoint: the same result as an uninterrupted run");
}

#[test]
fn a_savepoint_to_a_directory_of_its_own_restores_from_there() {
    let clean = temp_dir("spdir-clean");
    let out =
        eddy().args(["run", "--no-http", "-q"]).arg(job_file(&clean, &checkpointed(&clean, "spdir"))).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = committed(&clean);

    let dir = temp_dir("spdir");
    let file = job_file(&dir, &checkpointed(&dir, "spdir"));
    let mut job = RunningJob::start(&file, &["--listen", "127.0.0.1:0"], &[]);
    job.until_state("running", None);
    job.until("records", |j| {
        let m = j.json("api/v1/job/metrics", None);
        (node(&m, "seq")["records_out"].as_u64().unwrap() > 500).then_some(())
    });
    // A savepoint while running, to one directory; then stop with another savepoint, to a second one.
    let (first, last) = (dir.join("savepoints"), dir.join("final"));
    let sp = eddy().args(["savepoint", "--url", &job.url, "--dir"]).arg(&first).output().unwrap();
    let printed = String::from_utf8_lossy(&sp.stdout).to_string();
    assert!(sp.status.success(), "{}", String::from_utf8_lossy(&sp.stderr));
    assert!(printed.contains(&format!("file://{}/savepoint-", first.display())), "{printed}");
    let bad = eddy().args(["savepoint", "--url", &job.url, "--dir", "nosuch://x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuch://x"), "{bad:?}");
    let stop = eddy().args(["stop", "--savepoint", "--url", &job.url, "--dir"]).arg(&last).output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let (status, stderr) = job.wait();
    assert!(status.success(), "{stderr}");

    let savepoints = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.path()).filter(|p| p.join("_metadata").is_file()).collect())
            .unwrap_or_default()
    };
    assert_eq!(savepoints(&first).len(), 1, "the first savepoint is complete in its own directory");
    let stopped_at = savepoints(&last);
    assert_eq!(stopped_at.len(), 1, "the stop's savepoint is complete in its own directory");
    let in_storage = std::fs::read_dir(dir.join("chk")).unwrap().flatten();
    assert!(
        !in_storage.map(|e| e.file_name().to_string_lossy().to_string()).any(|n| n.starts_with("savepoint-")),
        "nothing of the savepoints is in the job's checkpoint storage"
    );
    let resumed = eddy().args(["run", "--no-http", "-q", "--restore"]).arg(&stopped_at[0]).arg(&file).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(committed(&dir), expected, "resumed from the savepoint: the same result as an uninterrupted run");
}
