//! One maintenance pass: retention marks, roll-ups, then expired
//! partitions dropped whole, and spent budgets and failed sign-ins deleted. Only one server does it at a time: the pass
//! holds a session advisory lock, and a server that cannot take it (another
//! is maintaining) returns at once with nothing done.

use std::time::Duration;

use super::errors::Classify;
use super::read::{self, Rollup, View};
use super::schema::{Block, Kind, DAY, HOUR, MAINTENANCE_LOCK, MINUTE};
use super::Inner;
use crate::store::rollup;
use crate::store::{Maintenance, Retention, StoreError, StoreResult};

/// An hour is rolled up this long after it ends, so that snapshots still
/// on their way are in it (later ones make it be rolled up again).
const LATENESS: i64 = 2 * MINUTE;
/// Host-hours (or host-days) rolled up in one pass at most.
const ROLLUP_BUDGET: usize = 500;
/// How long dropping an expired partition waits for reads of it to end.
const DROP_WAIT: Duration = Duration::from_secs(2);

impl Inner {
    pub async fn maintain(&self, now: i64, retention: Retention) -> StoreResult<Maintenance> {
        let mut conn = self.pool.get().await.doing("cannot connect to maintain")?;
        let locked: bool = conn
            .query_one("SELECT pg_try_advisory_lock($1)", &[&MAINTENANCE_LOCK])
            .await
            .doing("cannot take the maintenance lock")?
            .get(0);
        if !locked {
            return Ok(Maintenance::default());
        }
        let done = self.maintain_locked(&mut conn, now, retention).await;
        // A connection that lost the lock some other way is dropped
        // rather than pooled.
        if conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MAINTENANCE_LOCK])
            .await
            .is_err()
        {
            let _ = deadpool_postgres::Object::take(conn);
        }
        done
    }

    async fn maintain_locked(
        &self,
        conn: &mut deadpool_postgres::Object,
        now: i64,
        retention: Retention,
    ) -> StoreResult<Maintenance> {
        let cut =
            |keep: Duration| now.saturating_sub(i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX));
        let (raw_cut, minute_cut, hour_cut) = (
            cut(retention.raw),
            cut(retention.minute),
            cut(retention.hour),
        );
        let mut done = Maintenance::default();
        for (name, value) in [
            ("raw_from", raw_cut),
            ("minute_from", minute_cut),
            ("hour_from", hour_cut),
        ] {
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = greatest(meta.value, excluded.value)",
                &[&name, &value],
            )
            .await
            .doing("cannot write the retention marks")?;
        }

        let mut budget = ROLLUP_BUDGET;
        let hosts = {
            let tx = conn.transaction().await.doing("cannot start a read")?;
            read::hosts(&tx).await?
        };
        for host in &hosts {
            let mut mark = host.minute_done;
            while budget > 0 && mark + HOUR <= now - LATENESS {
                budget -= 1;
                // The host row stays locked while its hour is rolled up:
                // no snapshot of it lands between the read and the mark.
                let tx = conn.transaction().await.doing("cannot start a roll-up")?;
                if !mark_is(&tx, "minute_done", host.key, mark).await? {
                    break;
                }
                let view = View::load(&tx).await?;
                let block = Block::of(Kind::Raw, mark);
                let (next, rollup) = if view.blocks.contains(&block) && block.end() > view.raw_from
                {
                    let r = read::roll_up_hour(&tx, &view, host.key, mark).await?;
                    (mark + HOUR, Some(r))
                } else {
                    let end = now - LATENESS - (now - LATENESS).rem_euclid(HOUR);
                    let next = view
                        .raw()
                        .into_iter()
                        .map(Block::start)
                        .find(|&s| s > mark)
                        .unwrap_or(end);
                    (next.max(mark + HOUR), None)
                };
                if let Some(rollup) = &rollup {
                    self.write_rollup(&tx, Kind::Minute, host.key, mark, rollup)
                        .await?;
                }
                set_mark(&tx, "minute_done", host.key, next).await?;
                tx.commit().await.doing("cannot commit roll-ups")?;
                done.minute_rollups += u64::from(rollup.is_some());
                mark = next;
            }
            let minute_mark = mark;
            let mut mark = host.hour_done;
            while budget > 0 && mark + DAY <= minute_mark {
                budget -= 1;
                let tx = conn.transaction().await.doing("cannot start a roll-up")?;
                if !mark_is(&tx, "hour_done", host.key, mark).await? {
                    break;
                }
                let rollup = read::roll_up_day(&tx, host.key, mark).await?;
                let has = !rollup.host.is_empty();
                if has {
                    self.write_rollup(&tx, Kind::Hour, host.key, mark, &rollup)
                        .await?;
                }
                set_mark(&tx, "hour_done", host.key, mark + DAY).await?;
                tx.commit().await.doing("cannot commit roll-ups")?;
                done.hour_rollups += u64::from(has);
                mark += DAY;
            }
        }

        // Whole partitions past retention, once every host's roll-ups
        // cover them.
        let (hosts, blocks) = {
            let tx = conn.transaction().await.doing("cannot start a read")?;
            (read::hosts(&tx).await?, super::schema::blocks(&*tx).await?)
        };
        let minute_done = hosts
            .iter()
            .map(|h| h.minute_done)
            .min()
            .unwrap_or(i64::MAX);
        let hour_done = hosts.iter().map(|h| h.hour_done).min().unwrap_or(i64::MAX);
        for block in blocks {
            let expired = match block.kind {
                Kind::Raw => block.end() <= raw_cut && block.end() <= minute_done,
                Kind::Minute => block.end() <= minute_cut && block.end() <= hour_done,
                Kind::Hour => block.end() <= hour_cut,
            };
            if expired && drop_block(conn, block).await? {
                self.forget_partition(block);
                done.blocks_dropped += 1;
            }
        }
        done.hosts_removed = conn
            .execute(
                "DELETE FROM host WHERE taken_at < $1 AND last_seen < $1",
                &[&hour_cut],
            )
            .await
            .doing("cannot remove old hosts")?;
        super::limits::sweep(conn, now).await?;
        Ok(done)
    }

    /// Writes the roll-up rows of one period in two multi-row inserts.
    async fn write_rollup(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        kind: Kind,
        host: i64,
        period: i64,
        rollup: &Rollup,
    ) -> StoreResult<()> {
        let block = Block::of(kind, period);
        // In this transaction: another connection's DDL would wait for the
        // locks this one holds on the tables read above.
        if !self.knows_partition(block) {
            block.create(tx).await?;
            self.learn_partition(block);
        }
        let (table, width) = match kind {
            Kind::Minute => ("minute", MINUTE),
            _ => ("hour", HOUR),
        };
        let mut pids = Vec::with_capacity(rollup.processes.len());
        let mut starts = Vec::with_capacity(rollup.processes.len());
        let mut data = Vec::with_capacity(rollup.processes.len());
        for ((pid, start), buckets) in &rollup.processes {
            pids.push(i64::from(*pid));
            starts.push(*start);
            data.push(rollup::encode(period, width, buckets));
        }
        tx.execute(
            &format!(
                "INSERT INTO {table} (host, pid, start_time, period, data)
                 SELECT $1, p, s, $2, d FROM unnest($3::bigint[], $4::bigint[], $5::bytea[])
                     AS r (p, s, d)
                 ON CONFLICT (host, period, pid, start_time) DO UPDATE SET data = excluded.data"
            ),
            &[&host, &period, &pids, &starts, &data],
        )
        .await
        .doing("cannot write roll-ups")?;
        tx.execute(
            &format!(
                "INSERT INTO host_{table} (host, period, data) VALUES ($1, $2, $3)
                 ON CONFLICT (host, period) DO UPDATE SET data = excluded.data"
            ),
            &[&host, &period, &rollup::encode(period, width, &rollup.host)],
        )
        .await
        .doing("cannot write roll-ups")?;
        Ok(())
    }
}

/// Drops a block's partitions, unless a read holds them longer than
/// `DROP_WAIT` (then false: the next pass drops them). A drop waiting for
/// its lock would hold up every ingest queued behind it.
async fn drop_block(conn: &mut deadpool_postgres::Object, block: Block) -> StoreResult<bool> {
    let tx = conn.transaction().await.doing("cannot start dropping")?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        DROP_WAIT.as_millis()
    ))
    .await
    .doing("cannot start dropping")?;
    match block.drop_partitions(&*tx).await {
        Ok(()) => {}
        Err(StoreError::Unavailable(why)) if why.contains(super::errors::LOCK_WAIT) => {
            tracing::info!(?block, "an expired partition is in use; it goes next time");
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    tx.commit()
        .await
        .doing("cannot drop an expired history partition")?;
    Ok(true)
}

/// Whether the host's roll-up mark is still `at`, locking its row.
async fn mark_is(
    tx: &tokio_postgres::Transaction<'_>,
    mark: &str,
    host: i64,
    at: i64,
) -> StoreResult<bool> {
    let row = tx
        .query_opt(
            &format!("SELECT {mark} FROM host WHERE key = $1 FOR UPDATE"),
            &[&host],
        )
        .await
        .doing("cannot read the roll-up mark")?;
    Ok(row.is_some_and(|r| r.get::<_, i64>(0) == at))
}

async fn set_mark(
    tx: &tokio_postgres::Transaction<'_>,
    mark: &str,
    host: i64,
    to: i64,
) -> StoreResult<()> {
    tx.execute(
        &format!("UPDATE host SET {mark} = $2 WHERE key = $1"),
        &[&host, &to],
    )
    .await
    .doing("cannot advance the roll-up mark")
    .map(drop)
}
