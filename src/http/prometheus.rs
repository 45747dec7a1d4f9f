//! `/metrics`: the job's figures in the Prometheus text exposition format (version 0.0.4), one series per
//! node and subtask, labelled `job`, `node` and `subtask`. Rates are left to Prometheus (`rate()`).
use super::AppState;
use eddy_actors::coordinator::{now_ms, JobState};
use eddy_actors::metrics::SubtaskSnapshot;
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&SubtaskSnapshot) -> Option<f64>,
}

const NS: f64 = 1e-9;

const FAMILIES: &[Family] = &[
    Family {
        name: "eddy_records_in_total",
        kind: "counter",
        help: "Records received.",
        value: |s| Some(s.records_in as f64),
    },
    Family {
        name: "eddy_records_out_total",
        kind: "counter",
        help: "Records emitted.",
        value: |s| Some(s.records_out as f64),
    },
    Family {
        name: "eddy_bytes_in_total",
        kind: "counter",
        help: "Bytes received.",
        value: |s| Some(s.bytes_in as f64),
    },
    Family {
        name: "eddy_bytes_out_total",
        kind: "counter",
        help: "Bytes emitted.",
        value: |s| Some(s.bytes_out as f64),
    },
    Family {
        name: "eddy_busy_seconds_total",
        kind: "counter",
        help: "Time the task spent processing.",
        value: |s| Some(s.busy_ns as f64 * NS),
    },
    Family {
        name: "eddy_idle_seconds_total",
        kind: "counter",
        help: "Time the task spent waiting for input.",
        value: |s| Some(s.idle_ns as f64 * NS),
    },
    Family {
        name: "eddy_backpressured_seconds_total",
        kind: "counter",
        help: "Time the task spent waiting for room downstream.",
        value: |s| Some(s.backpressured_ns as f64 * NS),
    },
    Family {
        name: "eddy_backpressure_waits_total",
        kind: "counter",
        help: "Times the task waited for room downstream.",
        value: |s| Some(s.backpressure_waits as f64),
    },
    Family {
        name: "eddy_records_skipped_total",
        kind: "counter",
        help: "Malformed input records skipped.",
        value: |s| Some(s.records_skipped as f64),
    },
    Family {
        name: "eddy_late_records_dropped_total",
        kind: "counter",
        help: "Records dropped for arriving behind the watermark.",
        value: |s| Some(s.late_records_dropped as f64),
    },
    Family {
        name: "eddy_late_records_side_output_total",
        kind: "counter",
        help: "Late records sent to a side output.",
        value: |s| Some(s.late_records_side_output as f64),
    },
    Family {
        name: "eddy_restarts_total",
        kind: "counter",
        help: "Restarts of the subtask.",
        value: |s| Some(s.restarts as f64),
    },
    Family {
        name: "eddy_input_watermark_milliseconds",
        kind: "gauge",
        help: "Last input watermark (event time, ms since the epoch); absent before the first.",
        value: |s| s.input_watermark.map(|w| w as f64),
    },
    Family {
        name: "eddy_output_watermark_milliseconds",
        kind: "gauge",
        help: "Last output watermark (event time, ms since the epoch); absent before the first.",
        value: |s| s.output_watermark.map(|w| w as f64),
    },
    Family {
        name: "eddy_source_progress_done",
        kind: "gauge",
        help: "Sources: units (bytes or records) of input done.",
        value: |s| Some(s.progress_done as f64),
    },
    Family {
        name: "eddy_source_progress_total",
        kind: "gauge",
        help: "Sources: units of input in total; absent when unknown.",
        value: |s| s.progress_total.map(|t| t as f64),
    },
];

/// Renders every family for every node and subtask, then the job-level series.
pub(crate) fn render(state: &AppState) -> String {
    let status = state.job.status();
    let snap = state.job.metrics().snapshot();
    let job = label(&status.job);
    let mut out = String::new();
    for f in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind);
        for n in &snap.nodes {
            let node = label(&n.node);
            for s in &n.subtasks {
                if let Some(v) = (f.value)(s) {
                    let _ = writeln!(out, "{}{{job=\"{job}\",node=\"{node}\",subtask=\"{}\"}} {v}", f.name, s.subtask);
                }
            }
        }
    }
    let _ = writeln!(out, "# HELP eddy_job_state 1 for the job's current state, 0 for the others.");
    let _ = writeln!(out, "# TYPE eddy_job_state gauge");
    for st in JobState::ALL {
        let v = u8::from(st == status.state);
        let _ = writeln!(out, "eddy_job_state{{job=\"{job}\",state=\"{}\"}} {v}", st.as_str());
    }
    let uptime = status.started_ms.map_or(0, |s| status.ended_ms.unwrap_or_else(now_ms).saturating_sub(s));
    let _ = writeln!(out, "# HELP eddy_job_uptime_seconds Time since the job's tasks were deployed (to its end).");
    let _ = writeln!(out, "# TYPE eddy_job_uptime_seconds gauge");
    let _ = writeln!(out, "eddy_job_uptime_seconds{{job=\"{job}\"}} {}", uptime as f64 / 1e3);
    let _ = writeln!(out, "# HELP eddy_job_restarts_total Restarts of the job.");
    let _ = writeln!(out, "# TYPE eddy_job_restarts_total counter");
    let _ = writeln!(out, "eddy_job_restarts_total{{job=\"{job}\"}} {}", status.restarts);
    let _ = writeln!(out, "# HELP eddy_job_failures_total Task failures.");
    let _ = writeln!(out, "# TYPE eddy_job_failures_total counter");
    let _ = writeln!(out, "eddy_job_failures_total{{job=\"{job}\"}} {}", status.failures.len());
    out
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
