//! `sqlguard check`: prove a config works before the first night. Every server is reached (its
//! version, the dump and client tools, and which privileges a backup needs that its account
//! lacks; a restore account is reached too), and every storage takes a probe object: written,
//! read back byte for byte, deleted.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::ServerSettings;
use crate::mysql::{self, DefaultsFile, Flavor};
use crate::session::Session;

/// One thing checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `server`, `restore account`, `storage`, `encryption` or `pushgateway`.
    pub kind: &'static str,
    pub name: String,
    pub ok: bool,
    /// What was found (a version, the probe's round trip) or what failed, with the fix.
    pub detail: String,
}

/// The privileges a backup needs on every database it dumps.
const BACKUP_PRIVILEGES: &[&str] = &["SELECT", "SHOW VIEW", "TRIGGER", "EVENT", "LOCK TABLES"];

/// Privileges granted by `SHOW GRANTS` lines: those on `*.*` (global) and those on each
/// database (`db`.*). Table- and column-level grants and roles are not counted.
#[derive(Debug, Default, PartialEq)]
pub struct Grants {
    pub global: BTreeSet<String>,
    pub databases: std::collections::BTreeMap<String, BTreeSet<String>>,
}

/// Every privilege name `ALL PRIVILEGES` stands for, as far as a backup is concerned.
const ALL: &[&str] = &[
    "SELECT",
    "SHOW VIEW",
    "TRIGGER",
    "EVENT",
    "LOCK TABLES",
    "PROCESS",
];

/// Reads `SHOW GRANTS` output lines.
pub fn parse_grants(lines: &[String]) -> Grants {
    let mut g = Grants::default();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some(on) = rest.find(" ON ") else {
            continue; // a role granted: not followed
        };
        let privs: BTreeSet<String> = rest[..on]
            .split(',')
            .map(|p| {
                // `SELECT (col)` column grants and `GRANT OPTION` words stay as written.
                p.trim().to_ascii_uppercase()
            })
            .flat_map(|p| {
                if p == "ALL PRIVILEGES" || p == "ALL" {
                    ALL.iter().map(|s| s.to_string()).collect::<Vec<_>>()
                } else {
                    vec![p]
                }
            })
            .collect();
        let target = rest[on + 4..]
            .split(" TO ")
            .next()
            .unwrap_or_default()
            .trim();
        if target == "*.*" {
            g.global.extend(privs);
        } else if let Some(db) = target.strip_suffix(".*") {
            let db = db
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .unwrap_or(db)
                .replace("``", "`");
            // A grant on a pattern (`shop\_%`) is matched loosely: only exact names count.
            g.databases.entry(db).or_default().extend(privs);
        }
    }
    g
}

impl Grants {
    /// The privileges a backup of `database` needs that these grants lack.
    pub fn missing_for(&self, database: &str, flavor: Flavor) -> Vec<&'static str> {
        let on_db = self.databases.get(database);
        let mut needed: Vec<&'static str> = BACKUP_PRIVILEGES.to_vec();
        if flavor == Flavor::MySql {
            needed.push("PROCESS");
        }
        needed
            .into_iter()
            .filter(|p| {
                let global_only = *p == "PROCESS";
                !(self.global.contains(*p)
                    || (!global_only && on_db.is_some_and(|d| d.contains(*p))))
            })
            .collect()
    }
}

/// Checks one server: tools, connection, version, and what its account lacks for backups.
fn check_server(server: &ServerSettings) -> Check {
    let mut c = Check {
        kind: "server",
        name: server.name.clone(),
        ok: false,
        detail: String::new(),
    };
    let run = || -> Result<String, String> {
        let defaults = DefaultsFile::create(server).map_err(|e| e.to_string())?;
        let client = mysql::client_tool(server).map_err(|e| e.to_string())?;
        if !server.restore_only {
            mysql::dump_tool(server).map_err(|e| e.to_string())?;
        }
        let info = mysql::server_info(server, &client, &defaults).map_err(|e| e.to_string())?;
        if server.restore_only {
            return Ok(format!("{} (restore target only)", info.version_string));
        }
        let all = mysql::list_databases(server, &client, &defaults).map_err(|e| e.to_string())?;
        let selection = mysql::select_databases(&all, server, &[]);
        let grants = mysql::query(
            server,
            &client,
            &defaults,
            "reading the grants",
            "SHOW GRANTS",
        )
        .map_err(|e| e.to_string())?;
        let lines: Vec<String> = grants
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
        let grants = parse_grants(&lines);
        let mut lacking: std::collections::BTreeMap<Vec<&str>, Vec<String>> = Default::default();
        for db in &selection.selected {
            let missing = grants.missing_for(&db.name, info.flavor);
            if !missing.is_empty() {
                lacking.entry(missing).or_default().push(db.name.clone());
            }
        }
        if server.accounts
            && !grants.global.contains("SELECT")
            && !grants
                .databases
                .get("mysql")
                .is_some_and(|d| d.contains("SELECT"))
        {
            lacking
                .entry(vec!["SELECT"])
                .or_default()
                .push("mysql (accounts: true dumps users and grants from it)".into());
        }
        if !lacking.is_empty() {
            let user = server.user.as_deref().unwrap_or("(the configured user)");
            return Err(lacking
                .iter()
                .map(|(privs, dbs)| {
                    format!(
                        "{} lacks {} on {} (GRANT {} ON … TO the account)",
                        user,
                        privs.join(", "),
                        if dbs.len() > 3 {
                            format!("{} databases, e.g. {}", dbs.len(), dbs[..3].join(", "))
                        } else {
                            dbs.join(", ")
                        },
                        privs.join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; "));
        }
        let pitr = match mysql::binlog_status(server, &client, &defaults) {
            Err(e) => format!("binary log settings unreadable ({e})"),
            Ok(b) if !b.enabled => "binary log off: point-in-time recovery is off".to_string(),
            Ok(b) if !b.position_readable => format!(
                "binary log on ({}, row image {}), but the account cannot read its position: dumps record no coordinates (GRANT BINLOG MONITOR ON *.* TO the account)",
                b.format, b.row_image
            ),
            Ok(b) => format!(
                "binary log on ({}, row image {}, expire_logs_days {}): dumps record their coordinates",
                b.format, b.row_image, b.expire_days
            ),
        };
        // The binary log archive: the server must write a log that replays, keep it longer
        // than a few archive intervals, and let the account read it.
        if let Some(cfg) = &server.binlog {
            let b = mysql::binlog_status(server, &client, &defaults).map_err(|e| e.to_string())?;
            let key = format!("servers.{}.binlog", server.name);
            if !b.enabled {
                return Err(format!("{key} is set, but the server writes no binary log: start it with log_bin (and a server_id), or remove {key}"));
            }
            if !b.row_image.eq_ignore_ascii_case("FULL")
                && !b.format.eq_ignore_ascii_case("STATEMENT")
            {
                return Err(format!("binlog_row_image is {}: point-in-time replay needs FULL row images (SET GLOBAL binlog_row_image = FULL, and in the server's config)", b.row_image));
            }
            let interval = crate::schedule::max_interval(&cfg.schedule, chrono::Utc::now())
                .map_or(60, |d| d.num_seconds().max(60)) as u64;
            if b.expire_seconds > 0 && b.expire_seconds < 3 * interval {
                return Err(format!("binlog_expire_logs_seconds is {}: the server would purge binary logs before three archive intervals ({}s each, {key}.schedule) have passed; keep them longer (days)", b.expire_seconds, interval));
            }
            mysql::query(server, &client, &defaults, "listing the binary logs", "SHOW BINARY LOGS")
                .map_err(|e| format!("{e} (the archive needs BINLOG MONITOR and REPLICATION SLAVE: GRANT them ON *.* TO the account)"))?;
        }
        let mut detail = format!(
            "{}; {} database(s) to back up; {pitr}",
            info.version_string,
            selection.selected.len()
        );
        if !selection.missing.is_empty() {
            return Err(format!(
                "{detail}, but databases.include names ones the server does not have: {}",
                selection.missing.join(", ")
            ));
        }
        if selection.selected.is_empty() {
            detail.push_str(" (none: check databases.include/exclude)");
            return Err(detail);
        }
        Ok(detail)
    };
    match run() {
        Ok(d) => {
            c.ok = true;
            c.detail = d;
        }
        Err(e) => c.detail = e,
    }
    c
}

/// Checks the restore account of a server that names one.
fn check_restore_account(server: &ServerSettings) -> Option<Check> {
    server.restore_user.as_ref()?;
    let s = server.for_restore();
    let run = || -> Result<String, String> {
        let defaults = DefaultsFile::create(&s).map_err(|e| e.to_string())?;
        let client = mysql::client_tool(&s).map_err(|e| e.to_string())?;
        let info = mysql::server_info(&s, &client, &defaults).map_err(|e| e.to_string())?;
        Ok(format!("connects ({})", info.version_string))
    };
    let r = run();
    Some(Check {
        kind: "restore account",
        name: server.name.clone(),
        ok: r.is_ok(),
        detail: r.unwrap_or_else(|e| e),
    })
}

/// Writes, reads back and deletes a probe object on storage `name`.
fn check_storage(session: &Session, name: &str) -> Check {
    let run = || -> Result<String, String> {
        let storage = session.storage(name).map_err(|e| e.to_string())?;
        let key = format!(".sqlguard-check-{:016x}", fastrand::u64(..));
        let body = format!("sqlguard check probe {key}\n").into_bytes();
        storage
            .put_bytes(&key, &body)
            .map_err(|e| format!("writing probe {key}: {e}"))?;
        let read = storage.get_bytes(&key);
        let deleted = storage.delete(&key);
        match read {
            Ok(Some(b)) if b == body => {}
            Ok(Some(_)) => return Err(format!("probe {key} read back different bytes")),
            Ok(None) => return Err(format!("probe {key} was written but cannot be found")),
            Err(e) => return Err(format!("reading probe {key} back: {e}")),
        }
        deleted.map_err(|e| format!("deleting probe {key}: {e}"))?;
        Ok(format!(
            "{}: write, read and delete of a probe object",
            storage.location()
        ))
    };
    let r = run();
    Check {
        kind: "storage",
        name: name.to_string(),
        ok: r.is_ok(),
        detail: r.unwrap_or_else(|e| e),
    }
}

/// With an identity file: proves that it decrypts the newest encrypted backup of the selected
/// servers (its age header unwrapped and its first chunk authenticated), and that it matches
/// the recipients new backups are encrypted to. Without one, says what this host can and
/// cannot do with encrypted backups. `None` when nothing is encrypted or decrypted here.
fn check_encryption(session: &Session, servers: &[String], storages: &[String]) -> Option<Check> {
    use std::io::Read;
    let settings = &session.settings;
    let encrypting = settings
        .backup_types
        .iter()
        .filter_map(|t| t.encryption.as_ref())
        .flat_map(|r| r.as_strings().iter().cloned())
        .collect::<BTreeSet<String>>();
    let check = |ok: bool, detail: String| Check {
        kind: "encryption",
        name: "age".into(),
        ok,
        detail,
    };
    let Some(ids) = settings.encryption.identities.as_ref() else {
        return (!encrypting.is_empty()).then(|| {
            check(
                true,
                format!(
                    "backups are encrypted to {} age recipient(s); this host has no identity (a backup host needs none): verify checks their SHA-256 and size only, and restore, fetch --decrypt and restore tests need encryption.age_identity_file",
                    encrypting.len()
                ),
            )
        });
    };
    let mine = ids.recipients();
    if !encrypting.is_empty() && !encrypting.iter().any(|r| mine.contains(r)) {
        return Some(check(
            false,
            format!(
                "no identity in {} is a recipient of new backups ({}): this host could not decrypt them; add the private key of one of them",
                ids.path().display(),
                encrypting.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let catalog = session.catalog(servers);
    let filter = crate::catalog::RecordFilter {
        servers: servers.to_vec(),
        ..Default::default()
    };
    let (latest, _) = catalog.latest_successes(&filter);
    let newest = latest
        .into_iter()
        .filter(|r| r.encryption.is_some())
        .filter(|r| storages.is_empty() || storages.contains(&r.storage))
        .max_by_key(|r| r.started_at);
    let Some(record) = newest else {
        return Some(check(
            true,
            format!(
                "{} holds {} identit{}; no encrypted backup yet to prove it on",
                ids.path().display(),
                mine.len(),
                if mine.len() == 1 { "y" } else { "ies" }
            ),
        ));
    };
    let what = format!(
        "the newest encrypted backup, {} ({}/{} on '{}')",
        record.id, record.server, record.database, record.storage
    );
    let proved = (|| -> Result<(), String> {
        crate::restore::decryption_for(&record, Some(ids)).map_err(|e| e.to_string())?;
        let storage = session
            .storage(&record.storage)
            .map_err(|e| e.to_string())?;
        let key = record.key.as_deref().unwrap_or_default();
        let reader = storage.get(key).map_err(|e| e.to_string())?;
        let mut plain = crate::crypt::decryptor(ids, reader).map_err(|e| e.to_string())?;
        let mut first = vec![0u8; 64 << 10];
        let mut n = 0;
        while n < first.len() {
            match plain.read(&mut first[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(crate::crypt::describe_read_error(&e)),
            }
        }
        Ok(())
    })();
    Some(match proved {
        Ok(()) => check(
            true,
            format!(
                "{} decrypts {what}: its header unwrapped and its first chunk authenticated (`sqlguard verify {}` decrypts it whole)",
                ids.path().display(),
                record.id
            ),
        ),
        Err(e) => check(false, format!("{what}: {e}")),
    })
}

/// Runs every check of the selected servers and storages (all when empty).
pub fn run(session: &Session, servers: &[String], storages: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    for server in session
        .settings
        .servers
        .iter()
        .filter(|s| servers.is_empty() || servers.contains(&s.name))
    {
        out.push(check_server(server));
        out.extend(check_restore_account(server));
    }
    for st in session
        .settings
        .storages
        .iter()
        .filter(|s| storages.is_empty() || storages.contains(&s.name))
    {
        out.push(check_storage(session, &st.name));
    }
    out.extend(check_encryption(session, servers, storages));
    // Every run pushes its metrics there: a Pushgateway out of reach fails each one that
    // requires it, and leaves the others' alerts blind.
    if servers.is_empty() && storages.is_empty() {
        if let Some(m) = &session.settings.metrics {
            let r = crate::metrics::probe(m);
            out.push(Check {
                kind: "pushgateway",
                name: crate::secret::redact_url(&m.pushgateway),
                ok: r.is_ok(),
                detail: r.unwrap_or_else(|e| {
                    let required = if m.required {
                        "every run fails while it is out of reach (metrics.required)"
                    } else {
                        "runs go on without their metrics (alerts go blind)"
                    };
                    format!("{e}: {required}; check metrics.pushgateway and that it is up")
                }),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grants_name_what_a_backup_lacks() {
        let g = parse_grants(&lines(&[
            "GRANT USAGE ON *.* TO `backup`@`%` IDENTIFIED BY PASSWORD '*ABC'",
            "GRANT SELECT, SHOW VIEW, LOCK TABLES ON `shop`.* TO `backup`@`%`",
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `crm`.* TO `backup`@`%`",
            "GRANT `dba_role` TO `backup`@`%`",
        ]));
        assert_eq!(
            g.missing_for("shop", Flavor::MariaDb),
            vec!["TRIGGER", "EVENT"]
        );
        assert!(g.missing_for("crm", Flavor::MariaDb).is_empty());
        assert_eq!(g.missing_for("crm", Flavor::MySql), vec!["PROCESS"]);
        assert_eq!(g.missing_for("other", Flavor::MariaDb).len(), 5);
        let all = parse_grants(&lines(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        ]));
        assert!(all.missing_for("anything", Flavor::MySql).is_empty());
        let quoted = parse_grants(&lines(&["GRANT SELECT ON `we``ird`.* TO `u`@`%`"]));
        assert!(quoted.databases.contains_key("we`ird"));
    }
}
