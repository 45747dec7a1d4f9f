//! A JSON Lines decoder: one object per line, fields matched to the schema by name, decoded by a
//! serde visitor straight into per-field slots (borrowed strings, no map or `Value` per line).
use super::fields::{parse_timestamp, shown};
use eddy_api::schema::{DataType, Schema};
use eddy_api::value::Datum;
use eddy_api::Batch;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A decoded field of the current line; strings are byte ranges of the line or of the scratch.
#[derive(Clone, Copy, Debug)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Ts(i64),
    Line(usize, usize),
    Scratch(usize, usize),
}

pub(crate) struct JsonDecoder {
    names: Vec<String>,
    types: Vec<DataType>,
    vals: Vec<Val>,
    /// Strings with escapes, unescaped by serde_json into a transient buffer, are copied here.
    scratch: String,
    /// What was wrong with a field, set before the visitor aborts with an opaque error.
    err: Option<String>,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> Self {
        JsonDecoder {
            names: schema.fields().iter().map(|f| f.name.clone()).collect(),
            types: schema.fields().iter().map(|f| f.data_type).collect(),
            vals: Vec::with_capacity(schema.len()),
            scratch: String::new(),
            err: None,
        }
    }

    /// Appends the object in `line` to `out`, or returns what is wrong with it.
    pub fn decode(&mut self, line: &[u8], out: &mut Batch) -> Result<(), String> {
        let text = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1))?;
        let trimmed = text.trim_start();
        if !trimmed.starts_with('{') {
            return Err(format!("expected a JSON object, found `{}`", shown(trimmed.as_bytes())));
        }
        self.vals.clear();
        self.vals.resize(self.types.len(), Val::Null);
        self.scratch.clear();
        self.err = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let seed = RowSeed {
            names: &self.names,
            types: &self.types,
            vals: &mut self.vals,
            scratch: &mut self.scratch,
            err: &mut self.err,
            line: text,
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            return Err(match self.err.take() {
                Some(msg) => msg,
                None => {
                    let mut msg = e.to_string();
                    // serde_json appends "at line 1 column N"; the line is ours to number.
                    if let Some(i) = msg.rfind(" at line ") {
                        msg.truncate(i);
                    }
                    format!("invalid JSON at column {}: {msg}", e.column())
                }
            });
        }
        for v in &self.vals {
            match *v {
                Val::Null => out.push_null(),
                Val::Bool(b) => out.push(Datum::Bool(b)),
                Val::Int(i) => out.push_int(i),
                Val::Float(f) => out.push_float(f),
                Val::Ts(t) => out.push(Datum::Timestamp(t)),
                Val::Line(a, b) => out.push_str(text.get(a..b).unwrap_or_default()),
                Val::Scratch(a, b) => out.push_str(self.scratch.get(a..b).unwrap_or_default()),
            }
        }
        Ok(())
    }
}

struct RowSeed<'a> {
    names: &'a [String],
    types: &'a [DataType],
    vals: &'a mut [Val],
    scratch: &'a mut String,
    err: &'a mut Option<String>,
    line: &'a str,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(idx) = map.next_key_seed(KeySeed(self.names))? {
            match idx {
                Some(i) => map.next_value_seed(FieldSeed {
                    name: &self.names[i],
                    ty: self.types[i],
                    slot: &mut self.vals[i],
                    scratch: self.scratch,
                    err: self.err,
                    line: self.line,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Maps a key to its schema position (`None`: not in the schema, ignored) without allocating.
struct KeySeed<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| n == v))
    }
}

struct FieldSeed<'a> {
    name: &'a str,
    ty: DataType,
    slot: &'a mut Val,
    scratch: &'a mut String,
    err: &'a mut Option<String>,
    line: &'a str,
}

impl FieldSeed<'_> {
    fn set<E>(self, v: Val) -> Result<(), E> {
        *self.slot = v;
        Ok(())
    }

    fn mismatch<E: de::Error>(self, found: &str) -> Result<(), E> {
        *self.err = Some(format!("field `{}`: expected {}, found {found}", self.name, self.ty));
        Err(E::custom("field type mismatch"))
    }
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} value", self.ty)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.set(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.set(Val::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.ty {
            DataType::Bool => self.set(Val::Bool(v)),
            _ => self.mismatch(&format!("`{v}`")),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.ty {
            DataType::Int => self.set(Val::Int(v)),
            DataType::Timestamp => self.set(Val::Ts(v)),
            DataType::Float => self.set(Val::Float(v as f64)),
            _ => self.mismatch(&format!("`{v}`")),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match (self.ty, i64::try_from(v)) {
            (_, Ok(i)) => self.visit_i64(i),
            (DataType::Float, Err(_)) => self.set(Val::Float(v as f64)),
            _ => self.mismatch(&format!("`{v}`")),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // Integral floats (`3.0`) are accepted for integer fields: some writers emit every number so.
        let integral = v.fract() == 0.0 && v.abs() < 9.2e18;
        match self.ty {
            DataType::Float => self.set(Val::Float(v)),
            DataType::Int if integral => self.set(Val::Int(v as i64)),
            DataType::Timestamp if integral => self.set(Val::Ts(v as i64)),
            _ => self.mismatch(&format!("`{v}`")),
        }
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        let off = (v.as_ptr() as usize).wrapping_sub(self.line.as_ptr() as usize);
        if self.ty == DataType::String && off <= self.line.len() && v.len() <= self.line.len() - off {
            return self.set(Val::Line(off, off + v.len()));
        }
        self.visit_str(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.ty {
            DataType::String => {
                let off = self.scratch.len();
                self.scratch.push_str(v);
                let end = self.scratch.len();
                self.set(Val::Scratch(off, end))
            }
            DataType::Timestamp => match parse_timestamp(v.as_bytes()) {
                Some(t) => self.set(Val::Ts(t)),
                None => self.mismatch(&format!("`\"{}\"`", shown(v.as_bytes()))),
            },
            _ => self.mismatch(&format!("`\"{}\"`", shown(v.as_bytes()))),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        self.mismatch("an object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        self.mismatch("an array")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::schema::Field;

    fn decoder() -> JsonDecoder {
        use DataType::*;
        let fields = [("id", Int), ("price", Float), ("name", String), ("ok", Bool), ("ts", Timestamp)];
        JsonDecoder::new(&Schema::new(fields.iter().map(|(n, t)| Field::new(*n, *t)).collect()))
    }

    #[test]
    fn fields_by_name_missing_null_extra_ignored() {
        let mut d = decoder();
        let mut b = Batch::new(5);
        d.decode(br#"{"ts":1700000000000,"ok":true,"name":"plain","price":2.5,"id":1}"#, &mut b).unwrap();
        d.decode(br#"{"id":2,"extra":{"deep":[1,2,{"x":null}]},"name":"esc \"q\" \n \u00e9 \ud83d\ude00"}"#, &mut b)
            .unwrap();
        d.decode(br#" { "id" : null , "price": 3, "ts": "2023-11-14T22:13:20Z", "name": "h\u00e9" } "#, &mut b)
            .unwrap();
        d.decode(br#"{"id":3.0,"price":18446744073709551615,"ts":5.0}"#, &mut b).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(
            b.row(0).iter().collect::<Vec<_>>(),
            vec![
                Datum::Int(1),
                Datum::Float(2.5),
                Datum::Str("plain"),
                Datum::Bool(true),
                Datum::Timestamp(1_700_000_000_000)
            ]
        );
        assert_eq!(
            b.row(1).iter().collect::<Vec<_>>(),
            vec![Datum::Int(2), Datum::Null, Datum::Str("esc \"q\" \n é 😀"), Datum::Null, Datum::Null]
        );
        assert_eq!(b.row(2).get(0), Datum::Null);
        assert_eq!(b.row(2).get(1), Datum::Float(3.0));
        assert_eq!(b.row(2).get(2), Datum::Str("hé"));
        assert_eq!(b.row(2).get(4), Datum::Timestamp(1_700_000_000_000));
        assert_eq!(b.row(3).get(0), Datum::Int(3));
        assert_eq!(b.row(3).get(1), Datum::Float(18446744073709551615.0));
        assert_eq!(b.row(3).get(4), Datum::Timestamp(5));
    }

    #[test]
    fn error_messages() {
        let mut d = decoder();
        let mut b = Batch::new(5);
        let mut err = |line: &str| d.decode(line.as_bytes(), &mut b).unwrap_err();
        assert_eq!(err(r#"{"id":"12x4"}"#), r#"field `id`: expected int, found `"12x4"`"#);
        assert_eq!(err(r#"{"id":1.5}"#), "field `id`: expected int, found `1.5`");
        assert_eq!(err(r#"{"name":5}"#), "field `name`: expected string, found `5`");
        assert_eq!(err(r#"{"ok":"yes"}"#), r#"field `ok`: expected bool, found `"yes"`"#);
        assert_eq!(err(r#"{"price":true}"#), "field `price`: expected float, found `true`");
        assert_eq!(err(r#"{"ts":"soon"}"#), r#"field `ts`: expected timestamp_ms, found `"soon"`"#);
        assert_eq!(err(r#"{"id":{"a":1}}"#), "field `id`: expected int, found an object");
        assert_eq!(err(r#"{"name":[1]}"#), "field `name`: expected string, found an array");
        assert_eq!(err(r#"{"id":9223372036854775808}"#), "field `id`: expected int, found `9223372036854775808`");
        assert_eq!(err(r#" [1,2]"#), "expected a JSON object, found `[1,2]`");
        assert_eq!(err("null"), "expected a JSON object, found `null`");
        assert_eq!(err(r#"{"id":1"#), "invalid JSON at column 7: EOF while parsing an object");
        assert_eq!(err(r#"{"id":1} x"#), "invalid JSON at column 10: trailing characters");
        assert_eq!(err(r#"{"id":tru}"#), "invalid JSON at column 10: expected ident");
        let mut b = Batch::new(5);
        assert_eq!(d.decode(b"{\"name\":\"\xff\"}", &mut b).unwrap_err(), "invalid UTF-8 at byte 10");
        assert!(b.is_empty());
    }
}
