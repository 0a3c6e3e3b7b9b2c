//! The config loader: any text, as a YAML file, resolves or fails with an error; never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlguard::config::env::Environment;
use sqlguard::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Settings::resolve_text("fuzz.yaml", text, &Environment::default()) {
        let _ = sqlguard::config::show::file_yaml(&s);
        for t in &s.backup_types {
            if let Some(cron) = &t.schedule {
                let _ = sqlguard::schedule::to_on_calendar(cron);
                let _ = sqlguard::schedule::stale_after(cron, chrono::Utc::now());
            }
        }
    }
});
