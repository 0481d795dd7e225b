//! Snapshots that reach this server's viewers through the store rather
//! than through this server's ingest: those other servers of a shared
//! database stored ([`crate::store::Store::stored_elsewhere`]), and the
//! difference a viewer missed while it watched another server.
//!
//! Either way the host's newest snapshot is read from the store and
//! committed to the host's live state under its lock, as ingest commits
//! its own: viewers are sent what changed since what they last had here,
//! or a reload when this server had nothing of the host.

use std::sync::Arc;

use procmon_model::changes::diff;
use procmon_model::{HostInfo, Snapshot, WIRE_VERSION};
use tokio::sync::mpsc;

use crate::live::LiveEvent;
use crate::startup::AppState;
use crate::store::{StoreResult, StoredElsewhere, StoredSnapshot};

/// Publishes what the store hears of other servers until it stops
/// hearing (the store closed).
pub async fn run(state: AppState, mut heard: mpsc::Receiver<StoredElsewhere>) {
    while let Some(word) = heard.recv().await {
        let hosts = match word {
            // A host nobody watches here is not read: it is caught up when
            // a viewer opens it.
            StoredElsewhere::Snapshot { host_id, .. } => state
                .live
                .existing(&host_id)
                .filter(|host| host.watched())
                .map(|_| vec![host_id])
                .unwrap_or_default(),
            StoredElsewhere::MayHaveMissed => state.live.watched(),
        };
        for host_id in hosts {
            match catch_up(&state, &host_id).await {
                Ok(Some(received_at)) => state
                    .metrics
                    .notification_lag(state.clock.now() - received_at),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    host = host_id,
                    error = %e,
                    "cannot read a snapshot another server stored; its viewers here wait for the next"
                ),
            }
        }
    }
}

/// Brings the host's live state here to the store's newest snapshot of it,
/// if that is newer, telling its viewers here; when it was received, if it
/// was committed.
pub async fn catch_up(
    state: &AppState,
    host_id: &str,
) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    let host = state.live.host(host_id);
    let mut live = host.lock().await;
    let Some(record) = state.store.host(host_id).await? else {
        return Ok(None);
    };
    if live
        .current()
        .is_some_and(|current| current.taken_at() >= record.newest_taken_at)
    {
        return Ok(None);
    }
    let Some(stored) = state.store.snapshot(host_id, None).await? else {
        return Ok(None);
    };
    // The agent's meters are kept beside the snapshot, as its load point.
    let load = state
        .store
        .load_points(host_id, stored.taken_at)
        .await?
        .into_iter()
        .rev()
        .find(|point| point.at == stored.collected_at)
        .and_then(|point| point.load);
    let received_at = stored.received_at;
    let mut snapshot = as_sent(stored, record.info, record.interval_ms);
    snapshot.load = load;
    live.commit(Arc::new(snapshot), received_at, None);
    Ok(Some(received_at))
}

/// The event that brings a viewer from `since` (a snapshot it had, perhaps
/// from another server) to `newest`, from the store's exact history; `None`
/// when the store no longer keeps `since`.
pub async fn resume(
    state: &AppState,
    host_id: &str,
    since: uuid::Uuid,
    newest: &Snapshot,
) -> StoreResult<Option<LiveEvent>> {
    let Some(had) = state.store.snapshot_by_id(host_id, since).await? else {
        return Ok(None);
    };
    let had = as_sent(had, newest.host.clone(), newest.interval_ms);
    let mut batch = diff(&had, newest);
    // The facts the viewer had are not kept with each snapshot: the
    // newest ones are sent, whether or not they moved.
    batch.host = Some(newest.host.clone());
    Ok(Some(LiveEvent::new(newest.id, Some(batch))))
}

/// A stored snapshot as agents send them, with its host's facts (the
/// store keeps the host's load beside it, not in it).
fn as_sent(stored: StoredSnapshot, host: HostInfo, interval_ms: u64) -> Snapshot {
    Snapshot {
        version: WIRE_VERSION,
        id: stored.id,
        collected_at: stored.collected_at,
        interval_ms,
        host,
        load: None,
        processes: stored.processes,
    }
}
