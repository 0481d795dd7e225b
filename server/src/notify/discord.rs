//! A Discord webhook: `{"content": …}`, which Discord cuts at 2,000
//! characters (and refuses beyond), so it is cut here first.

use procmon_model::alerts::AlertNotification;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

const MAX_CONTENT: usize = 2000;

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    notification: &AlertNotification,
) -> Result<(), String> {
    let title = super::text::title(notification);
    let body = super::text::body(notification);
    let content: String = format!("**{title}**\n{body}")
        .chars()
        .take(MAX_CONTENT)
        .collect();
    // No mentions from an alert's text (a process named "@everyone").
    let payload = serde_json::json!({
        "content": content,
        "allowed_mentions": { "parse": [] },
    });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    super::http::post(client, url, headers, payload.to_string()).await
}
