//! `sqlguard fetch`: copy a stored backup out, checked against the index on the way.

use std::io::Write;
use std::path::PathBuf;

use super::Context;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::verify;

/// Download a backup to a file or stdout, checking its SHA-256 (and, decompressed, its trailer).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup id (from `sqlguard list`)
    #[arg(value_name = "ID")]
    pub id: String,
    /// The storage to read from (default: the first that holds a good copy)
    #[arg(long, value_name = "NAME")]
    pub storage: Option<String>,
    /// Output file (written to a temp name, renamed when every check passed); `-` or absent: stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the plain SQL instead of the compressed file
    #[arg(long, short = 'd')]
    pub decompress: bool,
}

/// Finds the copy of `id` to read: on `storage`, or the first successful one.
pub fn find_copy(
    ctx: &Context,
    id: &str,
    storage: Option<&str>,
) -> Result<crate::index::BackupRecord, Error> {
    let catalog = crate::catalog::load(&ctx.settings, &ctx.ui, &[]);
    for (_, e) in &catalog.errors {
        ctx.ui.warn(e);
    }
    catalog
        .records
        .into_iter()
        .find(|r| {
            r.id == id
                && r.status == crate::index::Status::Success
                && storage.is_none_or(|s| s == r.storage)
        })
        .ok_or_else(|| {
            Error::Usage(format!(
                "no successful copy of backup {id}{} (see `sqlguard list`)",
                storage
                    .map(|s| format!(" on storage '{s}'"))
                    .unwrap_or_default()
            ))
        })
}

/// Runs the fetch subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let record = find_copy(ctx, &args.id, args.storage.as_deref())?;
    let st = ctx
        .settings
        .storage(&record.storage)
        .expect("catalog records name configured storages");
    let storage = crate::storage::open(
        st,
        &crate::storage::StorageContext::new(&ctx.settings, &ctx.ui),
    )?;
    let to_file = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    let checked = match to_file {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            // tempfile creates it 0600; it is removed unless every check passes.
            let mut tmp = tempfile::Builder::new()
                .prefix(".sqlguard-fetch.")
                .tempfile_in(dir)?;
            let checked = if args.decompress {
                let file = tmp.reopen()?;
                verify::check_copy(
                    storage.as_ref(),
                    &record,
                    None,
                    Some(Box::new(std::io::BufWriter::new(file))),
                    true,
                    &ctx.cancel,
                )
            } else {
                let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                let c = verify::check_copy(
                    storage.as_ref(),
                    &record,
                    Some(&mut w),
                    None,
                    false,
                    &ctx.cancel,
                );
                w.flush()?;
                c
            }
            .map_err(Error::Usage)?;
            if checked.problems.is_empty() {
                tmp.as_file().sync_all()?;
                tmp.persist(path).map_err(|e| e.error)?;
            }
            checked
        }
        None => {
            let stdout = std::io::stdout();
            if args.decompress {
                verify::check_copy(
                    storage.as_ref(),
                    &record,
                    None,
                    Some(Box::new(stdout)),
                    true,
                    &ctx.cancel,
                )
            } else {
                let mut lock = stdout.lock();
                verify::check_copy(
                    storage.as_ref(),
                    &record,
                    Some(&mut lock),
                    None,
                    false,
                    &ctx.cancel,
                )
            }
            .map_err(Error::Usage)?
        }
    };
    if checked.problems.is_empty() {
        ctx.ui.info(&format!(
            "fetched {} from '{}' ({} bytes, SHA-256 matches the index)",
            record.id, record.storage, checked.compressed_bytes
        ));
        Ok(ExitCode::Success)
    } else {
        ctx.ui.error(&format!(
            "backup {} on '{}' failed its checks{}: {}",
            record.id,
            record.storage,
            if to_file.is_some() {
                " (nothing was written)"
            } else {
                ""
            },
            checked.problems.join("; ")
        ));
        Ok(ExitCode::Failure)
    }
}
