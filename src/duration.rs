//! Human durations as operators write them in config and flags: `90m`, `36h`, `7d`, `4w`, `1h30m`.
//!
//! Parsing is humantime's; this module adds whole-second values, serde, and a compact display
//! (`7d`, `1h30m`). It knows nothing of retention or schedules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole number of seconds, written with units `s`, `m`, `h`, `d` and `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub u64);

/// Why a duration did not parse; the message shows the accepted forms.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration '{input}': {why} (write a number and a unit s, m, h, d or w, e.g. 90m, 36h, 7d, 4w)")]
pub struct DurationError {
    input: String,
    why: String,
}

/// The longest duration sqlguard accepts: a hundred years, as the parser counts a year (365.25
/// days), so that `100y` itself is accepted. Longer values are typos, and date arithmetic with
/// them could leave the calendar.
pub const MAX_SECS: u64 = 100 * 31_557_600;

impl HumanDuration {
    /// The duration in seconds.
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// The duration as a chrono value, for date arithmetic.
    pub fn to_chrono(self) -> chrono::Duration {
        i64::try_from(self.0)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX)
    }

    /// The time this long before `t`, or the earliest representable time when that would leave
    /// the calendar (never a panic).
    pub fn before(self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        t.checked_sub_signed(self.to_chrono())
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    /// Parses with humantime (`90m`, `36h`, `7d`, `4w`, `1h30m`, `2 days`), in whole seconds.
    ///
    /// Fails on an empty string, a number without a unit, an unknown unit, a fraction of a
    /// second or an overflow.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why: String| DurationError {
            input: input.to_string(),
            why,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty".into()));
        }
        let d = humantime::parse_duration(s).map_err(|e| err(e.to_string()))?;
        if d.subsec_nanos() != 0 {
            return Err(err("it is not a whole number of seconds".into()));
        }
        if d.as_secs() > MAX_SECS {
            return Err(err("it is longer than 100 years".into()));
        }
        Ok(HumanDuration(d.as_secs()))
    }
}

impl fmt::Display for HumanDuration {
    /// Prints an exact form in days, hours, minutes and seconds, e.g. `1h30m`, `7d`, `28d`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= secs {
                write!(f, "{}{}", rest / secs, unit)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Prints an age or a run time compactly for tables: `42s`, `5m`, `3h12m`, `2d4h`.
pub fn compact(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// A run time for people: tenths of a second under a minute (`0.4s`, `12.3s`), else
/// [`compact`].
pub fn took(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        compact(secs as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_times_read_well() {
        assert_eq!(took(0.04), "0.0s");
        assert_eq!(took(12.34), "12.3s");
        assert_eq!(took(125.0), "2m5s");
    }

    #[test]
    fn parses_the_documented_forms() {
        for (s, secs) in [
            ("90m", 5400),
            ("36h", 129_600),
            ("7d", 604_800),
            ("4w", 2_419_200),
            ("1h30m", 5400),
            ("45s", 45),
            ("1.5h", 5400),
            ("2 days", 172_800),
            (" 2d ", 172_800),
            // The longest accepted: a hundred of the parser's years.
            ("100y", 3_155_760_000),
        ] {
            assert_eq!(s.parse::<HumanDuration>().unwrap().as_secs(), secs, "{s}");
        }
    }

    #[test]
    fn rejects_bad_forms_with_the_accepted_ones_named() {
        for s in [
            "",
            "7",
            "d",
            "7x",
            "0.5s",
            "-3d",
            "99999999999999999999w",
            // Issue 10: durations that parse but leave the calendar (exit 101 before).
            "9999999999999w",
            "300000000w",
            "101y",
            "5300w",
        ] {
            let e = s.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(e.contains("e.g. 90m"), "{s}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["1h30m", "7d", "0s", "9d3h4m5s"] {
            let d: HumanDuration = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert_eq!("4w".parse::<HumanDuration>().unwrap().to_string(), "28d");
    }

    #[test]
    fn compact_ages() {
        assert_eq!(compact(5), "5s");
        assert_eq!(compact(125), "2m5s");
        assert_eq!(compact(3 * 3600 + 720), "3h12m");
        assert_eq!(compact(2 * 86_400 + 4 * 3600), "2d4h");
    }
}
