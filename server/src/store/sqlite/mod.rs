//! The SQLite store: one file, WAL mode.
//!
//! One writer connection, owned by [`Writer`] behind a mutex, does every
//! write, each in its own short transaction; readers take pooled
//! connections and, thanks to WAL, never wait for it. All database work
//! runs on tokio's blocking pool, never on the async threads.

mod accounts;
mod actions;
mod alerts;
mod channels;
mod errors;
mod keys;
mod legacy;
mod limits;
mod read;
mod remove;
mod replay;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use procmon_model::{ChangeBatch, HostChanges, Series, Snapshot};
use rusqlite::{Connection, OpenFlags};

use self::errors::Classify;
use self::read::View;
use self::schema::{Block, Kind, DAY, HOUR, MINUTE};
use self::writer::Writer;
use super::chain::nanos;
use super::{
    ChangeOutcome, HostRecord, IngestOutcome, LoadPoint, Maintenance, Retention, SnapshotCheck,
    Store, StoreError, StoreResult, StoredSnapshot, TimeRange,
};

/// How long a write waits for another program's lock before answering
/// that the database is locked: short, so no request waits long.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);
/// A failed write keeps health failing this long, unless a write succeeds.
const FAILURE_REMEMBERED: Duration = Duration::from_secs(30);
/// An hour is rolled up this long after it ends, so that snapshots still
/// on their way are in it (later ones make it be rolled up again).
const LATENESS: i64 = 2 * MINUTE;
/// Host-hours (or host-days) rolled up in one maintenance pass at most.
const ROLLUP_BUDGET: usize = 500;
/// Idle read connections kept.
const IDLE_READERS: usize = 8;

/// Snapshots, hosts and their history in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// `None` once closed.
    writer: Mutex<Option<Writer>>,
    /// Idle read connections, each with the generation of the file it was
    /// opened on.
    readers: Mutex<Vec<(u64, Connection)>>,
    /// Bumped when the file is replaced, so old connections are let go.
    generation: AtomicU64,
    /// The file the connections were opened on (device, inode).
    file: Mutex<Option<(u64, u64)>>,
    /// The last write that could not be done, and when.
    failure: Mutex<Option<(Instant, String)>>,
    /// Budgets and failed sign-ins (in memory: see `limits`).
    limits: limits::MemoryLimits,
}

/// Locks a mutex, going on after a panic elsewhere: what it guards stays
/// consistent, since every change to it is made after the database's.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqliteStore {
    /// Opens (creating if missing, readable only by this user) the database
    /// at `path`, and brings its layout up to date, converting a database
    /// of the first layout without losing what it holds.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .context("the database task failed")?
    }

    fn open_blocking(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        create_private(path)
            .with_context(|| format!("cannot create database {}", path.display()))?;
        keep_private(path);
        let conn =
            connect(path).with_context(|| format!("cannot open database {}", path.display()))?;
        let mut writer = Writer::new(migrate(conn, path)?)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        legacy::convert(&mut writer)
            .with_context(|| format!("cannot convert {} to the new layout", path.display()))?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                file: Mutex::new(file_id(path)),
                failure: Mutex::new(None),
                limits: limits::MemoryLimits::default(),
            }),
        };
        Ok(store)
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| StoreError::Failed(anyhow!("the database task failed: {e}")))?
    }

    /// Runs `work` in one read transaction.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.blocking(move |inner| inner.read(work)).await
    }

    /// Runs `work` in one read transaction that sees history: the blocks
    /// and retention marks, read in that same transaction.
    async fn read_view<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &View) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.blocking(move |inner| inner.read_view(work)).await
    }
}

impl Inner {
    fn read_view<T>(
        &self,
        work: impl FnOnce(&Connection, &View) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.read(|conn| View::load(conn).and_then(|view| work(conn, &view)))
    }

    /// Runs `work` in one read transaction on a pooled connection. (Keys,
    /// sessions and host rows need no view of history, which costs a look
    /// at every table.)
    fn read<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let (generation, conn) = self.reader()?;
        conn.execute_batch("BEGIN").doing("cannot start a read")?;
        let result = work(&conn);
        let ended = conn.execute_batch("COMMIT").doing("cannot end a read");
        if ended.is_ok() {
            let mut idle = lock(&self.readers);
            if idle.len() < IDLE_READERS && generation == self.generation.load(Ordering::SeqCst) {
                idle.push((generation, conn));
            }
        }
        result
    }

    fn reader(&self) -> StoreResult<(u64, Connection)> {
        let generation = self.generation.load(Ordering::SeqCst);
        {
            let mut idle = lock(&self.readers);
            while let Some((g, conn)) = idle.pop() {
                if g == generation {
                    return Ok((g, conn));
                }
            }
        }
        if lock(&self.writer).is_none() {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let conn = connect(&self.path).doing("cannot open the database for reading")?;
        Ok((generation, conn))
    }

    /// Runs `work` with the writer, after making sure the file it writes
    /// is still the one at the path; remembers a write that could not be
    /// done, for health. Only a stored snapshot ([`Inner::write_snapshot`])
    /// forgets it: health's own small write, or maintenance's, can succeed
    /// on a disk too full for any snapshot.
    fn write<T>(&self, work: impl FnOnce(&mut Writer) -> StoreResult<T>) -> StoreResult<T> {
        self.write_as(false, work)
    }

    /// [`Inner::write`] for a snapshot: once one is stored, the store can
    /// write again and a failure before it no longer counts.
    fn write_snapshot<T>(
        &self,
        work: impl FnOnce(&mut Writer) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.write_as(true, work)
    }

    fn write_as<T>(
        &self,
        snapshot: bool,
        work: impl FnOnce(&mut Writer) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut guard = lock(&self.writer);
        let writer = guard
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        let result = self.ensure_file(writer).and_then(|()| work(writer));
        match &result {
            Err(StoreError::Unavailable(why)) => {
                *lock(&self.failure) = Some((Instant::now(), why.clone()));
            }
            Ok(_) if snapshot => *lock(&self.failure) = None,
            _ => {}
        }
        result
    }

    /// Checks that the database file is still the one the connections
    /// write. Deleted while the server runs (a cleaner, a mistaken `rm`),
    /// it is written anew from the copy the open connection still sees,
    /// so nothing acknowledged is lost; replaced by another file (a
    /// restored backup), the connections move to that file.
    fn ensure_file(&self, writer: &mut Writer) -> StoreResult<()> {
        let path = &self.path;
        let now = match std::fs::metadata(path) {
            Ok(m) => Some(id_of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot see the database file {}: {e}",
                    path.display()
                )))
            }
        };
        let opened = *lock(&self.file);
        if now.is_some() && now == opened {
            let wal = sibling(path, "-wal");
            if wal.exists() {
                return Ok(());
            }
            // The log alone was deleted: the connections still write to
            // it, but nothing would find it after a crash, taking every
            // commit since the last checkpoint with it. Move it into the
            // database file through the open connection, then reopen, so
            // that a new log is written where it will be found.
            tracing::warn!(
                path = %wal.display(),
                "the database's -wal file was deleted while the server ran; moving what it held into the database file"
            );
            let busy: i64 = writer
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .doing("the -wal file was deleted, and what it held cannot be saved")?;
            if busy != 0 {
                return Err(StoreError::Unavailable(format!(
                    "{} was deleted, and what it held cannot be saved while reads use it; \
                     try again",
                    wal.display()
                )));
            }
        } else if now.is_none() {
            tracing::warn!(
                path = %path.display(),
                "the database file was deleted while the server ran; writing it anew from the open connection"
            );
            for suffix in ["-wal", "-shm"] {
                let orphan = sibling(path, suffix);
                if orphan.exists() {
                    std::fs::remove_file(&orphan).map_err(|e| {
                        StoreError::Unavailable(format!("cannot remove {}: {e}", orphan.display()))
                    })?;
                }
            }
            create_private(path).map_err(|e| {
                StoreError::Unavailable(format!(
                    "the database file {} was deleted, and cannot be written anew: {e}",
                    path.display()
                ))
            })?;
            let target = path.to_string_lossy().into_owned();
            if let Err(e) = writer.conn.execute("VACUUM INTO ?1", [&target]) {
                let _ = std::fs::remove_file(path);
                return Err(StoreError::Unavailable(format!(
                    "the database file {} was deleted, and cannot be written anew: {e}",
                    path.display()
                )));
            }
        } else {
            tracing::warn!(path = %path.display(), "the database file was replaced; opening the new one");
        }
        let conn = connect(path).doing("cannot open the database file anew")?;
        let conn = migrate(conn, path).map_err(|e| StoreError::Unavailable(format!("{e:#}")))?;
        *writer = Writer::new(conn)?;
        *lock(&self.file) = file_id(path);
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.readers).clear();
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(
        &self,
        snapshot: Arc<Snapshot>,
        received_at: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome> {
        self.blocking(move |inner| {
            inner.write_snapshot(|w| w.ingest(&snapshot, nanos(received_at)))
        })
        .await
    }

    async fn ingest_changes(
        &self,
        batch: Arc<ChangeBatch>,
        received_at: DateTime<Utc>,
        check: SnapshotCheck,
    ) -> StoreResult<ChangeOutcome> {
        self.blocking(move |inner| {
            let outcome = inner.write(|w| w.ingest_changes(&batch, nanos(received_at), check))?;
            if matches!(outcome, ChangeOutcome::Stored(_)) {
                // As `write_snapshot`: the store writes snapshots again.
                *lock(&inner.failure) = None;
            }
            Ok(outcome)
        })
        .await
    }

    async fn hosts(&self) -> StoreResult<Vec<HostRecord>> {
        self.read(|conn| Ok(read::hosts(conn)?.into_iter().map(|h| h.record).collect()))
            .await
    }

    async fn host(&self, host_id: &str) -> StoreResult<Option<HostRecord>> {
        let host_id = host_id.to_owned();
        self.read(move |conn| Ok(read::host(conn, &host_id)?.map(|h| h.record)))
            .await
    }

    async fn hosts_named(&self, hostname: &str) -> StoreResult<Vec<String>> {
        let hostname = hostname.to_owned();
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached("SELECT id FROM host WHERE hostname = ?1")
                .doing("cannot read the hosts")?;
            let ids = s
                .query_map([hostname], |r| r.get(0))
                .doing("cannot read the hosts")?;
            ids.collect::<Result<_, _>>().doing("cannot read the hosts")
        })
        .await
    }

    async fn snapshot(
        &self,
        host_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<StoredSnapshot>> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, view| read::snapshot(conn, view, &host_id, at.map(nanos)))
            .await
    }

    async fn snapshot_by_id(
        &self,
        host_id: &str,
        id: uuid::Uuid,
    ) -> StoreResult<Option<StoredSnapshot>> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, view| read::snapshot_by_id(conn, view, &host_id, id))
            .await
    }

    async fn load_points(&self, host_id: &str, from: DateTime<Utc>) -> StoreResult<Vec<LoadPoint>> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, _| read::load_points(conn, &host_id, nanos(from)))
            .await
    }

    async fn process_series(
        &self,
        host_id: &str,
        pid: u32,
        start_time: DateTime<Utc>,
        range: TimeRange,
        max_points: usize,
    ) -> StoreResult<Series> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, view| {
            read::process_series(
                conn,
                view,
                &host_id,
                (pid, nanos(start_time)),
                range,
                max_points,
            )
        })
        .await
    }

    async fn host_series(
        &self,
        host_id: &str,
        range: TimeRange,
        max_points: usize,
    ) -> StoreResult<Series> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, view| read::host_series(conn, view, &host_id, range, max_points))
            .await
    }

    async fn changes(
        &self,
        host_id: &str,
        range: TimeRange,
        limit: usize,
    ) -> StoreResult<HostChanges> {
        let host_id = host_id.to_owned();
        self.read_view(move |conn, view| read::changes(conn, view, &host_id, range, limit))
            .await
    }

    async fn maintain(&self, now: DateTime<Utc>, retention: Retention) -> StoreResult<Maintenance> {
        self.blocking(move |inner| maintain(inner, nanos(now), retention))
            .await
    }

    async fn remove_host(&self, host_id: &str) -> StoreResult<bool> {
        let host_id = host_id.to_owned();
        self.blocking(move |inner| remove::remove_host(inner, &host_id))
            .await
    }

    async fn count_snapshots(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let mut total = 0u64;
            for block in schema::blocks(conn)?
                .into_iter()
                .filter(|b| b.kind == Kind::Raw)
            {
                let count: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM {}", block.table()),
                        [],
                        |r| r.get(0),
                    )
                    .doing("cannot count the snapshots")?;
                total += count.unsigned_abs();
            }
            Ok(total)
        })
        .await
    }

    async fn check(&self) -> StoreResult<()> {
        self.blocking(|inner| {
            inner.read_view(|_, _| Ok(()))?;
            inner.write(|w| {
                w.transaction(|conn| {
                    conn.prepare_cached(
                        "INSERT INTO meta (name, value) VALUES ('checked_at', ?1)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .and_then(|mut s| s.execute([nanos(Utc::now())]))
                    .doing("cannot write to the database")
                    .map(drop)
                })
            })?;
            Ok(())
        })
        .await?;
        // A snapshot write that failed lately still counts: a probe this
        // small can succeed where a snapshot does not (a full disk).
        match &*lock(&self.inner.failure) {
            Some((when, why)) if when.elapsed() < FAILURE_REMEMBERED => {
                Err(StoreError::Unavailable(why.clone()))
            }
            _ => Ok(()),
        }
    }

    async fn close(&self) {
        let inner = Arc::clone(&self.inner);
        let _ = tokio::task::spawn_blocking(move || {
            lock(&inner.readers).clear();
            lock(&inner.writer).take();
        })
        .await;
    }
}

/// One maintenance pass: retention marks, roll-ups, then expired blocks.
fn maintain(inner: &Inner, now: i64, retention: Retention) -> StoreResult<Maintenance> {
    let cut =
        |keep: Duration| now.saturating_sub(i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX));
    let (raw_cut, minute_cut, hour_cut) = (
        cut(retention.raw),
        cut(retention.minute),
        cut(retention.hour),
    );
    let mut done = Maintenance::default();

    inner.write(|w| {
        w.transaction(|conn| {
            let mut s = conn
                .prepare_cached(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                )
                .doing("cannot write the retention marks")?;
            for (name, value) in [
                ("raw_from", raw_cut),
                ("minute_from", minute_cut),
                ("hour_from", hour_cut),
            ] {
                s.execute(rusqlite::params![name, value])
                    .doing("cannot write the retention marks")?;
            }
            Ok(())
        })
    })?;

    // Roll-ups, host-hour by host-hour, each computed on a reader and
    // written in a short transaction that checks nothing moved meanwhile.
    let mut budget = ROLLUP_BUDGET;
    let hosts = inner.read(read::hosts)?;
    for host in &hosts {
        let mut mark = host.minute_done;
        while budget > 0 && mark + HOUR <= now - LATENESS {
            budget -= 1;
            let (next, rollup) = inner.read_view(|conn, view| {
                let block = Block::of(Kind::Raw, mark);
                if view.blocks.contains(&block) && block.end() > view.raw_from {
                    Ok((
                        mark + HOUR,
                        Some(read::roll_up_hour(conn, view, host.key, mark)?),
                    ))
                } else {
                    // Nothing to roll up: on to the next hour that has data.
                    let next = view
                        .raw()
                        .into_iter()
                        .map(Block::start)
                        .find(|&s| s > mark)
                        .unwrap_or(now - LATENESS - (now - LATENESS).rem_euclid(HOUR));
                    Ok((next.max(mark + HOUR), None))
                }
            })?;
            let moved = inner.write(|w| {
                w.transaction(|conn| {
                    if let Some(rollup) = &rollup {
                        write_rollup(conn, Kind::Minute, host.key, mark, rollup)?;
                    }
                    advance(conn, "minute_done", host.key, mark, next)
                })
            })?;
            if !moved {
                break;
            }
            done.minute_rollups += u64::from(rollup.is_some());
            mark = next;
        }
        let minute_mark = mark;
        let mut mark = host.hour_done;
        while budget > 0 && mark + DAY <= minute_mark {
            budget -= 1;
            let rollup =
                inner.read_view(|conn, view| read::roll_up_day(conn, view, host.key, mark))?;
            let has = !rollup.host.is_empty();
            let moved = inner.write(|w| {
                w.transaction(|conn| {
                    if has {
                        write_rollup(conn, Kind::Hour, host.key, mark, &rollup)?;
                    }
                    advance(conn, "hour_done", host.key, mark, mark + DAY)
                })
            })?;
            if !moved {
                break;
            }
            done.hour_rollups += u64::from(has);
            mark += DAY;
        }
    }

    // Whole blocks past retention, once every host's roll-ups cover them.
    let hosts = inner.read(read::hosts)?;
    let minute_done = hosts
        .iter()
        .map(|h| h.minute_done)
        .min()
        .unwrap_or(i64::MAX);
    let hour_done = hosts.iter().map(|h| h.hour_done).min().unwrap_or(i64::MAX);
    let blocks = inner.read_view(|_, view| Ok(view.blocks.clone()))?;
    for block in blocks {
        let expired = match block.kind {
            Kind::Raw => block.end() <= raw_cut && block.end() <= minute_done,
            Kind::Minute => block.end() <= minute_cut && block.end() <= hour_done,
            Kind::Hour => block.end() <= hour_cut,
        };
        if expired {
            inner.write(|w| {
                w.transaction(|conn| block.drop_tables(conn))?;
                w.dropped(block);
                Ok(())
            })?;
            done.blocks_dropped += 1;
        }
    }
    done.hosts_removed = inner.write(|w| {
        w.transaction(|conn| {
            conn.prepare_cached("DELETE FROM host WHERE taken_at < ?1 AND last_seen < ?1")
                .and_then(|mut s| s.execute([hour_cut]))
                .doing("cannot remove old hosts")
        })
    })? as u64;
    if done.hosts_removed > 0 {
        inner.write(|w| w.forget())?;
    }
    Ok(done)
}

/// Moves a host's roll-up mark from `from` to `to`, if no snapshot moved it
/// meanwhile; false when one did (the work is then done again next pass).
fn advance(conn: &Connection, mark: &str, host: i64, from: i64, to: i64) -> StoreResult<bool> {
    let moved = conn
        .prepare_cached(&format!(
            "UPDATE host SET {mark} = ?3 WHERE key = ?1 AND {mark} = ?2"
        ))
        .and_then(|mut s| s.execute(rusqlite::params![host, from, to]))
        .doing("cannot advance the roll-up mark")?;
    Ok(moved == 1)
}

/// Writes the roll-up rows of one period (an hour of minute buckets, or a
/// day of hour buckets).
fn write_rollup(
    conn: &Connection,
    kind: Kind,
    host: i64,
    period: i64,
    rollup: &read::HourRollup,
) -> StoreResult<()> {
    let block = Block::of(kind, period);
    block.create(conn)?;
    let width = if kind == Kind::Minute { MINUTE } else { HOUR };
    let mut rows = conn
        .prepare_cached(&format!(
            "INSERT OR REPLACE INTO {} (host, pid, start_time, period, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            block.table()
        ))
        .doing("cannot write roll-ups")?;
    for ((pid, start), buckets) in &rollup.processes {
        rows.execute(rusqlite::params![
            host,
            pid,
            start,
            period,
            super::rollup::encode(period, width, buckets)
        ])
        .doing("cannot write roll-ups")?;
    }
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} (host, period, data) VALUES (?1, ?2, ?3)",
        block.host_table()
    ))
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            host,
            period,
            super::rollup::encode(period, width, &rollup.host)
        ])
    })
    .doing("cannot write roll-ups")?;
    Ok(())
}

/// A connection as the store uses them.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    // With WAL, NORMAL loses no committed transaction when the process
    // dies; only a power cut can take the last moments' commits.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(512);
    keep_wal_on_close(&conn);
    Ok(conn)
}

/// Tells SQLite not to delete the `-wal` file when a connection closes.
/// SQLite deletes it by name: a connection to a database file that was
/// deleted and written anew would otherwise delete the new file's log.
fn keep_wal_on_close(conn: &Connection) {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is valid for the connection's life; the file
    // control reads and writes one int through the pointer given.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::ffi::c_int).cast(),
        );
    }
}

/// Creates the base tables and records the layout version.
fn migrate(conn: Connection, path: &Path) -> anyhow::Result<Connection> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    anyhow::ensure!(
        version <= schema::VERSION,
        "{} was written by a newer procmon (layout {version}; this one knows up to {})",
        path.display(),
        schema::VERSION
    );
    conn.execute_batch(schema::BASE)
        .and_then(|()| conn.execute_batch(keys::TABLES))
        .and_then(|()| conn.execute_batch(accounts::TABLES))
        .and_then(|()| conn.execute_batch(alerts::TABLES))
        .and_then(|()| conn.execute_batch(channels::TABLES))
        .and_then(|()| conn.execute_batch(actions::TABLES))
        .with_context(|| format!("cannot create the tables in {}", path.display()))?;
    if version < 5 {
        schema::to_layout_5(&conn)
            .with_context(|| format!("cannot bring {} to layout 5", path.display()))?;
    }
    if version < 6 {
        schema::to_layout_6(&conn)
            .with_context(|| format!("cannot bring {} to layout 6", path.display()))?;
    }
    if version < 7 {
        schema::to_layout_7(&conn)
            .with_context(|| format!("cannot bring {} to layout 7", path.display()))?;
    }
    // Not a layout of its own: any layout's alert table may lack them.
    alerts::add_flap_columns(&conn)
        .with_context(|| format!("cannot add flap damping to {}", path.display()))?;
    conn.pragma_update(None, "user_version", schema::VERSION)?;
    Ok(conn)
}

/// Creates `path` empty with mode 0600 if it does not exist: the database
/// holds command lines, which can hold secrets. SQLite gives its `-wal`
/// and `-shm` files the database file's mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    match crate::private::create_new_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes other users' access away from a database file made by an older
/// version, which left it readable by every local user.
fn keep_private(path: &Path) {
    #[cfg(unix)]
    for file in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.permissions().mode() & 0o077 != 0 {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::info!(path = %file.display(), "made the database file private (0600)")
                }
                Err(e) => {
                    tracing::warn!(path = %file.display(), error = %e, "the database file is readable by other users and cannot be made private")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| id_of(&m))
}

#[cfg(unix)]
fn id_of(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn id_of(m: &std::fs::Metadata) -> (u64, u64) {
    // No inode numbers to compare: creation time tells a new file.
    let created = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    (0, created)
}
