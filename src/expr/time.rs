//! Timestamps as text: `CAST(ts AS string)`, `CAST('2024-01-01 12:00:00' AS timestamp)`, `TIMESTAMP '...'`
//! literals and `INTERVAL` lengths. Timestamps are milliseconds since the epoch, always UTC.

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), the form Flink SQL prints.
pub(crate) fn format_timestamp(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let t = ms.rem_euclid(MS_PER_DAY);
    let (h, mi, s, milli) = (t / 3_600_000, t / 60_000 % 60, t / 1000 % 60, t % 1000);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}")
}

/// A cursor over ASCII digits and separators.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH[:MM]]` into epoch milliseconds (UTC unless an offset
/// is given). Returns `None` for anything else, which casts turn into NULL.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let mut c = Cursor { b: text.trim().as_bytes(), i: 0 };
    let year = i64::from(c.digits(4)?);
    let month = if c.eat(b'-') {
        c.digits(2)?
    } else {
        return None;
    };
    let day = if c.eat(b'-') {
        c.digits(2)?
    } else {
        return None;
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if c.eat(b' ') || c.eat(b'T') {
        ms += time_of_day(&mut c)?;
    }
    ms -= offset(&mut c)?;
    c.done().then_some(ms)
}

/// `HH:MM[:SS[.fff]]` in milliseconds.
fn time_of_day(c: &mut Cursor<'_>) -> Option<i64> {
    let h = c.digits(2)?;
    let m = if c.eat(b':') {
        c.digits(2)?
    } else {
        return None;
    };
    let s = if c.eat(b':') { c.digits(2)? } else { 0 };
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let mut frac = 0i64;
    if c.eat(b'.') {
        let mut scale = 100;
        let start = c.i;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            frac += i64::from(d - b'0') * scale;
            scale /= 10;
            c.i += 1;
        }
        if c.i == start {
            return None;
        }
    }
    Some(i64::from(h) * 3_600_000 + i64::from(m) * 60_000 + i64::from(s) * 1000 + frac)
}

/// A trailing `Z` or `±HH[:MM]` offset in milliseconds (0 when absent).
fn offset(c: &mut Cursor<'_>) -> Option<i64> {
    if c.eat(b'Z') || c.done() {
        return Some(0);
    }
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let h = c.digits(2)?;
    c.eat(b':');
    let m = if c.done() { 0 } else { c.digits(2)? };
    Some(sign * (i64::from(h) * 3_600_000 + i64::from(m) * 60_000))
}

/// Milliseconds in one unit of an interval (`second`, `minutes`, `ms`, ...), for fixed-length units.
pub(crate) fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => MS_PER_DAY,
        "week" | "weeks" => 7 * MS_PER_DAY,
        _ => return None,
    })
}

/// The length of an interval in milliseconds: `amount` is a number, optionally followed by a unit when
/// `unit_ms` is None (`INTERVAL '5 minutes'`).
pub(crate) fn interval_millis(amount: &str, unit_ms: Option<i64>) -> Option<i64> {
    let amount = amount.trim();
    let (number, unit_ms) = match unit_ms {
        Some(u) => (amount, u),
        None => {
            let split = amount.find(|c: char| c.is_ascii_alphabetic())?;
            (amount[..split].trim(), unit_millis(amount[split..].trim())?)
        }
    };
    if let Ok(v) = number.parse::<i64>() {
        return v.checked_mul(unit_ms);
    }
    let v = number.parse::<f64>().ok()? * unit_ms as f64;
    (v.is_finite() && v.abs() < 9.2e18).then(|| v.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000, -719_468, -1, 0, 1, 59, 365, 10_957, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("2024-01-01 00:00:00"), Some(1_704_067_200_000));
        assert_eq!(parse_timestamp("2024-01-01T00:00:01.5Z"), Some(1_704_067_201_500));
        assert_eq!(parse_timestamp("2024-01-01 02:00+02:00"), Some(1_704_067_200_000));
        assert_eq!(parse_timestamp("2024-02-30"), None);
        assert_eq!(parse_timestamp("2024-01-01 25:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-01-01 00:00:00 junk"), None);
        assert_eq!(format_timestamp(1_704_067_201_500), "2024-01-01 00:00:01.500");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_millis("5", Some(1000)), Some(5000));
        assert_eq!(interval_millis("1.5", Some(1000)), Some(1500));
        assert_eq!(interval_millis("2 minutes", None), Some(120_000));
        assert_eq!(interval_millis("2 fortnights", None), None);
    }
}
