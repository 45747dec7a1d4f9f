//! Timestamps as text: `CAST(ts AS string)`, `CAST('2024-01-01 12:00:00' AS timestamp)`, `TIMESTAMP '...'`
//! literals and `INTERVAL` lengths. Timestamps are milliseconds since the epoch, always UTC.

const MS_PER_DAY: i64 = 86_400_000;

/// Formats as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), the form Flink SQL prints.
pub(crate) fn format_timestamp(ms: i64) -> String {
    eddy_api::time::format_rfc3339_ms(ms).replacen('T', " ", 1).trim_end_matches('Z').to_string()
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH:MM]` into epoch milliseconds (UTC unless an offset
/// is given). Returns `None` for anything else, which casts turn into NULL.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    eddy_api::time::parse_rfc3339_ms(text.trim().as_bytes())
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
