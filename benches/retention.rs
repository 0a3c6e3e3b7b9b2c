//! Benchmark (not a test): retention planning over a large index.
//!   cargo bench --bench retention [-- ENTRIES]      (default 100000)
//! Prints the time per plan, best of several runs, and the decisions made.

use std::time::Instant;

use chrono::{Duration, Utc};
use sqlguard::compress::Algorithm;
use sqlguard::config::Retention;
use sqlguard::index::{BackupRecord, Status};
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
            BackupRecord {
                id: format!("{}_{i:08x}", started.format("%Y%m%dT%H%M%SZ")),
                server: format!("srv{}", i % 3),
                database: format!("db{}", i % 50),
                backup_type: types[i % 4].into(),
                storage: if i % 2 == 0 { "local" } else { "s3" }.into(),
                status: if i % 17 == 0 {
                    Status::Failed
                } else {
                    Status::Success
                },
                started_at: started,
                finished_at: started,
                duration_seconds: 12.0,
                raw_bytes: 1 << 30,
                compressed_bytes: 1 << 28,
                sha256: Some("0".repeat(64)),
                compression: Algorithm::Zstd,
                compression_level: 3,
                key: Some(format!("srv/db/t/{i}.sql.zst")),
                manifest_key: None,
                server_version: None,
                dump_tool: None,
                dump_tool_version: None,
                sqlguard_version: "bench".into(),
                error: None,
            }
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
        let t = Instant::now();
        let p = plan(&entries, &policies, now);
        best = best.min(t.elapsed().as_secs_f64());
        removed = p.removed_totals().0;
    }
    println!(
        "retention plan over {n} entries: {:.1} ms (best of 5); {removed} removed, {} kept",
        best * 1000.0,
        n - removed
    );
}
