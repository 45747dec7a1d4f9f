//! The job model: a located config tree read into a [`JobSpec`], with every problem collected.
//!
//! This layer checks the shape of a job (known keys, node names, inputs present where needed, numbers
//! in range) but not the graph: whether an input names an existing node, cycles and schemas are the
//! planner's business, since only it knows the registry.
use eddy_api::config::{from_config, ConfigDuration, ConfigKind, ConfigValue, Span, Spanned};
use eddy_api::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use eddy_api::registry::NodeKind;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Top-level sections reserved for later features; accepted and stored raw in [`JobSpec::sections`].
pub const RESERVED_SECTIONS: &[&str] = &["checkpoints", "state", "restart", "failover", "chaos", "time"];
/// Node-level keys reserved for later features; stored raw in [`NodeSpec::extra`].
pub const RESERVED_NODE_KEYS: &[&str] = &["event_time", "description"];

const JOB_KEYS: &[&str] =
    &["name", "parallelism", "max_parallelism", "buffer_timeout", "batch_size", "sources", "operators", "sinks"];
const NODE_KEYS: &[&str] = &["type", "inputs", "parallelism", "partition", "config"];
const NODE_KINDS: [NodeKind; 3] = [NodeKind::Source, NodeKind::Operator, NodeKind::Sink];

const DEFAULT_PARALLELISM: usize = 1;
const DEFAULT_MAX_PARALLELISM: usize = 128;
const DEFAULT_BUFFER_TIMEOUT: Duration = Duration::from_millis(5);
const DEFAULT_BATCH_SIZE: usize = 1024;

/// A job file, read and shape-checked.
///
/// Settings left out of the file get their default with the span `0:0` (written nowhere).
#[derive(Clone, Debug)]
pub struct JobSpec {
    /// The file name, for rendering diagnostics later.
    pub file: Arc<str>,
    /// The file's text, for rendering diagnostics later.
    pub source: Arc<str>,
    /// The job name (required).
    pub name: Spanned<String>,
    /// Default parallelism of every node (default 1, at least 1).
    pub parallelism: Spanned<usize>,
    /// Number of key groups (default 128); no node may run with more subtasks.
    pub max_parallelism: Spanned<usize>,
    /// How long a partly filled batch may wait before it is sent (default 5ms; zero flushes every record).
    pub buffer_timeout: Duration,
    /// Records per batch (default 1024, at least 1).
    pub batch_size: usize,
    /// Sources, then operators, then sinks, each in file order.
    pub nodes: Vec<NodeSpec>,
    /// Reserved top-level sections ([`RESERVED_SECTIONS`]) as written, for later features to parse.
    pub sections: Vec<(Spanned<String>, ConfigValue)>,
    /// Nodes declared in the file that could not be read (their problems are reported); the planner
    /// skips their consumers instead of calling their inputs unknown.
    pub broken_nodes: Vec<String>,
}

impl JobSpec {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name.value == name)
    }

    /// A reserved top-level section, when the file has it.
    pub fn section(&self, name: &str) -> Option<&ConfigValue> {
        self.sections.iter().find(|(k, _)| k.value == name).map(|(_, v)| v)
    }
}

/// An explicit distribution of a node's inputs (hash partitioning is asked for with `key_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partition {
    /// Subtask i reads upstream subtask i (needs equal parallelism); the default when it matches.
    Forward,
    /// Batches round robin over all subtasks; the default when parallelism differs.
    Rebalance,
    /// Every subtask reads every record.
    Broadcast,
}

/// One source, operator or sink.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name (its key under `sources:`, `operators:` or `sinks:`).
    pub name: Spanned<String>,
    /// Which section it is in.
    pub kind: NodeKind,
    /// Its `type:`, resolved against the registry by the planner.
    pub type_name: Spanned<String>,
    /// Upstream node names or `node.side_output`, as written (the planner resolves them).
    pub inputs: Vec<Spanned<String>>,
    /// Its own parallelism, when set.
    pub parallelism: Option<Spanned<usize>>,
    /// How its inputs are distributed over its subtasks, when set (`partition:`).
    pub partition: Option<Spanned<Partition>>,
    /// Its `config:` map; an empty map at the node's span when absent.
    pub config: ConfigValue,
    /// Where the node is defined: its name.
    pub span: Span,
    /// Reserved node-level keys ([`RESERVED_NODE_KEYS`]) as written.
    pub extra: Vec<(Spanned<String>, ConfigValue)>,
}

/// Reads a job from its config tree; `file` and `source` are kept in the spec for later diagnostics.
pub fn read_job(file: Arc<str>, source: Arc<str>, root: &ConfigValue) -> Result<JobSpec, Diagnostics> {
    match read_job_lenient(file, source, root) {
        (Some(job), diags) if diags.is_empty() => Ok(job),
        (_, diags) => Err(diags),
    }
}

/// Reads as much of the job as is readable: the spec (missing when the top level is unusable) with
/// defaults where values were bad, and every problem found. Lets the planner report its own problems
/// in the same run, so a user sees all of them at once.
pub fn read_job_lenient(file: Arc<str>, source: Arc<str>, root: &ConfigValue) -> (Option<JobSpec>, Diagnostics) {
    let mut reader = Reader::default();
    let job = reader.job(file, source, root);
    (job, reader.diags)
}

/// Node names and `inputs` parts: letters, digits, `_` and `-`.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// An `inputs` entry: `node` or `node.side_output`.
fn is_input_ref(text: &str) -> bool {
    match text.split_once('.') {
        Some((node, side)) => is_identifier(node) && is_identifier(side),
        None => is_identifier(text),
    }
}

fn unwritten<T>(value: T) -> Spanned<T> {
    Spanned::new(Span::default(), value)
}

#[derive(Default)]
struct Reader {
    diags: Diagnostics,
}

impl Reader {
    fn problem(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn job(&mut self, file: Arc<str>, source: Arc<str>, root: &ConfigValue) -> Option<JobSpec> {
        let entries = match &root.kind {
            ConfigKind::Map(entries) => entries,
            ConfigKind::Null => {
                self.problem(
                    Diagnostic::at(root.span, "the job file is empty")
                        .with_hint("a job needs at least `name:`, `sources:` and `sinks:`"),
                );
                return None;
            }
            _ => {
                self.problem(Diagnostic::at(
                    root.span,
                    format!("expected a map of job settings at the top level, found {}", root.kind_name()),
                ));
                return None;
            }
        };
        let mut job = JobSpec {
            file,
            source,
            name: unwritten(String::new()),
            parallelism: unwritten(DEFAULT_PARALLELISM),
            max_parallelism: unwritten(DEFAULT_MAX_PARALLELISM),
            buffer_timeout: DEFAULT_BUFFER_TIMEOUT,
            batch_size: DEFAULT_BATCH_SIZE,
            nodes: Vec::new(),
            sections: Vec::new(),
            broken_nodes: Vec::new(),
        };
        let mut name = None;
        let mut node_sections: [Option<&ConfigValue>; 3] = [None; 3];
        for (key, value) in entries {
            match key.value.as_str() {
                "name" => name = self.job_name(value),
                "parallelism" => job.parallelism = self.at_least_one("parallelism", value).unwrap_or(job.parallelism),
                "max_parallelism" => {
                    job.max_parallelism = self.at_least_one("max_parallelism", value).unwrap_or(job.max_parallelism)
                }
                "buffer_timeout" => {
                    job.buffer_timeout = self.duration("buffer_timeout", value).unwrap_or(job.buffer_timeout)
                }
                "batch_size" => {
                    job.batch_size = self.at_least_one("batch_size", value).map_or(job.batch_size, |b| b.value)
                }
                "sources" => node_sections[0] = Some(value),
                "operators" => node_sections[1] = Some(value),
                "sinks" => node_sections[2] = Some(value),
                reserved if RESERVED_SECTIONS.contains(&reserved) => job.sections.push((key.clone(), value.clone())),
                other => self.unknown_top_level(key, other),
            }
        }
        match name {
            Some(name) => job.name = name,
            None if entries.iter().any(|(k, _)| k.value == "name") => {}
            None => {
                self.problem(Diagnostic::at(root.span, "missing key `name`").with_hint("every job needs a `name:`"))
            }
        }
        for (kind, section) in NODE_KINDS.into_iter().zip(node_sections) {
            if let Some(section) = section {
                self.section(kind, section, &mut job.nodes, &mut job.broken_nodes);
            }
        }
        self.check_unique_names(&job.nodes);
        self.check_max_parallelism(&job);
        Some(job)
    }

    fn unknown_top_level(&mut self, key: &Spanned<String>, word: &str) {
        let known = JOB_KEYS.iter().chain(RESERVED_SECTIONS).copied();
        let d = Diagnostic::at(key.span, format!("unknown top-level key `{word}`"));
        self.problem(match did_you_mean(word, known) {
            Some(c) => d.with_hint(format!("did you mean `{c}`?")),
            None => d.with_hint(format!("expected one of: {}", JOB_KEYS.join(", "))),
        });
    }

    /// Deserialises a setting, naming it in any error.
    fn typed<T: DeserializeOwned>(&mut self, path: &str, value: &ConfigValue) -> Option<T> {
        match from_config::<T>(value) {
            Ok(v) => Some(v),
            Err(mut d) => {
                d.message = format!("`{path}`: {}", d.message);
                self.problem(d);
                None
            }
        }
    }

    fn job_name(&mut self, value: &ConfigValue) -> Option<Spanned<String>> {
        let name: Spanned<String> = self.typed("name", value)?;
        if name.value.trim().is_empty() {
            self.problem(Diagnostic::at(value.span, "`name` must not be empty"));
            return None;
        }
        Some(name)
    }

    fn at_least_one(&mut self, path: &str, value: &ConfigValue) -> Option<Spanned<usize>> {
        let n: Spanned<usize> = self.typed(path, value)?;
        if n.value == 0 {
            self.problem(Diagnostic::at(n.span, format!("`{path}` must be at least 1, found 0")));
            return None;
        }
        Some(n)
    }

    fn duration(&mut self, path: &str, value: &ConfigValue) -> Option<Duration> {
        match value.kind {
            ConfigKind::Str(_) | ConfigKind::Int(_) => self.typed::<ConfigDuration>(path, value).map(|d| d.0),
            _ => {
                self.problem(Diagnostic::at(
                    value.span,
                    format!("`{path}`: expected a duration such as `5ms` or `2s`, found {}", value.kind_name()),
                ));
                None
            }
        }
    }

    fn section(&mut self, kind: NodeKind, section: &ConfigValue, nodes: &mut Vec<NodeSpec>, broken: &mut Vec<String>) {
        match &section.kind {
            ConfigKind::Map(entries) => {
                for (name, value) in entries {
                    match self.node(kind, name, value) {
                        Some(node) => nodes.push(node),
                        None => broken.push(name.value.clone()),
                    }
                }
            }
            // `operators:` with every entry commented out: nothing to read.
            ConfigKind::Null => {}
            ConfigKind::Seq(_) => self.problem(
                Diagnostic::at(
                    section.span,
                    format!("`{}` must be a map of node names to nodes, found a list", kind.section()),
                )
                .with_hint(format!("write each node as `name: {{ type: ... }}` under `{}:`", kind.section())),
            ),
            _ => self.problem(Diagnostic::at(
                section.span,
                format!("`{}` must be a map of node names to nodes, found {}", kind.section(), section.kind_name()),
            )),
        }
    }

    fn node(&mut self, kind: NodeKind, name: &Spanned<String>, value: &ConfigValue) -> Option<NodeSpec> {
        if !is_identifier(&name.value) {
            self.problem(
                Diagnostic::at(name.span, format!("invalid node name `{}`", name.value))
                    .with_hint("node names use letters, digits, `_` and `-`"),
            );
        }
        let path = format!("{}.{}", kind.section(), name.value);
        let entries: &[(Spanned<String>, ConfigValue)] = match &value.kind {
            ConfigKind::Map(entries) => entries,
            ConfigKind::Null => &[],
            _ => {
                self.problem(Diagnostic::at(
                    value.span,
                    format!("`{path}`: expected a map with the node's `type`, found {}", value.kind_name()),
                ));
                return None;
            }
        };
        let mut node = NodeSpec {
            name: name.clone(),
            kind,
            type_name: unwritten(String::new()),
            inputs: Vec::new(),
            parallelism: None,
            partition: None,
            config: ConfigValue::empty_map(name.span),
            span: name.span,
            extra: Vec::new(),
        };
        let mut type_name = None;
        let mut inputs = None;
        for (key, v) in entries {
            match key.value.as_str() {
                "type" => type_name = self.type_name(&path, v),
                "inputs" => inputs = Some((key, v)),
                "parallelism" => node.parallelism = self.at_least_one(&format!("{path}.parallelism"), v),
                "config" => node.config = self.node_config(&path, v),
                "partition" if kind == NodeKind::Source => self.problem(Diagnostic::at(
                    key.span,
                    format!("`{path}.partition`: a source has no inputs to partition"),
                )),
                "partition" => node.partition = self.typed(&format!("{path}.partition"), v),
                reserved if RESERVED_NODE_KEYS.contains(&reserved) => node.extra.push((key.clone(), v.clone())),
                other => self.unknown_node_key(name, key, other),
            }
        }
        match type_name {
            Some(t) => node.type_name = t,
            None if entries.iter().any(|(k, _)| k.value == "type") => {}
            None => self.problem(
                Diagnostic::at(name.span, format!("missing key `type` in node `{}`", name.value))
                    .with_hint(format!("every node needs a `type:` naming the {} to run", kind_word(kind))),
            ),
        }
        node.inputs = self.node_inputs(&node, &path, inputs);
        Some(node)
    }

    fn type_name(&mut self, path: &str, value: &ConfigValue) -> Option<Spanned<String>> {
        match &value.kind {
            ConfigKind::Str(s) if !s.trim().is_empty() => Some(Spanned::new(value.span, s.clone())),
            _ => {
                self.problem(Diagnostic::at(
                    value.span,
                    format!("`{path}.type`: expected a type name, found {}", value.kind_name()),
                ));
                None
            }
        }
    }

    /// `inputs: [a, b.side]`; a single name without brackets is accepted too.
    fn inputs(&mut self, path: &str, value: &ConfigValue) -> Vec<Spanned<String>> {
        let items = match &value.kind {
            ConfigKind::Seq(items) => items.as_slice(),
            ConfigKind::Null => &[],
            _ => std::slice::from_ref(value),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let entry = match &item.kind {
                ConfigKind::Str(_) | ConfigKind::Int(_) => {
                    self.typed::<Spanned<String>>(&format!("{path}.inputs[{i}]"), item)
                }
                _ => {
                    self.problem(Diagnostic::at(
                        item.span,
                        format!("`{path}.inputs`: expected node names, found {}", item.kind_name()),
                    ));
                    None
                }
            };
            let Some(entry) = entry else { continue };
            if is_input_ref(&entry.value) {
                out.push(entry);
            } else {
                self.problem(
                    Diagnostic::at(entry.span, format!("invalid input `{}`", entry.value))
                        .with_hint("an input is a node name, or `node.side_output` for a side output"),
                );
            }
        }
        out
    }

    /// Sources take no inputs; operators and sinks need at least one.
    fn node_inputs(
        &mut self,
        node: &NodeSpec,
        path: &str,
        written: Option<(&Spanned<String>, &ConfigValue)>,
    ) -> Vec<Spanned<String>> {
        let name = &node.name.value;
        match (node.kind, written) {
            (NodeKind::Source, Some((key, value))) if !is_empty_list(value) => {
                self.problem(Diagnostic::at(key.span, format!("source `{name}` cannot have `inputs`")).with_hint(
                    "sources read from outside the job; to consume another node, move it under `operators:`",
                ));
                Vec::new()
            }
            (NodeKind::Source, _) => Vec::new(),
            (kind, None) => {
                self.problem(
                    Diagnostic::at(node.span, format!("{} `{name}` has no `inputs`", kind_word(kind)))
                        .with_hint("add `inputs: [<upstream node>]`"),
                );
                Vec::new()
            }
            (kind, Some((_, value))) if is_empty_list(value) => {
                self.problem(
                    Diagnostic::at(value.span, format!("{} `{name}` has an empty `inputs` list", kind_word(kind)))
                        .with_hint("name at least one upstream node"),
                );
                Vec::new()
            }
            (_, Some((_, value))) => self.inputs(path, value),
        }
    }

    fn node_config(&mut self, path: &str, value: &ConfigValue) -> ConfigValue {
        match value.kind {
            ConfigKind::Map(_) => value.clone(),
            ConfigKind::Null => ConfigValue::empty_map(value.span),
            _ => {
                self.problem(Diagnostic::at(
                    value.span,
                    format!("`{path}.config`: expected a map, found {}", value.kind_name()),
                ));
                ConfigValue::empty_map(value.span)
            }
        }
    }

    fn unknown_node_key(&mut self, node: &Spanned<String>, key: &Spanned<String>, word: &str) {
        let known = NODE_KEYS.iter().chain(RESERVED_NODE_KEYS).copied();
        let d = Diagnostic::at(key.span, format!("unknown key `{word}` in node `{}`", node.value));
        self.problem(match did_you_mean(word, known) {
            Some(c) => d.with_hint(format!("did you mean `{c}`?")),
            None => d.with_hint("settings of the node's type go under `config:`"),
        });
    }

    /// Names are unique within a section (the YAML loader checks that); this checks across sections.
    fn check_unique_names(&mut self, nodes: &[NodeSpec]) {
        let mut by_position: Vec<&NodeSpec> = nodes.iter().collect();
        by_position.sort_by_key(|n| n.span);
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for node in by_position {
            if let Some(first) = seen.get(node.name.value.as_str()) {
                self.problem(Diagnostic::at(
                    node.span,
                    format!("node name `{}` is used twice (first defined at line {})", node.name.value, first.line),
                ));
            } else {
                seen.insert(&node.name.value, node.span);
            }
        }
    }

    fn check_max_parallelism(&mut self, job: &JobSpec) {
        let max = job.max_parallelism.value;
        let too_high = |p: &Spanned<usize>| p.value > max;
        if too_high(&job.parallelism) {
            self.problem(exceeds_max("the job's `parallelism`", &job.parallelism, max));
        }
        for node in &job.nodes {
            if let Some(p) = node.parallelism.as_ref().filter(|p| too_high(p)) {
                self.problem(exceeds_max(&format!("the parallelism of `{}`", node.name.value), p, max));
            }
        }
    }
}

fn exceeds_max(what: &str, p: &Spanned<usize>, max: usize) -> Diagnostic {
    Diagnostic::at(p.span, format!("{what} ({}) is above `max_parallelism` ({max})", p.value))
        .with_hint(format!("lower it, or raise `max_parallelism` to at least {}", p.value))
}

fn is_empty_list(value: &ConfigValue) -> bool {
    match &value.kind {
        ConfigKind::Seq(items) => items.is_empty(),
        ConfigKind::Null => true,
        _ => false,
    }
}

fn kind_word(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Source => "source",
        NodeKind::Operator => "operator",
        NodeKind::Sink => "sink",
    }
}
