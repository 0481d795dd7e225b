//! The PostgreSQL store: several servers can share one database.
//!
//! Connections come from a pool (deadpool-postgres over tokio-postgres).
//! Every write is one transaction that locks the host's row, so two servers
//! writing one host take turns; what each server keeps in memory (chains,
//! which partitions exist) is a cache that the database overrules.
//!
//! The connection to the database is plain (`NoTls`): the database is
//! expected on the same host or a private network for now; TLS to it is
//! not built in yet.

mod accounts;
mod actions;
mod alerts;
mod changes;
mod channels;
mod errors;
mod keys;
mod limits;
mod maintain;
mod notify;
mod read;
mod replay;
mod schema;
mod writer;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use procmon_model::{ChangeBatch, HostChanges, Series, Snapshot};
use tokio_postgres::{IsolationLevel, NoTls, Transaction};

use self::errors::Classify;
use self::read::View;
pub use self::schema::MAINTENANCE_LOCK;
use self::schema::{Block, MIGRATIONS, MIGRATION_LOCK};
use self::writer::Live;
use super::chain::nanos;
use super::{
    ChangeOutcome, HostRecord, IngestOutcome, Maintenance, Retention, SnapshotCheck, Store,
    StoreError, StoreResult, StoredSnapshot, TimeRange,
};

/// Connections kept at most.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, or to make one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Snapshots, hosts and their history in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.inner.name)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    /// Where the database is, without the password, for messages.
    name: String,
    /// Each host's chain as this server last wrote it.
    chains: Mutex<HashMap<String, Live>>,
    /// Each host's newest snapshot as this server last stored it: the
    /// base of the host's next change batch, if nobody stored another.
    bases: Mutex<HashMap<String, Arc<Snapshot>>>,
    /// Partitions this server knows to exist.
    partitions: Mutex<HashSet<Block>>,
    /// How to connect, for the connection that listens to other servers.
    config: tokio_postgres::Config,
    /// Names this server in what it tells the others (see [`notify`]).
    server_id: uuid::Uuid,
    /// Whether the listener was started (it is started once).
    listening: std::sync::atomic::AtomicBool,
}

/// Locks a mutex, going on after a panic elsewhere: what it guards is a
/// cache that the database overrules.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `user@host:port/dbname` of a configuration: never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{port}/{}",
        config.get_user().unwrap_or("(default user)"),
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    )
}

/// Why connecting failed, in words that say what to fix.
fn connect_error(error: &tokio_postgres::Error, name: &str) -> String {
    match error.code().map(|c| c.code()) {
        Some("28P01") | Some("28000") => {
            format!("PostgreSQL at {name} refused the user name or password")
        }
        Some("3D000") => format!("the database of {name} does not exist"),
        _ => match error.as_db_error() {
            Some(db) => format!(
                "PostgreSQL at {name} refused the connection: {}",
                db.message()
            ),
            None => {
                let mut why = error.to_string();
                let mut source = std::error::Error::source(error);
                while let Some(s) = source {
                    why = s.to_string();
                    source = s.source();
                }
                format!("cannot reach PostgreSQL at {name}: {why}")
            }
        },
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`)
    /// and brings its tables up to date. Errors say what is wrong (the
    /// server cannot be reached, the credentials are refused) and never
    /// show the password.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        // The parser's own messages do not repeat the URL, so they cannot
        // leak its password.
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| anyhow::anyhow!("the database URL is not a PostgreSQL URL: {e}"))?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("procmon-server");
        let name = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .context("cannot set up the connection pool")?;
        let mut conn = pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => anyhow::anyhow!(connect_error(&e, &name)),
            other => anyhow::anyhow!("cannot connect to PostgreSQL at {name}: {other}"),
        })?;
        migrate(&mut conn)
            .await
            .with_context(|| format!("cannot bring the database {name} up to date"))?;
        let partitions = schema::blocks(&**conn)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot read the history partitions of {name}"))?;
        drop(conn);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                name,
                chains: Mutex::new(HashMap::new()),
                bases: Mutex::new(HashMap::new()),
                partitions: Mutex::new(partitions.into_iter().collect()),
                config,
                server_id: uuid::Uuid::new_v4(),
                listening: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }
}

impl PostgresStore {
    /// Tells the other servers of the database, once committed, that this
    /// one stored `snapshot_id` (see [`notify`]).
    fn announce(&self, host_id: &str, snapshot_id: uuid::Uuid) {
        notify::announce(&self.inner.pool, self.inner.server_id, host_id, snapshot_id);
    }
}

/// Starts a read: one consistent view (repeatable read), read-only.
async fn start_read(
    conn: &mut deadpool_postgres::Object,
) -> StoreResult<deadpool_postgres::Transaction<'_>> {
    conn.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .doing("cannot start a read")
}

/// Applies the migrations not yet applied, under an advisory lock so that
/// servers starting at once migrate once.
async fn migrate(conn: &mut deadpool_postgres::Object) -> anyhow::Result<()> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("cannot take the migration lock")?;
    let done = migrate_locked(conn).await;
    let unlocked = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    done?;
    unlocked.context("cannot release the migration lock")?;
    Ok(())
}

async fn migrate_locked(conn: &mut deadpool_postgres::Object) -> anyhow::Result<()> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS procmon_migration (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .context("cannot create the migrations table")?;
    let version: i32 = conn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM procmon_migration",
            &[],
        )
        .await
        .context("cannot read the layout version")?
        .get(0);
    anyhow::ensure!(
        version as usize <= MIGRATIONS.len(),
        "the database was written by a newer procmon (layout {version}; this one knows up to {})",
        MIGRATIONS.len()
    );
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let number = i as i32 + 1;
        let tx = conn.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("migration {number} failed"))?;
        tx.execute(
            "INSERT INTO procmon_migration (version) VALUES ($1)",
            &[&number],
        )
        .await?;
        tx.commit()
            .await
            .with_context(|| format!("cannot commit migration {number}"))?;
    }
    Ok(())
}

impl Inner {
    fn take_live(&self, host_id: &str) -> Option<Live> {
        lock(&self.chains).remove(host_id)
    }

    fn put_live(&self, host_id: &str, live: Live) {
        lock(&self.chains).insert(host_id.to_owned(), live);
    }

    fn knows_partition(&self, block: Block) -> bool {
        lock(&self.partitions).contains(&block)
    }

    fn learn_partition(&self, block: Block) {
        lock(&self.partitions).insert(block);
    }

    fn forget_partition(&self, block: Block) {
        lock(&self.partitions).remove(&block);
    }

    /// Creates the block's partitions unless known to exist, in a
    /// transaction of its own.
    async fn ensure_partition(&self, block: Block) -> StoreResult<()> {
        if self.knows_partition(block) {
            return Ok(());
        }
        let mut conn = self.pool.get().await.doing("cannot connect to write")?;
        let tx = conn.transaction().await.doing("cannot start a write")?;
        block.create(&*tx).await?;
        tx.commit()
            .await
            .doing("cannot create a history partition")?;
        self.learn_partition(block);
        Ok(())
    }
}

/// The longest a write may wait for the database's answers: a server that
/// stops answering (hung, or cut off behind a partition, where no error
/// ever arrives) makes the write `Unavailable` (a 503 the agent retries
/// with the same id), well before the request's own timeout.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// `work`, or `Unavailable` when the database has not answered within
/// [`ANSWER_TIMEOUT`]. A write may still commit what it was sent (the
/// answer is what was lost): a retry of the same id is then
/// `AlreadyStored`. When the database could not be used (but for a lock
/// held too long), it may have gone away and come back: the pool's idle
/// connections may be from before and as dead, so they are let go rather
/// than each failing one more request; new ones cost a few milliseconds.
pub(crate) async fn in_time<T>(
    pool: &Pool,
    doing: &str,
    work: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "{doing}: PostgreSQL did not answer within {} s (down, overloaded, or cut off)",
                ANSWER_TIMEOUT.as_secs()
            )))
        });
    if let Err(StoreError::Unavailable(why)) = &answer {
        if !why.contains(errors::LOCK_WAIT) {
            pool.retain(|_, _| false);
        }
    }
    answer
}

/// Bounded by [`ANSWER_TIMEOUT`], as writes are.
macro_rules! read_with {
    ($self:ident, |$tx:ident| $body:expr) => {{
        $crate::store::postgres::in_time(&$self.inner.pool, "reading", async {
            let mut conn = $self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to read")?;
            let tx = start_read(&mut conn).await?;
            let answer: StoreResult<_> = {
                let $tx: &Transaction<'_> = &tx;
                async { $body }.await
            };
            let answer = answer?;
            tx.commit().await.doing("cannot end a read")?;
            Ok::<_, StoreError>(answer)
        })
        .await
    }};
}
pub(crate) use read_with;

#[async_trait]
impl Store for PostgresStore {
    async fn ingest(
        &self,
        snapshot: Arc<Snapshot>,
        received_at: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome> {
        let outcome = in_time(
            &self.inner.pool,
            "storing the snapshot",
            self.inner.ingest(&snapshot, nanos(received_at)),
        )
        .await?;
        if outcome == IngestOutcome::Stored {
            self.announce(&snapshot.host.id, snapshot.id);
        }
        Ok(outcome)
    }

    async fn ingest_changes(
        &self,
        batch: Arc<ChangeBatch>,
        received_at: DateTime<Utc>,
        check: SnapshotCheck,
    ) -> StoreResult<ChangeOutcome> {
        let outcome = in_time(
            &self.inner.pool,
            "storing the change batch",
            self.store_changes(batch, received_at, check),
        )
        .await?;
        if let ChangeOutcome::Stored(made) = &outcome {
            self.announce(&made.host.id, made.id);
        }
        Ok(outcome)
    }

    async fn hosts(&self) -> StoreResult<Vec<HostRecord>> {
        read_with!(self, |tx| Ok(read::hosts(tx)
            .await?
            .into_iter()
            .map(|h| h.record)
            .collect()))
    }

    async fn search(
        &self,
        query: &super::SearchQuery,
        at: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<(Vec<super::Found>, bool)> {
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::search(tx, &view, query, at.map(nanos), limit).await
        })
    }

    async fn host(&self, host_id: &str) -> StoreResult<Option<HostRecord>> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| Ok(read::host(tx, &host_id)
            .await?
            .map(|h| h.record)))
    }

    async fn hosts_named(&self, hostname: &str) -> StoreResult<Vec<String>> {
        let hostname = hostname.to_owned();
        read_with!(self, |tx| {
            let rows = tx
                .query("SELECT id FROM host WHERE hostname = $1", &[&hostname])
                .await
                .doing("cannot read the hosts")?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    async fn snapshot(
        &self,
        host_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<Option<StoredSnapshot>> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::snapshot(tx, &view, &host_id, at.map(nanos)).await
        })
    }

    async fn snapshot_by_id(
        &self,
        host_id: &str,
        id: uuid::Uuid,
    ) -> StoreResult<Option<StoredSnapshot>> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::snapshot_by_id(tx, &view, &host_id, id).await
        })
    }

    async fn load_points(
        &self,
        host_id: &str,
        from: DateTime<Utc>,
    ) -> StoreResult<Vec<super::LoadPoint>> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| read::load_points(tx, &host_id, nanos(from))
            .await)
    }

    fn stored_elsewhere(&self) -> Option<tokio::sync::mpsc::Receiver<super::StoredElsewhere>> {
        notify::listen(&self.inner)
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
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::process_series(
                tx,
                &view,
                &host_id,
                (pid, nanos(start_time)),
                range,
                max_points,
            )
            .await
        })
    }

    async fn host_series(
        &self,
        host_id: &str,
        range: TimeRange,
        max_points: usize,
    ) -> StoreResult<Series> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::host_series(tx, &view, &host_id, range, max_points).await
        })
    }

    async fn changes(
        &self,
        host_id: &str,
        range: TimeRange,
        limit: usize,
    ) -> StoreResult<HostChanges> {
        let host_id = host_id.to_owned();
        read_with!(self, |tx| {
            let view = View::load(tx).await?;
            read::changes(tx, &view, &host_id, range, limit).await
        })
    }

    async fn maintain(&self, now: DateTime<Utc>, retention: Retention) -> StoreResult<Maintenance> {
        self.inner.maintain(nanos(now), retention).await
    }

    async fn remove_host(&self, host_id: &str) -> StoreResult<bool> {
        let mut conn = self
            .inner
            .pool
            .get()
            .await
            .doing("cannot connect to remove a host")?;
        let tx = conn.transaction().await.doing("cannot start a write")?;
        let Some(row) = tx
            .query_opt("SELECT key FROM host WHERE id = $1 FOR UPDATE", &[&host_id])
            .await
            .doing("cannot read the host")?
        else {
            return Ok(false);
        };
        let key: i64 = row.get(0);
        // Host keys are never handed out again, so nothing left behind
        // could show; the rows go all the same, by the host's index.
        for table in ["raw", "minute", "host_minute", "hour", "host_hour", "host"] {
            let column = if table == "host" { "key" } else { "host" };
            tx.execute(&format!("DELETE FROM {table} WHERE {column} = $1"), &[&key])
                .await
                .doing("cannot remove the host's history")?;
        }
        tx.execute("DELETE FROM load_point WHERE host_id = $1", &[&host_id])
            .await
            .doing("cannot remove the host's load")?;
        tx.commit().await.doing("cannot remove the host")?;
        lock(&self.inner.chains).remove(host_id);
        lock(&self.inner.bases).remove(host_id);
        Ok(true)
    }

    async fn count_snapshots(&self) -> StoreResult<u64> {
        read_with!(self, |tx| {
            let count: i64 = tx
                .query_one("SELECT count(*) FROM raw", &[])
                .await
                .doing("cannot count the snapshots")?
                .get(0);
            Ok(count.unsigned_abs())
        })
    }

    async fn check(&self) -> StoreResult<()> {
        // The path of a write: a pooled connection, a read-write
        // transaction, a row written; then rolled back, so nothing changes.
        in_time(&self.inner.pool, "checking the database", async {
            let mut conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to the database")?;
            let tx = conn.transaction().await.doing("cannot start a write")?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('checked_at', $1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&nanos(Utc::now())],
            )
            .await
            .doing("cannot write to the database")?;
            tx.rollback().await.doing("cannot end the check")
        })
        .await
    }

    async fn close(&self) {
        self.inner.pool.close();
    }
}
