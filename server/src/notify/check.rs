//! What a channel must be before it is stored: each failure says what is
//! wrong, in words for the person who typed it.

use procmon_model::channels::{ChannelKind, ChannelSpec};
use secrecy::ExposeSecret;

/// Longest name, in characters.
pub const MAX_NAME: usize = 200;
/// Most recipients of an e-mail channel.
pub const MAX_RECIPIENTS: usize = 50;
/// Longest secret, in bytes.
pub const MAX_SECRET: usize = 4096;
/// Longest URL, in bytes.
const MAX_URL: usize = 2048;

/// Why `spec` cannot be a channel, if it cannot.
pub fn spec(spec: &ChannelSpec) -> Result<(), String> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err("the channel needs a name".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} characters"));
    }
    if let Some(secret) = &spec.secret {
        if secret.expose_secret().len() > MAX_SECRET {
            return Err(format!("the secret is longer than {MAX_SECRET} bytes"));
        }
    }
    kind(&spec.kind)
}

/// Why `kind` cannot be sent to, if it cannot.
pub fn kind(kind: &ChannelKind) -> Result<(), String> {
    match kind {
        ChannelKind::Webhook { url }
        | ChannelKind::Slack { url }
        | ChannelKind::Discord { url }
        | ChannelKind::Ntfy { url } => {
            if url.len() > MAX_URL {
                return Err(format!("the URL is longer than {MAX_URL} bytes"));
            }
            super::http::parse(url).map(drop)
        }
        ChannelKind::Email {
            smtp_host,
            smtp_port,
            from,
            to,
            ..
        } => {
            let host = smtp_host.trim();
            if host.is_empty() {
                return Err("an e-mail channel needs smtp_host, its SMTP server's name".into());
            }
            if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
                return Err(format!(
                    "smtp_host {smtp_host:?} is not a host name (give the port in smtp_port)"
                ));
            }
            if *smtp_port == 0 {
                return Err("smtp_port must be 1 to 65535 (465 for tls, 587 for starttls)".into());
            }
            super::email::mailbox(from).map_err(|e| format!("from: {e}"))?;
            if to.is_empty() {
                return Err("an e-mail channel needs at least one recipient in `to`".into());
            }
            if to.len() > MAX_RECIPIENTS {
                return Err(format!("`to` has more than {MAX_RECIPIENTS} recipients"));
            }
            for recipient in to {
                super::email::mailbox(recipient).map_err(|e| format!("to: {e}"))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> Result<(), String> {
        kind(&ChannelKind::Webhook { url: url.into() })
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        assert!(webhook("https://example.com/hook").is_ok());
        assert!(webhook("http://127.0.0.1:9/x").is_ok());
        assert!(webhook("ftp://example.com/")
            .unwrap_err()
            .contains("not ftp://"));
        assert!(webhook("example.com/hook")
            .unwrap_err()
            .contains("not valid"));
        assert!(webhook("file:///etc/passwd")
            .unwrap_err()
            .contains("not file://"));
    }

    #[test]
    fn an_email_channel_needs_recipients_and_addresses() {
        let email = |from: &str, to: &[&str]| {
            kind(&ChannelKind::Email {
                smtp_host: "mail.example.com".into(),
                smtp_port: 587,
                security: procmon_model::channels::SmtpSecurity::Starttls,
                username: None,
                from: from.into(),
                to: to.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert!(email("procmon <p@example.com>", &["ops@example.com"]).is_ok());
        assert!(email("p@example.com", &[])
            .unwrap_err()
            .contains("at least one recipient"));
        assert!(email("not an address", &["ops@example.com"])
            .unwrap_err()
            .starts_with("from:"));
        assert!(email("p@example.com", &["nope"])
            .unwrap_err()
            .starts_with("to:"));
    }
}
