//! Timestamps: RFC 3339 text <-> milliseconds since the epoch (UTC), without allocation, for connectors
//! (CSV/JSON fields, `timestamps: rfc3339` output) and SQL casts alike.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Reads exactly `n` ASCII digits at `*pos`.
fn digits(b: &[u8], pos: &mut usize, n: usize) -> Option<u32> {
    let s = b.get(*pos..*pos + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    *pos += n;
    Some(v)
}

fn expect(b: &[u8], pos: &mut usize, c: u8) -> Option<()> {
    (b.get(*pos) == Some(&c)).then(|| *pos += 1)
}

/// Parses `YYYY-MM-DD`, optionally followed by `T`/space and `HH:MM[:SS[.fraction]]` and a zone
/// (`Z` or `±HH:MM`); a missing zone means UTC. Returns milliseconds since the epoch.
pub fn parse_rfc3339_ms(b: &[u8]) -> Option<i64> {
    let mut p = 0;
    let y = i64::from(digits(b, &mut p, 4)?);
    expect(b, &mut p, b'-')?;
    let mo = digits(b, &mut p, 2)?;
    expect(b, &mut p, b'-')?;
    let d = digits(b, &mut p, 2)?;
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let (mut h, mut mi, mut s, mut ms) = (0, 0, 0, 0);
    if p < b.len() {
        if !matches!(b[p], b'T' | b't' | b' ') {
            return None;
        }
        p += 1;
        h = digits(b, &mut p, 2)?;
        expect(b, &mut p, b':')?;
        mi = digits(b, &mut p, 2)?;
        if b.get(p) == Some(&b':') {
            p += 1;
            s = digits(b, &mut p, 2)?;
            if b.get(p) == Some(&b'.') {
                p += 1;
                let start = p;
                while p < b.len() && b[p].is_ascii_digit() {
                    // Only milliseconds are kept; further digits are truncated.
                    if p - start < 3 {
                        ms = ms * 10 + u32::from(b[p] - b'0');
                    }
                    p += 1;
                }
                match p - start {
                    0 => return None,
                    1 => ms *= 100,
                    2 => ms *= 10,
                    _ => {}
                }
            }
        }
        // A leap second (`:60`) is accepted and lands on the next second, as in most libraries.
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
    }
    let mut offset_min = 0i64;
    match b.get(p) {
        None => {}
        Some(b'Z' | b'z') if p + 1 == b.len() => {}
        Some(&sign @ (b'+' | b'-')) => {
            p += 1;
            let oh = i64::from(digits(b, &mut p, 2)?);
            let _ = expect(b, &mut p, b':');
            let om = i64::from(digits(b, &mut p, 2)?);
            if p != b.len() || oh > 23 || om > 59 {
                return None;
            }
            offset_min = if sign == b'+' { oh * 60 + om } else { -(oh * 60 + om) };
        }
        Some(_) => return None,
    }
    let secs =
        days_from_civil(y, mo, d) * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s) - offset_min * 60;
    Some(secs * 1000 + i64::from(ms))
}

/// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn write_rfc3339_ms(out: &mut Vec<u8>, ms: i64) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_padded(out, y as u32, 4);
    } else {
        // Outside RFC 3339's range: still unambiguous, and `parse` is not expected to read it back.
        out.extend_from_slice(y.to_string().as_bytes());
    }
    out.push(b'-');
    push_padded(out, m, 2);
    out.push(b'-');
    push_padded(out, d, 2);
    out.push(b'T');
    push_padded(out, sod / 3600, 2);
    out.push(b':');
    push_padded(out, sod / 60 % 60, 2);
    out.push(b':');
    push_padded(out, sod % 60, 2);
    out.push(b'.');
    push_padded(out, milli, 3);
    out.push(b'Z');
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`, in a new string.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let mut v = Vec::with_capacity(24);
    write_rfc3339_ms(&mut v, ms);
    // Only ASCII digits and separators are written.
    String::from_utf8(v).unwrap_or_default()
}

fn push_padded(out: &mut Vec<u8>, v: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(b'0' + (v / div % 10) as u8);
        div /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ms: i64) -> String {
        let mut v = Vec::new();
        write_rfc3339_ms(&mut v, ms);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, -1, 1_700_000_000_123, 951_782_400_000, -62_135_596_800_000, 253_402_300_799_999] {
            assert_eq!(parse_rfc3339_ms(fmt(ms).as_bytes()), Some(ms), "{ms}");
        }
    }

    #[test]
    fn parses_variants() {
        let p = |s: &str| parse_rfc3339_ms(s.as_bytes());
        assert_eq!(p("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(p("2023-11-14 22:13:20"), Some(1_700_000_000_000));
        assert_eq!(p("2023-11-14T22:13:20.1Z"), Some(1_700_000_000_100));
        assert_eq!(p("2023-11-14T22:13:20.123456789Z"), Some(1_700_000_000_123));
        assert_eq!(p("2023-11-15T00:13:20+02:00"), Some(1_700_000_000_000));
        assert_eq!(p("2023-11-14T21:13:20-0100"), Some(1_700_000_000_000));
        assert_eq!(p("2023-11-14T22:13Z"), Some(1_700_000_000_000 - 20_000));
        assert_eq!(p("1970-01-02"), Some(86_400_000));
        for bad in [
            "",
            "2023",
            "2023-13-01",
            "2023-02-29",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20Zx",
            "2023-11-14X22:13:20",
            "12x4",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
