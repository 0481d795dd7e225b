//! The one connection that writes, and what it keeps in memory between
//! writes: each host's current chain (its processes by identity, so the
//! next snapshot is encoded as a delta without asking SQL which processes
//! exist), and which raw blocks exist with their next free row number.
//! That memory is a cache: it is rebuilt from the database when a host is
//! first written after start.
//!
//! Every write is one `BEGIN IMMEDIATE ... COMMIT`; when anything in it
//! fails, the writer rolls back (or finds SQLite already did) and changes
//! nothing in memory, so the next write starts clean.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use procmon_model::{ChangeBatch, Snapshot};
use rusqlite::{params, Connection, OptionalExtension};

use super::errors::Classify;
use super::read::{self, View};
use super::replay;
use super::schema::{Block, Kind, DAY, HOUR};
use crate::store::chain::{nanos, Chain};
use crate::store::changes::{make_snapshot, rebuild_base};
use crate::store::load::LoadRow;
use crate::store::{
    ChangeOutcome, HostMeters, IngestOutcome, SnapshotCheck, SnapshotTotals, StoreError,
    StoreResult,
};

/// Longest chain of deltas before a new keyframe: bounds what a read of
/// one snapshot replays (at 2 s, a keyframe every 8.5 minutes).
pub const CHAIN_MAX: u32 = 256;

/// Raw blocks one lookup of a snapshot id asks at once: well under
/// SQLite's limit of 500 terms in one compound SELECT.
const BLOCKS_PER_LOOKUP: usize = 100;

/// A host's chain as the writer continues it.
struct Live {
    block: Block,
    keyframe: i64,
    length: u32,
    last_taken: i64,
    chain: Chain,
}

/// What the writer knows of a host.
struct HostState {
    key: i64,
    live: Option<Live>,
}

pub struct Writer {
    pub conn: Connection,
    hosts: HashMap<String, HostState>,
    /// Raw blocks that exist, with the next row number of each (loaded
    /// when first written).
    raw: BTreeSet<Block>,
    next_seq: HashMap<Block, i64>,
    /// Each host's newest snapshot as a change batch's base, once one was
    /// stored or asked for since start: shared with the live state, so it
    /// costs no second copy. A cache: it is rebuilt from the database.
    bases: HashMap<String, Arc<Snapshot>>,
}

/// How a snapshot goes into its block.
enum Form {
    /// Continues the host's chain.
    Delta,
    /// Starts a new chain that later snapshots continue.
    NewChain,
    /// A keyframe of its own: it arrived after newer ones (a retry, a
    /// backlog), so the host's chain goes on without it.
    Standalone,
}

impl Writer {
    pub fn new(conn: Connection) -> StoreResult<Self> {
        let raw = super::schema::blocks(&conn)?
            .into_iter()
            .filter(|b| b.kind == Kind::Raw)
            .collect();
        Ok(Self {
            conn,
            hosts: HashMap::new(),
            raw,
            next_seq: HashMap::new(),
            bases: HashMap::new(),
        })
    }

    /// Forgets everything kept in memory (after the file was replaced).
    pub fn forget(&mut self) -> StoreResult<()> {
        self.hosts.clear();
        self.next_seq.clear();
        self.bases.clear();
        self.raw = super::schema::blocks(&self.conn)?
            .into_iter()
            .filter(|b| b.kind == Kind::Raw)
            .collect();
        Ok(())
    }

    /// Forgets a host removed from the database: its next snapshot, if
    /// one comes, starts it anew.
    pub fn forget_host(&mut self, host_id: &str) {
        self.hosts.remove(host_id);
        self.bases.remove(host_id);
    }

    /// Raw blocks dropped by maintenance are forgotten here too.
    pub fn dropped(&mut self, block: Block) {
        self.raw.remove(&block);
        self.next_seq.remove(&block);
        for host in self.hosts.values_mut() {
            if host.live.as_ref().is_some_and(|l| l.block == block) {
                host.live = None;
            }
        }
    }

    /// Runs `work` in one write transaction: committed when it succeeds,
    /// rolled back (whatever state SQLite is in) when anything fails.
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .doing("cannot start a write")?;
        let done = work(&self.conn).and_then(|value| {
            self.conn
                .execute_batch("COMMIT")
                .doing("cannot commit")
                .map(|()| value)
        });
        if done.is_err() && !self.conn.is_autocommit() {
            // SQLite may have rolled back by itself (a full disk does);
            // otherwise this does. Either way the next write starts clean.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        done
    }

    /// Applies a change batch to the host's newest snapshot, if that is its
    /// base, and stores what it makes. The writer is the only one that
    /// writes, so the look at the newest snapshot and the write cannot be
    /// split by another.
    pub fn ingest_changes(
        &mut self,
        batch: &ChangeBatch,
        received: i64,
        check: SnapshotCheck,
    ) -> StoreResult<ChangeOutcome> {
        match self.stored_before(&batch.id, &batch.host_id)? {
            Some(IngestOutcome::IdTakenByOtherHost) => {
                return Ok(ChangeOutcome::IdTakenByOtherHost)
            }
            Some(_) => return Ok(ChangeOutcome::AlreadyStored),
            None => {}
        }
        let Some(base) = self.newest(&batch.host_id)? else {
            return Ok(ChangeOutcome::BaseUnknown);
        };
        let made = match make_snapshot(&base, batch, check) {
            Ok(made) => Arc::new(made),
            Err(outcome) => return Ok(outcome),
        };
        self.store_new(&made, received)?;
        Ok(ChangeOutcome::Stored(made))
    }

    /// The host's newest snapshot: kept since it was stored, or read back
    /// (after a restart, a replaced file).
    fn newest(&mut self, host_id: &str) -> StoreResult<Option<Arc<Snapshot>>> {
        if let Some(base) = self.bases.get(host_id) {
            return Ok(Some(Arc::clone(base)));
        }
        let Some(host) = read::host(&self.conn, host_id)? else {
            return Ok(None);
        };
        let view = View::load(&self.conn)?;
        let Some(stored) = read::snapshot(&self.conn, &view, host_id, None)? else {
            return Ok(None);
        };
        let base = Arc::new(rebuild_base(stored, &host.record));
        self.bases.insert(host_id.to_owned(), Arc::clone(&base));
        Ok(Some(base))
    }

    /// Stores one snapshot (already validated), unless its id was stored
    /// before.
    pub fn ingest(
        &mut self,
        snapshot: &Arc<Snapshot>,
        received: i64,
    ) -> StoreResult<IngestOutcome> {
        if let Some(before) = self.stored_before(&snapshot.id, &snapshot.host.id)? {
            return Ok(before);
        }
        self.store_new(snapshot, received)?;
        Ok(IngestOutcome::Stored)
    }

    /// Whether a snapshot of this id was stored before, however long ago:
    /// from this host (a retry) or from another.
    fn stored_before(&self, id: &uuid::Uuid, host_id: &str) -> StoreResult<Option<IngestOutcome>> {
        let Some(owner) = self.owner_of(id.as_bytes())? else {
            return Ok(None);
        };
        Ok(Some(if Some(owner) == self.host_key(host_id)? {
            IngestOutcome::AlreadyStored
        } else {
            IngestOutcome::IdTakenByOtherHost
        }))
    }

    /// Stores a snapshot whose id is not stored yet.
    fn store_new(&mut self, snapshot: &Arc<Snapshot>, received: i64) -> StoreResult<()> {
        let collected = nanos(snapshot.collected_at);
        // Never later than its arrival: a clock running ahead cannot make a
        // snapshot hide every later one.
        let taken = collected.min(received);
        let block = Block::of(Kind::Raw, taken);
        let id = snapshot.id.as_bytes().to_vec();
        self.load_host(&snapshot.host.id)?;
        let (form, payload, live_keyframe) = {
            let live = self
                .hosts
                .get(&snapshot.host.id)
                .and_then(|h| h.live.as_ref());
            let form = match live {
                Some(l) if taken < l.last_taken => Form::Standalone,
                Some(l) if l.block == block && l.length < CHAIN_MAX => Form::Delta,
                _ => Form::NewChain,
            };
            let payload = match (&form, live) {
                (Form::Delta, Some(l)) => l.chain.encode_delta(&snapshot.processes),
                _ => Chain::encode_keyframe(&snapshot.processes),
            };
            (form, payload, live.map(|l| l.keyframe))
        };
        let stored = payload.stored();
        let seq = self.next_seq(block)?;
        let chain_id = match (&form, live_keyframe) {
            (Form::Delta, Some(keyframe)) => keyframe,
            _ => seq,
        };
        let totals = SnapshotTotals::of(&snapshot.processes);
        let meters = HostMeters::of(snapshot.load.as_ref());
        let exists = self.raw.contains(&block);

        let key = self.transaction(|conn| {
            if !exists {
                block.create(conn)?;
            }
            let key = upsert_host(conn, snapshot, received, taken, &totals)?;
            conn.prepare_cached(&format!(
                "INSERT INTO {} (seq, host, id, taken_at, collected_at, received_at,
                     interval_ms, chain, process_count, cpu_percent_total,
                     memory_rss_total_bytes, data, cpu_machine_percent, memory_used_bytes,
                     memory_available_bytes, swap_used_bytes, swap_total_bytes, load_1m)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     ?16, ?17, ?18)",
                block.table()
            ))
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    key,
                    id,
                    taken,
                    collected,
                    received,
                    int(snapshot.interval_ms),
                    chain_id,
                    totals.process_count,
                    totals.cpu_percent,
                    int(totals.memory_rss_bytes),
                    stored,
                    meters.cpu_machine_percent,
                    meters.memory_used_bytes.map(int),
                    meters.memory_available_bytes.map(int),
                    meters.swap_used_bytes.map(int),
                    meters.swap_total_bytes.map(int),
                    meters.load_1m,
                ])
            })
            .doing("cannot store the snapshot")?;
            write_load(conn, &snapshot.host.id, &LoadRow::of(snapshot, taken))?;
            Ok(key)
        })?;

        // Committed: bring the memory up to date.
        self.raw.insert(block);
        self.next_seq.insert(block, seq + 1);
        let host = self
            .hosts
            .entry(snapshot.host.id.clone())
            .or_insert(HostState { key, live: None });
        host.key = key;
        if !matches!(form, Form::Standalone) {
            // Taken no earlier than the chain's last: the host's newest now.
            self.bases
                .insert(snapshot.host.id.clone(), Arc::clone(snapshot));
        }
        match form {
            Form::Standalone => {}
            Form::Delta => {
                let live = host.live.as_mut().expect("a delta continues a live chain");
                live.chain
                    .apply(payload.payload(), None)
                    .map_err(StoreError::Failed)?;
                live.length += 1;
                live.last_taken = taken;
            }
            Form::NewChain => {
                let mut chain = Chain::default();
                chain
                    .apply(payload.payload(), None)
                    .map_err(StoreError::Failed)?;
                host.live = Some(Live {
                    block,
                    keyframe: seq,
                    length: 1,
                    last_taken: taken,
                    chain,
                });
            }
        }
        Ok(())
    }

    /// The host key of the snapshot with this id, looking in the raw blocks
    /// of the given times (where a retry of it must be).
    /// The host that stored snapshot `id`, in whichever raw block holds
    /// it: a retry may come back after any time the agent spooled it, so
    /// every block still stored is asked, newest first. Each has a unique
    /// index on `id`, so that is one index lookup per block, a few hundred
    /// at most, in statements of [`BLOCKS_PER_LOOKUP`] blocks.
    fn owner_of(&self, id: &[u8]) -> StoreResult<Option<i64>> {
        let newest_first: Vec<Block> = self.raw.iter().rev().copied().collect();
        for blocks in newest_first.chunks(BLOCKS_PER_LOOKUP) {
            let sql = blocks
                .iter()
                .map(|b| format!("SELECT host FROM {} WHERE id = ?1", b.table()))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
                + " LIMIT 1";
            let owner = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row([id], |row| row.get(0)).optional())
                .doing("cannot look up the snapshot id")?;
            if owner.is_some() {
                return Ok(owner);
            }
        }
        Ok(None)
    }

    fn host_key(&self, host_id: &str) -> StoreResult<Option<i64>> {
        if let Some(h) = self.hosts.get(host_id) {
            return Ok(Some(h.key));
        }
        self.conn
            .prepare_cached("SELECT key FROM host WHERE id = ?1")
            .and_then(|mut s| s.query_row([host_id], |row| row.get(0)).optional())
            .doing("cannot read the host")
    }

    /// Loads what the writer keeps of a host, if it is stored and not yet
    /// in memory: its key, and its newest chain rebuilt from its block.
    fn load_host(&mut self, host_id: &str) -> StoreResult<()> {
        if self.hosts.contains_key(host_id) {
            return Ok(());
        }
        let Some((key, taken)) = self
            .conn
            .prepare_cached("SELECT key, taken_at FROM host WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([host_id], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))
                    .optional()
            })
            .doing("cannot read the host")?
        else {
            return Ok(());
        };
        let block = Block::of(Kind::Raw, taken);
        let mut live = None;
        if self.raw.contains(&block) {
            if let Some(head) = replay::head_at(&self.conn, &[block], key, taken, i64::MIN)? {
                let (chain, length) = replay::rebuild(&self.conn, &head)?;
                live = Some(Live {
                    block,
                    keyframe: head.chain,
                    length,
                    last_taken: head.taken_at,
                    chain,
                });
            }
        }
        self.hosts
            .insert(host_id.to_owned(), HostState { key, live });
        Ok(())
    }

    fn next_seq(&mut self, block: Block) -> StoreResult<i64> {
        if let Some(&seq) = self.next_seq.get(&block) {
            return Ok(seq);
        }
        let seq = if self.raw.contains(&block) {
            self.conn
                .query_row(
                    &format!("SELECT coalesce(max(seq), 0) + 1 FROM {}", block.table()),
                    [],
                    |row| row.get(0),
                )
                .doing("cannot read a history table")?
        } else {
            1
        };
        self.next_seq.insert(block, seq);
        Ok(seq)
    }
}

/// Inserts or updates the host row; returns its key. The facts and totals
/// are the newest snapshot's by the time it was taken, so a late, older
/// snapshot does not overwrite them; roll-up marks go back to the hour
/// and day of a snapshot older than them, so that they are rolled up again.
fn upsert_host(
    conn: &Connection,
    snapshot: &Snapshot,
    received: i64,
    taken: i64,
    totals: &SnapshotTotals,
) -> StoreResult<i64> {
    let h = &snapshot.host;
    conn.prepare_cached(
        "INSERT INTO host (id, hostname, os_name, os_version, kernel, arch, cpu_count,
             memory_total_bytes, boot_time, agent_version, interval_ms, first_seen, last_seen,
             taken_at, process_count, cpu_percent_total, memory_rss_total_bytes,
             minute_done, hour_done, first_taken, labels)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16,
             ?17, ?18, ?13, ?19)
         ON CONFLICT (id) DO UPDATE SET
             hostname = iif(excluded.taken_at >= taken_at, excluded.hostname, hostname),
             os_name = iif(excluded.taken_at >= taken_at, excluded.os_name, os_name),
             os_version = iif(excluded.taken_at >= taken_at, excluded.os_version, os_version),
             kernel = iif(excluded.taken_at >= taken_at, excluded.kernel, kernel),
             arch = iif(excluded.taken_at >= taken_at, excluded.arch, arch),
             cpu_count = iif(excluded.taken_at >= taken_at, excluded.cpu_count, cpu_count),
             memory_total_bytes = iif(excluded.taken_at >= taken_at,
                 excluded.memory_total_bytes, memory_total_bytes),
             boot_time = iif(excluded.taken_at >= taken_at, excluded.boot_time, boot_time),
             agent_version = iif(excluded.taken_at >= taken_at,
                 excluded.agent_version, agent_version),
             interval_ms = iif(excluded.taken_at >= taken_at, excluded.interval_ms, interval_ms),
             labels = iif(excluded.taken_at >= taken_at, excluded.labels, labels),
             process_count = iif(excluded.taken_at >= taken_at,
                 excluded.process_count, process_count),
             cpu_percent_total = iif(excluded.taken_at >= taken_at,
                 excluded.cpu_percent_total, cpu_percent_total),
             memory_rss_total_bytes = iif(excluded.taken_at >= taken_at,
                 excluded.memory_rss_total_bytes, memory_rss_total_bytes),
             taken_at = max(taken_at, excluded.taken_at),
             first_seen = min(first_seen, excluded.first_seen),
             first_taken = min(coalesce(first_taken, excluded.first_taken), excluded.first_taken),
             last_seen = max(last_seen, excluded.last_seen),
             minute_done = min(minute_done, excluded.minute_done),
             hour_done = min(hour_done, excluded.hour_done)
         RETURNING key",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                h.id,
                h.hostname,
                h.os_name,
                h.os_version,
                h.kernel,
                h.arch,
                h.cpu_count,
                int(h.memory_total_bytes),
                nanos(h.boot_time),
                h.agent_version,
                int(snapshot.interval_ms),
                received,
                taken,
                totals.process_count,
                totals.cpu_percent,
                int(totals.memory_rss_bytes),
                taken - taken.rem_euclid(HOUR),
                taken - taken.rem_euclid(DAY),
                super::read::labels_text(&h.labels),
            ],
            |row| row.get(0),
        )
    })
    .doing("cannot store the host")
}

/// SQLite integers are signed; counts past i64::MAX (only ever bogus
/// readings) are stored as i64::MAX.
/// Adds the host's load point, and lets its expired ones go.
fn write_load(conn: &Connection, host_id: &str, point: &LoadRow) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO load_point (host_id, taken_at, collected_at, cpu_percent,
             memory_rss_bytes, processes, host_load)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            host_id,
            point.taken,
            point.at,
            point.cpu_percent,
            point.memory_rss_bytes,
            point.processes,
            point.load,
        ])
    })
    .and_then(|_| {
        conn.prepare_cached("DELETE FROM load_point WHERE host_id = ?1 AND taken_at < ?2")
            .and_then(|mut s| s.execute(params![host_id, point.expired_before()]))
    })
    .doing("cannot store the host's load")
    .map(drop)
}

pub fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
