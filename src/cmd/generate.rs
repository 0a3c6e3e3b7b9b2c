//! `sqlguard generate --out DIR` (hidden): writes the man pages and shell completions from the
//! clap definitions. The committed copies under `man/` and `completions/` are checked against
//! this output by a test, so they cannot go stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Generate man pages and completions.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to write `man/` and `completions/` into (the repository root to refresh them)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Every generated file: (path relative to the output directory, content).
pub fn files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .expect("render man page");
    out.push(("man/sqlguard.1".to_string(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sqlguard-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).display_name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("render man page");
        out.push((format!("man/{name}.1"), page));
    }
    for (shell, file) in [
        (Shell::Bash, "sqlguard.bash"),
        (Shell::Zsh, "_sqlguard"),
        (Shell::Fish, "sqlguard.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "sqlguard", &mut buf);
        out.push((format!("completions/{file}"), buf));
    }
    out
}

/// Writes every generated file under `dir`.
///
/// Fails when a file cannot be written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, content) in files() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
        written.push(path);
    }
    Ok(written)
}
