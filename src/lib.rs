//! Eddy: stateful stream processing on actix.
//!
//! This crate is the `eddy` binary's library: the YAML job model ([`config`]), SQL expressions
//! ([`expr`]), the built-in operators ([`operators`]) and connectors ([`connectors`]), the planner
//! ([`plan`]) and the command line ([`Cli`]). The runtime lives in `eddy-actors`; custom operators plug
//! in through `eddy-api`, re-exported here as [`api`].

pub use eddy_api as api;

/// mimalloc for every program built on Eddy: state with millions of small values restores in about
/// half the time of the system allocator's (bench/checkpoints.sh). The default feature `mimalloc`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod chaos;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod expr;
pub mod http;
pub mod job;
pub mod operators;
pub mod plan;
pub mod state;

pub use cli::Cli;

/// A registry with every built-in operator, source and sink.
pub fn builtin_registry() -> api::Registry {
    let mut r = api::Registry::new();
    operators::register(&mut r);
    connectors::register(&mut r);
    r
}
