//! E-mail through an SMTP server, with lettre: TLS from the start,
//! STARTTLS (required, never skipped), or plain for a local relay. The
//! whole exchange is bounded by [`super::TIMEOUT`]: a server that takes
//! the connection and never answers costs 10 s, then the error says so.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use procmon_model::alerts::AlertNotification;
use procmon_model::channels::SmtpSecurity;
use secrecy::{ExposeSecret, SecretString};

use super::TIMEOUT;

/// Where and how to hand mail over.
pub struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<&'a str>,
    pub password: Option<&'a SecretString>,
}

/// `text` as a mailbox, or why not (for the checks and the sender).
pub fn mailbox(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("{text:?} is not an e-mail address: {e}"))
}

/// The message for `notification`; its Message-ID is the notification's
/// id, so a mail system (or a person) can tell a repeat delivery.
pub fn message(from: &str, to: &[String], n: &AlertNotification) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(mailbox(from)?)
        .subject(super::text::title(n))
        .message_id(Some(format!("<{}@procmon>", n.id)));
    for recipient in to {
        builder = builder.to(mailbox(recipient)?);
    }
    builder
        .body(super::text::body(n))
        .map_err(|e| format!("cannot make the e-mail: {e}"))
}

pub async fn send(
    server: &Server<'_>,
    from: &str,
    to: &[String],
    notification: &AlertNotification,
) -> Result<(), String> {
    let message = message(from, to, notification)?;
    let target = format!("the SMTP server {}:{}", server.host, server.port);
    let tls = || {
        TlsParameters::new(server.host.to_owned())
            .map_err(|e| format!("cannot set up TLS for {target}: {e}"))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host)
        .port(server.port)
        .timeout(Some(TIMEOUT))
        .tls(match server.security {
            SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            SmtpSecurity::Starttls => Tls::Required(tls()?),
            SmtpSecurity::None => Tls::None,
        });
    if let Some(user) = server.username.filter(|u| !u.is_empty()) {
        let password = server
            .password
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.to_owned(), password));
    }
    let transport = builder.build();
    match tokio::time::timeout(TIMEOUT, transport.send(message)).await {
        Err(_) => Err(format!(
            "{target} did not answer within {} s",
            TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(describe(&e, &target)),
        Ok(Ok(_)) => Ok(()),
    }
}

/// lettre's error in words that name the server and the cause.
fn describe(error: &lettre::transport::smtp::Error, target: &str) -> String {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("connection refused by {target}")
                }
                std::io::ErrorKind::TimedOut => {
                    return format!("{target} did not answer within {} s", TIMEOUT.as_secs())
                }
                _ => {}
            }
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return format!("{target} did not answer within {} s", TIMEOUT.as_secs());
    }
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !words.contains(&said) {
            words = format!("{words}: {said}");
        }
        source = cause.source();
    }
    format!("{target} refused the e-mail: {words}")
}
