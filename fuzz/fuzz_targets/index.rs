//! The index and manifest parser, and everything derived from a parsed index (retention plan,
//! report, metrics): any bytes parse or fail with an error; never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sqlguard::catalog::Catalog;
use sqlguard::config::env::Environment;
use sqlguard::config::Settings;
use sqlguard::index::{BackupRecord, DatabaseIndex, Index, Summary};

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        Settings::resolve_text(
            "fuzz.yaml",
            "servers:\n  main: {}\nstorage:\n  local: {type: local, path: /nonexistent}\nbackup_types:\n  daily:\n    schedule: \"30 2 * * *\"\n    retention: {keep_last: 2, keep_within: 3d}\n  manual:\n    retention: {keep_last: 1}\n",
            &Environment::default(),
        )
        .expect("the fuzz config resolves")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<BackupRecord>(data);
    let _ = serde_json::from_slice::<DatabaseIndex>(data);
    if let Ok(summary) = serde_json::from_slice::<Summary>(data) {
        let mut merged = sqlguard::index::TypeSummary::default();
        for d in summary.databases.values() {
            for t in d.types.values() {
                merged.merge(t);
                let _ = t.claims_other_storage("local");
            }
        }
    }
    let Ok(index) = serde_json::from_slice::<Index>(data) else {
        return;
    };
    let now = chrono::Utc::now();
    let s = settings();
    let _ = sqlguard::retention::plan(index.backups.clone(), s, now);
    let catalog = Catalog::from_records(index.backups);
    let report = sqlguard::report::build(s, &catalog, chrono::Duration::days(30), now);
    let _ = sqlguard::report::html(&report);
});
