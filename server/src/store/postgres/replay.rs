//! Rebuilding snapshots from the raw partitions: one snapshot by following
//! its chain from the keyframe, or every snapshot of a span in time order.
//! Chains never cross a partition, so each partition replays on its own.

use std::collections::HashMap;
use std::ops::ControlFlow;

use anyhow::Context;
use procmon_model::ProcessSample;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::errors::Classify;
use super::schema::{Block, Kind};
use crate::store::chain::{Chain, Event, Follower, Identity};
use crate::store::codec;
use crate::store::StoreResult;

/// The row of one stored snapshot, without its payload.
#[derive(Debug, Clone)]
pub struct Head {
    pub block: Block,
    pub seq: i64,
    pub chain: i64,
    pub id: Uuid,
    pub taken_at: i64,
    pub collected_at: i64,
    pub received_at: i64,
}

/// The host's newest snapshot taken at or before `at` (and not before
/// `not_before`), looking through `raw` blocks newest first.
pub async fn head_at(
    tx: &Transaction<'_>,
    raw: &[Block],
    host: i64,
    at: i64,
    not_before: i64,
) -> StoreResult<Option<Head>> {
    for &block in raw.iter().rev() {
        if block.start() > at {
            continue;
        }
        if block.end() <= not_before {
            break;
        }
        let row = tx
            .query_typed_opt(
                &format!(
                    "SELECT seq, chain, id, taken_at, collected_at, received_at FROM {}
                     WHERE host = $1 AND taken_at <= $2 AND taken_at >= $3
                     ORDER BY taken_at DESC, seq DESC LIMIT 1",
                    block.partition("raw")
                ),
                &[
                    (&host, Type::INT8),
                    (&at, Type::INT8),
                    (&not_before, Type::INT8),
                ],
            )
            .await
            .doing("cannot read a snapshot")?;
        if let Some(row) = row {
            return Ok(Some(head_of_row(&row)));
        }
    }
    Ok(None)
}

/// The host's snapshot `id`, if kept (taken not before `not_before`).
pub async fn head_of(
    tx: &Transaction<'_>,
    host: i64,
    id: Uuid,
    not_before: i64,
) -> StoreResult<Option<Head>> {
    let row = tx
        .query_typed_opt(
            "SELECT seq, chain, id, taken_at, collected_at, received_at FROM raw
             WHERE id = $1 AND host = $2 AND taken_at >= $3 LIMIT 1",
            &[
                (&id, Type::UUID),
                (&host, Type::INT8),
                (&not_before, Type::INT8),
            ],
        )
        .await
        .doing("cannot read a snapshot")?;
    Ok(row.as_ref().map(head_of_row))
}

/// A head from the columns `seq, chain, id, taken_at, collected_at,
/// received_at`; its block is the one its time falls in.
fn head_of_row(row: &tokio_postgres::Row) -> Head {
    Head {
        block: Block::of(Kind::Raw, row.get(3)),
        seq: row.get(0),
        chain: row.get(1),
        id: row.get(2),
        taken_at: row.get(3),
        collected_at: row.get(4),
        received_at: row.get(5),
    }
}

/// The processes of the snapshot `head`, rebuilt from its chain, and how
/// many snapshots the chain holds up to it.
pub async fn rebuild(tx: &Transaction<'_>, head: &Head) -> StoreResult<(Chain, u32)> {
    let rows = tx
        .query_typed(
            &format!(
                "SELECT data FROM {} WHERE chain = $1 AND seq <= $2 ORDER BY seq",
                head.block.partition("raw")
            ),
            &[(&head.chain, Type::INT8), (&head.seq, Type::INT8)],
        )
        .await
        .doing("cannot read a snapshot")?;
    let mut chain = Chain::default();
    let mut length = 0;
    for row in &rows {
        let data: &[u8] = row.get(0);
        chain
            .apply(&codec::open(data)?, None)
            .with_context(|| format!("snapshot {} does not decode", head.id))?;
        length += 1;
    }
    Ok((chain, length))
}

/// One snapshot met while replaying.
pub struct Step<'a> {
    pub taken_at: i64,
    /// The processes after it.
    pub state: &'a Chain,
    /// What changed since the snapshot before it (only when asked for).
    pub events: &'a [Event],
}

/// Calls `visit` for every snapshot of the host taken within
/// `[from, to]`, in time order. With `events`, each step says what changed
/// since the snapshot before it, which may lie before `from`.
pub async fn replay(
    tx: &Transaction<'_>,
    raw: &[Block],
    host: i64,
    (from, to): (i64, i64),
    events: bool,
    mut visit: impl FnMut(Step<'_>) -> ControlFlow<()>,
) -> StoreResult<()> {
    let blocks: Vec<Block> = raw
        .iter()
        .copied()
        .filter(|b| b.kind == Kind::Raw && b.end() > from && b.start() <= to)
        .collect();
    let mut previous: Option<Chain> = None;
    if events {
        if let Some(first) = blocks.first() {
            if let Some(head) = head_at(tx, raw, host, first.start() - 1, i64::MIN).await? {
                previous = Some(rebuild(tx, &head).await?.0);
            }
        }
    }
    let mut scratch = Vec::new();
    for block in blocks {
        let mut chains: HashMap<i64, Chain> = HashMap::new();
        let mut last: Option<i64> = None;
        for (seq, chain_id, taken_at, payload) in rows_of(tx, block, host, to).await? {
            let payload = codec::open(&payload)?;
            let mut state = if chain_id == seq {
                Chain::default()
            } else {
                chains
                    .remove(&chain_id)
                    .with_context(|| format!("snapshot {seq} continues a chain not found"))?
            };
            scratch.clear();
            let continues = last == Some(chain_id) && chain_id != seq;
            if events && continues {
                state.apply(&payload, Some(&mut scratch))?;
            } else {
                state.apply(&payload, None)?;
                if events {
                    let before = match last {
                        Some(l) if l != chain_id => chains.get(&l),
                        Some(_) => None,
                        None => previous.as_ref(),
                    };
                    let empty = Chain::default();
                    state.events_since(before.unwrap_or(&empty), &mut scratch);
                }
            }
            let flow = if taken_at >= from {
                visit(Step {
                    taken_at,
                    state: &state,
                    events: &scratch,
                })
            } else {
                ControlFlow::Continue(())
            };
            chains.insert(chain_id, state);
            last = Some(chain_id);
            if flow.is_break() {
                return Ok(());
            }
        }
        if let Some(l) = last {
            previous = chains.remove(&l);
        }
    }
    Ok(())
}

/// Calls `visit` for every snapshot of the host taken within `[from, to]`,
/// in time order, with the process `target` as it was then (or `None`).
pub async fn replay_one(
    tx: &Transaction<'_>,
    raw: &[Block],
    host: i64,
    target: Identity,
    (from, to): (i64, i64),
    mut visit: impl FnMut(i64, Option<&ProcessSample>),
) -> StoreResult<()> {
    for block in raw
        .iter()
        .filter(|b| b.kind == Kind::Raw && b.end() > from && b.start() <= to)
    {
        let mut chains: HashMap<i64, Follower> = HashMap::new();
        for (seq, chain_id, taken_at, payload) in rows_of(tx, *block, host, to).await? {
            let follower = chains
                .entry(chain_id)
                .or_insert_with(|| Follower::new(target));
            follower
                .apply(&codec::open(&payload)?)
                .with_context(|| format!("snapshot {seq} does not decode"))?;
            if taken_at >= from {
                visit(taken_at, follower.current());
            }
        }
    }
    Ok(())
}

/// (seq, chain, taken_at, stored payload) of the host's rows of `block`
/// taken up to `to`, in time order.
async fn rows_of(
    tx: &Transaction<'_>,
    block: Block,
    host: i64,
    to: i64,
) -> StoreResult<Vec<(i64, i64, i64, Vec<u8>)>> {
    let rows = tx
        .query_typed(
            &format!(
                "SELECT seq, chain, taken_at, data FROM {}
                 WHERE host = $1 AND taken_at <= $2 ORDER BY taken_at, seq",
                block.partition("raw")
            ),
            &[(&host, Type::INT8), (&to, Type::INT8)],
        )
        .await
        .doing("cannot read history")?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}
