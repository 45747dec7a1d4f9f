//! Record schemas: named, typed fields, fixed at plan time.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The type of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// `true` / `false`.
    Bool,
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float.
    Float,
    /// UTF-8 text.
    String,
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "timestamp_ms", alias = "timestamp")]
    Timestamp,
}

impl DataType {
    /// Every type with the name YAML uses for it.
    pub const ALL: [(&'static str, DataType); 5] = [
        ("bool", DataType::Bool),
        ("int", DataType::Int),
        ("float", DataType::Float),
        ("string", DataType::String),
        ("timestamp_ms", DataType::Timestamp),
    ];

    /// Parses a YAML type name (`int`, `float`, `string`, `bool`, `timestamp_ms`, and common aliases).
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name {
            "bool" | "boolean" => DataType::Bool,
            "int" | "long" | "bigint" | "integer" | "i64" => DataType::Int,
            "float" | "double" | "f64" => DataType::Float,
            "string" | "str" | "text" | "varchar" => DataType::String,
            "timestamp_ms" | "timestamp" => DataType::Timestamp,
            _ => return None,
        })
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int => "int",
            DataType::Float => "float",
            DataType::String => "string",
            DataType::Timestamp => "timestamp_ms",
        }
    }

    /// Whether arithmetic applies.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::Float)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One named, typed field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// Field name, unique in its schema.
    pub name: String,
    /// Field type.
    pub data_type: DataType,
}

impl Field {
    /// A new field.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Field { name: name.into(), data_type }
    }
}

/// The ordered fields of a record, and which of them carries event time (if any).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    fields: Vec<Field>,
    #[serde(default)]
    event_time: Option<usize>,
}

/// Schemas are shared between plan nodes and tasks.
pub type SchemaRef = Arc<Schema>;

impl Schema {
    /// A schema from fields (names must be unique; the planner checks this for user input).
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields, event_time: None }
    }

    /// The same fields with field `index` as the event-time attribute (ignored when out of range).
    pub fn with_event_time(mut self, index: Option<usize>) -> Self {
        self.event_time = index.filter(|&i| i < self.fields.len());
        self
    }

    /// The field that carries event time: set where a source declares `event_time`, and kept by
    /// operators that pass the field on unchanged.
    pub fn event_time(&self) -> Option<usize> {
        self.event_time
    }

    /// The fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Position of a field by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Field names, for "did you mean" hints.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, fld) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", fld.name, fld.data_type)?;
            if self.event_time == Some(i) {
                f.write_str(" (event time)")?;
            }
        }
        f.write_str("}")
    }
}
