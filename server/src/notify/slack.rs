//! A Slack incoming webhook: `{"text": …}`.

use procmon_model::alerts::AlertNotification;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    notification: &AlertNotification,
) -> Result<(), String> {
    let title = super::text::title(notification);
    let body = super::text::body(notification);
    let payload = serde_json::json!({ "text": format!("*{title}*\n{body}") });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    super::http::post(client, url, headers, payload.to_string()).await
}
