//! The routes: the dashboard, the JSON API under `/api/v1`, its OpenAPI document, and `/metrics`.
//!
//! Counts come from a live snapshot at request time (exact); rates and time shares from the last two
//! samples of the history (so they lag by up to one sample interval).
use super::history::{node_rates, rates, Rates};
use super::{prometheus, AppState};
use crate::checkpoint::OpendalStore;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use eddy_actors::coordinator::{now_ms, ControlError, JobState, JobStatus, SavepointTarget};
use eddy_actors::metrics::SubtaskSnapshot;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const DASHBOARD: &str = include_str!("assets/dashboard.html");
const OPENAPI: &str = include_str!("assets/openapi.json");
const NO_CHECKPOINTS: &str = "this job runs without checkpoints: add a `checkpoints:` section to the job file";

type Data = web::Data<AppState>;

/// Registers every route.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/metrics", web::get().to(metrics_text))
        .route("/api/openapi.json", web::get().to(openapi))
        .route("/api/v1/jobs", web::get().to(jobs))
        .route("/api/v1/job", web::get().to(job))
        .route("/api/v1/job/metrics", web::get().to(metrics))
        .route("/api/v1/job/history", web::get().to(history))
        .route("/api/v1/job/checkpoints", web::get().to(checkpoints))
        .route("/api/v1/job/exceptions", web::get().to(exceptions))
        .route("/api/v1/job/cancel", web::post().to(cancel))
        .route("/api/v1/job/stop", web::post().to(stop))
        .route("/api/v1/job/savepoints", web::get().to(savepoints))
        .route("/api/v1/job/savepoints", web::post().to(trigger_savepoint))
        .default_service(web::to(not_found));
}

fn json_response(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status).insert_header(("Cache-Control", "no-store")).json(body)
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, json!({ "error": message }))
}

async fn not_found() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "no such endpoint: see /api/openapi.json")
}

async fn dashboard() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(DASHBOARD)
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

async fn metrics_text(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(prometheus::render(&state))
}

fn duration_ms(s: &JobStatus) -> Option<u64> {
    let start = s.started_ms?;
    Some(s.ended_ms.unwrap_or_else(now_ms).saturating_sub(start))
}

fn job_summary(s: &JobStatus) -> Value {
    json!({
        "id": s.id,
        "name": s.job,
        "state": s.state.as_str(),
        "start_time": s.started_ms,
        "end_time": s.ended_ms,
        "duration_ms": duration_ms(s),
        "tasks": s.graph.tasks(),
    })
}

async fn jobs(state: Data) -> HttpResponse {
    json_response(StatusCode::OK, json!({ "jobs": [job_summary(&state.job.status())] }))
}

async fn job(state: Data) -> HttpResponse {
    let s = state.job.status();
    let g = &s.graph;
    let mut body = job_summary(&s);
    let extra = json!({
        "created_time": s.created_ms,
        "message": s.message,
        "bounded": g.bounded(),
        "parallelism": g.vertices.iter().map(|v| v.parallelism).max().unwrap_or(0),
        "max_parallelism": g.max_parallelism,
        "restarts": s.restarts,
        "failures": s.failures.len(),
        "lingering": state.options.linger && s.state.is_terminal(),
        "settings": {
            "batch_size": g.batch_size,
            "buffer_timeout_ms": g.buffer_timeout.as_secs_f64() * 1e3,
            "channel_capacity": g.channel_capacity,
            "threads": g.threads,
        },
        "logical": {
            "nodes": state.logical.iter().map(|n| json!({
                "name": n.name,
                "kind": n.kind,
                "type": n.type_name,
                "parallelism": n.parallelism,
                "inputs": n.inputs,
                "routing": n.routing,
                "vertex": n.vertex,
            })).collect::<Vec<_>>(),
        },
        "physical": {
            "vertices": g.vertices.iter().map(|v| json!({
                "id": v.id,
                "name": v.name,
                "nodes": v.nodes,
                "parallelism": v.parallelism,
                "bounded": v.bounded,
            })).collect::<Vec<_>>(),
            "edges": g.edges.iter().map(|e| json!({
                "from": e.from,
                "to": e.to,
                "partitioning": e.partitioning,
            })).collect::<Vec<_>>(),
        },
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    json_response(StatusCode::OK, body)
}

fn counters(c: &SubtaskSnapshot, now: u64) -> Map<String, Value> {
    let lag = |wm: Option<i64>| wm.map(|w| (now as i64).saturating_sub(w));
    let v = json!({
        "records_in": c.records_in,
        "records_out": c.records_out,
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
        "backpressure_waits": c.backpressure_waits,
        "records_skipped": c.records_skipped,
        "busy_ns": c.busy_ns,
        "idle_ns": c.idle_ns,
        "backpressured_ns": c.backpressured_ns,
        "input_watermark": c.input_watermark,
        "output_watermark": c.output_watermark,
        "watermark_lag_ms": lag(c.input_watermark.or(c.output_watermark)),
        "late_records_dropped": c.late_records_dropped,
        "late_records_side_output": c.late_records_side_output,
        "restarts": c.restarts,
        "progress_done": c.progress_done,
        "progress_total": c.progress_total,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn add_rates(m: &mut Map<String, Value>, r: Option<&Rates>) {
    let f = |x: fn(&Rates) -> f64| r.map(x);
    m.insert("records_in_per_second".into(), json!(f(|r| r.records_in)));
    m.insert("records_out_per_second".into(), json!(f(|r| r.records_out)));
    m.insert("bytes_in_per_second".into(), json!(f(|r| r.bytes_in)));
    m.insert("bytes_out_per_second".into(), json!(f(|r| r.bytes_out)));
    m.insert("backpressure_waits_per_second".into(), json!(f(|r| r.backpressure_waits)));
    m.insert("busy_share".into(), json!(f(|r| r.busy)));
    m.insert("idle_share".into(), json!(f(|r| r.idle)));
    m.insert("backpressured_share".into(), json!(f(|r| r.backpressured)));
}

async fn metrics(state: Data) -> HttpResponse {
    let status = state.job.status();
    let snap = state.job.metrics().snapshot();
    let now = now_ms();
    let (window, per_node) = {
        let h = state.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match h.last_two() {
            Some((a, b)) => {
                let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
                (Some(secs * 1e3), rates(&status.graph, a, b))
            }
            None => (None, Vec::new()),
        }
    };
    let nodes: Vec<Value> = snap
        .nodes
        .iter()
        .map(|n| {
            let sub_rates = per_node.iter().find(|(name, _)| *name == n.node).map(|(_, r)| r.as_slice());
            let mut m = Map::new();
            m.insert("node".into(), json!(n.node));
            m.insert("vertex".into(), json!(status.graph.vertex_of(&n.node).map(|v| v.id)));
            m.insert("parallelism".into(), json!(n.subtasks.len()));
            m.extend(counters(&n.total(), now));
            add_rates(&mut m, sub_rates.map(node_rates).as_ref());
            let subtasks: Vec<Value> = n
                .subtasks
                .iter()
                .map(|s| {
                    let mut sm = Map::new();
                    sm.insert("subtask".into(), json!(s.subtask));
                    sm.extend(counters(s, now));
                    add_rates(&mut sm, sub_rates.and_then(|r| r.get(s.subtask)));
                    Value::Object(sm)
                })
                .collect();
            m.insert("subtasks".into(), Value::Array(subtasks));
            Value::Object(m)
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "job": status.job,
            "state": status.state.as_str(),
            "time": now,
            "rate_window_ms": window,
            "nodes": nodes,
        }),
    )
}

async fn history(state: Data) -> HttpResponse {
    let h = state.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let times: Vec<u64> = h.points().map(|p| p.time_ms).collect();
    let series: Map<String, Value> = h
        .node_names()
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let pick =
                |f: fn(&Rates) -> f64| -> Vec<f64> { h.points().map(|p| p.nodes.get(i).map_or(0.0, f)).collect() };
            let v = json!({
                "records_in_per_second": pick(|r| r.records_in),
                "records_out_per_second": pick(|r| r.records_out),
                "backpressured_share": pick(|r| r.backpressured),
            });
            (node.clone(), v)
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "job": state.job.status().job,
            "interval_ms": state.options.sample_interval.as_secs_f64() * 1e3,
            "capacity": state.options.history,
            "times": times,
            "nodes": series,
        }),
    )
}

fn completed_json(c: &Option<eddy_actors::coordinator::CompletedCheckpoint>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "id": c.id,
            "location": c.location,
            "size_bytes": c.size,
            "duration_ms": c.duration_ms,
            "completed_at": c.time_ms,
        }),
    }
}

async fn checkpoints(state: Data) -> HttpResponse {
    let s = state.job.status();
    let c = &s.checkpoints;
    json_response(
        StatusCode::OK,
        json!({
            "job": s.job,
            "available": c.enabled,
            "message": if c.enabled { Value::Null } else { json!(NO_CHECKPOINTS) },
            "counts": { "completed": c.completed, "failed": c.failed, "in_progress": c.in_progress },
            "latest_completed": completed_json(&c.latest),
            "latest_savepoint": completed_json(&c.latest_savepoint),
            "restored_from": c.restored_from,
            "last_failure": c.last_failure,
        }),
    )
}

async fn exceptions(state: Data) -> HttpResponse {
    let s = state.job.status();
    let failures: Vec<Value> = s
        .failures
        .iter()
        .map(|f| {
            json!({
                "time": f.time_ms,
                "node": f.node,
                "subtask": f.subtask,
                "message": f.message,
                "restarted": f.restarted,
            })
        })
        .collect();
    let recoveries: Vec<Value> = s
        .recoveries
        .iter()
        .map(|r| {
            json!({
                "attempt": r.attempt,
                "failed_at": r.failed_ms,
                "node": r.node,
                "subtask": r.subtask,
                "cause": r.cause,
                "tasks_restarted": r.tasks,
                "checkpoint_restored": r.checkpoint,
                "recovered_after_ms": r.recovered_after_ms,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "job": s.job, "restarts": s.restarts, "failures": failures, "recoveries": recoveries }),
    )
}

fn control(state: &Data, result: Result<JobState, ControlError>, extra: Value) -> HttpResponse {
    let mut body = match result {
        Ok(next) => json!({ "state": next.as_str() }),
        Err(ControlError::NotRunning(st)) if st.is_terminal() && state.release() => {
            json!({ "state": st.as_str(), "released": true })
        }
        Err(e @ ControlError::NotRunning(_)) => return error(StatusCode::CONFLICT, &e.to_string()),
        Err(e @ ControlError::Unreachable) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(e @ ControlError::NoCheckpoints) => return error(StatusCode::CONFLICT, &e.to_string()),
    };
    let status = if body.get("released").is_some() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let job = state.job.status();
    if let Value::Object(b) = &mut body {
        b.insert("job".into(), json!(job.job));
        b.insert("id".into(), json!(job.id));
    }
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    json_response(status, body)
}

async fn cancel(state: Data) -> HttpResponse {
    let r = state.job.cancel();
    control(&state, r, json!({}))
}

#[derive(serde::Deserialize)]
struct StopQuery {
    #[serde(default)]
    savepoint: bool,
    /// Where the savepoint goes instead of the job's checkpoint storage.
    #[serde(default)]
    dir: Option<String>,
}

#[derive(serde::Deserialize)]
struct SavepointQuery {
    /// Where the savepoint goes instead of the job's checkpoint storage.
    #[serde(default)]
    dir: Option<String>,
}

/// Opens `?dir=URL`: a storage URL (`file:///path`, `s3://bucket/prefix`) or a path.
fn savepoint_target(dir: Option<&str>) -> Result<Option<SavepointTarget>, String> {
    let Some(dir) = dir.filter(|d| !d.is_empty()) else { return Ok(None) };
    match OpendalStore::open(dir) {
        Ok(store) => Ok(Some(SavepointTarget(Arc::new(store)))),
        Err(e) => Err(format!("dir `{dir}`: {e}")),
    }
}

async fn stop(state: Data, q: web::Query<StopQuery>) -> HttpResponse {
    if q.savepoint {
        let target = match savepoint_target(q.dir.as_deref()) {
            Ok(t) => t,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let r = state.job.stop_with_savepoint(target);
        let note = "stopping after a savepoint: GET /api/v1/job/savepoints shows it when complete";
        return control(&state, r, json!({ "note": note }));
    }
    if q.dir.is_some() {
        return error(StatusCode::BAD_REQUEST, "`dir` only applies with `savepoint=true`");
    }
    let r = state.job.stop();
    let note = "stopping: sources end their input and the job drains (use ?savepoint=true to resume later)";
    control(&state, r, json!({ "note": note }))
}

async fn trigger_savepoint(state: Data, q: web::Query<SavepointQuery>) -> HttpResponse {
    let target = match savepoint_target(q.dir.as_deref()) {
        Ok(t) => t,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let r = state.job.savepoint(target);
    let note = "savepoint triggered: GET /api/v1/job/savepoints shows it when complete";
    control(&state, r, json!({ "note": note }))
}

async fn savepoints(state: Data) -> HttpResponse {
    let s = state.job.status();
    if !s.checkpoints.enabled {
        return error(StatusCode::CONFLICT, NO_CHECKPOINTS);
    }
    json_response(
        StatusCode::OK,
        json!({ "job": s.job, "latest_savepoint": completed_json(&s.checkpoints.latest_savepoint) }),
    )
}
