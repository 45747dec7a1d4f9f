//! `eddy-custom`: the whole `eddy` command line (run, validate, graph, ...) with every built-in node type
//! plus this crate's: `fraud_detector`, `dedup` and `tumbling_count` operators, the `tcp_lines` source and
//! the `part_files` sink.
//!
//! ```sh
//! cargo run --release -p eddy-examples -- run examples/custom/fraud.yaml
//! ```
use std::process::ExitCode;

fn main() -> ExitCode {
    eddy::Cli::new()
        .with(|registry| {
            eddy_examples::register(registry);
        })
        .run()
}
