//! Removing one host with all its history, for an admin clearing out a
//! host that is gone. History lives in blocks (a table per span of time),
//! so the host's rows go block by block, each in a short transaction of
//! its own, as maintenance works: no write waits long behind it. The last
//! transaction sweeps every block once more (a snapshot may have arrived
//! meanwhile; finding nothing is cheap, by index) and deletes the host row,
//! so no row of it outlives the host.

use rusqlite::{params, Connection, OptionalExtension};

use super::errors::Classify;
use super::schema::{self, Block, Kind};
use super::Inner;
use crate::store::StoreResult;

/// Removes the host `host_id`; false when there is none.
pub(super) fn remove_host(inner: &Inner, host_id: &str) -> StoreResult<bool> {
    let Some(key) = inner.read(|conn| key_of(conn, host_id))? else {
        return Ok(false);
    };
    let blocks = inner.read(schema::blocks)?;
    for block in blocks {
        let gone = inner.write(|w| {
            w.transaction(|conn| {
                // Host keys can be handed out again once a row is gone:
                // only delete while the key still names this host.
                if key_of(conn, host_id)? != Some(key) {
                    return Ok(true);
                }
                delete_rows(conn, block, key)?;
                Ok(false)
            })
        })?;
        if gone {
            return Ok(false);
        }
    }
    inner.write(|w| {
        let removed = w.transaction(|conn| {
            if key_of(conn, host_id)? != Some(key) {
                return Ok(false);
            }
            for block in schema::blocks(conn)? {
                delete_rows(conn, block, key)?;
            }
            conn.prepare_cached("DELETE FROM load_point WHERE host_id = ?1")
                .and_then(|mut s| s.execute([host_id]))
                .doing("cannot remove the host's load")?;
            conn.prepare_cached("DELETE FROM host WHERE key = ?1")
                .and_then(|mut s| s.execute([key]))
                .doing("cannot remove the host")?;
            Ok(true)
        })?;
        // Inside the same hold of the writer: no snapshot can be written
        // between the commit and this.
        w.forget_host(host_id);
        Ok(removed)
    })
}

/// The row key of the host `host_id`, if stored.
fn key_of(conn: &Connection, host_id: &str) -> StoreResult<Option<i64>> {
    conn.prepare_cached("SELECT key FROM host WHERE id = ?1")
        .and_then(|mut s| s.query_row([host_id], |r| r.get(0)).optional())
        .doing("cannot read the host")
}

/// Deletes the host's rows from a block's tables (a roll-up block has two).
fn delete_rows(conn: &Connection, block: Block, key: i64) -> StoreResult<()> {
    let mut tables = vec![block.table()];
    if block.kind != Kind::Raw {
        tables.push(block.host_table());
    }
    for table in tables {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE host = ?1"))
            .and_then(|mut s| s.execute(params![key]))
            .doing("cannot remove the host's history")?;
    }
    Ok(())
}
