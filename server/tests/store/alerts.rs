//! The behaviours every `AlertStore` must have: rules kept with every
//! version, alerts changed only by compare-and-swap on their revision (so
//! two servers raise and tell of a transition once), notifications queued
//! only with the change that sends them, silences.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use procmon_model::alerts::{
    Alert, AlertCondition, AlertRule, AlertRuleSpec, AlertState, ProcessMatch, Severity, Silence,
    TextMatch,
};
use procmon_server::store::alerts::{
    AlertFilter, AlertRecord, AlertStore, AlertWrite, QueuedDelivery, RuleRefused,
};

/// A fresh alert store, and whatever must live as long as it.
pub struct Fresh {
    pub alerts: Arc<dyn AlertStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! alert_tests {
    ($fresh:ident) => {
        $crate::alert_tests!(@each $fresh,
            rules_keep_every_version_and_refuse_a_stale_change,
            deleting_a_rule_takes_its_open_alerts_and_keeps_resolved_ones,
            one_open_alert_per_rule_host_and_subject,
            of_two_writes_on_one_revision_one_applies_with_its_notifications,
            an_older_observation_is_not_applied,
            a_resolved_alert_is_history_and_another_may_open,
            alerts_are_listed_by_state_host_and_rule_newest_first,
            silences_are_kept_until_they_end,
            firings_are_counted_per_rule_host_and_subject_from_a_time,
            the_flapping_mark_is_the_newest_firings_until_it_settles,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(fresh) = $fresh().await {
                    $crate::alerts::$name(fresh).await;
                }
            }
        )*
    };
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z")
        .unwrap()
        .to_utc()
        + Duration::seconds(s)
}

fn rule(id: &str, version: u32, name: &str) -> AlertRule {
    AlertRule {
        id: id.into(),
        version,
        created_at: at(0),
        updated_at: at(i64::from(version)),
        updated_by: "admin".into(),
        spec: AlertRuleSpec {
            name: name.into(),
            severity: Severity::Warning,
            hosts: vec![],
            host_labels: vec![],
            condition: AlertCondition::ProcessAbsent {
                process: ProcessMatch {
                    name: Some(TextMatch::Equals("nginx".into())),
                    ..Default::default()
                },
            },
            for_seconds: 0,
            clear_seconds: 0,
            repeat_seconds: None,
            channels: vec![],
            enabled: true,
        },
    }
}

/// A new pending alert (revision 0: to be inserted).
fn new_alert(rule: &str, host: &str, subject: &str, since: i64) -> AlertRecord {
    AlertRecord {
        alert: Alert {
            id: uuid::Uuid::new_v4().to_string(),
            rule_id: rule.into(),
            rule_name: "r".into(),
            severity: Severity::Warning,
            host_id: host.into(),
            process: None,
            state: AlertState::Pending,
            since: at(since),
            fired_at: None,
            resolved_at: None,
            value: 0.0,
            summary: "nginx absent".into(),
            silenced_until: None,
            flapping: false,
        },
        subject: subject.into(),
        revision: 0,
        observed_at: at(since),
        clear_since: None,
        notified_at: None,
    }
}

fn write(record: AlertRecord) -> AlertWrite {
    AlertWrite {
        record,
        forget: false,
        deliveries: vec![],
    }
}

/// `record` moved on to `state` as of `seen`, replacing revision `from`.
fn moved(record: &AlertRecord, from: i64, state: AlertState, seen: i64) -> AlertRecord {
    let mut next = record.clone();
    next.revision = from;
    next.observed_at = at(seen);
    next.alert.state = state;
    match state {
        AlertState::Firing => next.alert.fired_at = Some(at(seen)),
        AlertState::Resolved => next.alert.resolved_at = Some(at(seen)),
        AlertState::Pending => {}
    }
    next
}

async fn open(store: &dyn AlertStore) -> Vec<AlertRecord> {
    store.open_alerts(None).await.expect("the store answers")
}

pub async fn rules_keep_every_version_and_refuse_a_stale_change(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    store.create_rule(&rule("a", 1, "first")).await.unwrap();
    store.create_rule(&rule("b", 1, "another")).await.unwrap();
    assert_eq!(
        store.update_rule(&rule("a", 2, "second")).await.unwrap(),
        Ok(())
    );
    // Version 2 again, as a second editor who read version 1 would send.
    assert_eq!(
        store.update_rule(&rule("a", 2, "lost")).await.unwrap(),
        Err(RuleRefused::VersionMoved { now: 2 })
    );
    assert_eq!(
        store.update_rule(&rule("nope", 2, "x")).await.unwrap(),
        Err(RuleRefused::NotFound)
    );
    let names: Vec<_> = store
        .rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.spec.name)
        .collect();
    assert_eq!(names, ["another", "second"], "by name, newest versions");
    let versions = store.rule_versions("a").await.unwrap();
    let seen: Vec<_> = versions
        .iter()
        .map(|r| (r.version, r.spec.name.as_str()))
        .collect();
    assert_eq!(seen, [(1, "first"), (2, "second")]);
    assert_eq!(versions[1].created_at, at(0));
    assert_eq!(versions[1].updated_at, at(2));
}

pub async fn deleting_a_rule_takes_its_open_alerts_and_keeps_resolved_ones(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    store.create_rule(&rule("a", 1, "r")).await.unwrap();
    let done = new_alert("a", "h1", "", 0);
    store.write_alerts(vec![write(done.clone())]).await.unwrap();
    store
        .write_alerts(vec![write(moved(&done, 1, AlertState::Resolved, 5))])
        .await
        .unwrap();
    store
        .write_alerts(vec![write(new_alert("a", "h2", "", 6))])
        .await
        .unwrap();
    assert!(store.delete_rule("a").await.unwrap());
    assert!(!store.delete_rule("a").await.unwrap());
    assert!(store.rule_versions("a").await.unwrap().is_empty());
    assert!(open(store).await.is_empty());
    let all = store
        .alerts(&AlertFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].alert.state, AlertState::Resolved);
}

pub async fn one_open_alert_per_rule_host_and_subject(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    // Two servers see the condition begin at once: each makes an alert.
    let applied = store
        .write_alerts(vec![
            write(new_alert("a", "h", "", 0)),
            write(new_alert("a", "h", "", 0)),
            write(new_alert("a", "h", "7@1", 0)),
            write(new_alert("a", "other", "", 0)),
        ])
        .await
        .unwrap();
    assert_eq!(applied, [true, false, true, true]);
    assert_eq!(open(store).await.len(), 3);
    let of_h = store.open_alerts(Some("h")).await.unwrap();
    assert_eq!(of_h.len(), 2);
    assert!(of_h.iter().all(|a| a.revision == 1));
}

pub async fn of_two_writes_on_one_revision_one_applies_with_its_notifications(fresh: Fresh) {
    let store = Arc::clone(&fresh.alerts);
    let pending = new_alert("a", "h", "", 0);
    store
        .write_alerts(vec![write(pending.clone())])
        .await
        .unwrap();
    let firing = moved(&pending, 1, AlertState::Firing, 10);
    let with_note = |n: usize| AlertWrite {
        record: firing.clone(),
        forget: false,
        deliveries: vec![QueuedDelivery {
            id: format!("d{n}"),
            channel_id: "c".into(),
            body: "{}".into(),
        }],
    };
    // At once, as two servers' timers would.
    let (first, second) = tokio::join!(
        store.write_alerts(vec![with_note(1)]),
        store.write_alerts(vec![with_note(2)])
    );
    let applied = [first.unwrap()[0], second.unwrap()[0]];
    assert_eq!(applied.iter().filter(|a| **a).count(), 1, "{applied:?}");
    let now = open(store.as_ref()).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].revision, 2);
    assert_eq!(now[0].alert.state, AlertState::Firing);
    // The loser's notification was not queued: a write refused for its
    // delivery's id proves the winner's is there and the loser's is not.
    let winner = if applied[0] { "d1" } else { "d2" };
    let loser = if applied[0] { "d2" } else { "d1" };
    let mut again = moved(&now[0], 2, AlertState::Firing, 11);
    again.clear_since = Some(at(11));
    let queued_again = |id: &str| AlertWrite {
        record: again.clone(),
        forget: false,
        deliveries: vec![QueuedDelivery {
            id: id.into(),
            channel_id: "c".into(),
            body: "{}".into(),
        }],
    };
    assert!(
        store
            .write_alerts(vec![queued_again(winner)])
            .await
            .is_err(),
        "the winner's notification is queued (its id is taken)"
    );
    assert_eq!(
        store.write_alerts(vec![queued_again(loser)]).await.unwrap(),
        [true],
        "the loser's was never queued"
    );
}

pub async fn an_older_observation_is_not_applied(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let pending = new_alert("a", "h", "", 10);
    store
        .write_alerts(vec![write(pending.clone())])
        .await
        .unwrap();
    // Seen at 5, applied after the one seen at 10: refused.
    let late = moved(&pending, 1, AlertState::Firing, 5);
    assert_eq!(
        store.write_alerts(vec![write(late)]).await.unwrap(),
        [false]
    );
    let mut forget = write(moved(&pending, 1, AlertState::Pending, 5));
    forget.forget = true;
    assert_eq!(store.write_alerts(vec![forget]).await.unwrap(), [false]);
    let mut forget = write(moved(&pending, 1, AlertState::Pending, 12));
    forget.forget = true;
    assert_eq!(store.write_alerts(vec![forget]).await.unwrap(), [true]);
    assert!(open(store).await.is_empty());
    assert!(store.alert(&pending.alert.id).await.unwrap().is_none());
}

pub async fn a_resolved_alert_is_history_and_another_may_open(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let first = new_alert("a", "h", "", 0);
    store
        .write_alerts(vec![write(first.clone())])
        .await
        .unwrap();
    store
        .write_alerts(vec![write(moved(&first, 1, AlertState::Firing, 1))])
        .await
        .unwrap();
    store
        .write_alerts(vec![write(moved(&first, 2, AlertState::Resolved, 2))])
        .await
        .unwrap();
    let second = new_alert("a", "h", "", 3);
    assert_eq!(
        store
            .write_alerts(vec![write(second.clone())])
            .await
            .unwrap(),
        [true]
    );
    let kept = store.alert(&first.alert.id).await.unwrap().unwrap();
    assert_eq!(kept.alert.state, AlertState::Resolved);
    assert_eq!(kept.alert.resolved_at, Some(at(2)));
    assert_eq!(kept.revision, 3);
    // Forgetting history takes only what resolved before the time.
    assert_eq!(store.forget_resolved(at(2)).await.unwrap(), 0);
    assert_eq!(store.forget_resolved(at(3)).await.unwrap(), 1);
    assert!(store.alert(&first.alert.id).await.unwrap().is_none());
    assert!(store.alert(&second.alert.id).await.unwrap().is_some());
}

pub async fn alerts_are_listed_by_state_host_and_rule_newest_first(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let a = new_alert("r1", "h1", "", 0);
    let b = new_alert("r1", "h2", "", 5);
    let c = new_alert("r2", "h1", "", 9);
    store
        .write_alerts(vec![write(a.clone()), write(b.clone()), write(c.clone())])
        .await
        .unwrap();
    store
        .write_alerts(vec![write(moved(&b, 1, AlertState::Firing, 6))])
        .await
        .unwrap();
    let ids = |found: Vec<AlertRecord>| found.into_iter().map(|r| r.alert.id).collect::<Vec<_>>();
    let list = |filter: AlertFilter| async move { ids(store.alerts(&filter).await.unwrap()) };
    assert_eq!(
        list(AlertFilter {
            limit: 10,
            ..Default::default()
        })
        .await,
        [c.alert.id.clone(), b.alert.id.clone(), a.alert.id.clone()]
    );
    assert_eq!(
        list(AlertFilter {
            states: vec![AlertState::Firing],
            limit: 10,
            ..Default::default()
        })
        .await,
        [b.alert.id.as_str()]
    );
    assert_eq!(
        list(AlertFilter {
            host_id: Some("h1".into()),
            limit: 10,
            ..Default::default()
        })
        .await,
        [c.alert.id.clone(), a.alert.id.clone()]
    );
    assert_eq!(
        list(AlertFilter {
            rule_id: Some("r1".into()),
            states: vec![AlertState::Pending, AlertState::Resolved],
            limit: 10,
            ..Default::default()
        })
        .await,
        [a.alert.id.as_str()]
    );
    assert_eq!(
        list(AlertFilter {
            limit: 1,
            ..Default::default()
        })
        .await,
        [c.alert.id.as_str()]
    );
}

pub async fn silences_are_kept_until_they_end(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let silence = |id: &str, starts: i64, until: i64| Silence {
        id: id.into(),
        rule_id: Some("r".into()),
        host_id: None,
        starts_at: at(starts),
        until: at(until),
        reason: "maintenance".into(),
        created_by: "admin".into(),
        created_at: at(0),
    };
    store
        .create_silence(&silence("later", 100, 200))
        .await
        .unwrap();
    store.create_silence(&silence("now", 0, 50)).await.unwrap();
    let ids = |s: Vec<Silence>| s.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.silences(at(10)).await.unwrap()), ["now", "later"]);
    assert_eq!(ids(store.silences(at(60)).await.unwrap()), ["later"]);
    let kept = store.silences(at(10)).await.unwrap();
    assert_eq!(kept[0], silence("now", 0, 50));
    assert!(kept[0].covers("r", "any host", at(10)));
    assert!(!kept[0].covers("other rule", "any host", at(10)));
    assert!(store.delete_silence("later").await.unwrap());
    assert!(!store.delete_silence("later").await.unwrap());
    assert!(store.silences(at(60)).await.unwrap().is_empty());
}

/// An alert of `rule` on `host` about `subject` raised at `fired - 1`,
/// fired at `fired` (flapping or not) and resolved at `fired + 1`: as
/// stored, revision 3.
async fn fired_and_resolved(
    store: &dyn AlertStore,
    (rule, host, subject): (&str, &str, &str),
    fired: i64,
    flapping: bool,
) -> AlertRecord {
    let pending = new_alert(rule, host, subject, fired - 1);
    let mut firing = moved(&pending, 1, AlertState::Firing, fired);
    firing.alert.flapping = flapping;
    let resolved = moved(&firing, 2, AlertState::Resolved, fired + 1);
    for step in [pending, firing, resolved.clone()] {
        assert_eq!(store.write_alerts(vec![write(step)]).await.unwrap(), [true]);
    }
    AlertRecord {
        revision: 3,
        ..resolved
    }
}

pub async fn firings_are_counted_per_rule_host_and_subject_from_a_time(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let key = ("a", "h", "");
    for fired in [10, 20, 30] {
        fired_and_resolved(store, key, fired, false).await;
    }
    // Others' firings: another rule, host, subject.
    fired_and_resolved(store, ("b", "h", ""), 25, false).await;
    fired_and_resolved(store, ("a", "h2", ""), 25, false).await;
    fired_and_resolved(store, ("a", "h", "7@1"), 25, false).await;
    // Open and firing counts; pending has not fired.
    let open_one = new_alert("a", "h", "", 39);
    store
        .write_alerts(vec![write(open_one.clone())])
        .await
        .unwrap();
    let count = |since: i64| async move {
        store
            .flap_history("a", "h", "", at(since))
            .await
            .expect("the store counts")
    };
    assert_eq!(count(0).await.firings, 3);
    assert_eq!(count(20).await.firings, 2, "from the time given, on");
    assert_eq!(count(31).await.firings, 0, "a pending alert has not fired");
    store
        .write_alerts(vec![write(moved(&open_one, 1, AlertState::Firing, 40))])
        .await
        .unwrap();
    assert_eq!(count(0).await.firings, 4);
    assert_eq!(count(40).await.firings, 1);
    assert!(!count(0).await.flapping);
    let none = store.flap_history("c", "h", "", at(0)).await.unwrap();
    assert_eq!(none, Default::default());
    // Forgotten history no longer counts.
    store.forget_resolved(at(25)).await.unwrap();
    assert_eq!(count(0).await.firings, 2);
}

pub async fn the_flapping_mark_is_the_newest_firings_until_it_settles(fresh: Fresh) {
    let store = fresh.alerts.as_ref();
    let key = ("a", "h", "");
    let ids = |found: Vec<AlertRecord>| -> Vec<String> {
        found.into_iter().map(|a| a.alert.id).collect()
    };
    let flapping = || async {
        store
            .flap_history("a", "h", "", at(0))
            .await
            .unwrap()
            .flapping
    };
    fired_and_resolved(store, key, 10, false).await;
    let first = fired_and_resolved(store, key, 20, true).await;
    // Another rule, host and subject that does not flap.
    fired_and_resolved(store, ("b", "h", ""), 20, false).await;
    assert!(flapping().await);
    assert_eq!(
        ids(store.flapping_alerts().await.unwrap()),
        [first.alert.id.as_str()]
    );

    // A new alert pending: its firing or forgetting decides first.
    let second = new_alert("a", "h", "", 30);
    store
        .write_alerts(vec![write(second.clone())])
        .await
        .unwrap();
    assert!(store.flapping_alerts().await.unwrap().is_empty());
    assert!(flapping().await, "still flapping while pending");

    // It fires, flapping: the mark is its own now.
    let mut firing = moved(&second, 1, AlertState::Firing, 31);
    firing.alert.flapping = true;
    store
        .write_alerts(vec![write(firing.clone())])
        .await
        .unwrap();
    let marked = store.flapping_alerts().await.unwrap();
    assert_eq!(ids(marked.clone()), [second.alert.id.as_str()]);
    assert!(marked[0].alert.flapping);
    assert_eq!(marked[0].revision, 2);
    // The first keeps, as history, that it fired while flapping.
    let kept = store.alert(&first.alert.id).await.unwrap().unwrap();
    assert!(kept.alert.flapping);
    assert_eq!(kept.revision, first.revision, "its revision is not moved");

    // Settled: no mark anywhere, and the settling is a compare-and-swap.
    let mut settled = firing.clone();
    settled.revision = 2;
    settled.alert.flapping = false;
    let mut stale = settled.clone();
    stale.revision = 1;
    assert_eq!(
        store
            .write_alerts(vec![write(stale), write(settled)])
            .await
            .unwrap(),
        [false, true]
    );
    assert!(store.flapping_alerts().await.unwrap().is_empty());
    assert!(!flapping().await);
}
