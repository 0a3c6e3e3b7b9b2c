//! The shipped contrib files: alert rules pass promtool's checks and unit tests, the Kubernetes
//! manifests pass a strict schema validation, and every metric
//! that the rules and the dashboard use is one that sqlguard pushes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(format!("{ROOT}/contrib/prometheus"))
        .output()
        .expect(
            "promtool (Debian package prometheus) is installed by scripts/install-deps.sh --test",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 16 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has unit tests.
    let rules = std::fs::read_to_string(format!("{ROOT}/contrib/prometheus/alerts.yml")).unwrap();
    let tests =
        std::fs::read_to_string(format!("{ROOT}/contrib/prometheus/alerts.test.yml")).unwrap();
    for line in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {line}")),
            "alert {line} has no unit test"
        );
    }
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("sqlguard_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn rules_and_dashboard_use_only_metrics_that_sqlguard_pushes() {
    let pushed = metric_names(&std::fs::read_to_string(format!("{ROOT}/src/metrics.rs")).unwrap());
    assert!(pushed.len() >= 12, "{pushed:?}");
    for file in [
        "contrib/prometheus/alerts.yml",
        "contrib/grafana/sqlguard.json",
    ] {
        let text = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no sqlguard metric");
        for name in used {
            assert!(
                pushed.contains(&name),
                "{file} uses {name}, which sqlguard does not push"
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/contrib/grafana/sqlguard.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
}

/// `kubernetes-validate`, from PATH or from the virtual environment that
/// `scripts/install-deps.sh --test` installs it into.
fn kubernetes_validate() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file());
    let venv = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/sqlguard-test/venv/bin/kubernetes-validate"));
    on_path
        .or(venv.filter(|p| p.is_file()))
        .expect("kubernetes-validate (PyPI) is missing: run scripts/install-deps.sh --test")
}

/// Issue 16: the shipped Kubernetes manifests pass a strict schema validation (unknown fields
/// are errors), offline, against the schemas kubernetes-validate bundles.
#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let dir = format!("{ROOT}/contrib/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate --strict:\n{text}"
    );
    // One line per resource, every one passed: a ConfigMap and five CronJobs.
    assert_eq!(text.matches(" passed for resource ").count(), 6, "{text}");
    assert_eq!(
        text.matches("passed for resource cronjob/").count(),
        5,
        "{text}"
    );
}
