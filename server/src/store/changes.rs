//! What every backend does the same way with a change batch: apply it to
//! the host's newest snapshot and check what that makes. The backend's own
//! part is only the compare-and-swap: that the newest snapshot it holds is
//! still the batch's base when it writes the result, in one transaction.

use chrono::{DateTime, Utc};
use procmon_model::changes::{apply, ApplyError};
use procmon_model::{ChangeBatch, Snapshot, WIRE_VERSION};

use super::{ChangeOutcome, HostRecord, SnapshotCheck, StoredSnapshot};

/// When a snapshot counts as taken: when it was collected, or when it was
/// received if the agent's clock put it later (an agent clock running ahead
/// cannot put a snapshot in the future, nor hide every later one).
pub fn taken_at(collected: DateTime<Utc>, received: DateTime<Utc>) -> DateTime<Utc> {
    collected.min(received)
}

/// The snapshot `batch` makes of `base` (the host's newest), checked by
/// `check`; or the outcome that says why not.
pub fn make_snapshot(
    base: &Snapshot,
    batch: &ChangeBatch,
    check: SnapshotCheck,
) -> Result<Snapshot, ChangeOutcome> {
    if let Some(host) = batch.host.as_ref().filter(|h| h.id != batch.host_id) {
        return Err(ChangeOutcome::DoesNotFit(format!(
            "host.id {:?} is not the batch's host_id {:?}: a host's id never changes",
            host.id, batch.host_id
        )));
    }
    let made = apply(base, batch).map_err(|e| match e {
        ApplyError::WrongBase { .. } => ChangeOutcome::BaseUnknown,
        other => ChangeOutcome::DoesNotFit(other.to_string()),
    })?;
    check(&made).map_err(ChangeOutcome::Invalid)?;
    Ok(made)
}

/// The host's newest stored snapshot as the base a batch applies to, when
/// no copy of it is at hand (after a restart, or when another server
/// stored it). The store keeps exactly what was sent, so this is the
/// snapshot the agent diffed against; its load does not matter, a batch
/// brings its own.
pub fn rebuild_base(stored: StoredSnapshot, host: &HostRecord) -> Snapshot {
    Snapshot {
        version: WIRE_VERSION,
        id: stored.id,
        collected_at: stored.collected_at,
        interval_ms: host.interval_ms,
        host: host.info.clone(),
        load: None,
        processes: stored.processes,
    }
}
