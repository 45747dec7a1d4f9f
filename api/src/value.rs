//! Field values: [`Datum`] borrows from a batch (no allocation on the hot path), [`OwnedDatum`] owns.
use crate::schema::DataType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One field value, borrowed from the batch it lives in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Datum<'a> {
    /// SQL NULL (a missing or unknown value).
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// Text borrowed from the batch.
    Str(&'a str),
    /// Milliseconds since the epoch.
    Timestamp(i64),
}

impl<'a> Datum<'a> {
    /// The type of a non-null value.
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Datum::Null => return None,
            Datum::Bool(_) => DataType::Bool,
            Datum::Int(_) => DataType::Int,
            Datum::Float(_) => DataType::Float,
            Datum::Str(_) => DataType::String,
            Datum::Timestamp(_) => DataType::Timestamp,
        })
    }

    /// True for NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// The integer (or timestamp) value.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Datum::Int(v) | Datum::Timestamp(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a float (integers widen).
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Datum::Float(v) => Some(v),
            Datum::Int(v) | Datum::Timestamp(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The text value.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Datum::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Datum::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> OwnedDatum {
        match *self {
            Datum::Null => OwnedDatum::Null,
            Datum::Bool(v) => OwnedDatum::Bool(v),
            Datum::Int(v) => OwnedDatum::Int(v),
            Datum::Float(v) => OwnedDatum::Float(v),
            Datum::Str(s) => OwnedDatum::Str(s.into()),
            Datum::Timestamp(v) => OwnedDatum::Timestamp(v),
        }
    }
}

impl fmt::Display for Datum<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => f.write_str("NULL"),
            Datum::Bool(v) => write!(f, "{v}"),
            Datum::Int(v) | Datum::Timestamp(v) => write!(f, "{v}"),
            Datum::Float(v) => write!(f, "{v}"),
            Datum::Str(s) => f.write_str(s),
        }
    }
}

/// An owned field value, for state, keys and tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OwnedDatum {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// Owned text.
    Str(Box<str>),
    /// Milliseconds since the epoch.
    Timestamp(i64),
}

impl OwnedDatum {
    /// A borrowed view.
    pub fn as_datum(&self) -> Datum<'_> {
        match self {
            OwnedDatum::Null => Datum::Null,
            OwnedDatum::Bool(v) => Datum::Bool(*v),
            OwnedDatum::Int(v) => Datum::Int(*v),
            OwnedDatum::Float(v) => Datum::Float(*v),
            OwnedDatum::Str(s) => Datum::Str(s),
            OwnedDatum::Timestamp(v) => Datum::Timestamp(*v),
        }
    }
}

impl<'a> From<&'a OwnedDatum> for Datum<'a> {
    fn from(v: &'a OwnedDatum) -> Self {
        v.as_datum()
    }
}

impl fmt::Display for OwnedDatum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_datum().fmt(f)
    }
}
