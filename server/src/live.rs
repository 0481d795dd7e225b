//! Each host's current snapshot, held in memory, and its changes as they
//! happen.
//!
//! Viewers watching a host are pushed what changed, so the host's latest
//! snapshot is kept at hand here. This is what the server shows, not what
//! correctness needs: the store owns each host's newest snapshot and checks
//! a change batch's base itself, so any server can take any batch. [`Live`]
//! keeps one [`HostLive`] per host that sent to this server since it
//! started. Ingest for one host is serialised by its lock
//! ([`HostLive::lock`]): store, then commit, so viewers see snapshots in
//! the order stored.
//!
//! Each committed snapshot makes one [`LiveEvent`], computed once per host
//! whatever the number of viewers, named by the id of the snapshot it
//! brings viewers to: a name that means the same on every server and after
//! a restart. A viewer that reconnects says the last one it saw and is
//! sent what followed from a short backlog; what is not there is for the
//! caller to make up from the store (see `api::live`).
//!
//! Snapshots come from this server's ingest and, on a database that
//! several servers share, from the others' (`relay`): either way they are
//! committed here under the host's lock, and this module only publishes.
//!
//! Memory: one snapshot per host (about 300 KB for 1,000 processes) plus the
//! backlog, the snapshot shared with the store's own copy. Host load
//! points are the store's (`store::load`). Nothing here is durable: after a restart, viewers of a
//! host reload once its first snapshot arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use procmon_model::changes::diff;
use procmon_model::{ChangeBatch, Snapshot};
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept per host for viewers that reconnect.
const BACKLOG: usize = 64;
/// Events a slow viewer may fall behind before it must reload.
const CHANNEL: usize = 256;

/// One change of one host, as viewers receive it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveEvent {
    /// The snapshot the event brings the viewer to: the event's id, and
    /// where a viewer that reconnects resumes, on any server.
    pub snapshot_id: uuid::Uuid,
    /// What changed since the snapshot of the previous event; absent when
    /// there is no previous one here (the first snapshot since the server
    /// started), and the viewer must load the host's listing again.
    pub batch: Option<ChangeBatch>,
    /// The event as JSON: written by the first viewer's stream that sends
    /// it, and sent as it is by every other, so a change is serialized once
    /// per host whatever the number of viewers (and not at all with none).
    #[serde(skip)]
    json: std::sync::OnceLock<String>,
}

impl LiveEvent {
    /// The event that brings viewers to `snapshot_id` by `batch`.
    pub fn new(snapshot_id: uuid::Uuid, batch: Option<ChangeBatch>) -> Self {
        LiveEvent {
            snapshot_id,
            batch,
            json: std::sync::OnceLock::new(),
        }
    }

    /// The event as JSON, written once.
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(self).expect("a live event serialises"))
    }
}

/// Every host's live state.
pub struct Live {
    hosts: Mutex<HashMap<String, Arc<HostLive>>>,
    /// True once the server stops: viewers' streams end, so they do not
    /// hold the shutdown for its whole grace period.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        Live {
            hosts: Mutex::new(HashMap::new()),
            stopping: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every viewer's stream (the server is stopping).
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true when the server stops.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The hosts someone watches here now.
    pub fn watched(&self) -> Vec<String> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .iter()
            .filter(|(_, host)| host.watched())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The host's live state, made empty if the host has not sent since the
    /// server started.
    pub fn host(&self, host_id: &str) -> Arc<HostLive> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            hosts
                .entry(host_id.to_string())
                .or_insert_with(|| Arc::new(HostLive::new())),
        )
    }

    /// The host's live state if it has sent since the server started.
    pub fn existing(&self, host_id: &str) -> Option<Arc<HostLive>> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.get(host_id).cloned()
    }

    /// Forgets a host (it was removed).
    pub fn remove(&self, host_id: &str) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.remove(host_id);
    }
}

/// One host's current snapshot and its stream of changes.
pub struct HostLive {
    /// Held by one ingest at a time, from reading the base to the commit.
    ingest: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Arc<LiveEvent>>,
    /// A copy of what viewers need without waiting on an ingest: the
    /// latest snapshot and the backlog.
    shared: Mutex<Shared>,
    /// The latest snapshot's listing as sent to viewers, once one asked.
    encoded: Mutex<Option<Arc<EncodedListing>>>,
}

/// A host's newest listing as it goes on the wire, made once per snapshot
/// for every viewer that opens the host (see `api::processes`).
pub struct EncodedListing {
    /// The snapshot listed.
    pub snapshot_id: uuid::Uuid,
    /// The host's summary as it was listed: the body holds it, and it moves
    /// (online, last seen) between snapshots.
    pub summary: Vec<u8>,
    /// The whole body, gzipped.
    pub gzip: axum::body::Bytes,
}

/// The latest snapshot, with when it arrived.
pub struct Newest {
    pub snapshot: Arc<Snapshot>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
}

impl Newest {
    /// When it was taken, by the store's rule: the earlier of when it was
    /// collected and when it was received (an agent clock running ahead
    /// cannot put a snapshot in the future).
    pub fn taken_at(&self) -> DateTime<Utc> {
        crate::store::changes::taken_at(self.snapshot.collected_at, self.received_at)
    }
}

#[derive(Default)]
struct Shared {
    /// The latest snapshot and when the server received it.
    latest: Option<(Arc<Snapshot>, DateTime<Utc>)>,
    backlog: VecDeque<Arc<LiveEvent>>,
}

/// What a viewer gets when it subscribes: where the stream stands, and the
/// events after the one it last saw if they are still kept.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<LiveEvent>>,
    /// The snapshot the stream stands at: the receiver's first event
    /// follows it.
    pub newest: Option<Arc<Snapshot>>,
    /// Events after the viewer's last one, oldest first; `None` when they
    /// are not kept here (another server's, too old, or none asked for).
    pub missed: Option<Vec<Arc<LiveEvent>>>,
}

impl HostLive {
    fn new() -> Self {
        HostLive {
            ingest: tokio::sync::Mutex::new(()),
            events: broadcast::channel(CHANNEL).0,
            shared: Mutex::new(Shared::default()),
            encoded: Mutex::new(None),
        }
    }

    /// The latest snapshot, when the host sent since the server started.
    pub fn newest(&self) -> Option<Newest> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let (snapshot, received_at) = shared.latest.clone()?;
        Some(Newest {
            snapshot,
            received_at,
        })
    }

    /// Whether a viewer watches the host here now.
    pub fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// The listing kept for `snapshot_id`, if one was made.
    pub fn encoded(&self, snapshot_id: uuid::Uuid) -> Option<Arc<EncodedListing>> {
        let kept = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|e| e.snapshot_id == snapshot_id)
            .cloned()
    }

    /// Keeps `listing` for the viewers after this one (it replaces the one
    /// of an older snapshot).
    pub fn keep_encoded(&self, listing: Arc<EncodedListing>) {
        *self.encoded.lock().unwrap_or_else(|e| e.into_inner()) = Some(listing);
    }

    /// Takes the host's ingest lock: hold it from reading the base until
    /// the snapshot is stored and committed.
    pub async fn lock(&self) -> HostGuard<'_> {
        let lock = self.ingest.lock().await;
        // Only the holder of the lock changes the latest snapshot, so it
        // stays the base until the holder commits.
        let base = self.newest();
        HostGuard {
            _lock: lock,
            host: self,
            base,
        }
    }

    /// Starts watching: events from now on, and those after `since` (the
    /// snapshot the viewer last had) if they are still kept.
    pub fn subscribe(&self, since: Option<uuid::Uuid>) -> Subscription {
        // Subscribing under the lock that `commit` publishes under means no
        // event falls between the backlog and the receiver.
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = self.events.subscribe();
        let newest = shared.latest.as_ref().map(|(s, _)| Arc::clone(s));
        let missed = since.and_then(|since| {
            if newest.as_ref().is_some_and(|n| n.id == since) {
                return Some(Vec::new());
            }
            let after = shared.backlog.iter().position(|e| e.snapshot_id == since)?;
            Some(shared.backlog.iter().skip(after + 1).cloned().collect())
        });
        Subscription {
            receiver,
            newest,
            missed,
        }
    }
}

/// The host's ingest lock, with its current snapshot.
pub struct HostGuard<'a> {
    _lock: tokio::sync::MutexGuard<'a, ()>,
    host: &'a HostLive,
    base: Option<Newest>,
}

impl HostGuard<'_> {
    /// The snapshot a change batch must be relative to.
    pub fn base(&self) -> Option<&Arc<Snapshot>> {
        self.base.as_ref().map(|base| &base.snapshot)
    }

    /// The host's current snapshot here, with when it arrived.
    pub fn current(&self) -> Option<&Newest> {
        self.base.as_ref()
    }

    /// Makes `snapshot` (just stored, received at `received_at`) the host's
    /// current one, and tells viewers what changed. A snapshot taken before
    /// the current one (a late retry) is stored but changes nothing here:
    /// the same rule as the store's for its newest, so both name the same
    /// snapshot.
    ///
    /// `sent` is the change batch that made `snapshot`, when one did: when
    /// its base is the snapshot viewers have, it is what they are pushed,
    /// as it came (without the host's facts unless they changed), and no
    /// diff is made here.
    pub fn commit(
        &mut self,
        snapshot: Arc<Snapshot>,
        received_at: DateTime<Utc>,
        sent: Option<&ChangeBatch>,
    ) {
        if let Some(current) = &self.base {
            if crate::store::changes::taken_at(snapshot.collected_at, received_at)
                < current.taken_at()
            {
                return;
            }
        }
        let batch = self.base().map(|base| match sent {
            Some(sent) if sent.base_id == base.id && sent.id == snapshot.id => sent.clone(),
            _ => diff(base, &snapshot),
        });

        let mut shared = self.host.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.latest = Some((Arc::clone(&snapshot), received_at));
        let event = Arc::new(LiveEvent::new(snapshot.id, batch));
        if shared.backlog.len() == BACKLOG {
            shared.backlog.pop_front();
        }
        shared.backlog.push_back(Arc::clone(&event));
        // The next batch of this ingest lock's holder is relative to it.
        self.base = Some(Newest {
            snapshot,
            received_at,
        });
        // No viewer is not an error.
        let _ = self.host.events.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use procmon_model::changes::apply;
    use procmon_model::fixtures::SimHost;

    /// Commits `snapshot` as received when it was collected.
    async fn put(host: &HostLive, snapshot: Snapshot) {
        let at = snapshot.collected_at;
        host.lock().await.commit(Arc::new(snapshot), at, None);
    }

    #[tokio::test]
    async fn viewers_get_each_change_once_and_can_rebuild_the_snapshot() {
        let live = Live::new();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut sim = SimHost::new("h", 200, 3, start);
        let host = live.host("h");
        let first = sim.next();
        put(&host, first.clone()).await;
        let mut sub = host.subscribe(Some(first.id));
        assert_eq!(sub.newest.as_ref().map(|n| n.id), Some(first.id));
        assert!(sub.missed.as_ref().is_some_and(|m| m.is_empty()));
        let mut seen = first;
        for _ in 0..10 {
            let next = sim.next();
            put(&host, next.clone()).await;
            let event = sub.receiver.recv().await.unwrap();
            seen = apply(&seen, event.batch.as_ref().unwrap()).unwrap();
            let mut a = seen.processes.clone();
            let mut b = next.processes.clone();
            a.sort_by_key(|p| p.pid);
            b.sort_by_key(|p| p.pid);
            assert_eq!(a, b);
        }
        assert_eq!(host.newest().unwrap().snapshot.id, seen.id);
    }

    #[tokio::test]
    async fn an_event_is_written_as_json_once_for_every_viewer() {
        let live = Live::new();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut sim = SimHost::new("h", 50, 3, start);
        let host = live.host("h");
        put(&host, sim.next()).await;
        let mut one = host.subscribe(None).receiver;
        let mut two = host.subscribe(None).receiver;
        let second = sim.next();
        put(&host, second.clone()).await;
        let (a, b) = (one.recv().await.unwrap(), two.recv().await.unwrap());
        assert!(
            std::ptr::eq(a.json(), b.json()),
            "the same text, not a copy"
        );
        let sent: serde_json::Value = serde_json::from_str(a.json()).unwrap();
        assert_eq!(sent["snapshot_id"], second.id.to_string());
        let batch: ChangeBatch = serde_json::from_value(sent["batch"].clone()).unwrap();
        assert_eq!(Some(batch), a.batch);
        assert_eq!(sent.as_object().unwrap().len(), 2, "{sent}");
    }

    #[tokio::test]
    async fn a_viewer_resumes_from_the_backlog_or_is_told_to_reload() {
        let live = Live::new();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut sim = SimHost::new("h", 20, 3, start);
        let host = live.host("h");
        let mut ids = Vec::new();
        for _ in 0..(BACKLOG + 10) {
            let next = sim.next();
            ids.push(next.id);
            put(&host, next).await;
        }
        let n = ids.len();
        let recent = host.subscribe(Some(ids[n - 4])).missed.unwrap();
        assert_eq!(
            recent.iter().map(|e| e.snapshot_id).collect::<Vec<_>>(),
            ids[n - 3..].to_vec()
        );
        assert!(host.subscribe(Some(ids[0])).missed.is_none(), "too old");
        assert!(
            host.subscribe(Some(uuid::Uuid::new_v4())).missed.is_none(),
            "not one of this server's"
        );
    }

    #[tokio::test]
    async fn a_late_snapshot_does_not_move_the_host_back() {
        let live = Live::new();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut sim = SimHost::new("h", 20, 3, start);
        let early = sim.next();
        let late = sim.next();
        let host = live.host("h");
        put(&host, late.clone()).await;
        put(&host, early).await;
        assert_eq!(host.newest().unwrap().snapshot.id, late.id);
    }

    #[tokio::test]
    async fn the_newest_is_the_one_taken_last_as_the_store_counts_it() {
        let live = Live::new();
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut sim = SimHost::new("h", 20, 3, start);
        let host = live.host("h");
        // The agent's clock ran an hour ahead: taken when received.
        let mut ahead = sim.next();
        ahead.collected_at += chrono::Duration::hours(1);
        host.lock()
            .await
            .commit(Arc::new(ahead), start + chrono::Duration::seconds(2), None);
        // Its clock is put right: the next snapshot is the newer one.
        let right = sim.next();
        let received = right.collected_at;
        host.lock()
            .await
            .commit(Arc::new(right.clone()), received, None);
        let newest = host.newest().unwrap();
        assert_eq!(newest.snapshot.id, right.id);
        assert_eq!(newest.received_at, received);
        assert_eq!(newest.taken_at(), right.collected_at);
    }
}
