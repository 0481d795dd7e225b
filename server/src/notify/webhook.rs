//! The generic webhook: the notification's JSON as it was queued, signed
//! with the channel's secret so the receiver can tell it came from here,
//! and when (a receiver should refuse an old timestamp: a replay).

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-procmon-signature";
pub const TIMESTAMP_HEADER: &str = "x-procmon-timestamp";

/// `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` keyed with
/// `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&SecretString>,
    body: &str,
) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let timestamp = chrono::Utc::now().timestamp();
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from(timestamp));
    if let Some(secret) = secret {
        let signed = signature(secret.expose_secret().as_bytes(), timestamp, body);
        let value = HeaderValue::from_str(&signed).expect("hex is a header value");
        headers.insert(SIGNATURE_HEADER, value);
    }
    super::http::post(client, url, headers, body.to_owned()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for
        // nothing?" — here as the timestamp-dot-body the header signs.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(signature(b"Jefe", 12, "{}"), signature(b"Jefe", 12, "{}"),);
        assert_ne!(signature(b"Jefe", 12, "{}"), signature(b"Jefe", 13, "{}"));
        assert!(signature(b"k", 1, "b").starts_with("sha256="));
        assert_eq!(signature(b"k", 1, "b").len(), "sha256=".len() + 64);
    }
}
