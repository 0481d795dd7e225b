//! Change batches: a batch is applied to the host's newest snapshot if and
//! only if that is its base, and the result stored, in one transaction
//! that holds the host's row: of two servers (or two requests) extending
//! one base, one stores and the other finds its base gone.
//!
//! The base comes from this server's copy of the host's newest snapshot
//! when that copy is the base, else from the database (its chain replayed).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use procmon_model::{ChangeBatch, Snapshot};

use super::errors::Classify;
use super::read;
use super::replay;
use super::schema::{self, Block, Kind};
use super::writer::{lock_host, owner_of, write_locked};
use super::{lock, PostgresStore};
use crate::store::chain::nanos;
use crate::store::changes::make_snapshot;
use crate::store::{ChangeOutcome, SnapshotCheck, StoreError, StoreResult};

impl PostgresStore {
    /// [`crate::store::Store::ingest_changes`]: the compare of the host
    /// row's newest snapshot and the write in one transaction, the host row
    /// locked (`FOR UPDATE`) so that another server waits for it.
    pub(super) async fn store_changes(
        &self,
        batch: Arc<ChangeBatch>,
        received_at: DateTime<Utc>,
        check: SnapshotCheck,
    ) -> StoreResult<ChangeOutcome> {
        let inner = &self.inner;
        let received = nanos(received_at);
        let collected = nanos(batch.collected_at);
        let taken = collected.min(received);
        inner.ensure_partition(Block::of(Kind::Raw, taken)).await?;
        let host_id = &batch.host_id;
        let cached_base = lock(&inner.bases).remove(host_id);

        let mut conn = inner
            .pool
            .get()
            .await
            .doing("cannot connect to store the changes")?;
        let tx = conn.transaction().await.doing("cannot start a write")?;
        let current = lock_host(&tx, host_id).await?;
        let keep_base = |base: Option<Arc<Snapshot>>| {
            if let Some(base) = base {
                lock(&inner.bases).insert(host_id.clone(), base);
            }
        };
        if let Some(owner) = owner_of(&tx, batch.id).await? {
            keep_base(cached_base);
            return Ok(if current.as_ref().map(|c| c.key) == Some(owner) {
                ChangeOutcome::AlreadyStored
            } else {
                ChangeOutcome::IdTakenByOtherHost
            });
        }
        let Some(current) = current.filter(|c| c.newest_id == batch.base_id) else {
            return Ok(ChangeOutcome::BaseUnknown);
        };
        let base = match cached_base.filter(|b| b.id == batch.base_id) {
            Some(base) => base,
            None => {
                let Some(base) = stored_base(&tx, host_id, current.key, current.taken_at).await?
                else {
                    return Ok(ChangeOutcome::BaseUnknown);
                };
                if base.id != batch.base_id {
                    return Ok(ChangeOutcome::BaseUnknown);
                }
                Arc::new(base)
            }
        };
        let made = match make_snapshot(&base, &batch, check) {
            Ok(made) => Arc::new(made),
            Err(outcome) => {
                keep_base(Some(base));
                return Ok(outcome);
            }
        };
        let newest = taken >= current.taken_at;
        let cached_chain = inner.take_live(host_id);
        let live = write_locked(&tx, &made, received, Some(current), cached_chain).await?;
        tx.commit().await.doing("cannot commit the snapshot")?;
        if let Some(live) = live {
            inner.put_live(host_id, live);
        }
        keep_base(Some(if newest { Arc::clone(&made) } else { base }));
        Ok(ChangeOutcome::Stored(made))
    }
}

/// The host's newest stored snapshot as a `Snapshot` to apply a batch to.
async fn stored_base(
    tx: &tokio_postgres::Transaction<'_>,
    host_id: &str,
    key: i64,
    taken_at: i64,
) -> StoreResult<Option<Snapshot>> {
    let raw: Vec<Block> = schema::blocks(tx)
        .await?
        .into_iter()
        .filter(|b| b.kind == Kind::Raw)
        .collect();
    let Some(head) = replay::head_at(tx, &raw, key, taken_at, i64::MIN).await? else {
        return Ok(None);
    };
    let (chain, _) = replay::rebuild(tx, &head).await?;
    let host = read::host(tx, host_id)
        .await?
        .ok_or_else(|| StoreError::Failed(anyhow::anyhow!("the host row of {host_id} vanished")))?;
    Ok(Some(Snapshot {
        version: procmon_model::WIRE_VERSION,
        id: head.id,
        collected_at: DateTime::from_timestamp_nanos(head.collected_at),
        interval_ms: host.record.interval_ms,
        host: host.record.info,
        load: None,
        processes: chain.processes().cloned().collect(),
    }))
}
