//! Notifications leave the server here: one sender per kind of channel
//! (webhook, Slack, Discord, ntfy, e-mail), the checks a channel must pass
//! before it is stored, and the worker that sends what the alerts queue
//! ([`worker`]). Every send is bounded in time ([`TIMEOUT`]), so a channel
//! that hangs costs its own delivery 10 s and no one else's.
//!
//! Errors name the far end by host and port only: a Slack or Discord
//! webhook's path is its credential, so no message or log line shows it.

pub mod check;
mod discord;
mod email;
mod http;
mod ntfy;
mod slack;
mod text;
mod webhook;
pub mod worker;

use std::time::Duration;

use procmon_model::alerts::AlertNotification;
use procmon_model::channels::ChannelKind;
use secrecy::SecretString;

pub use text::test_notification;

/// The longest a send may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a receiver's answer is read (for its error message).
const ANSWER_LIMIT: usize = 16 * 1024;

/// Sends notifications; one for the server, shared by the worker and the
/// test button.
pub struct Notifier {
    http: reqwest::Client,
}

impl Notifier {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            // A receiver that redirects is misconfigured: following it
            // would send the alert (and its signature) somewhere not set.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("procmon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot make the notification HTTP client: {e}"))?;
        Ok(Self { http })
    }

    /// Sends `notification` (whose JSON is `body`, as queued) to the
    /// channel `kind` with its `secret`; the error says why it did not
    /// arrive.
    pub async fn send(
        &self,
        kind: &ChannelKind,
        secret: Option<&SecretString>,
        notification: &AlertNotification,
        body: &str,
    ) -> Result<(), String> {
        match kind {
            ChannelKind::Webhook { url } => webhook::send(&self.http, url, secret, body).await,
            ChannelKind::Slack { url } => slack::send(&self.http, url, notification).await,
            ChannelKind::Discord { url } => discord::send(&self.http, url, notification).await,
            ChannelKind::Ntfy { url } => ntfy::send(&self.http, url, secret, notification).await,
            ChannelKind::Email {
                smtp_host,
                smtp_port,
                security,
                username,
                from,
                to,
            } => {
                let server = email::Server {
                    host: smtp_host,
                    port: *smtp_port,
                    security: *security,
                    username: username.as_deref(),
                    password: secret,
                };
                email::send(&server, from, to, notification).await
            }
        }
    }
}
