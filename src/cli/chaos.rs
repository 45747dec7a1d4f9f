//! `eddy chaos FILE`: run a bounded job clean and under injected faults, print the report, and exit 0
//! only when every sink's output was exactly-once and every planned fault fired.
use crate::chaos::{self, ChaosOptions};
use eddy_api::Registry;
use std::io::Write;
use std::process::ExitCode;

pub(super) fn command(registry: &Registry, opts: ChaosOptions) -> ExitCode {
    match run(registry, opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            let code = e.downcast_ref::<chaos::ChaosError>().map_or(1, chaos::ChaosError::exit_code);
            ExitCode::from(code)
        }
    }
}

fn run(registry: &Registry, opts: ChaosOptions) -> anyhow::Result<ExitCode> {
    quiet_injected_panics();
    let prepared = chaos::prepare(registry, &opts)?;
    // The plan goes out before anything runs, so a hanging run still shows what it was doing.
    print!("{}", prepared.header());
    std::io::stdout().flush()?;
    let report = prepared.execute()?;
    print!("{}", report.body());
    Ok(ExitCode::from(report.exit_code()))
}

/// Injected panics are expected and logged by the report: keep the default hook's message (and
/// backtrace) for every other panic only.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if !message.is_some_and(|m| m.starts_with("chaos: ")) {
            default(info);
        }
    }));
}
