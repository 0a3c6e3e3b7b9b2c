//! Shell completion with live values, through clap_complete's dynamic engine: the shell's
//! registration script (`COMPLETE=bash sqlguard`, or the copies under `completions/`) calls the
//! binary back on each Tab with `COMPLETE` set and the words of the line, and [`run_if_requested`]
//! answers before anything else runs.
//!
//! Values: `--server`, `--to-server`, `--storage` and `--type` from the config (the one the line
//! names with `--config`, else the usual search); `--db` from the index summaries; `latest` and
//! the backup ids of `fetch`, `restore` and `verify` from the index, newest first. A `--server` or `--storage`
//! already on the line narrows the index look-up.
//!
//! A Tab must never hang or make noise: stderr goes to `/dev/null` for the whole completion, any
//! error gives no candidates, and the index is read on one thread per storage, keeping only what
//! came back within [`DEADLINE`] of the start (an unreachable S3 endpoint is left out, the local
//! storages still answer).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells, Zsh};
use clap_complete::CompleteEnv;

use crate::catalog::{Catalog, Select};
use crate::config::env::Environment;
use crate::config::{Settings, StorageKind};
use crate::index::{BackupRecord, Status};

/// The environment variable that asks for completions (clap_complete's convention).
pub const VAR: &str = "COMPLETE";

/// How long after the start a completion still waits for an index: a Tab answers within a
/// second even when a storage does not.
pub const DEADLINE: Duration = Duration::from_millis(600);

/// At most this many backup ids are offered (the newest).
pub const MAX_IDS: usize = 200;

/// The shells whose registration `COMPLETE=<shell> sqlguard` prints.
pub const SHELLS: Shells<'static> = Shells(&[&Bash, &Elvish, &Fish, &Powershell, &ZshFile]);

/// The shells and file names of the registration scripts under `completions/`.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("bash", "sqlguard.bash"),
    ("zsh", "_sqlguard"),
    ("fish", "sqlguard.fish"),
];

/// Answers a completion request and exits when `COMPLETE` is set (to a shell name); returns
/// otherwise. Call first thing in `main`, before anything is printed.
pub fn run_if_requested() {
    let requested = std::env::var_os(VAR).is_some_and(|v| !v.is_empty() && v != "0");
    if !requested {
        return;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    // A Tab (the words follow `--`), not a person asking for the registration script, who
    // should see why it failed.
    if args.iter().any(|a| a == "--") {
        silence_stderr();
    }
    let _ = LINE.set(Line::parse(
        &args,
        std::env::var("_CLAP_COMPLETE_INDEX").ok(),
    ));
    CompleteEnv::with_factory(crate::cli::Cli::command)
        .shells(SHELLS)
        .complete();
}

/// The registration script of `shell` that calls `completer` back, as `COMPLETE=<shell>
/// <completer>` prints it; `None` for a shell clap_complete does not know.
pub fn registration(shell: &str, completer: &str) -> Option<Vec<u8>> {
    let sh = SHELLS.completer(shell)?;
    let mut buf = Vec::new();
    sh.write_registration(VAR, "sqlguard", "sqlguard", completer, &mut buf)
        .ok()?;
    Some(buf)
}

/// Everything written to stderr while completing (a log line, a panic) would land in the middle
/// of the user's command line: send it to `/dev/null`.
fn silence_stderr() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}

/// zsh, with the registration script also usable as an autoloaded `_sqlguard` from `$fpath`:
/// there zsh runs the file as the completion function on the first Tab, which then only
/// registers the real one, so the bridge at the end completes that first Tab too. Sourced, the
/// script is unchanged in effect.
#[derive(Debug, Clone, Copy)]
struct ZshFile;

impl EnvCompleter for ZshFile {
    fn name(&self) -> &'static str {
        Zsh.name()
    }
    fn is(&self, name: &str) -> bool {
        Zsh.is(name)
    }
    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        Zsh.write_registration(var, name, bin, completer, buf)?;
        let escaped = name.replace('-', "_");
        writeln!(
            buf,
            "if [[ ${{funcstack[1]}} == _{bin} ]]; then\n    _clap_dynamic_completer_{escaped} \"$@\"\nfi"
        )
    }
    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&std::path::Path>,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        Zsh.write_complete(cmd, args, current_dir, buf)
    }
}

/// What the line being completed says that changes the values: the config and the servers and
/// storage it names, and when the completion started.
#[derive(Debug, Default)]
struct Line {
    config: Option<PathBuf>,
    servers: Vec<String>,
    storage: Option<String>,
    started: Option<Instant>,
}

static LINE: OnceLock<Line> = OnceLock::new();

impl Line {
    /// Reads the process arguments of a completion request: the binary, `--`, then the words of
    /// the line; `index` is the word being completed (`_CLAP_COMPLETE_INDEX`, set by the bash
    /// and zsh scripts; the last word for fish), which is left out.
    fn parse(args: &[OsString], index: Option<String>) -> Line {
        let words: Vec<String> = match args.iter().position(|a| a == "--") {
            Some(i) => args[i + 1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            None => Vec::new(),
        };
        let current = index
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(words.len().saturating_sub(1));
        let mut line = Line {
            started: Some(Instant::now()),
            ..Line::default()
        };
        // The value of an option, given as `--opt VALUE` or `--opt=VALUE` (`-cVALUE` for -c).
        let mut i = 1;
        while i < words.len() {
            let w = words[i].as_str();
            if w == "--" {
                break;
            }
            let next = (i + 1 < words.len() && i + 1 != current).then(|| words[i + 1].clone());
            let (opt, value, used_next) = match w.split_once('=') {
                Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string()), false),
                _ if w.starts_with("-c") && w.len() > 2 && !w.starts_with("--") => {
                    let v = &w[2..];
                    (
                        "-c",
                        Some(v.strip_prefix('=').unwrap_or(v).to_string()),
                        false,
                    )
                }
                _ => (w, next, true),
            };
            let mut took = false;
            if i != current {
                if let Some(v) = value.map(|v| shell_word(&v)) {
                    match opt {
                        "--config" | "-c" => {
                            line.config = Some(PathBuf::from(v));
                            took = true;
                        }
                        "--server" => {
                            line.servers.push(v);
                            took = true;
                        }
                        "--storage" => {
                            line.storage = Some(v);
                            took = true;
                        }
                        _ => {}
                    }
                }
            }
            i += if took && used_next { 2 } else { 1 };
        }
        line
    }

    /// The time left before [`DEADLINE`].
    fn time_left(&self) -> Duration {
        match self.started {
            Some(t) => DEADLINE.saturating_sub(t.elapsed()),
            None => DEADLINE,
        }
    }
}

/// A word as the shell would pass it: one level of quotes taken off, a leading `~/` expanded.
/// (The words reach the completer as typed, before the shell's own expansion.)
fn shell_word(w: &str) -> String {
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|q| {
            w.strip_prefix(*q)
                .and_then(|rest| rest.strip_suffix(*q))
                .map(String::from)
        })
        .unwrap_or_else(|| w.to_string());
    match (unquoted.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => unquoted,
    }
}

fn line() -> &'static Line {
    static EMPTY: OnceLock<Line> = OnceLock::new();
    LINE.get()
        .unwrap_or_else(|| EMPTY.get_or_init(Line::default))
}

/// The resolved settings of the line, read once; `None` when they do not resolve.
fn settings() -> Option<&'static Settings> {
    static SETTINGS: OnceLock<Option<Settings>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let env = Environment::from_process();
            let settings = Settings::resolve_with(line().config.as_deref(), true, &env).ok()?;
            // As in a run: the S3 client reads a custom CA from here. Set before any thread.
            if let Ok(Some(ca)) = settings.s3_ca_file() {
                std::env::set_var("SSL_CERT_FILE", ca);
            }
            Some(settings)
        })
        .as_ref()
}

/// The names the config file defines, when the settings do not resolve (a secret that only the
/// service can read): names need no secret.
fn names_in_file() -> Option<crate::config::settings::ConfigNames> {
    Settings::names_in_file(line().config.as_deref(), &Environment::from_process())
}

fn candidate(value: &str, help: Option<String>) -> CompletionCandidate {
    CompletionCandidate::new(value).help(help.map(Into::into))
}

/// The configured servers, with their address.
pub fn servers() -> Vec<CompletionCandidate> {
    match settings() {
        Some(s) => s
            .servers
            .iter()
            .map(|sv| {
                let at = match (&sv.socket, &sv.host) {
                    (Some(sock), _) => Some(sock.display().to_string()),
                    (None, Some(h)) => Some(match sv.port {
                        Some(p) => format!("{h}:{p}"),
                        None => h.clone(),
                    }),
                    (None, None) => None,
                };
                candidate(&sv.name, at)
            })
            .collect(),
        None => names(|n| n.servers),
    }
}

/// The configured storages, with where they are.
pub fn storages() -> Vec<CompletionCandidate> {
    match settings() {
        Some(s) => s
            .storages
            .iter()
            .map(|st| {
                let at = match &st.kind {
                    StorageKind::Local { path } => path.display().to_string(),
                    StorageKind::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
                };
                candidate(&st.name, Some(at))
            })
            .collect(),
        None => names(|n| n.storages),
    }
}

/// The configured backup types, with their storages.
pub fn backup_types() -> Vec<CompletionCandidate> {
    match settings() {
        Some(s) => s
            .backup_types
            .iter()
            .map(|t| candidate(&t.name, Some(format!("on {}", t.storages.join(", ")))))
            .collect(),
        None => names(|n| n.backup_types),
    }
}

fn names(
    pick: impl Fn(crate::config::settings::ConfigNames) -> Vec<String>,
) -> Vec<CompletionCandidate> {
    names_in_file()
        .map(pick)
        .unwrap_or_default()
        .iter()
        .map(|n| candidate(n, None))
        .collect()
}

/// The databases the indexes hold backups of.
pub fn databases() -> Vec<CompletionCandidate> {
    let names: BTreeSet<String> = from_indexes(|c| {
        c.indexes
            .iter()
            .flat_map(|ix| ix.summary.databases.keys().cloned())
            .collect()
    })
    .into_iter()
    .collect();
    names
        .iter()
        .filter(|n| shell_safe(n))
        .map(|n| candidate(n, None))
        .collect()
}

/// Whether `name` can be offered to a shell as it is: a completed word is inserted into the
/// command line unquoted, so a name holding `$(…)`, a quote or a space (the indexes are data
/// anyone who can write a storage controls) is not offered; it can still be typed.
fn shell_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.@+:,%=".contains(c))
}

/// `latest`, then the ids of successful backups that start with `current`, newest first, at
/// most [`MAX_IDS`], each with what it holds and when it started (zsh lists candidates that
/// share a description together, out of order: the time keeps them apart).
pub fn backup_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(prefix) = current.to_str().map(String::from) else {
        return Vec::new();
    };
    let latest = crate::restore::LATEST
        .starts_with(prefix.as_str())
        .then(|| {
            candidate(
                crate::restore::LATEST,
                Some("the newest good backup of the database --db names".to_string()),
            )
        });
    let mut records = from_indexes(move |c| {
        c.newest(MAX_IDS, &Select::default(), |r| {
            r.status == Status::Success && r.id.starts_with(&prefix) && crate::layout::is_id(&r.id)
        })
        .0
    });
    crate::catalog::sort_newest_first(&mut records);
    let mut out: Vec<(BackupRecord, Vec<String>)> = Vec::new();
    for r in records {
        if let Some((_, storages)) = out.iter_mut().find(|(o, _)| o.id == r.id) {
            if !storages.contains(&r.storage) {
                storages.push(r.storage.clone());
            }
        } else if out.len() < MAX_IDS {
            let storage = r.storage.clone();
            out.push((r, vec![storage]));
        }
    }
    latest
        .into_iter()
        .chain(out.iter().map(|(r, storages)| {
            candidate(
                &r.id,
                Some(format!(
                    "{} {} {}, {} on {}",
                    r.server,
                    r.database,
                    r.backup_type,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    storages.join(", ")
                )),
            )
        }))
        .collect()
}

/// Runs `look` over the indexes of each storage the line lets through, one thread per storage,
/// and gathers what came back before the deadline; a storage that did not is left out.
fn from_indexes<T: Send + 'static>(
    look: impl Fn(&Catalog) -> Vec<T> + Send + Sync + 'static,
) -> Vec<T> {
    let Some(settings) = settings() else {
        return Vec::new();
    };
    let line = line();
    let look = Arc::new(look);
    let (tx, rx) = mpsc::channel();
    let mut asked = 0;
    for st in settings
        .storages
        .iter()
        .filter(|s| line.storage.as_ref().is_none_or(|n| n == &s.name))
    {
        let mut one = settings.clone();
        one.storages = vec![st.clone()];
        let (tx, look) = (tx.clone(), Arc::clone(&look));
        let servers = line.servers.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("complete-{}", st.name))
            .spawn(move || {
                let session = crate::session::Session::new(
                    one,
                    crate::ui::Ui::silent(),
                    Arc::new(AtomicBool::new(false)),
                );
                let _ = tx.send(look(&session.catalog(&servers)));
            });
        if spawned.is_ok() {
            asked += 1;
        }
    }
    drop(tx);
    let mut out = Vec::new();
    for _ in 0..asked {
        match rx.recv_timeout(line.time_left()) {
            Ok(v) => out.extend(v),
            // Out of time: the threads still waiting end with the process.
            Err(_) => break,
        }
    }
    out
}

/// `--server`, `--to-server`: the configured servers.
pub fn server_arg() -> ArgValueCandidates {
    ArgValueCandidates::new(servers)
}

/// `--storage`: the configured storages.
pub fn storage_arg() -> ArgValueCandidates {
    ArgValueCandidates::new(storages)
}

/// `--type`: the configured backup types.
pub fn type_arg() -> ArgValueCandidates {
    ArgValueCandidates::new(backup_types)
}

/// `--db`: the databases in the indexes.
pub fn database_arg() -> ArgValueCandidates {
    ArgValueCandidates::new(databases)
}

/// A backup id: `latest`, then the newest in the indexes.
pub fn id_arg() -> ArgValueCompleter {
    ArgValueCompleter::new(backup_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str], index: Option<usize>) -> Line {
        let mut args: Vec<OsString> = vec!["sqlguard".into(), "--".into()];
        args.extend(words.iter().map(OsString::from));
        Line::parse(&args, index.map(|i| i.to_string()))
    }

    #[test]
    fn the_line_names_config_servers_and_storage() {
        let l = parse(
            &[
                "sqlguard",
                "list",
                "--config",
                "a.yaml",
                "--server",
                "main",
                "--server=other",
                "--storage",
                "local",
                "--db",
                "",
            ],
            None,
        );
        assert_eq!(l.config, Some(PathBuf::from("a.yaml")));
        assert_eq!(l.servers, vec!["main", "other"]);
        assert_eq!(l.storage.as_deref(), Some("local"));
        let l = parse(&["sqlguard", "-c'b c.yaml'", "list"], None);
        assert_eq!(l.config, Some(PathBuf::from("b c.yaml")));
        let l = parse(&["sqlguard", "--config='x.yaml'", "list", ""], Some(3));
        assert_eq!(l.config, Some(PathBuf::from("x.yaml")));
    }

    #[test]
    fn the_word_being_completed_is_not_taken() {
        // `--server ma<TAB>`: "ma" is what is being completed, not a filter.
        let l = parse(&["sqlguard", "list", "--server", "ma"], None);
        assert!(l.servers.is_empty());
        // In the middle of the line (bash and zsh pass the index).
        let l = parse(
            &["sqlguard", "list", "--storage", "lo", "--server", "main"],
            Some(3),
        );
        assert_eq!(l.storage, None);
        assert_eq!(l.servers, vec!["main"]);
        // `--config <TAB>` followed by more words.
        let l = parse(&["sqlguard", "--config", "", "list"], Some(2));
        assert_eq!(l.config, None);
    }

    #[test]
    fn words_lose_quotes_and_tilde() {
        std::env::var("HOME").expect("HOME");
        assert_eq!(shell_word("'a b'"), "a b");
        assert_eq!(shell_word("\"a\""), "a");
        assert!(shell_word("~/x.yaml").ends_with("/x.yaml"));
        assert!(!shell_word("~/x.yaml").starts_with('~'));
        assert_eq!(shell_word("a~"), "a~");
    }

    #[test]
    fn registrations_exist_for_the_committed_shells() {
        for (shell, _) in SCRIPTS {
            let script = String::from_utf8(registration(shell, "sqlguard").unwrap()).unwrap();
            assert!(script.contains("COMPLETE="), "{shell}: {script}");
        }
        let zsh = String::from_utf8(registration("zsh", "sqlguard").unwrap()).unwrap();
        assert!(zsh.starts_with("#compdef sqlguard"), "{zsh}");
        assert!(zsh.contains("== _sqlguard ]]"), "{zsh}");
    }
}
