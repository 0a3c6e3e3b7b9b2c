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

/// Parses a five-field cron expression, as cron, systemd and Kubernetes all read it: numbers,
/// `*`, lists, ranges, steps, and month and weekday names; never Quartz's `L`, `W`, `#` or `?`
/// (cron ignores a whole file that holds one), and never a date that does not exist (`31 2`),
/// which would silently never run and never be reported stale.
///
/// Fails with a message that shows the expected form.
pub fn parse(expr: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "'{expr}' has {} fields; write five: minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\"",
            fields.len()
        ));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    for (i, field) in fields.iter().enumerate() {
        let names: &[&str] = match i {
            3 => &MONTHS,
            4 => &DAYS,
            _ => &[],
        };
        let plain = field.split([',', '-', '/']).all(|atom| {
            atom == "*"
                || (!atom.is_empty() && atom.bytes().all(|b| b.is_ascii_digit()))
                || names.contains(&atom.to_ascii_lowercase().as_str())
        });
        if !plain {
            return Err(format!(
                "'{expr}': '{field}' is not a field cron reads (numbers, *, lists a,b, ranges a-b, steps /n{}; not L, W, # or ?)",
                match i {
                    3 => ", month names jan…dec",
                    4 => ", weekday names sun…sat",
                    _ => "",
                }
            ));
        }
    }
    let cron = Cron::from_str(expr)
        .map_err(|e| format!("'{expr}' is not a valid cron expression: {e}"))?;
    // A date that exists fires within 8 years (29 February included, across a century).
    let now = Utc::now();
    let fires = cron
        .find_next_occurrence(&now, false)
        .is_ok_and(|t| t < now + Duration::days(366 * 9));
    if !fires {
        return Err(format!(
            "'{expr}' never fires (no such date): the backups would never run, and never be reported stale"
        ));
    }
    Ok(cron)
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

/// The shortest gap between consecutive runs over the next 400 days, e.g. 1 day for
/// `0 1 * * 1-5` (whose longest is 3 days): what a run must fit in to end before the next one
/// starts. `None` when the expression never fires.
pub fn min_interval(expr: &str, from: DateTime<Utc>) -> Option<Duration> {
    let cron = parse(expr).ok()?;
    let horizon = from + Duration::days(400);
    let mut prev = cron.find_next_occurrence(&from, true).ok()?;
    let mut shortest: Option<Duration> = None;
    for next in cron.iter_after(prev).take(20_000) {
        if next > horizon {
            break;
        }
        shortest = Some(shortest.map_or(next - prev, |s| s.min(next - prev)));
        prev = next;
    }
    match shortest {
        Some(s) => Some(s),
        None => {
            let next = cron.find_next_occurrence(&prev, false).ok()?;
            Some(next - prev)
        }
    }
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
    fn shortest_intervals_of_common_schedules() {
        let h = |n| Some(Duration::hours(n));
        assert_eq!(min_interval("0 * * * *", at()), h(1));
        assert_eq!(min_interval("0 1 * * 1-5", at()), h(24));
        assert_eq!(min_interval("0 6,18 * * *", at()), h(12));
        assert_eq!(min_interval("0 4 1 * *", at()), h(24 * 28));
        assert_eq!(min_interval("0 0 1 1 *", at()), h(24 * 365));
    }

    #[test]
    fn what_cron_would_not_run_is_refused() {
        for bad in [
            "0 0 31 2 *",
            "0 0 30 2 *",
            "0 0 L * *",
            "0 0 * * 5#2",
            "0 0 ? * 1",
            "0 0 15W * *",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("never fires") || e.contains("not a field cron reads"),
                "{bad}: {e}"
            );
        }
        for good in [
            "0 0 29 2 *",
            "30 2 * jan-mar mon-fri",
            "*/15 * * * *",
            "0 4 1,15 * 7",
        ] {
            parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
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

/// Converts a five-field cron expression to a systemd `OnCalendar=` value.
///
/// Fails for what systemd cannot say the same way: day-of-month and day-of-week both restricted
/// (cron runs when either matches, systemd only when both do), and croner's extensions
/// (`L`, `W`, `#`, `?`).
pub fn to_on_calendar(expr: &str) -> Result<String, String> {
    parse(expr)?;
    let f: Vec<&str> = expr.split_whitespace().collect();
    let (min, hour, dom, mon, dow) = (f[0], f[1], f[2], f[3], f[4]);
    if dom != "*" && dow != "*" {
        return Err(format!(
            "'{expr}' restricts both day-of-month and day-of-week: cron runs when either matches, systemd only when both do; split it into two backup types"
        ));
    }
    let minute = field(expr, min, 0, 59, 0, &[])?;
    let hour = field(expr, hour, 0, 23, 0, &[])?;
    let day = field(expr, dom, 1, 31, 1, &[])?;
    let month = field(expr, mon, 1, 12, 1, &MONTHS)?;
    let weekdays = if dow == "*" {
        String::new()
    } else {
        format!("{} ", weekday_field(expr, dow)?)
    };
    let pad = |s: String| {
        if s.len() == 1 && s != "*" {
            format!("0{s}")
        } else {
            s
        }
    };
    Ok(format!(
        "{weekdays}*-{}-{} {}:{}:00",
        pad(month),
        pad(day),
        pad(hour),
        pad(minute)
    ))
}

/// The schedule as a Kubernetes CronJob reads it (robfig/cron: weekdays 0–6 only, so `7` and
/// ranges ending on it are refused there): the day-of-week field becomes the list of weekday
/// numbers the schedule reader here selects, so that the cluster runs the jobs on exactly the
/// days the staleness checks expect; the other fields stay as written.
///
/// Fails for what [`to_on_calendar`] refuses in the day-of-week field (ranges from Sunday to
/// Sunday that the two readers take differently).
pub fn to_kubernetes(expr: &str) -> Result<String, String> {
    parse(expr)?;
    let f: Vec<&str> = expr.split_whitespace().collect();
    if f[4] == "*" {
        return Ok(f.join(" "));
    }
    weekday_field(expr, f[4])?;
    let only_days = Cron::from_str(&format!("0 0 * * {}", f[4]))
        .map_err(|e| format!("'{expr}' is not a valid cron expression: {e}"))?;
    // From a Saturday's noon, a week of midnights: each weekday the field selects, once.
    let start = DateTime::from_timestamp(1_795_867_200, 0).expect("a valid time");
    let mut days = std::collections::BTreeSet::new();
    let mut t = start;
    while let Ok(next) = only_days.find_next_occurrence(&t, false) {
        if next >= start + Duration::days(7) {
            break;
        }
        days.insert(chrono::Datelike::weekday(&next).num_days_from_sunday());
        t = next;
    }
    if days.is_empty() {
        return Err(unsupported(expr, f[4]));
    }
    let list: Vec<String> = days.iter().map(u32::to_string).collect();
    Ok(format!(
        "{} {} {} {} {}",
        f[0],
        f[1],
        f[2],
        f[3],
        list.join(",")
    ))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn unsupported(expr: &str, part: &str) -> String {
    format!("'{expr}': '{part}' has no systemd OnCalendar equivalent; use plain numbers, ranges, lists and steps")
}

/// A number or (for months) a name.
fn value(expr: &str, s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + offset)
        .ok_or_else(|| unsupported(expr, s))
}

/// Converts one minute/hour/day/month field: `*`, `*/n`, `a`, `a-b`, `a-b/n`, lists.
fn field(
    expr: &str,
    f: &str,
    lo: u32,
    hi: u32,
    first: u32,
    names: &[&str],
) -> Result<String, String> {
    if f.contains(['L', 'W', '#', '?']) {
        return Err(unsupported(expr, f));
    }
    let mut parts = Vec::new();
    for item in f.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                Some(s.parse::<u32>().map_err(|_| unsupported(expr, item))?),
            ),
            None => (item, None),
        };
        match (range, step) {
            ("*", None) => parts.push("*".to_string()),
            ("*", Some(s)) => parts.push(format!("{first}/{s}")),
            (r, step) => {
                let (a, b) = match r.split_once('-') {
                    Some((a, b)) => (value(expr, a, names, 1)?, Some(value(expr, b, names, 1)?)),
                    None => (value(expr, r, names, 1)?, None),
                };
                if a < lo || a > hi || b.is_some_and(|b| b < a || b > hi) {
                    return Err(unsupported(expr, item));
                }
                match (b, step) {
                    (None, None) => parts.push(a.to_string()),
                    (None, Some(s)) => parts.push(format!("{a}/{s}")),
                    (Some(b), None) => parts.push(format!("{a}..{b}")),
                    // Ranges with steps become explicit lists: every systemd version reads those.
                    (Some(b), Some(s)) => {
                        parts.extend((a..=b).step_by(s.max(1) as usize).map(|v| v.to_string()))
                    }
                }
            }
        }
    }
    Ok(parts.join(","))
}

/// Converts the day-of-week field to systemd names (`Mon..Fri`, `Sat,Sun`).
fn weekday_field(expr: &str, f: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<u32, String> {
        let n = value(expr, s, &DAYS, 0)?;
        if n > 7 {
            return Err(unsupported(expr, s));
        }
        Ok(n % 7)
    };
    let mut out = Vec::new();
    for item in f.split(',') {
        if item.contains(['L', '#', '?']) {
            return Err(unsupported(expr, item));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                Some(s.parse::<usize>().map_err(|_| unsupported(expr, item))?),
            ),
            None => (item, None),
        };
        let (a, b) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                // `7-7` is Sunday alone (a hostile review's: it became every day). The schedule
                // reader takes `sun-sun` for every day: no calendar is written for it.
                Some((a, b))
                    if day(a)? == 0 && day(b)? == 0 && value(expr, b, &DAYS, 0)? != 7
                        || value(expr, a, &DAYS, 0)? == 7 && value(expr, b, &DAYS, 0)? != 7 =>
                {
                    return Err(unsupported(expr, item));
                }
                Some((a, _)) if value(expr, a, &DAYS, 0)? == 7 => (0, 0),
                Some((a, b)) => {
                    let (a, b) = (day(a)?, value(expr, b, &DAYS, 0)?);
                    // `5-7` and `5-0` both end on Sunday.
                    (a, if b == 7 || (b == 0 && a > 0) { 7 } else { b })
                }
                None => (day(r)?, day(r)?),
            },
        };
        if b < a {
            return Err(unsupported(expr, item));
        }
        match step {
            None if a != b => {
                if b == 7 {
                    out.push(format!("{}..Sat,Sun", DAYS[a as usize]));
                } else {
                    out.push(format!("{}..{}", DAYS[a as usize], DAYS[b as usize]));
                }
            }
            None => out.push(DAYS[a as usize].to_string()),
            Some(s) => out.extend(
                (a..=b)
                    .step_by(s.max(1))
                    .map(|d| DAYS[(d % 7) as usize].to_string()),
            ),
        }
    }
    Ok(out.join(","))
}

/// The cron → `OnCalendar=` conversion table: unit-tested here, and checked row by row against
/// `systemd-analyze calendar` by the integration tests.
pub const CONVERSION_TABLE: &[(&str, &str)] = &[
    ("30 2 * * *", "*-*-* 02:30:00"),
    ("0 * * * *", "*-*-* *:00:00"),
    ("*/15 * * * *", "*-*-* *:0/15:00"),
    ("0 */6 * * *", "*-*-* 0/6:00:00"),
    ("5 1-5 * * *", "*-*-* 1..5:05:00"),
    ("0 6,18 * * *", "*-*-* 6,18:00:00"),
    ("0 0-12/4 * * *", "*-*-* 0,4,8,12:00:00"),
    ("0 3 * * 0", "Sun *-*-* 03:00:00"),
    ("0 3 * * 7", "Sun *-*-* 03:00:00"),
    ("0 1 * * 1-5", "Mon..Fri *-*-* 01:00:00"),
    ("0 1 * * mon-fri", "Mon..Fri *-*-* 01:00:00"),
    ("0 9 * * sat,sun", "Sat,Sun *-*-* 09:00:00"),
    ("0 9 * * 5-7", "Fri..Sat,Sun *-*-* 09:00:00"),
    ("0 3 * * 7-7", "Sun *-*-* 03:00:00"),
    ("0 12 * * */2", "Sun,Tue,Thu,Sat *-*-* 12:00:00"),
    ("0 4 1 * *", "*-*-01 04:00:00"),
    ("0 4 1,15 * *", "*-*-1,15 04:00:00"),
    ("0 5 1 */3 *", "*-1/3-01 05:00:00"),
    ("0 5 1 jan,jul *", "*-1,7-01 05:00:00"),
    ("0 5 1 1-6 *", "*-1..6-01 05:00:00"),
    ("15 4 */2 * *", "*-*-1/2 04:15:00"),
];

#[cfg(test)]
mod conversion_tests {
    use super::*;

    #[test]
    fn conversion_table() {
        for (cron, systemd) in CONVERSION_TABLE {
            assert_eq!(to_on_calendar(cron).as_deref(), Ok(*systemd), "{cron}");
        }
        // A range from Sunday to Sunday is read otherwise by the schedule reader (`sun-sun`:
        // every day) or is no range at all: refused, but `0-7` is the whole week.
        for cron in [
            "0 3 * * sun-sun",
            "0 3 * * 0-0",
            "0 3 * * 7-0",
            "0 3 * * 7-3",
        ] {
            assert!(to_on_calendar(cron).is_err(), "{cron}");
        }
        assert_eq!(
            to_on_calendar("0 3 * * 0-7").as_deref(),
            Ok("Sun..Sat,Sun *-*-* 03:00:00")
        );
    }

    /// A CronJob's reader takes weekdays 0–6 only: the field becomes the days the schedule
    /// reader here selects, and what the systemd conversion refuses is refused too.
    #[test]
    fn kubernetes_schedules_name_weekdays_zero_to_six() {
        let start = DateTime::from_timestamp(1_795_867_200, 0).unwrap();
        assert_eq!(
            chrono::Datelike::weekday(&start),
            chrono::Weekday::Sat,
            "the week is read from a Saturday"
        );
        for (cron, k8s) in [
            ("30 2 * * *", "30 2 * * *"),
            ("0 3 * * 7", "0 3 * * 0"),
            ("0 3 * * 7-7", "0 3 * * 0"),
            ("0 3 * * 5-7", "0 3 * * 0,5,6"),
            ("0 3 * * 0-7", "0 3 * * 0,1,2,3,4,5,6"),
            ("0 3 * * mon-fri", "0 3 * * 1,2,3,4,5"),
            ("0 3 * * SAT,sun", "0 3 * * 0,6"),
            ("0 3 * * */2", "0 3 * * 0,2,4,6"),
            ("15 */6 1 jan 7", "15 */6 1 jan 0"),
        ] {
            assert_eq!(to_kubernetes(cron).as_deref(), Ok(k8s), "{cron}");
        }
        for cron in ["0 3 * * sun-sun", "0 3 * * 0-0", "0 3 * * 7-3", "0 3 * * 8"] {
            assert!(to_kubernetes(cron).is_err(), "{cron}");
        }
    }

    #[test]
    fn unconvertible_expressions_say_why() {
        let e = to_on_calendar("0 4 1 * 1").unwrap_err();
        assert!(e.contains("either matches"), "{e}");
        for bad in ["0 4 L * *", "0 4 * * 5#3", "0 4 * * 5L"] {
            if let Err(e) = to_on_calendar(bad) {
                assert!(e.contains(bad), "{bad}: {e}");
            }
        }
    }
}
