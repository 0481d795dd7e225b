//! ntfy: the text POSTed to the topic's URL, with the title, priority and
//! tags in headers, and the page's link as the click action.

use procmon_model::alerts::{AlertNotification, AlertState, Severity};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};

/// ntfy's priority (1 to 5) and tags (emoji short codes) for `n`.
pub fn priority_and_tags(n: &AlertNotification) -> (&'static str, &'static str) {
    match (n.state, n.alert.severity) {
        (AlertState::Resolved, _) => ("3", "white_check_mark"),
        (_, Severity::Critical) => ("5", "rotating_light"),
        (_, Severity::Warning) => ("4", "warning"),
        (_, Severity::Info) => ("3", "information_source"),
    }
}

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&SecretString>,
    notification: &AlertNotification,
) -> Result<(), String> {
    let (priority, tags) = priority_and_tags(notification);
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // ntfy reads header values as UTF-8; a control character (none should
    // be in a title) would make the value invalid, so it goes.
    let title: String = super::text::title(notification)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if let Ok(value) = HeaderValue::from_bytes(title.as_bytes()) {
        headers.insert("Title", value);
    }
    headers.insert("Priority", HeaderValue::from_static(priority));
    headers.insert("Tags", HeaderValue::from_static(tags));
    if let Ok(link) = HeaderValue::from_str(&notification.link) {
        if !notification.link.is_empty() {
            headers.insert("Click", link);
        }
    }
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| "the ntfy token has characters a header cannot carry".to_owned())?;
        let mut value = value;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    super::http::post(client, url, headers, super::text::body(notification)).await
}
