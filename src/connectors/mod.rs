//! Built-in connectors: file and generator sources; file, stdout and blackhole sinks.
//!
//! Each connector is a config struct (its doc comments are the reference docs), a planned builder that
//! has validated the config, and a per-subtask instance that runs on the task's thread.
use eddy_api::schema::SchemaRef;
use eddy_api::{Diagnostic, Diagnostics, PlanContext, Registry};

pub mod blackhole;
mod encode;
pub mod file;
pub mod generator;
pub mod ingestion;
mod schema_spec;
pub mod stdout;

pub use encode::{SinkFormat, TimestampFormat};
pub use schema_spec::SchemaSpec;

/// Registers every built-in connector: sources `file` and `generator`; sinks `file`, `stdout` and
/// `blackhole`.
pub fn register(registry: &mut Registry) {
    registry
        .source::<file::FileSourceConfig, _, _>("file", file::FileSourceBuilder::plan)
        .source::<generator::GeneratorConfig, _, _>("generator", generator::GeneratorBuilder::plan)
        .sink::<file::FileSinkConfig, _, _>("file", file::FileSinkBuilder::plan)
        .sink::<stdout::StdoutConfig, _, _>("stdout", stdout::StdoutBuilder::plan)
        .sink::<blackhole::BlackholeConfig, _, _>("blackhole", blackhole::BlackholeBuilder::plan);
}

/// The schema a sink writes: that of its inputs, which must all agree.
pub(crate) fn sink_input_schema(what: &str, ctx: &PlanContext<'_>) -> Result<SchemaRef, Diagnostics> {
    let Some(first) = ctx.inputs.first() else {
        return Err(Diagnostic::at(ctx.span, format!("{what} has no inputs"))
            .with_hint("list the upstream nodes under `inputs:`")
            .into());
    };
    for other in &ctx.inputs[1..] {
        if other.schema != first.schema {
            return Err(Diagnostic::at(
                ctx.span,
                format!(
                    "{what}: inputs `{}` {} and `{}` {} have different schemas",
                    first.name, first.schema, other.name, other.schema
                ),
            )
            .with_hint("a sink writes one record layout: add a `select` in front of one input to align them")
            .into());
        }
    }
    Ok(first.schema.clone())
}

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod roundtrip_tests;

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the connector tests.
    use eddy_api::registry::InputInfo;
    use eddy_api::{PlanContext, Span, TaskInfo};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty directory under the system temp dir, unique per call and process.
    pub fn temp_dir(tag: &str) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("eddy-conn-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn task(subtask: usize, parallelism: usize) -> TaskInfo {
        TaskInfo { job: "job".into(), node: "node".into(), subtask, parallelism, max_parallelism: 128 }
    }

    pub fn ctx<'a>(node: &'a str, parallelism: usize, inputs: &'a [InputInfo]) -> PlanContext<'a> {
        PlanContext { job: "job", node, span: Span::new(1, 1), parallelism, inputs, checkpointing: false }
    }

    /// [`ctx`] of a job that takes checkpoints.
    pub fn checkpointed_ctx<'a>(node: &'a str, parallelism: usize, inputs: &'a [InputInfo]) -> PlanContext<'a> {
        PlanContext { checkpointing: true, ..ctx(node, parallelism, inputs) }
    }
}
