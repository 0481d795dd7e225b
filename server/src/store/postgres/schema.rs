//! The tables, and the migrations that make them. A few small tables live
//! for ever (hosts, settings of the store, accounts, keys); history lives in
//! tables declared `PARTITION BY RANGE` on time, with one partition per
//! span, created on demand, so that expired history goes by dropping whole
//! partitions, never by deleting rows:
//!
//! - `raw`: every snapshot, a keyframe or a delta (see `store::chain`) with
//!   its totals beside it; a partition per hour of `taken_at`;
//! - `minute`, `host_minute`: one-minute roll-ups, a row per process (or
//!   host) and hour; a partition per day of `period`;
//! - `hour`, `host_hour`: one-hour roll-ups, a row per process (or host)
//!   and day; a partition per 30 days.
//!
//! Times are `bigint`, nanoseconds since 1970 (UTC), as in the SQLite
//! store: round trips are exact.

use tokio_postgres::GenericClient;

use super::errors::Classify;
use crate::store::StoreResult;

pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// The advisory lock key under which migrations run ("procmon" in ASCII,
/// and 1): several servers starting at once migrate once.
pub const MIGRATION_LOCK: i64 = 0x7072_6f63_6d6f_6e01;
/// The advisory lock key that one maintenance pass holds: the server
/// maintaining history now is the one whose session holds it in
/// `pg_locks` (`objid` is its low 32 bits).
pub const MAINTENANCE_LOCK: i64 = 0x7072_6f63_6d6f_6e02;
/// The advisory lock key held while a partition is created.
pub const PARTITION_LOCK: i64 = 0x7072_6f63_6d6f_6e03;

/// The migrations, in order; the version of the database is the number of
/// those applied. Append only.
pub const MIGRATIONS: &[&str] = &[
    "
CREATE SEQUENCE raw_seq;

CREATE TABLE host (
    key bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    hostname text NOT NULL,
    os_name text NOT NULL,
    os_version text NOT NULL,
    kernel text NOT NULL,
    arch text NOT NULL,
    cpu_count bigint NOT NULL,
    memory_total_bytes bigint NOT NULL,
    boot_time bigint NOT NULL,
    agent_version text NOT NULL,
    interval_ms bigint NOT NULL,
    -- Server clock: a wrong agent clock cannot make a host look alive.
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    -- The newest snapshot by the time it was taken; the facts and totals
    -- are its.
    taken_at bigint NOT NULL,
    first_taken bigint NOT NULL,
    newest_id uuid NOT NULL,
    process_count bigint NOT NULL,
    cpu_percent_total double precision NOT NULL,
    memory_rss_total_bytes bigint NOT NULL,
    -- Roll-ups are complete before these times.
    minute_done bigint NOT NULL,
    hour_done bigint NOT NULL,
    -- The chain later snapshots continue: its keyframe's seq, its newest
    -- snapshot's seq, its length and its newest taken_at. A server whose
    -- cached chain is not this one starts a new keyframe.
    chain_key bigint,
    chain_head bigint,
    chain_length integer,
    chain_taken bigint
);
CREATE INDEX host_hostname ON host (hostname);

-- Named numbers of the store: what reads may show (retention cutoffs).
CREATE TABLE meta (
    name text PRIMARY KEY,
    value bigint NOT NULL
);

CREATE TABLE raw (
    seq bigint NOT NULL,
    host bigint NOT NULL,
    id uuid NOT NULL,
    taken_at bigint NOT NULL,
    collected_at bigint NOT NULL,
    received_at bigint NOT NULL,
    interval_ms bigint NOT NULL,
    -- seq of the chain's keyframe (its own for a keyframe)
    chain bigint NOT NULL,
    process_count bigint NOT NULL,
    cpu_percent_total double precision NOT NULL,
    memory_rss_total_bytes bigint NOT NULL,
    data bytea NOT NULL,
    cpu_machine_percent double precision,
    memory_used_bytes bigint,
    memory_available_bytes bigint,
    swap_used_bytes bigint,
    swap_total_bytes bigint,
    load_1m double precision,
    PRIMARY KEY (taken_at, seq)
) PARTITION BY RANGE (taken_at);
CREATE INDEX raw_id ON raw (id);
CREATE INDEX raw_host ON raw (host, taken_at);
CREATE INDEX raw_chain ON raw (chain, seq);

CREATE TABLE minute (
    host bigint NOT NULL,
    pid bigint NOT NULL,
    start_time bigint NOT NULL,
    period bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (host, period, pid, start_time)
) PARTITION BY RANGE (period);
CREATE TABLE host_minute (
    host bigint NOT NULL,
    period bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (host, period)
) PARTITION BY RANGE (period);
CREATE TABLE hour (
    host bigint NOT NULL,
    pid bigint NOT NULL,
    start_time bigint NOT NULL,
    period bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (host, period, pid, start_time)
) PARTITION BY RANGE (period);
CREATE TABLE host_hour (
    host bigint NOT NULL,
    period bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (host, period)
) PARTITION BY RANGE (period);

CREATE TABLE account (
    name text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_at bigint NOT NULL,
    password_hash text
);
CREATE TABLE session (
    token_hash bytea PRIMARY KEY,
    account text NOT NULL,
    created_at bigint NOT NULL,
    last_used bigint NOT NULL,
    via_link boolean NOT NULL
);
CREATE INDEX session_account ON session (account);
CREATE TABLE signin_link (
    token_hash bytea PRIMARY KEY,
    account text NOT NULL,
    expires_at bigint NOT NULL
);

CREATE TABLE agent_key (
    id text PRIMARY KEY,
    secret_hash bytea NOT NULL,
    host_id text,
    label text NOT NULL,
    created_at bigint NOT NULL,
    revoked_at bigint
);
CREATE INDEX agent_key_host ON agent_key (host_id);
CREATE TABLE enroll_secret (
    secret_hash bytea PRIMARY KEY,
    created_at bigint NOT NULL,
    revoked_at bigint
);
",
    "
-- Each host's load, a point per snapshot, kept an hour (`store::load`):
-- small, so not partitioned; a host's expired points go as it writes.
CREATE TABLE load_point (
    host_id text NOT NULL,
    taken_at bigint NOT NULL,
    collected_at bigint NOT NULL,
    cpu_percent double precision NOT NULL,
    memory_rss_bytes bigint NOT NULL,
    processes bigint NOT NULL,
    host_load text
);
CREATE INDEX load_point_host ON load_point (host_id, taken_at);
",
    "
-- Budgets (token buckets) of all the servers: the units left as of `at`.
-- A bucket full again by `full_at` says no more than a missing row, and
-- maintenance deletes it. Unlogged: every agent request updates a row,
-- and after a crash budgets start full, as after a restart.
CREATE UNLOGGED TABLE budget (
    name text PRIMARY KEY,
    tokens double precision NOT NULL,
    at bigint NOT NULL,
    full_at bigint NOT NULL,
    -- Whether the last take got a unit: what the statement that took it
    -- answers.
    taken boolean NOT NULL
);
-- Failed sign-ins, a row per key and failure, deleted by maintenance once
-- past `expires_at` (the end of the window they count in).
CREATE TABLE sign_in_failure (
    key text NOT NULL,
    at bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX sign_in_failure_key ON sign_in_failure (key, at);
",
    // Alert rules, alerts, silences and queued notifications.
    crate::store::alerts::TABLES,
    // Notification channels.
    crate::store::channels::TABLES,
    // Operators: people who may act on processes, between viewers and
    // admins. (The column's CHECK got its name from PostgreSQL.)
    "
ALTER TABLE account DROP CONSTRAINT account_role_check;
ALTER TABLE account ADD CONSTRAINT account_role_check
    CHECK (role IN ('viewer', 'operator', 'admin'));
",
    // Actions on processes: the audit log, the agents' queue, the key.
    crate::store::actions::TABLES,
    // Host labels: the newest snapshot's (none until a host's next one).
    "
ALTER TABLE host ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
",
    // Flap damping: when each alert fired, and which one flaps.
    crate::store::alerts::FLAP_COLUMNS,
];

/// The kinds of partition, each with the span of time one covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Raw,
    Minute,
    Hour,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Raw, Kind::Minute, Kind::Hour];

    pub fn span(self) -> i64 {
        match self {
            Kind::Raw => HOUR,
            Kind::Minute => DAY,
            Kind::Hour => 30 * DAY,
        }
    }

    /// The partitioned tables of this kind.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Kind::Raw => &["raw"],
            Kind::Minute => &["minute", "host_minute"],
            Kind::Hour => &["hour", "host_hour"],
        }
    }
}

/// One span of history: a kind and its number (time / span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub kind: Kind,
    pub n: i64,
}

impl Block {
    pub fn of(kind: Kind, time: i64) -> Self {
        Self {
            kind,
            n: time.div_euclid(kind.span()),
        }
    }

    pub fn start(self) -> i64 {
        self.n * self.kind.span()
    }

    pub fn end(self) -> i64 {
        self.start() + self.kind.span()
    }

    /// The partition of `table` for this block; negative numbers (before
    /// 1970) are written with an `m`.
    pub fn partition(self, table: &str) -> String {
        if self.n < 0 {
            format!("{table}_m{}", -self.n)
        } else {
            format!("{table}_{}", self.n)
        }
    }

    /// The block a partition of the kind's first table belongs to.
    fn parse(kind: Kind, name: &str) -> Option<Self> {
        let rest = name.strip_prefix(kind.tables()[0])?.strip_prefix('_')?;
        let n = match rest.strip_prefix('m') {
            Some(neg) => -neg.parse::<i64>().ok()?,
            None => rest.parse::<i64>().ok()?,
        };
        Some(Block { kind, n })
    }

    /// Creates the block's partitions if missing, under an advisory lock
    /// so that two servers creating one partition do not collide.
    pub async fn create(self, client: &impl GenericClient) -> StoreResult<()> {
        let mut sql = format!("SELECT pg_advisory_xact_lock({PARTITION_LOCK});");
        for table in self.kind.tables() {
            sql += &format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} FOR VALUES FROM ({}) TO ({});",
                self.partition(table),
                self.start(),
                self.end()
            );
        }
        client
            .batch_execute(&sql)
            .await
            .doing("cannot create a history partition")
    }

    /// Drops the block's partitions: expired history goes whole.
    pub async fn drop_partitions(self, client: &impl GenericClient) -> StoreResult<()> {
        let sql: String = self
            .kind
            .tables()
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS {};", self.partition(t)))
            .collect();
        client
            .batch_execute(&sql)
            .await
            .doing("cannot drop an expired history partition")
    }
}

/// Every block in the database, oldest first.
pub async fn blocks(client: &impl GenericClient) -> StoreResult<Vec<Block>> {
    let rows = client
        .query_typed(
            "SELECT p.relname, c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE i.inhparent IN ('raw'::regclass, 'minute'::regclass, 'hour'::regclass)",
            &[],
        )
        .await
        .doing("cannot list the history partitions")?;
    let mut blocks: Vec<Block> = rows
        .iter()
        .filter_map(|row| {
            let parent: &str = row.get(0);
            let kind = Kind::ALL.into_iter().find(|k| k.tables()[0] == parent)?;
            Block::parse(kind, row.get(1))
        })
        .collect();
    blocks.sort();
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        for kind in Kind::ALL {
            for time in [0, 1, -1, 5 * DAY + 7, -40 * DAY] {
                let block = Block::of(kind, time);
                assert_eq!(
                    Block::parse(kind, &block.partition(kind.tables()[0])),
                    Some(block)
                );
                assert!(block.start() <= time && time < block.end());
            }
        }
        assert_eq!(Block::parse(Kind::Raw, "rawx"), None);
    }
}
