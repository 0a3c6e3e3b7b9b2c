//! Kubernetes manifests for `sqlguard schedule --format kubernetes`: a ConfigMap that carries the
//! config file as it is, and one CronJob per scheduled job whose pod matches the image built from
//! the `Containerfile` (UID 10001, read-only root filesystem, temporary files on an emptyDir).
//!
//! Pure text generation: it reads no file and contacts nothing. It checks what Kubernetes would
//! reject later (object names, the size of the temp volume, the cron expression) and fails naming
//! the fix. Timings derive from each schedule: a job must start within half of its shortest gap
//! and end within eleven twelfths of it, so that it never runs into the next one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// The image's user and group (the `Containerfile`'s `USER`).
pub const IMAGE_UID: u32 = 10001;

/// Seconds a pod gets between SIGTERM and SIGKILL. After a signal sqlguard stops dumping and gives
/// every storage request one short attempt (`storage::s3::STOPPING_TIMEOUT`, 10 s) to record the
/// failure and abort uploads; a run has a handful of such requests per storage, so two minutes
/// leave room for all of them.
pub const TERMINATION_GRACE_SECS: u64 = 120;

/// The host name of every pod: a Job's pod would otherwise be named anew each run, and sqlguard
/// takes this host's name for the metrics' default `instance` and for the owner of the groups it
/// pushes (`sqlguard_config_info`), which must stay the same from one run to the next for the
/// groups of a removed server, type or storage to be deleted.
pub const POD_HOSTNAME: &str = "sqlguard";

/// The longest a job may run, whatever its schedule: a run past a day is hung.
const MAX_ACTIVE_SECS: i64 = 24 * 3600;
/// The latest a missed start may still happen.
const MAX_STARTING_SECS: i64 = 3600;
/// CronJob names are at most 52 characters (the controller appends 11 to name the Jobs).
const MAX_CRONJOB_NAME: usize = 52;

/// A manifest could not be written.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    #[error("job {job}: the CronJob name '{name}' is longer than {MAX_CRONJOB_NAME} characters; give the backup type a shorter name")]
    NameTooLong { job: String, name: String },
    #[error("jobs {first} and {second} both become the CronJob '{name}'; rename one backup type")]
    NameClash {
        first: String,
        second: String,
        name: String,
    },
    #[error("job {job}: {message}")]
    Schedule { job: String, message: String },
    #[error("--temp-size '{0}' is not a Kubernetes quantity such as 10Gi or 500Mi")]
    Quantity(String),
    #[error("secret file {path}: '{key}' is not a Secret key (letters, digits, '-', '_', '.'); rename the file")]
    SecretKey { path: String, key: String },
}

/// One scheduled run: `backup-daily` runs `backup --type daily` at `cron`.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub cron: String,
    pub args: Vec<String>,
}

/// A directory the jobs write besides the temp directory.
#[derive(Debug, Clone)]
pub struct Writable {
    pub path: PathBuf,
    /// The PersistentVolumeClaim mounted there; `None` for a per-pod emptyDir (lock directories).
    pub claim: Option<String>,
}

/// Everything the manifests are made of.
#[derive(Debug, Clone)]
pub struct Manifests<'a> {
    /// The config file's text: the ConfigMap's `config.yaml`.
    pub config_text: &'a str,
    /// Where the pods mount it (its directory holds the ConfigMap).
    pub config_path: &'a Path,
    pub image: &'a str,
    /// The zone the CronJob controller reads the schedules in.
    pub time_zone: &'a str,
    /// The emptyDir size limit of /tmp: room for a restore's (or verify's) checked copy.
    pub temp_size: &'a str,
    /// Where the pods mount the Secret `sqlguard-secrets`.
    pub secrets_dir: &'a Path,
    /// The Secret's keys (file names under `secrets_dir` that the config reads).
    pub secret_keys: Vec<String>,
    pub writable: Vec<Writable>,
    pub jobs: Vec<Job>,
    /// Lines for the header (jobs not scheduled, files the pods will not have).
    pub notes: Vec<String>,
}

/// The Secret keys: the files under `secrets_dir` that the config names (in `*_file` keys, a TLS
/// `ca`, anywhere); and the `*_file` and `ca` paths outside it, which the pods will not have
/// unless the user mounts them.
///
/// Fails when a file under the directory has a name that cannot be a Secret key.
pub fn secret_files(
    config: &yaml_serde::Value,
    secrets_dir: &Path,
) -> Result<(Vec<String>, Vec<String>), KubernetesError> {
    /// (path, whether its key names a file)
    fn walk(v: &yaml_serde::Value, file_key: bool, out: &mut Vec<(String, bool)>) {
        match v {
            yaml_serde::Value::Mapping(m) => {
                for (k, v) in m {
                    let file_key = k
                        .as_str()
                        .is_some_and(|k| k.ends_with("_file") || k == "ca");
                    walk(v, file_key, out);
                }
            }
            yaml_serde::Value::Sequence(s) => s.iter().for_each(|v| walk(v, false, out)),
            yaml_serde::Value::String(p) => out.push((p.clone(), file_key)),
            _ => {}
        }
    }
    let mut paths = Vec::new();
    walk(config, false, &mut paths);
    let mut keys = Vec::new();
    let mut outside = Vec::new();
    for (p, file_key) in paths {
        match Path::new(&p).strip_prefix(secrets_dir) {
            Ok(rest) if p.starts_with('/') => {
                let key = rest.to_string_lossy().into_owned();
                let ok = !key.is_empty()
                    && key.len() <= 253
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err(KubernetesError::SecretKey { path: p, key });
                }
                keys.push(key);
            }
            _ if file_key => outside.push(p),
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    outside.sort();
    outside.dedup();
    Ok((keys, outside))
}

/// A DNS label from a job id or storage name: lower case, `_` and `.` as `-`.
pub fn dns_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    out.trim_start_matches('-').to_string()
}

fn check_quantity(q: &str) -> Result<(), KubernetesError> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix);
    if ok {
        Ok(())
    } else {
        Err(KubernetesError::Quantity(q.to_string()))
    }
}

/// A YAML scalar that reads back as exactly `s` (a JSON string is a YAML flow scalar), with
/// what JSON leaves raw but YAML reads as a line break (NEL, U+2028, U+2029) escaped too.
fn quote(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    json.chars()
        .map(|c| match c {
            c if crate::ui::unprintable(c) => format!("\\u{:04X}", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

/// The config text as the ConfigMap's value: a literal block when that reads back unchanged, else
/// one quoted string.
fn config_value(text: &str) -> String {
    let body = text.strip_suffix('\n').unwrap_or("");
    let literal = !body.is_empty()
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\t'])
        && body.lines().all(|l| {
            !l.ends_with([' ', '\t'])
                && !l.starts_with('\t')
                // YAML breaks lines at these too (NEL and the Unicode separators), and a
                // literal block cannot hold a control character.
                && !l.chars().any(|c| c != '\t' && crate::ui::unprintable(c))
        });
    if literal {
        let mut out = String::from("|\n");
        for line in body.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "    {line}");
            }
        }
        out.pop();
        out
    } else {
        quote(text)
    }
}

/// The job's schedule as the CronJob states it ([`crate::schedule::to_kubernetes`]).
fn schedule(job: &Job) -> Result<String, KubernetesError> {
    crate::schedule::to_kubernetes(&job.cron).map_err(|message| KubernetesError::Schedule {
        job: job.id.clone(),
        message,
    })
}

/// The CronJob timings of a schedule: (startingDeadlineSeconds, activeDeadlineSeconds).
fn deadlines(job: &Job, now: DateTime<Utc>) -> Result<(i64, i64), KubernetesError> {
    schedule(job)?;
    let gap = crate::schedule::min_interval(&job.cron, now)
        .ok_or_else(|| KubernetesError::Schedule {
            job: job.id.clone(),
            message: format!("'{}' never fires", job.cron),
        })?
        .num_seconds();
    let starting = (gap / 2).clamp(60, MAX_STARTING_SECS);
    let active = (gap / 12 * 11).clamp(300, MAX_ACTIVE_SECS);
    Ok((starting, active))
}

/// Writes the manifests: the ConfigMap, then one CronJob per job.
///
/// Fails when a job's name cannot be a CronJob name, two jobs clash, a schedule does not parse,
/// or the temp size is not a quantity.
pub fn render(m: &Manifests, now: DateTime<Utc>) -> Result<String, KubernetesError> {
    check_quantity(m.temp_size)?;
    let config_dir = m
        .config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/etc/sqlguard"));
    let config_file = m
        .config_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.yaml".into());
    let mut out = format!(
        "# Generated by `sqlguard schedule --format kubernetes`: a ConfigMap that holds the config file\n\
         # as it is, and one CronJob per scheduled job, for the image built from the\n\
         # Containerfile (scripts/image.sh): UID {IMAGE_UID}, read-only root filesystem, /tmp on an emptyDir of\n\
         # {temp} (room for a restore's checked copy of the largest backup), schedules in {tz}.\n",
        temp = m.temp_size,
        tz = m.time_zone,
    );
    if !m.secret_keys.is_empty() {
        let _ = write!(
            out,
            "# Secrets: the pods mount the Secret sqlguard-secrets at {}; create it first:\n#   kubectl create secret generic sqlguard-secrets",
            m.secrets_dir.display()
        );
        for k in &m.secret_keys {
            let _ = write!(out, " \\\n#     --from-file={k}=./{k}");
        }
        out.push('\n');
    }
    for w in &m.writable {
        match &w.claim {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "# {} is the PersistentVolumeClaim {c}, which you create.",
                    w.path.display()
                );
            }
            None => {
                let _ = writeln!(out, "# {} is an emptyDir of each pod.", w.path.display());
            }
        }
    }
    for n in &m.notes {
        let _ = writeln!(out, "# {}", crate::ui::cell_text(n));
    }
    let _ = write!(
        out,
        "# Jobs never overlap (concurrencyPolicy Forbid) and a failed run is not retried: the metrics\n\
         # and alerts report it, and the next schedule runs again.\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n  name: sqlguard-config\n  labels: {{app.kubernetes.io/name: sqlguard}}\n\
         data:\n  {key}: {value}\n",
        key = if config_file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            config_file.clone()
        } else {
            quote(&config_file)
        },
        value = config_value(m.config_text),
    );

    let mut seen: Vec<(String, String)> = Vec::new();
    for job in &m.jobs {
        let name = format!("sqlguard-{}", dns_name(&job.id));
        if name.len() > MAX_CRONJOB_NAME {
            return Err(KubernetesError::NameTooLong {
                job: job.id.clone(),
                name,
            });
        }
        if let Some((first, _)) = seen.iter().find(|(_, n)| *n == name) {
            return Err(KubernetesError::NameClash {
                first: first.clone(),
                second: job.id.clone(),
                name,
            });
        }
        seen.push((job.id.clone(), name.clone()));
        let (starting, active) = deadlines(job, now)?;
        let component = dns_name(&job.id);
        let mut args = vec![
            "--config".to_string(),
            m.config_path.display().to_string(),
            "--no-progress".to_string(),
        ];
        args.extend(job.args.iter().cloned());
        let args = args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", ");
        let _ = write!(
            out,
            "---\n\
             # cron: {cron} ({tz})\n\
             apiVersion: batch/v1\n\
             kind: CronJob\n\
             metadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: sqlguard, app.kubernetes.io/component: {component}}}\n\
             spec:\n  schedule: {cron_q}\n  timeZone: {tz_q}\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: {starting}\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 5\n\
             \x20 jobTemplate:\n    spec:\n      backoffLimit: 0\n      activeDeadlineSeconds: {active}\n\
             \x20     template:\n        metadata:\n          labels: {{app.kubernetes.io/name: sqlguard, app.kubernetes.io/component: {component}}}\n\
             \x20       spec:\n          hostname: {POD_HOSTNAME}\n          restartPolicy: Never\n          terminationGracePeriodSeconds: {TERMINATION_GRACE_SECS}\n          automountServiceAccountToken: false\n\
             \x20         securityContext:\n            runAsNonRoot: true\n            runAsUser: {IMAGE_UID}\n            runAsGroup: {IMAGE_UID}\n            fsGroup: {IMAGE_UID}\n            seccompProfile: {{type: RuntimeDefault}}\n\
             \x20         containers:\n            - name: sqlguard\n              image: {image}\n              imagePullPolicy: IfNotPresent\n              args: [{args}]\n\
             \x20             env:\n                - {{name: TMPDIR, value: /tmp}}\n\
             \x20             resources:\n                requests: {{cpu: 500m, memory: 256Mi}}\n                limits: {{memory: 1Gi}}\n\
             \x20             securityContext:\n                allowPrivilegeEscalation: false\n                readOnlyRootFilesystem: true\n                capabilities: {{drop: [ALL]}}\n\
             \x20             volumeMounts:\n                - {{name: config, mountPath: {config_dir}, readOnly: true}}\n",
            cron = job.cron,
            tz = m.time_zone,
            cron_q = quote(&schedule(job)?),
            tz_q = quote(m.time_zone),
            image = quote(m.image),
            config_dir = quote(&config_dir.display().to_string()),
        );
        if !m.secret_keys.is_empty() {
            let _ = writeln!(
                out,
                "                - {{name: secrets, mountPath: {}, readOnly: true}}",
                quote(&m.secrets_dir.display().to_string())
            );
        }
        out.push_str("                - {name: tmp, mountPath: /tmp}\n");
        for (i, w) in m.writable.iter().enumerate() {
            let _ = writeln!(
                out,
                "                - {{name: data-{i}, mountPath: {}}}",
                quote(&w.path.display().to_string())
            );
        }
        out.push_str(
            "          volumes:\n            - name: config\n              configMap: {name: sqlguard-config}\n",
        );
        if !m.secret_keys.is_empty() {
            // 0440: with fsGroup the files belong to the pod's group, and only it may read them.
            out.push_str("            - name: secrets\n              secret: {secretName: sqlguard-secrets, defaultMode: 0440}\n");
        }
        let _ = writeln!(
            out,
            "            - name: tmp\n              emptyDir: {{sizeLimit: {}}}",
            m.temp_size
        );
        for (i, w) in m.writable.iter().enumerate() {
            match &w.claim {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "            - name: data-{i}\n              persistentVolumeClaim: {{claimName: {}}}",
                        quote(c)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "            - name: data-{i}\n              emptyDir: {{}}"
                    );
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn job(id: &str, cron: &str) -> Job {
        Job {
            id: id.into(),
            cron: cron.into(),
            args: vec!["backup".into()],
        }
    }

    fn manifests(jobs: Vec<Job>) -> Manifests<'static> {
        Manifests {
            config_text: "servers: {}\n",
            config_path: Path::new("/etc/sqlguard/config.yaml"),
            image: "sqlguard:0.1.0",
            time_zone: "Etc/UTC",
            temp_size: "10Gi",
            secrets_dir: Path::new("/run/secrets/sqlguard"),
            secret_keys: vec![],
            writable: vec![],
            jobs,
            notes: vec![],
        }
    }

    #[test]
    fn deadlines_fit_inside_the_shortest_gap() {
        let d = |c| deadlines(&job("j", c), now()).unwrap();
        assert_eq!(d("0 * * * *"), (1800, 3300));
        assert_eq!(d("*/5 * * * *"), (150, 300));
        assert_eq!(d("30 2 * * *"), (3600, 79200));
        assert_eq!(d("0 3 * * 0"), (3600, 86400));
        assert_eq!(d("0 3 * * 7"), (3600, 86400));
        assert!(deadlines(&job("j", "0 3 * * sun-sun"), now()).is_err());
    }

    #[test]
    fn the_grace_period_outlasts_the_bounded_shutdown() {
        let stopping = crate::storage::s3::STOPPING_TIMEOUT.as_secs();
        assert!(TERMINATION_GRACE_SECS >= 6 * stopping);
    }

    #[test]
    fn names_that_kubernetes_would_refuse_fail_first() {
        let long = "x".repeat(50);
        let err = render(&manifests(vec![job(&long, "0 * * * *")]), now()).unwrap_err();
        assert!(err.to_string().contains("shorter name"), "{err}");
        let err = render(
            &manifests(vec![
                job("backup-a_b", "0 * * * *"),
                job("backup-a.b", "0 * * * *"),
            ]),
            now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("rename one"), "{err}");
        let mut m = manifests(vec![]);
        m.temp_size = "10 GB";
        assert!(render(&m, now())
            .unwrap_err()
            .to_string()
            .contains("--temp-size"));
        assert_eq!(dns_name("Backup_Daily.x"), "backup-daily-x");
    }

    #[test]
    fn config_reads_back_unchanged() {
        for text in [
            "servers:\n  a:\n    host: x\n\n# end\n",
            "  indented: first\n",
            "trailing: space \n",
            "tab:\tin the middle\n",
            "no: final newline",
            "two: final newlines\n\n",
            // Line breaks to YAML that JSON leaves raw: the block would end early.
            "lock_dir: \"/tmp/x\u{2028}immutable: true\"\n",
            "a: \"x\u{85}y\u{2029}z\"\n",
        ] {
            let yaml = format!("data:\n  c: {}\n", config_value(text));
            let v: yaml_serde::Value = yaml_serde::from_str(&yaml).unwrap();
            assert_eq!(v["data"]["c"].as_str().unwrap(), text, "{yaml}");
        }
    }

    #[test]
    fn secret_keys_come_from_file_keys_under_the_mount() {
        let cfg: yaml_serde::Value = yaml_serde::from_str(
            "servers:\n  a:\n    password_file: /run/secrets/sqlguard/db-password\n    tls: {ca: /etc/ssl/ca.pem}\nstorage:\n  s:\n    secret_access_key_file: /run/secrets/sqlguard/s3-secret\n",
        )
        .unwrap();
        let (keys, outside) = secret_files(&cfg, Path::new("/run/secrets/sqlguard")).unwrap();
        assert_eq!(keys, ["db-password", "s3-secret"]);
        assert_eq!(outside, ["/etc/ssl/ca.pem"]);
        let bad: yaml_serde::Value =
            yaml_serde::from_str("a_file: /run/secrets/sqlguard/sub/key\n").unwrap();
        assert!(secret_files(&bad, Path::new("/run/secrets/sqlguard")).is_err());
    }
}
