//! Rebuilding snapshots from raw blocks: one snapshot by following its
//! chain from the keyframe, or every snapshot of a span in time order.

use std::collections::HashMap;
use std::ops::ControlFlow;

use anyhow::Context;
use procmon_model::ProcessSample;
use rusqlite::{params, Connection, OptionalExtension};
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
pub fn head_at(
    conn: &Connection,
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
        let head = head_in(
            conn,
            block,
            "host = ?1 AND taken_at <= ?2 AND taken_at >= ?3
             ORDER BY taken_at DESC, seq DESC",
            params![host, at, not_before],
        )?;
        if head.is_some() {
            return Ok(head);
        }
    }
    Ok(None)
}

/// The host's snapshot `id`, if kept (taken not before `not_before`),
/// looking through `raw` blocks newest first.
pub fn head_of(
    conn: &Connection,
    raw: &[Block],
    host: i64,
    id: Uuid,
    not_before: i64,
) -> StoreResult<Option<Head>> {
    for &block in raw.iter().rev() {
        if block.end() <= not_before {
            break;
        }
        let head = head_in(
            conn,
            block,
            "id = ?1 AND host = ?2 AND taken_at >= ?3",
            params![id.as_bytes().as_slice(), host, not_before],
        )?;
        if head.is_some() {
            return Ok(head);
        }
    }
    Ok(None)
}

/// The first snapshot of `block` that `condition` (with `params`) picks.
fn head_in(
    conn: &Connection,
    block: Block,
    condition: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<Option<Head>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT seq, chain, id, taken_at, collected_at, received_at FROM {}
             WHERE {condition} LIMIT 1",
            block.table()
        ))
        .doing("cannot read a snapshot")?;
    let head = statement
        .query_row(params, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()
        .doing("cannot read a snapshot")?;
    let Some((seq, chain, id, taken_at, collected_at, received_at)) = head else {
        return Ok(None);
    };
    Ok(Some(Head {
        block,
        seq,
        chain,
        id: Uuid::from_slice(&id).context("stored snapshot id is not a UUID")?,
        taken_at,
        collected_at,
        received_at,
    }))
}

/// The processes of the snapshot `head`, rebuilt from its chain, and how
/// many snapshots the chain holds up to it.
pub fn rebuild(conn: &Connection, head: &Head) -> StoreResult<(Chain, u32)> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT data FROM {} WHERE chain = ?1 AND seq <= ?2 ORDER BY seq",
            head.block.table()
        ))
        .doing("cannot read a snapshot")?;
    let mut rows = statement
        .query(params![head.chain, head.seq])
        .doing("cannot read a snapshot")?;
    let mut chain = Chain::default();
    let mut length = 0;
    while let Some(row) = rows.next().doing("cannot read a snapshot")? {
        let data = row.get_ref(0).doing("cannot read a snapshot")?;
        let data = data.as_blob().context("stored snapshot is not a blob")?;
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
pub fn replay(
    conn: &Connection,
    raw: &[Block],
    host: i64,
    from: i64,
    to: i64,
    events: bool,
    mut visit: impl FnMut(Step<'_>) -> ControlFlow<()>,
) -> StoreResult<()> {
    let blocks: Vec<Block> = raw
        .iter()
        .copied()
        .filter(|b| b.kind == Kind::Raw && b.end() > from && b.start() <= to)
        .collect();
    // The state before the first block, so its first snapshot's events are
    // relative to what came before.
    let mut previous: Option<Chain> = None;
    if events {
        if let Some(first) = blocks.first() {
            if let Some(head) = head_at(conn, raw, host, first.start() - 1, i64::MIN)? {
                previous = Some(rebuild(conn, &head)?.0);
            }
        }
    }
    let mut scratch = Vec::new();
    for block in blocks {
        let mut chains: HashMap<i64, Chain> = HashMap::new();
        let mut last: Option<i64> = None;
        let flow = rows_of(conn, block, host, to, |seq, chain_id, taken_at, payload| {
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
                state.apply(payload, Some(&mut scratch))?;
            } else {
                state.apply(payload, None)?;
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
            Ok(flow)
        })?;
        if flow.is_break() {
            return Ok(());
        }
        if let Some(l) = last {
            previous = chains.remove(&l);
        }
    }
    Ok(())
}

/// Calls `visit` for every snapshot of the host taken within `[from, to]`,
/// in time order, with the process `target` as it was then (or `None`),
/// following only that process through the payloads.
pub fn replay_one(
    conn: &Connection,
    raw: &[Block],
    host: i64,
    target: Identity,
    from: i64,
    to: i64,
    mut visit: impl FnMut(i64, Option<&ProcessSample>),
) -> StoreResult<()> {
    for block in raw
        .iter()
        .filter(|b| b.kind == Kind::Raw && b.end() > from && b.start() <= to)
    {
        let mut chains: HashMap<i64, Follower> = HashMap::new();
        // It never breaks: every snapshot of the range is visited.
        let _ = rows_of(
            conn,
            *block,
            host,
            to,
            |seq, chain_id, taken_at, payload| {
                let follower = chains
                    .entry(chain_id)
                    .or_insert_with(|| Follower::new(target));
                follower
                    .apply(payload)
                    .with_context(|| format!("snapshot {seq} does not decode"))?;
                if taken_at >= from {
                    visit(taken_at, follower.current());
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
    }
    Ok(())
}

/// Calls `each` with (seq, chain, taken_at, payload) for the host's rows
/// of `block` taken up to `to`, in time order, until it breaks.
fn rows_of(
    conn: &Connection,
    block: Block,
    host: i64,
    to: i64,
    mut each: impl FnMut(i64, i64, i64, &[u8]) -> StoreResult<ControlFlow<()>>,
) -> StoreResult<ControlFlow<()>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT seq, chain, taken_at, data FROM {}
             WHERE host = ?1 AND taken_at <= ?2 ORDER BY taken_at, seq",
            block.table()
        ))
        .doing("cannot read history")?;
    let mut rows = statement
        .query(params![host, to])
        .doing("cannot read history")?;
    while let Some(row) = rows.next().doing("cannot read history")? {
        let seq: i64 = row.get(0).doing("cannot read history")?;
        let chain_id: i64 = row.get(1).doing("cannot read history")?;
        let taken_at: i64 = row.get(2).doing("cannot read history")?;
        let data = row.get_ref(3).doing("cannot read history")?;
        let payload = codec::open(data.as_blob().context("stored snapshot is not a blob")?)?;
        if each(seq, chain_id, taken_at, &payload)?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}
