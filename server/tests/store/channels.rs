//! The behaviours every `ChannelStore` must have: channels and their
//! secrets, and the delivery queue the alerts fill (through
//! `AlertStore::write_alerts`, as the evaluator does). Each test gets a
//! fresh, empty store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use procmon_model::alerts::{Alert, AlertNotification, AlertState, Severity};
use procmon_model::channels::{ChannelKind, DeliveryStatus, SmtpSecurity};
use procmon_server::store::alerts::{AlertRecord, AlertStore, AlertWrite, QueuedDelivery};
use procmon_server::store::channels::{
    ChannelRecord, ChannelStore, ClaimedDelivery, DeliveryFilter, SecretChange,
};
use secrecy::{ExposeSecret, SecretString};

/// A fresh store as both its channels and its alerts.
pub struct Fresh {
    pub channels: Arc<dyn ChannelStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! channel_tests {
    ($fresh:ident) => {
        $crate::channel_tests!(@each $fresh,
            a_channel_reads_back_and_only_the_sender_sees_its_secret,
            a_change_keeps_sets_or_removes_the_secret,
            a_deleted_channel_is_gone,
            a_claim_holds_a_delivery_until_its_lease_ends,
            failures_and_successes_are_recorded_with_the_channels_health,
            a_delivery_given_up_is_listed_and_never_claimed,
            deliveries_are_listed_newest_first_by_channel_and_status,
            concurrent_claimers_never_get_the_same_delivery,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(fresh) = $fresh().await {
                    $crate::channels::$name(fresh).await;
                }
            }
        )*
    };
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn webhook(id: &str, name: &str, secret: Option<&str>) -> ChannelRecord {
    ChannelRecord {
        id: id.into(),
        name: name.into(),
        kind: ChannelKind::Webhook {
            url: format!("https://example.com/{id}"),
        },
        secret: secret.map(|s| SecretString::from(s.to_owned())),
        created_at: start(),
        updated_at: start(),
    }
}

fn notification(id: &str, alert_id: &str) -> AlertNotification {
    AlertNotification {
        id: id.into(),
        state: AlertState::Firing,
        repeat: false,
        link: "http://procmon.example/".into(),
        alert: Alert {
            id: alert_id.into(),
            rule_id: "rule-1".into(),
            rule_name: "nginx down".into(),
            severity: Severity::Critical,
            host_id: "host-a".into(),
            process: None,
            state: AlertState::Firing,
            since: start(),
            fired_at: Some(start()),
            resolved_at: None,
            value: 0.0,
            summary: format!("alert {alert_id}"),
            silenced_until: None,
            flapping: false,
        },
    }
}

/// Queues, as the evaluator does, a new firing alert `alert_id` with one
/// delivery per `(delivery id, channel id)`.
pub async fn queue(alerts: &dyn AlertStore, alert_id: &str, deliveries: &[(&str, &str)]) {
    let n = notification("unused", alert_id);
    let write = AlertWrite {
        record: AlertRecord {
            alert: n.alert.clone(),
            subject: alert_id.into(),
            revision: 0,
            observed_at: start(),
            clear_since: None,
            notified_at: Some(start()),
        },
        forget: false,
        deliveries: deliveries
            .iter()
            .map(|(id, channel)| QueuedDelivery {
                id: (*id).into(),
                channel_id: (*channel).into(),
                body: serde_json::to_string(&notification(id, alert_id)).unwrap(),
            })
            .collect(),
    };
    let applied = alerts
        .write_alerts(vec![write])
        .await
        .expect("write_alerts");
    assert_eq!(applied, [true]);
}

/// A time after every delivery queued so far (the store stamps them with
/// the system clock).
fn later() -> DateTime<Utc> {
    Utc::now() + Duration::seconds(1)
}

const LEASE: StdDuration = StdDuration::from_secs(60);

fn ids(claimed: &[ClaimedDelivery]) -> Vec<&str> {
    claimed.iter().map(|c| c.id.as_str()).collect()
}

pub async fn a_channel_reads_back_and_only_the_sender_sees_its_secret(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("b", "zulu", Some("hmac-key")))
        .await
        .unwrap();
    let mut email = webhook("a", "alpha", None);
    email.kind = ChannelKind::Email {
        smtp_host: "mail.example.com".into(),
        smtp_port: 587,
        security: SmtpSecurity::Starttls,
        username: Some("procmon".into()),
        from: "procmon@example.com".into(),
        to: vec!["ops@example.com".into()],
    };
    c.create_channel(&email).await.unwrap();
    let listed = c.channels().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|ch| ch.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zulu"]);
    assert_eq!(listed[0].kind, email.kind);
    assert!(!listed[0].has_secret);
    assert!(listed[1].has_secret);
    assert_eq!(listed[1].created_at, start());
    assert_eq!(listed[1].health.failing, 0);
    assert_eq!(listed[1].health.last_success_at, None);
    let (channel, secret) = c.channel_secret("b").await.unwrap().expect("channel b");
    assert_eq!(channel, listed[1]);
    assert_eq!(secret.unwrap().expose_secret(), "hmac-key");
    assert!(c.channel_secret("a").await.unwrap().unwrap().1.is_none());
    assert!(c.channel("nope").await.unwrap().is_none());
    assert!(c.channel_secret("nope").await.unwrap().is_none());
}

pub async fn a_change_keeps_sets_or_removes_the_secret(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("w", "hook", Some("one")))
        .await
        .unwrap();
    let slack = ChannelKind::Slack {
        url: "https://hooks.slack.com/services/x".into(),
    };
    let later = start() + Duration::minutes(5);
    assert!(c
        .update_channel("w", "renamed", &slack, SecretChange::Keep, later)
        .await
        .unwrap());
    let (channel, kept) = c.channel_secret("w").await.unwrap().unwrap();
    assert_eq!((channel.name.as_str(), &channel.kind), ("renamed", &slack));
    assert_eq!(channel.updated_at, later);
    assert_eq!(channel.created_at, start());
    assert_eq!(kept.unwrap().expose_secret(), "one");
    let two = SecretChange::Set(SecretString::from("two".to_owned()));
    assert!(c
        .update_channel("w", "renamed", &slack, two, later)
        .await
        .unwrap());
    let (_, set) = c.channel_secret("w").await.unwrap().unwrap();
    assert_eq!(set.unwrap().expose_secret(), "two");
    assert!(c
        .update_channel("w", "renamed", &slack, SecretChange::Remove, later)
        .await
        .unwrap());
    let (channel, removed) = c.channel_secret("w").await.unwrap().unwrap();
    assert!(removed.is_none());
    assert!(!channel.has_secret);
    assert!(!c
        .update_channel("nope", "x", &slack, SecretChange::Keep, later)
        .await
        .unwrap());
}

pub async fn a_deleted_channel_is_gone(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("w", "hook", Some("s")))
        .await
        .unwrap();
    c.create_channel(&webhook("v", "other", None))
        .await
        .unwrap();
    assert!(c.delete_channel("w").await.unwrap());
    assert!(!c.delete_channel("w").await.unwrap());
    assert!(c.channel("w").await.unwrap().is_none());
    let left: Vec<String> = c
        .channels()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, ["v"]);
}

pub async fn a_claim_holds_a_delivery_until_its_lease_ends(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("w", "hook", None)).await.unwrap();
    queue(
        fresh.alerts.as_ref(),
        "alert-1",
        &[("d1", "w"), ("d2", "w")],
    )
    .await;
    // Not due before it was queued.
    let before = Utc::now() - Duration::minutes(1);
    assert!(c.claim_due(before, LEASE, 10).await.unwrap().is_empty());
    let now = later();
    let first = c.claim_due(now, LEASE, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].channel_id, "w");
    assert_eq!(first[0].attempts, 0);
    let body: AlertNotification = serde_json::from_str(&first[0].body).unwrap();
    assert_eq!(body.id, first[0].id);
    let second = c.claim_due(now, LEASE, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first[0].id);
    // Both held: no one else gets them while the leases run.
    let lease = Duration::from_std(LEASE).unwrap();
    assert!(c
        .claim_due(now + lease - Duration::seconds(1), LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    // A lease that ran out (its server died mid-send) frees them.
    let again = c.claim_due(now + lease, LEASE, 10).await.unwrap();
    let mut got = ids(&again);
    got.sort();
    assert_eq!(got, ["d1", "d2"]);
}

pub async fn failures_and_successes_are_recorded_with_the_channels_health(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("w", "hook", None)).await.unwrap();
    queue(fresh.alerts.as_ref(), "alert-1", &[("d1", "w")]).await;
    let now = later();
    let claimed = c.claim_due(now, LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["d1"]);
    let retry = now + Duration::seconds(10);
    let error = "connection refused by 127.0.0.1:9";
    c.failed("d1", now, error, Some(retry)).await.unwrap();
    let listed = c
        .deliveries(&DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let d = &listed[0];
    assert_eq!(d.status, DeliveryStatus::Failing);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at, Some(retry));
    assert_eq!(d.last_error.as_deref(), Some(error));
    assert_eq!(d.channel_name.as_deref(), Some("hook"));
    assert_eq!(
        (d.alert_id.as_str(), d.summary.as_str()),
        ("alert-1", "alert alert-1")
    );
    assert_eq!(d.state, AlertState::Firing);
    let health = c.channel("w").await.unwrap().unwrap().health;
    assert_eq!(health.failing, 1);
    assert_eq!(health.last_error.as_deref(), Some(error));
    assert_eq!(health.last_error_at, Some(now));
    // Failing frees the claim, but it is not due before its retry.
    assert!(c
        .claim_due(retry - Duration::seconds(1), LEASE, 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = c.claim_due(retry, LEASE, 10).await.unwrap();
    assert_eq!(claimed[0].attempts, 1);
    c.failed("d1", retry, "again", Some(retry + Duration::seconds(20)))
        .await
        .unwrap();
    assert_eq!(c.channel("w").await.unwrap().unwrap().health.failing, 2);
    let at = retry + Duration::seconds(20);
    assert_eq!(c.claim_due(at, LEASE, 10).await.unwrap().len(), 1);
    c.delivered("d1", at).await.unwrap();
    let d = &c
        .deliveries(&DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.delivered_at, Some(at));
    assert_eq!(d.attempts, 3);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.last_error, None);
    let health = c.channel("w").await.unwrap().unwrap().health;
    assert_eq!(health.failing, 0);
    assert_eq!(health.last_success_at, Some(at));
    // The last error stays, for the page's "last failed at".
    assert_eq!(health.last_error.as_deref(), Some("again"));
    // Delivered is never due again.
    let far = at + Duration::days(30);
    assert!(c.claim_due(far, LEASE, 10).await.unwrap().is_empty());
}

pub async fn a_delivery_given_up_is_listed_and_never_claimed(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    queue(fresh.alerts.as_ref(), "alert-1", &[("d1", "gone")]).await;
    let now = later();
    assert_eq!(c.claim_due(now, LEASE, 10).await.unwrap().len(), 1);
    c.failed("d1", now, "given up: channel \"gone\" does not exist", None)
        .await
        .unwrap();
    let far = now + Duration::days(365);
    assert!(c.claim_due(far, LEASE, 10).await.unwrap().is_empty());
    let d = &c
        .deliveries(&DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::GivenUp);
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.channel_name, None);
    assert!(d.last_error.as_deref().unwrap().contains("does not exist"));
}

pub async fn deliveries_are_listed_newest_first_by_channel_and_status(fresh: Fresh) {
    let c = fresh.channels.as_ref();
    c.create_channel(&webhook("w", "hook", None)).await.unwrap();
    c.create_channel(&webhook("v", "other", None))
        .await
        .unwrap();
    queue(
        fresh.alerts.as_ref(),
        "alert-1",
        &[("d1", "w"), ("d2", "v")],
    )
    .await;
    tokio::time::sleep(StdDuration::from_millis(5)).await;
    queue(fresh.alerts.as_ref(), "alert-2", &[("d3", "w")]).await;
    let now = later();
    for claimed in c.claim_due(now, LEASE, 10).await.unwrap() {
        match claimed.id.as_str() {
            "d1" => c.delivered("d1", now).await.unwrap(),
            "d2" => c.failed("d2", now, "refused", Some(now)).await.unwrap(),
            _ => {}
        }
    }
    let list = |filter: DeliveryFilter| async move {
        c.deliveries(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>()
    };
    let all = DeliveryFilter {
        limit: 10,
        ..Default::default()
    };
    let newest = list(all.clone()).await;
    assert_eq!(newest[0], "d3");
    assert_eq!(newest.len(), 3);
    let of_w = DeliveryFilter {
        channel_id: Some("w".into()),
        ..all.clone()
    };
    let mut got = list(of_w).await;
    got.sort();
    assert_eq!(got, ["d1", "d3"]);
    let status = |statuses: Vec<DeliveryStatus>| DeliveryFilter {
        statuses,
        ..all.clone()
    };
    assert_eq!(list(status(vec![DeliveryStatus::Delivered])).await, ["d1"]);
    assert_eq!(list(status(vec![DeliveryStatus::Failing])).await, ["d2"]);
    // d3 is claimed but not yet tried: still pending.
    assert_eq!(list(status(vec![DeliveryStatus::Pending])).await, ["d3"]);
    let mut either = list(status(vec![
        DeliveryStatus::Delivered,
        DeliveryStatus::Failing,
    ]))
    .await;
    either.sort();
    assert_eq!(either, ["d1", "d2"]);
    assert_eq!(
        list(DeliveryFilter {
            limit: 1,
            ..Default::default()
        })
        .await,
        ["d3"]
    );
}

/// Claims until the queue is empty from `claimers` tasks at once, each
/// through its own handle on the database; every delivery is got once.
pub async fn claim_all_at_once(stores: Vec<Arc<dyn ChannelStore>>, expected: usize) {
    let now = later();
    let mut tasks = Vec::new();
    for store in stores {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let claimed = store.claim_due(now, LEASE, 3).await.expect("claim_due");
                assert!(claimed.len() <= 3, "a claim of 3 got {}", claimed.len());
                if claimed.is_empty() {
                    return got;
                }
                got.extend(claimed.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut claimers_with_some = 0;
    for task in tasks {
        let got = task.await.unwrap();
        claimers_with_some += usize::from(!got.is_empty());
        total += got.len();
        for id in got {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(total, expected);
    assert_eq!(seen.len(), expected);
    assert!(claimers_with_some >= 1);
}

/// Queues `count` deliveries to channel `w`, in alerts of 10.
pub async fn queue_many(alerts: &dyn AlertStore, count: usize) {
    let ids: Vec<String> = (0..count).map(|i| format!("d{i:04}")).collect();
    for (n, chunk) in ids.chunks(10).enumerate() {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|id| (id.as_str(), "w")).collect();
        queue(alerts, &format!("alert-{n}"), &pairs).await;
    }
}

pub async fn concurrent_claimers_never_get_the_same_delivery(fresh: Fresh) {
    fresh
        .channels
        .create_channel(&webhook("w", "hook", None))
        .await
        .unwrap();
    queue_many(fresh.alerts.as_ref(), 200).await;
    let stores = (0..4).map(|_| Arc::clone(&fresh.channels)).collect();
    claim_all_at_once(stores, 200).await;
}
