//! `eddy graph`: the physical plan as text and as Graphviz DOT.
use eddy_actors::{Head, JobGraph};
use std::fmt::Write;

/// One line per task chain and per edge.
pub fn text(g: &JobGraph) -> String {
    let mut s = format!(
        "job `{}` ({} tasks on {} threads)\n",
        g.job,
        g.vertices.iter().map(|v| v.parallelism).sum::<usize>(),
        g.threads
    );
    for v in &g.vertices {
        let kind = if matches!(v.head, Head::Source { .. }) { "source chain" } else { "chain" };
        let _ = writeln!(s, "  [{}] {kind}: {}  (parallelism {})", v.id, v.display_name(), v.parallelism);
    }
    for e in &g.edges {
        let _ = writeln!(s, "  [{}] --{}--> [{}]", e.from, e.partitioning.name(), e.to);
    }
    s
}

/// A DOT digraph: one box per chain, edges labelled with their partitioning.
pub fn dot(g: &JobGraph) -> String {
    let mut s = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", escape(&g.job));
    for v in &g.vertices {
        let _ = writeln!(s, "  v{} [label=\"{}\\np={}\"];", v.id, escape(&v.display_name()), v.parallelism);
    }
    for e in &g.edges {
        let _ = writeln!(s, "  v{} -> v{} [label=\"{}\"];", e.from, e.to, e.partitioning.name());
    }
    s.push_str("}\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
