//! A serde `Deserializer` over [`ConfigValue`]: typed node configs from the YAML tree, with located errors.
//!
//! Errors remember the innermost node they arose at and the key path down to it, so a wrong type deep in
//! a config reads "`window.size`: expected a string, found a list" and points at the value. Fields of
//! type [`Spanned<T>`] get their location through a private struct name that only this deserializer
//! recognises (the trick the `toml` crate uses for its `Spanned`).
use super::{ConfigKind, ConfigValue, Span, Spanned};
use crate::diagnostic::{did_you_mean, Diagnostic};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// Deserialises a config tree into `T`; errors name the location and the key path.
///
/// Integers are range-checked, floats accept integers, strings accept any scalar (`path: 123` is the
/// string `"123"`), `null` is `None`, enums are written `variant` or `{ variant: settings }`, and an
/// empty value reads as an empty map for structs (so every field takes its default).
pub fn from_config<T: DeserializeOwned>(value: &ConfigValue) -> Result<T, Diagnostic> {
    node(PhantomData::<T>, value).map_err(Error::into_diagnostic)
}

/// The struct name that asks for a [`Spanned`] value; no real struct is called this.
const SPANNED_NAME: &str = "$__eddy_private_Spanned";
/// The fields of the private struct: line, column, then the value itself.
const SPANNED_FIELDS: &[&str] = &["$__eddy_private_line", "$__eddy_private_col", "$__eddy_private_value"];

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, SpannedVisitor(PhantomData))
    }
}

struct SpannedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value from an Eddy config file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
        let line = spanned_entry(&mut map, SPANNED_FIELDS[0])?;
        let col = spanned_entry(&mut map, SPANNED_FIELDS[1])?;
        let value = spanned_entry(&mut map, SPANNED_FIELDS[2])?;
        Ok(Spanned::new(Span::new(line, col), value))
    }
}

fn spanned_entry<'de, A: MapAccess<'de>, V: Deserialize<'de>>(map: &mut A, field: &str) -> Result<V, A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == field => map.next_value(),
        // Another deserializer (JSON, say) handed us a real map: Spanned only works on config trees.
        _ => Err(de::Error::custom("a located value can only be read from an Eddy config tree")),
    }
}

/// One step of the key path from the config root to where an error arose.
#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A deserialisation error; becomes a [`Diagnostic`] at the end.
#[derive(Debug)]
pub struct Error {
    span: Option<Span>,
    /// Innermost step first: segments are pushed while the error travels outwards.
    path: Vec<Segment>,
    message: String,
    hint: Option<String>,
    /// Raised about a key (unknown or duplicate): the key's location beats the enclosing map's.
    at_key: bool,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Error { span: None, path: Vec::new(), message: message.into(), hint: None, at_key: false }
    }

    /// Sets the location unless a more precise one is already known.
    fn or_at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    fn within(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in self.path.iter().rev() {
            match seg {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn into_diagnostic(self) -> Diagnostic {
        let path = self.path_text();
        let message = if path.is_empty() { self.message } else { format!("`{path}`: {}", self.message) };
        Diagnostic { span: self.span, message, hint: self.hint }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path_text();
        if !path.is_empty() {
            write!(f, "`{path}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::new(format!("expected {}, found {}", expected_text(exp), unexpected_kind(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::new(format!("expected {}, found {}", expected_text(exp), unexpected_value(&unexp)))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Error::new(format!("expected {}, found a list of {len} {}", expected_text(exp), item_word(len)))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Error::new(format!("unknown value `{variant}` ({})", one_of(expected)));
        e.hint = suggestion(variant, expected);
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Error::new(format!("unknown key `{field}` ({})", one_of(expected)));
        e.hint = suggestion(field, expected);
        e.at_key = true;
        e
    }

    fn missing_field(field: &'static str) -> Self {
        Error::new(format!("missing key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        let mut e = Error::new(format!("duplicate key `{field}`"));
        e.at_key = true;
        e
    }
}

fn one_of(expected: &[&str]) -> String {
    if expected.is_empty() {
        "no keys are allowed here".to_string()
    } else {
        format!("expected one of: {}", expected.join(", "))
    }
}

fn suggestion(word: &str, expected: &'static [&'static str]) -> Option<String> {
    did_you_mean(word, expected.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

fn item_word(n: usize) -> &'static str {
    if n == 1 {
        "item"
    } else {
        "items"
    }
}

/// Rewrites what serde's visitors say they expect ("struct Foo", "u16") in the words of a config file.
fn expected_text(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    let plain = match text.as_str() {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "f32" | "f64" => "a number",
        "a sequence" => "a list",
        "unit" => "null",
        "option" => "a value",
        t if t.starts_with("struct ") || t.starts_with("map") => "a map",
        t if t.starts_with("tuple") || t.starts_with("a tuple") || t.starts_with("an array") => "a list",
        _ => return text,
    };
    plain.to_string()
}

fn unexpected_kind(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a number",
        Unexpected::Char(_) => "a character",
        Unexpected::Str(_) | Unexpected::Bytes(_) => "a string",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "a list",
        Unexpected::Map => "a map",
        Unexpected::NewtypeStruct | Unexpected::Enum => "a value",
        Unexpected::UnitVariant | Unexpected::NewtypeVariant | Unexpected::TupleVariant | Unexpected::StructVariant => {
            "a variant"
        }
        Unexpected::Other(other) => return (*other).to_string(),
    }
    .to_string()
}

/// Like [`unexpected_kind`] but quoting scalars: a bad *value* is easier to spot when shown.
fn unexpected_value(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("`{b}`"),
        Unexpected::Unsigned(n) => format!("`{n}`"),
        Unexpected::Signed(n) => format!("`{n}`"),
        Unexpected::Float(n) => format!("`{n}`"),
        Unexpected::Char(c) => format!("`{c}`"),
        Unexpected::Str(s) => format!("`{s}`"),
        other => unexpected_kind(other),
    }
}

/// "expected X, found <the node's kind>".
fn mismatch(value: &ConfigValue, expected: &str) -> Error {
    Error::new(format!("expected {expected}, found {}", value.kind_name()))
}

fn out_of_range(n: i64, unsigned: bool, min: impl fmt::Display, max: impl fmt::Display) -> Error {
    if unsigned && n < 0 {
        Error::new(format!("expected a non-negative integer, found {n}"))
    } else {
        Error::new(format!("expected an integer between {min} and {max}, found {n}"))
    }
}

/// Deserialises one node, locating any error that has no location yet at that node.
fn node<'de, S: DeserializeSeed<'de>>(seed: S, value: &'de ConfigValue) -> Result<S::Value, Error> {
    seed.deserialize(ValueDe(value)).map_err(|e| e.or_at(value.span))
}

/// Deserializer for one config node.
struct ValueDe<'de>(&'de ConfigValue);

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let n = self.integer()?;
            match <$ty>::try_from(n) {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(out_of_range(n, <$ty>::MIN == 0, <$ty>::MIN, <$ty>::MAX)),
            }
        }
    };
}

impl<'de> ValueDe<'de> {
    fn integer(&self) -> Result<i64, Error> {
        match self.0.kind {
            ConfigKind::Int(n) => Ok(n),
            _ => Err(mismatch(self.0, "an integer")),
        }
    }

    fn float(&self) -> Result<f64, Error> {
        match self.0.kind {
            ConfigKind::Int(n) => Ok(n as f64),
            ConfigKind::Float(f) => Ok(f),
            _ => Err(mismatch(self.0, "a number")),
        }
    }

    /// Scalars as text; other scalars than strings are accepted because YAML types `path: 123` as an int.
    fn visit_text<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Str(s) => visitor.visit_borrowed_str(s),
            ConfigKind::Int(n) => visitor.visit_string(n.to_string()),
            // Debug keeps the decimal point (`1.0`, not `1`).
            ConfigKind::Float(f) => visitor.visit_string(format!("{f:?}")),
            ConfigKind::Bool(b) => visitor.visit_string(b.to_string()),
            _ => Err(mismatch(self.0, "a string")),
        }
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: &'de [ConfigValue], visitor: V) -> Result<V::Value, Error> {
    let mut access = SeqDe { iter: items.iter().enumerate() };
    let value = visitor.visit_seq(&mut access)?;
    match access.iter.len() {
        0 => Ok(value),
        left => Err(Error::new(format!(
            "expected a list of {} {}, found {}",
            items.len() - left,
            item_word(items.len() - left),
            items.len()
        ))),
    }
}

fn visit_map<'de, V: Visitor<'de>>(
    entries: &'de [(Spanned<String>, ConfigValue)],
    visitor: V,
) -> Result<V::Value, Error> {
    let mut access = MapDe { iter: entries.iter(), current: None, last_key: None };
    visitor.visit_map(&mut access).map_err(|e| match access.last_key {
        // A duplicate field is noticed by the visitor after the key was read: point at that key.
        Some(key) if e.at_key => e.or_at(key),
        _ => e,
    })
}

impl<'de> Deserializer<'de> for ValueDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Null => visitor.visit_unit(),
            ConfigKind::Bool(b) => visitor.visit_bool(*b),
            ConfigKind::Int(n) => visitor.visit_i64(*n),
            ConfigKind::Float(f) => visitor.visit_f64(*f),
            ConfigKind::Str(s) => visitor.visit_borrowed_str(s),
            ConfigKind::Seq(items) => visit_seq(items, visitor),
            ConfigKind::Map(entries) => visit_map(entries, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.kind {
            ConfigKind::Bool(b) => visitor.visit_bool(b),
            _ => Err(mismatch(self.0, "`true` or `false`")),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_i128, visit_i128, i128);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);
    int_method!(deserialize_u128, visit_u128, u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f32(self.float()? as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let ConfigKind::Str(s) = &self.0.kind {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return visitor.visit_char(c);
            }
        }
        Err(mismatch(self.0, "a single character"))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_text(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_text(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Str(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            ConfigKind::Seq(items) => visit_seq(items, visitor),
            _ => Err(mismatch(self.0, "a string")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.kind {
            ConfigKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.kind {
            ConfigKind::Null => visitor.visit_unit(),
            _ => Err(mismatch(self.0, "an empty value")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Seq(items) => visit_seq(items, visitor),
            _ => Err(mismatch(self.0, "a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Seq(items) if items.len() == len => visit_seq(items, visitor),
            ConfigKind::Seq(items) => {
                Err(Error::new(format!("expected a list of {len} {}, found {}", item_word(len), items.len())))
            }
            _ => Err(mismatch(self.0, &format!("a list of {len} {}", item_word(len)))),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Map(entries) => visit_map(entries, visitor),
            ConfigKind::Null => visit_map(&[], visitor),
            _ => Err(mismatch(self.0, "a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED_NAME {
            return visitor.visit_map(SpannedAccess::new(self.0.span, self));
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.0.kind {
            ConfigKind::Str(s) => visitor.visit_enum(EnumDe { variant: s, span: self.0.span, value: None }),
            ConfigKind::Map(entries) => match entries.as_slice() {
                [(key, value)] => {
                    visitor.visit_enum(EnumDe { variant: &key.value, span: key.span, value: Some(value) })
                }
                _ => Err(Error::new(format!(
                    "expected a single key naming one of: {}; found a map with {} keys",
                    variants.join(", "),
                    entries.len()
                ))),
            },
            _ => Err(mismatch(self.0, &format!("one of: {}", variants.join(", ")))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.visit_text(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct SeqDe<'de> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, ConfigValue>>,
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some((i, value)) => node(seed, value).map(Some).map_err(|e| e.within(Segment::Index(i))),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'de> {
    iter: std::slice::Iter<'de, (Spanned<String>, ConfigValue)>,
    /// The entry whose key was read last and whose value is next.
    current: Option<&'de (Spanned<String>, ConfigValue)>,
    last_key: Option<Span>,
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.iter.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        self.last_key = Some(entry.0.span);
        seed.deserialize(KeyDe(&entry.0)).map(Some).map_err(|e| e.or_at(entry.0.span))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self.current.take().ok_or_else(|| Error::new("a map value was read before its key"))?;
        node(seed, value).map_err(|e| e.within(Segment::Key(key.value.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The private map behind [`Spanned`]: line, column, then the value from the wrapped deserializer.
struct SpannedAccess<D> {
    span: Span,
    value: Option<D>,
    field: usize,
}

impl<D> SpannedAccess<D> {
    fn new(span: Span, value: D) -> Self {
        SpannedAccess { span, value: Some(value), field: 0 }
    }
}

impl<'de, D: Deserializer<'de, Error = Error>> MapAccess<'de> for SpannedAccess<D> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match SPANNED_FIELDS.get(self.field) {
            Some(name) => seed.deserialize(BorrowedStrDeserializer::<Error>::new(name)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.field += 1;
        match self.field {
            1 => seed.deserialize(self.span.line.into_deserializer()),
            2 => seed.deserialize(self.span.col.into_deserializer()),
            _ => match self.value.take() {
                Some(d) => seed.deserialize(d).map_err(|e| e.or_at(self.span)),
                None => Err(Error::new("a located value was read twice")),
            },
        }
    }
}

/// Deserializer for a map key: text, also read as a number or boolean when the target asks for one.
struct KeyDe<'de>(&'de Spanned<String>);

macro_rules! key_parse_method {
    ($method:ident, $visit:ident, $ty:ty, $what:literal) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.value.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(Error::new(format!(concat!("expected ", $what, " as key, found `{}`"), self.0.value))),
            }
        }
    };
}

impl<'de> Deserializer<'de> for KeyDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(&self.0.value)
    }

    key_parse_method!(deserialize_bool, visit_bool, bool, "`true` or `false`");
    key_parse_method!(deserialize_i8, visit_i8, i8, "an integer");
    key_parse_method!(deserialize_i16, visit_i16, i16, "an integer");
    key_parse_method!(deserialize_i32, visit_i32, i32, "an integer");
    key_parse_method!(deserialize_i64, visit_i64, i64, "an integer");
    key_parse_method!(deserialize_u8, visit_u8, u8, "a non-negative integer");
    key_parse_method!(deserialize_u16, visit_u16, u16, "a non-negative integer");
    key_parse_method!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    key_parse_method!(deserialize_u64, visit_u64, u64, "a non-negative integer");
    key_parse_method!(deserialize_f32, visit_f32, f32, "a number");
    key_parse_method!(deserialize_f64, visit_f64, f64, "a number");
    key_parse_method!(deserialize_char, visit_char, char, "a single character");

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED_NAME {
            return visitor.visit_map(SpannedAccess::new(self.0.span, self));
        }
        Err(Error::new(format!("expected a map, found the key `{}`", self.0.value)))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(EnumDe { variant: &self.0.value, span: self.0.span, value: None })
    }

    forward_to_deserialize_any! {
        i128 u128 str string bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// An externally tagged enum: `variant` alone, or `{ variant: value }`.
struct EnumDe<'de> {
    variant: &'de str,
    /// Where the variant name is written.
    span: Span,
    value: Option<&'de ConfigValue>,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = Error;
    type Variant = VariantDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantDe<'de>), Error> {
        let v =
            seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.variant)).map_err(|e| e.or_at(self.span))?;
        Ok((v, VariantDe { variant: self.variant, span: self.span, value: self.value }))
    }
}

struct VariantDe<'de> {
    variant: &'de str,
    span: Span,
    value: Option<&'de ConfigValue>,
}

impl<'de> VariantDe<'de> {
    /// The settings of a variant that needs some, located under the variant's name in the key path.
    fn settings(&self) -> Result<&'de ConfigValue, Error> {
        self.value.ok_or_else(|| {
            Error::new(format!("`{v}` needs settings: write `{{ {v}: ... }}`", v = self.variant)).or_at(self.span)
        })
    }

    fn inside(&self, e: Error, value: &ConfigValue) -> Error {
        e.or_at(value.span).within(Segment::Key(self.variant.to_string()))
    }
}

impl<'de> VariantAccess<'de> for VariantDe<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(v) if v.kind == ConfigKind::Null => Ok(()),
            Some(v) => {
                Err(self
                    .inside(Error::new(format!("`{}` takes no settings, found {}", self.variant, v.kind_name())), v))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let value = self.settings()?;
        node(seed, value).map_err(|e| self.inside(e, value))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let value = self.settings()?;
        ValueDe(value).deserialize_tuple(len, visitor).map_err(|e| self.inside(e, value))
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        let value = self.settings()?;
        ValueDe(value).deserialize_struct("", fields, visitor).map_err(|e| self.inside(e, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;
    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};
    use std::time::Duration;

    // Tiny tree builders; the line/column is all a test needs to tell nodes apart.
    fn at(line: u32, col: u32, kind: ConfigKind) -> ConfigValue {
        ConfigValue::new(Span::new(line, col), kind)
    }
    fn s(line: u32, col: u32, text: &str) -> ConfigValue {
        at(line, col, ConfigKind::Str(text.to_string()))
    }
    fn int(line: u32, col: u32, n: i64) -> ConfigValue {
        at(line, col, ConfigKind::Int(n))
    }
    fn seq(line: u32, col: u32, items: Vec<ConfigValue>) -> ConfigValue {
        at(line, col, ConfigKind::Seq(items))
    }
    /// A map whose keys sit on the line of their value, two columns before it.
    fn map(line: u32, col: u32, entries: Vec<(&str, ConfigValue)>) -> ConfigValue {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (Spanned::new(Span::new(v.span.line, v.span.col.saturating_sub(2)), k.to_string()), v))
            .collect();
        at(line, col, ConfigKind::Map(entries))
    }
    fn err<T: DeserializeOwned + fmt::Debug>(v: &ConfigValue) -> Diagnostic {
        match from_config::<T>(v) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(d) => d,
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        #[serde(rename = "where")]
        cond: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Window {
        size: ConfigDuration,
        #[serde(default)]
        slide: Option<ConfigDuration>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Agg {
        window: Window,
        #[serde(default)]
        keys: Vec<String>,
    }

    #[test]
    fn reads_a_struct() {
        let v = map(1, 1, vec![("where", s(1, 8, "price > 10"))]);
        assert_eq!(from_config::<Filter>(&v).unwrap(), Filter { cond: "price > 10".into() });
    }

    #[test]
    fn unknown_key_points_at_the_key_with_a_suggestion() {
        let v = map(3, 5, vec![("wher", s(4, 11, "x"))]);
        let d = err::<Filter>(&v);
        assert_eq!(d.message, "unknown key `wher` (expected one of: where)");
        assert_eq!(d.hint.as_deref(), Some("did you mean `where`?"));
        assert_eq!(d.span, Some(Span::new(4, 9)));
    }

    #[test]
    fn unknown_key_without_close_match_has_no_hint() {
        let v = map(1, 1, vec![("colour", s(2, 9, "x"))]);
        let d = err::<Filter>(&v);
        assert_eq!(d.hint, None);
    }

    #[test]
    fn type_error_names_the_key_and_points_at_the_value() {
        let v = map(1, 1, vec![("where", map(2, 10, vec![("a", int(2, 14, 1))]))]);
        let d = err::<Filter>(&v);
        assert_eq!(d.message, "`where`: expected a string, found a map");
        assert_eq!(d.span, Some(Span::new(2, 10)));
    }

    #[test]
    fn missing_key_points_at_the_map() {
        let v = map(5, 3, vec![]);
        let d = err::<Filter>(&v);
        assert_eq!(d.message, "missing key `where`");
        assert_eq!(d.span, Some(Span::new(5, 3)));
    }

    #[test]
    fn nested_errors_carry_the_key_path() {
        let v = map(1, 1, vec![("window", map(2, 3, vec![("slide", s(3, 12, "5s"))]))]);
        let d = err::<Agg>(&v);
        assert_eq!(d.message, "`window`: missing key `size`");
        assert_eq!(d.span, Some(Span::new(2, 3)));

        let v = map(1, 1, vec![("window", map(2, 3, vec![("size", seq(3, 9, vec![]))]))]);
        let d = err::<Agg>(&v);
        assert!(d.message.starts_with("`window.size`: "), "{}", d.message);
        assert_eq!(d.span, Some(Span::new(3, 9)));

        let v = map(1, 1, vec![("window", map(2, 3, vec![("sise", s(3, 9, "1s"))]))]);
        let d = err::<Agg>(&v);
        assert_eq!(d.message, "`window`: unknown key `sise` (expected one of: size, slide)");
        assert_eq!(d.hint.as_deref(), Some("did you mean `size`?"));
        assert_eq!(d.span, Some(Span::new(3, 7)));
    }

    #[test]
    fn list_items_are_indexed_in_the_path() {
        let v = map(
            1,
            1,
            vec![
                ("window", map(2, 3, vec![("size", s(2, 9, "1s"))])),
                ("keys", seq(3, 9, vec![s(3, 10, "a"), seq(3, 13, vec![])])),
            ],
        );
        let d = err::<Agg>(&v);
        assert_eq!(d.message, "`keys[1]`: expected a string, found a list");
        assert_eq!(d.span, Some(Span::new(3, 13)));
    }

    #[test]
    fn durations_parse_and_fail_at_the_value() {
        let v = map(1, 1, vec![("size", s(1, 7, "10s")), ("slide", int(2, 8, 0))]);
        let w = from_config::<Window>(&v).unwrap();
        assert_eq!(w.size.0, Duration::from_secs(10));
        assert_eq!(w.slide, Some(ConfigDuration(Duration::ZERO)));

        let v = map(1, 1, vec![("size", s(1, 7, "fast"))]);
        let d = err::<Window>(&v);
        assert!(d.message.starts_with("`size`: invalid duration `fast`"), "{}", d.message);
        assert_eq!(d.span, Some(Span::new(1, 7)));
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(from_config::<u8>(&int(1, 1, 255)).unwrap(), 255);
        assert_eq!(err::<u8>(&int(1, 1, 256)).message, "expected an integer between 0 and 255, found 256");
        assert_eq!(err::<usize>(&int(1, 1, -1)).message, "expected a non-negative integer, found -1");
        assert_eq!(err::<i8>(&int(1, 1, -129)).message, "expected an integer between -128 and 127, found -129");
        assert_eq!(from_config::<i64>(&int(1, 1, i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(from_config::<u128>(&int(1, 1, 7)).unwrap(), 7);
        assert_eq!(err::<u32>(&s(2, 4, "12")).message, "expected an integer, found a string");
        assert_eq!(err::<u32>(&s(2, 4, "12")).span, Some(Span::new(2, 4)));
        assert_eq!(err::<i32>(&at(1, 1, ConfigKind::Float(1.5))).message, "expected an integer, found a number");
    }

    #[test]
    fn floats_accept_integers() {
        assert_eq!(from_config::<f64>(&int(1, 1, 3)).unwrap(), 3.0);
        assert_eq!(from_config::<f32>(&at(1, 1, ConfigKind::Float(0.5))).unwrap(), 0.5);
        assert_eq!(err::<f64>(&s(1, 1, "x")).message, "expected a number, found a string");
    }

    #[test]
    fn strings_accept_any_scalar() {
        assert_eq!(from_config::<String>(&int(1, 1, 123)).unwrap(), "123");
        assert_eq!(from_config::<String>(&at(1, 1, ConfigKind::Float(1.0))).unwrap(), "1.0");
        assert_eq!(from_config::<String>(&at(1, 1, ConfigKind::Bool(true))).unwrap(), "true");
        assert_eq!(err::<String>(&at(1, 1, ConfigKind::Null)).message, "expected a string, found null");
    }

    #[test]
    fn bools_and_chars() {
        assert!(from_config::<bool>(&at(1, 1, ConfigKind::Bool(true))).unwrap());
        assert_eq!(err::<bool>(&s(1, 1, "yes")).message, "expected `true` or `false`, found a string");
        assert_eq!(from_config::<char>(&s(1, 1, ";")).unwrap(), ';');
        assert_eq!(err::<char>(&s(1, 1, ";;")).message, "expected a single character, found a string");
    }

    #[test]
    fn options_units_and_missing_optional_fields() {
        assert_eq!(from_config::<Option<i64>>(&at(1, 1, ConfigKind::Null)).unwrap(), None);
        assert_eq!(from_config::<Option<i64>>(&int(1, 1, 4)).unwrap(), Some(4));
        from_config::<()>(&at(1, 1, ConfigKind::Null)).unwrap();
        assert_eq!(err::<()>(&int(1, 1, 1)).message, "expected an empty value, found an integer");
        let w = from_config::<Window>(&map(1, 1, vec![("size", s(1, 7, "1s"))])).unwrap();
        assert_eq!(w.slide, None);
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct AllDefaults {
        batch: u32,
        name: String,
    }

    #[test]
    fn an_empty_value_is_an_empty_struct() {
        assert_eq!(from_config::<AllDefaults>(&at(1, 1, ConfigKind::Null)).unwrap(), AllDefaults::default());
    }

    #[test]
    fn unknown_keys_are_ignored_without_deny() {
        let v = map(1, 1, vec![("batch", int(1, 8, 3)), ("other", seq(2, 8, vec![int(2, 9, 1)]))]);
        assert_eq!(from_config::<AllDefaults>(&v).unwrap().batch, 3);
    }

    #[test]
    fn seqs_tuples_maps_and_newtypes() {
        let list = seq(1, 1, vec![int(1, 2, 1), int(1, 5, 2)]);
        assert_eq!(from_config::<Vec<i64>>(&list).unwrap(), vec![1, 2]);
        assert_eq!(from_config::<(i64, String)>(&list).unwrap(), (1, "2".to_string()));
        assert_eq!(from_config::<[u8; 2]>(&list).unwrap(), [1, 2]);
        assert_eq!(err::<(i64, i64, i64)>(&list).message, "expected a list of 3 items, found 2");
        assert_eq!(err::<Vec<i64>>(&s(1, 1, "x")).message, "expected a list, found a string");

        #[derive(Debug, Deserialize, PartialEq)]
        struct Meters(f64);
        assert_eq!(from_config::<Meters>(&int(1, 1, 3)).unwrap(), Meters(3.0));

        let m = map(1, 1, vec![("a", int(1, 4, 1)), ("b", int(2, 4, 2))]);
        let hm = from_config::<HashMap<String, i64>>(&m).unwrap();
        assert_eq!(hm["b"], 2);
        let numbered = map(1, 1, vec![("10", s(1, 5, "x")), ("2", s(2, 4, "y"))]);
        let bt = from_config::<BTreeMap<u32, String>>(&numbered).unwrap();
        assert_eq!(bt.keys().copied().collect::<Vec<_>>(), vec![2, 10]);
        let d = err::<BTreeMap<u32, String>>(&map(1, 1, vec![("x", s(3, 5, "y"))]));
        assert_eq!(d.message, "expected a non-negative integer as key, found `x`");
        assert_eq!(d.span, Some(Span::new(3, 3)));
        assert_eq!(err::<HashMap<String, i64>>(&list).message, "expected a map, found a list");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum WindowKind {
        Global,
        Tumbling(ConfigDuration),
        Sliding { size: ConfigDuration, slide: ConfigDuration },
        Pair(u32, u32),
    }

    #[test]
    fn enums_are_externally_tagged() {
        assert_eq!(from_config::<WindowKind>(&s(1, 1, "global")).unwrap(), WindowKind::Global);
        let t = map(1, 1, vec![("tumbling", s(1, 13, "10s"))]);
        assert_eq!(
            from_config::<WindowKind>(&t).unwrap(),
            WindowKind::Tumbling(ConfigDuration(Duration::from_secs(10)))
        );
        let sl = map(1, 1, vec![("sliding", map(2, 3, vec![("size", s(2, 9, "10s")), ("slide", s(3, 10, "5s"))]))]);
        assert!(matches!(from_config::<WindowKind>(&sl).unwrap(), WindowKind::Sliding { .. }));
        let p = map(1, 1, vec![("pair", seq(1, 7, vec![int(1, 8, 1), int(1, 11, 2)]))]);
        assert_eq!(from_config::<WindowKind>(&p).unwrap(), WindowKind::Pair(1, 2));
        let g = map(1, 1, vec![("global", at(1, 9, ConfigKind::Null))]);
        assert_eq!(from_config::<WindowKind>(&g).unwrap(), WindowKind::Global);
    }

    #[test]
    fn enum_errors() {
        let d = err::<WindowKind>(&s(2, 7, "tumbing"));
        assert_eq!(d.message, "unknown value `tumbing` (expected one of: global, tumbling, sliding, pair)");
        assert_eq!(d.hint.as_deref(), Some("did you mean `tumbling`?"));
        assert_eq!(d.span, Some(Span::new(2, 7)));

        let d = err::<WindowKind>(&s(2, 7, "tumbling"));
        assert_eq!(d.message, "`tumbling` needs settings: write `{ tumbling: ... }`");

        let sl = map(1, 1, vec![("sliding", map(2, 3, vec![("size", s(2, 9, "10s"))]))]);
        let d = err::<WindowKind>(&sl);
        assert_eq!(d.message, "`sliding`: missing key `slide`");
        assert_eq!(d.span, Some(Span::new(2, 3)));

        let two = map(1, 1, vec![("global", int(1, 9, 1)), ("pair", int(2, 9, 1))]);
        assert_eq!(
            err::<WindowKind>(&two).message,
            "expected a single key naming one of: global, tumbling, sliding, pair; found a map with 2 keys"
        );
        let d = err::<WindowKind>(&map(1, 1, vec![("global", int(1, 9, 1))]));
        assert_eq!(d.message, "`global`: `global` takes no settings, found an integer");
        assert_eq!(d.span, Some(Span::new(1, 9)));
        assert_eq!(
            err::<WindowKind>(&int(1, 1, 3)).message,
            "expected one of: global, tumbling, sliding, pair, found an integer"
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Located {
        name: Spanned<String>,
        count: Spanned<u32>,
        tags: Vec<Spanned<String>>,
        #[serde(default)]
        note: Option<Spanned<String>>,
    }

    #[test]
    fn spanned_fields_keep_their_location() {
        let v = map(
            1,
            1,
            vec![
                ("name", s(1, 7, "bids")),
                ("count", int(2, 8, 3)),
                ("tags", seq(3, 7, vec![s(3, 8, "a"), s(3, 11, "b")])),
            ],
        );
        let l = from_config::<Located>(&v).unwrap();
        assert_eq!(l.name, Spanned::new(Span::new(1, 7), "bids".to_string()));
        assert_eq!(l.count, Spanned::new(Span::new(2, 8), 3));
        assert_eq!(l.tags[1], Spanned::new(Span::new(3, 11), "b".to_string()));
        assert!(l.note.is_none());

        let top = from_config::<Spanned<i64>>(&int(9, 4, -2)).unwrap();
        assert_eq!((top.span, top.value), (Span::new(9, 4), -2));
    }

    #[test]
    fn errors_inside_spanned_are_located() {
        let v = map(1, 1, vec![("name", s(1, 7, "x")), ("count", s(2, 8, "many")), ("tags", seq(3, 7, vec![]))]);
        let d = err::<Located>(&v);
        assert_eq!(d.message, "`count`: expected an integer, found a string");
        assert_eq!(d.span, Some(Span::new(2, 8)));
    }

    #[test]
    fn spanned_map_keys() {
        let m = map(1, 1, vec![("a", int(4, 5, 1))]);
        let hm = from_config::<HashMap<Spanned<String>, i64>>(&m).unwrap();
        let (k, v) = hm.into_iter().next().unwrap();
        assert_eq!((k.span, k.value.as_str(), v), (Span::new(4, 3), "a", 1));
    }

    #[test]
    fn spanned_fails_cleanly_elsewhere() {
        let d = serde::de::value::StrDeserializer::<serde::de::value::Error>::new("x");
        assert!(Spanned::<String>::deserialize(d).is_err());
    }

    #[test]
    fn duplicate_fields_point_at_the_second_key() {
        // The YAML loader rejects duplicates; hand-built trees can still have them.
        let v = map(1, 1, vec![("where", s(1, 8, "a")), ("where", s(2, 8, "b"))]);
        let d = err::<Filter>(&v);
        assert_eq!(d.message, "duplicate key `where`");
        assert_eq!(d.span, Some(Span::new(2, 6)));
    }

    #[test]
    fn deserialize_any_follows_the_node() {
        #[derive(Debug, Deserialize, PartialEq)]
        #[serde(untagged)]
        enum Any {
            Int(i64),
            Text(String),
            List(Vec<Any>),
        }
        let v = seq(1, 1, vec![int(1, 2, 1), s(1, 5, "x")]);
        assert_eq!(from_config::<Any>(&v).unwrap(), Any::List(vec![Any::Int(1), Any::Text("x".into())]));
        let d = err::<Any>(&map(2, 2, vec![]));
        assert_eq!(d.span, Some(Span::new(2, 2)));
    }

    #[test]
    fn visitor_errors_use_config_words() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Deep {
            n: u16,
        }
        // A struct visitor handed a list through deserialize_any (untagged) says "a map", not "struct Deep".
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            deep: Deep,
        }
        let v = map(1, 1, vec![("deep", int(1, 7, 4))]);
        assert_eq!(err::<Outer>(&v).message, "`deep`: expected a map, found an integer");
    }
}
