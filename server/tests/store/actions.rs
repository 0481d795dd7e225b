//! The behaviours every `ActionStore` must have: the signing key made
//! once, actions stored, counted, claimed once, their results written
//! once, and the audit log read as it stands. Each test gets a fresh,
//! empty store and speaks to it only through the trait.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use procmon_model::actions::{
    ActionKind, ActionOutcome, ActionReport, ActionResultCode, SignedAction, ACTION_LIFETIME_SECS,
};
use procmon_server::store::actions::{ActionStore, NewAction, ResultRecorded};
use uuid::Uuid;

/// A fresh action store, and whatever must live as long as it.
pub struct Fresh {
    pub actions: Arc<dyn ActionStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! action_tests {
    ($fresh:ident) => {
        $crate::action_tests!(@each $fresh,
            the_signing_seed_is_made_once_and_kept,
            an_action_reads_back_exactly_and_is_claimed_once,
            only_the_hosts_own_waiting_actions_are_counted_and_claimed,
            a_result_is_recorded_once_and_only_for_its_host,
            an_action_that_expired_unreported_reads_failed_unanswered,
            entries_are_listed_newest_first_by_host_up_to_the_limit,
            concurrent_claimers_never_get_the_same_action,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // None: the backend is not there to test (and it said so).
                if let Some(fresh) = $fresh().await {
                    $crate::actions::$name(fresh).await;
                }
            }
        )*
    };
}

/// A time with nanoseconds, as a process's start time has them.
fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00.123456789Z")
        .unwrap()
        .to_utc()
}

fn seconds(s: i64) -> DateTime<Utc> {
    start() + Duration::seconds(s)
}

/// An action on `host`'s pid `pid`, asked for at `at`.
pub fn action(host: &str, pid: u32, at: DateTime<Utc>) -> NewAction {
    let id = Uuid::new_v4();
    NewAction {
        action: SignedAction {
            id,
            host_id: host.into(),
            pid,
            started_at: start() - Duration::nanoseconds(987_654_321),
            kind: ActionKind::Terminate,
            nonce: format!("{:032x}", id.as_u128()),
            issued_at: at,
            expires_at: at + Duration::seconds(ACTION_LIFETIME_SECS),
            signature: format!("signature of {id}"),
        },
        requested_by: "otto".into(),
        requested_at: at,
        hostname: format!("{host}.example"),
        process_name: "nginx".into(),
        process_user: Some("www-data".into()),
        reason: "stuck since the deploy".into(),
    }
}

fn report(code: ActionResultCode, message: &str) -> ActionReport {
    ActionReport {
        code,
        message: message.into(),
    }
}

pub async fn the_signing_seed_is_made_once_and_kept(fresh: Fresh) {
    let a = &fresh.actions;
    let first = a.signing_seed(&[1; 32], start()).await.unwrap();
    assert_eq!(first, [1; 32], "the first candidate is the key");
    let again = a.signing_seed(&[2; 32], seconds(60)).await.unwrap();
    assert_eq!(again, [1; 32], "a later candidate changes nothing");
}

pub async fn an_action_reads_back_exactly_and_is_claimed_once(fresh: Fresh) {
    let a = &fresh.actions;
    let new = action("host-a", 4242, start());
    a.insert_action(&new).await.unwrap();
    assert_eq!(
        a.action(new.action.id, seconds(1)).await.unwrap(),
        Some(new.entry())
    );
    assert_eq!(a.pending_actions("host-a", seconds(1)).await.unwrap(), 1);

    let claimed = a.claim_actions("host-a", seconds(2), 10).await.unwrap();
    assert_eq!(claimed, vec![new.action.clone()], "exactly as signed");
    assert_eq!(a.pending_actions("host-a", seconds(3)).await.unwrap(), 0);
    assert!(
        a.claim_actions("host-a", seconds(3), 10)
            .await
            .unwrap()
            .is_empty(),
        "handed out once"
    );
    let entry = a.action(new.action.id, seconds(3)).await.unwrap().unwrap();
    assert_eq!(entry.outcome, ActionOutcome::Delivered);
    assert_eq!(entry.delivered_at, Some(seconds(2)));
    assert_eq!(entry.code, None);
    assert_eq!(a.action(Uuid::new_v4(), seconds(3)).await.unwrap(), None);
}

pub async fn only_the_hosts_own_waiting_actions_are_counted_and_claimed(fresh: Fresh) {
    let a = &fresh.actions;
    let old = action("host-a", 1, seconds(-ACTION_LIFETIME_SECS - 1));
    let first = action("host-a", 2, seconds(0));
    let second = action("host-a", 3, seconds(1));
    let other = action("host-b", 2, seconds(0));
    let answered = action("host-a", 4, seconds(0));
    for new in [&old, &first, &second, &other, &answered] {
        a.insert_action(new).await.unwrap();
    }
    // Answered before it was fetched (as the server's own agent might):
    // nothing waits.
    a.record_result(
        "host-a",
        answered.action.id,
        &report(ActionResultCode::Gone, "no pid 4"),
        seconds(1),
    )
    .await
    .unwrap();
    let now = seconds(2);
    assert_eq!(a.pending_actions("host-a", now).await.unwrap(), 2);
    assert_eq!(a.pending_actions("host-b", now).await.unwrap(), 1);
    assert_eq!(a.pending_actions("host-c", now).await.unwrap(), 0);

    let one = a.claim_actions("host-a", now, 1).await.unwrap();
    assert_eq!(
        one,
        vec![first.action.clone()],
        "oldest first, to the limit"
    );
    let rest = a.claim_actions("host-a", now, 10).await.unwrap();
    assert_eq!(rest, vec![second.action.clone()]);
    assert_eq!(a.pending_actions("host-b", now).await.unwrap(), 1);

    // Past its expiry an action waits no more.
    let late = seconds(ACTION_LIFETIME_SECS);
    assert_eq!(a.pending_actions("host-b", late).await.unwrap(), 0);
    assert!(a
        .claim_actions("host-b", late, 10)
        .await
        .unwrap()
        .is_empty());
    let entry = a.action(old.action.id, now).await.unwrap().unwrap();
    assert_eq!(entry.delivered_at, None, "never claimed");
}

pub async fn a_result_is_recorded_once_and_only_for_its_host(fresh: Fresh) {
    let a = &fresh.actions;
    let new = action("host-a", 4242, start());
    a.insert_action(&new).await.unwrap();
    a.claim_actions("host-a", seconds(1), 10).await.unwrap();
    let id = new.action.id;
    let done = report(ActionResultCode::Done, "sent SIGTERM");
    assert_eq!(
        a.record_result("host-b", id, &done, seconds(2))
            .await
            .unwrap(),
        ResultRecorded::NotFound,
        "another host's agent"
    );
    assert_eq!(
        a.record_result("host-a", Uuid::new_v4(), &done, seconds(2))
            .await
            .unwrap(),
        ResultRecorded::NotFound
    );
    assert_eq!(
        a.record_result("host-a", id, &done, seconds(2))
            .await
            .unwrap(),
        ResultRecorded::Recorded
    );
    let entry = a.action(id, seconds(3)).await.unwrap().unwrap();
    assert_eq!(entry.outcome, ActionOutcome::Done);
    assert_eq!(entry.code, Some(ActionResultCode::Done));
    assert_eq!(entry.message.as_deref(), Some("sent SIGTERM"));
    assert_eq!(entry.finished_at, Some(seconds(2)));

    let refused = report(ActionResultCode::PidReused, "another process");
    assert_eq!(
        a.record_result("host-a", id, &refused, seconds(4))
            .await
            .unwrap(),
        ResultRecorded::AlreadyRecorded
    );
    assert_eq!(
        a.action(id, seconds(5)).await.unwrap().unwrap(),
        entry,
        "the first result stands"
    );
    // Long after, the real result still stands (no "unanswered").
    assert_eq!(a.action(id, seconds(3600)).await.unwrap().unwrap(), entry);

    let other = action("host-a", 7, start());
    a.insert_action(&other).await.unwrap();
    a.record_result("host-a", other.action.id, &refused, seconds(2))
        .await
        .unwrap();
    let entry = a
        .action(other.action.id, seconds(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.outcome, ActionOutcome::Refused);
    assert_eq!(entry.code, Some(ActionResultCode::PidReused));
}

pub async fn an_action_that_expired_unreported_reads_failed_unanswered(fresh: Fresh) {
    let a = &fresh.actions;
    let new = action("host-a", 4242, start());
    a.insert_action(&new).await.unwrap();
    a.claim_actions("host-a", seconds(1), 10).await.unwrap();
    let expiry = new.action.expires_at;
    let before = a.action(new.action.id, expiry - Duration::nanoseconds(1));
    assert_eq!(
        before.await.unwrap().unwrap().outcome,
        ActionOutcome::Delivered
    );
    let entry = a.action(new.action.id, expiry).await.unwrap().unwrap();
    assert_eq!(entry.outcome, ActionOutcome::Failed);
    assert_eq!(entry.code, Some(ActionResultCode::Unanswered));
    assert!(entry.message.is_some());
    assert_eq!(entry.finished_at, Some(expiry));
    assert_eq!(entry.delivered_at, Some(seconds(1)));
    let listed = a.actions(Some("host-a"), 10, expiry).await.unwrap();
    assert_eq!(listed, vec![entry]);

    // One never fetched reads the same.
    let unfetched = action("host-b", 1, start());
    a.insert_action(&unfetched).await.unwrap();
    let entry = a
        .action(unfetched.action.id, expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.outcome, entry.code),
        (ActionOutcome::Failed, Some(ActionResultCode::Unanswered))
    );
}

pub async fn entries_are_listed_newest_first_by_host_up_to_the_limit(fresh: Fresh) {
    let a = &fresh.actions;
    let mut made = Vec::new();
    for i in 0..6 {
        let host = if i % 2 == 0 { "host-a" } else { "host-b" };
        let new = action(host, i, seconds(i64::from(i)));
        a.insert_action(&new).await.unwrap();
        made.push(new);
    }
    let now = seconds(10);
    let ids = |entries: Vec<procmon_model::actions::ActionEntry>| -> Vec<Uuid> {
        entries.into_iter().map(|e| e.id).collect()
    };
    let all = ids(a.actions(None, 100, now).await.unwrap());
    let expected: Vec<Uuid> = made.iter().rev().map(|n| n.action.id).collect();
    assert_eq!(all, expected);
    let host_a = ids(a.actions(Some("host-a"), 100, now).await.unwrap());
    assert_eq!(
        host_a,
        vec![made[4].action.id, made[2].action.id, made[0].action.id]
    );
    let two = ids(a.actions(None, 2, now).await.unwrap());
    assert_eq!(two, expected[..2]);
    assert!(a
        .actions(Some("host-c"), 100, now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        a.actions(None, 100, now).await.unwrap()[5],
        made[0].entry(),
        "as stored"
    );
}

/// Claims `host-a`'s actions from every store at once, three at a time,
/// until none is left; each must be handed out once, and all of them.
pub async fn claim_all_at_once(stores: Vec<Arc<dyn ActionStore>>, expected: usize) {
    let now = seconds(1);
    let mut tasks = Vec::new();
    for store in stores {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claimed = store.claim_actions("host-a", now, 3).await.expect("claim");
                assert!(claimed.len() <= 3, "a claim of 3 got {}", claimed.len());
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for id in task.await.unwrap() {
            assert!(seen.insert(id), "{id} was handed out twice");
        }
    }
    assert_eq!(seen.len(), expected);
}

/// Stores `count` actions for `host-a`.
pub async fn insert_many(store: &dyn ActionStore, count: u32) {
    for pid in 0..count {
        store
            .insert_action(&action("host-a", pid, start()))
            .await
            .unwrap();
    }
}

pub async fn concurrent_claimers_never_get_the_same_action(fresh: Fresh) {
    insert_many(fresh.actions.as_ref(), 90).await;
    let stores = (0..4).map(|_| Arc::clone(&fresh.actions)).collect();
    claim_all_at_once(stores, 90).await;
}
