//! Row encoders shared by the `file` and `stdout` sinks: JSON Lines and CSV, appended to a reusable
//! byte buffer (no allocation per record; numbers via itoa/zmij).
use eddy_api::schema::Schema;
use eddy_api::time::write_rfc3339_ms;
use eddy_api::value::Datum;
use eddy_api::Batch;
use serde::Deserialize;

/// Output format of a sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// One JSON object per line, keys in schema order.
    #[default]
    Jsonl,
    /// Comma-separated values, quoted where needed; NULL is an empty field.
    Csv,
}

impl SinkFormat {
    /// The file extension of part files.
    pub fn extension(self) -> &'static str {
        match self {
            SinkFormat::Jsonl => "jsonl",
            SinkFormat::Csv => "csv",
        }
    }
}

/// How a sink writes timestamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Milliseconds since the epoch, as an integer.
    #[default]
    EpochMs,
    /// RFC 3339 text in UTC with milliseconds, e.g. `2023-11-14T22:13:20.000Z`.
    Rfc3339,
}

pub(crate) struct Encoder {
    format: SinkFormat,
    timestamps: TimestampFormat,
    /// JSON: `{"name":` for the first field, `,"name":` for the others, escaped once up front.
    prefixes: Vec<Vec<u8>>,
    names: Vec<String>,
}

impl Encoder {
    pub fn new(schema: &Schema, format: SinkFormat, timestamps: TimestampFormat) -> Self {
        let prefixes = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut p = vec![if i == 0 { b'{' } else { b',' }];
                json_str(&mut p, &f.name);
                p.push(b':');
                p
            })
            .collect();
        Encoder { format, timestamps, prefixes, names: schema.names().map(str::to_string).collect() }
    }

    /// Appends the CSV header line (field names).
    pub fn header(&self, out: &mut Vec<u8>) {
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            csv_str(out, name);
        }
        out.push(b'\n');
    }

    /// Appends every row of `batch`, one per line.
    pub fn batch(&self, batch: &Batch, out: &mut Vec<u8>) {
        match self.format {
            SinkFormat::Jsonl => {
                for row in batch.rows() {
                    if row.is_empty() {
                        out.push(b'{');
                    }
                    for (i, prefix) in self.prefixes.iter().enumerate().take(row.len()) {
                        out.extend_from_slice(prefix);
                        self.json_value(out, row.get(i));
                    }
                    out.extend_from_slice(b"}\n");
                }
            }
            SinkFormat::Csv => {
                for row in batch.rows() {
                    for (i, v) in row.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        self.csv_value(out, v);
                    }
                    out.push(b'\n');
                }
            }
        }
    }

    #[inline]
    fn json_value(&self, out: &mut Vec<u8>, v: Datum<'_>) {
        match v {
            Datum::Null => out.extend_from_slice(b"null"),
            Datum::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Datum::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            Datum::Float(f) if f.is_finite() => out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes()),
            Datum::Float(_) => out.extend_from_slice(b"null"),
            Datum::Str(s) => json_str(out, s),
            Datum::Timestamp(t) => match self.timestamps {
                TimestampFormat::EpochMs => out.extend_from_slice(itoa::Buffer::new().format(t).as_bytes()),
                TimestampFormat::Rfc3339 => {
                    out.push(b'"');
                    write_rfc3339_ms(out, t);
                    out.push(b'"');
                }
            },
        }
    }

    #[inline]
    fn csv_value(&self, out: &mut Vec<u8>, v: Datum<'_>) {
        match v {
            Datum::Null => {}
            Datum::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Datum::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            // NaN and infinities as `NaN`, `inf`, `-inf`, which the file source reads back as floats.
            Datum::Float(f) => out.extend_from_slice(zmij::Buffer::new().format(f).as_bytes()),
            Datum::Str(s) => csv_str(out, s),
            Datum::Timestamp(t) => match self.timestamps {
                TimestampFormat::EpochMs => out.extend_from_slice(itoa::Buffer::new().format(t).as_bytes()),
                TimestampFormat::Rfc3339 => write_rfc3339_ms(out, t),
            },
        }
    }
}

/// A CSV field, quoted when it holds a delimiter, quote or line break, or is empty (an unquoted
/// empty field means NULL).
fn csv_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let needs_quotes =
        b.is_empty() || memchr::memchr3(b',', b'"', b'\n', b).is_some() || memchr::memchr(b'\r', b).is_some();
    if !needs_quotes {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(k) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=k]);
        out.push(b'"');
        rest = &rest[k + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Which bytes need a JSON escape: 0 = none, `u` = `\u00XX`, else the letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string literal; non-ASCII text passes through as UTF-8, which JSON allows.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::schema::{DataType, Field};

    fn batch() -> (Schema, Batch) {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int),
            Field::new("we\"ird", DataType::String),
            Field::new("f", DataType::Float),
            Field::new("ok", DataType::Bool),
            Field::new("ts", DataType::Timestamp),
        ]);
        let mut b = Batch::new(5);
        b.push_row(&[
            Datum::Int(-1),
            Datum::Str("q\"b\\s\n\r\t\u{1}\u{8}\u{c}\u{1f} é ✓ 😀,"),
            Datum::Float(1.5),
            Datum::Bool(true),
            Datum::Timestamp(1_700_000_000_123),
        ]);
        b.push_row(&[Datum::Null, Datum::Str(""), Datum::Float(f64::NAN), Datum::Null, Datum::Null]);
        b.push_row(&[
            Datum::Int(i64::MIN),
            Datum::Str("plain"),
            Datum::Float(f64::NEG_INFINITY),
            Datum::Bool(false),
            Datum::Timestamp(-1),
        ]);
        b.push_row(&[Datum::Int(0), Datum::Str("x"), Datum::Float(1e21), Datum::Null, Datum::Timestamp(0)]);
        (schema, b)
    }

    fn encode(format: SinkFormat, ts: TimestampFormat) -> String {
        let (schema, b) = batch();
        let e = Encoder::new(&schema, format, ts);
        let mut out = Vec::new();
        if format == SinkFormat::Csv {
            e.header(&mut out);
        }
        e.batch(&b, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn jsonl_escapes_and_numbers() {
        let out = encode(SinkFormat::Jsonl, TimestampFormat::EpochMs);
        assert_eq!(
            out,
            concat!(
                r#"{"id":-1,"we\"ird":"q\"b\\s\n\r\t\u0001\b\f\u001f é ✓ 😀,","f":1.5,"ok":true,"ts":1700000000123}"#,
                "\n",
                r#"{"id":null,"we\"ird":"","f":null,"ok":null,"ts":null}"#,
                "\n",
                r#"{"id":-9223372036854775808,"we\"ird":"plain","f":null,"ok":false,"ts":-1}"#,
                "\n",
                r#"{"id":0,"we\"ird":"x","f":1e+21,"ok":null,"ts":0}"#,
                "\n"
            )
        );
        // Every line is valid JSON that reads back to the same text.
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v.is_object());
        }
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["we\"ird"], "q\"b\\s\n\r\t\u{1}\u{8}\u{c}\u{1f} é ✓ 😀,");
    }

    #[test]
    #[ignore = "micro benchmark"]
    fn encode_speed() {
        let schema = crate::connectors::generator::test_bids_schema();
        let mut b = Batch::new(7);
        for i in 0..1024 {
            b.push_int(100_300 + i);
            b.push_int(100_261);
            b.push_int(3566);
            b.push_str("Google");
            b.push_str("https://www.nexmark.com/ugE/E4p/Q1e/item.htm?query=1&channel_id=0");
            b.push(Datum::Timestamp(1_700_000_000_000 + i));
            b.push_str("gv3Qb7oaw7bKKfhEX0nM4nhn4w0ZoS");
        }
        for format in [SinkFormat::Csv, SinkFormat::Jsonl] {
            let e = Encoder::new(&schema, format, TimestampFormat::EpochMs);
            let mut out = Vec::with_capacity(1 << 20);
            let t = std::time::Instant::now();
            for _ in 0..2000 {
                out.clear();
                e.batch(&b, &mut out);
            }
            println!("{format:?} encode: {:.1}M rec/s", 2048000.0 / t.elapsed().as_secs_f64() / 1e6);
        }
    }

    #[test]
    fn jsonl_rfc3339() {
        let out = encode(SinkFormat::Jsonl, TimestampFormat::Rfc3339);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with(r#""ts":"2023-11-14T22:13:20.123Z"}"#), "{}", lines[0]);
        assert!(lines[2].ends_with(r#""ts":"1969-12-31T23:59:59.999Z"}"#), "{}", lines[2]);
    }

    #[test]
    fn csv_quotes_where_needed() {
        let out = encode(SinkFormat::Csv, TimestampFormat::Rfc3339);
        assert_eq!(
            out,
            concat!(
                "id,\"we\"\"ird\",f,ok,ts\n",
                "-1,\"q\"\"b\\s\n\r\t\u{1}\u{8}\u{c}\u{1f} é ✓ 😀,\",1.5,true,2023-11-14T22:13:20.123Z\n",
                ",\"\",NaN,,\n",
                "-9223372036854775808,plain,-inf,false,1969-12-31T23:59:59.999Z\n",
                "0,x,1e+21,,1970-01-01T00:00:00.000Z\n"
            )
        );
    }
}
