//! A custom operator that errors or panics fails its job with the node's name and subtask, through the
//! same path as a built-in's, and never takes the process down (this test process survives it).
use eddy_api::{
    Batch, Context, Diagnostics, EddyError, Operator, OperatorBuilder, PlanContext, Result, SchemaRef, TaskInfo,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplodeConfig {
    /// Fail on the record after this many.
    after: u64,
    /// Panic instead of returning an error.
    #[serde(default)]
    panic: bool,
}

struct ExplodeBuilder {
    schema: SchemaRef,
    after: u64,
    panic: bool,
}

fn plan(cfg: ExplodeConfig, ctx: &PlanContext<'_>) -> Result<ExplodeBuilder, Diagnostics> {
    Ok(ExplodeBuilder { schema: ctx.single_input()?.schema.clone(), after: cfg.after, panic: cfg.panic })
}

impl OperatorBuilder for ExplodeBuilder {
    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn build(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Explode { left: self.after, panic: self.panic }))
    }
}

struct Explode {
    left: u64,
    panic: bool,
}

impl Operator for Explode {
    fn process_batch(&mut self, input: &Batch, ctx: &mut Context<'_>) -> Result<()> {
        for r in input.rows() {
            if self.left == 0 {
                if self.panic {
                    panic!("boom at {:?}", r.get(0));
                }
                return Err(EddyError::user(format!("bad record {:?}", r.get(0))));
            }
            self.left -= 1;
            ctx.emit_row(r);
        }
        Ok(())
    }
}

fn run(config: &str) -> String {
    let mut registry = eddy::builtin_registry();
    eddy_examples::register(&mut registry);
    registry.operator("explode", plan);
    let yaml = format!(
        "name: failing\n\
         sources:\n  seq: {{ type: generator, config: {{ kind: sequence, count: 1000 }} }}\n\
         operators:\n  boom: {{ type: explode, inputs: [seq], parallelism: 2, config: {config} }}\n\
         sinks:\n  out: {{ type: blackhole, inputs: [boom] }}\n"
    );
    let job = eddy::job::prepare_str("failing.yaml", &yaml, &[], &registry).unwrap_or_else(|r| panic!("{r}"));
    match job.run() {
        Ok(summary) => panic!("the job should fail: {summary}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_error_names_the_node_and_subtask() {
    let e = run("{ after: 10 }");
    assert!(e.starts_with("job `failing` failed: node `boom` subtask "), "{e}");
    assert!(e.contains("bad record"), "{e}");
}

#[test]
fn a_panic_is_caught_and_reported_like_an_error() {
    let e = run("{ after: 10, panic: true }");
    assert!(e.starts_with("job `failing` failed: node `boom` subtask "), "{e}");
    assert!(e.contains("boom at"), "{e}");
}
