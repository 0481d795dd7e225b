//! What the agent sends when: whole at first, then change batches against
//! the last snapshot the server acknowledged, and whole again at once when
//! the server lacks a batch's base.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use procmon_agent::{Deliver, Delivery, Link, Pace, SendError};
use procmon_model::changes::apply;
use procmon_model::fixtures::SimHost;
use procmon_model::{IngestResponse, Snapshot, SpoolReport};
use uuid::Uuid;

/// What a stand-in server was sent: (whole?, snapshot id, base id).
type Seen = Vec<(bool, Uuid, Option<Uuid>)>;

/// A stand-in server: answers each delivery as told (201 unless a refusal
/// is queued), keeps what it holds as the host's latest, and never
/// applies a batch to another base.
#[derive(Default, Clone)]
struct StandIn {
    seen: Arc<Mutex<Seen>>,
    refusals: Arc<Mutex<VecDeque<SendError>>>,
    latest: Arc<Mutex<Option<Snapshot>>>,
}

impl StandIn {
    fn refuse_next(&self, error: SendError) {
        self.refusals.lock().unwrap().push_back(error);
    }

    fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// The server lost what it held (it restarted).
    fn restart(&self) {
        *self.latest.lock().unwrap() = None;
    }
}

impl Deliver for StandIn {
    async fn deliver(&mut self, delivery: Delivery<'_>) -> Result<IngestResponse, SendError> {
        let entry = match delivery {
            Delivery::Full(s) => (true, s.id, None),
            Delivery::Batch(b) => (false, b.id, Some(b.base_id)),
        };
        self.seen.lock().unwrap().push(entry);
        if let Some(error) = self.refusals.lock().unwrap().pop_front() {
            return Err(error);
        }
        let mut latest = self.latest.lock().unwrap();
        let made = match delivery {
            Delivery::Full(s) => s.clone(),
            Delivery::Batch(b) => match latest.as_ref().map(|base| apply(base, b)) {
                Some(Ok(made)) => made,
                _ => {
                    return Err(SendError::BaseUnknown {
                        message: "not held".into(),
                    })
                }
            },
        };
        *latest = Some(made);
        Ok(IngestResponse {
            snapshot_id: delivery.id(),
            stored: true,
            pending_actions: 0,
        })
    }

    // These tests send without a spool, so none is ever noted.
    fn spool_is(&mut self, _report: SpoolReport) {}
}

fn snapshots(n: usize) -> Vec<Snapshot> {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut host = SimHost::new("h", 40, 9, start);
    (0..n).map(|_| host.next()).collect()
}

fn sorted(mut s: Snapshot) -> Vec<procmon_model::ProcessSample> {
    s.processes.sort_by_key(|p| p.pid);
    s.processes
}

#[tokio::test]
async fn whole_first_then_batches_against_the_last_acknowledged() {
    let mut server = StandIn::default();
    let mut link = Link::new(Duration::from_secs(600));
    let s = snapshots(4);
    for snapshot in &s {
        link.send(&mut server, snapshot.clone()).await.unwrap();
    }
    assert_eq!(
        server.seen(),
        vec![
            (true, s[0].id, None),
            (false, s[1].id, Some(s[0].id)),
            (false, s[2].id, Some(s[1].id)),
            (false, s[3].id, Some(s[2].id)),
        ]
    );
    let held = server.latest.lock().unwrap().clone().unwrap();
    assert_eq!(sorted(held), sorted(s[3].clone()));
}

#[tokio::test]
async fn base_unknown_resends_that_same_snapshot_whole_at_once() {
    let mut server = StandIn::default();
    let mut link = Link::new(Duration::from_secs(600));
    let s = snapshots(4);
    link.send(&mut server, s[0].clone()).await.unwrap();
    link.send(&mut server, s[1].clone()).await.unwrap();
    server.restart();
    let sent = link.send(&mut server, s[2].clone()).await.unwrap();
    assert!(sent.full);
    link.send(&mut server, s[3].clone()).await.unwrap();
    assert_eq!(
        server.seen()[2..],
        [
            (false, s[2].id, Some(s[1].id)),
            (true, s[2].id, None),
            (false, s[3].id, Some(s[2].id)),
        ]
    );
}

#[tokio::test]
async fn a_failed_send_keeps_the_base_the_server_acknowledged() {
    let mut server = StandIn::default();
    let mut link = Link::new(Duration::from_secs(600));
    let s = snapshots(3);
    link.send(&mut server, s[0].clone()).await.unwrap();
    server.refuse_next(SendError::Unreachable {
        url: "x".into(),
        cause: "down".into(),
    });
    assert!(link.send(&mut server, s[1].clone()).await.is_err());
    assert_eq!(link.acked().map(|a| a.id), Some(s[0].id));
    // Relative to the last acknowledged, not to the one that failed.
    link.send(&mut server, s[2].clone()).await.unwrap();
    assert_eq!(server.seen()[2], (false, s[2].id, Some(s[0].id)));
}

#[tokio::test]
async fn a_whole_snapshot_goes_every_full_every() {
    let mut server = StandIn::default();
    let mut link = Link::new(Duration::ZERO);
    for snapshot in snapshots(3) {
        assert!(link.send(&mut server, snapshot).await.unwrap().full);
    }
    assert!(server.seen().iter().all(|(whole, _, _)| *whole));
}

/// The loop itself, with the real collector: whole first, batches after,
/// and whole again after the stand-in server "restarts".
#[tokio::test]
async fn the_loop_sends_whole_then_changes_and_mends_a_restart() {
    let server = StandIn::default();
    let watcher = server.clone();
    let pace = Pace {
        interval: Duration::from_millis(300),
        full_every: Duration::from_secs(600),
    };
    let restarter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        watcher.restart();
    });
    procmon_agent::run_with(
        server.clone(),
        pace,
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    restarter.await.unwrap();
    let seen = server.seen();
    assert!(seen.len() >= 6, "{seen:?}");
    assert!(seen[0].0, "the first goes whole");
    assert!(!seen[1].0, "then changes");
    // After the restart: a refused batch, then that same snapshot whole.
    let refused = seen
        .iter()
        .position(|(whole, id, _)| !whole && seen.iter().filter(|e| e.1 == *id).count() == 2)
        .expect("a batch was refused and its snapshot sent again");
    assert!(seen[refused + 1].0);
    assert_eq!(seen[refused + 1].1, seen[refused].1);
    assert!(!seen.last().unwrap().0, "and changes after that: {seen:?}");
}
