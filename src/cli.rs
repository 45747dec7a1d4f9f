//! The `eddy` command line. [`Cli`] is also the entry point for a custom binary that registers its own
//! operators: `fn main() -> ExitCode { eddy::Cli::new().with(|r| { r.operator(...); }).run() }`.
use crate::job;
use clap::{Parser, Subcommand};
use eddy_api::Registry;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  eddy run examples/quickstart.yaml
  eddy run job.yaml --set parallelism=4 --set sources.bids.config.path=data/bids.csv
  eddy validate job.yaml
  eddy graph job.yaml --dot | dot -Tsvg > job.svg

Logs go to stderr; set EDDY_LOG (e.g. EDDY_LOG=info or EDDY_LOG=eddy_actors=debug) for more.";

#[derive(Parser)]
#[command(name = "eddy", version, about = "Stateful stream processing: run YAML dataflow topologies", after_help = EXAMPLES)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job until its inputs end (bounded) or it is stopped.
    Run {
        /// The job file (YAML).
        file: PathBuf,
        /// Override a value of the job file, e.g. `parallelism=4` or `sources.bids.config.path=x.csv`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print nothing on success.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a job file: every problem is reported with its line and column.
    Validate {
        /// The job file (YAML).
        file: PathBuf,
        /// Override a value of the job file.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Print the physical plan: task chains, parallelism and edge partitioning.
    Graph {
        /// The job file (YAML).
        file: PathBuf,
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
        /// Override a value of the job file.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// The `eddy` command line over a registry of node types.
pub struct Cli {
    registry: Registry,
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    /// A command line with every built-in operator and connector.
    pub fn new() -> Self {
        Cli { registry: crate::builtin_registry() }
    }

    /// Registers more node types (custom operators, sources, sinks).
    pub fn with(mut self, register: impl FnOnce(&mut Registry)) -> Self {
        register(&mut self.registry);
        self
    }

    /// Parses `std::env::args` and runs the command.
    pub fn run(self) -> ExitCode {
        let args = Args::parse();
        init_logging();
        match args.command {
            Command::Run { file, set, quiet } => {
                let prepared = match job::prepare(&file, &set, &self.registry) {
                    Ok(p) => p,
                    Err(report) => {
                        eprintln!("{report}");
                        return ExitCode::from(2);
                    }
                };
                match prepared.run() {
                    Ok(summary) => {
                        if !quiet {
                            let rss = peak_rss_mb().map(|mb| format!(", peak RSS {mb} MB")).unwrap_or_default();
                            eprintln!("{summary}{rss}");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Validate { file, set } => match job::prepare(&file, &set, &self.registry) {
                Ok(p) => {
                    println!("{}: ok ({} nodes, {} tasks)", file.display(), p.plan.nodes.len(), task_count(&p));
                    ExitCode::SUCCESS
                }
                Err(report) => {
                    eprintln!("{report}");
                    ExitCode::from(2)
                }
            },
            Command::Graph { file, dot, set } => match job::prepare(&file, &set, &self.registry) {
                Ok(p) => {
                    let out =
                        if dot { crate::plan::explain::dot(&p.graph) } else { crate::plan::explain::text(&p.graph) };
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(report) => {
                    eprintln!("{report}");
                    ExitCode::from(2)
                }
            },
        }
    }
}

fn task_count(p: &job::PreparedJob) -> usize {
    p.graph.vertices.iter().map(|v| v.parallelism).sum()
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Peak resident memory of this process (Linux), for the run summary.
pub fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
