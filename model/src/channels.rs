//! Notification channels on the wire: where alerts are sent
//! (`/api/alerts/channels/`), and the deliveries that carry each
//! notification to one channel (`/api/alerts/deliveries/`).
//!
//! A channel's secret (the webhook's signing key, the SMTP password, the
//! ntfy token) is write-only: a spec carries it to the server, nothing
//! the server answers carries it back ([`Channel::has_secret`] says
//! whether one is set).

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::alerts::AlertState;

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// TLS from the first byte (usually port 465).
    Tls,
    /// Plain first, then `STARTTLS`, which the server must offer
    /// (usually port 587).
    Starttls,
    /// No encryption: for a relay on the same host or network only.
    None,
}

/// What a channel is and where it sends. The JSON is an object with
/// `type` naming the kind, e.g. `{"type": "webhook", "url": "https://…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelKind {
    /// POSTs the [`crate::alerts::AlertNotification`] as JSON. With a
    /// secret, signed: `x-procmon-timestamp` is the Unix time in seconds
    /// and `x-procmon-signature` is `sha256=` and the hex HMAC-SHA256,
    /// keyed with the secret, of `<timestamp>.<body>`.
    Webhook {
        #[cfg_attr(
            feature = "openapi",
            schema(
                pattern = r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
                max_length = 2048
            )
        )]
        url: String,
    },
    /// A Slack incoming webhook: `{"text": …}`.
    Slack {
        #[cfg_attr(
            feature = "openapi",
            schema(
                pattern = r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
                max_length = 2048
            )
        )]
        url: String,
    },
    /// A Discord webhook: `{"content": …}`.
    Discord {
        #[cfg_attr(
            feature = "openapi",
            schema(
                pattern = r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
                max_length = 2048
            )
        )]
        url: String,
    },
    /// An ntfy topic URL (`https://ntfy.sh/my-topic`): the text as the
    /// body, with `Title`, `Priority` and `Tags` headers; the secret, when
    /// set, is sent as a bearer token.
    Ntfy {
        #[cfg_attr(
            feature = "openapi",
            schema(
                pattern = r"^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
                max_length = 2048
            )
        )]
        url: String,
    },
    /// E-mail through an SMTP server; the secret is `username`'s password.
    Email {
        #[cfg_attr(
            feature = "openapi",
            schema(pattern = r"^[A-Za-z0-9.-]+$", max_length = 253)
        )]
        smtp_host: String,
        #[cfg_attr(feature = "openapi", schema(minimum = 1))]
        smtp_port: u16,
        security: SmtpSecurity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The sender, `name@example.com` or `Name <name@example.com>`.
        #[cfg_attr(
            feature = "openapi",
            schema(
                pattern = r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
            )
        )]
        from: String,
        /// The recipients, 1 to 50.
        #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
        to: Vec<String>,
    },
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Discord { .. } => "discord",
            Self::Ntfy { .. } => "ntfy",
            Self::Email { .. } => "email",
        }
    }
}

/// A channel as an admin makes or changes it: the body of
/// `POST /api/alerts/channels/` and `PUT /api/alerts/channels/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// What people call it (1 to 200 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"\S", min_length = 1, max_length = 200)
    )]
    pub name: String,
    pub kind: ChannelKind,
    /// The webhook's signing key, the SMTP password or the ntfy token.
    /// Never answered back. On a change, leaving it out keeps the secret
    /// set before, and an empty one removes it.
    #[serde(default, skip_serializing)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Password, write_only, max_length = 1024))]
    pub secret: Option<SecretString>,
}

/// How a channel's deliveries have gone lately.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelHealth {
    /// When a notification last reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// When an attempt last failed, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Attempts failed in a row since the last success (0: healthy).
    pub failing: u32,
}

/// A stored channel: `GET /api/alerts/channels/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub kind: ChannelKind,
    /// Whether a secret is set (it is never shown).
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub health: ChannelHealth,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not tried yet.
    Pending,
    /// Tried and failed; tried again at `next_attempt_at`.
    Failing,
    /// The channel took it.
    Delivered,
    /// Failed for too long (or its channel was deleted): not tried again.
    /// `last_error` says why.
    GivenUp,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failing => "failing",
            Self::Delivered => "delivered",
            Self::GivenUp => "given_up",
        }
    }
}

/// One notification on its way to one channel: `GET /api/alerts/deliveries/`.
/// Its `id` is the notification's, which receivers can drop repeats by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub channel_id: String,
    /// The channel's name; none once the channel is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    pub alert_id: String,
    /// The alert's line for people.
    pub summary: String,
    /// What the notification tells: `firing` or `resolved`.
    pub state: AlertState,
    /// A repeat of a firing notification.
    pub repeat: bool,
    pub status: DeliveryStatus,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is tried (again); none once delivered or given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The answer of `POST /api/alerts/channels/{id}/test`: whether a test
/// notification, sent at once, reached the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelTestResult {
    pub ok: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The test notification's id.
    pub notification_id: String,
    /// How long sending took, in milliseconds.
    pub elapsed_ms: u64,
}
