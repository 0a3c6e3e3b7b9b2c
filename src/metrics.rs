//! Prometheus metrics, pushed to a Pushgateway at the end of every backup and prune.
//!
//! Values are derived from the indexes (via [`crate::catalog`]) as well as from the run, and each
//! push replaces (HTTP PUT) only groups that the pushed values describe completely, so that no
//! run erases another's metrics:
//!
//! | grouping key (after `job`, `instance`, extra labels) | metrics |
//! | --- | --- |
//! | `server`, `type` | `sqlguard_backup_*` per database, from the index: a failed run leaves the last success in place |
//! | `storage`, `server` | `sqlguard_storage_backups`, `sqlguard_storage_bytes`, from the index |
//! | `command`, `type` for backups, `server` | `sqlguard_run_*` of the last run of that command covering that server, `sqlguard_prune_*` of the server |
//! | `command=binlog`, `server` | `sqlguard_binlog_*` of the server's archive, and the `sqlguard_run_*` of the last binlog run |
//!
//! Every group also holds `sqlguard_config_info{config="<file>"}`, the config file that pushed it;
//! after its pushes a run deletes that file's groups of servers, backup types, storages and binary
//! log archives the file no longer has (found through the Pushgateway's `/api/v1/metrics`).
//!
//! The metrics are encoded with the `prometheus` crate and sent with attohttpc, the HTTP client
//! that rust-s3 already brings (the crate's own `push` feature would add a second HTTP and TLS
//! stack). A Pushgateway that is down or slow costs one warning and a short timeout.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::catalog::Catalog;
use crate::config::MetricsSettings;
use crate::config::Settings;
use crate::health::Model;
use crate::index::Status;
use crate::ui::Ui;

pub use crate::run::Summary as RunSummary;

/// How a group reaches the Pushgateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// PUT: the group becomes exactly what it holds.
    Replace,
    /// POST: only the metrics it holds replace theirs in the group, the others stay (a run that
    /// could not read what they say leaves them as they were).
    Merge,
    /// DELETE: a group this version no longer pushes (its metrics moved to other groups).
    Delete,
}

impl Method {
    fn verb(self) -> &'static str {
        match self {
            Method::Replace => "PUT",
            Method::Merge => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One Pushgateway group: its grouping labels and the metrics to push.
#[derive(Debug)]
pub struct Group {
    pub labels: Vec<(String, String)>,
    pub registry: Registry,
    pub method: Method,
    /// When the run began reading the indexes the group comes from ([`VIEW`]).
    pub view: Option<f64>,
}

impl Group {
    fn new(labels: Vec<(String, String)>) -> Group {
        Group {
            labels,
            registry: Registry::new(),
            method: Method::Replace,
            view: None,
        }
    }

    /// A group to delete.
    fn deleting(labels: Vec<(String, String)>) -> Group {
        Group {
            method: Method::Delete,
            ..Group::new(labels)
        }
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
        self.registry
            .register(Box::new(g.clone()))
            .expect("metric registered once per group");
        g
    }

    /// The group in the text exposition format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("text format is UTF-8")
    }
}

fn ts(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// The `server`/`type` groups: per database, the state of its backups of that type.
///
/// A push replaces only what the run could read: a `server`/`type` group is left as it is
/// while one of the type's storages cannot be read, but by a backup of that type (whose
/// failures on that storage the other storages' indexes hold): from what the other storages
/// hold alone, a prune would make a failed copy there vanish, and with it the alert on it.
/// (The verifications of a storage's copies are in its `storage`/`server` group.)
fn backup_groups(
    settings: &Settings,
    model: &Model,
    run: &RunSummary,
    now: DateTime<Utc>,
) -> Vec<Group> {
    let (servers, types) = (&run.servers, &run.refresh_types);
    let mut out = Vec::new();
    for server in settings
        .backed_up()
        .filter(|s| servers.is_empty() || servers.contains(&s.name))
    {
        for t in types {
            // The archive's segments of a server that archives none: nothing to say.
            if t == crate::binlog::TYPE && server.binlog.is_none() {
                continue;
            }
            let type_storages: Vec<String> = if t == crate::binlog::TYPE {
                server
                    .binlog
                    .as_ref()
                    .map(|b| b.storages.clone())
                    .unwrap_or_default()
            } else {
                settings
                    .backup_type(t)
                    .map(|bt| bt.storages.clone())
                    .unwrap_or_default()
            };
            let partial = type_storages.iter().any(|st| model.unreadable.contains(st));
            let own_backup =
                run.command == "backup" && run.backup_type.as_deref() == Some(t.as_str());
            if partial && !own_backup {
                continue;
            }
            let mut g = Group::new(vec![
                ("server".into(), server.name.clone()),
                ("type".into(), t.clone()),
            ]);
            // A backup of the type with one of its storages out of reach: its own news (the
            // witness records of its failures there) merged in, the restore tests (which only
            // that storage's index may hold) left as they were.
            let scratch = Group::new(Vec::new());
            if partial {
                g.method = Method::Merge;
            }
            let rt = if partial { &scratch } else { &g };
            let l = &["server", "database", "type"];
            let last_success = g.gauge(
                "sqlguard_backup_last_success_timestamp_seconds",
                "Finish time of the newest successful backup (any storage).",
                l,
            );
            let last_status = g.gauge(
                "sqlguard_backup_last_status",
                "1 when the newest backup run succeeded on every storage, else 0.",
                l,
            );
            let last_run = g.gauge(
                "sqlguard_backup_last_run_timestamp_seconds",
                "Start time of the newest backup run, successful or not.",
                l,
            );
            let last_duration = g.gauge(
                "sqlguard_backup_last_duration_seconds",
                "Duration of the newest successful backup.",
                l,
            );
            let last_size = g.gauge(
                "sqlguard_backup_last_size_bytes",
                "Stored (compressed) size of the newest successful backup.",
                l,
            );
            let last_raw = g.gauge(
                "sqlguard_backup_last_raw_size_bytes",
                "Dump (uncompressed) size of the newest successful backup.",
                l,
            );
            let storage_status = g.gauge(
                "sqlguard_backup_storage_last_status",
                "1 when the newest copy on this storage succeeded, else 0.",
                &["server", "database", "type", "storage"],
            );
            let tested_at = rt.gauge(
                "sqlguard_restore_test_last_timestamp_seconds",
                "When the newest restore test of this database's backups ran (any copy).",
                l,
            );
            let tested_ok = rt.gauge(
                "sqlguard_restore_test_last_status",
                "1 when the newest restore test passed, else 0.",
                l,
            );
            let tested_duration = rt.gauge(
                "sqlguard_restore_test_last_duration_seconds",
                "Seconds the newest restore test took to restore the copy: the measured recovery time.",
                l,
            );
            let tested_passed = rt.gauge(
                "sqlguard_restore_test_last_success_timestamp_seconds",
                "When a restore test last passed (0: never, while restore_test_within is set).",
                l,
            );
            let window = rt.gauge(
                "sqlguard_restore_test_window_seconds",
                "restore_test_within of this type: a restore test must have passed within it.",
                &["server", "type"],
            );
            let within = settings
                .backup_type(t)
                .ok()
                .and_then(|bt| bt.restore_test_within);
            if let Some(w) = within {
                window
                    .with_label_values(&[&server.name, t])
                    .set(w.as_secs() as f64);
            }
            let interval = g.gauge(
                "sqlguard_backup_expected_interval_seconds",
                "Longest gap between two scheduled runs of this type (from its cron expression).",
                &["server", "type"],
            );
            if let Some(iv) = settings
                .backup_type(t)
                .ok()
                .and_then(|bt| bt.schedule.as_deref())
                .and_then(|s| crate::schedule::max_interval(s, now))
            {
                interval
                    .with_label_values(&[&server.name, t])
                    .set(iv.num_seconds() as f64);
            }
            for row in model
                .rows
                .iter()
                .filter(|r| r.server == server.name && &r.backup_type == t)
            {
                let labels = [server.name.as_str(), row.database.as_str(), t.as_str()];
                last_status
                    .with_label_values(&labels)
                    .set(if row.last_run_ok() { 1.0 } else { 0.0 });
                last_run
                    .with_label_values(&labels)
                    .set(ts(row.last_run_at()));
                if let Some(s) = row.last_success() {
                    // A retired database's age is no news: its stale alert would fire for ever.
                    if !row.retired {
                        last_success
                            .with_label_values(&labels)
                            .set(ts(s.finished_at));
                    }
                    last_duration
                        .with_label_values(&labels)
                        .set(s.duration_seconds);
                    last_size
                        .with_label_values(&labels)
                        .set(s.compressed_bytes as f64);
                    last_raw.with_label_values(&labels).set(s.raw_bytes as f64);
                }
                if let Some(rt) = &row.summary.restore_tested {
                    tested_at.with_label_values(&labels).set(ts(rt.tested_at));
                    tested_ok
                        .with_label_values(&labels)
                        .set(if rt.ok { 1.0 } else { 0.0 });
                    tested_duration
                        .with_label_values(&labels)
                        .set(rt.duration_seconds);
                }
                match &row.summary.restore_test_passed {
                    _ if row.retired => {}
                    Some(rt) => tested_passed
                        .with_label_values(&labels)
                        .set(ts(rt.tested_at)),
                    None if within.is_some() => tested_passed.with_label_values(&labels).set(0.0),
                    None => {}
                }
                // Storages the type no longer writes to are no news (a witness record of an
                // old failure there would hold the alert until failed_keep_within).
                for (storage, r) in row
                    .summary
                    .newest_per_storage
                    .iter()
                    .filter(|(st, _)| type_storages.contains(st))
                {
                    storage_status
                        .with_label_values(&[
                            server.name.as_str(),
                            row.database.as_str(),
                            t.as_str(),
                            storage,
                        ])
                        .set(if r.status == Status::Success {
                            1.0
                        } else {
                            0.0
                        });
                }
            }
            out.push(g);
        }
    }
    out
}

/// The `storage` groups: what each storage holds, per server; and beside each, its `kind=verify`
/// group: the verification of its copies (per database and type; the server's binary log
/// segments too). A storage with an unreadable index is left out (its last pushed values stay,
/// alerts on a damaged copy there included), as the report marks it unreadable.
///
/// One group per storage and server, so that two configs sharing an `instance` and a storage
/// name never overwrite each other's figures; the server-less groups of earlier versions are
/// deleted.
fn storage_groups(settings: &Settings, catalog: &Catalog, model: &Model) -> Vec<Group> {
    let mut out = Vec::new();
    for st in settings
        .storages
        .iter()
        .filter(|st| !model.unreadable.contains(&st.name))
    {
        out.push(Group::deleting(vec![("storage".into(), st.name.clone())]));
        for h in model.held.iter().filter(|h| h.storage == st.name) {
            let g = Group::new(vec![
                ("storage".into(), h.storage.clone()),
                ("server".into(), h.server.clone()),
            ]);
            let l = [h.storage.as_str(), h.server.as_str()];
            g.gauge(
                "sqlguard_storage_backups",
                "Successful backups held on the storage.",
                &["storage", "server"],
            )
            .with_label_values(&l)
            .set(h.backups as f64);
            g.gauge(
                "sqlguard_storage_bytes",
                "Bytes of successful backups held on the storage.",
                &["storage", "server"],
            )
            .with_label_values(&l)
            .set(h.bytes as f64);
            out.push(g);
            // A group of its own: its series' labels (server, database, type, storage) are
            // those the `server`/`type` groups of earlier versions held, and the Pushgateway
            // refuses a push that repeats another group's series; `kind` tells them apart until
            // those groups are pushed anew.
            let v = Group::new(vec![
                ("storage".into(), h.storage.clone()),
                ("server".into(), h.server.clone()),
                ("kind".into(), "verify".into()),
            ]);
            verification_series(&v, catalog, model, &h.server, &h.storage);
            out.push(v);
        }
    }
    out
}

/// The verification series of `server`'s copies on `storage`, into its storage group.
fn verification_series(g: &Group, catalog: &Catalog, model: &Model, server: &str, storage: &str) {
    let vl = &["server", "database", "type", "storage"];
    let verified_at = g.gauge(
        "sqlguard_verify_last_timestamp_seconds",
        "When the newest verified copy on this storage was last verified.",
        vl,
    );
    let verified_ok = g.gauge(
        "sqlguard_verify_last_status",
        "1 when the last verification of this storage's newest verified copy passed, else 0.",
        vl,
    );
    let failed_copies = g.gauge(
        "sqlguard_verify_failed_copies",
        "Copies on this storage whose last verification failed: every one, older backups and binary log segments included.",
        vl,
    );
    let segments = catalog.segments_of(server);
    let summaries = model
        .rows
        .iter()
        .filter(|r| r.server == server)
        .map(|r| (r.database.as_str(), r.backup_type.as_str(), &r.summary))
        .chain(
            segments
                .as_ref()
                .map(|s| (crate::binlog::DATABASE, crate::binlog::TYPE, s)),
        );
    for (database, t, s) in summaries {
        let l = [server, database, t, storage];
        if let Some(v) = s.verified_per_storage.get(storage) {
            verified_at.with_label_values(&l).set(ts(v.verified_at));
            verified_ok
                .with_label_values(&l)
                .set(if v.ok { 1.0 } else { 0.0 });
            // Zero while nothing failed, so that the alert on it resolves.
            failed_copies.with_label_values(&l).set(0.0);
        }
        if let Some(n) = s.failed_verifications.get(storage) {
            failed_copies.with_label_values(&l).set(*n as f64);
        }
    }
}

/// The `command` groups of this run, one per server it covered (`server` label): runs of one
/// command over different servers (a timer per server, or a config per server with the same
/// `instance`) then never overwrite each other's status. A binlog run's go into the `command=binlog`,
/// `server` groups of its archives (merged into a server's group when it has none this time).
///
/// `command` groups without `server` are what earlier versions pushed: they are deleted, so that
/// a frozen one does not fire the alerts on these metrics for ever.
fn run_groups(settings: &Settings, run: &RunSummary, binlog: &mut [Group]) -> Vec<Group> {
    let mut key = vec![("command".to_string(), run.command.to_string())];
    if let Some(t) = &run.backup_type {
        key.push(("type".into(), t.clone()));
    }
    // The servers the run covered: those asked for, else every one it works on (a binlog run:
    // those that archive); never a restore-only one, which has no metrics.
    let mut servers: Vec<&str> = settings
        .backed_up()
        .filter(|s| run.command != crate::binlog::TYPE || s.binlog.is_some())
        .map(|s| s.name.as_str())
        .filter(|s| run.servers.is_empty() || run.servers.iter().any(|x| x == s))
        .collect();
    servers.sort_unstable();
    servers.dedup();
    if servers.is_empty() {
        let g = Group::new(key);
        run_metrics(&g, run, None);
        return vec![g];
    }
    let mut out = Vec::new();
    out.push(Group::deleting(key.clone()));
    for server in servers {
        let is_this = |g: &&mut Group| g.labels.iter().any(|(k, v)| k == "server" && v == server);
        if let Some(g) = binlog.iter_mut().find(is_this) {
            run_metrics(g, run, Some(server));
            continue;
        }
        let mut labels = key.clone();
        labels.push(("server".into(), server.to_string()));
        let mut g = Group::new(labels);
        if run.command == crate::binlog::TYPE {
            // The archive's own metrics share the group: left as they are.
            g.method = Method::Merge;
        }
        run_metrics(&g, run, Some(server));
        out.push(g);
    }
    out
}

/// The `sqlguard_run_*` (and `sqlguard_prune_*`) metrics of `run` in `g`, labelled with the
/// command, the type of a backup and the server.
fn run_metrics(g: &Group, run: &RunSummary, server: Option<&str>) {
    let mut names = vec!["command"];
    let mut values = vec![run.command];
    if let Some(t) = run.backup_type.as_deref() {
        names.push("type");
        values.push(t);
    }
    if let Some(s) = server {
        names.push("server");
        values.push(s);
    }
    g.gauge(
        "sqlguard_run_last_status",
        "1 when the last run of this command succeeded, else 0.",
        &names,
    )
    .with_label_values(&values)
    .set(if run.ok() { 1.0 } else { 0.0 });
    g.gauge(
        "sqlguard_run_last_skipped",
        "1 when a `before` hook failed and the last run of this command was skipped, else 0.",
        &names,
    )
    .with_label_values(&values)
    .set(if run.skipped.is_some() { 1.0 } else { 0.0 });
    g.gauge(
        "sqlguard_run_last_start_timestamp_seconds",
        "Start time of the last run of this command.",
        &names,
    )
    .with_label_values(&values)
    .set(ts(run.started));
    g.gauge(
        "sqlguard_run_last_duration_seconds",
        "Duration of the last run of this command.",
        &names,
    )
    .with_label_values(&values)
    .set(run.duration_seconds);
    if let Some(pruned) = &run.pruned {
        // A server's own figures in its group; all of them in a group of no server.
        let (entries, bytes, orphans) = pruned
            .iter()
            .filter(|(s, _)| server.is_none_or(|x| x == s.as_str()))
            .fold((0, 0u64, 0), |a, (_, c)| {
                (a.0 + c.0, a.1.saturating_add(c.1), a.2 + c.2)
            });
        g.gauge(
            "sqlguard_prune_removed_backups",
            "Index entries the last prune removed.",
            &[],
        )
        .with_label_values::<&str>(&[])
        .set(entries as f64);
        g.gauge(
            "sqlguard_prune_removed_bytes",
            "Stored bytes the last prune freed.",
            &[],
        )
        .with_label_values::<&str>(&[])
        .set(bytes as f64);
        g.gauge(
            "sqlguard_prune_removed_orphans",
            "Orphans (temp files, incomplete uploads) the last prune removed.",
            &[],
        )
        .with_label_values::<&str>(&[])
        .set(orphans as f64);
    }
}

/// The `command=binlog`, `server` group of each server a binlog run archived.
fn binlog_groups(run: &RunSummary) -> Vec<Group> {
    run.binlog
        .iter()
        .map(|f| {
            let mut g = Group::new(vec![
                ("command".into(), "binlog".into()),
                ("server".into(), f.server.clone()),
            ]);
            // A run that could read no archive state (no storage opened) says it failed and
            // leaves the caught-up and newest-event times as the last run pushed them, so that
            // the archive-behind alert still has them to judge.
            if f.state.is_none() {
                g.method = Method::Merge;
            }
            let l = [f.server.as_str()];
            g.gauge(
                "sqlguard_binlog_last_status",
                "1 when the last binlog run archived this server without an error, else 0.",
                &["server"],
            )
            .with_label_values(&l)
            .set(if f.ok { 1.0 } else { 0.0 });
            g.gauge(
                "sqlguard_binlog_max_delay_seconds",
                "How far the archive may fall behind before it is late (twice the binlog schedule's longest gap plus a minute).",
                &["server"],
            )
            .with_label_values(&l)
            .set(f.max_delay_seconds);
            if let Some(st) = &f.state {
                if let Some(t) = st.caught_up_at {
                    g.gauge(
                        "sqlguard_binlog_caught_up_timestamp_seconds",
                        "When a binlog run last reached the server's current position: every event before it is archived (an idle server is not late).",
                        &["server"],
                    )
                    .with_label_values(&l)
                    .set(ts(t));
                }
                if let Some(t) = st.last_event_at {
                    g.gauge(
                        "sqlguard_binlog_last_event_timestamp_seconds",
                        "The newest archived binary log event's time (the server's clock).",
                        &["server"],
                    )
                    .with_label_values(&l)
                    .set(ts(t));
                }
            }
            g
        })
        .collect()
}

/// Every group a run pushes.
pub fn groups(
    settings: &Settings,
    catalog: &Catalog,
    run: &RunSummary,
    now: DateTime<Utc>,
) -> Vec<Group> {
    let model = crate::health::build(settings, catalog, now);
    let mut out = Vec::new();
    out.extend(backup_groups(settings, &model, run, now));
    out.extend(storage_groups(settings, catalog, &model));
    if let Some(at) = catalog.read_at {
        for g in out.iter_mut().filter(|g| g.method == Method::Replace) {
            g.gauge(
                VIEW,
                "When the run that pushed this group began reading the indexes it comes from.",
                &[],
            )
            .with_label_values(&[] as &[&str])
            .set(ts(at));
            g.view = Some(ts(at));
        }
    }
    let mut binlog = binlog_groups(run);
    let runs = run_groups(settings, run, &mut binlog);
    out.extend(binlog);
    out.extend(runs);
    out
}

/// A path segment of a grouping key: plain when safe, else the Pushgateway's `@base64` form.
fn segment(name: &str, value: &str) -> String {
    // `.` and `..` would be path steps (the URL would name another group): encoded too.
    let plain = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        format!("{name}/{value}")
    } else {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
        format!(
            "{name}@base64/{}",
            if enc.is_empty() { "=".to_string() } else { enc }
        )
    }
}

/// The URL of a group.
pub fn group_url(m: &MetricsSettings, group: &Group) -> String {
    let mut url = format!("{}/metrics/{}", m.pushgateway, segment("job", &m.job));
    for (k, v) in std::iter::once(&("instance".to_string(), m.instance.clone()))
        .chain(&m.grouping)
        .chain(&group.labels)
    {
        url.push('/');
        url.push_str(&segment(k, v));
    }
    url
}

/// Sends `req` (with `body`) to the Pushgateway, with the config's timeout and credentials,
/// and gives the answer's body (at most [`MAX_LISTING`] and a byte).
///
/// Fails with the transport error or the status and the start of the answer.
fn send(
    m: &MetricsSettings,
    req: attohttpc::RequestBuilder,
    body: String,
) -> Result<Vec<u8>, String> {
    let mut req = req
        .timeout(Duration::from_secs(m.timeout.as_secs().max(1)))
        .follow_redirects(false)
        .header("Content-Type", "text/plain; version=0.0.4");
    if let Some(user) = &m.username {
        req = req.basic_auth(user, m.password.as_ref().map(|p| p.expose()));
    }
    let timeout = Duration::from_secs(m.timeout.as_secs());
    // A stopping run does not wait out a Pushgateway that hangs.
    crate::net::until_stopped(move || {
        // The HTTP client starts a thread per request to enforce its deadline.
        let resp = crate::threads::spawning_inside("http-deadline", || req.text(body).send())
            .map_err(|e| e.to_string())?
            .map_err(|e| crate::net::plain_http(&e, timeout))?;
        if resp.is_success() {
            use std::io::Read;
            let (_, _, reader) = resp.split();
            let mut answer = Vec::new();
            reader
                .take(MAX_LISTING + 1)
                .read_to_end(&mut answer)
                .map_err(|e| crate::net::plain_io(&e, timeout))?;
            Ok(answer)
        } else {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            let body: String = body.trim().chars().take(300).collect();
            Err(format!("{}: {body}", crate::net::status_text(status)))
        }
    })?
}

/// Reaches the Pushgateway as a push would (timeout, credentials), reading its status page:
/// what `sqlguard check` says of it.
pub fn probe(m: &MetricsSettings) -> Result<String, String> {
    let url = format!("{}/api/v1/status", m.pushgateway);
    let started = std::time::Instant::now();
    let answer = send(m, attohttpc::get(&url), String::new())?;
    let version = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| {
            v.pointer("/data/build_information/version")
                .and_then(|x| x.as_str().map(String::from))
        });
    Ok(format!(
        "answered in {} ms{}",
        started.elapsed().as_millis(),
        version
            .map(|v| format!(" (Pushgateway {v})"))
            .unwrap_or_default()
    ))
}

fn put(m: &MetricsSettings, group: &Group) -> Result<(), String> {
    let url = group_url(m, group);
    let (req, body) = match group.method {
        Method::Replace => (attohttpc::put(&url), group.encode()),
        Method::Merge => (attohttpc::post(&url), group.encode()),
        Method::Delete => (attohttpc::delete(&url), String::new()),
    };
    send(m, req, body).map(drop)
}

/// The gauge that names the config file a group comes from (every group but a deletion).
const OWNER: &str = "sqlguard_config_info";

/// The identity of the config in the groups it pushes: this host's name and its file's path, in
/// its canonical directory (`db1:/etc/sqlguard/sqlguard.yaml`). The file itself is not resolved:
/// a Kubernetes ConfigMap's file is a link into a directory named anew for each pod. So a file
/// reached through links of its own has one owner per link (runs through one link do not delete
/// what runs through another pushed). The host name tells apart two containers that show
/// different files at one path under one `instance`; where each run has a new host name (a
/// Kubernetes pod without the `hostname` that `schedule --format kubernetes` gives it), no run
/// owns an earlier one's groups, and none are deleted. `None` for a config from the environment
/// alone, which cannot tell its groups from another's.
fn owner(settings: &Settings) -> Option<(String, std::path::PathBuf)> {
    let file = settings.config_file.as_ref()?;
    let dir = match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => std::fs::canonicalize(d).ok()?,
        None => std::env::current_dir().ok()?,
    };
    let path = dir.join(file.file_name()?);
    let id = format!("{}:{}", crate::host::hostname(), path.to_str()?);
    Some((id, path))
}

/// The largest Pushgateway listing read (all groups of all instances).
const MAX_LISTING: u64 = 256 << 20;

/// One group of the Pushgateway's listing (`/api/v1/metrics`): its grouping labels and, when
/// sqlguard pushed it, the [`OWNER`] gauge; everything else in it is skipped unread.
#[derive(Debug, serde::Deserialize)]
struct Listed {
    labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "sqlguard_config_info")]
    owner: Option<ListedFamily>,
    /// When the run that pushed the group began reading the indexes it comes from ([`VIEW`]).
    #[serde(rename = "sqlguard_index_read_timestamp_seconds")]
    view: Option<ListedFamily>,
}

#[derive(Debug, serde::Deserialize)]
struct ListedFamily {
    metrics: Vec<ListedSample>,
}

#[derive(Debug, serde::Deserialize)]
struct ListedSample {
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    value: Option<String>,
}

/// The listing's groups that `keep` accepts, read one at a time: memory holds the kept ones, not
/// every group of every instance.
struct Kept<'a, F>(&'a F);

impl<'de, F: Fn(&Listed) -> bool> serde::de::DeserializeSeed<'de> for Kept<'_, F> {
    type Value = Vec<Listed>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<Listed>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: Fn(&Listed) -> bool> serde::de::Visitor<'de> for Kept<'_, F> {
    type Value = Vec<Listed>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of groups")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Listed>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Listed>()? {
            if (self.0)(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }
}

/// The listing document: `{"status": …, "data": [groups]}`, keeping the groups `keep` accepts.
struct Listing<'a, F>(&'a F);

impl<'de, F: Fn(&Listed) -> bool> serde::de::Visitor<'de> for Listing<'_, F> {
    type Value = Vec<Listed>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the Pushgateway's listing of groups")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<Listed>, A::Error> {
        let mut data = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                data = Some(map.next_value_seed(Kept(self.0))?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        data.ok_or_else(|| serde::de::Error::missing_field("data"))
    }
}

/// The Pushgateway's groups that `keep` accepts.
///
/// Fails when the listing cannot be read.
fn listing(m: &MetricsSettings, keep: &impl Fn(&Listed) -> bool) -> Result<Vec<Listed>, String> {
    use serde::Deserializer;
    let url = format!("{}/api/v1/metrics", m.pushgateway);
    let answer = send(m, attohttpc::get(&url), String::new())?;
    let answer = &answer[..answer.len().min(MAX_LISTING as usize)];
    let mut de = serde_json::Deserializer::from_slice(answer);
    de.deserialize_map(Listing(keep)).map_err(|e| {
        format!(
            "reading {url} (at most {} MiB of it): {e}",
            MAX_LISTING >> 20
        )
    })
}

/// The gauge that dates a group drawn from the indexes: when the run that pushed it began
/// reading them. A run whose reading began earlier than the group's (a prune that waited
/// minutes on a storage that hung, while a backup recorded a failure and pushed) leaves the
/// group as it is, rather than replace newer news with older; a group dated in the future (a
/// run with its clock ahead) is replaced.
const VIEW: &str = "sqlguard_index_read_timestamp_seconds";

/// The grouping labels every group of this config starts with: `job`, `instance`, and the extra
/// `metrics.grouping` labels.
fn own_key(m: &MetricsSettings) -> Vec<(&str, &str)> {
    let mut mine: Vec<(&str, &str)> = vec![("job", &m.job), ("instance", &m.instance)];
    mine.extend(m.grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    mine
}

/// Whether a listed group's key starts with `mine` (see [`own_key`]).
fn under(item: &Listed, mine: &[(&str, &str)]) -> bool {
    mine.iter()
        .all(|(k, v)| item.labels.get(*k).map(String::as_str) == Some(*v))
}

/// Per group of this config's `job`, `instance` and extra labels (by its other labels), when the
/// run that pushed it began reading the indexes.
fn views(m: &MetricsSettings) -> Result<HashMap<Vec<(String, String)>, f64>, String> {
    let mine = own_key(m);
    let ours = |item: &Listed| item.view.is_some() && under(item, &mine);
    Ok(listing(m, &ours)?
        .into_iter()
        .filter_map(|item| {
            let at = item
                .view
                .as_ref()?
                .metrics
                .first()?
                .value
                .as_deref()?
                .parse::<f64>()
                .ok()?;
            let key = item
                .labels
                .into_iter()
                .filter(|(k, _)| !mine.iter().any(|(m, _)| m == k))
                .collect();
            Some((key, at))
        })
        .collect())
}

/// The key [`views`] gives a group by.
fn view_key(g: &Group) -> Vec<(String, String)> {
    let mut k = g.labels.clone();
    k.sort();
    k
}

/// The groups this config pushed (its `job`, `instance`, extra labels and [`OWNER`]) that
/// describe what it no longer has: a server (or one now restore-only), a backup type, a
/// storage, or a server's binary log archive removed from the file. Their alerts would otherwise
/// fire for ever (a type removed never backs up again). What the file holds as it is now counts
/// too, so that a run that loaded the file before an edit does not delete what the edit added;
/// a file that cannot be read now deletes nothing.
///
/// Fails when the Pushgateway's listing cannot be read.
fn stale_groups(
    settings: &Settings,
    m: &MetricsSettings,
    (owner, path): &(String, std::path::PathBuf),
) -> Result<Vec<Group>, String> {
    let Some(now) = Settings::names_in_file(
        Some(path.as_path()),
        &crate::config::env::Environment::default(),
    ) else {
        return Ok(Vec::new());
    };
    let mine = own_key(m);
    let ours = |item: &Listed| {
        let owned = item
            .owner
            .as_ref()
            .and_then(|f| f.metrics.first())
            .and_then(|x| x.labels.get("config"))
            .is_some_and(|c| c == owner);
        owned
            && under(item, &mine)
            && item.labels.keys().all(|k| {
                mine.iter().any(|(m, _)| m == k)
                    || ["server", "type", "storage", "command", "kind"].contains(&k.as_str())
            })
    };
    let listed = listing(m, &ours)?;
    let has = |names: &[String], name: &str| names.iter().any(|n| n == name);
    let server = |name: &str| settings.backed_up().find(|s| s.name == name);
    let server_kept = |name: &str| server(name).is_some() || has(&now.backed_up, name);
    let archived =
        |name: &str| server(name).is_some_and(|s| s.binlog.is_some()) || has(&now.archived, name);
    let storage =
        |st: &str| settings.storages.iter().any(|s| s.name == st) || has(&now.storages, st);
    let backup_type = |t: &str| settings.backup_type(t).is_ok() || has(&now.backup_types, t);
    let mut out = Vec::new();
    for item in listed {
        let label = |k: &str| item.labels.get(k).map(String::as_str);
        let described = match (label("storage"), label("server"), label("command")) {
            (Some(st), None, None) => storage(st),
            (Some(st), Some(name), None) => storage(st) && server_kept(name),
            (None, Some(name), command) => match (command, label("type")) {
                (Some(crate::binlog::TYPE), None) | (None, Some(crate::binlog::TYPE)) => {
                    archived(name)
                }
                (_, Some(t)) => server_kept(name) && backup_type(t),
                (Some(_), None) | (None, None) => server_kept(name),
            },
            _ => true,
        };
        if !described {
            out.push(Group::deleting(
                item.labels
                    .iter()
                    .filter(|(k, _)| !mine.iter().any(|(m, _)| m == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ));
        }
    }
    Ok(out)
}

/// Pushes the metrics of a run, if a Pushgateway is configured.
///
/// Fails with the warning to print (naming the URL) when a push failed; the caller decides
/// whether that changes the exit status (`metrics.required`). Deleting groups (those of earlier
/// versions, those of what the config no longer has) comes after every push, and a deletion that
/// fails is a warning: the run's metrics are pushed whatever the Pushgateway allows.
pub fn push_run(
    settings: &Settings,
    ui: &Ui,
    run: &RunSummary,
    catalog: &Catalog,
) -> Result<(), String> {
    let Some(m) = &settings.metrics else {
        return Ok(());
    };
    for (_, e) in &catalog.errors {
        ui.debug(&format!("metrics: {e}"));
    }
    let owner = owner(settings);
    let (deletions, pushes): (Vec<Group>, Vec<Group>) = groups(settings, catalog, run, Utc::now())
        .into_iter()
        .partition(|g| g.method == Method::Delete);
    // Groups a run that read the indexes later has pushed are left as they are.
    let newer = if pushes.iter().any(|g| g.view.is_some()) {
        views(m).unwrap_or_else(|e| {
            ui.debug(&format!("metrics: {e}: every group is pushed"));
            HashMap::new()
        })
    } else {
        HashMap::new()
    };
    // A view from the future (a run whose clock was ahead) proves nothing: it would hold every
    // group until the clock caught up, a damaged copy's alert included.
    let latest_believable = ts(Utc::now()) + 60.0;
    for g in pushes {
        if let (Some(ours), Some(theirs)) = (g.view, newer.get(&view_key(&g))) {
            if *theirs > ours && *theirs <= latest_believable {
                ui.debug(&format!(
                    "metrics: {} left as a run that read the indexes later pushed it",
                    group_url(m, &g)
                ));
                continue;
            }
        }
        ui.debug(&format!(
            "metrics: {} {}",
            g.method.verb(),
            group_url(m, &g)
        ));
        if let Some((o, _)) = &owner {
            g.gauge(
                OWNER,
                "The host and config file whose runs push this group: a later run deletes the groups of what the file no longer has.",
                &["config"],
            )
            .with_label_values(&[o])
            .set(1.0);
        }
        if let Err(e) = put(m, &g) {
            return Err(format!(
                "could not push metrics to the Pushgateway at {}: {e}{}",
                m.pushgateway,
                if m.required {
                    ""
                } else {
                    " (metrics.required is false: exit status unchanged)"
                }
            ));
        }
    }
    ui.debug(&format!("metrics pushed to {}", m.pushgateway));
    let described = |g: &Group| {
        g.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The server-less groups of earlier versions: gone once, then a 202 for nothing.
    for g in deletions {
        ui.debug(&format!("metrics: DELETE {}", group_url(m, &g)));
        if let Err(e) = put(m, &g) {
            ui.warn(&format!(
                "metrics: could not delete the Pushgateway group {} that earlier versions pushed: {e}",
                described(&g)
            ));
        }
    }
    if let Some(o) = &owner {
        match stale_groups(settings, m, o) {
            Ok(stale) => {
                for g in stale {
                    let what = described(&g);
                    match put(m, &g) {
                        Ok(()) => ui.info(&format!(
                            "metrics: deleted the Pushgateway group {what}: the config no longer has it"
                        )),
                        Err(e) => ui.warn(&format!(
                            "metrics: could not delete the Pushgateway group {what}, which the config no longer has: {e}"
                        )),
                    }
                }
            }
            Err(e) => ui.warn(&format!(
                "metrics: could not list the Pushgateway's groups to delete those the config no longer has: {e}"
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::from_yaml;

    /// A ConfigMap's file is a link through `..data` into a directory named anew for each pod:
    /// the owner is the file's path in its directory, the same for every pod.
    #[test]
    fn the_owner_is_the_files_path_not_where_its_link_points() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let mut s = three_servers();
        let mut owners = Vec::new();
        for pod in ["..2026_11_30_02_30_00.1", "..2026_12_01_02_30_00.2"] {
            std::fs::create_dir(base.join(pod)).unwrap();
            std::fs::write(base.join(pod).join("config.yaml"), "x").unwrap();
            let _ = std::fs::remove_file(base.join("..data"));
            std::os::unix::fs::symlink(pod, base.join("..data")).unwrap();
            let _ = std::fs::remove_file(base.join("config.yaml"));
            std::os::unix::fs::symlink("..data/config.yaml", base.join("config.yaml")).unwrap();
            s.config_file = Some(dir.path().join("config.yaml"));
            owners.push(owner(&s).unwrap());
        }
        assert_eq!(owners[0], owners[1]);
        assert_eq!(owners[0].1, base.join("config.yaml"));
        assert!(owners[0]
            .0
            .ends_with(&format!(":{}", base.join("config.yaml").display())));
    }

    /// Three servers: `main` archives its binary log, `other` does not, `target` is restore-only.
    fn three_servers() -> Settings {
        from_yaml(
            "servers:\n  main:\n    user: backup\n    binlog: {}\n  other:\n    user: backup\n  target:\n    user: backup\n    restore_only: true\nstorage:\n  local:\n    type: local\n    path: /tmp/x\n",
            &[],
        )
        .unwrap()
    }

    fn servers_of(groups: &[Group]) -> Vec<(Method, Option<String>)> {
        groups
            .iter()
            .map(|g| {
                let server = g.labels.iter().find(|(k, _)| k == "server");
                (g.method, server.map(|(_, v)| v.clone()))
            })
            .collect()
    }

    /// A run's groups name the servers it worked on: a binlog run those that archive, no run a
    /// restore-only one; the server-less group of earlier versions is deleted.
    #[test]
    fn run_groups_name_the_servers_a_run_covered() {
        let settings = three_servers();
        let summary =
            |command| crate::run::Run::start(command, None).summary(crate::exit::Outcome::Ok, &[]);
        let groups = run_groups(&settings, &summary("prune"), &mut []);
        assert_eq!(
            servers_of(&groups),
            [
                (Method::Delete, None),
                (Method::Replace, Some("main".into())),
                (Method::Replace, Some("other".into())),
            ]
        );
        let groups = run_groups(&settings, &summary("binlog"), &mut []);
        assert_eq!(
            servers_of(&groups),
            [(Method::Delete, None), (Method::Merge, Some("main".into()))]
        );
    }

    /// The Pushgateway's listing is read one group at a time, keeping only the accepted ones.
    #[test]
    fn the_listing_keeps_only_the_accepted_groups() {
        use serde::Deserializer;
        let text = r#"{"status": "success", "data": [
            {"labels": {"job": "sqlguard", "instance": "a"}, "last_push_successful": true,
             "sqlguard_config_info": {"metrics": [{"labels": {"config": "h:/c.yaml"}, "value": "1"}]},
             "push_time_seconds": {"metrics": [{"labels": {}, "value": "1"}]}},
            {"labels": {"job": "other", "instance": "b"}},
            {"labels": {"job": "sqlguard", "instance": "c"}}
        ]}"#;
        let keep = |g: &Listed| g.labels.get("job").is_some_and(|j| j == "sqlguard");
        let kept = serde_json::Deserializer::from_str(text)
            .deserialize_map(Listing(&keep))
            .unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            kept[0].owner.as_ref().unwrap().metrics[0].labels["config"],
            "h:/c.yaml"
        );
        assert!(serde_json::Deserializer::from_str(r#"{"status": "error"}"#)
            .deserialize_map(Listing(&keep))
            .is_err());
    }

    #[test]
    fn unsafe_label_values_use_base64() {
        assert_eq!(segment("server", "db-1.prod"), "server/db-1.prod");
        assert_eq!(segment("server", "a/b"), "server@base64/YS9i");
        assert_eq!(segment("x", ""), "x@base64/=");
        // Path steps would leave the group: `env/..` is the group above.
        assert_eq!(segment("env", ".."), "env@base64/Li4");
        assert_eq!(segment("env", "."), "env@base64/Lg");
    }
}
