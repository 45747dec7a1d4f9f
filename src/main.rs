//! The `eddy` binary: every built-in node type behind the command line.
fn main() -> std::process::ExitCode {
    eddy::Cli::new().run()
}
