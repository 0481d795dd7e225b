//! Actions over HTTP: the agent's own senders (one HTTP client and key per
//! server, as the snapshots use), tried in the order the snapshots' failover
//! gives ([`crate::failover`]): the current server first, the next while
//! one does not answer.

use std::future::Future;

use procmon_model::actions::ActionReport;
use reqwest::{Method, StatusCode, Url};
use uuid::Uuid;

use super::pull::{ActionLink, BoxFuture, LinkError, MAX_FETCH_BYTES};
use crate::send::{answer_body_within, explain, server_message, Sender};

/// Fetches and reports through `senders`, trying them in `order`.
pub(crate) struct HttpActions {
    senders: Vec<Sender>,
    order: Vec<usize>,
}

impl HttpActions {
    pub(crate) fn new(senders: Vec<Sender>, order: Vec<usize>) -> Self {
        Self { senders, order }
    }

    /// `each` on the servers in order until one answers.
    async fn first_answer<'a, T, F, Fut>(&'a self, each: F) -> Result<T, LinkError>
    where
        F: Fn(&'a Sender) -> Fut,
        Fut: Future<Output = Result<T, LinkError>>,
    {
        let mut last = LinkError::NoAnswer("no server to ask".to_owned());
        for &index in &self.order {
            match each(&self.senders[index]).await {
                Err(error @ LinkError::NoAnswer(_)) => {
                    tracing::debug!(server = %self.senders[index].server_url(), "{error}");
                    last = error;
                }
                answered => return answered,
            }
        }
        Err(last)
    }
}

impl ActionLink for HttpActions {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, LinkError>> {
        Box::pin(self.first_answer(fetch_from))
    }

    fn report<'a>(
        &'a self,
        id: Uuid,
        report: &'a ActionReport,
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(self.first_answer(move |sender| report_to(sender, id, report)))
    }
}

async fn fetch_from(sender: &Sender) -> Result<Vec<serde_json::Value>, LinkError> {
    let (url, request) = sender.request(Method::GET, "api/agent/actions/");
    let body = answered(sender, &url, request).await?;
    serde_json::from_slice(&body).map_err(|e| LinkError::Answered {
        url: url.to_string(),
        status: 200,
        message: format!(
            "the answer is not a list of actions ({e}); is server_url a procmon server?"
        ),
    })
}

async fn report_to(sender: &Sender, id: Uuid, report: &ActionReport) -> Result<(), LinkError> {
    let (url, request) = sender.request(Method::POST, &format!("api/agent/actions/{id}/result"));
    answered(sender, &url, request.json(report)).await.map(drop)
}

/// The body of a successful answer to `request`, read up to
/// [`MAX_FETCH_BYTES`]; else why not, as a [`LinkError`].
async fn answered(
    sender: &Sender,
    url: &Url,
    request: reqwest::RequestBuilder,
) -> Result<Vec<u8>, LinkError> {
    let server_url = sender.server_url();
    let response = request
        .send()
        .await
        .map_err(|e| LinkError::NoAnswer(explain(server_url, url, &e).to_string()))?;
    let status = response.status();
    let body = answer_body_within(response, server_url, url, MAX_FETCH_BYTES)
        .await
        .map_err(|e| match e {
            crate::SendError::AnswerTooLarge { .. } => LinkError::Answered {
                url: url.to_string(),
                status: status.as_u16(),
                message: e.to_string(),
            },
            other => LinkError::NoAnswer(other.to_string()),
        })?;
    if status.is_success() {
        return Ok(body);
    }
    let mut message = server_message(&body);
    match status {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            return Err(LinkError::NoAnswer(format!(
                "the server at {url} answered {status}: {message}"
            )))
        }
        StatusCode::UNAUTHORIZED => {
            message = format!("the server refused this machine's key ({message})");
        }
        StatusCode::NOT_FOUND if url.path().ends_with("/api/agent/actions/") => {
            message.push_str(" (a server from before process actions?)");
        }
        _ => {}
    }
    Err(LinkError::Answered {
        url: url.to_string(),
        status: status.as_u16(),
        message,
    })
}
