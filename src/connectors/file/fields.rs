//! Typed field parsing from raw bytes (shared by the CSV and JSONL decoders) and the text shown for
//! a bad value in error messages.
use eddy_api::time::parse_rfc3339_ms;

/// Parses a decimal `i64` (optional sign, digits only) without going through `str`.
#[inline]
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    if digits.len() <= 18 {
        // Cannot overflow: 18 digits < 2^63.
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
    } else {
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d))?;
        }
    }
    if neg {
        if v <= 1 << 63 {
            Some((v as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// The hot path of CSV integers: an optionally negative integer of 1 to 18 digits at `pos`, ended
/// by `delim` or the end of the line, scanned and converted in one pass; returns it and where the
/// next field starts. `None` sends the field down the general path (quotes, `+`, long numbers,
/// errors, NULL). (An 8-digits-at-a-time SWAR variant measured slower on the bid file.)
#[inline]
pub(crate) fn fast_int(line: &[u8], pos: usize, delim: u8) -> Option<(i64, Option<usize>)> {
    let neg = line.get(pos) == Some(&b'-');
    let start = pos + usize::from(neg);
    let mut i = start;
    let mut v: i64 = 0;
    while let Some(&c) = line.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Wrapping: more than 18 digits is rejected below, before the value is used.
        v = v.wrapping_mul(10).wrapping_add(i64::from(d));
        i += 1;
    }
    if i == start || i - start > 18 {
        return None;
    }
    let next = match line.get(i) {
        None => None,
        Some(&c) if c == delim => Some(i + 1),
        Some(_) => return None,
    };
    Some((if neg { -v } else { v }, next))
}

#[inline]
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[inline]
pub(crate) fn parse_bool(b: &[u8]) -> Option<bool> {
    if b.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if b.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// Epoch milliseconds as an integer, or RFC 3339 text.
#[inline]
pub(crate) fn parse_timestamp(b: &[u8]) -> Option<i64> {
    parse_i64(b).or_else(|| parse_rfc3339_ms(b))
}

/// A bad value as shown in an error: lossy UTF-8, cut to a readable length.
pub(crate) fn shown(b: &[u8]) -> String {
    const MAX: usize = 40;
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        for (s, v) in [
            ("0", Some(0)),
            ("-12", Some(-12)),
            ("+7", Some(7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("00000000000000000000042", Some(42)),
            ("", None),
            ("-", None),
            ("12x4", None),
            ("1.5", None),
            (" 1", None),
        ] {
            assert_eq!(parse_i64(s.as_bytes()), v, "{s}");
        }
    }

    #[test]
    fn fast_int_agrees_with_std() {
        let mut cases: Vec<String> = vec![
            "0",
            "-0",
            "7",
            "12345678",
            "123456789",
            "1700000000000",
            "999999999999999999",
            "-999999999999999999",
            "1000000000000000000",
            "00000000000000000001",
            "12x4",
            "1 ",
            "-",
            "",
            "+5",
            "1.5",
            "12345678a",
            "9,",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let mut x: u64 = 1;
        for _ in 0..20_000 {
            x = crate::connectors::generator::test_mix(x);
            let digits = 1 + (x % 20) as usize;
            let mut s: String = (0..digits).map(|k| char::from(b'0' + ((x >> (k * 3)) % 10) as u8)).collect();
            if x.is_multiple_of(3) {
                s.insert(0, '-');
            }
            if x.is_multiple_of(7) {
                s.push(char::from(b' ' + (x >> 40) as u8 % 90));
            }
            cases.push(s);
        }
        for s in &cases {
            for suffix in ["", ",rest", ";"] {
                let line = format!("{s}{suffix}");
                let got = fast_int(line.as_bytes(), 0, b',');
                let (field, next) = match line.find(',') {
                    Some(k) => (&line[..k], Some(k + 1)),
                    None => (&line[..], None),
                };
                let digits = field.strip_prefix('-').unwrap_or(field);
                let plain = !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit());
                let want = plain.then(|| (field.parse::<i64>().unwrap(), next));
                assert_eq!(got, want, "{line:?}");
            }
        }
        // Not at the start of the line.
        assert_eq!(fast_int(b"ab,1234567890123,x", 3, b','), Some((1_234_567_890_123, Some(17))));
    }

    #[test]
    fn others() {
        assert_eq!(parse_f64(b"1.5e3"), Some(1500.0));
        assert_eq!(parse_f64(b"x"), None);
        assert_eq!(parse_bool(b"TRUE"), Some(true));
        assert_eq!(parse_bool(b"no"), None);
        assert_eq!(parse_timestamp(b"1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp(b"2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(shown("é".repeat(50).as_bytes()), format!("{}...", "é".repeat(40)));
    }
}
