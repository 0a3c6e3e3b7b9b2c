//! The cron parser and the cron → systemd OnCalendar converter: any text converts or fails with
//! an error; never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sqlguard::schedule::parse(expr);
    let _ = sqlguard::schedule::to_on_calendar(expr);
    let now = chrono::Utc::now();
    let _ = sqlguard::schedule::max_interval(expr, now);
    let _ = sqlguard::schedule::stale_after(expr, now);
});
