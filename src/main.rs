//! The `eddy` binary: every built-in node type behind the command line.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    eddy::Cli::new().run()
}
