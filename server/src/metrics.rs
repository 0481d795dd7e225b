//! What the server counts for Prometheus (`GET /metrics`, see [`scrape`]):
//! deliveries stored and refused, how long ingest and the store's writes
//! take, agents and viewers connected, history maintenance, and HTTP
//! answers by status class; in [`alerts`], alerting; in [`actions`],
//! actions on processes.
//!
//! One [`Metrics`] per server, in `AppState`: its counters, gauges and
//! histograms are atomics, so recording costs no lock. No label names a
//! host or a process, so the number of series stays fixed whatever the
//! number of hosts.

pub mod access;
pub mod actions;
pub mod alerts;
pub mod layer;
pub mod scrape;

use std::time::Duration;

use procmon_model::IngestResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::api::ingest::{Delivery, Source};
use crate::error::ApiError;
use crate::store::{Maintenance, StoreResult};

/// Bounds of the ingest and store-write histograms, in seconds: 1 ms (a
/// small host's snapshot into SQLite) to 5 s (a store that is struggling).
const INGEST_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bounds of the maintenance histogram, in seconds: a pass with nothing to
/// do takes milliseconds, one that catches up on a long backlog minutes.
const MAINTENANCE_BUCKETS: [f64; 10] = [0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Bounds of the spool-waiting histogram, in deliveries: none (the agent
/// keeps up), a few (a blip), to a day of 5-s snapshots (17,280) and more.
const SPOOL_WAITING_BUCKETS: [f64; 9] = [
    0.0, 1.0, 2.0, 10.0, 100.0, 1_000.0, 10_000.0, 20_000.0, 100_000.0,
];
/// Bounds of the spool-size histogram, in bytes: empty, to the agent's
/// default cap (256 MiB) and beyond.
const SPOOL_BYTES_BUCKETS: [f64; 8] = [
    0.0,
    65_536.0,
    1_048_576.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

/// What a delivery was: `kind` of `procmon_snapshots_ingested_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryKind {
    Snapshot,
    Batch,
}

impl DeliveryKind {
    pub fn of(delivery: &Delivery) -> Self {
        match delivery {
            Delivery::Snapshot(_) => Self::Snapshot,
            Delivery::Batch(_) => Self::Batch,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Batch => "batch",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ingested {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rejected {
    /// The `error` of the answer's `ErrorBody`, as the agent read it.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusClass {
    status_class: &'static str,
}

/// The server's metrics and the registry that writes them out.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ingested: Family<Ingested, Counter>,
    rejected: Family<Rejected, Counter>,
    store_write: Histogram,
    ingest: Histogram,
    agents_connected: Gauge,
    viewers_connected: Gauge,
    maintenance_runs: Family<Outcome, Counter>,
    maintenance: Histogram,
    blocks_dropped: Counter,
    http_requests: Family<StatusClass, Counter>,
    notification_lag: Histogram,
    in_flight: Gauge,
    spool_waiting: Histogram,
    spool_bytes: Histogram,
    /// Alerts open, rule evaluation and notifications.
    pub alerts: alerts::AlertMetrics,
    /// Actions on processes asked for, and their results.
    pub actions: actions::ActionMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, each at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("procmon");
        let ingested = Family::<Ingested, Counter>::default();
        registry.register(
            "snapshots_ingested",
            "Snapshots and change batches accepted from agents: stored now, or stored before (a retry)",
            ingested.clone(),
        );
        let rejected = Family::<Rejected, Counter>::default();
        registry.register(
            "ingest_rejected",
            "Snapshots and change batches refused, by the error code the agent was answered",
            rejected.clone(),
        );
        let store_write = Histogram::new(INGEST_BUCKETS);
        registry.register_with_unit(
            "store_write",
            "Time the store took to write one delivered snapshot",
            Unit::Seconds,
            store_write.clone(),
        );
        let ingest = Histogram::new(INGEST_BUCKETS);
        registry.register_with_unit(
            "ingest",
            "Time to check, apply, store and commit one delivery, refused ones included",
            Unit::Seconds,
            ingest.clone(),
        );
        let agents_connected = Gauge::default();
        registry.register(
            "agents_connected",
            "Hosts online: their newest snapshot reached a server of this database within 3 of their agent's intervals, as GET /api/hosts/ counts online",
            agents_connected.clone(),
        );
        let viewers_connected = Gauge::default();
        registry.register(
            "viewers_connected",
            "Live streams (GET /api/live/) open now",
            viewers_connected.clone(),
        );
        let maintenance_runs = Family::<Outcome, Counter>::default();
        registry.register(
            "maintenance_runs",
            "History maintenance runs (roll-ups and retention), by whether they finished",
            maintenance_runs.clone(),
        );
        let maintenance = Histogram::new(MAINTENANCE_BUCKETS);
        registry.register_with_unit(
            "maintenance",
            "Time one history maintenance run took",
            Unit::Seconds,
            maintenance.clone(),
        );
        let blocks_dropped = Counter::default();
        registry.register(
            "retention_blocks_dropped",
            "Blocks of history dropped for being older than their retention",
            blocks_dropped.clone(),
        );
        let http_requests = Family::<StatusClass, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by the class of their status code",
            http_requests.clone(),
        );
        let notification_lag = Histogram::new(INGEST_BUCKETS);
        registry.register_with_unit(
            "notification_lag",
            "From another server receiving a snapshot to this one pushing it to its viewers (a shared PostgreSQL database)",
            Unit::Seconds,
            notification_lag.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "ingest_in_flight",
            "Deliveries this server is handling now: waiting for their host's turn, or in the store",
            in_flight.clone(),
        );
        let spool_waiting = Histogram::new(SPOOL_WAITING_BUCKETS);
        registry.register(
            "agent_spool_waiting",
            "Deliveries waiting in the sending agent's spool, as it reported with each delivery (the fleet's backlog)",
            spool_waiting.clone(),
        );
        let spool_bytes = Histogram::new(SPOOL_BYTES_BUCKETS);
        registry.register_with_unit(
            "agent_spool",
            "Bytes the sending agent's spool took on disk, as it reported with each delivery",
            Unit::Bytes,
            spool_bytes.clone(),
        );
        // Known series start at 0, so that they exist (and `rate()` works)
        // before the first event; refusal reasons appear as they happen.
        for kind in [DeliveryKind::Snapshot, DeliveryKind::Batch] {
            for outcome in ["stored", "already_stored"] {
                ingested
                    .get_or_create(&Ingested {
                        kind: kind.label(),
                        outcome,
                    })
                    .inc_by(0);
            }
        }
        for outcome in ["ok", "error"] {
            maintenance_runs
                .get_or_create(&Outcome { outcome })
                .inc_by(0);
        }
        for status_class in ["2xx", "4xx", "5xx"] {
            http_requests
                .get_or_create(&StatusClass { status_class })
                .inc_by(0);
        }
        let alerts = alerts::AlertMetrics::register(&mut registry);
        let actions = actions::ActionMetrics::register(&mut registry);
        Self {
            alerts,
            actions,
            registry,
            ingested,
            rejected,
            store_write,
            ingest,
            agents_connected,
            viewers_connected,
            maintenance_runs,
            maintenance,
            blocks_dropped,
            http_requests,
            notification_lag,
            in_flight,
            spool_waiting,
            spool_bytes,
        }
    }

    /// Records what an agent said its spool held as it sent a delivery.
    pub fn agent_spool(&self, report: procmon_model::SpoolReport) {
        self.spool_waiting.observe(report.waiting as f64);
        self.spool_bytes.observe(report.bytes as f64);
    }

    /// Starts timing one delivery; [`IngestTimer::done`] records it.
    pub fn ingest_started(&self, from: &Source, delivery: &Delivery) -> IngestTimer<'_> {
        self.in_flight.inc();
        IngestTimer {
            metrics: self,
            kind: DeliveryKind::of(delivery),
            // Refusals over HTTP are counted from the answer (see
            // `layer`), with the ones made before ingest (no key, bad
            // JSON); the embedded agent's have no answer to count from.
            counts_refusals: matches!(from, Source::Embedded),
            started: std::time::Instant::now(),
        }
    }

    /// Runs the store's write of a snapshot, timed.
    pub async fn store_write<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let written = write.await;
        self.store_write.observe(started.elapsed().as_secs_f64());
        written
    }

    /// Records how long a snapshot that another server received took to
    /// reach this server's viewers.
    pub fn notification_lag(&self, lag: chrono::TimeDelta) {
        let seconds = lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        self.notification_lag.observe(seconds.max(0.0));
    }

    /// Counts a refused delivery under `reason`, the error code answered.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&Rejected { reason }).inc();
    }

    /// Counts an answered HTTP request by its status.
    pub fn answered(&self, status: axum::http::StatusCode) {
        let status_class = match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        self.http_requests
            .get_or_create(&StatusClass { status_class })
            .inc();
    }

    /// One more live stream open, until the guard is dropped (the stream
    /// ended, or its connection closed).
    pub fn viewer_connected(&self) -> ViewerGuard {
        self.viewers_connected.inc();
        ViewerGuard(self.viewers_connected.clone())
    }

    /// Records one maintenance run: whether it finished, how long it took,
    /// and the blocks it dropped.
    pub fn maintenance_done(&self, result: &StoreResult<Maintenance>, took: Duration) {
        let outcome = match result {
            Ok(done) => {
                self.blocks_dropped.inc_by(done.blocks_dropped);
                "ok"
            }
            Err(_) => "error",
        };
        self.maintenance_runs
            .get_or_create(&Outcome { outcome })
            .inc();
        self.maintenance.observe(took.as_secs_f64());
    }

    /// The metrics in the Prometheus text format, with `hosts_online` (read
    /// from the store at scrape time, so that every server of a database
    /// says the same) as `procmon_agents_connected`.
    pub fn encode(&self, hosts_online: usize) -> String {
        self.agents_connected
            .set(i64::try_from(hosts_online).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One delivery being timed.
pub struct IngestTimer<'a> {
    metrics: &'a Metrics,
    kind: DeliveryKind,
    counts_refusals: bool,
    started: std::time::Instant,
}

impl IngestTimer<'_> {
    /// Records the delivery's outcome and how long it took.
    pub fn done(self, result: &Result<IngestResponse, ApiError>) {
        let metrics = self.metrics;
        metrics.ingest.observe(self.started.elapsed().as_secs_f64());
        match result {
            Ok(answer) => {
                let outcome = if answer.stored {
                    "stored"
                } else {
                    "already_stored"
                };
                metrics
                    .ingested
                    .get_or_create(&Ingested {
                        kind: self.kind.label(),
                        outcome,
                    })
                    .inc();
            }
            Err(error) if self.counts_refusals => metrics.rejected(error.status_and_kind().1),
            Err(_) => {}
        }
    }
}

// Dropped, not only done: a delivery whose client went away is no longer
// in flight either.
impl Drop for IngestTimer<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// Keeps one live stream counted in `procmon_viewers_connected`.
pub struct ViewerGuard(Gauge);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let metrics = Metrics::new();
        metrics.answered(axum::http::StatusCode::NOT_FOUND);
        metrics.rejected("base_unknown");
        let text = metrics.encode(0);
        for line in [
            "# TYPE procmon_snapshots_ingested_total counter",
            "# TYPE procmon_ingest_rejected_total counter",
            "# TYPE procmon_store_write_seconds histogram",
            "# TYPE procmon_ingest_seconds histogram",
            "# TYPE procmon_agents_connected gauge",
            "# TYPE procmon_viewers_connected gauge",
            "# TYPE procmon_maintenance_runs_total counter",
            "# TYPE procmon_maintenance_seconds histogram",
            "# TYPE procmon_retention_blocks_dropped_total counter",
            "# TYPE procmon_http_requests_total counter",
            "# TYPE procmon_notification_lag_seconds histogram",
            "# TYPE procmon_ingest_in_flight gauge",
            "# TYPE procmon_agent_spool_waiting histogram",
            "# TYPE procmon_agent_spool_bytes histogram",
            "procmon_ingest_in_flight 0",
            "procmon_http_requests_total{status_class=\"4xx\"} 1",
            "procmon_ingest_rejected_total{reason=\"base_unknown\"} 1",
            "procmon_store_write_seconds_bucket{le=\"0.001\"} 0",
            "procmon_store_write_seconds_bucket{le=\"5\"} 0",
            "procmon_agents_connected 0",
            "procmon_snapshots_ingested_total{kind=\"batch\",outcome=\"already_stored\"} 0",
            "procmon_http_requests_total{status_class=\"5xx\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn agents_spool_reports_fill_their_histograms() {
        let metrics = Metrics::new();
        for (waiting, bytes) in [(0, 0), (3, 40_000), (5_000, 100_000_000)] {
            metrics.agent_spool(procmon_model::SpoolReport { waiting, bytes });
        }
        let text = metrics.encode(0);
        for line in [
            "procmon_agent_spool_waiting_count 3",
            "procmon_agent_spool_waiting_sum 5003.0",
            "procmon_agent_spool_waiting_bucket{le=\"0\"} 1",
            "procmon_agent_spool_waiting_bucket{le=\"10\"} 2",
            "procmon_agent_spool_waiting_bucket{le=\"10000\"} 3",
            "procmon_agent_spool_bytes_count 3",
            "procmon_agent_spool_bytes_bucket{le=\"65536\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_dropped_viewer_is_no_longer_counted() {
        let metrics = Metrics::new();
        let one = metrics.viewer_connected();
        let two = metrics.viewer_connected();
        assert_eq!(metrics.viewers_connected.get(), 2);
        drop(one);
        assert_eq!(metrics.viewers_connected.get(), 1);
        drop(two);
        assert_eq!(metrics.viewers_connected.get(), 0);
    }

    #[test]
    fn maintenance_counts_runs_and_dropped_blocks() {
        let metrics = Metrics::new();
        let done = Maintenance {
            blocks_dropped: 3,
            ..Maintenance::default()
        };
        metrics.maintenance_done(&Ok(done), Duration::from_millis(20));
        metrics.maintenance_done(
            &Err(crate::store::StoreError::Unavailable("disk full".into())),
            Duration::from_millis(1),
        );
        let text = metrics.encode(0);
        for line in [
            "procmon_maintenance_runs_total{outcome=\"ok\"} 1",
            "procmon_maintenance_runs_total{outcome=\"error\"} 1",
            "procmon_retention_blocks_dropped_total 3",
            "procmon_maintenance_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
