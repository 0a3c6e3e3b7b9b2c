//! Where human-facing output goes: log lines and progress bars on stderr, results on stdout.
//!
//! Log lines are short and plain so that cron mail stays readable; `--verbose` adds detail and
//! `--quiet` keeps only errors. Off a terminal (cron mail, log files) each line starts with its
//! UTC time, except under systemd, whose journal stamps lines itself. Progress bars appear only
//! when stderr is a terminal and `--no-progress` is not given. Nothing here decides what a
//! command does.

use std::io::IsTerminal;

/// Set once a reader stopped reading the results (`sqlguard list | head -1`).
static RESULTS_UNREAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A command's results on stdout (tables, JSON). A reader that stops reading them does not
/// change the run: what it no longer reads is dropped, and the run goes on to its hooks,
/// notifications and metrics and ends with the exit code of its work.
#[derive(Debug)]
pub struct Results(std::io::StdoutLock<'static>);

impl std::io::Write for Results {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        if RESULTS_UNREAD.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                RESULTS_UNREAD.store(true, Ordering::Relaxed);
                Ok(buf.len())
            }
            r => r,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                RESULTS_UNREAD.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            r => r,
        }
    }
}

/// `text` for one table cell: every control character (a newline, a carriage return, a
/// terminal escape from a name or an error a storage returned) written escaped, so that data
/// cannot draw on the operator's terminal or break the table.
pub fn cell_text(text: &str) -> String {
    if !text.chars().any(unprintable) {
        return text.to_string();
    }
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if unprintable(c) {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Characters that must not reach a terminal or a line-based file as they are: controls (an
/// escape sequence, a newline, NEL), the Unicode line and paragraph separators (line breaks to
/// YAML and JavaScript), and the bidirectional formatting characters that reorder what a
/// reader sees (U+202E turns `gpj.exe` into `exe.jpg`).
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Standard output for a command's results: see [`Results`].
pub fn results() -> std::io::Result<Results> {
    stdout().map(Results)
}

/// Writes `line` to stderr. A log that cannot be written (a closed pipe, a full disk) must not
/// end the run, let alone with a panic as `eprintln!` would: the error is dropped.
pub fn stderr_line(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

/// `msg` made safe for one log record: control characters (a terminal escape, a carriage
/// return) are written escaped, and every line after the first is indented, so that a name
/// holding a newline (a database can be called that) cannot forge a log line of its own.
pub fn plain_text(msg: &str) -> std::borrow::Cow<'_, str> {
    if !msg.chars().any(|c| unprintable(c) && c != '\t') {
        return msg.into();
    }
    let mut out = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            '\n' => out.push_str("\n  "),
            '\t' => out.push(c),
            c if unprintable(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.into()
}

/// Standard output for a command's result. A stdout closed by the caller (`>&-`) cannot be
/// told from `>/dev/null` here: the Rust runtime opens /dev/null on a closed standard descriptor
/// before `main`, so such output is discarded as /dev/null discards it.
pub fn stdout() -> std::io::Result<std::io::StdoutLock<'static>> {
    Ok(std::io::stdout().lock())
}

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// The output settings of one run.
#[derive(Debug, Clone)]
pub struct Ui {
    level: Level,
    progress: bool,
    color: bool,
    /// Lines start with their time (stderr is not a terminal, nor the journal).
    timestamps: bool,
    /// Where bars are drawn (one per database dumped at once), with log lines above them.
    bars: Option<indicatif::MultiProgress>,
}

impl Ui {
    /// Output for an interactive or scheduled run.
    pub fn new(quiet: bool, verbose: bool, no_progress: bool, no_color: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        Ui {
            level: if quiet {
                Level::Error
            } else if verbose {
                Level::Debug
            } else {
                Level::Info
            },
            progress: tty && !no_progress && !quiet,
            color: std::io::stdout().is_terminal() && !no_color,
            timestamps: !tty && std::env::var_os("JOURNAL_STREAM").is_none(),
            bars: (tty && !no_progress && !quiet)
                .then(|| indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Silent output, for tests of the library.
    pub fn silent() -> Ui {
        Ui {
            level: Level::Error,
            progress: false,
            color: false,
            timestamps: false,
            bars: None,
        }
    }

    /// Whether `--quiet` was given: a run that succeeds prints nothing at all.
    pub fn quiet(&self) -> bool {
        self.level == Level::Error
    }

    /// The run's last line: what it did, and how it ended (an error line when it failed, so
    /// that `--quiet` shows it).
    pub fn summary(&self, msg: &str, ok: bool) {
        if ok {
            self.info(msg);
        } else {
            self.log(Level::Error, "", msg);
        }
    }

    /// Whether `-v` was given (debug lines, and more detail in tables).
    pub fn verbose(&self) -> bool {
        self.level == Level::Debug
    }

    /// Whether colour may be used on stdout (a terminal, and no `NO_COLOR`).
    pub fn color(&self) -> bool {
        self.color
    }

    fn log(&self, level: Level, tag: &str, msg: &str) {
        if level <= self.level {
            let msg = &plain_text(msg);
            let line = if self.timestamps {
                format!(
                    "{} sqlguard: {tag}{msg}",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
                )
            } else {
                format!("sqlguard: {tag}{msg}")
            };
            if self.bars.as_ref().is_none_or(|b| b.println(&line).is_err()) {
                stderr_line(&line);
            }
        }
    }

    /// An error line.
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, "error: ", msg);
    }

    /// A warning line.
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, "warning: ", msg);
    }

    /// A normal progress line.
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, "", msg);
    }

    /// Detail shown with `--verbose`.
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, "", msg);
    }

    /// A byte progress bar towards `estimate` (0 = unknown), or a hidden one off a terminal.
    pub fn bytes_bar(&self, label: &str, estimate: u64) -> ProgressBar {
        let Some(bars) = self.bars.as_ref().filter(|_| self.progress) else {
            return ProgressBar::hidden();
        };
        let bar = bars.add(ProgressBar::new(estimate));
        if estimate == 0 {
            bar.unset_length();
        }
        let template = if estimate > 0 {
            "{prefix} [{bar:30}] {bytes}/~{total_bytes} {msg} {bytes_per_sec} eta {eta}"
        } else {
            "{prefix} {spinner} {bytes} {msg} {bytes_per_sec}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(cell_text(label));
        bar
    }
}

/// Formats a byte count for people (indicatif's): `512 B`, `1.50 KiB`, `3.20 GiB`.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.50 KiB");
        assert_eq!(super::human_bytes(5 * 1024 * 1024 * 1024), "5.00 GiB");
    }

    #[test]
    fn a_name_cannot_forge_a_log_line_or_send_terminal_escapes() {
        assert_eq!(super::plain_text("shop: dumped"), "shop: dumped");
        assert_eq!(
            super::plain_text("nl\nsqlguard: error: forged\r\u{1b}[2J\tok"),
            "nl\n  sqlguard: error: forged\\r\\u{1b}[2J\tok"
        );
        assert_eq!(
            super::cell_text("a\u{1b}]0;x\u{7}\nb"),
            "a\\u{1b}]0;x\\u{7}\\nb"
        );
        assert_eq!(super::cell_text("plain ünï"), "plain ünï");
        // Reordering and line-breaking characters are escaped too.
        assert_eq!(
            super::cell_text("shop\u{202e}gpj.exe\u{2028}x\u{85}"),
            "shop\\u{202e}gpj.exe\\u{2028}x\\u{85}"
        );
        assert_eq!(super::plain_text("a\u{2066}b"), "a\\u{2066}b");
    }
}
