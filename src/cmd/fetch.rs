//! `sqlguard fetch`: copy a stored backup out, proven against the index before any byte is
//! written.

use std::path::PathBuf;

use super::Context;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::restore::{self, FetchForm, FetchTo};
use crate::ui::human_bytes;

/// Download a backup to a file or stdout, checking its SHA-256 (and, decompressed, its trailer).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup id (from `sqlguard list`), or `latest`: the newest good backup of the
    /// database that --db (and --server, --type) name
    #[arg(value_name = "ID", add = crate::complete::id_arg())]
    pub id: String,
    /// Filters for `latest`; --storage also picks the copy to read (default: the first good
    /// copy, then the others should it fail its checks or not be readable)
    #[command(flatten)]
    pub filter: crate::catalog::RecordFilter,
    /// Output file (written to a temp name, renamed when every check passed); `-` or absent:
    /// stdout (written once the copy is proven)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the plain SQL instead of the compressed file (decrypting an encrypted backup
    /// first, with encryption.age_identity_file)
    #[arg(long, short = 'd')]
    pub decompress: bool,
    /// Decrypt an age-encrypted backup (with encryption.age_identity_file) and write it still
    /// compressed; to a file, only once it decrypted and decompressed completely. Without
    /// it, an encrypted backup is written as stored (`age -d` reads it)
    #[arg(long)]
    pub decrypt: bool,
}

/// Runs the fetch subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let to = match args.output.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            ctx.settings
                .refuse_inside_a_storage(path)
                .map_err(Error::invalid)?;
            FetchTo::File(path)
        }
        None => FetchTo::Stdout,
    };
    let form = if args.decompress {
        FetchForm::Sql
    } else if args.decrypt {
        FetchForm::Decrypted
    } else {
        FetchForm::Stored
    };
    let fetched = restore::fetch(ctx, &args.id, &args.filter, to, form)?;
    if fetched.reader_closed {
        return Ok(ExitCode::Success);
    }
    ctx.summarize(format!(
        "backup {} from '{}', {}",
        fetched.record.id,
        fetched.record.storage,
        human_bytes(fetched.bytes)
    ));
    ctx.ui.info(&format!(
        "fetched {} from '{}' ({}, SHA-256 matches the index)",
        fetched.record.id,
        fetched.record.storage,
        human_bytes(fetched.bytes)
    ));
    Ok(ExitCode::Success)
}
