//! The registry: node `type` names mapped to factories that parse a typed config and plan the node.
//!
//! Built-in and user-defined operators, sources and sinks register the same way: a name, a serde config
//! type and a function that validates the config against the input schemas and returns a builder.
use crate::config::{ConfigValue, Span, Spanned};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::operator::OperatorBuilder;
use crate::schema::SchemaRef;
use crate::sink::SinkBuilder;
use crate::source::SourceBuilder;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One input of a node being planned.
#[derive(Clone, Debug)]
pub struct InputInfo {
    /// Name of the upstream node (or `node.side_output`).
    pub name: String,
    /// The records it delivers.
    pub schema: SchemaRef,
    /// Key expressions when the upstream is a `key_by` node (its consumers inherit the key).
    pub key: Option<Vec<String>>,
}

/// What a factory knows about the node it plans.
#[derive(Clone, Debug)]
pub struct PlanContext<'a> {
    /// Job name.
    pub job: &'a str,
    /// Node name.
    pub node: &'a str,
    /// Where the node is defined (for diagnostics that have no better place).
    pub span: Span,
    /// The node's parallelism.
    pub parallelism: usize,
    /// Its inputs, in the order of `inputs:` (empty for sources).
    pub inputs: &'a [InputInfo],
    /// Whether the job takes checkpoints (`checkpoints:`): sinks then publish output per completed
    /// checkpoint (two-phase commit) instead of writing straight through.
    pub checkpointing: bool,
}

impl PlanContext<'_> {
    /// The single input's schema, or a diagnostic when the node has several inputs.
    pub fn single_input(&self) -> Result<&InputInfo, Diagnostics> {
        match self.inputs {
            [one] => Ok(one),
            _ => Err(Diagnostic::at(
                self.span,
                format!("`{}` takes exactly one input, got {}", self.node, self.inputs.len()),
            )
            .with_hint("put a `union` in front to merge several streams")
            .into()),
        }
    }
}

type OperatorFactory =
    Box<dyn Fn(&ConfigValue, &PlanContext<'_>) -> Result<Arc<dyn OperatorBuilder>, Diagnostics> + Send + Sync>;
type SourceFactory =
    Box<dyn Fn(&ConfigValue, &PlanContext<'_>) -> Result<Arc<dyn SourceBuilder>, Diagnostics> + Send + Sync>;
type SinkFactory =
    Box<dyn Fn(&ConfigValue, &PlanContext<'_>) -> Result<Arc<dyn SinkBuilder>, Diagnostics> + Send + Sync>;

/// The kind of node a type name is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Under `sources:`.
    Source,
    /// Under `operators:`.
    Operator,
    /// Under `sinks:`.
    Sink,
}

impl NodeKind {
    /// The YAML section name.
    pub fn section(self) -> &'static str {
        match self {
            NodeKind::Source => "sources",
            NodeKind::Operator => "operators",
            NodeKind::Sink => "sinks",
        }
    }
}

/// Named factories for every node type a job may use.
#[derive(Default)]
pub struct Registry {
    operators: BTreeMap<String, OperatorFactory>,
    sources: BTreeMap<String, SourceFactory>,
    sinks: BTreeMap<String, SinkFactory>,
}

fn typed<C: DeserializeOwned>(config: &ConfigValue) -> Result<C, Diagnostics> {
    crate::config::from_config::<C>(config).map_err(Diagnostics::from)
}

impl Registry {
    /// An empty registry (the `eddy` crate offers one with every built-in).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an operator type: `plan` gets the parsed config and returns the planned node.
    pub fn operator<C, B, F>(&mut self, name: &str, plan: F) -> &mut Self
    where
        C: DeserializeOwned + 'static,
        B: OperatorBuilder,
        F: Fn(C, &PlanContext<'_>) -> Result<B, Diagnostics> + Send + Sync + 'static,
    {
        self.operators.insert(
            name.to_string(),
            Box::new(move |cfg, ctx| Ok(Arc::new(plan(typed::<C>(cfg)?, ctx)?) as Arc<dyn OperatorBuilder>)),
        );
        self
    }

    /// Registers a source type.
    pub fn source<C, B, F>(&mut self, name: &str, plan: F) -> &mut Self
    where
        C: DeserializeOwned + 'static,
        B: SourceBuilder,
        F: Fn(C, &PlanContext<'_>) -> Result<B, Diagnostics> + Send + Sync + 'static,
    {
        self.sources.insert(
            name.to_string(),
            Box::new(move |cfg, ctx| Ok(Arc::new(plan(typed::<C>(cfg)?, ctx)?) as Arc<dyn SourceBuilder>)),
        );
        self
    }

    /// Registers a sink type.
    pub fn sink<C, B, F>(&mut self, name: &str, plan: F) -> &mut Self
    where
        C: DeserializeOwned + 'static,
        B: SinkBuilder,
        F: Fn(C, &PlanContext<'_>) -> Result<B, Diagnostics> + Send + Sync + 'static,
    {
        self.sinks.insert(
            name.to_string(),
            Box::new(move |cfg, ctx| Ok(Arc::new(plan(typed::<C>(cfg)?, ctx)?) as Arc<dyn SinkBuilder>)),
        );
        self
    }

    /// Registered names of one kind, sorted.
    pub fn names(&self, kind: NodeKind) -> Vec<&str> {
        match kind {
            NodeKind::Source => self.sources.keys().map(String::as_str).collect(),
            NodeKind::Operator => self.operators.keys().map(String::as_str).collect(),
            NodeKind::Sink => self.sinks.keys().map(String::as_str).collect(),
        }
    }

    fn unknown(&self, kind: NodeKind, ty: &Spanned<String>) -> Diagnostics {
        let names = self.names(kind);
        let mut d = Diagnostic::at(
            ty.span,
            format!("unknown {} type `{}`; known: {}", kind_word(kind), ty.value, names.join(", ")),
        );
        if let Some(c) = crate::diagnostic::did_you_mean(&ty.value, names.iter().copied()) {
            d = d.with_hint(format!("did you mean `{c}`?"));
        } else {
            for other in [NodeKind::Source, NodeKind::Operator, NodeKind::Sink] {
                if other != kind && self.names(other).contains(&ty.value.as_str()) {
                    d = d.with_hint(format!(
                        "`{}` is a {}: move the node under `{}:`",
                        ty.value,
                        kind_word(other),
                        other.section()
                    ));
                }
            }
        }
        d.into()
    }

    /// Whether a type name is registered for a kind.
    pub fn has(&self, kind: NodeKind, name: &str) -> bool {
        self.names(kind).contains(&name)
    }

    /// Plans an operator node of type `ty`.
    pub fn plan_operator(
        &self,
        ty: &Spanned<String>,
        config: &ConfigValue,
        ctx: &PlanContext<'_>,
    ) -> Result<Arc<dyn OperatorBuilder>, Diagnostics> {
        match self.operators.get(&ty.value) {
            Some(f) => f(config, ctx),
            None => Err(self.unknown(NodeKind::Operator, ty)),
        }
    }

    /// Plans a source node of type `ty`.
    pub fn plan_source(
        &self,
        ty: &Spanned<String>,
        config: &ConfigValue,
        ctx: &PlanContext<'_>,
    ) -> Result<Arc<dyn SourceBuilder>, Diagnostics> {
        match self.sources.get(&ty.value) {
            Some(f) => f(config, ctx),
            None => Err(self.unknown(NodeKind::Source, ty)),
        }
    }

    /// Plans a sink node of type `ty`.
    pub fn plan_sink(
        &self,
        ty: &Spanned<String>,
        config: &ConfigValue,
        ctx: &PlanContext<'_>,
    ) -> Result<Arc<dyn SinkBuilder>, Diagnostics> {
        match self.sinks.get(&ty.value) {
            Some(f) => f(config, ctx),
            None => Err(self.unknown(NodeKind::Sink, ty)),
        }
    }
}

fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Source => "source",
        NodeKind::Operator => "operator",
        NodeKind::Sink => "sink",
    }
}
