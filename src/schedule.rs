//! Cron expressions of backup types: validation (via croner), and the longest gap between two
//! runs, from which staleness (report, alerts) is judged.
//!
//! Five fields only (minute hour day-of-month month day-of-week), as crontab writes them.
//! Times are evaluated in UTC; a schedule's gaps do not depend on the zone except around DST
//! changes, which the one-hour grace in [`stale_after`] absorbs.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use croner::Cron;

/// Slack added to a schedule's longest gap before a backup counts as stale: time for the run
/// itself, and DST shifts.
pub const STALE_GRACE: Duration = Duration::hours(1);

/// Parses a five-field cron expression.
///
/// Fails with a message that shows the expected form.
pub fn parse(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "'{expr}' has {fields} fields; write five: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\""
        ));
    }
    Cron::from_str(expr).map_err(|e| format!("'{expr}' is not a valid cron expression: {e}"))
}

/// The longest gap between consecutive runs over the next 400 days, e.g. 1 day for
/// `30 2 * * *`, 31 days for `0 4 1 * *`. `None` when the expression never fires.
pub fn max_interval(expr: &str, from: DateTime<Utc>) -> Option<Duration> {
    let cron = parse(expr).ok()?;
    let horizon = from + Duration::days(400);
    let mut prev = cron.find_next_occurrence(&from, true).ok()?;
    let mut longest = Duration::zero();
    for next in cron.iter_after(prev).take(20_000) {
        if next > horizon {
            break;
        }
        longest = longest.max(next - prev);
        prev = next;
    }
    // A schedule that fires once a year or less still has a gap: up to its next run.
    if longest.is_zero() {
        let next = cron.find_next_occurrence(&prev, false).ok()?;
        longest = next - prev;
    }
    Some(longest)
}

/// The age beyond which the last success of a type with this schedule is stale.
pub fn stale_after(expr: &str, now: DateTime<Utc>) -> Option<Duration> {
    max_interval(expr, now).map(|d| d + STALE_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn intervals_of_common_schedules() {
        let h = |n| Some(Duration::hours(n));
        assert_eq!(max_interval("0 * * * *", at()), h(1));
        assert_eq!(
            max_interval("*/15 * * * *", at()),
            Some(Duration::minutes(15))
        );
        assert_eq!(max_interval("30 2 * * *", at()), h(24));
        assert_eq!(max_interval("0 3 * * 0", at()), h(24 * 7));
        assert_eq!(max_interval("0 4 1 * *", at()), h(24 * 31));
        assert_eq!(
            max_interval("0 1 * * 1-5", at()),
            h(24 * 3),
            "weekdays: Friday to Monday"
        );
        assert_eq!(max_interval("0 6,18 * * *", at()), h(12));
    }

    #[test]
    fn bad_expressions_say_the_form() {
        for e in ["* * * *", "0 0 * * * *", "61 * * * *", "a b c d e", ""] {
            let err = parse(e).unwrap_err();
            assert!(err.contains(&format!("'{e}'")), "{e}: {err}");
        }
    }

    #[test]
    fn stale_after_adds_the_grace() {
        assert_eq!(stale_after("30 2 * * *", at()), Some(Duration::hours(25)));
    }
}
