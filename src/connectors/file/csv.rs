//! A hand-written RFC 4180 CSV line decoder that writes typed fields straight into a [`Batch`].
//!
//! Quoted fields, `""` escapes and delimiters inside quotes are supported; a quoted field spanning
//! lines is not (records are split at newlines first, which is what makes byte-range splits work).
use super::fields::{fast_int, parse_bool, parse_f64, parse_i64, parse_timestamp, shown};
use eddy_api::schema::{DataType, Schema};
use eddy_api::value::Datum;
use eddy_api::Batch;
use memchr::memchr;

/// Where a field's bytes are: in the line, or unescaped into the scratch buffer.
enum Raw {
    Line(usize, usize),
    Scratch,
}

/// One tokenized field.
struct Token {
    raw: Raw,
    quoted: bool,
    /// Start of the next field, `None` when this was the last one.
    next: Option<usize>,
}

pub(crate) struct CsvDecoder {
    names: Vec<String>,
    types: Vec<DataType>,
    delim: u8,
    quote: u8,
    scratch: Vec<u8>,
}

impl CsvDecoder {
    pub fn new(schema: &Schema, delim: u8, quote: u8) -> Self {
        CsvDecoder {
            names: schema.fields().iter().map(|f| f.name.clone()).collect(),
            types: schema.fields().iter().map(|f| f.data_type).collect(),
            delim,
            quote,
            scratch: Vec::new(),
        }
    }

    /// Appends the record in `line` to `out`, or returns what is wrong with it (leaving no partial row).
    pub fn decode(&mut self, line: &[u8], out: &mut Batch) -> Result<(), String> {
        // Validating the line once is cheaper than validating each string field; the fields of a
        // valid line are then sliced as `&str` (delimiters are ASCII, so on char boundaries).
        let text = std::str::from_utf8(line).ok();
        let last = self.types.len().saturating_sub(1);
        let mut pos = Some(0);
        for (col, &ty) in self.types.iter().enumerate() {
            let Some(p) = pos else {
                out.abandon_row();
                return Err(self.count_error(line));
            };
            if matches!(ty, DataType::Int | DataType::Timestamp) {
                // The common case in one pass: a plain integer ended by a delimiter or the line.
                if let Some((v, next)) = fast_int(line, p, self.delim) {
                    if col == last && next.is_some() {
                        out.abandon_row();
                        return Err(self.count_error(line));
                    }
                    match ty {
                        DataType::Int => out.push_int(v),
                        _ => out.push(Datum::Timestamp(v)),
                    }
                    pos = next;
                    continue;
                }
            }
            let tok = match next_field(line, p, self.delim, self.quote, &mut self.scratch) {
                Ok(t) => t,
                Err(msg) => {
                    out.abandon_row();
                    return Err(format!("field `{}` (column {}): {msg}", self.names[col], col + 1));
                }
            };
            if col == last && tok.next.is_some() {
                out.abandon_row();
                return Err(self.count_error(line));
            }
            pos = tok.next;
            if let (DataType::String, Raw::Line(a, b), Some(text)) = (ty, &tok.raw, text) {
                if a < b {
                    if let Some(s) = text.get(*a..*b) {
                        out.push_str(s);
                        continue;
                    }
                }
            }
            let raw = match tok.raw {
                Raw::Line(a, b) => &line[a..b],
                Raw::Scratch => &self.scratch[..],
            };
            if !push_typed(out, ty, raw, tok.quoted) {
                out.abandon_row();
                let (name, col) = (&self.names[col], col + 1);
                return Err(if ty == DataType::String {
                    format!("field `{name}` (column {col}): invalid UTF-8 in `{}`", shown(raw))
                } else {
                    format!("field `{name}` (column {col}): expected {ty}, found `{}`", shown(raw))
                });
            }
        }
        Ok(())
    }

    fn count_error(&self, line: &[u8]) -> String {
        let mut scratch = Vec::new();
        let (mut found, mut pos) = (0, Some(0));
        while let Some(p) = pos {
            found += 1;
            pos = match next_field(line, p, self.delim, self.quote, &mut scratch) {
                Ok(t) => t.next,
                Err(_) => None,
            };
        }
        format!("expected {} fields, found {found}", self.types.len())
    }
}

/// Pushes one field; false when the text does not parse as `ty`.
#[inline]
fn push_typed(out: &mut Batch, ty: DataType, raw: &[u8], quoted: bool) -> bool {
    if raw.is_empty() && !(quoted && ty == DataType::String) {
        out.push_null();
        return true;
    }
    match ty {
        DataType::Int => parse_i64(raw).map(|v| out.push_int(v)).is_some(),
        DataType::Float => parse_f64(raw).map(|v| out.push_float(v)).is_some(),
        DataType::String => std::str::from_utf8(raw).map(|s| out.push_str(s)).is_ok(),
        DataType::Bool => parse_bool(raw).map(|v| out.push(Datum::Bool(v))).is_some(),
        DataType::Timestamp => parse_timestamp(raw).map(|v| out.push(Datum::Timestamp(v))).is_some(),
    }
}

/// Tokenizes the field starting at `pos`.
#[inline]
fn next_field(line: &[u8], pos: usize, delim: u8, quote: u8, scratch: &mut Vec<u8>) -> Result<Token, String> {
    if line.get(pos) != Some(&quote) {
        return Ok(match memchr(delim, &line[pos..]) {
            Some(k) => Token { raw: Raw::Line(pos, pos + k), quoted: false, next: Some(pos + k + 1) },
            None => Token { raw: Raw::Line(pos, line.len()), quoted: false, next: None },
        });
    }
    let unterminated = || "unterminated quoted field (quoted fields spanning lines are not supported)".to_string();
    let body = pos + 1;
    let k = memchr(quote, &line[body..]).ok_or_else(unterminated)?;
    let mut i = body + k + 1;
    let raw = if line.get(i) == Some(&quote) {
        // An escaped quote: unescape into the scratch buffer (rare, so the common case borrows).
        scratch.clear();
        scratch.extend_from_slice(&line[body..i]);
        i += 1;
        loop {
            let k = memchr(quote, &line[i..]).ok_or_else(unterminated)?;
            scratch.extend_from_slice(&line[i..i + k]);
            i += k + 1;
            if line.get(i) == Some(&quote) {
                scratch.push(quote);
                i += 1;
            } else {
                break;
            }
        }
        Raw::Scratch
    } else {
        Raw::Line(body, body + k)
    };
    match line.get(i) {
        None => Ok(Token { raw, quoted: true, next: None }),
        Some(&c) if c == delim => Ok(Token { raw, quoted: true, next: Some(i + 1) }),
        Some(_) => Err(format!("unexpected `{}` after the closing quote", shown(&line[i..i + 1]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::schema::Field;

    fn decoder(fields: &[(&str, DataType)]) -> CsvDecoder {
        let schema = Schema::new(fields.iter().map(|(n, t)| Field::new(*n, *t)).collect());
        CsvDecoder::new(&schema, b',', b'"')
    }

    fn all_types() -> CsvDecoder {
        use DataType::*;
        decoder(&[("id", Int), ("price", Float), ("name", String), ("ok", Bool), ("ts", Timestamp)])
    }

    #[test]
    fn typed_fields_quotes_and_nulls() {
        let mut d = all_types();
        let mut b = Batch::new(5);
        d.decode(b"1,2.5,plain,true,1700000000000", &mut b).unwrap();
        d.decode(br#"-3,1e3,"a,""b"" c",FALSE,2023-11-14T22:13:20.5Z"#, &mut b).unwrap();
        d.decode(br#",,,,"#, &mut b).unwrap();
        d.decode(br#"4,"7","",false,"1""#, &mut b).unwrap();
        d.decode("5,0,héllo ✓,true,0".as_bytes(), &mut b).unwrap();
        assert_eq!(b.len(), 5);
        let r = b.row(0);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![
                Datum::Int(1),
                Datum::Float(2.5),
                Datum::Str("plain"),
                Datum::Bool(true),
                Datum::Timestamp(1_700_000_000_000)
            ]
        );
        assert_eq!(b.row(1).get(2), Datum::Str(r#"a,"b" c"#));
        assert_eq!(b.row(1).get(4), Datum::Timestamp(1_700_000_000_500));
        assert!(b.row(2).iter().all(|d| d.is_null()));
        assert_eq!(b.row(3).get(1), Datum::Float(7.0));
        assert_eq!(b.row(3).get(2), Datum::Str(""));
        assert_eq!(b.row(3).get(4), Datum::Timestamp(1));
        assert_eq!(b.row(4).get(2), Datum::Str("héllo ✓"));
    }

    #[test]
    #[ignore = "micro benchmark"]
    fn decode_speed() {
        use DataType::*;
        let mut d = decoder(&[
            ("auction", Int),
            ("bidder", Int),
            ("price", Int),
            ("channel", String),
            ("url", String),
            ("date_time", Timestamp),
            ("extra", String),
        ]);
        let line = b"100300,100261,3566,Google,https://www.nexmark.com/ugE/E4p/Q1e/item.htm?query=1&channel_id=0,1700000000000,gv3Qb7oaw7bKKfhEX0nM4nhn4w0ZoS";
        let mut b = Batch::with_capacity(7, 7 * 1024, 1 << 20);
        let n = 5_000_000;
        let t = std::time::Instant::now();
        for i in 0..n {
            d.decode(line, &mut b).unwrap();
            if i % 1024 == 0 {
                b.clear();
            }
        }
        println!("csv decode: {:.1}M rec/s", n as f64 / t.elapsed().as_secs_f64() / 1e6);
        let t = std::time::Instant::now();
        let (url, extra) = (std::hint::black_box(&line[26..94]), std::hint::black_box(&line[109..]));
        for i in 0..n {
            b.push_int(100300);
            b.push_int(100261);
            b.push_int(3566);
            b.push_str("Google");
            b.push_str(std::str::from_utf8(url).unwrap());
            b.push(Datum::Timestamp(1700000000000));
            b.push_str(std::str::from_utf8(extra).unwrap());
            if i % 1024 == 0 {
                b.clear();
            }
        }
        println!("batch pushes alone: {:.1}M rec/s", n as f64 / t.elapsed().as_secs_f64() / 1e6);
    }

    #[test]
    fn other_delimiter_and_quote() {
        let schema = Schema::new(vec![Field::new("a", DataType::String), Field::new("b", DataType::Int)]);
        let mut d = CsvDecoder::new(&schema, b'\t', b'\'');
        let mut b = Batch::new(2);
        d.decode(b"'x\ty'\t3", &mut b).unwrap();
        assert_eq!(b.row(0).get(0), Datum::Str("x\ty"));
    }

    #[test]
    fn error_messages() {
        let mut d = all_types();
        let mut b = Batch::new(5);
        let mut err = |line: &str| d.decode(line.as_bytes(), &mut b).unwrap_err();
        assert_eq!(err("1,2,x,true"), "expected 5 fields, found 4");
        assert_eq!(err("1,2,x,true,5,6,7"), "expected 5 fields, found 7");
        assert_eq!(err("12x4,2,x,true,5"), "field `id` (column 1): expected int, found `12x4`");
        assert_eq!(err("1,abc,x,true,5"), "field `price` (column 2): expected float, found `abc`");
        assert_eq!(err("1,2,x,yes,5"), "field `ok` (column 4): expected bool, found `yes`");
        assert_eq!(err("1,2,x,true,yesterday"), "field `ts` (column 5): expected timestamp_ms, found `yesterday`");
        assert_eq!(
            err(r#"1,2,"open,true,5"#),
            "field `name` (column 3): unterminated quoted field (quoted fields spanning lines are not supported)"
        );
        assert_eq!(err(r#"1,2,"a"b,true,5"#), "field `name` (column 3): unexpected `b` after the closing quote");
        assert_eq!(
            err(&format!("1,2,x,true,{}", "9".repeat(60))),
            format!("field `ts` (column 5): expected timestamp_ms, found `{}...`", "9".repeat(40))
        );
        let mut b = Batch::new(5);
        assert_eq!(
            d.decode(b"1,2,\xff\xfe,true,5", &mut b).unwrap_err(),
            "field `name` (column 3): invalid UTF-8 in `\u{fffd}\u{fffd}`"
        );
        // Failed records leave nothing behind, not even a partial row.
        d.decode(b"1,2,x,true,5", &mut b).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.row(0).get(0), Datum::Int(1));
    }
}
