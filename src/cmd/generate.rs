//! `sqlguard generate --out DIR` (hidden): writes the man pages from the clap definitions and the
//! shell completion registration scripts (see [`crate::complete`]). The committed copies under `man/` and `completions/` are checked against
//! this output by a test, so they cannot go stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

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
    // The registration scripts: each Tab calls `sqlguard` (from PATH) back for the candidates,
    // so they hold no list of flags to go stale; the same text `COMPLETE=<shell> sqlguard`
    // prints.
    for (shell, file) in crate::complete::SCRIPTS {
        let script = crate::complete::registration(shell, "sqlguard")
            .unwrap_or_else(|| panic!("clap_complete knows {shell}"));
        out.push((format!("completions/{file}"), script));
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
