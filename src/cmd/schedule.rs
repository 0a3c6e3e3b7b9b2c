//! `sqlguard schedule`: crontab lines, systemd timer + service units, or Kubernetes CronJobs from
//! the config's schedules.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Context, Printer};
use crate::config::StorageKind;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::joblock::default_lock_dir;
use crate::schedule::to_on_calendar;

/// What to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A cron.d file (with a user column), for /etc/cron.d/sqlguard
    Cron,
    /// Lines for `crontab -e` (no user column)
    Crontab,
    /// systemd .service + .timer pairs, for /etc/systemd/system
    Systemd,
    /// A ConfigMap with the config file and a CronJob per job, for the container image
    Kubernetes,
}

/// Write scheduler entries for every scheduled backup type, each server's binary log archive,
/// and prune.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scheduler to write for
    #[arg(long, short = 'f', value_enum)]
    pub format: Format,
    /// Write files into this directory instead of printing them
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// The sqlguard binary the entries run
    #[arg(long, value_name = "PATH", default_value = "/usr/local/bin/sqlguard")]
    pub binary: PathBuf,
    /// The config path the entries pass (default: the config this run loaded; for kubernetes,
    /// /etc/sqlguard/config.yaml, where the pods mount the ConfigMap)
    #[arg(long, value_name = "PATH")]
    pub config_path: Option<PathBuf>,
    /// The user the jobs run as
    #[arg(long, value_name = "NAME", default_value = "sqlguard")]
    pub user: String,
    /// systemd only: RandomizedDelaySec= of every timer, e.g. 5m
    #[arg(long, value_name = "DURATION")]
    pub randomized_delay: Option<crate::duration::HumanDuration>,
    /// kubernetes only: the image the CronJobs run (default sqlguard:<this version>)
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// kubernetes only: the time zone of the schedules (sqlguard judges staleness in UTC)
    #[arg(long, value_name = "ZONE", default_value = "Etc/UTC")]
    pub time_zone: String,
    /// kubernetes only: size limit of the pods' /tmp, room for a restore's checked copy of the
    /// largest backup
    #[arg(long, value_name = "QUANTITY", default_value = "10Gi")]
    pub temp_size: String,
    /// kubernetes only: where the pods mount the Secret sqlguard-secrets; the files under it
    /// that the config names are its keys
    #[arg(long, value_name = "DIR", default_value = "/run/secrets/sqlguard")]
    pub secrets_dir: PathBuf,
}

/// One scheduled job.
struct Job {
    /// `backup-daily`, `prune`.
    id: String,
    description: String,
    cron: String,
    args: String,
    /// Runs on time, not spread out (the binary log archive: its delay is the data at risk).
    punctual: bool,
}

fn jobs(ctx: &Context) -> (Vec<Job>, Vec<String>) {
    let s = &ctx.settings;
    let mut jobs = Vec::new();
    let mut notes = Vec::new();
    for t in &s.backup_types {
        match &t.schedule {
            Some(cron) => jobs.push(Job {
                id: format!("backup-{}", t.name),
                description: format!("sqlguard {} backup", t.name),
                cron: cron.clone(),
                args: format!("backup --type {}", t.name),
                punctual: false,
            }),
            None => notes.push(format!(
                "backup type '{}' has no schedule: not scheduled",
                t.name
            )),
        }
    }
    for server in s.backed_up() {
        if let Some(b) = &server.binlog {
            jobs.push(Job {
                id: format!("binlog-{}", server.name),
                description: format!("sqlguard binlog archive of {}", server.name),
                cron: b.schedule.clone(),
                args: format!("binlog --server {}", server.name),
                punctual: true,
            });
        }
    }
    if s.prune_after_backup {
        notes
            .push("prune_after_backup is set: every backup prunes, no separate prune entry".into());
    } else {
        jobs.push(Job {
            id: "prune".into(),
            description: "sqlguard prune".into(),
            cron: s.prune_schedule.clone(),
            args: "prune".into(),
            punctual: false,
        });
    }
    (jobs, notes)
}

fn config_path(args: &Args, ctx: &Context) -> Result<PathBuf, Error> {
    if let Some(p) = &args.config_path {
        return Ok(p.clone());
    }
    match &ctx.settings.config_file {
        Some(p) => Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        None => Err(Error::invalid(
            "this run has no config file (environment only): pass --config-path with the path the jobs should use",
        )),
    }
}

fn command_line(
    args: &Args,
    config: &Path,
    job: &Job,
    quiet: bool,
    quote: fn(&str) -> String,
) -> String {
    format!(
        "{} --config {} --no-progress{} {}",
        quote(&args.binary.display().to_string()),
        quote(&config.display().to_string()),
        if quiet { " --quiet" } else { "" },
        job.args
    )
}

/// Whether `s` needs no quoting in a shell, cron or a systemd unit.
fn plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@=".contains(c))
}

/// `s` as one word of a crontab line: shell-quoted, with `%` (cron's newline) escaped.
fn cron_word(s: &str) -> String {
    if plain_word(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''")).replace('%', "\\%")
}

/// `s` as one word of a systemd `Exec*=` command line: double-quoted when needed, with `%`
/// specifiers and `$` expansions escaped.
fn unit_word(s: &str) -> String {
    path_word(&s.replace('$', "$$"))
}

/// `s` as one word of a systemd path setting (`ReadWritePaths=`): double-quoted when needed,
/// with `%` specifiers escaped; `$` is no expansion there and stays as it is.
fn path_word(s: &str) -> String {
    let escaped = s.replace('%', "%%");
    if plain_word(s) {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Directories the service must be able to write: local storages, the report, the lock dir.
fn writable_paths(ctx: &Context) -> Vec<String> {
    let s = &ctx.settings;
    let mut out: Vec<String> = s
        .storages
        .iter()
        .filter_map(|st| match &st.kind {
            StorageKind::Local { path } => Some(path.display().to_string()),
            StorageKind::S3(_) => None,
        })
        .collect();
    if let Some(dir) = s.report_html.as_ref().and_then(|p| p.parent()) {
        out.push(dir.display().to_string());
    }
    if s.lock_dir != default_lock_dir() {
        out.push(s.lock_dir.display().to_string());
    }
    out.sort();
    out.dedup();
    out
}

fn cron_file(args: &Args, ctx: &Context, config: &Path, with_user: bool) -> Result<String, Error> {
    let (jobs, notes) = jobs(ctx);
    let mut out = format!(
        "# sqlguard schedule, from {} (`sqlguard schedule --format {}`).\n# Output goes to cron mail only on errors (--quiet); exit codes are in `man sqlguard`.\n",
        config.display(),
        if with_user { "cron" } else { "crontab" }
    );
    for n in notes {
        let _ = writeln!(out, "# {n}");
    }
    out.push_str(
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    );
    for j in jobs {
        crate::schedule::parse(&j.cron).map_err(Error::invalid)?;
        let user = if with_user {
            format!(" {}", args.user)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}{user} {}",
            j.cron,
            command_line(args, config, &j, true, cron_word)
        );
    }
    Ok(out)
}

fn systemd_units(
    args: &Args,
    ctx: &Context,
    config: &Path,
) -> Result<Vec<(String, String)>, Error> {
    let (jobs, _) = jobs(ctx);
    let writable = writable_paths(ctx);
    let explicit_lock_dir = ctx.settings.lock_dir != default_lock_dir();
    let mut files = Vec::new();
    for j in jobs {
        let calendar = to_on_calendar(&j.cron)
            .map_err(|e| Error::invalid(format!("cannot write a timer for {}: {e}", j.id)))?;
        let unit = format!("sqlguard-{}", j.id);
        let mut service = format!(
            "# Generated by `sqlguard schedule --format systemd` from {config}.\n[Unit]\nDescription={desc}\nDocumentation=man:sqlguard(1)\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nUser={user}\nGroup={user}\nExecStart={cmd}\n",
            config = config.display(),
            desc = j.description,
            user = args.user,
            cmd = command_line(args, config, &j, false, unit_word),
        );
        if !explicit_lock_dir {
            // Job locks must outlive each run and be shared by every unit: a runtime directory
            // that is kept, instead of the (private) temp directory.
            service.push_str("Environment=SQLGUARD_LOCK_DIR=/run/sqlguard\nRuntimeDirectory=sqlguard\nRuntimeDirectoryPreserve=yes\n");
        }
        service.push_str(
            "Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n# Hardening: read-only system, private /tmp, no privilege gain.\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nNoNewPrivileges=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\nRestrictSUIDSGID=yes\nRestrictRealtime=yes\nRestrictNamespaces=yes\nLockPersonality=yes\nMemoryDenyWriteExecute=yes\nSystemCallArchitectures=native\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\nCapabilityBoundingSet=\nUMask=0077\n",
        );
        for p in &writable {
            let _ = writeln!(service, "ReadWritePaths={}", path_word(p));
        }
        let mut timer = format!(
            "# Generated by `sqlguard schedule --format systemd` from {config}.\n# cron: {cron}\n[Unit]\nDescription={desc} timer\nDocumentation=man:sqlguard(1)\n\n[Timer]\nOnCalendar={calendar}\nPersistent=true\n",
            config = config.display(),
            cron = j.cron,
            desc = j.description,
        );
        if j.punctual {
            // Every minute means every minute: no spreading, and no minute of timer slack.
            timer.push_str("AccuracySec=1s\n");
        } else if let Some(d) = args.randomized_delay {
            let _ = writeln!(timer, "RandomizedDelaySec={}", d.as_secs());
        }
        let _ = write!(
            timer,
            "Unit={unit}.service\n\n[Install]\nWantedBy=timers.target\n"
        );
        files.push((format!("{unit}.service"), service));
        files.push((format!("{unit}.timer"), timer));
    }
    Ok(files)
}

/// Where a CronJob's pod mounts the config, unless `--config-path` says otherwise.
const KUBERNETES_CONFIG_PATH: &str = "/etc/sqlguard/config.yaml";

fn kubernetes_manifests(args: &Args, ctx: &Context) -> Result<String, Error> {
    use crate::kubernetes::{dns_name, render, secret_files, Job as KubeJob, Manifests, Writable};
    let s = &ctx.settings;
    let source = s.config_file.clone().ok_or_else(|| {
        Error::invalid(
            "--format kubernetes puts the config file in a ConfigMap, and this run has none (environment only): pass --config FILE",
        )
    })?;
    let text = crate::config::read_text(&source, crate::config::MAX_CONFIG_BYTES)
        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", source.display())))?;
    // A ConfigMap is readable by whoever may read the namespace's ConfigMaps: it must not
    // carry a secret. `config show` prints each one written inline as ***. What the file says
    // is what goes there: an override of this run (SQLGUARD_DB_PASSWORD, --no-push) that hides
    // an inline secret from its settings does not hide it from the ConfigMap.
    let env: std::collections::HashMap<String, String> =
        crate::config::env::Environment::from_process()
            .iter()
            .filter(|(k, _)| !k.starts_with("SQLGUARD_") || text.contains(&format!("${{{k}}}")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    let file_alone =
        crate::config::Settings::resolve_text(&source.display().to_string(), &text, &env.into())
            .map_err(|e| {
                Error::invalid(format!(
                    "{e} (read without this run's SQLGUARD_* overrides, as the pods will read it)"
                ))
            })?;
    if crate::config::show::file_yaml(&file_alone)
        .lines()
        .any(|l| !l.trim_start().starts_with('#') && l.contains(crate::secret::REDACTED))
    {
        return Err(Error::invalid(format!(
            "{} holds a secret written inline (`sqlguard config show` prints it as {}), and --format kubernetes would copy it into a ConfigMap: move it to a *_file under --secrets-dir (the Secret sqlguard-secrets) or to a ${{VAR}} the pods get from a Secret",
            source.display(),
            crate::secret::REDACTED
        )));
    }
    let parsed: yaml_serde::Value = yaml_serde::from_str(&text)
        .map_err(|e| Error::invalid(format!("{}: {e}", source.display())))?;
    let (secret_keys, outside) =
        secret_files(&parsed, &args.secrets_dir).map_err(|e| Error::invalid(e.to_string()))?;
    let (jobs, mut notes) = jobs(ctx);
    for p in outside {
        notes.push(format!(
            "{p} is outside {}: mount it into the pods yourself",
            args.secrets_dir.display()
        ));
    }
    // In a pod, a loopback Pushgateway is the pod itself: the metrics would go nowhere.
    match &s.metrics {
        Some(m) => {
            let host = url::Url::parse(&m.pushgateway)
                .ok()
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()));
            let loopback = host.as_deref().is_some_and(|h| {
                h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            });
            if loopback {
                let msg = format!(
                    "the Pushgateway URL {} is the pod itself: name the Pushgateway's Service (http://pushgateway.monitoring.svc:9091)",
                    crate::secret::redact_url(&m.pushgateway)
                );
                ctx.ui.warn(&msg);
                notes.push(msg);
            }
            // Without it every deployment would push under the pods' one host name, and two of
            // them on one Pushgateway would overwrite (and delete) each other's groups.
            // Written in the file (any scalar: `42` is a name too), and not empty once read.
            let written = parsed
                .get("metrics")
                .and_then(|m| m.get("instance"))
                .is_some_and(|v| !v.is_null());
            let resolved = file_alone
                .metrics
                .as_ref()
                .is_some_and(|m| !m.instance.trim().is_empty());
            if !(written && resolved) {
                return Err(Error::invalid(format!(
                    "{}: metrics.instance is not set, and the pods would push under their host name, '{}', the same in every deployment: set it to a name for this config's metrics (the database host, say)",
                    source.display(),
                    crate::kubernetes::POD_HOSTNAME
                )));
            }
        }
        None => notes.push(
            "no Pushgateway configured: the jobs push no metrics, and a failure shows only in the Jobs' status".into(),
        ),
    }
    let mut writable: Vec<Writable> = s
        .storages
        .iter()
        .filter_map(|st| match &st.kind {
            StorageKind::Local { path } => Some(Writable {
                path: path.clone(),
                claim: Some(format!("sqlguard-{}", dns_name(&st.name))),
            }),
            StorageKind::S3(_) => None,
        })
        .collect();
    if let Some(dir) = s.report_html.as_ref().and_then(|p| p.parent()) {
        writable.push(Writable {
            path: dir.to_path_buf(),
            claim: Some("sqlguard-report".into()),
        });
    }
    if s.lock_dir != default_lock_dir() && !s.lock_dir.starts_with("/tmp") {
        writable.push(Writable {
            path: s.lock_dir.clone(),
            claim: None,
        });
    }
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| format!("sqlguard:{}", env!("CARGO_PKG_VERSION")));
    let config_path = args
        .config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(KUBERNETES_CONFIG_PATH));
    let manifests = Manifests {
        config_text: &text,
        config_path: &config_path,
        image: &image,
        time_zone: &args.time_zone,
        temp_size: &args.temp_size,
        secrets_dir: &args.secrets_dir,
        secret_keys,
        writable,
        jobs: jobs
            .into_iter()
            .map(|j| KubeJob {
                id: j.id,
                cron: j.cron,
                args: j.args.split_whitespace().map(String::from).collect(),
            })
            .collect(),
        notes,
    };
    render(&manifests, chrono::Utc::now()).map_err(|e| Error::invalid(e.to_string()))
}

/// Refuses any value the files would carry that holds a line break or another control
/// character (or a Unicode line separator, a line break to YAML): in a crontab, a unit or a
/// manifest it would start a line of its own (a cron entry, an `ExecStartPre=`, a YAML key),
/// which no quoting stops.
fn check_one_line(args: &Args, ctx: &Context) -> Result<(), Error> {
    let s = &ctx.settings;
    let mut values: Vec<(String, String)> = vec![
        ("--user".into(), args.user.clone()),
        ("--time-zone".into(), args.time_zone.clone()),
        ("--temp-size".into(), args.temp_size.clone()),
        ("--binary".into(), args.binary.display().to_string()),
        (
            "--secrets-dir".into(),
            args.secrets_dir.display().to_string(),
        ),
    ];
    if let Some(i) = &args.image {
        values.push(("--image".into(), i.clone()));
    }
    if let Some(p) = &args.config_path {
        values.push(("--config-path".into(), p.display().to_string()));
    }
    if let Some(p) = &s.config_file {
        values.push(("the config file's path".into(), p.display().to_string()));
    }
    // As the files name it: resolved, links followed.
    if let Ok(p) = config_path(args, ctx) {
        values.push(("the config file's path".into(), p.display().to_string()));
    }
    for st in &s.storages {
        if let StorageKind::Local { path } = &st.kind {
            values.push((
                format!("storage.{}.path", st.name),
                path.display().to_string(),
            ));
        }
    }
    if let Some(p) = &s.report_html {
        values.push(("report_html".into(), p.display().to_string()));
    }
    values.push(("lock_dir".into(), s.lock_dir.display().to_string()));
    for (what, v) in values {
        if v.chars().any(crate::ui::unprintable) {
            return Err(Error::invalid(format!(
                "{what} is '{}', which holds a line break or another control character: a scheduler file would take it as a line of its own; use one without",
                crate::ui::cell_text(&v)
            )));
        }
    }
    Ok(())
}

/// Runs the schedule subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    check_one_line(args, ctx)?;
    let files: Vec<(String, String)> = match args.format {
        Format::Cron => vec![(
            "sqlguard".to_string(),
            cron_file(args, ctx, &config_path(args, ctx)?, true)?,
        )],
        Format::Crontab => vec![(
            "sqlguard.crontab".to_string(),
            cron_file(args, ctx, &config_path(args, ctx)?, false)?,
        )],
        Format::Systemd => systemd_units(args, ctx, &config_path(args, ctx)?)?,
        Format::Kubernetes => vec![("cronjob.yaml".to_string(), kubernetes_manifests(args, ctx)?)],
    };
    emit(args, ctx, files)
}

/// Prints the files (or their JSON document), or writes them into `--output-dir`.
fn emit(args: &Args, ctx: &Context, files: Vec<(String, String)>) -> Result<ExitCode, Error> {
    if ctx.json {
        #[derive(serde::Serialize)]
        struct File<'a> {
            name: &'a str,
            content: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            schema_version: u32,
            files: Vec<File<'a>>,
        }
        let files = files
            .iter()
            .map(|(name, content)| File { name, content })
            .collect();
        Printer::json(&Doc {
            schema_version: 1,
            files,
        })?;
        return Ok(ExitCode::Success);
    }
    match &args.output_dir {
        Some(dir) => {
            for (name, _) in &files {
                ctx.settings
                    .refuse_inside_a_storage(&dir.join(name))
                    .map_err(Error::invalid)?;
            }
            // Made 0755 at most (the umask may narrow it), never world-writable: whoever can
            // write it could swap a unit before root installs it.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o755,
            )
            .create(dir)?;
            for (name, text) in &files {
                // Units and cron files are read by systemd and cron: 0644, like theirs.
                crate::publish::bytes(&dir.join(name), 0o644, text.as_bytes())?;
                ctx.ui.info(&format!("wrote {}", dir.join(name).display()));
            }
            match args.format {
                Format::Systemd => ctx.ui.info(
                    "then: systemctl daemon-reload && systemctl enable --now sqlguard-*.timer",
                ),
                Format::Kubernetes => ctx.ui.info(&format!(
                    "then: kubectl apply -f {}",
                    dir.join("cronjob.yaml").display()
                )),
                _ => {}
            }
        }
        None if files.len() == 1 => Printer::line(files[0].1.trim_end())?,
        None => {
            for (name, text) in &files {
                Printer::line(&format!("# ---- {name}\n{}", text.trim_end()))?;
            }
        }
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_cron_and_systemd() {
        assert_eq!(
            cron_word("/etc/sqlguard/config.yaml"),
            "/etc/sqlguard/config.yaml"
        );
        // Cron turns an unescaped % into a newline and drops the backslash of \%; the shell
        // then gets one single-quoted word.
        assert_eq!(cron_word("/we ird%dir/c$fg'x"), r"'/we ird\%dir/c$fg'\''x'");
        assert_eq!(unit_word("/srv/backups"), "/srv/backups");
        assert_eq!(unit_word("/srv/my backups"), "\"/srv/my backups\"");
        assert_eq!(unit_word("/a%b$c\"d"), "\"/a%%b$$c\\\"d\"");
        assert_eq!(path_word("/a%b$c\"d"), "\"/a%%b$c\\\"d\"");
    }
}
