//! The Retry-After header of 429 answers: the forms it can take and its value for a wait.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The form of Retry-After on 429 answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryAfterStyle {
    /// Whole seconds, rounded up, at least 1.
    #[default]
    Seconds,
    /// An HTTP-date, rounded up to the next whole second.
    HttpDate,
    /// No Retry-After header (the API documents none).
    Omit,
}

impl FromStr for RetryAfterStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<RetryAfterStyle, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "seconds" => Ok(RetryAfterStyle::Seconds),
            "http-date" => Ok(RetryAfterStyle::HttpDate),
            "none" => Ok(RetryAfterStyle::Omit),
            other => Err(format!(
                "unknown Retry-After style '{other}': use seconds, http-date or none"
            )),
        }
    }
}

impl fmt::Display for RetryAfterStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryAfterStyle::Seconds => "seconds",
            RetryAfterStyle::HttpDate => "http-date",
            RetryAfterStyle::Omit => "none",
        })
    }
}

/// The Retry-After value for a client that must wait `wait`, in `style`; `None` means no
/// header. Seconds round up and are at least 1 (a client retrying at 0 would only be
/// throttled again); the date rounds up to the next whole second for the same reason.
pub(crate) fn retry_after_value(
    style: RetryAfterStyle,
    wait: Duration,
    now: SystemTime,
) -> Option<String> {
    match style {
        RetryAfterStyle::Omit => None,
        RetryAfterStyle::Seconds => Some(ceil_secs(wait).max(1).to_string()),
        RetryAfterStyle::HttpDate => {
            let at = now.checked_add(wait).unwrap_or(now);
            let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let rounded = UNIX_EPOCH + Duration::from_secs(ceil_secs(since_epoch));
            Some(httpdate::fmt_http_date(rounded))
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_style_parses() {
        assert_eq!("seconds".parse(), Ok(RetryAfterStyle::Seconds));
        assert_eq!("HTTP-DATE".parse(), Ok(RetryAfterStyle::HttpDate));
        assert_eq!("none".parse(), Ok(RetryAfterStyle::Omit));
        assert!("date".parse::<RetryAfterStyle>().is_err());
        for style in [
            RetryAfterStyle::Seconds,
            RetryAfterStyle::HttpDate,
            RetryAfterStyle::Omit,
        ] {
            assert_eq!(style.to_string().parse(), Ok(style));
        }
    }

    #[test]
    fn retry_after_seconds_rounds_up_to_at_least_one() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let secs = |ms| retry_after_value(RetryAfterStyle::Seconds, Duration::from_millis(ms), now);
        assert_eq!(secs(0).as_deref(), Some("1"));
        assert_eq!(secs(1).as_deref(), Some("1"));
        assert_eq!(secs(1000).as_deref(), Some("1"));
        assert_eq!(secs(1001).as_deref(), Some("2"));
        assert_eq!(secs(59_999).as_deref(), Some("60"));
        assert_eq!(
            retry_after_value(RetryAfterStyle::Omit, Duration::from_secs(3), now),
            None
        );
    }

    #[test]
    fn retry_after_date_rounds_up_to_the_next_second() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let date =
            retry_after_value(RetryAfterStyle::HttpDate, Duration::from_millis(1500), now).unwrap();
        // 1_700_000_001.750 rounds up to 1_700_000_002.
        assert_eq!(date, "Tue, 14 Nov 2023 22:13:22 GMT");
        let parsed = httpdate::parse_http_date(&date).unwrap();
        assert_eq!(parsed, UNIX_EPOCH + Duration::from_secs(1_700_000_002));
        let exact = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let same =
            retry_after_value(RetryAfterStyle::HttpDate, Duration::from_secs(2), exact).unwrap();
        assert_eq!(
            httpdate::parse_http_date(&same).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_002)
        );
    }
}
