//! The logical plan: nodes in topological order, each planned by its factory with known input schemas.
use super::event_time::event_time;
use crate::config::{JobSpec, NodeSpec, Partition};
use eddy_actors::EventTimeSpec;
use eddy_api::operator::InputPartitioning;
use eddy_api::registry::{InputInfo, NodeKind, PlanContext};
use eddy_api::Spanned;
use eddy_api::{Diagnostic, Diagnostics, OperatorBuilder, Registry, SchemaRef, SinkBuilder, SourceBuilder, Span};
use std::collections::HashMap;
use std::sync::Arc;

/// What a node's factory produced.
#[derive(Clone)]
pub enum Planned {
    /// A source.
    Source(Arc<dyn SourceBuilder>),
    /// An operator.
    Operator(Arc<dyn OperatorBuilder>),
    /// A sink.
    Sink(Arc<dyn SinkBuilder>),
}

/// One input of a node: which node, and which of its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputRef {
    /// The upstream node.
    pub node: usize,
    /// `None` for its main output, `Some(i)` for its side output `i`.
    pub side: Option<usize>,
}

/// A planned node.
#[derive(Clone)]
pub struct LogicalNode {
    /// Node name.
    pub name: Arc<str>,
    /// Section it was declared in.
    pub kind: NodeKind,
    /// Its `type`.
    pub type_name: String,
    /// Where it is declared.
    pub span: Span,
    /// Number of subtasks.
    pub parallelism: usize,
    /// Upstream outputs: a node (index into [`LogicalPlan::nodes`]) and, for a side output, its index.
    pub inputs: Vec<InputRef>,
    /// Watermark generation of a source with `event_time`.
    pub event_time: Option<EventTimeSpec>,
    /// The output schema when it differs from the builder's (a source's, marked with its event time).
    pub schema_override: Option<SchemaRef>,
    /// An explicit distribution of its inputs (`partition:`), checked against the node.
    pub partition: Option<Partition>,
    /// The planned node.
    pub planned: Planned,
}

impl LogicalNode {
    /// The output schema (sinks have none).
    pub fn schema(&self) -> Option<SchemaRef> {
        if let Some(s) = &self.schema_override {
            return Some(s.clone());
        }
        match &self.planned {
            Planned::Source(b) => Some(b.output_schema()),
            Planned::Operator(b) => Some(b.output_schema()),
            Planned::Sink(_) => None,
        }
    }

    /// True for routing nodes that the physical plan removes.
    pub fn is_passthrough(&self) -> bool {
        matches!(&self.planned, Planned::Operator(b) if b.passthrough())
    }
}

/// The whole logical plan, nodes in topological order.
pub struct LogicalPlan {
    /// Job name.
    pub job: Arc<str>,
    /// The nodes, every input before its consumers.
    pub nodes: Vec<LogicalNode>,
}

/// Plans every node of `spec`, reporting all problems together.
pub fn plan(spec: &JobSpec, registry: &Registry) -> Result<LogicalPlan, Diagnostics> {
    let mut diags = Diagnostics::new();
    for (kind, what) in [(NodeKind::Source, "sources"), (NodeKind::Sink, "sinks")] {
        // A declared but unreadable node already has its problem reported.
        let declared = spec.nodes.iter().any(|n| n.kind == kind) || !spec.broken_nodes.is_empty();
        if !declared {
            diags.push(
                Diagnostic::at(spec.name.span, format!("job `{}` has no {what}", spec.name.value))
                    .with_hint(format!("add a `{what}:` section with at least one node")),
            );
        }
    }
    let job_time = super::event_time::job_time(spec, &mut diags);
    let index: HashMap<&str, usize> = spec.nodes.iter().enumerate().map(|(i, n)| (n.name.value.as_str(), i)).collect();
    let (refs, unresolved) = resolve_inputs(spec, &index, &mut diags);
    let inputs: Vec<Vec<usize>> = refs.iter().map(|r| r.iter().map(|(u, _)| *u).collect()).collect();
    let order = topological_order(spec, &inputs, &mut diags);

    let mut planned: Vec<Option<LogicalNode>> = vec![None; spec.nodes.len()];
    let mut keys: Vec<Option<Vec<String>>> = vec![None; spec.nodes.len()];
    for &i in &order {
        let node = &spec.nodes[i];
        if unresolved[i] {
            continue;
        }
        // A node whose input failed to plan is skipped: its own errors would only echo the first one.
        let Some(resolved) = refs[i]
            .iter()
            .map(|(u, side)| resolve_output(&planned, &keys, *u, side.as_ref(), &mut diags))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let (infos, input_refs): (Vec<InputInfo>, Vec<InputRef>) = resolved.into_iter().unzip();
        let parallelism = node.parallelism.as_ref().map_or(spec.parallelism.value, |p| p.value);
        let ctx = PlanContext {
            job: &spec.name,
            node: &node.name,
            span: node.span,
            parallelism,
            inputs: &infos,
            checkpointing: spec.section("checkpoints").is_some(),
        };
        let result = match node.kind {
            NodeKind::Source => registry.plan_source(&node.type_name, &node.config, &ctx).map(Planned::Source),
            NodeKind::Operator => registry.plan_operator(&node.type_name, &node.config, &ctx).map(Planned::Operator),
            NodeKind::Sink => registry.plan_sink(&node.type_name, &node.config, &ctx).map(Planned::Sink),
        };
        match result {
            Ok(mut p) => {
                if let Planned::Operator(b) = &p {
                    keys[i] = b.output_key();
                }
                let parallelism = final_parallelism(node, &p, parallelism, &mut diags);
                check_partition(node, &p, parallelism, &inputs[i], &planned, &mut diags);
                let (event_time, schema_override) = match event_time(node, &mut p, job_time, &mut diags) {
                    Some((spec, schema)) => (Some(spec), Some(schema)),
                    None => (None, None),
                };
                planned[i] = Some(LogicalNode {
                    name: node.name.value.as_str().into(),
                    kind: node.kind,
                    type_name: node.type_name.value.clone(),
                    span: node.span,
                    parallelism,
                    inputs: input_refs,
                    event_time,
                    schema_override,
                    partition: node.partition.as_ref().map(|p| p.value),
                    planned: p,
                });
            }
            Err(d) => diags.extend(d.0),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    // Renumber inputs from file positions to plan positions.
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    let nodes = order
        .iter()
        .filter_map(|&i| planned[i].take())
        .map(|mut n| {
            n.inputs = n.inputs.iter().map(|r| InputRef { node: position[&r.node], side: r.side }).collect();
            n
        })
        .collect();
    Ok(LogicalPlan { job: spec.name.value.as_str().into(), nodes })
}

fn final_parallelism(node: &NodeSpec, p: &Planned, wanted: usize, diags: &mut Diagnostics) -> usize {
    let fixed = match p {
        Planned::Operator(b) => b.fixed_parallelism(),
        _ => None,
    };
    match (fixed, &node.parallelism) {
        (Some(f), Some(explicit)) if explicit.value != f => {
            diags.push(Diagnostic::at(
                explicit.span,
                format!(
                    "`{}` runs at parallelism {f} (e.g. an aggregate without a key), not {}",
                    node.name.value, explicit.value
                ),
            ));
            f
        }
        (Some(f), _) => f,
        (None, _) => wanted,
    }
}

/// The schema and reference of one input: a node's main output, or one of its named side outputs.
/// `None` when the upstream failed to plan (already reported) or the side output does not exist.
fn resolve_output(
    planned: &[Option<LogicalNode>],
    keys: &[Option<Vec<String>>],
    u: usize,
    side: Option<&Spanned<String>>,
    diags: &mut Diagnostics,
) -> Option<(InputInfo, InputRef)> {
    let n = planned[u].as_ref()?;
    let Some(side) = side else {
        let info = InputInfo { name: n.name.to_string(), schema: n.schema()?, key: keys[u].clone() };
        return Some((info, InputRef { node: u, side: None }));
    };
    let sides = match &n.planned {
        Planned::Operator(b) => b.side_outputs(),
        _ => Vec::new(),
    };
    match sides.iter().position(|(name, _)| *name == side.value) {
        Some(i) => {
            let info = InputInfo { name: format!("{}.{}", n.name, side.value), schema: sides[i].1.clone(), key: None };
            Some((info, InputRef { node: u, side: Some(i) }))
        }
        None => {
            let known: Vec<&str> = sides.iter().map(|(name, _)| name.as_str()).collect();
            let d = Diagnostic::at(side.span, format!("`{}` has no side output `{}`", n.name, side.value));
            diags.push(if known.is_empty() {
                d.with_hint(format!("`{}` declares no side outputs", n.name))
            } else {
                d.did_you_mean(&side.value, known.iter().copied()).with_hint(format!("it has: {}", known.join(", ")))
            });
            None
        }
    }
}

/// An explicit `partition:` must fit the node: not on keyed operators, `forward` only between equal
/// parallelism.
fn check_partition(
    node: &NodeSpec,
    p: &Planned,
    parallelism: usize,
    inputs: &[usize],
    planned: &[Option<LogicalNode>],
    diags: &mut Diagnostics,
) {
    let Some(partition) = &node.partition else { return };
    if let Planned::Operator(b) = p {
        if !matches!(b.input_partitioning(), InputPartitioning::Any) {
            diags.push(Diagnostic::at(
                partition.span,
                format!("`{}` partitions its input by key; `partition:` cannot change that", node.name.value),
            ));
            return;
        }
    }
    if partition.value == Partition::Forward {
        for u in inputs.iter().filter_map(|&u| planned[u].as_ref()) {
            if u.parallelism != parallelism {
                diags.push(Diagnostic::at(
                    partition.span,
                    format!(
                        "`partition: forward` needs equal parallelism, but `{}` has {} and `{}` has {parallelism}",
                        u.name, u.parallelism, node.name.value
                    ),
                ));
            }
        }
    }
}

/// An input as written: the upstream node and, for `node.side`, the side output's name.
type NamedInput = (usize, Option<Spanned<String>>);

/// Input names to node indices, with located errors for names that do not resolve; the second vector
/// marks nodes with an input that did not resolve (they are not planned, to avoid follow-up errors).
fn resolve_inputs(
    spec: &JobSpec,
    index: &HashMap<&str, usize>,
    diags: &mut Diagnostics,
) -> (Vec<Vec<NamedInput>>, Vec<bool>) {
    let names: Vec<&str> =
        spec.nodes.iter().filter(|n| n.kind != NodeKind::Sink).map(|n| n.name.value.as_str()).collect();
    let mut unresolved = vec![false; spec.nodes.len()];
    let inputs = spec
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let mut out = Vec::new();
            for input in &node.inputs {
                let (base, side) = match input.value.split_once('.') {
                    Some((b, s)) => (b, Some(s)),
                    None => (input.value.as_str(), None),
                };
                match index.get(base) {
                    // Declared but unreadable: its own problem is already reported.
                    None if spec.broken_nodes.iter().any(|b| b == base) => unresolved[i] = true,
                    None => diags.push(
                        Diagnostic::at(input.span, format!("`{}` reads from unknown node `{base}`", node.name.value))
                            .did_you_mean(base, names.iter().copied()),
                    ),
                    Some(&u) if spec.nodes[u].kind == NodeKind::Sink => diags.push(Diagnostic::at(
                        input.span,
                        format!("`{}` reads from `{base}`, which is a sink and has no output", node.name.value),
                    )),
                    Some(&u) => out.push((u, side.map(|s| Spanned::new(input.span, s.to_string())))),
                }
            }
            unresolved[i] |= out.len() < node.inputs.len();
            out
        })
        .collect();
    (inputs, unresolved)
}

/// Kahn's algorithm; nodes on a cycle are reported once per cycle, with the path.
fn topological_order(spec: &JobSpec, inputs: &[Vec<usize>], diags: &mut Diagnostics) -> Vec<usize> {
    let n = spec.nodes.len();
    let mut consumers = vec![Vec::new(); n];
    let mut pending: Vec<usize> = inputs.iter().map(Vec::len).collect();
    for (i, ins) in inputs.iter().enumerate() {
        for &u in ins {
            consumers[u].push(i);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let u = order[next];
        next += 1;
        for &c in &consumers[u] {
            pending[c] -= 1;
            if pending[c] == 0 {
                order.push(c);
            }
        }
    }
    let mut reported = vec![false; n];
    for start in 0..n {
        if pending[start] == 0 || reported[start] {
            continue;
        }
        // Walk upstream along unresolved inputs until a node repeats: that stretch is a cycle.
        let mut path = vec![start];
        let mut cur = start;
        while let Some(&up) = inputs[cur].iter().find(|&&u| pending[u] > 0) {
            if let Some(pos) = path.iter().position(|&p| p == up) {
                let mut cycle: Vec<usize> = path[pos..].to_vec();
                cycle.reverse();
                cycle.push(cycle[0]);
                if cycle.iter().all(|&c| !reported[c]) {
                    let names: Vec<&str> = cycle.iter().map(|&c| spec.nodes[c].name.value.as_str()).collect();
                    diags.push(Diagnostic::at(
                        spec.nodes[cycle[0]].name.span,
                        format!("cycle in the job graph: {}", names.join(" -> ")),
                    ));
                }
                cycle.iter().for_each(|&c| reported[c] = true);
                break;
            }
            path.push(up);
            cur = up;
        }
        path.iter().for_each(|&c| reported[c] = true);
    }
    order
}
