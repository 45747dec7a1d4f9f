//! `schema: { name: type, ... }` as written in a job file, in file order, resolved to a [`Schema`].
use eddy_api::schema::{DataType, Field, Schema};
use eddy_api::{Diagnostic, Diagnostics, Span, Spanned};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Field names mapped to type names, in the order written (a plain map would lose the order, and
/// the order is the column order of a CSV file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchemaSpec {
    /// `(name, type name)` pairs; the type keeps its location for diagnostics.
    pub fields: Vec<(String, Spanned<String>)>,
}

impl<'de> Deserialize<'de> for SchemaSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SchemaSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to types, e.g. `{ id: int, name: string }`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SchemaSpec, A::Error> {
                let mut fields = Vec::new();
                while let Some((name, ty)) = map.next_entry::<String, Spanned<String>>()? {
                    fields.push((name, ty));
                }
                Ok(SchemaSpec { fields })
            }
        }
        d.deserialize_map(V)
    }
}

/// Other names [`DataType::parse`] accepts, offered as "did you mean" too.
const ALIASES: [&str; 9] = ["boolean", "integer", "long", "bigint", "double", "str", "text", "varchar", "timestamp"];

impl SchemaSpec {
    /// The location of the first field (where to point at the whole schema), if any.
    pub fn span(&self) -> Option<Span> {
        self.fields.first().map(|(_, t)| t.span)
    }

    /// Resolves the type names; `what` names the node in messages ("file source `bids`").
    /// Every problem is reported, not only the first.
    pub fn resolve(&self, what: &str, fallback: Span) -> Result<Schema, Diagnostics> {
        let mut diags = Diagnostics::new();
        if self.fields.is_empty() {
            diags.push(Diagnostic::at(fallback, format!("{what}: `schema` has no fields")));
        }
        let mut fields: Vec<Field> = Vec::with_capacity(self.fields.len());
        for (i, (name, ty)) in self.fields.iter().enumerate() {
            if self.fields[..i].iter().any(|(n, _)| n == name) {
                diags.push(Diagnostic::at(ty.span, format!("{what}: duplicate field `{name}` in `schema`")));
                continue;
            }
            match DataType::parse(ty.value.trim()) {
                Some(t) => fields.push(Field::new(name.clone(), t)),
                None => {
                    let valid: Vec<&str> = DataType::ALL.iter().map(|(n, _)| *n).collect();
                    diags.push(
                        Diagnostic::at(
                            ty.span,
                            format!(
                                "{what}: unknown type `{}` for field `{name}`; valid types: {}",
                                ty.value,
                                valid.join(", ")
                            ),
                        )
                        .did_you_mean(&ty.value, valid.iter().copied().chain(ALIASES)),
                    );
                }
            }
        }
        diags.into_result(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> SchemaSpec {
        SchemaSpec {
            fields: pairs
                .iter()
                .enumerate()
                .map(|(i, (n, t))| (n.to_string(), Spanned::new(Span::new(i as u32 + 3, 9), t.to_string())))
                .collect(),
        }
    }

    #[test]
    fn resolves_in_order_with_aliases() {
        let s = spec(&[("b", "long"), ("a", "string"), ("t", "timestamp_ms")]).resolve("x", Span::default()).unwrap();
        assert_eq!(s.to_string(), "{b: int, a: string, t: timestamp_ms}");
    }

    #[test]
    fn reports_every_problem_with_location() {
        let err =
            spec(&[("a", "integr"), ("a", "int"), ("b", "binary")]).resolve("file source `bids`", Span::default());
        let d = err.unwrap_err().0;
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].span, Some(Span::new(3, 9)));
        assert_eq!(
            d[0].message,
            "file source `bids`: unknown type `integr` for field `a`; valid types: bool, int, float, string, timestamp_ms"
        );
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `integer`?"));
        assert_eq!(d[1].message, "file source `bids`: duplicate field `a` in `schema`");
        assert_eq!(d[1].span, Some(Span::new(4, 9)));
        assert_eq!(d[2].hint, None);
        let empty = SchemaSpec::default().resolve("x", Span::new(7, 1)).unwrap_err().0;
        assert_eq!(empty[0].message, "x: `schema` has no fields");
    }
}
