//! Alerts on the wire: the rules people make (`/api/alerts/rules/`), the
//! alerts those rules raise (`/api/alerts/`), silences, and the channels
//! that carry notifications.
//!
//! A rule is checked against every snapshot a host in its scope sends, and
//! on a timer for what no snapshot says (a host gone quiet, a `for` that
//! has run out). Its state per host (and per process, for rules on one
//! process's numbers) lives in the store, so any server can evaluate it and
//! any can answer for it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How much an alert matters; channels and the page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// How one text of a process is matched. `equals` and `contains` ignore
/// case (Windows names do); a regular expression is taken as written (start
/// it with `(?i)` to ignore case) and must compile within the server's
/// size limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TextMatch {
    Equals(String),
    Contains(String),
    Regex(String),
}

/// Which processes a rule counts: those matching every part given (at
/// least one must be). `cmd` is matched against the command line joined
/// with spaces; `exe` against the executable's path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(min_properties = 1))]
#[serde(deny_unknown_fields)]
pub struct ProcessMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<TextMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<TextMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<TextMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<TextMatch>,
}

/// One process's number a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProcessMetric {
    /// CPU % (100 = one core).
    CpuPercent,
    MemoryRssBytes,
    Threads,
    /// Open handles (Windows) or file descriptors (Linux).
    Handles,
}

/// One host's number a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostMetric {
    /// The machine's CPU, as the cores' average (100 = every core busy).
    CpuPercent,
    /// Memory in use, in bytes.
    MemoryUsedBytes,
    /// Memory in use as a share of the machine's, in %.
    MemoryUsedPercent,
    /// How many processes run.
    ProcessCount,
}

/// What a rule watches for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// No matching process runs on the host.
    ProcessAbsent { process: ProcessMatch },
    /// A matching process runs on the host.
    ProcessPresent { process: ProcessMatch },
    /// The number of matching processes is below `min` or above `max`.
    ProcessCount {
        process: ProcessMatch,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u32>,
    },
    /// A matching process's number is above `above` (for the rule's
    /// `for`, to ride out a spike); it clears once at or below
    /// `clear_below` (`above` when not given). Each process alerts on its
    /// own.
    ProcessAbove {
        process: ProcessMatch,
        metric: ProcessMetric,
        above: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_below: Option<f64>,
    },
    /// The host's number is above `above`; it clears once at or below
    /// `clear_below` (`above` when not given).
    HostAbove {
        metric: HostMetric,
        above: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_below: Option<f64>,
    },
    /// No snapshot has arrived from the host for `for_seconds` past three
    /// of its agent's intervals (when the page shows it offline).
    HostOffline,
}

/// A rule as made on the page or by API: the body of
/// `POST /api/alerts/rules/` and `PUT /api/alerts/rules/{id}`. (Its own
/// fields are not closed to others, unlike its condition's: a stored rule
/// is these fields and its id and version in one object.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleSpec {
    /// What people call it (1 to 200 characters, not all blank).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    #[serde(default)]
    pub severity: Severity,
    /// The hosts it applies to, by host id or hostname; none: every host.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub hosts: Vec<String>,
    /// Only hosts carrying every one of these labels
    /// ([`HostInfo::labels`](crate::HostInfo::labels), compared ignoring
    /// case); with `hosts` too, a host must be named and carry them. None:
    /// labels do not matter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub host_labels: Vec<String>,
    pub condition: AlertCondition,
    /// How long the condition must hold before the alert fires (until
    /// then it is pending, and tells nobody). At most 30 days.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 2_592_000))]
    pub for_seconds: u64,
    /// How long the condition must have cleared before a firing alert
    /// resolves: a process that flaps back within it stays one alert. At
    /// most 30 days.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 2_592_000))]
    pub clear_seconds: u64,
    /// While firing, notify again this often (a minute to 30 days); none:
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 60, maximum = 2_592_000))]
    pub repeat_seconds: Option<u64>,
    /// The channels told when it fires and resolves, by id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub channels: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A stored rule: `GET /api/alerts/rules/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRule {
    pub id: String,
    /// 1 when made, one more at each change; a change names the version it
    /// changes, so two people editing at once cannot overwrite each other.
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who made this version.
    pub updated_by: String,
    #[serde(flatten)]
    pub spec: AlertRuleSpec,
}

/// The body of `PUT /api/alerts/rules/{id}`: the new rule and the version
/// it replaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleChange {
    pub version: u32,
    pub rule: AlertRuleSpec,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`: people were told.
    Firing,
    /// It fired, and the condition has cleared.
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "firing" => Self::Firing,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// The process an alert is about, for rules on one process's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertProcess {
    pub pid: u32,
    pub start_time: DateTime<Utc>,
    pub name: String,
}

/// One alert: a rule's condition on one host (and process). `GET
/// /api/alerts/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    pub host_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<AlertProcess>,
    pub state: AlertState,
    /// When the condition began to hold.
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The number last seen (a count, an average, seconds offline).
    pub value: f64,
    /// One line for people: what, where, how much.
    pub summary: String,
    /// When a silence covers it, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_until: Option<DateTime<Utc>>,
    /// It fired while its rule, host and process were flapping: firing at
    /// least 4 times within an hour, counting this one (the server's
    /// `FLAP_FIRINGS` and `FLAP_WINDOW`). A flapping alert is raised,
    /// fired and resolved as any, but tells nobody: channels hear once
    /// that it flaps (a `firing` notification with this true), and once
    /// more, with this false, in the state it is in when it settles (fewer
    /// than 4 firings within the last hour). The newest alert loses the
    /// flag when it settles; older ones keep it, as history.
    #[serde(default)]
    pub flapping: bool,
}

/// A silence: no notification for the alerts it covers until `until`
/// (they are still raised and shown). The body of
/// `POST /api/alerts/silences/`; a maintenance window is a silence that
/// starts later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    /// Only this rule's alerts; none: every rule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Only this host's alerts (id or hostname); none: every host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// From when; none: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    /// Why (1 to 500 characters, not all blank).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 500, pattern = r"\S")
    )]
    pub reason: String,
}

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silence {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The host's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Silence {
    /// Whether it holds for `rule_id` on `host_id` at `at`.
    pub fn covers(&self, rule_id: &str, host_id: &str, at: DateTime<Utc>) -> bool {
        self.starts_at <= at
            && at < self.until
            && self.rule_id.as_deref().is_none_or(|r| r == rule_id)
            && self.host_id.as_deref().is_none_or(|h| h == host_id)
    }
}

/// What a notification says: one alert's transition, as a webhook
/// receives it (JSON body) and the other channels render it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotification {
    /// Unique per notification: a receiver can drop a repeat delivery.
    pub id: String,
    /// `firing` (also for repeats, with `repeat` true) or `resolved`.
    pub state: AlertState,
    #[serde(default)]
    pub repeat: bool,
    pub alert: Alert,
    /// The page at the alert's host and time.
    pub link: String,
}

/// The rules a preview asks about: `POST /api/alerts/preview/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertPreview {
    /// Per host in scope, what matches now.
    pub now: Vec<PreviewHost>,
    /// When the rule would have fired over the last `hours` of history.
    pub history: Vec<PreviewFiring>,
    /// The hours of history looked at.
    pub hours: u32,
    /// True when the history was looked at only in part (more hosts or
    /// changes than a preview reads): `history` is what that part said.
    pub partial: bool,
    /// Why history was not looked at, or only in part, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a rule matches on one host now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewHost {
    pub host_id: String,
    pub hostname: String,
    /// Matching processes (for process rules), at most 20 named.
    pub matching: Vec<AlertProcess>,
    /// How many match in all.
    pub count: u32,
    /// The number the rule compares (a count, a value).
    pub value: f64,
    /// Whether the condition holds now.
    pub holds: bool,
}

/// A time the rule would have fired in history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewFiring {
    pub host_id: String,
    pub fired_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}
