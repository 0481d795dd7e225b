//! The server's own agent: it snapshots this machine and hands each
//! snapshot or change batch to the ingest path in process, with no HTTP
//! request and no key, through the same checks, store and commit as an
//! agent's POST. Actions on this machine's processes reach it the same
//! way: fetched and reported in process ([`InProcess::fetch_actions`],
//! [`InProcess::report_action`]), signed with the key it pins
//! ([`InProcess::action_key`]), exactly as an enrolled agent gets them.

use std::sync::Arc;

use procmon_agent::actions::pull::BoxFuture;
use procmon_agent::actions::{ActionLink, LinkError};
use procmon_agent::{Deliver, Delivery, SendError};
use procmon_model::actions::{ActionReport, SignedAction};
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

    /// The public key this server's database signs actions with
    /// (`ed25519:<standard base64>`): the key the embedded agent pins, the
    /// same one `EnrollResponse.action_key` gives enrolled agents and
    /// `procmon-server action-key` prints.
    pub fn action_key(&self) -> &str {
        self.state.action_signer.public_key()
    }

    /// The actions waiting for this machine's host, each claimed (handed
    /// out once), as `GET /api/agent/actions/` answers an agent; none
    /// before the embedded agent has delivered its first snapshot (until
    /// then the server does not know which host it is).
    pub async fn fetch_actions(&self) -> Result<Vec<SignedAction>, ApiError> {
        match self.state.embedded.get() {
            Some(host_id) => crate::api::actions::claim_for(&self.state, host_id).await,
            None => Ok(Vec::new()),
        }
    }

    /// Records how the action `id` ended, as `POST
    /// /api/agent/actions/{id}/result` does: `UnknownAgentAction` (404)
    /// when it is not this host's, `ActionResultRecorded` (409) when it
    /// has a result already, `InvalidActionReport` (422) for a report an
    /// agent may not make.
    pub async fn report_action(
        &self,
        id: uuid::Uuid,
        report: &ActionReport,
    ) -> Result<(), ApiError> {
        let Some(host_id) = self.state.embedded.get() else {
            return Err(ApiError::UnknownAgentAction(id.to_string()));
        };
        crate::api::actions::report_for(&self.state, host_id, &id.to_string(), report).await
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

    /// Always a link: whether to act is the agent's own check (off unless
    /// `embedded_agent_actions` lists kinds), so an action asked of this
    /// machine while they are off is answered "disabled", not left
    /// unanswered.
    fn action_link(&mut self) -> Option<Arc<dyn ActionLink>> {
        Some(Arc::new(InProcess::new(self.state.clone())))
    }
}

/// What the HTTP link would have answered, so the agent treats an
/// in-process refusal (404, 409, 422) as final exactly as it treats a
/// server's.
fn link_error(error: ApiError) -> LinkError {
    LinkError::Answered {
        url: "this server, in process".to_owned(),
        status: error.status_and_kind().0.as_u16(),
        message: error.to_string(),
    }
}

impl ActionLink for InProcess {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, LinkError>> {
        Box::pin(async move {
            let actions = self.fetch_actions().await.map_err(link_error)?;
            actions
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()
                .map_err(|e| LinkError::NoAnswer(format!("cannot encode an action: {e}")))
        })
    }

    fn report<'a>(
        &'a self,
        id: uuid::Uuid,
        report: &'a ActionReport,
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move { self.report_action(id, report).await.map_err(link_error) })
    }
}
