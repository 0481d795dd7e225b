//! The behaviours every store must have. Each test gets a fresh, empty
//! store and speaks to it only through the `Store` trait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use procmon_model::fixtures::{snapshot_at, SimHost};
use procmon_model::{ProcessFacts, ProcessSample, Resolution, Snapshot};
use procmon_server::store::{
    ChangeOutcome, IngestOutcome, Retention, SearchField, SearchQuery, Store, TimeRange,
};

/// A fresh store, and whatever must live as long as it.
pub struct Fresh {
    pub store: Arc<dyn Store>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! contract_tests {
    ($fresh:ident) => {
        $crate::contract_tests!(@each $fresh,
            every_snapshot_reads_back_exactly_at_and_between_its_times,
            a_retry_is_stored_once_and_an_id_belongs_to_one_host,
            a_retry_of_any_age_is_stored_once,
            host_facts_and_totals_come_from_the_newest_snapshot,
            changes_list_starts_exits_and_fact_changes,
            series_and_rollups_equal_what_was_sent,
            hour_rollups_equal_what_was_sent,
            retention_removes_what_is_older_and_keeps_what_is_younger,
            search_finds_processes_by_name_user_and_command_line,
            a_store_that_works_passes_its_check,
            removing_a_host_deletes_it_and_all_its_history,
            a_change_batch_extends_only_the_hosts_newest_snapshot,
            a_change_batch_that_does_not_fit_stores_nothing,
            racing_batches_on_one_base_store_exactly_one,
            a_snapshot_reads_back_by_its_id_while_it_is_kept,
            load_points_are_each_snapshots_for_an_hour,
            hosts_carry_the_labels_of_their_newest_snapshot_or_batch,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // None: the backend is not there to test (and it said so).
                if let Some(fresh) = $fresh().await {
                    $crate::contract::$name(fresh).await;
                }
            }
        )*
    };
}

fn start() -> DateTime<Utc> {
    // 00:52 UTC: the runs below cross hour and day boundaries.
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn sorted(mut processes: Vec<ProcessSample>) -> Vec<ProcessSample> {
    processes.sort_by_key(|p| (p.pid, p.start_time));
    processes
}

/// What was sent, by the time each snapshot counts as taken.
#[derive(Default)]
struct Sent {
    by_taken: BTreeMap<DateTime<Utc>, Snapshot>,
}

impl Sent {
    /// The snapshot the store must answer for `at`, with when it counts
    /// as taken.
    fn at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, &Snapshot)> {
        self.by_taken.range(..=at).next_back().map(|(t, s)| (*t, s))
    }
}

async fn ingest(store: &dyn Store, snapshot: &Snapshot, received: DateTime<Utc>) {
    assert_eq!(
        store
            .ingest(Arc::new(snapshot.clone()), received)
            .await
            .expect("ingest"),
        IngestOutcome::Stored
    );
}

/// Generated sequences with starts, exits, execs, argv rewrites, pid
/// reuse, a clock running ahead and snapshots arriving out of order: the
/// tree at each snapshot's time, and between two, is what was sent.
pub async fn every_snapshot_reads_back_exactly_at_and_between_its_times(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-seq", 120, 11, start());
    sim.churn.turnover = 0.03;
    sim.churn.exec = 0.5;
    let mut sent = Sent::default();
    let mut late: Vec<(Snapshot, DateTime<Utc>)> = Vec::new();
    // 600 snapshots at 2 s: 20 minutes across an hour boundary, more than
    // one chain of deltas.
    for i in 0..600 {
        let mut snapshot = sim.next();
        let real = snapshot.collected_at;
        let mut received = real + Duration::milliseconds(40);
        if i % 97 == 5 {
            // The agent's clock runs an hour ahead: it counts as taken
            // when it arrived.
            snapshot.collected_at = real + Duration::hours(1);
            received = real;
        }
        let held_back = i % 23 == 7;
        if held_back {
            // It arrives half a minute late, after newer ones.
            received += Duration::seconds(30);
        }
        let taken = snapshot.collected_at.min(received);
        sent.by_taken.insert(taken, snapshot.clone());
        if held_back {
            late.push((snapshot, received));
        } else {
            ingest(store, &snapshot, received).await;
        }
        if i % 50 == 49 {
            for (s, r) in late.drain(..) {
                ingest(store, &s, r).await;
            }
        }
    }
    for (s, r) in late.drain(..) {
        ingest(store, &s, r).await;
    }

    let newest = store.snapshot("host-seq", None).await.unwrap().unwrap();
    let (_, last) = sent.by_taken.iter().next_back().unwrap();
    assert_eq!(newest.id, last.id);
    assert_eq!(sorted(newest.processes), sorted(last.processes.clone()));

    for (taken, expected) in &sent.by_taken {
        for at in [*taken, *taken + Duration::milliseconds(900)] {
            let (want_taken, want) = sent.at(at).unwrap();
            let got = store
                .snapshot("host-seq", Some(at))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no snapshot at {at}"));
            assert_eq!(got.id, want.id, "snapshot at {at}");
            assert_eq!(got.taken_at, want_taken);
            assert_eq!(got.collected_at, want.collected_at);
            assert_eq!(
                sorted(got.processes),
                sorted(want.processes.clone()),
                "processes at {at} (snapshot {})",
                expected.id
            );
        }
    }
    let before = start() - Duration::seconds(1);
    assert!(store
        .snapshot("host-seq", Some(before))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .snapshot("no-such-host", None)
        .await
        .unwrap()
        .is_none());
}

pub async fn a_retry_is_stored_once_and_an_id_belongs_to_one_host(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let s = snapshot_at("host-a", 5, start());
    let received = start() + Duration::milliseconds(5);
    assert_eq!(
        store.ingest(Arc::new(s.clone()), received).await.unwrap(),
        IngestOutcome::Stored
    );
    assert_eq!(
        store
            .ingest(Arc::new(s.clone()), received + Duration::seconds(3))
            .await
            .unwrap(),
        IngestOutcome::AlreadyStored
    );
    let mut other = snapshot_at("host-b", 5, start());
    other.id = s.id;
    assert_eq!(
        store.ingest(Arc::new(other), received).await.unwrap(),
        IngestOutcome::IdTakenByOtherHost
    );
    assert!(store.host("host-b").await.unwrap().is_none());
    let got = store.snapshot("host-a", None).await.unwrap().unwrap();
    assert_eq!(got.id, s.id);
    assert_eq!(got.received_at, received);
    assert_eq!(store.count_snapshots().await.unwrap(), 1, "stored once");
    // Counted across hosts and hours.
    for (n, host) in ["host-a", "host-b"].into_iter().enumerate() {
        let later = snapshot_at(host, 3, start() + Duration::minutes(70 + n as i64));
        ingest(store, &later, later.collected_at).await;
    }
    assert_eq!(store.count_snapshots().await.unwrap(), 3);
}

/// A retry may come back hours later (an agent that spooled it while the
/// server was away), from an agent whose clock runs hours ahead: a snapshot
/// or batch stored before is found whatever its age and its times, and
/// nothing is stored again.
pub async fn a_retry_of_any_age_is_stored_once(fresh: Fresh) {
    let store = fresh.store.as_ref();
    // The agent's clock is 6 hours ahead: its snapshots count as taken
    // when they arrived, hours before the time they carry.
    let mut host = SimHost::new("host-a", 10, 3, start() + Duration::hours(6));
    let old = host.next();
    let batched = host.next();
    let (old_received, batch_received) = (start(), start() + Duration::seconds(2));
    ingest(store, &old, old_received).await;
    let batch = procmon_model::changes::diff(&old, &batched);
    assert!(matches!(
        store
            .ingest_changes(Arc::new(batch.clone()), batch_received, any)
            .await
            .unwrap(),
        ChangeOutcome::Stored(_)
    ));
    // A newer snapshot 4 hours later, in a later block.
    let later = start() + Duration::hours(4);
    let mut newer = snapshot_at("host-a", 10, later);
    newer.host = batched.host.clone();
    ingest(store, &newer, later).await;
    let whole = TimeRange {
        from: start() - Duration::hours(1),
        to: later + Duration::hours(1),
    };
    let points = |series: procmon_model::Series| series.points.len();
    let before = points(store.host_series("host-a", whole, 10_000).await.unwrap());

    let retried_at = later + Duration::minutes(1);
    for _ in 0..2 {
        assert_eq!(
            store
                .ingest(Arc::new(old.clone()), retried_at)
                .await
                .unwrap(),
            IngestOutcome::AlreadyStored,
            "a snapshot stored 4 hours ago"
        );
        let outcome = store
            .ingest_changes(Arc::new(batch.clone()), retried_at, any)
            .await
            .unwrap();
        assert!(
            matches!(outcome, ChangeOutcome::AlreadyStored),
            "a batch stored 4 hours ago: {outcome:?}"
        );
    }
    // Its id still belongs to its host only.
    let mut other = snapshot_at("host-b", 3, later);
    other.id = old.id;
    assert_eq!(
        store.ingest(Arc::new(other), retried_at).await.unwrap(),
        IngestOutcome::IdTakenByOtherHost
    );

    assert_eq!(
        points(store.host_series("host-a", whole, 10_000).await.unwrap()),
        before,
        "a retry was stored again"
    );
    // Stored again, the retry would count as taken when it arrived: the
    // newest.
    let got = store.snapshot("host-a", None).await.unwrap().unwrap();
    assert_eq!((got.id, got.received_at), (newer.id, later));
    let got = store
        .snapshot("host-a", Some(batch_received))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.id, got.received_at), (batched.id, batch_received));
}

pub async fn host_facts_and_totals_come_from_the_newest_snapshot(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut newer = snapshot_at("host-a", 4, start() + Duration::minutes(1));
    newer.host.hostname = "renamed".into();
    newer.processes[0].cpu_percent = 3e38;
    newer.processes[1].cpu_percent = 3e38;
    let older = snapshot_at("host-a", 9, start());
    ingest(store, &newer, newer.collected_at).await;
    // A late, older snapshot changes neither facts nor totals.
    ingest(store, &older, newer.collected_at + Duration::seconds(5)).await;
    let host = store.host("host-a").await.unwrap().unwrap();
    assert_eq!(host.info.hostname, "renamed");
    assert_eq!(host.totals.process_count, 4);
    assert!(host.totals.cpu_percent.is_finite() && host.totals.cpu_percent > 5e38);
    assert_eq!(host.first_seen, newer.collected_at);
    assert_eq!(host.last_seen, newer.collected_at + Duration::seconds(5));
    assert_eq!(store.hosts().await.unwrap().len(), 1);
    assert_eq!(store.hosts_named("renamed").await.unwrap(), vec!["host-a"]);
    assert!(store.hosts_named("host-a-name").await.unwrap().is_empty());
}

pub async fn changes_list_starts_exits_and_fact_changes(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-c", 60, 3, start());
    sim.churn.turnover = 0.05;
    sim.churn.exec = 1.0;
    let mut snapshots = vec![sim.snapshot()];
    for _ in 0..200 {
        snapshots.push(sim.next());
    }
    for s in &snapshots {
        ingest(store, s, s.collected_at).await;
    }
    let (from, to) = (snapshots[20].collected_at, snapshots[180].collected_at);
    let answer = store
        .changes("host-c", TimeRange { from, to }, 100_000)
        .await
        .unwrap();
    assert!(!answer.truncated);

    // The same, worked out from what was sent.
    let (mut started, mut exited, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for pair in snapshots[20..=180].windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let key = |p: &ProcessSample| (p.pid, p.start_time);
        for p in &after.processes {
            match before.processes.iter().find(|q| key(q) == key(p)) {
                None => started.push((after.collected_at, ProcessFacts::from(p))),
                Some(q) if ProcessFacts::from(q) != ProcessFacts::from(p) => changed.push((
                    after.collected_at,
                    ProcessFacts::from(q),
                    ProcessFacts::from(p),
                )),
                Some(_) => {}
            }
        }
        for q in &before.processes {
            if !after.processes.iter().any(|p| key(p) == key(q)) {
                exited.push((after.collected_at, ProcessFacts::from(q)));
            }
        }
    }
    let got_started: Vec<_> = answer
        .started
        .iter()
        .map(|e| (e.at, e.process.clone()))
        .collect();
    let got_exited: Vec<_> = answer
        .exited
        .iter()
        .map(|e| (e.at, e.process.clone()))
        .collect();
    let got_changed: Vec<_> = answer
        .changed
        .iter()
        .map(|c| (c.at, c.before.clone(), c.after.clone()))
        .collect();
    let by = |v: &mut Vec<(DateTime<Utc>, ProcessFacts)>| v.sort_by_key(|(t, p)| (*t, p.pid));
    let (mut a, mut b) = (got_started, started);
    by(&mut a);
    by(&mut b);
    assert_eq!(a, b, "started");
    let (mut a, mut b) = (got_exited, exited);
    by(&mut a);
    by(&mut b);
    assert_eq!(a, b, "exited");
    assert!(!changed.is_empty());
    let (mut a, mut b) = (got_changed, changed);
    a.sort_by_key(|(t, p, _)| (*t, p.pid));
    b.sort_by_key(|(t, p, _)| (*t, p.pid));
    assert_eq!(a, b, "changed");

    // A limit stops the answer and says so.
    let few = store
        .changes("host-c", TimeRange { from, to }, 3)
        .await
        .unwrap();
    assert!(few.truncated);
    assert!(few.started.len() + few.exited.len() + few.changed.len() <= 3);
}

/// Samples in a step, and each metric's (avg, min, max, values) over them.
type Expected = (u64, Vec<(f64, f64, f64, u64)>);

/// avg, min and max of each metric of the process `(pid, start)` over the
/// snapshots taken in `[at, at + step)`, worked out from what was sent.
fn expected_point(
    snapshots: &[Snapshot],
    pick: impl Fn(&Snapshot) -> Option<Vec<Option<f64>>>,
    at: DateTime<Utc>,
    step: Duration,
    metrics: usize,
) -> Option<Expected> {
    let mut n = 0;
    let mut sums = vec![(0.0, f64::INFINITY, f64::NEG_INFINITY, 0u64); metrics];
    for s in snapshots {
        if s.collected_at < at || s.collected_at >= at + step {
            continue;
        }
        let Some(values) = pick(s) else { continue };
        n += 1;
        for (acc, v) in sums.iter_mut().zip(values) {
            if let Some(v) = v {
                acc.0 += v;
                acc.1 = acc.1.min(v);
                acc.2 = acc.2.max(v);
                acc.3 += 1;
            }
        }
    }
    (n > 0).then(|| {
        (
            n,
            sums.into_iter()
                .map(|(sum, min, max, k)| (sum / k.max(1) as f64, min, max, k))
                .collect(),
        )
    })
}

fn process_values(p: &ProcessSample) -> Vec<Option<f64>> {
    vec![
        Some(f64::from(p.cpu_percent)),
        Some(p.memory_rss_bytes as f64),
        Some(p.memory_virtual_bytes as f64),
        p.memory_private_bytes.map(|v| v as f64),
        p.threads.map(f64::from),
        p.handles.map(f64::from),
        Some(p.disk_read_bytes as f64),
        Some(p.disk_written_bytes as f64),
    ]
}

fn host_values(s: &Snapshot) -> Vec<Option<f64>> {
    let load = s.load.as_ref();
    let bytes = |f: fn(&procmon_model::HostLoad) -> u64| load.map(|l| f(l) as f64);
    vec![
        Some(s.processes.len() as f64),
        Some(s.processes.iter().map(|p| f64::from(p.cpu_percent)).sum()),
        Some(s.processes.iter().map(|p| p.memory_rss_bytes as f64).sum()),
        load.filter(|l| !l.cpu_per_core.is_empty()).map(|l| {
            l.cpu_per_core.iter().map(|&c| f64::from(c)).sum::<f64>() / l.cpu_per_core.len() as f64
        }),
        bytes(|l| l.memory_used_bytes),
        bytes(|l| l.memory_available_bytes),
        bytes(|l| l.swap_used_bytes),
        bytes(|l| l.swap_total_bytes),
        load.and_then(|l| l.load_average).map(|a| a[0]),
    ]
}

/// The host's own meters for the `i`th snapshot: none for every third
/// (an agent that sends none), no load average for every fifth (Windows).
fn some_load(i: usize) -> Option<procmon_model::HostLoad> {
    (!i.is_multiple_of(3)).then(|| procmon_model::HostLoad {
        cpu_per_core: vec![(i % 100) as f32, ((i * 7) % 100) as f32 + 0.5],
        memory_used_bytes: (1 << 30) + (i as u64 * 4096),
        memory_available_bytes: (3 << 30) - (i as u64 * 4096),
        swap_total_bytes: 1 << 31,
        swap_used_bytes: (i as u64 % 17) << 20,
        load_average: (!i.is_multiple_of(5)).then(|| [i as f64 / 100.0, 0.5, 0.25]),
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Checks every point against what was sent, and that every sample taken
/// from `since` to the series' end is in some point.
fn check_series(
    series: &procmon_model::Series,
    since: DateTime<Utc>,
    snapshots: &[Snapshot],
    pick: impl Fn(&Snapshot) -> Option<Vec<Option<f64>>> + Copy,
) {
    let step = Duration::milliseconds(series.step_ms as i64);
    assert!(!series.points.is_empty());
    for point in &series.points {
        let (n, want) = expected_point(snapshots, pick, point.at, step, series.metrics.len())
            .unwrap_or_else(|| panic!("a point at {} with no sample", point.at));
        assert_eq!(point.samples, n, "samples at {}", point.at);
        for (i, (avg, min, max, k)) in want.into_iter().enumerate() {
            let name = &series.metrics[i];
            let Some(got) = point.avg[i] else {
                assert_eq!(k, 0, "{name} at {}: sent {k} values, none kept", point.at);
                continue;
            };
            assert!(k > 0, "{name} at {}: none sent, {got} kept", point.at);
            assert!(
                close(got, avg),
                "{name} avg at {}: {got} vs {avg}",
                point.at
            );
            assert_eq!(point.min[i], Some(min), "{name} min at {}", point.at);
            assert_eq!(point.max[i], Some(max), "{name} max at {}", point.at);
        }
    }
    // Every step that had a sample is there.
    let covered: usize = series.points.iter().map(|p| p.samples as usize).sum();
    let in_range = snapshots
        .iter()
        .filter(|s| s.collected_at >= since && s.collected_at <= series.to)
        .filter(|s| pick(s).is_some())
        .count();
    assert_eq!(covered, in_range, "samples covered by the series");
}

/// Raw series for short ranges and minute roll-ups for long ones give the
/// averages, minima and maxima of what was sent.
pub async fn series_and_rollups_equal_what_was_sent(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-s", 40, 5, start());
    sim.interval = Duration::seconds(10);
    sim.churn.busy = 0.3;
    let mut snapshots = vec![sim.snapshot()];
    // Three hours and a bit.
    for _ in 0..1200 {
        snapshots.push(sim.next());
    }
    for (i, s) in snapshots.iter_mut().enumerate() {
        s.load = some_load(i);
    }
    for s in &snapshots {
        ingest(store, s, s.collected_at).await;
    }
    let end = snapshots.last().unwrap().collected_at;
    store
        .maintain(end + Duration::minutes(5), Retention::default())
        .await
        .unwrap();

    let pid1 = snapshots[0].processes[0].clone();
    let pick = |s: &Snapshot| {
        s.processes
            .iter()
            .find(|p| p.pid == pid1.pid && p.start_time == pid1.start_time)
            .map(process_values)
    };
    // Short: raw samples.
    let range = TimeRange {
        from: start() + Duration::minutes(70),
        to: start() + Duration::minutes(100),
    };
    let raw = store
        .process_series("host-s", pid1.pid, pid1.start_time, range, 1000)
        .await
        .unwrap();
    assert_eq!(raw.resolution, Resolution::Raw);
    assert_eq!(raw.metrics[0], "cpu_percent");
    check_series(&raw, range.from, &snapshots, pick);

    // Long: minute roll-ups, and raw for the hour not rolled up yet.
    let range = TimeRange {
        from: start(),
        to: end,
    };
    let rolled = store
        .process_series("host-s", pid1.pid, pid1.start_time, range, 50)
        .await
        .unwrap();
    assert_eq!(rolled.resolution, Resolution::Minute);
    assert!(rolled.points.len() <= 51, "{} points", rolled.points.len());
    check_series(&rolled, range.from, &snapshots, pick);

    let host = store.host_series("host-s", range, 50).await.unwrap();
    assert_eq!(
        host.metrics,
        [
            "process_count",
            "cpu_percent",
            "memory_rss_bytes",
            "cpu_machine_percent",
            "memory_used_bytes",
            "memory_available_bytes",
            "swap_used_bytes",
            "swap_total_bytes",
            "load_1m"
        ]
    );
    check_series(&host, range.from, &snapshots, |s| Some(host_values(s)));
    // And raw, with the host's meters as sent.
    let short = TimeRange {
        from: start() + Duration::minutes(70),
        to: start() + Duration::minutes(100),
    };
    let host = store.host_series("host-s", short, 1000).await.unwrap();
    assert_eq!(host.resolution, Resolution::Raw);
    check_series(&host, short.from, &snapshots, |s| Some(host_values(s)));

    let unknown = store
        .process_series("host-s", 999_999, start(), range, 50)
        .await
        .unwrap();
    assert!(unknown.points.is_empty());
}

/// Hour roll-ups, made from minute roll-ups once a day is complete.
pub async fn hour_rollups_equal_what_was_sent(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-h", 10, 9, start());
    sim.interval = Duration::seconds(120);
    sim.churn.busy = 0.5;
    sim.churn.turnover = 0.0;
    let mut snapshots = vec![sim.snapshot()];
    // Two days and a bit, so one whole UTC day is rolled up by hour.
    for _ in 0..(26 * 60) {
        snapshots.push(sim.next());
    }
    for s in &snapshots {
        ingest(store, s, s.collected_at).await;
    }
    let end = snapshots.last().unwrap().collected_at;
    store
        .maintain(end + Duration::minutes(5), Retention::default())
        .await
        .unwrap();
    let range = TimeRange {
        from: start(),
        to: end,
    };
    let host = store.host_series("host-h", range, 20).await.unwrap();
    assert_eq!(host.resolution, Resolution::Hour);
    check_series(&host, range.from, &snapshots, |s| Some(host_values(s)));
    let p = snapshots[0].processes[3].clone();
    let series = store
        .process_series("host-h", p.pid, p.start_time, range, 20)
        .await
        .unwrap();
    assert_eq!(series.resolution, Resolution::Hour);
    check_series(&series, range.from, &snapshots, |s| {
        s.processes
            .iter()
            .find(|q| q.pid == p.pid && q.start_time == p.start_time)
            .map(process_values)
    });
}

pub async fn retention_removes_what_is_older_and_keeps_what_is_younger(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-r", 20, 1, start());
    sim.interval = Duration::seconds(30);
    let mut snapshots = vec![sim.snapshot()];
    for _ in 0..(6 * 120) {
        snapshots.push(sim.next());
    }
    for s in &snapshots {
        ingest(store, s, s.collected_at).await;
    }
    // Another host, last heard of before every retention.
    let gone = snapshot_at("host-gone", 3, start() - Duration::hours(1));
    ingest(store, &gone, gone.collected_at).await;

    let end = snapshots.last().unwrap().collected_at;
    let retention = Retention {
        raw: StdDuration::from_secs(2 * 3600),
        minute: StdDuration::from_secs(4 * 3600),
        hour: StdDuration::from_secs(5 * 3600),
    };
    let now = end + Duration::minutes(10);
    let done = store.maintain(now, retention).await.unwrap();
    assert!(done.blocks_dropped > 0, "{done:?}");
    assert_eq!(done.hosts_removed, 1);
    assert!(store.host("host-gone").await.unwrap().is_none());

    let raw_cut = now - Duration::hours(2);
    for s in &snapshots {
        let got = store
            .snapshot("host-r", Some(s.collected_at))
            .await
            .unwrap();
        if s.collected_at < raw_cut {
            assert!(
                got.is_none(),
                "snapshot of {} outlived retention",
                s.collected_at
            );
        } else {
            let got = got.unwrap_or_else(|| panic!("snapshot of {} was lost", s.collected_at));
            assert_eq!(got.id, s.id);
            assert_eq!(sorted(got.processes), sorted(s.processes.clone()));
        }
    }
    // Roll-ups outlive raw snapshots: a series over the whole run comes
    // from them, back to the hour roll-ups' own cutoff and no further.
    let hour_cut = now - Duration::hours(5);
    let series = store
        .host_series(
            "host-r",
            TimeRange {
                from: start(),
                to: end,
            },
            100,
        )
        .await
        .unwrap();
    let step = Duration::milliseconds(series.step_ms as i64);
    assert!(
        series.points[0].at > hour_cut - step,
        "{:?}",
        series.points[0]
    );
    let kept: Vec<_> = snapshots
        .iter()
        .filter(|s| s.collected_at >= series.points[0].at)
        .cloned()
        .collect();
    check_series(&series, series.points[0].at, &kept, |s| {
        Some(host_values(s))
    });
    // Running it again finds nothing more to do.
    let again = store.maintain(now, retention).await.unwrap();
    assert_eq!(again.blocks_dropped, 0);
}

pub async fn search_finds_processes_by_name_user_and_command_line(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let t0 = start();
    let mut a = snapshot_at("host-a", 5, t0);
    a.processes[2].name = "nginx".into();
    a.processes[2].user = Some("www-data".into());
    a.processes[3].cmd = vec!["python3".into(), "-m".into(), "Http.Server".into()];
    let mut b = snapshot_at("host-b", 5, t0);
    b.processes[4].name = "NGINX-worker".into();
    ingest(store, &a, t0).await;
    ingest(store, &b, t0).await;
    // Later, nginx is gone from host-a.
    let mut a2 = snapshot_at("host-a", 5, t0 + Duration::minutes(5));
    a2.processes[2].name = "apache2".into();
    ingest(store, &a2, a2.collected_at).await;

    let q = |text: &str, field| SearchQuery {
        text: text.into(),
        field,
    };
    let (now, more) = store
        .search(&q("nginx", SearchField::Any), None, 100)
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(
        now.iter().map(|f| f.host_id.as_str()).collect::<Vec<_>>(),
        ["host-b"]
    );
    let (then, _) = store
        .search(
            &q("nginx", SearchField::Name),
            Some(t0 + Duration::minutes(1)),
            100,
        )
        .await
        .unwrap();
    assert_eq!(then.len(), 2);
    assert_eq!(then[0].host_id, "host-a");
    assert_eq!(then[0].process.pid, 3);
    let (by_user, _) = store
        .search(&q("WWW-DATA", SearchField::User), Some(t0), 100)
        .await
        .unwrap();
    assert_eq!(by_user.len(), 1);
    let (by_cmd, _) = store
        .search(&q("http.server", SearchField::Cmd), None, 100)
        .await
        .unwrap();
    assert!(by_cmd.is_empty(), "host-a's python is gone now");
    let (by_cmd, _) = store
        .search(&q("http.server", SearchField::Cmd), Some(t0), 100)
        .await
        .unwrap();
    assert_eq!(by_cmd.len(), 1);
    let (limited, more) = store
        .search(&q("proc", SearchField::Any), None, 3)
        .await
        .unwrap();
    assert_eq!(limited.len(), 3);
    assert!(more);
}

pub async fn a_store_that_works_passes_its_check(fresh: Fresh) {
    fresh.store.check().await.unwrap();
    let s = snapshot_at("host-a", 3, start());
    ingest(fresh.store.as_ref(), &s, start()).await;
    fresh.store.check().await.unwrap();
    fresh.store.close().await;
    assert!(fresh.store.check().await.is_err());
}

/// An admin removes a host that is gone: the host, its snapshots and its
/// roll-ups go, other hosts keep theirs, and if the host ever sends again
/// it starts anew, with none of its old history.
pub async fn removing_a_host_deletes_it_and_all_its_history(fresh: Fresh) {
    let store = fresh.store.as_ref();
    // Two hours across midnight at 30 s: raw blocks of three hours, minute
    // roll-ups of two days and an hour roll-up once maintenance has run.
    let mut keep = SimHost::new("host-keep", 10, 3, start());
    let mut gone = SimHost::new("host-gone", 10, 4, start());
    keep.interval = Duration::seconds(30);
    gone.interval = Duration::seconds(30);
    let (mut kept, mut sent) = (vec![keep.snapshot()], vec![gone.snapshot()]);
    for _ in 0..240 {
        kept.push(keep.next());
        sent.push(gone.next());
    }
    // The removed host is written last, so a store that hands out the
    // freed row key again would show it any history left behind.
    for s in kept.iter().chain(&sent) {
        ingest(store, s, s.collected_at).await;
    }
    let end = sent.last().unwrap().collected_at;
    let done = store
        .maintain(end + Duration::minutes(10), Retention::default())
        .await
        .unwrap();
    assert!(done.minute_rollups > 0 && done.hour_rollups > 0, "{done:?}");

    assert!(store.remove_host("host-gone").await.unwrap());
    assert!(store.host("host-gone").await.unwrap().is_none());
    let hosts: Vec<String> = store
        .hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.info.id)
        .collect();
    assert_eq!(hosts, ["host-keep"]);
    assert!(
        !store.remove_host("host-gone").await.unwrap(),
        "removed twice"
    );
    assert!(!store.remove_host("nobody").await.unwrap());

    // It sends again, a day later: a new host with only the new snapshot.
    let later = snapshot_at("host-gone", 4, end + Duration::days(1));
    ingest(store, &later, later.collected_at).await;
    let back = store.host("host-gone").await.unwrap().unwrap();
    assert_eq!(back.first_seen, later.collected_at);
    let whole = TimeRange {
        from: start() - Duration::hours(1),
        to: end + Duration::hours(1),
    };
    for s in sent.iter().step_by(37) {
        assert!(
            store
                .snapshot("host-gone", Some(s.collected_at))
                .await
                .unwrap()
                .is_none(),
            "a removed snapshot of {} came back",
            s.collected_at
        );
    }
    for max_points in [2, 30, 1000] {
        let series = store
            .host_series("host-gone", whole, max_points)
            .await
            .unwrap();
        assert!(
            series.points.is_empty(),
            "{max_points}: {:?}",
            series.points
        );
        let p = &sent[0].processes[1];
        let series = store
            .process_series("host-gone", p.pid, p.start_time, whole, max_points)
            .await
            .unwrap();
        assert!(
            series.points.is_empty(),
            "{max_points}: {:?}",
            series.points
        );
    }
    let changes = store.changes("host-gone", whole, 1000).await.unwrap();
    assert!(
        changes.started.is_empty() && changes.exited.is_empty() && changes.changed.is_empty(),
        "{changes:?}"
    );
    let (found, _) = store
        .search(
            // Empty text: every process.
            &SearchQuery {
                text: String::new(),
                field: SearchField::Any,
            },
            Some(end),
            10_000,
        )
        .await
        .unwrap();
    assert!(!found.is_empty());
    assert!(found.iter().all(|f| f.host_id == "host-keep"), "{found:?}");

    // The other host keeps everything.
    for s in kept.iter().step_by(37) {
        let got = store
            .snapshot("host-keep", Some(s.collected_at))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("host-keep lost its snapshot of {}", s.collected_at));
        assert_eq!(got.id, s.id);
    }
    let series = store.host_series("host-keep", whole, 30).await.unwrap();
    assert!(!series.points.is_empty());
}

/// Accepts every snapshot a batch makes.
fn any(_: &Snapshot) -> Result<(), String> {
    Ok(())
}

async fn ingest_batch(
    store: &dyn Store,
    base: &Snapshot,
    next: &Snapshot,
    received: DateTime<Utc>,
) -> ChangeOutcome {
    let batch = procmon_model::changes::diff(base, next);
    store
        .ingest_changes(Arc::new(batch), received, any)
        .await
        .expect("ingest_changes")
}

/// The store owns the host's newest snapshot: a batch against it is applied
/// and reads back exactly as if sent in full; against any other base, or for
/// an unknown host, nothing is stored; a retry is stored once.
pub async fn a_change_batch_extends_only_the_hosts_newest_snapshot(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut host = SimHost::new("host-a", 60, 11, start());
    let s: Vec<Snapshot> = (0..30).map(|_| host.next()).collect();
    let received = |s: &Snapshot| s.collected_at + Duration::milliseconds(20);

    assert_eq!(
        ingest_batch(store, &s[0], &s[1], received(&s[1])).await,
        ChangeOutcome::BaseUnknown,
        "an unknown host has no base"
    );
    ingest(store, &s[0], received(&s[0])).await;
    for i in 1..s.len() {
        match ingest_batch(store, &s[i - 1], &s[i], received(&s[i])).await {
            ChangeOutcome::Stored(made) => {
                assert_eq!(made.id, s[i].id);
                assert_eq!(
                    sorted(made.processes.clone()),
                    sorted(s[i].processes.clone())
                );
            }
            other => panic!("batch {i}: {other:?}"),
        }
    }
    for (i, sent) in s.iter().enumerate() {
        let got = store
            .snapshot("host-a", Some(sent.collected_at))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.id, sent.id, "snapshot {i}");
        assert_eq!(
            sorted(got.processes),
            sorted(sent.processes.clone()),
            "snapshot {i}"
        );
    }
    let last = s.last().unwrap();
    assert_eq!(
        ingest_batch(store, &s[s.len() - 2], last, received(last)).await,
        ChangeOutcome::AlreadyStored,
        "a retry"
    );
    let next = host.next();
    assert_eq!(
        ingest_batch(store, &s[3], &next, received(&next)).await,
        ChangeOutcome::BaseUnknown,
        "an old base"
    );
    // A whole snapshot moves the newest on: batches follow it.
    let full = host.next();
    ingest(store, &full, received(&full)).await;
    assert_eq!(
        ingest_batch(store, last, &next, received(&next)).await,
        ChangeOutcome::BaseUnknown
    );
    let after = host.next();
    assert!(matches!(
        ingest_batch(store, &full, &after, received(&after)).await,
        ChangeOutcome::Stored(_)
    ));
    let mut batch = procmon_model::changes::diff(&after, &host.next());
    batch.id = s[5].id;
    batch.host_id = "host-b".into();
    assert_eq!(
        store
            .ingest_changes(Arc::new(batch), received(&after), any)
            .await
            .unwrap(),
        ChangeOutcome::IdTakenByOtherHost
    );
}

/// A batch naming a pid its base lacks, or making a snapshot the check
/// refuses, stores nothing and leaves the base in place.
pub async fn a_change_batch_that_does_not_fit_stores_nothing(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut host = SimHost::new("host-a", 20, 12, start());
    let base = host.next();
    ingest(store, &base, base.collected_at).await;
    let next = host.next();
    let mut batch = procmon_model::changes::diff(&base, &next);
    batch.exited.push(999_999);
    let outcome = store
        .ingest_changes(Arc::new(batch), next.collected_at, any)
        .await
        .unwrap();
    assert!(
        matches!(outcome, ChangeOutcome::DoesNotFit(_)),
        "{outcome:?}"
    );
    fn refuse(_: &Snapshot) -> Result<(), String> {
        Err("too many processes".into())
    }
    let batch = procmon_model::changes::diff(&base, &next);
    assert_eq!(
        store
            .ingest_changes(Arc::new(batch.clone()), next.collected_at, refuse)
            .await
            .unwrap(),
        ChangeOutcome::Invalid("too many processes".into())
    );
    assert_eq!(
        store.snapshot("host-a", None).await.unwrap().unwrap().id,
        base.id
    );
    assert!(matches!(
        store
            .ingest_changes(Arc::new(batch), next.collected_at, any)
            .await
            .unwrap(),
        ChangeOutcome::Stored(_)
    ));
}

/// Two batches against one base at once (two servers, or two requests):
/// exactly one is stored; the other is told its base is gone.
pub async fn racing_batches_on_one_base_store_exactly_one(fresh: Fresh) {
    let store = Arc::clone(&fresh.store);
    let mut host = SimHost::new("host-a", 40, 13, start());
    let base = host.next();
    ingest(store.as_ref(), &base, base.collected_at).await;
    for round in 0..10 {
        let newest = store.snapshot("host-a", None).await.unwrap().unwrap();
        let mut base_now = base.clone();
        base_now.id = newest.id;
        base_now.processes = newest.processes;
        base_now.collected_at = newest.collected_at;
        let a = host.next();
        let mut b = host.next();
        b.collected_at = a.collected_at;
        let (ba, bb) = (
            Arc::new(procmon_model::changes::diff(&base_now, &a)),
            Arc::new(procmon_model::changes::diff(&base_now, &b)),
        );
        let (sa, sb) = (Arc::clone(&store), Arc::clone(&store));
        let at = a.collected_at;
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { sa.ingest_changes(ba, at, any).await.unwrap() }),
            tokio::spawn(async move { sb.ingest_changes(bb, at, any).await.unwrap() }),
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, ChangeOutcome::Stored(_)))
            .count();
        assert_eq!(stored, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&ChangeOutcome::BaseUnknown),
            "round {round}: {outcomes:?}"
        );
    }
}

/// Any stored snapshot of a host reads back by its id, exactly, from any
/// point of a chain; another host's id, or one never stored, reads nothing.
pub async fn a_snapshot_reads_back_by_its_id_while_it_is_kept(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-id", 60, 5, start());
    sim.churn.turnover = 0.05;
    let mut sent = Vec::new();
    for _ in 0..300 {
        let snapshot = sim.next();
        ingest(store, &snapshot, snapshot.collected_at).await;
        sent.push(snapshot);
    }
    let other = snapshot_at("host-other", 5, start());
    ingest(store, &other, other.collected_at).await;
    for snapshot in [&sent[0], &sent[7], &sent[150], &sent[299]] {
        let read = store
            .snapshot_by_id("host-id", snapshot.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("snapshot {} is kept", snapshot.id));
        assert_eq!(read.id, snapshot.id);
        assert_eq!(read.collected_at, snapshot.collected_at);
        assert_eq!(sorted(read.processes), sorted(snapshot.processes.clone()));
    }
    let by_id =
        |host: &'static str, id| async move { store.snapshot_by_id(host, id).await.unwrap() };
    assert!(by_id("host-id", other.id).await.is_none(), "another host's");
    assert!(by_id("host-id", uuid::Uuid::new_v4()).await.is_none());
    assert!(by_id("no-such-host", sent[0].id).await.is_none());

    // Past raw retention it is gone, as the listing by time is.
    let now = sent[299].collected_at + Duration::minutes(30);
    let retention = Retention {
        raw: StdDuration::from_secs(20 * 60),
        ..Retention::default()
    };
    store.maintain(now, retention).await.unwrap();
    assert!(by_id("host-id", sent[0].id).await.is_none(), "expired");
}

/// Each snapshot leaves one load point (its totals and the agent's meters
/// as sent), oldest first; those taken over an hour before a host's newest
/// go; a removed host has none.
pub async fn load_points_are_each_snapshots_for_an_hour(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let mut sim = SimHost::new("host-load", 20, 9, start());
    sim.interval = Duration::minutes(1);
    let mut sent = Vec::new();
    for i in 0..90u64 {
        let mut snapshot = sim.next();
        snapshot.load = (i % 2 == 0).then(|| procmon_model::HostLoad {
            cpu_per_core: vec![12.5, i as f32],
            memory_used_bytes: i << 20,
            memory_available_bytes: 1 << 30,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            load_average: Some([0.5, 0.25, i as f64]),
        });
        ingest(store, &snapshot, snapshot.collected_at).await;
        sent.push(snapshot);
    }
    let points = store
        .load_points("host-load", start() - Duration::days(1))
        .await
        .unwrap();
    // The newest 61: an hour before the newest, and the newest.
    let kept = &sent[sent.len() - points.len()..];
    assert_eq!(points.len(), 61, "{:?}", points.first().map(|p| p.at));
    for (point, snapshot) in points.iter().zip(kept) {
        assert_eq!(point.at, snapshot.collected_at);
        assert_eq!(point.processes, snapshot.processes.len());
        assert_eq!(point.load, snapshot.load);
        let rss: u64 = snapshot.processes.iter().map(|p| p.memory_rss_bytes).sum();
        assert_eq!(point.memory_rss_bytes, rss);
        let cpu: f64 = snapshot
            .processes
            .iter()
            .map(|p| f64::from(p.cpu_percent))
            .sum();
        assert!((point.cpu_percent - cpu).abs() < 1e-6);
    }
    let recent = store
        .load_points("host-load", sent[80].collected_at)
        .await
        .unwrap();
    assert_eq!(recent.len(), 10, "from a time on");
    assert!(store.remove_host("host-load").await.unwrap());
    let gone = store
        .load_points("host-load", start() - Duration::days(1))
        .await
        .unwrap();
    assert!(gone.is_empty());
}

/// A host's labels are those of its newest snapshot by the time it was
/// taken, whether it came whole or as a batch carrying the host's facts; a
/// batch without them leaves them, and a late, older snapshot changes
/// nothing.
pub async fn hosts_carry_the_labels_of_their_newest_snapshot_or_batch(fresh: Fresh) {
    let store = fresh.store.as_ref();
    let labels_of = |hosts: &[procmon_server::store::HostRecord], id: &str| {
        hosts
            .iter()
            .find(|h| h.info.id == id)
            .map(|h| h.info.labels.clone())
            .unwrap_or_else(|| panic!("no host {id}"))
    };
    let later = |s: &Snapshot, seconds: i64| {
        let mut next = s.clone();
        next.id = uuid::Uuid::new_v4();
        next.collected_at = s.collected_at + Duration::seconds(seconds);
        next
    };
    let mut first = snapshot_at("host-a", 3, start());
    first.host.labels = vec!["prod".into(), "role=db".into()];
    ingest(store, &first, first.collected_at).await;
    let bare = snapshot_at("host-b", 3, start());
    ingest(store, &bare, bare.collected_at).await;
    let hosts = store.hosts().await.unwrap();
    assert_eq!(labels_of(&hosts, "host-a"), ["prod", "role=db"]);
    assert!(labels_of(&hosts, "host-b").is_empty());

    let mut older = later(&first, -30);
    older.host.labels = vec!["old".into()];
    ingest(store, &older, first.collected_at + Duration::seconds(1)).await;
    let host = store.host("host-a").await.unwrap().unwrap();
    assert_eq!(host.info.labels, ["prod", "role=db"], "a late snapshot");

    let mut relabelled = later(&first, 2);
    relabelled.host.labels = vec!["staging".into()];
    let received = relabelled.collected_at;
    assert!(matches!(
        ingest_batch(store, &first, &relabelled, received).await,
        ChangeOutcome::Stored(_)
    ));
    assert_eq!(
        labels_of(&store.hosts().await.unwrap(), "host-a"),
        ["staging"]
    );
    let quiet = later(&relabelled, 2);
    let batch = procmon_model::changes::diff(&relabelled, &quiet);
    assert!(batch.host.is_none(), "the facts did not change");
    assert!(matches!(
        ingest_batch(store, &relabelled, &quiet, quiet.collected_at).await,
        ChangeOutcome::Stored(_)
    ));
    assert_eq!(
        labels_of(&store.hosts().await.unwrap(), "host-a"),
        ["staging"]
    );

    let mut unlabelled = later(&quiet, 2);
    unlabelled.host.labels.clear();
    ingest(store, &unlabelled, unlabelled.collected_at).await;
    assert!(labels_of(&store.hosts().await.unwrap(), "host-a").is_empty());
}
