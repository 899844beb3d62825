//! Request rates as operators write them (`10/s`, `600/min`, `0.5/s`, `3600/h`).

use std::fmt;
use std::str::FromStr;

/// A request rate, stored as requests per second (fractions allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    /// A rate of `per_second` requests per second. Panics on a non-positive or non-finite value,
    /// which only code (never user input) can produce; user input goes through `FromStr`.
    pub(crate) fn per_second(per_second: f64) -> Rate {
        assert!(
            per_second.is_finite() && per_second > 0.0,
            "rate must be positive"
        );
        Rate { per_second }
    }

    /// `per_second` as a rate is shown, for values read back from files (a report's sidecar),
    /// which may hold anything: one that is not a positive number is shown as it is.
    pub(crate) fn show(per_second: f64) -> String {
        if per_second.is_finite() && per_second > 0.0 {
            Rate::per_second(per_second).to_string()
        } else {
            format!("{per_second}/s")
        }
    }

    pub(crate) fn as_per_second(self) -> f64 {
        self.per_second
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.per_second;
        if r >= 1.0 || r == 0.0 {
            write!(f, "{}/s", trim_float(r))
        } else if r * 60.0 >= 1.0 {
            write!(f, "{}/min", trim_float(r * 60.0))
        } else {
            write!(f, "{}/h", trim_float(r * 3600.0))
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let s = s.trim();
        let (count, unit) = match s.split_once('/') {
            Some((c, u)) => (c.trim(), u.trim()),
            None => (s, "s"),
        };
        let seconds = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hr" | "hour" => 3600.0,
            other => {
                return Err(format!(
                    "unknown unit '{other}' in rate '{s}': use N/s, N/min or N/h (e.g. 600/min)"
                ));
            }
        };
        let count: f64 = count.parse().map_err(|_| {
            format!("'{s}' is not a rate: use N/s, N/min or N/h (e.g. 10/s, 600/min, 0.5/s)")
        })?;
        let per_second = count / seconds;
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(format!("rate '{s}' must be greater than zero"));
        }
        if per_second > 1_000_000.0 {
            return Err(format!("rate '{s}' is above 1,000,000/s"));
        }
        Ok(Rate { per_second })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_from_files_are_shown_whatever_they_are() {
        assert_eq!(Rate::show(10.0), "10/s");
        assert_eq!(Rate::show(0.5), "30/min");
        assert_eq!(Rate::show(0.0), "0/s");
        assert_eq!(Rate::show(-1.0), "-1/s");
        assert_eq!(Rate::show(f64::NAN), "NaN/s");
    }

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!("10/s".parse::<Rate>().unwrap().as_per_second(), 10.0);
        assert_eq!("600/min".parse::<Rate>().unwrap().as_per_second(), 10.0);
        assert_eq!("3600/h".parse::<Rate>().unwrap().as_per_second(), 1.0);
        assert_eq!("0.5/s".parse::<Rate>().unwrap().as_per_second(), 0.5);
        assert_eq!("25".parse::<Rate>().unwrap().as_per_second(), 25.0);
        assert_eq!(" 2 / S ".parse::<Rate>().unwrap().as_per_second(), 2.0);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "0/s", "-1/s", "abc", "10/day", "NaN/s", "inf/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn displays_in_a_readable_unit() {
        assert_eq!(Rate::per_second(10.0).to_string(), "10/s");
        assert_eq!("30/min".parse::<Rate>().unwrap().to_string(), "30/min");
        assert_eq!("2/h".parse::<Rate>().unwrap().to_string(), "2/h");
    }
}
