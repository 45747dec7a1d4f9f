//! [`Value`]: the result of evaluating an expression, borrowed when possible.
use eddy_api::{Datum, OwnedDatum};

/// An expression result: a [`Datum`] borrowed from the row or the expression, or a string the
/// expression built (`lower`, `||`, casts to string, ...).
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// A borrowed or scalar value.
    Datum(Datum<'a>),
    /// A newly built string.
    Owned(String),
}

impl Value<'_> {
    /// The value as a datum (borrowing an owned string).
    #[inline]
    pub fn as_datum(&self) -> Datum<'_> {
        match self {
            Value::Datum(d) => *d,
            Value::Owned(s) => Datum::Str(s),
        }
    }

    /// True for SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Datum(Datum::Null))
    }

    /// An owned copy.
    pub fn to_owned_datum(&self) -> OwnedDatum {
        self.as_datum().to_owned()
    }

    /// Converts into an owned datum, reusing an owned string's buffer.
    pub fn into_owned_datum(self) -> OwnedDatum {
        match self {
            Value::Datum(d) => d.to_owned(),
            Value::Owned(s) => OwnedDatum::Str(s.into_boxed_str()),
        }
    }
}

impl<'a> From<Datum<'a>> for Value<'a> {
    fn from(d: Datum<'a>) -> Self {
        Value::Datum(d)
    }
}
