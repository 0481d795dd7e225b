//! Budgets and failed sign-ins in PostgreSQL, shared by every server of
//! the database. A take is one statement (an upsert that refills, takes
//! and answers under the row's lock), so of servers racing for a budget's
//! last unit exactly one gets it. That is one round trip per agent request
//! (a prepared statement on a pooled connection, no transaction around
//! it), the price of a budget that holds across servers.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::errors::Classify;
use super::{in_time, PostgresStore};
use crate::store::chain::nanos;
use crate::store::limits::{Bucket, LimitStore, Throttle};
use crate::store::StoreResult;

/// Refills the bucket by the time since it was last touched (none for a
/// clock behind the one that touched it), takes a unit if there is one,
/// and answers the units left and whether one was taken. $1 the name, $2
/// the capacity, $3 now (ns), $4 units a second.
const TAKE: &str = "
INSERT INTO budget AS b (name, tokens, at, full_at, taken)
VALUES ($1, $2::float8 - 1, $3::bigint, $3::bigint + ceil(1e9 / $4::float8)::bigint, true)
ON CONFLICT (name) DO UPDATE SET (tokens, at, full_at, taken) = (
    SELECT left_over, t, t + ceil(($2::float8 - left_over) * 1e9 / $4::float8)::bigint, ok
    FROM (
        SELECT CASE WHEN r >= 1 THEN r - 1 ELSE r END AS left_over, r >= 1 AS ok, t
        FROM (
            SELECT least($2::float8, b.tokens + greatest(0, $3::bigint - b.at) * $4::float8 / 1e9) AS r,
                   greatest(b.at, $3::bigint) AS t
        ) AS refill
    ) AS took
)
RETURNING tokens, taken";

/// Nanoseconds of a span, saturating.
fn span_nanos(span: Duration) -> i64 {
    i64::try_from(span.as_nanos()).unwrap_or(i64::MAX)
}

#[async_trait]
impl LimitStore for PostgresStore {
    async fn take(
        &self,
        name: &str,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), Duration>> {
        in_time(&self.inner.pool, "taking from a budget", async {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to take from a budget")?;
            let statement = conn
                .prepare_cached(TAKE)
                .await
                .doing("cannot take from a budget")?;
            let row = conn
                .query_one(
                    &statement,
                    &[&name, &bucket.capacity, &nanos(now), &bucket.per_second],
                )
                .await
                .doing("cannot take from a budget")?;
            let (tokens, taken): (f64, bool) = (row.get(0), row.get(1));
            Ok(if taken {
                Ok(())
            } else {
                Err(bucket.wait(tokens))
            })
        })
        .await
    }

    async fn fail(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_time(&self.inner.pool, "counting a failed sign-in", async {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to count a failed sign-in")?;
            let at = nanos(now);
            conn.execute(
                "INSERT INTO sign_in_failure (key, at, expires_at)
                 SELECT k, $2, $3 FROM unnest($1::text[]) AS k",
                &[&keys, &at, &at.saturating_add(span_nanos(throttle.window))],
            )
            .await
            .doing("cannot count a failed sign-in")
            .map(drop)
        })
        .await
    }

    async fn clear(&self, keys: &[String]) -> StoreResult<()> {
        in_time(&self.inner.pool, "clearing failed sign-ins", async {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to clear failed sign-ins")?;
            conn.execute("DELETE FROM sign_in_failure WHERE key = ANY($1)", &[&keys])
                .await
                .doing("cannot clear failed sign-ins")
                .map(drop)
        })
        .await
    }

    async fn locked(
        &self,
        keys: &[String],
        throttle: Throttle,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Duration>> {
        in_time(&self.inner.pool, "reading failed sign-ins", async {
            let conn = self
                .inner
                .pool
                .get()
                .await
                .doing("cannot connect to read failed sign-ins")?;
            let rows = conn
                .query(
                    "SELECT key, at FROM sign_in_failure
                     WHERE key = ANY($1) AND at > $2 ORDER BY key, at",
                    &[
                        &keys,
                        &nanos(now).saturating_sub(span_nanos(throttle.window)),
                    ],
                )
                .await
                .doing("cannot read failed sign-ins")?;
            let mut times: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
            for row in &rows {
                times
                    .entry(row.get(0))
                    .or_default()
                    .push(DateTime::from_timestamp_nanos(row.get(1)));
            }
            Ok(Throttle::longest(
                times.values().map(|times| throttle.lock(times, now)),
            ))
        })
        .await
    }
}

/// Deletes full budgets and failures past their window: part of the
/// maintenance pass, which one server at a time runs.
pub async fn sweep(conn: &deadpool_postgres::Object, now: i64) -> StoreResult<()> {
    conn.execute("DELETE FROM budget WHERE full_at <= $1", &[&now])
        .await
        .doing("cannot delete full budgets")?;
    conn.execute(
        "DELETE FROM sign_in_failure WHERE expires_at <= $1",
        &[&now],
    )
    .await
    .doing("cannot delete old failed sign-ins")
    .map(drop)
}
