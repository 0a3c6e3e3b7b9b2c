//! Renderers more than one command prints with (a prune's outcome is printed by `prune` and by
//! `backup` with `prune_after_backup`). Commands call these instead of each other.

use chrono::Utc;
use serde::Serialize;

use super::{table, Context, Printer};
use crate::duration::compact;
use crate::error::Error;
use crate::prune::PruneOutcome;
use crate::retention::Decision;
use crate::ui::human_bytes;

/// The JSON document of `prune`.
#[derive(Debug, Serialize)]
pub struct PruneReport<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub outcome: &'a PruneOutcome,
    pub removed_entries: usize,
    pub removed_bytes: u64,
    pub kept_entries: usize,
}

/// Prints the outcome as a table (every decision) or JSON.
pub fn prune(outcome: &PruneOutcome, ctx: &Context) -> Result<(), Error> {
    let (removed, bytes) = outcome.removed();
    let kept = outcome
        .entries
        .iter()
        .filter(|e| e.decision == Decision::Keep)
        .count();
    if ctx.json {
        Printer::json(&PruneReport {
            schema_version: crate::index::SCHEMA_VERSION,
            outcome,
            removed_entries: removed,
            removed_bytes: bytes,
            kept_entries: kept,
        })?;
        return Ok(());
    }
    let now = Utc::now();
    if !outcome.entries.is_empty() {
        let mut t = table(
            &[
                "STORAGE", "SERVER", "DATABASE", "TYPE", "ID", "STATUS", "AGE", "SIZE", "DECISION",
                "REASON",
            ],
            ctx.ui.color(),
        );
        for e in &outcome.entries {
            let r = &e.record;
            let decision = match (e.decision, e.done, &e.prune_error) {
                (Decision::Keep, _, _) => "keep",
                (Decision::Remove, _, Some(_)) => "FAILED",
                (Decision::Remove, true, _) => "removed",
                (Decision::Remove, false, _) => "remove",
            };
            t.add_row(vec![
                r.storage.clone(),
                r.server.clone(),
                r.database.clone(),
                r.backup_type.clone(),
                r.id.clone(),
                r.status.as_str().to_string(),
                compact((now - r.started_at).num_seconds().max(0) as u64),
                human_bytes(r.compressed_bytes),
                decision.to_string(),
                e.prune_error.clone().unwrap_or_else(|| e.reason.clone()),
            ]);
        }
        Printer::line(&t.to_string())?;
    }
    for o in &outcome.orphans {
        Printer::line(&format!(
            "orphan {} on '{}': {} ({}){}",
            o.orphan.kind,
            o.storage,
            o.orphan.key,
            human_bytes(o.orphan.size),
            if o.done {
                " removed"
            } else if outcome.dry_run {
                " would be removed"
            } else {
                ""
            }
        ))?;
    }
    for u in &outcome.unrecorded {
        Printer::line(&format!(
            "not in the index on '{}': {} ({}); left in place, `sqlguard index rebuild` adopts it",
            u.storage,
            u.key,
            human_bytes(u.size)
        ))?;
    }
    Printer::line(&format!(
        "{}{removed} entries, {} freed; {kept} kept; {} orphans; {} not in the index",
        if outcome.dry_run {
            "dry run: would remove "
        } else {
            "removed "
        },
        human_bytes(bytes),
        outcome.orphans.len(),
        outcome.unrecorded.len()
    ))?;
    Ok(())
}
