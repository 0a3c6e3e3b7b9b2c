//! Benchmark (not a test): retention planning over a large index.
//!   cargo bench --bench retention [-- ENTRIES]      (default 100000)
//! Prints the time per plan, best of several runs, and the decisions made.

use std::time::Instant;

use chrono::{Duration, Utc};
use sqlguard::index::{BackupRecord, Status};
use sqlguard::retention::Retention;
use sqlguard::retention::{plan, PolicyLookup};

struct Policies(Vec<(&'static str, Retention)>);

impl PolicyLookup for Policies {
    fn policy(&self, t: &str, _storage: &str) -> Option<&Retention> {
        self.0.iter().find(|(n, _)| *n == t).map(|(_, r)| r)
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let now = Utc::now();
    let types = ["hourly", "daily", "weekly", "monthly"];
    let entries: Vec<BackupRecord> = (0..n)
        .map(|i| {
            let started = now - Duration::minutes((i as i64) * 7);
            let id = format!("{}_{i:08x}", started.format("%Y%m%dT%H%M%SZ"));
            let status = if i % 17 == 0 {
                Status::Failed
            } else {
                Status::Success
            };
            let storage = if i % 2 == 0 { "local" } else { "s3" };
            let mut r = BackupRecord::sample(
                &id,
                &format!("db{}", i % 50),
                types[i % 4],
                storage,
                status,
                started,
            );
            r.server = format!("srv{}", i % 3);
            r
        })
        .collect();
    let r = |keep_last, within: Option<&str>| Retention {
        keep_last,
        keep_within: within.map(|w| w.parse().unwrap()),
        forever: false,
        failed_keep_within: "7d".parse().unwrap(),
    };
    let policies = Policies(vec![
        ("hourly", r(Some(24), Some("2d"))),
        ("daily", r(Some(7), Some("14d"))),
        ("weekly", r(Some(4), None)),
        ("monthly", r(Some(12), None)),
    ]);
    let mut best = f64::MAX;
    let mut removed = 0;
    for _ in 0..5 {
        let input = entries.clone();
        let t = Instant::now();
        let p = plan(input, &policies, now);
        best = best.min(t.elapsed().as_secs_f64());
        removed = p.removed_totals().0;
    }
    println!(
        "retention plan over {n} entries: {:.1} ms (best of 5); {removed} removed, {} kept",
        best * 1000.0,
        n - removed
    );
}
