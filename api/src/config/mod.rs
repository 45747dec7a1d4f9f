//! Configuration values with their source locations.
//!
//! The YAML loader turns a job file into a [`ConfigValue`] tree where every node remembers its line and
//! column. A node's `config:` map reaches its factory as such a tree; the factory deserialises it into
//! its own typed config struct with [`from_config`], and every error (a missing key, a wrong type, an
//! unknown field) comes back as a [`Diagnostic`] that points into the file. Fields declared as
//! [`Spanned<T>`] keep their location, so later checks (an unknown column in an expression) can point at
//! the exact value.
use serde::de::DeserializeOwned;
use std::fmt;

mod de;
mod duration;
mod entries;

pub use de::from_config;
pub use duration::ConfigDuration;
pub use entries::Entries;

use crate::diagnostic::Diagnostic;

/// A position in the job file (1-based line and column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Span {
    /// A span at a line and column.
    pub fn new(line: u32, col: u32) -> Self {
        Span { line, col }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value together with where it was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    /// The location of the value in the job file.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// Wraps a value.
    pub fn new(span: Span, value: T) -> Self {
        Spanned { span, value }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A configuration tree node.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigValue {
    /// Where the node starts.
    pub span: Span,
    /// The node's content.
    pub kind: ConfigKind,
}

/// The content of a [`ConfigValue`].
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigKind {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer scalar.
    Int(i64),
    /// A float scalar.
    Float(f64),
    /// Any other scalar (quoted scalars are always strings).
    Str(String),
    /// A sequence.
    Seq(Vec<ConfigValue>),
    /// A mapping, in file order, with the location of each key.
    Map(Vec<(Spanned<String>, ConfigValue)>),
}

impl ConfigValue {
    /// A node at a location.
    pub fn new(span: Span, kind: ConfigKind) -> Self {
        ConfigValue { span, kind }
    }

    /// An empty map (what a node without `config:` gets).
    pub fn empty_map(span: Span) -> Self {
        ConfigValue { span, kind: ConfigKind::Map(Vec::new()) }
    }

    /// The value under `key` of a map node.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        match &self.kind {
            ConfigKind::Map(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ConfigKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short description of the node's kind, for error messages ("a map", "a string").
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ConfigKind::Null => "null",
            ConfigKind::Bool(_) => "a boolean",
            ConfigKind::Int(_) => "an integer",
            ConfigKind::Float(_) => "a number",
            ConfigKind::Str(_) => "a string",
            ConfigKind::Seq(_) => "a list",
            ConfigKind::Map(_) => "a map",
        }
    }

    /// Deserialises into a typed config (see [`from_config`]).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        from_config(self)
    }
}
