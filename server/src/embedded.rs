//! The server's own agent: it snapshots this machine and hands each
//! snapshot or change batch to the ingest path in process, with no HTTP
//! request and no key, through the same checks, store and commit as an
//! agent's POST.

use procmon_agent::{Deliver, Delivery, SendError};
use procmon_model::{IngestResponse, SpoolReport};

use crate::api::ingest::{self, Source};
use crate::error::ApiError;
use crate::startup::AppState;

/// Delivers to this server in process.
pub struct InProcess {
    state: AppState,
}

impl InProcess {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Deliver for InProcess {
    async fn deliver(&mut self, delivery: Delivery<'_>) -> Result<IngestResponse, SendError> {
        let delivery = match delivery {
            Delivery::Full(snapshot) => {
                // Known from its first snapshot on, so that another agent
                // reporting this host is noticed.
                self.state.embedded.set(&snapshot.host.id);
                ingest::Delivery::Snapshot(snapshot.clone())
            }
            Delivery::Batch(batch) => ingest::Delivery::Batch(batch.clone()),
        };
        ingest::deliver(&self.state, Source::Embedded, delivery)
            .await
            .map_err(|error| match error {
                ApiError::BaseUnknown { .. } => SendError::BaseUnknown {
                    message: error.to_string(),
                },
                other => SendError::Rejected {
                    status: other.status_and_kind().0.as_u16(),
                    message: other.to_string(),
                },
            })
    }

    /// The server's own agent counts its spool as other agents report
    /// theirs.
    fn spool_is(&mut self, report: SpoolReport) {
        self.state.metrics.agent_spool(report);
    }
}
