//! Storing one snapshot: one transaction that locks the host's row, checks
//! the id was not stored before, and inserts a keyframe or a delta.
//!
//! Each host's current chain is kept in memory so the next snapshot is
//! encoded as a delta without reading the chain back. That memory is only a
//! cache: the host row records which chain is current (its keyframe and
//! newest snapshot), and a cached chain that is not that one (another
//! server wrote the host meanwhile) is not continued: a new keyframe starts.

use std::sync::Arc;

use deadpool_postgres::Transaction;
use procmon_model::Snapshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;
use uuid::Uuid;

use super::errors::{self, Classify};
use super::schema::{Block, Kind, DAY, HOUR};
use super::Inner;
use crate::store::chain::{nanos, Chain};
use crate::store::load::LoadRow;
use crate::store::{HostMeters, IngestOutcome, SnapshotTotals, StoreError, StoreResult};

/// Longest chain of deltas before a new keyframe: bounds what a read of
/// one snapshot replays.
pub const CHAIN_MAX: i32 = 256;

/// A host's chain as this server last wrote it.
pub struct Live {
    pub host_key: i64,
    pub keyframe: i64,
    pub head: i64,
    pub chain: Chain,
}

/// The host row's view of its chain, read under its lock.
pub struct Current {
    /// The host's row key.
    pub key: i64,
    chain_key: Option<i64>,
    chain_head: Option<i64>,
    chain_length: i32,
    chain_taken: i64,
    /// The host's newest snapshot (by the time taken), and that time.
    pub newest_id: Uuid,
    pub taken_at: i64,
}

/// The chain the host row names as current once a snapshot is stored.
struct ChainMark {
    key: Option<i64>,
    head: Option<i64>,
    length: i32,
    taken: i64,
}

/// Counts past i64::MAX (only ever bogus readings) are stored as i64::MAX.
pub fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Inner {
    /// Stores one snapshot (already validated) received at `received`.
    pub async fn ingest(
        &self,
        snapshot: &Arc<Snapshot>,
        received: i64,
    ) -> StoreResult<IngestOutcome> {
        let block = Block::of(Kind::Raw, nanos(snapshot.collected_at).min(received));
        match self.ingest_once(snapshot, received).await {
            // The partition was dropped by another server since this one
            // created it: create it anew, once.
            Err(e) if errors::no_partition(&e) => {
                self.forget_partition(block);
                self.ingest_once(snapshot, received).await
            }
            other => other,
        }
    }

    async fn ingest_once(
        &self,
        snapshot: &Arc<Snapshot>,
        received: i64,
    ) -> StoreResult<IngestOutcome> {
        let collected = nanos(snapshot.collected_at);
        let taken = collected.min(received);
        self.ensure_partition(Block::of(Kind::Raw, taken)).await?;
        let host_id = &snapshot.host.id;
        let cached = self.take_live(host_id);

        let mut conn = self
            .pool
            .get()
            .await
            .doing("cannot connect to store the snapshot")?;
        let tx = conn.transaction().await.doing("cannot start a write")?;
        let current = lock_host(&tx, host_id).await?;
        if let Some(owner) = owner_of(&tx, snapshot.id).await? {
            if let Some(live) = cached {
                self.put_live(host_id, live);
            }
            return Ok(if current.as_ref().map(|c| c.key) == Some(owner) {
                IngestOutcome::AlreadyStored
            } else {
                IngestOutcome::IdTakenByOtherHost
            });
        }
        let newest = current.as_ref().is_none_or(|c| taken >= c.taken_at);
        let live = write_locked(&tx, snapshot, received, current, cached).await?;
        tx.commit().await.doing("cannot commit the snapshot")?;
        if let Some(live) = live {
            self.put_live(host_id, live);
        }
        if newest {
            // The base of the host's next change batch.
            super::lock(&self.bases).insert(host_id.clone(), Arc::clone(snapshot));
        }
        Ok(IngestOutcome::Stored)
    }
}

/// Stores `snapshot` in `tx`, where the host's row (`current`, if it has
/// one) is locked and the id is known to be new; `cached` is this server's
/// copy of the host's chain. Answers the copy to keep once committed.
pub async fn write_locked(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    received: i64,
    current: Option<Current>,
    cached: Option<Live>,
) -> StoreResult<Option<Live>> {
    let collected = nanos(snapshot.collected_at);
    let taken = collected.min(received);
    let block = Block::of(Kind::Raw, taken);
    let host_id = &snapshot.host.id;
    let current = match current {
        Some(c) => Some(c),
        None => {
            insert_host(tx, snapshot, received, taken).await?;
            lock_host(tx, host_id).await?
        }
    };
    let current = current
        .ok_or_else(|| StoreError::Failed(anyhow::anyhow!("the host row of {host_id} vanished")))?;
    // Standalone: older than the chain's newest, it is a keyframe of its
    // own and the chain goes on without it.
    let standalone = current.chain_key.is_some() && taken < current.chain_taken;
    let continues = !standalone
        && current.chain_length < CHAIN_MAX
        && current.chain_key.is_some()
        && Block::of(Kind::Raw, current.chain_taken) == block
        && cached.as_ref().is_some_and(|l| {
            l.host_key == current.key
                && Some(l.keyframe) == current.chain_key
                && Some(l.head) == current.chain_head
        });
    let payload = match (&cached, continues) {
        (Some(l), true) => l.chain.encode_delta(&snapshot.processes),
        _ => Chain::encode_keyframe(&snapshot.processes),
    };
    let seq: i64 = tx
        .query_one(&prepared(tx, "SELECT nextval('raw_seq')").await?, &[])
        .await
        .doing("cannot number the snapshot")?
        .get(0);
    let chain_id = match (&cached, continues) {
        (Some(l), true) => l.keyframe,
        _ => seq,
    };
    let totals = SnapshotTotals::of(&snapshot.processes);
    let meters = HostMeters::of(snapshot.load.as_ref());
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO raw (seq, host, id, taken_at, collected_at, received_at, interval_ms,
             chain, process_count, cpu_percent_total, memory_rss_total_bytes, data,
             cpu_machine_percent, memory_used_bytes, memory_available_bytes,
             swap_used_bytes, swap_total_bytes, load_1m)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
             $17, $18)",
        )
        .await?,
        &[
            &seq,
            &current.key,
            &snapshot.id,
            &taken,
            &collected,
            &received,
            &int(snapshot.interval_ms),
            &chain_id,
            &i64::from(totals.process_count),
            &totals.cpu_percent,
            &int(totals.memory_rss_bytes),
            &payload.stored(),
            &meters.cpu_machine_percent,
            &meters.memory_used_bytes.map(int),
            &meters.memory_available_bytes.map(int),
            &meters.swap_used_bytes.map(int),
            &meters.swap_total_bytes.map(int),
            &meters.load_1m,
        ],
    )
    .await
    .doing("cannot store the snapshot")?;
    write_load(tx, host_id, &LoadRow::of(snapshot, taken)).await?;
    let (chain_key, chain_head, chain_length, chain_taken) = if standalone {
        (
            current.chain_key,
            current.chain_head,
            current.chain_length,
            current.chain_taken,
        )
    } else if continues {
        (Some(chain_id), Some(seq), current.chain_length + 1, taken)
    } else {
        (Some(seq), Some(seq), 1, taken)
    };
    let chain = ChainMark {
        key: chain_key,
        head: chain_head,
        length: chain_length,
        taken: chain_taken,
    };
    update_host(tx, snapshot, received, taken, &totals, current.key, &chain).await?;
    // The copy of the chain to keep once this commits.
    if standalone {
        return Ok(cached);
    }
    let mut chain = match (cached, continues) {
        (Some(l), true) => l.chain,
        _ => Chain::default(),
    };
    chain
        .apply(payload.payload(), None)
        .map_err(StoreError::Failed)?;
    Ok(Some(Live {
        host_key: current.key,
        keyframe: chain_id,
        head: seq,
        chain,
    }))
}

/// Adds the host's load point, and lets its expired ones go.
async fn write_load(tx: &Transaction<'_>, host_id: &str, point: &LoadRow) -> StoreResult<()> {
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO load_point (host_id, taken_at, collected_at, cpu_percent,
                 memory_rss_bytes, processes, host_load)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?,
        &[
            &host_id,
            &point.taken,
            &point.at,
            &point.cpu_percent,
            &point.memory_rss_bytes,
            &point.processes,
            &point.load,
        ],
    )
    .await
    .doing("cannot store the host's load")?;
    tx.execute(
        &prepared(
            tx,
            "DELETE FROM load_point WHERE host_id = $1 AND taken_at < $2",
        )
        .await?,
        &[&host_id, &point.expired_before()],
    )
    .await
    .doing("cannot store the host's load")
    .map(drop)
}

/// The statement `sql`, prepared once per connection: a snapshot's
/// statements then cost one round trip each, not two.
async fn prepared(tx: &Transaction<'_>, sql: &str) -> StoreResult<Statement> {
    tx.prepare_cached(sql)
        .await
        .doing("cannot prepare a statement")
}

/// The host's row, locked until the transaction ends.
pub async fn lock_host(tx: &Transaction<'_>, host_id: &str) -> StoreResult<Option<Current>> {
    let row = tx
        .query_opt(
            &prepared(
                tx,
                "SELECT key, chain_key, chain_head, coalesce(chain_length, 0),
                 coalesce(chain_taken, taken_at), newest_id, taken_at
             FROM host WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&host_id],
        )
        .await
        .doing("cannot lock the host")?;
    Ok(row.map(|r| Current {
        key: r.get(0),
        chain_key: r.get(1),
        chain_head: r.get(2),
        chain_length: r.get(3),
        chain_taken: r.get(4),
        newest_id: r.get(5),
        taken_at: r.get(6),
    }))
}

/// The host key of the snapshot with this id, looking where a retry of it
/// must be (from an hour before it was taken to when it was collected).
pub async fn owner_of(tx: &Transaction<'_>, id: Uuid) -> StoreResult<Option<i64>> {
    // Every partition, by its index on id: a retry of any age within
    // retention is found, however far its times lie from its arrival.
    let row = tx
        .query_opt(
            &prepared(tx, "SELECT host FROM raw WHERE id = $1 LIMIT 1").await?,
            &[&id],
        )
        .await
        .doing("cannot look up the snapshot id")?;
    Ok(row.map(|r| r.get(0)))
}

/// A host row's values from a snapshot, as `$2` to `$19` of both the insert
/// and the update: facts, interval, times, newest id, totals, roll-up marks.
struct HostRow<'a> {
    snapshot: &'a Snapshot,
    cpu_count: i64,
    memory_total_bytes: i64,
    boot_time: i64,
    interval_ms: i64,
    received: i64,
    taken: i64,
    process_count: i64,
    cpu_percent: f64,
    memory_rss_bytes: i64,
    hour: i64,
    day: i64,
}

impl<'a> HostRow<'a> {
    fn of(snapshot: &'a Snapshot, received: i64, taken: i64, totals: &SnapshotTotals) -> Self {
        let h = &snapshot.host;
        Self {
            snapshot,
            cpu_count: i64::from(h.cpu_count),
            memory_total_bytes: int(h.memory_total_bytes),
            boot_time: nanos(h.boot_time),
            interval_ms: int(snapshot.interval_ms),
            received,
            taken,
            process_count: i64::from(totals.process_count),
            cpu_percent: totals.cpu_percent,
            memory_rss_bytes: int(totals.memory_rss_bytes),
            hour: taken - taken.rem_euclid(HOUR),
            day: taken - taken.rem_euclid(DAY),
        }
    }

    /// `first` (the row's `$1`), these values, then `after`.
    fn params<'p>(
        &'p self,
        first: &[&'p (dyn ToSql + Sync)],
        after: &[&'p (dyn ToSql + Sync)],
    ) -> Vec<&'p (dyn ToSql + Sync)> {
        let h = &self.snapshot.host;
        let mut params = first.to_vec();
        params.extend_from_slice(&[
            &h.hostname,
            &h.os_name,
            &h.os_version,
            &h.kernel,
            &h.arch,
            &self.cpu_count,
            &self.memory_total_bytes,
            &self.boot_time,
            &h.agent_version,
            &self.interval_ms,
            &self.received,
            &self.taken,
            &self.snapshot.id,
            &self.process_count,
            &self.cpu_percent,
            &self.memory_rss_bytes,
            &self.hour,
            &self.day,
        ]);
        params.extend_from_slice(after);
        params
    }
}

/// Adds the host's row from its first snapshot (another server may add it
/// at the same time: then its row stands).
async fn insert_host(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    received: i64,
    taken: i64,
) -> StoreResult<()> {
    let totals = SnapshotTotals::of(&snapshot.processes);
    tx.execute(
        &prepared(
            tx,
            "INSERT INTO host (id, hostname, os_name, os_version, kernel, arch, cpu_count,
             memory_total_bytes, boot_time, agent_version, interval_ms, first_seen, last_seen,
             taken_at, first_taken, newest_id, process_count, cpu_percent_total,
             memory_rss_total_bytes, minute_done, hour_done, labels)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $13, $14, $15,
             $16, $17, $18, $19, $20)
         ON CONFLICT (id) DO NOTHING",
        )
        .await?,
        &HostRow::of(snapshot, received, taken, &totals)
            .params(&[&snapshot.host.id], &[&snapshot.host.labels]),
    )
    .await
    .doing("cannot store the host")
    .map(drop)
}

/// Updates the (locked) host row for a stored snapshot. The facts and
/// totals are the newest snapshot's by the time it was taken, so a late,
/// older snapshot does not overwrite them; roll-up marks go back to the
/// hour and day of a snapshot older than them, so they are rolled up again.
async fn update_host(
    tx: &Transaction<'_>,
    snapshot: &Snapshot,
    received: i64,
    taken: i64,
    totals: &SnapshotTotals,
    key: i64,
    chain: &ChainMark,
) -> StoreResult<()> {
    tx.execute(
        &prepared(
            tx,
            "UPDATE host SET
             hostname = CASE WHEN $13 >= taken_at THEN $2 ELSE hostname END,
             os_name = CASE WHEN $13 >= taken_at THEN $3 ELSE os_name END,
             os_version = CASE WHEN $13 >= taken_at THEN $4 ELSE os_version END,
             kernel = CASE WHEN $13 >= taken_at THEN $5 ELSE kernel END,
             arch = CASE WHEN $13 >= taken_at THEN $6 ELSE arch END,
             cpu_count = CASE WHEN $13 >= taken_at THEN $7 ELSE cpu_count END,
             memory_total_bytes = CASE WHEN $13 >= taken_at THEN $8 ELSE memory_total_bytes END,
             boot_time = CASE WHEN $13 >= taken_at THEN $9 ELSE boot_time END,
             agent_version = CASE WHEN $13 >= taken_at THEN $10 ELSE agent_version END,
             interval_ms = CASE WHEN $13 >= taken_at THEN $11 ELSE interval_ms END,
             labels = CASE WHEN $13 >= taken_at THEN $24 ELSE labels END,
             newest_id = CASE WHEN $13 >= taken_at THEN $14 ELSE newest_id END,
             process_count = CASE WHEN $13 >= taken_at THEN $15 ELSE process_count END,
             cpu_percent_total = CASE WHEN $13 >= taken_at THEN $16 ELSE cpu_percent_total END,
             memory_rss_total_bytes = CASE WHEN $13 >= taken_at THEN $17
                 ELSE memory_rss_total_bytes END,
             taken_at = greatest(taken_at, $13),
             first_seen = least(first_seen, $12),
             first_taken = least(first_taken, $13),
             last_seen = greatest(last_seen, $12),
             minute_done = least(minute_done, $18),
             hour_done = least(hour_done, $19),
             chain_key = $20,
             chain_head = $21,
             chain_length = $22,
             chain_taken = $23
         WHERE key = $1",
        )
        .await?,
        &HostRow::of(snapshot, received, taken, totals).params(
            &[&key],
            &[
                &chain.key,
                &chain.head,
                &chain.length,
                &chain.taken,
                &snapshot.host.labels,
            ],
        ),
    )
    .await
    .doing("cannot store the host")
    .map(drop)
}
