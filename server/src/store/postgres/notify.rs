//! Word between the servers of one database: each server that stores a
//! snapshot says so with a `NOTIFY` (host, snapshot, which server), and
//! every server listens on one connection of its own, so that its viewers
//! see snapshots that agents sent to another server.
//!
//! The notification goes out after the snapshot's transaction commits, on a
//! pooled connection of its own, and nobody waits for it: ingest is never
//! held up or serialized by it (a `NOTIFY` inside the write would take a
//! database-wide lock at commit). One that is lost costs a viewer a second
//! or two of staleness, not data: the store holds the snapshot either way,
//! and after the listener reconnects every host is caught up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::Inner;
use crate::store::StoredElsewhere;

/// The channel the servers of one database speak on.
const CHANNEL: &str = "procmon_stored";
/// Notifications heard and not yet handled; beyond it the listener waits
/// (PostgreSQL queues for it meanwhile).
const QUEUE: usize = 1024;
/// The first wait before connecting again, doubled each failure up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What one notification says.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stored {
    host: String,
    snapshot: Uuid,
    /// The server that stored it: a server ignores its own.
    server: Uuid,
}

/// Tells the other servers that `snapshot_id` of `host_id` is stored (and
/// committed). Sent in the background: a failure is logged, never
/// returned, as the snapshot is stored whatever becomes of the word.
pub fn announce(pool: &Pool, server: Uuid, host_id: &str, snapshot_id: Uuid) {
    let pool = pool.clone();
    let payload = serde_json::to_string(&Stored {
        host: host_id.to_owned(),
        snapshot: snapshot_id,
        server,
    })
    .expect("a notification serialises");
    tokio::spawn(async move {
        let sent = match pool.get().await {
            Ok(conn) => conn
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = sent {
            tracing::warn!(
                error = why,
                "cannot tell the other servers of a stored snapshot; \
                 their viewers see it at the next one"
            );
        }
    });
}

/// Starts listening, the first time only (see
/// [`crate::store::Store::stored_elsewhere`]).
pub fn listen(inner: &Inner) -> Option<mpsc::Receiver<StoredElsewhere>> {
    if inner.listening.swap(true, Ordering::SeqCst) {
        return None;
    }
    let (out, heard) = mpsc::channel(QUEUE);
    tokio::spawn(run(
        inner.config.clone(),
        inner.server_id,
        inner.name.clone(),
        out,
    ));
    Some(heard)
}

/// Listens until nobody reads what it hears, connecting again (with a
/// growing pause) whenever the connection is lost.
async fn run(
    config: tokio_postgres::Config,
    me: Uuid,
    name: String,
    out: mpsc::Sender<StoredElsewhere>,
) {
    let mut retry = RETRY_FIRST;
    loop {
        let ended = tokio::select! {
            ended = listen_once(&config, me, &out, &mut retry) => ended,
            () = out.closed() => return,
        };
        match ended {
            Ok(()) => return,
            Err(why) => tracing::warn!(
                database = name,
                error = format!("{why:#}"),
                retry_in_ms = retry.as_millis() as u64,
                "lost the connection that hears of other servers' snapshots; connecting again"
            ),
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// One connection's worth of listening: `Ok` once nobody reads any more,
/// an error when the connection is lost. Once it listens, `retry` goes
/// back to its first pause and viewers are told to catch up (whatever was
/// said while nobody listened is lost).
async fn listen_once(
    config: &tokio_postgres::Config,
    me: Uuid,
    out: &mpsc::Sender<StoredElsewhere>,
    retry: &mut Duration,
) -> anyhow::Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // Bounded: while the relay is behind, the connection is not read and
    // PostgreSQL queues the notifications (not this server's memory).
    let (heard, mut notifications) = mpsc::channel(QUEUE);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message? {
                if heard.send(n).await.is_err() {
                    break;
                }
            }
        }
        Ok::<_, tokio_postgres::Error>(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::info!("listening for other servers' snapshots");
    *retry = RETRY_FIRST;
    if out.send(StoredElsewhere::MayHaveMissed).await.is_err() {
        return Ok(());
    }
    while let Some(notification) = notifications.recv().await {
        let said = match serde_json::from_str::<Stored>(notification.payload()) {
            Ok(said) => said,
            Err(e) => {
                tracing::warn!(
                    payload = notification.payload(),
                    error = %e,
                    "a notification on {CHANNEL} is not one procmon sends; ignored"
                );
                continue;
            }
        };
        if said.server == me {
            continue;
        }
        let word = StoredElsewhere::Snapshot {
            host_id: said.host,
            snapshot_id: said.snapshot,
        };
        if out.send(word).await.is_err() {
            return Ok(());
        }
    }
    drop(client);
    match driver.await {
        Ok(Ok(())) => anyhow::bail!("the database closed the connection"),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(anyhow::anyhow!("the connection's task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_stays_small() {
        let said = Stored {
            host: "h".repeat(256),
            snapshot: Uuid::new_v4(),
            server: Uuid::new_v4(),
        };
        let text = serde_json::to_string(&said).unwrap();
        // PostgreSQL refuses payloads of 8,000 bytes or more.
        assert!(text.len() < 1_000, "{}", text.len());
        assert_eq!(serde_json::from_str::<Stored>(&text).unwrap(), said);
    }
}
