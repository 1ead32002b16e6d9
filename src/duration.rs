//! Duration parsing for command-line flags: `500ms`, `30s`, `5m`, `1h`; a bare number is
//! milliseconds (the CLI contract's convention for timing flags).

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration; use a number with ms, s, m or h, e.g. 30s")]
    NotADuration(String),
    #[error("`{0}` is too large for a duration")]
    TooLarge(String),
    #[error("unknown duration unit `{unit}` in `{text}`; use ms, s, m or h")]
    UnknownUnit { unit: String, text: String },
}

/// Parses a duration flag value. Bare numbers are milliseconds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(DurationError::NotADuration(text.into()));
    }
    let too_large = || DurationError::TooLarge(text.into());
    let n: u64 = digits.parse().map_err(|_| too_large())?;
    let millis = match unit.trim() {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.into(),
                text: text.into(),
            });
        }
    };
    millis.map(Duration::from_millis).ok_or_else(too_large)
}

/// Renders a duration the way [`parse`] reads it back, choosing the largest exact unit.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0ms".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects() {
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
        assert!(parse("10d").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("99999999999999999999").is_err());
    }

    #[test]
    fn error_messages() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            err(" s "),
            "`s` is not a duration; use a number with ms, s, m or h, e.g. 30s"
        );
        assert_eq!(
            err("10d"),
            "unknown duration unit `d` in `10d`; use ms, s, m or h"
        );
        assert_eq!(
            err("99999999999999999999"),
            "`99999999999999999999` is too large for a duration"
        );
        assert_eq!(
            err("18446744073709551615h"),
            "`18446744073709551615h` is too large for a duration"
        );
    }

    #[test]
    fn round_trip() {
        for s in ["0ms", "500ms", "30s", "5m", "1h", "1500ms"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
