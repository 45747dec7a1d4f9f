//! YAML text to a located [`ConfigValue`] tree, built from saphyr-parser's event stream.
//!
//! Every node gets the 1-based line and column where its content starts; for quoted scalars that is the
//! first character inside the quotes, so an offset into an expression maps straight to a column. Plain
//! scalars are typed by the YAML 1.2 core schema, quoted and block scalars are always strings, aliases
//! are copies of their anchored node, and a key written twice in one map is an error at the second one.
use eddy_api::config::{ConfigKind, ConfigValue, Span, Spanned};
use eddy_api::diagnostic::{Diagnostic, Diagnostics};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};
use std::borrow::Cow;
use std::collections::HashMap;

/// Deeper nesting than this is refused: the tree, serde and `Drop` all recurse over it.
const MAX_DEPTH: usize = 100;
/// Node budget, counting alias copies: stops "billion laughs" files before they exhaust memory.
const MAX_NODES: usize = 1_000_000;

/// Parses the text of a job file into a located tree.
///
/// An empty file (or one with only comments) is a null node at 1:1. On failure the diagnostics hold
/// either one syntax error or every duplicate key.
pub fn parse_yaml(text: &str) -> Result<ConfigValue, Diagnostics> {
    match load(text) {
        (Some(value), problems) if problems.is_empty() => Ok(value),
        (_, problems) => Err(problems),
    }
}

/// Like [`parse_yaml`] but keeps the tree when the only problems are duplicate keys (the first
/// occurrence wins), so the job model can report its own problems alongside them.
pub(crate) fn load(text: &str) -> (Option<ConfigValue>, Diagnostics) {
    let mut builder = Builder::new(text);
    match builder.run() {
        Ok(()) => {
            let root = builder.root.take().unwrap_or_else(|| ConfigValue::new(Span::new(1, 1), ConfigKind::Null));
            (Some(root), builder.problems)
        }
        Err(fatal) => {
            let mut problems = builder.problems;
            problems.push(fatal);
            (None, problems)
        }
    }
}

/// Types a plain (unquoted) scalar by the YAML 1.2 core schema.
pub fn plain_scalar(text: &str, span: Span) -> ConfigValue {
    ConfigValue::new(span, plain_kind(text))
}

fn plain_kind(text: &str) -> ConfigKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => ConfigKind::Null,
        "true" | "True" | "TRUE" => ConfigKind::Bool(true),
        "false" | "False" | "FALSE" => ConfigKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => ConfigKind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => ConfigKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => ConfigKind::Float(f64::NAN),
        _ => number_kind(text).unwrap_or_else(|| ConfigKind::Str(text.to_string())),
    }
}

fn number_kind(text: &str) -> Option<ConfigKind> {
    let radix = |digits: &str, base: u32| {
        let ok = !digits.is_empty() && digits.chars().all(|c| c.is_digit(base));
        ok.then(|| i64::from_str_radix(digits, base).ok().map(ConfigKind::Int)).flatten()
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return radix(hex, 16);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return radix(oct, 8);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        // Too big for an i64: still a number, so keep it as a float rather than text.
        return Some(text.parse().map(ConfigKind::Int).unwrap_or_else(|_| float_or_str(text)));
    }
    is_core_float(unsigned).then(|| float_or_str(text))
}

fn float_or_str(text: &str) -> ConfigKind {
    text.parse().map(ConfigKind::Float).unwrap_or_else(|_| ConfigKind::Str(text.to_string()))
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`, the core schema's float without sign.
fn is_core_float(t: &str) -> bool {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let int_len = digits(t);
    let mut rest = &t[int_len..];
    let mut mantissa = int_len;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = digits(frac);
        mantissa += n;
        rest = &frac[n..];
    } else if int_len == 0 {
        return false;
    }
    if mantissa == 0 {
        return false;
    }
    match rest.strip_prefix(['e', 'E']) {
        None => rest.is_empty(),
        Some(exp) => {
            let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
            !exp.is_empty() && digits(exp) == exp.len()
        }
    }
}

/// A collection being filled.
enum Frame {
    Seq {
        open: Open,
        items: Vec<ConfigValue>,
    },
    Map {
        open: Open,
        entries: Vec<(Spanned<String>, ConfigValue)>,
        key: Option<PendingKey>,
        seen: HashMap<String, Span>,
    },
}

/// Where a collection started, its anchor, and the node count then (to size it for alias copies).
struct Open {
    span: Span,
    anchor: usize,
    nodes_before: usize,
}

enum PendingKey {
    Keep(Spanned<String>),
    /// A duplicate: its value is read and dropped so the first definition stays.
    Discard,
}

struct Builder<'a> {
    text: &'a str,
    stack: Vec<Frame>,
    /// Anchor id to the anchored node and its node count.
    anchors: HashMap<usize, (ConfigValue, usize)>,
    root: Option<ConfigValue>,
    documents: usize,
    nodes: usize,
    problems: Diagnostics,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            documents: 0,
            nodes: 0,
            problems: Diagnostics::new(),
        }
    }

    fn run(&mut self) -> Result<(), Diagnostic> {
        let mut parser = Parser::new_from_str(self.text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| syntax_error(&e, self.text))?;
            self.event(event, span.start)?;
        }
        Ok(())
    }

    fn event(&mut self, event: Event<'_>, at: Marker) -> Result<(), Diagnostic> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::at(
                        position(at),
                        "a job file holds one YAML document; a second one starts here",
                    )
                    .with_hint("remove the `---` line, or split the jobs into separate files"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let props = anchor != 0 || tag.is_some();
                let span = self.content_start(
                    at,
                    props,
                    matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted),
                );
                self.scalar(text, style, tag.as_deref(), anchor, span)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let span = self.content_start(at, anchor != 0 || tag.is_some(), false);
                self.open(span, anchor, false)?;
            }
            Event::MappingStart(anchor, tag) => {
                let span = self.content_start(at, anchor != 0 || tag.is_some(), false);
                self.open(span, anchor, true)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::Alias(id) => self.alias(id, position(at))?,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    /// Where a node's content starts: past any `&anchor`/`!tag` written before it, and inside quotes.
    fn content_start(&self, at: Marker, has_properties: bool, quoted: bool) -> Span {
        let (mut line, mut col) = (at.line(), at.col());
        if has_properties {
            let mut chars = self.text.chars().skip(at.index()).peekable();
            let mut in_property = false;
            while let Some(&c) = chars.peek() {
                match c {
                    '&' | '!' if !in_property => in_property = true,
                    ' ' | '\t' => in_property = false,
                    '\n' => {
                        in_property = false;
                        line += 1;
                        col = 0;
                        chars.next();
                        continue;
                    }
                    '\r' => {}
                    _ if in_property => {}
                    _ => break,
                }
                col += 1;
                chars.next();
            }
        }
        if quoted {
            col += 1;
        }
        position(Marker::new(0, line, col))
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        anchor: usize,
        span: Span,
    ) -> Result<(), Diagnostic> {
        self.count(1, span)?;
        if self.expects_key() {
            // Keys keep their text as written: `1: x` has the key "1", not an integer.
            let key = text.into_owned();
            if anchor != 0 {
                self.anchors.insert(anchor, (ConfigValue::new(span, ConfigKind::Str(key.clone())), 1));
            }
            self.set_key(key, span);
            return Ok(());
        }
        let is_str_tag = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
        let kind = match style {
            ScalarStyle::Plain if !is_str_tag => plain_kind(&text),
            _ => ConfigKind::Str(text.into_owned()),
        };
        self.finish(ConfigValue::new(span, kind), anchor, 1)
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn set_key(&mut self, key: String, span: Span) {
        let Some(Frame::Map { key: pending, seen, .. }) = self.stack.last_mut() else {
            return;
        };
        if let Some(first) = seen.get(&key) {
            self.problems
                .push(Diagnostic::at(span, format!("duplicate key `{key}` (first defined at line {})", first.line)));
            *pending = Some(PendingKey::Discard);
        } else {
            seen.insert(key.clone(), span);
            *pending = Some(PendingKey::Keep(Spanned::new(span, key)));
        }
    }

    fn open(&mut self, span: Span, anchor: usize, map: bool) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::at(span, format!("the file is nested too deeply (more than {MAX_DEPTH} levels)")));
        }
        self.count(1, span)?;
        let open = Open { span, anchor, nodes_before: self.nodes };
        self.stack.push(if map {
            Frame::Map { open, entries: Vec::new(), key: None, seen: HashMap::new() }
        } else {
            Frame::Seq { open, items: Vec::new() }
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Diagnostic> {
        let (open, kind) = match self.stack.pop() {
            Some(Frame::Seq { open, items }) => (open, ConfigKind::Seq(items)),
            Some(Frame::Map { open, entries, .. }) => (open, ConfigKind::Map(entries)),
            None => return Ok(()),
        };
        // The collection itself was counted when opened; its size includes it.
        let size = self.nodes - open.nodes_before + 1;
        self.finish(ConfigValue::new(open.span, kind), open.anchor, size)
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), Diagnostic> {
        let Some((value, size)) = self.anchors.get(&id) else {
            return Err(Diagnostic::at(span, "this alias refers to an anchor that is not defined yet"));
        };
        let (mut value, size) = (value.clone(), *size);
        self.count(size, span)?;
        // The copy points at the alias, so "missing key" errors on it name the place it is used.
        value.span = span;
        if self.expects_key() {
            return match &value.kind {
                ConfigKind::Str(s) => {
                    let key = s.clone();
                    self.set_key(key, span);
                    Ok(())
                }
                _ => Err(not_a_key(&value)),
            };
        }
        self.finish(value, 0, size)
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::at(span, format!("the file expands to more than {MAX_NODES} values"))
                .with_hint("aliases (`*name`) copy their anchored value; nested aliases multiply"));
        }
        Ok(())
    }

    /// Places a completed node into its parent (or makes it the root) and records its anchor.
    fn finish(&mut self, node: ConfigValue, anchor: usize, size: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { key, entries, .. }) => match key.take() {
                Some(PendingKey::Keep(k)) => entries.push((k, node)),
                Some(PendingKey::Discard) => {}
                None => return Err(not_a_key(&node)),
            },
        }
        Ok(())
    }
}

fn not_a_key(node: &ConfigValue) -> Diagnostic {
    Diagnostic::at(node.span, format!("a map key must be a plain value, found {}", node.kind_name()))
}

/// saphyr's 0-based column to our 1-based one.
fn position(m: Marker) -> Span {
    Span::new(clamp_u32(m.line()), clamp_u32(m.col().saturating_add(1)))
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn syntax_error(e: &ScanError, text: &str) -> Diagnostic {
    let span = past_the_end(position(*e.marker()), text);
    let (message, hint) = plain_words(e.info());
    let d = Diagnostic::at(span, format!("YAML syntax error: {message}"));
    match hint {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

/// Errors found at the end of the input ("expected `]`") are reported after the last written character,
/// where the reader can see what is missing, rather than on an empty line past it.
fn past_the_end(span: Span, text: &str) -> Span {
    let lines: Vec<&str> = text.split('\n').collect();
    let idx = span.line.saturating_sub(1) as usize;
    let blank_from_here = lines.get(idx..).is_none_or(|rest| rest.iter().all(|l| l.trim().is_empty()));
    if !blank_from_here {
        return span;
    }
    match lines.iter().rposition(|l| !l.trim().is_empty()) {
        Some(last) => {
            let width = lines[last].trim_end().chars().count();
            Span::new(clamp_u32(last + 1), clamp_u32(width + 1))
        }
        None => Span::new(1, 1),
    }
}

/// The scanner's messages in the words of someone editing a config file, with a hint where one helps.
fn plain_words(info: &str) -> (String, Option<&'static str>) {
    const TABLE: &[(&str, &str, Option<&str>)] = &[
        ("did not find expected node content", "expected a value here", None),
        ("tab", "tab character in indentation", Some("YAML indents with spaces only")),
        (
            "mapping values are not allowed",
            "unexpected `:`",
            Some("quote the value if it contains `: `, or check the indentation"),
        ),
        ("quoted scalar, found unexpected end", "unterminated quoted string", Some("add the closing quote")),
        ("expected ',' or ']'", "expected `,` or `]` in a `[...]` list", None),
        ("expected ',' or '}'", "expected `,` or `}` in a `{...}` map", None),
        (
            "block mapping, did not find expected key",
            "expected a key at this indentation",
            Some("check the indentation of this line"),
        ),
        (
            "did not find expected '-' indicator",
            "expected a `- ` list item at this indentation",
            Some("check the indentation of this line"),
        ),
        (
            "block sequence entries are not allowed",
            "a `- ` list item is not allowed here",
            Some("check the indentation of this line"),
        ),
        ("unprintable character", "unexpected non-printable character", Some("is this a text file?")),
        (
            "unknown anchor",
            "this alias refers to an anchor that is not defined",
            Some("define `&name` before using `*name`"),
        ),
        ("recursion limit exceeded", "the file is nested too deeply", None),
        ("unexpected eof", "the file ends in the middle of a value", None),
        ("expect ':'", "expected `:` after a key", None),
        (
            "invalid indentation",
            "invalid indentation",
            Some("check the indentation of this line, and that every `{` and `[` above it is closed"),
        ),
    ];
    for (needle, plain, hint) in TABLE {
        if info.contains(needle) {
            return (plain.to_string(), *hint);
        }
    }
    (info.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigValue {
        match parse_yaml(text) {
            Ok(v) => v,
            Err(d) => panic!("{text:?}: {:?}", d.0),
        }
    }

    fn fail(text: &str) -> Diagnostic {
        match parse_yaml(text) {
            Ok(v) => panic!("{text:?} parsed: {v:?}"),
            Err(d) => d.0.into_iter().next().unwrap_or_else(|| Diagnostic::new("no diagnostic")),
        }
    }

    fn kind(text: &str) -> ConfigKind {
        parse(text).kind
    }

    fn get<'v>(v: &'v ConfigValue, key: &str) -> &'v ConfigValue {
        v.get(key).unwrap_or_else(|| panic!("no key {key}"))
    }

    #[test]
    fn core_schema_types_plain_scalars() {
        assert_eq!(kind("~"), ConfigKind::Null);
        assert_eq!(kind("null"), ConfigKind::Null);
        assert_eq!(kind("True"), ConfigKind::Bool(true));
        assert_eq!(kind("false"), ConfigKind::Bool(false));
        assert_eq!(kind("42"), ConfigKind::Int(42));
        assert_eq!(kind("-7"), ConfigKind::Int(-7));
        assert_eq!(kind("+7"), ConfigKind::Int(7));
        assert_eq!(kind("0x1F"), ConfigKind::Int(31));
        assert_eq!(kind("0o17"), ConfigKind::Int(15));
        assert_eq!(kind("1.5"), ConfigKind::Float(1.5));
        assert_eq!(kind(".5"), ConfigKind::Float(0.5));
        assert_eq!(kind("1e3"), ConfigKind::Float(1000.0));
        assert_eq!(kind("-.inf"), ConfigKind::Float(f64::NEG_INFINITY));
        assert!(matches!(kind(".nan"), ConfigKind::Float(f) if f.is_nan()));
        assert_eq!(kind("99999999999999999999"), ConfigKind::Float(1e20));
        for text in ["yes", "1_000", "0x", "1.2.3", "inf", "nan", "5ms", "e5", ".", "1e", "0xZZ"] {
            assert_eq!(kind(text), ConfigKind::Str(text.into()), "{text}");
        }
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(kind("'42'"), ConfigKind::Str("42".into()));
        assert_eq!(kind("\"true\""), ConfigKind::Str("true".into()));
        assert_eq!(kind("|\n  null\n"), ConfigKind::Str("null\n".into()));
        assert_eq!(kind("!!str 12"), ConfigKind::Str("12".into()));
        assert_eq!(
            kind("a: ''").clone(),
            ConfigKind::Map(vec![(
                Spanned::new(Span::new(1, 1), "a".into()),
                ConfigValue::new(Span::new(1, 5), ConfigKind::Str(String::new()))
            )])
        );
    }

    #[test]
    fn empty_values_are_null() {
        let v = parse("a:\nb: {c: }\n");
        assert_eq!(get(&v, "a").kind, ConfigKind::Null);
        assert_eq!(get(get(&v, "b"), "c").kind, ConfigKind::Null);
        assert_eq!(parse("").kind, ConfigKind::Null);
        assert_eq!(parse("# only a comment\n").span, Span::new(1, 1));
    }

    #[test]
    fn nodes_know_their_line_and_column() {
        let v = parse("name: q1\nsources:\n  bids:\n    type: csv\n    inputs: [a, 'b c']\n");
        assert_eq!(v.span, Span::new(1, 1));
        let ConfigKind::Map(entries) = &v.kind else { panic!("not a map") };
        assert_eq!(entries[1].0, Spanned::new(Span::new(2, 1), "sources".to_string()));
        let bids = get(get(&v, "sources"), "bids");
        assert_eq!(bids.span, Span::new(4, 5));
        assert_eq!(get(bids, "type").span, Span::new(4, 11));
        let ConfigKind::Seq(inputs) = &get(bids, "inputs").kind else { panic!("not a list") };
        assert_eq!(get(bids, "inputs").span, Span::new(5, 13));
        assert_eq!(inputs[0].span, Span::new(5, 14));
        // Inside the quotes: the `b` of 'b c'.
        assert_eq!(inputs[1].span, Span::new(5, 18));
    }

    #[test]
    fn quoted_spans_point_inside_the_quotes_and_count_characters() {
        let v = parse("é: \"price * 2\"\nx: &a 'q'\ny: !!str\n  \"zz\"\n");
        assert_eq!(get(&v, "é").span, Span::new(1, 5));
        assert_eq!(get(&v, "x").span, Span::new(2, 8));
        assert_eq!(get(&v, "y").span, Span::new(4, 4));
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let v = parse("base: &b {path: x, n: 1}\nfirst: *b\nlist: &l [1, 2]\nagain: *l\n");
        assert_eq!(get(get(&v, "first"), "path").kind, ConfigKind::Str("x".into()));
        assert_eq!(get(&v, "first").span, Span::new(2, 8));
        assert_eq!(get(&v, "again").kind, get(&v, "list").kind);
        let w = parse("k: &name key\n*name : 3\n");
        assert_eq!(get(&w, "key").kind, ConfigKind::Int(3));
    }

    #[test]
    fn anchored_collections_start_at_their_content() {
        let v = parse("b: &m\n  c: 1\nd: &s [1]\n");
        assert_eq!(get(&v, "b").span, Span::new(2, 3));
        assert_eq!(get(&v, "d").span, Span::new(3, 7));
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_second() {
        let d = fail("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.message, "duplicate key `a` (first defined at line 1)");
        assert_eq!(d.span, Some(Span::new(3, 1)));
        // The first definition wins when the model reads on.
        let (v, problems) = load("a: 1\na: {x: 2}\n");
        assert_eq!(problems.0.len(), 1);
        assert_eq!(v.map(|v| get(&v, "a").kind.clone()), Some(ConfigKind::Int(1)));
        // Same key in different maps is fine.
        parse("x: {a: 1}\ny: {a: 2}\n");
    }

    #[test]
    fn syntax_errors_are_located_in_plain_words() {
        let d = fail("a: 1\nb: [1, 2\n");
        assert_eq!(d.message, "YAML syntax error: expected `,` or `]` in a `[...]` list");
        assert_eq!(d.span, Some(Span::new(2, 9)));
        let d = fail("a: b: c\n");
        assert_eq!(d.message, "YAML syntax error: unexpected `:`");
        assert_eq!(d.span, Some(Span::new(1, 5)));
        let d = fail("a:\n\tb: 1\n");
        assert_eq!(d.message, "YAML syntax error: tab character in indentation");
        assert_eq!(d.hint.as_deref(), Some("YAML indents with spaces only"));
        let d = fail("x: *nope\n");
        assert_eq!(d.span, Some(Span::new(1, 4)));
        let d = fail("[");
        assert_eq!(d.span, Some(Span::new(1, 2)));
    }

    #[test]
    fn a_second_document_is_an_error() {
        let d = fail("a: 1\n---\nb: 2\n");
        assert_eq!(d.message, "a job file holds one YAML document; a second one starts here");
        assert_eq!(d.span, Some(Span::new(2, 1)));
        parse("---\na: 1\n");
        parse("a: 1\n...\n");
    }

    #[test]
    fn complex_keys_are_refused() {
        let d = fail("? [a]\n: b\n");
        assert_eq!(d.message, "a map key must be a plain value, found a list");
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}1{}", "[".repeat(150), "]".repeat(150));
        assert!(fail(&deep).message.contains("nested too deeply"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, next) in
            ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(fail(&bomb).message.contains("expands to more than"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "",
            "\n",
            "# c",
            "#",
            "   ",
            "\t",
            "\t\t- a",
            "a:\t1",
            "[",
            "]",
            "{",
            "}",
            "{a: }",
            "{a",
            "[a,",
            "- - -",
            ":",
            "::",
            "? ",
            "?",
            "-",
            "- ",
            "---",
            "--- |",
            "...",
            "&",
            "*",
            "*a",
            "&a",
            "&a &b x",
            "!",
            "!!",
            "!<>",
            "!!binary x",
            "%YAML 1.2\n---\na",
            "%FOO",
            "a: |\n",
            "a: >-\n b\n",
            "a: |0\n",
            "'",
            "\"",
            "\"\\x\"",
            "\"\\uZZZZ\"",
            "a: 'b\n---\n'",
            "a:\n- b\n c: d",
            "a:\n  b\n c",
            "- a\nb: c",
            "a: [b, {c: d, e: [f, {g: h}]}]",
            "\u{feff}a: 1",
            "a: 1\u{feff}",
            "\u{0}",
            "\u{7}\u{8}",
            "\u{fffd}\u{fffd}",
            "ÿþ\u{0}a",
            "\r\n\r\na: 1\r\n",
            "a: 1\rb: 2",
            "key: value # comment\n  # more\n",
            "a: &x [*x]",
            "? a\n? a",
            "a: !!int x",
            "- !!map {}",
            "{? a: b}",
            "[? a: b]",
            "[a: b, c]",
            "a: -",
            "a: - b",
            "-1: x",
            "@a",
            "`a",
            "a: @",
            "a: ,b",
            "{a: b}}",
            "[[[[[[[[[[]]]]]]]]]]",
        ];
        for input in inputs {
            let _ = load(input);
        }
        let deep_flow = "{".repeat(10_000);
        let _ = load(&deep_flow);
        let deep_block: String = (0..500).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        let _ = load(&deep_block);
        let junk: Vec<u8> = (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let _ = load(&String::from_utf8_lossy(&junk));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_yaml_like_text(text in "[-:?,&*!|>'\"#%@` \t\n\\\\\\[\\]{}a-c0-9~.]{0,80}") {
            let _ = load(&text);
        }
    }
}
