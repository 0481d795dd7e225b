//! The tables. A few small ones live for ever (hosts, settings of the
//! store); history lives in blocks, one table per span of time, so that
//! expired history goes by dropping whole tables, never by deleting rows
//! through an index:
//!
//! - `raw_<hour>`: every snapshot of that hour, one row each: a keyframe
//!   or a delta (see `store::chain`), with the snapshot's totals beside it;
//! - `minute_<day>`, `host_minute_<day>`: one-minute roll-ups, a row per
//!   process (or host) and hour;
//! - `hour_<month>`, `host_hour_<month>`: one-hour roll-ups, a row per
//!   process (or host) and day; a "month" is 30 days.
//!
//! Times are integers, nanoseconds since 1970 (UTC).

use rusqlite::Connection;

use super::errors::Classify;
use crate::store::StoreResult;

/// Nanoseconds in a second, an hour, a day.
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Version of this layout, kept in SQLite's `user_version`.
pub const VERSION: i64 = 7;

/// The tables that are not blocks.
pub const BASE: &str = "
-- A host's first_taken: its oldest snapshot by the time it was taken (an
-- agent's spool can hold snapshots taken before the server first heard of
-- it). Last, as layout 4's table gets it by ALTER TABLE; and labels after
-- it, as layout 6's table gets them: the newest snapshot's, separated by
-- commas (no label holds one), empty for none.
CREATE TABLE IF NOT EXISTS host (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    os_name TEXT NOT NULL,
    os_version TEXT NOT NULL,
    kernel TEXT NOT NULL,
    arch TEXT NOT NULL,
    cpu_count INTEGER NOT NULL,
    memory_total_bytes INTEGER NOT NULL,
    boot_time INTEGER NOT NULL,
    agent_version TEXT NOT NULL,
    interval_ms INTEGER NOT NULL,
    -- Server clock: a wrong agent clock cannot make a host look alive.
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    -- The newest snapshot by the time it was taken; the facts and totals
    -- above and below are its.
    taken_at INTEGER NOT NULL,
    process_count INTEGER NOT NULL,
    cpu_percent_total REAL NOT NULL,
    memory_rss_total_bytes INTEGER NOT NULL,
    -- Roll-ups are complete before these times.
    minute_done INTEGER NOT NULL,
    hour_done INTEGER NOT NULL,
    first_taken INTEGER,
    labels TEXT NOT NULL DEFAULT ''
) STRICT;

-- Display names are made unique among hosts that share a hostname.
CREATE INDEX IF NOT EXISTS host_hostname ON host (hostname);

-- Each host's load, a point per snapshot, kept an hour (`store::load`).
CREATE TABLE IF NOT EXISTS load_point (
    host_id TEXT NOT NULL,
    taken_at INTEGER NOT NULL,
    collected_at INTEGER NOT NULL,
    cpu_percent REAL NOT NULL,
    memory_rss_bytes INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    host_load TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS load_point_host ON load_point (host_id, taken_at);

-- Named numbers of the store: what reads may show (retention cutoffs),
-- and the health probe's last write.
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) STRICT;
";

/// The kinds of block, each with the span of time one table covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Raw,
    Minute,
    Hour,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Raw, Kind::Minute, Kind::Hour];

    /// Nanoseconds one table of this kind covers.
    pub fn span(self) -> i64 {
        match self {
            Kind::Raw => HOUR,
            Kind::Minute => DAY,
            Kind::Hour => 30 * DAY,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Raw => "raw_",
            Kind::Minute => "minute_",
            Kind::Hour => "hour_",
        }
    }

    /// The number of the block that holds `time`.
    pub fn block_of(self, time: i64) -> i64 {
        time.div_euclid(self.span())
    }
}

/// One block: a kind and its number (time / span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub kind: Kind,
    pub n: i64,
}

impl Block {
    pub fn of(kind: Kind, time: i64) -> Self {
        Self {
            kind,
            n: kind.block_of(time),
        }
    }

    pub fn start(self) -> i64 {
        self.n * self.kind.span()
    }

    pub fn end(self) -> i64 {
        self.start() + self.kind.span()
    }

    /// The main table's name. Block numbers of times before 1970 are
    /// negative; they are written with an `m`, since `-` cannot stand in a
    /// bare name.
    pub fn table(self) -> String {
        self.named(self.kind.prefix())
    }

    /// The host totals table of a roll-up block.
    pub fn host_table(self) -> String {
        self.named(&format!("host_{}", self.kind.prefix()))
    }

    fn named(self, prefix: &str) -> String {
        if self.n < 0 {
            format!("{prefix}m{}", -self.n)
        } else {
            format!("{prefix}{}", self.n)
        }
    }

    /// The block a table name belongs to, if it is a block's main table.
    pub fn parse(name: &str) -> Option<Self> {
        Kind::ALL.into_iter().find_map(|kind| {
            let rest = name.strip_prefix(kind.prefix())?;
            let n = match rest.strip_prefix('m') {
                Some(neg) => -neg.parse::<i64>().ok()?,
                None => rest.parse::<i64>().ok()?,
            };
            Some(Block { kind, n })
        })
    }

    /// Creates the block's tables if missing.
    pub fn create(self, conn: &Connection) -> StoreResult<()> {
        let t = self.table();
        let sql = match self.kind {
            Kind::Raw => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    seq INTEGER PRIMARY KEY,
                    host INTEGER NOT NULL,
                    id BLOB NOT NULL,
                    taken_at INTEGER NOT NULL,
                    collected_at INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    interval_ms INTEGER NOT NULL,
                    -- seq of the chain's keyframe (its own for a keyframe)
                    chain INTEGER NOT NULL,
                    process_count INTEGER NOT NULL,
                    cpu_percent_total REAL NOT NULL,
                    memory_rss_total_bytes INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    {LOAD_COLUMNS}
                ) STRICT;
                CREATE UNIQUE INDEX IF NOT EXISTS {t}_id ON {t} (id);
                CREATE INDEX IF NOT EXISTS {t}_host ON {t} (host, taken_at);
                CREATE INDEX IF NOT EXISTS {t}_chain ON {t} (chain, seq);"
            ),
            Kind::Minute | Kind::Hour => {
                let h = self.host_table();
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (
                        host INTEGER NOT NULL,
                        pid INTEGER NOT NULL,
                        start_time INTEGER NOT NULL,
                        -- start of the hour (minute roll-ups) or day (hour
                        -- roll-ups) the row summarises
                        period INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        -- Period first: a roll-up pass appends its rows
                        -- rather than splitting pages all over the table.
                        PRIMARY KEY (host, period, pid, start_time)
                    ) STRICT, WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS {h} (
                        host INTEGER NOT NULL,
                        period INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        PRIMARY KEY (host, period)
                    ) STRICT, WITHOUT ROWID;"
                )
            }
        };
        conn.execute_batch(&sql)
            .doing("cannot create a history table")
    }

    /// Drops the block's tables.
    pub fn drop_tables(self, conn: &Connection) -> StoreResult<()> {
        let mut sql = format!("DROP TABLE IF EXISTS {};", self.table());
        if self.kind != Kind::Raw {
            sql += &format!("DROP TABLE IF EXISTS {};", self.host_table());
        }
        conn.execute_batch(&sql)
            .doing("cannot drop an expired history table")
    }
}

/// The host's own meters beside each raw snapshot, NULL when its agent sent
/// none (see `HostLoad`). Last in the table: layout 4's tables get them by
/// `ALTER TABLE … ADD COLUMN`, which appends.
const LOAD_COLUMNS: &str = "cpu_machine_percent REAL,
                    memory_used_bytes INTEGER,
                    memory_available_bytes INTEGER,
                    swap_used_bytes INTEGER,
                    swap_total_bytes INTEGER,
                    load_1m REAL";

/// Layout 4 to 5: raw tables get the host meters' columns, and hosts the
/// time of their oldest snapshot, found in the raw tables (oldest first).
pub fn to_layout_5(conn: &Connection) -> StoreResult<()> {
    if !has_column(conn, "host", "first_taken")? {
        conn.execute_batch("ALTER TABLE host ADD COLUMN first_taken INTEGER")
            .doing("cannot add first_taken to the host table")?;
    }
    let raw: Vec<Block> = blocks(conn)?
        .into_iter()
        .filter(|b| b.kind == Kind::Raw)
        .collect();
    for block in &raw {
        let t = block.table();
        conn.execute_batch(&format!(
            "UPDATE host SET first_taken = (SELECT min(taken_at) FROM {t} WHERE {t}.host = host.key)
             WHERE first_taken IS NULL"
        ))
        .doing("cannot find the hosts' oldest snapshots")?;
    }
    conn.execute_batch("UPDATE host SET first_taken = first_seen WHERE first_taken IS NULL")
        .doing("cannot find the hosts' oldest snapshots")?;
    add_load_columns(conn, &raw)
}

/// Layout 5 to 6: accounts may be operators. SQLite cannot change a
/// CHECK constraint in place, so the table is made anew under its name
/// (as `accounts::TABLES` makes it now) and its rows copied over, in one
/// transaction.
pub fn to_layout_6(conn: &Connection) -> StoreResult<()> {
    let made: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'account'",
            [],
            |row| row.get(0),
        )
        .doing("cannot read the account table's layout")?;
    if made.contains("'operator'") {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "BEGIN;
         ALTER TABLE account RENAME TO account_before_6;
         {}
         INSERT INTO account (name, role, created_at, password_hash)
             SELECT name, role, created_at, password_hash FROM account_before_6;
         DROP TABLE account_before_6;
         COMMIT;",
        super::accounts::TABLES
    ))
    .doing("cannot let accounts be operators")
}

/// Layout 6 to 7: hosts carry labels (none until their next snapshot).
pub fn to_layout_7(conn: &Connection) -> StoreResult<()> {
    if has_column(conn, "host", "labels")? {
        return Ok(());
    }
    conn.execute_batch("ALTER TABLE host ADD COLUMN labels TEXT NOT NULL DEFAULT ''")
        .doing("cannot add labels to the host table")
}

fn add_load_columns(conn: &Connection, raw: &[Block]) -> StoreResult<()> {
    for block in raw {
        let table = block.table();
        if has_column(conn, &table, "load_1m")? {
            continue;
        }
        let sql: String = LOAD_COLUMNS
            .split(',')
            .map(|column| format!("ALTER TABLE {table} ADD COLUMN {};", column.trim()))
            .collect();
        conn.execute_batch(&sql)
            .doing("cannot add the host meters to a history table")?;
    }
    Ok(())
}

/// Whether `table` has `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> StoreResult<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .doing("cannot read a table's columns")
}

/// Every block in the database, oldest first.
pub fn blocks(conn: &Connection) -> StoreResult<Vec<Block>> {
    let mut statement = conn
        .prepare_cached("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .doing("cannot list the history tables")?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(0))
        .doing("cannot list the history tables")?;
    let mut blocks = Vec::new();
    for name in names {
        if let Some(block) = Block::parse(&name.doing("cannot list the history tables")?) {
            blocks.push(block);
        }
    }
    blocks.sort();
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names_round_trip() {
        for kind in Kind::ALL {
            for time in [0, 1, -1, 5 * DAY + 7, -40 * DAY] {
                let block = Block::of(kind, time);
                assert_eq!(Block::parse(&block.table()), Some(block));
                assert!(block.start() <= time && time < block.end());
            }
        }
        assert_eq!(Block::parse("host_minute_3"), None);
        assert_eq!(Block::parse("rawx"), None);
    }
}
