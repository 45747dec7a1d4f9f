//! A one-line progress display for bounded jobs run from a terminal: records read by the sources, their
//! rate, and, when every source subtask knows its input size, a bar, the percentage and an ETA. It
//! redraws a `\r` line on stderr four times a second and erases it when dropped.
use eddy_actors::coordinator::JobHandle;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running display; dropping it stops and erases it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing the progress of `job` on stderr.
    pub fn start(job: JobHandle) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("eddy-progress".into())
            .spawn(move || {
                let sources: Vec<String> = job
                    .status()
                    .graph
                    .vertices
                    .iter()
                    .filter(|v| v.bounded.is_some())
                    .filter_map(|v| v.nodes.first().cloned())
                    .collect();
                let started = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let snap = job.metrics().snapshot();
                    let (mut records, mut done, mut total) = (0u64, 0u64, Some(0u64));
                    for n in snap.nodes.iter().filter(|n| sources.contains(&n.node)) {
                        let t = n.total();
                        records += t.records_out;
                        done += t.progress_done;
                        total = total.zip(t.progress_total).map(|(a, b)| a + b);
                    }
                    let line = render(records, done, total.filter(|&t| t > 0), started.elapsed());
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
            })
            .ok();
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn human(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2}G", n / 1e9),
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

/// The progress line: `[#####.....]  45%  1.20M records  300.0k/s  ETA 4s`, or without a known size
/// `1.20M records  300.0k/s  3.1s`.
fn render(records: u64, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = records as f64 / secs;
    match total {
        Some(total) => {
            let f = (done as f64 / total as f64).clamp(0.0, 1.0);
            let width = 24;
            let filled = (f * width as f64).round() as usize;
            let eta = if f > 0.0 { format!("ETA {:.0}s", secs * (1.0 - f) / f) } else { "ETA -".into() };
            format!(
                "[{}{}] {:>3.0}%  {} records  {}/s  {eta}",
                "#".repeat(filled),
                ".".repeat(width - filled),
                f * 100.0,
                human(records as f64),
                human(rate)
            )
        }
        None => format!("{} records  {}/s  {secs:.1}s", human(records as f64), human(rate)),
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use std::time::Duration;

    #[test]
    fn lines_show_percentage_and_eta_when_the_size_is_known() {
        let l = render(500, 50, Some(200), Duration::from_secs(2));
        assert!(l.starts_with("[######..................]  25%  500 records  250/s  ETA 6s"), "{l}");
        let l = render(1_500_000, 0, None, Duration::from_secs(1));
        assert_eq!(l, "1.50M records  1.50M/s  1.0s");
    }
}
