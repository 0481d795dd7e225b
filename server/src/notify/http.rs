//! One POST to a receiver, with the errors said plainly: who refused,
//! who did not answer in time, what they answered.

use std::error::Error as _;

use reqwest::header::HeaderMap;

use super::{ANSWER_LIMIT, TIMEOUT};

/// The receiver of `url` as errors name it: `host:port`, never the path
/// (which is a credential for Slack and Discord).
pub fn target(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "the receiver".to_owned(),
    }
}

/// `url` parsed, or why it cannot be sent to.
pub fn parse(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("the URL is not valid: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "the URL must start with http:// or https://, not {other}://"
            ))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(parsed)
}

/// POSTs `body` to `url` with `headers`; a 2xx answer is success.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: impl Into<reqwest::Body>,
) -> Result<(), String> {
    let url = parse(url)?;
    let target = target(&url);
    let response = client
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e, &target))?;
    let status = response.status();
    if status.is_success() {
        // Read (a bounded part of) the answer, so the connection can be
        // reused, but its words do not matter.
        let _ = read_bounded(response).await;
        return Ok(());
    }
    let answer = read_bounded(response).await;
    let answer: String = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    let answer: String = answer.chars().take(300).collect();
    Err(if answer.is_empty() {
        format!("{target} answered {status}")
    } else {
        format!("{target} answered {status}: {answer}")
    })
}

/// At most [`ANSWER_LIMIT`] bytes of the answer, as text.
async fn read_bounded(mut response: reqwest::Response) -> String {
    let mut read = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = ANSWER_LIMIT - read.len();
        read.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if read.len() >= ANSWER_LIMIT {
            break;
        }
    }
    String::from_utf8_lossy(&read).into_owned()
}

/// A failed request in words, e.g. "connection refused by 127.0.0.1:9".
fn describe(error: &reqwest::Error, target: &str) -> String {
    if error.is_timeout() {
        return format!("{target} did not answer within {} s", TIMEOUT.as_secs());
    }
    let mut innermost = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return format!("connection refused by {target}"),
                ErrorKind::ConnectionReset => return format!("connection reset by {target}"),
                ErrorKind::TimedOut => {
                    return format!("{target} did not answer within {} s", TIMEOUT.as_secs())
                }
                _ => {}
            }
        }
        innermost = cause.to_string();
        source = cause.source();
    }
    if error.is_connect() {
        format!("cannot connect to {target}: {innermost}")
    } else {
        format!("sending to {target} failed: {innermost}")
    }
}
