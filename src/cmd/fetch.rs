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

/// Refuses an output file inside a local storage's directory: there it could replace another
/// backup's object or manifest, or an index file, which that storage then no longer holds
/// intact.
fn refuse_inside_a_storage(ctx: &Context, path: &std::path::Path) -> Result<(), Error> {
    // Where the file lands: an existing path as its links resolve (the file a link names is
    // what would be replaced), else its directory's.
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => std::path::PathBuf::from("."),
    };
    let resolved = match path.canonicalize() {
        Ok(p) => p.parent().map(std::path::Path::to_path_buf).unwrap_or(p),
        // A parent that does not exist fails later, when the file is made, with its own error.
        Err(_) => match parent.canonicalize() {
            Ok(p) => p,
            Err(_) => return Ok(()),
        },
    };
    let parent = resolved;
    for s in &ctx.settings.storages {
        if let crate::config::StorageKind::Local { path: root } = &s.kind {
            if root
                .canonicalize()
                .is_ok_and(|root| parent.starts_with(&root))
            {
                return Err(Error::invalid(format!(
                    "{} is inside storage '{}' ({}): a file written there could replace one of its backups or its index; write it outside the storage",
                    path.display(),
                    s.name,
                    root.display()
                )));
            }
        }
    }
    Ok(())
}

/// Runs the fetch subcommand.
pub fn run(args: &Args, ctx: &Context) -> Result<ExitCode, Error> {
    let to = match args.output.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            refuse_inside_a_storage(ctx, path)?;
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
