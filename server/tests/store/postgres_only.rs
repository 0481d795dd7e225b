//! What only the PostgreSQL store must do: several servers on one
//! database. Each test opens two stores on one new database, as two
//! servers would.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use procmon_model::fixtures::SimHost;
use procmon_model::{ProcessSample, Snapshot};
use procmon_server::store::{IngestOutcome, PostgresStore, Retention, Store, TimeRange};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn sorted(mut processes: Vec<ProcessSample>) -> Vec<ProcessSample> {
    processes.sort_by_key(|p| (p.pid, p.start_time));
    processes
}

/// Two stores on one new database, or `None` when there is no server.
async fn two_servers() -> Option<(PostgresStore, PostgresStore)> {
    let url = crate::common::postgres::fresh_database().await?;
    let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
    Some((a.expect("the first opens"), b.expect("the second opens")))
}

/// Two servers extending one host's chain by turns (in runs of one, two
/// and three): neither continues a chain the other moved on, so every
/// snapshot reads back exactly, from either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_writing_one_host_keep_its_chain_exact() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let mut sim = SimHost::new("host-two", 60, 7, start());
    sim.churn.turnover = 0.05;
    sim.churn.exec = 0.5;
    let mut sent: Vec<Snapshot> = Vec::new();
    for i in 0..240 {
        let snapshot = sim.next();
        let store = if (i / (1 + i % 3)) % 2 == 0 { &a } else { &b };
        let outcome = store
            .ingest(Arc::new(snapshot.clone()), snapshot.collected_at)
            .await
            .unwrap();
        assert_eq!(outcome, IngestOutcome::Stored, "snapshot {i}");
        sent.push(snapshot);
    }
    for (i, s) in sent.iter().enumerate() {
        let store: &dyn Store = if i % 2 == 0 { &a } else { &b };
        let got = store
            .snapshot("host-two", Some(s.collected_at))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("snapshot {i} is missing"));
        assert_eq!(got.id, s.id, "snapshot {i}");
        assert_eq!(
            sorted(got.processes),
            sorted(s.processes.clone()),
            "processes of snapshot {i}"
        );
    }
    // A retry sent to the other server is known there too.
    let again = b
        .ingest(Arc::new(sent[0].clone()), sent[0].collected_at)
        .await
        .unwrap();
    assert_eq!(again, IngestOutcome::AlreadyStored);
}

/// Two servers maintaining at once: the roll-ups are made once, and the
/// series from them counts every sample once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_by_two_servers_at_once_is_done_once() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let mut sim = SimHost::new("host-m", 20, 3, start());
    sim.interval = Duration::seconds(30);
    let mut sent = vec![sim.snapshot()];
    for _ in 0..(5 * 120) {
        sent.push(sim.next());
    }
    for s in &sent {
        a.ingest(Arc::new(s.clone()), s.collected_at).await.unwrap();
    }
    let end = sent.last().unwrap().collected_at;
    let now = end + Duration::minutes(5);
    let (one, two) = tokio::join!(
        a.maintain(now, Retention::default()),
        b.maintain(now, Retention::default())
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(
        one.minute_rollups == 0 || two.minute_rollups == 0,
        "both rolled up: {one:?} {two:?}"
    );
    assert!(
        one.minute_rollups + two.minute_rollups >= 4,
        "{one:?} {two:?}"
    );
    let third = b.maintain(now, Retention::default()).await.unwrap();
    assert_eq!(third.minute_rollups, 0, "{third:?}");
    let range = TimeRange {
        from: start(),
        to: end,
    };
    let series = b.host_series("host-m", range, 50).await.unwrap();
    let samples: u64 = series.points.iter().map(|p| p.samples).sum();
    assert_eq!(samples, sent.len() as u64);
}

/// The server maintaining history dies mid-pass (its connection, holding
/// the maintenance lock, is gone): another server's next pass does the
/// work, with no wait for a lease to run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_takes_over_maintenance_when_the_leader_dies() {
    let Some(url) = crate::common::postgres::fresh_database().await else {
        return;
    };
    let b = PostgresStore::open(&url).await.unwrap();
    let mut sim = SimHost::new("host-leader", 20, 5, start());
    sim.interval = Duration::seconds(30);
    let mut sent = vec![sim.snapshot()];
    for _ in 0..(3 * 120) {
        sent.push(sim.next());
    }
    for s in &sent {
        b.ingest(Arc::new(s.clone()), s.collected_at).await.unwrap();
    }
    let now = sent.last().unwrap().collected_at + Duration::minutes(5);

    // The leader, mid-pass: a session holding the maintenance lock.
    let leader = crate::common::postgres::connect(&url).await;
    leader
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&procmon_server::store::MAINTENANCE_LOCK],
        )
        .await
        .unwrap();
    let waiting = b.maintain(now, Retention::default()).await.unwrap();
    assert_eq!(
        waiting,
        Default::default(),
        "a pass ran beside the leader's"
    );

    // The leader dies: its session ends, and the lock with it. Only once
    // the backend has exited: pg_terminate_backend alone just signals it,
    // and a pass started before it is gone still finds the lock held (the
    // test failed so, once in a fresh-clone run). With a timeout (ms) it
    // waits for the exit, and says whether it came.
    let pid: i32 = leader
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = crate::common::postgres::connect(&url).await;
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(ended, "the leader's backend did not exit within 10 s");
    let taken_over = b.maintain(now, Retention::default()).await.unwrap();
    assert!(
        taken_over.minute_rollups >= 3,
        "the survivor did not take over: {taken_over:?}"
    );
}

/// A server that cannot be reached, or refuses the credentials, says so,
/// and never shows the password.
#[tokio::test]
async fn open_errors_say_what_is_wrong_without_the_password() {
    // A port nothing listens on: a listener bound and closed at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://procmon:s3cret-pw@127.0.0.1:{port}/procmon");
    let error = format!("{:#}", PostgresStore::open(&url).await.unwrap_err());
    assert!(error.contains("cannot reach PostgreSQL"), "{error}");
    assert!(!error.contains("s3cret-pw"), "{error}");
    let error = format!(
        "{:#}",
        PostgresStore::open("postgres://u:s3cret-pw@[bad")
            .await
            .unwrap_err()
    );
    assert!(!error.contains("s3cret-pw"), "{error}");
}

/// A snapshot check that takes everything, as a stand-in for none: the
/// store's own part is what is tested here.
fn any_snapshot(_: &Snapshot) -> Result<(), String> {
    Ok(())
}

/// Two servers given a batch each on one base at once: exactly one stores
/// its batch, the other finds the base gone; a retry is known; and what
/// was stored reads back exactly from either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_on_one_base_store_exactly_one() {
    use procmon_server::store::ChangeOutcome;
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let mut sim = SimHost::new("host-race", 40, 5, start());
    sim.churn.turnover = 0.1;
    let mut base = sim.next();
    base.load = None;
    a.ingest(Arc::new(base.clone()), base.collected_at)
        .await
        .unwrap();
    for round in 0..20 {
        let (mut one, mut two) = (sim.next(), sim.next());
        two.collected_at = one.collected_at;
        one.load = None;
        two.load = None;
        let first = Arc::new(procmon_model::changes::diff(&base, &one));
        let second = Arc::new(procmon_model::changes::diff(&base, &two));
        let at = one.collected_at;
        // Round by round, the server that stored the base last differs.
        let (x, y) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (r1, r2) = tokio::join!(
            x.ingest_changes(Arc::clone(&first), at, any_snapshot),
            y.ingest_changes(Arc::clone(&second), at, any_snapshot)
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let winner = match (&r1, &r2) {
            (ChangeOutcome::Stored(_), ChangeOutcome::BaseUnknown) => one,
            (ChangeOutcome::BaseUnknown, ChangeOutcome::Stored(_)) => two,
            other => panic!("round {round}: {other:?}"),
        };
        let won = if matches!(r1, ChangeOutcome::Stored(_)) {
            &first
        } else {
            &second
        };
        assert_eq!(
            y.ingest_changes(Arc::clone(won), at, any_snapshot)
                .await
                .unwrap(),
            ChangeOutcome::AlreadyStored,
            "round {round}"
        );
        for store in [&a, &b] {
            let got = store.snapshot("host-race", None).await.unwrap().unwrap();
            assert_eq!(got.id, winner.id, "round {round}");
            assert_eq!(sorted(got.processes), sorted(winner.processes.clone()));
        }
        base = winner;
    }
    // A batch on an unknown host, or an old base, is refused.
    let mut other = sim.next();
    other.host.id = "host-unknown".into();
    let mut stray = procmon_model::changes::diff(&base, &other);
    stray.host_id = "host-unknown".into();
    assert_eq!(
        a.ingest_changes(Arc::new(stray), other.collected_at, any_snapshot)
            .await
            .unwrap(),
        ChangeOutcome::BaseUnknown
    );
}

/// The database going away (its connections ended, new ones refused) makes
/// the check answer "unavailable", the error the API answers 503 for; once
/// it is back, the check passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_reached_is_unavailable_then_back() {
    use procmon_server::store::StoreError;
    let Some(url) = crate::common::postgres::fresh_database().await else {
        return;
    };
    let store = PostgresStore::open(&url).await.unwrap();
    store.check().await.unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin_url = std::env::var(crate::common::postgres::URL_VARIABLE).unwrap();
    let admin = crate::common::postgres::connect(&admin_url).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .await
        .unwrap();
    match store.check().await {
        Err(StoreError::Unavailable(why)) => assert!(!why.is_empty()),
        other => panic!("the check answered {other:?}"),
    }
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    store.check().await.unwrap();
}

/// The next word `heard` brings, within 5 s.
async fn hear(
    heard: &mut tokio::sync::mpsc::Receiver<procmon_server::store::StoredElsewhere>,
) -> procmon_server::store::StoredElsewhere {
    tokio::time::timeout(std::time::Duration::from_secs(5), heard.recv())
        .await
        .expect("word within 5 s")
        .expect("the listener runs")
}

/// Each server hears of the snapshots and change batches the other stores,
/// never of its own, and listens once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_hears_of_what_the_other_stores() {
    let Some((a, b)) = two_servers().await else {
        return;
    };
    use procmon_server::store::{ChangeOutcome, StoredElsewhere};
    let mut heard_by_a = a.stored_elsewhere().expect("a listens");
    let mut heard_by_b = b.stored_elsewhere().expect("b listens");
    assert!(b.stored_elsewhere().is_none(), "once");
    // Listening starts by asking for a catch-up.
    assert_eq!(hear(&mut heard_by_a).await, StoredElsewhere::MayHaveMissed);
    assert_eq!(hear(&mut heard_by_b).await, StoredElsewhere::MayHaveMissed);

    let mut sim = SimHost::new("host-word", 20, 3, start());
    let first = sim.next();
    a.ingest(Arc::new(first.clone()), first.collected_at)
        .await
        .unwrap();
    let second = sim.next();
    let batch = procmon_model::changes::diff(&first, &second);
    let made = b
        .ingest_changes(Arc::new(batch), second.collected_at, |_| Ok(()))
        .await
        .unwrap();
    assert!(matches!(made, ChangeOutcome::Stored(_)), "{made:?}");
    let said = |snapshot: &Snapshot| StoredElsewhere::Snapshot {
        host_id: "host-word".into(),
        snapshot_id: snapshot.id,
    };
    assert_eq!(hear(&mut heard_by_b).await, said(&first));
    assert_eq!(hear(&mut heard_by_a).await, said(&second));
    // Neither heard of its own: nothing more is waiting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(heard_by_a.try_recv().is_err());
    assert!(heard_by_b.try_recv().is_err());
}

/// Two servers racing for the last units of one budget: 50 takes at once
/// (the same instant, so nothing refills) of a budget of 20, half through
/// each server. Exactly 20 get a unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_for_a_budget_take_exactly_its_capacity() {
    use procmon_server::store::limits::{Bucket, LimitStore};
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let bucket = Bucket::new(20, 1);
    let takes: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.take("ingest:racer", bucket, start()).await })
        })
        .collect();
    let mut allowed = 0;
    for take in takes {
        match take
            .await
            .expect("the take ran")
            .expect("the store answers")
        {
            Ok(()) => allowed += 1,
            Err(wait) => assert_eq!(wait, std::time::Duration::from_secs(1)),
        }
    }
    assert_eq!(allowed, 20);
}

/// Maintenance deletes budgets that are full again and failures past their
/// window, and keeps the others; a deleted budget starts full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_sweeps_full_budgets_and_old_failures() {
    use procmon_server::store::limits::{Bucket, LimitStore, Throttle};
    let Some(url) = crate::common::postgres::fresh_database().await else {
        return;
    };
    let store = PostgresStore::open(&url).await.expect("the store opens");
    let (quick, slow) = (Bucket::new(3, 2), Bucket::new(10, 1));
    store
        .take("ingest:quick", quick, start())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..10 {
        store
            .take("ingest:slow", slow, start())
            .await
            .unwrap()
            .unwrap();
    }
    let throttle = Throttle::new(5, std::time::Duration::from_secs(60));
    let old = start() - Duration::minutes(2);
    store
        .fail(&["sign-in:old".into()], throttle, old)
        .await
        .unwrap();
    store
        .fail(&["sign-in:new".into()], throttle, start())
        .await
        .unwrap();

    store
        .maintain(start() + Duration::seconds(5), Retention::default())
        .await
        .unwrap();
    let db = crate::common::postgres::connect(&url).await;
    let names = |sql: &'static str| {
        let db = &db;
        async move {
            let rows = db.query(sql, &[]).await.unwrap();
            rows.iter().map(|r| r.get(0)).collect::<Vec<String>>()
        }
    };
    assert_eq!(names("SELECT name FROM budget").await, ["ingest:slow"]);
    assert_eq!(
        names("SELECT key FROM sign_in_failure").await,
        ["sign-in:new"]
    );
    // The quick budget, forgotten, is full: three at once.
    for i in 0..3 {
        let at = start() + Duration::seconds(5);
        assert_eq!(
            store.take("ingest:quick", quick, at).await.unwrap(),
            Ok(()),
            "take {i}"
        );
    }
}

/// Two servers claiming notifications from one queue at once, each with
/// several claims in flight: every delivery goes to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_never_claim_the_same_notification() {
    use procmon_server::store::channels::ChannelStore;
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    let channel = procmon_server::store::channels::ChannelRecord {
        id: "w".into(),
        name: "hook".into(),
        kind: procmon_model::channels::ChannelKind::Webhook {
            url: "https://example.com/hook".into(),
        },
        secret: None,
        created_at: start(),
        updated_at: start(),
    };
    a.create_channel(&channel).await.unwrap();
    crate::channels::queue_many(a.as_ref(), 300).await;
    let stores: Vec<Arc<dyn ChannelStore>> = vec![
        a.clone(),
        b.clone(),
        a.clone(),
        b.clone(),
        a.clone(),
        b.clone(),
    ];
    crate::channels::claim_all_at_once(stores, 300).await;
}

/// Two servers starting at once on a new database make one signing key
/// between them, so agents pinned to either trust both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_starting_at_once_sign_with_one_key() {
    use procmon_server::store::ActionStore;
    let Some((a, b)) = two_servers().await else {
        return;
    };
    let (from_a, from_b) = tokio::join!(
        a.signing_seed(&[0xaa; 32], start()),
        b.signing_seed(&[0xbb; 32], start())
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!(from_a, from_b);
    assert!(from_a == [0xaa; 32] || from_a == [0xbb; 32]);
}

/// Two servers handing out one host's actions at once: each goes to the
/// agent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_hand_each_action_out_once() {
    use procmon_server::store::ActionStore;
    let Some((a, b)) = two_servers().await else {
        return;
    };
    crate::actions::insert_many(&a, 90).await;
    let (a, b): (Arc<dyn ActionStore>, Arc<dyn ActionStore>) = (Arc::new(a), Arc::new(b));
    crate::actions::claim_all_at_once(vec![a.clone(), b.clone(), a, b], 90).await;
}
