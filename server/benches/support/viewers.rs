//! Viewers for the scale bench: a person signed in on one server, watching
//! some hosts' live streams (`GET /api/live/`), and timing each `change`
//! event from the moment the fleet began sending its snapshot to another
//! server until the event arrived here: the cross-server live event lag
//! (the storing server's commit and NOTIFY, this server's LISTEN, its read
//! of the snapshot from the database, and the push).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use std::io::Write;
use tokio::time::Instant;
use uuid::Uuid;

const NAME: &str = "bench-viewer";
const PASSWORD: &str = "bench-viewer-password-0123";

/// Snapshots being sent: id, when the send began, and to which server (by
/// index). Written by the fleet, read by the viewers.
#[derive(Clone, Default)]
pub struct Sent(Arc<Mutex<HashMap<Uuid, (Instant, usize)>>>);

impl Sent {
    pub fn sending(&self, id: Uuid, server: usize) {
        self.0.lock().unwrap().insert(id, (Instant::now(), server));
    }

    fn take(&self, id: &Uuid) -> Option<(Instant, usize)> {
        self.0.lock().unwrap().remove(id)
    }
}

/// Lags measured so far.
#[derive(Clone, Default)]
pub struct Lags(Arc<Mutex<Vec<Duration>>>);

impl Lags {
    /// The lags measured since the last call.
    pub fn drain(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Adds the viewer account to the database at `database`, with the server
/// binary's own `users add`.
pub fn add_account(database: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_procmon-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--database",
            database,
            "users",
            "add",
            NAME,
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .env_remove("PROCMON_CONFIG")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run procmon-server users add")?;
    writeln!(child.stdin.take().context("its stdin")?, "{PASSWORD}")?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("users add failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Signs in on the server at `url` and watches each of `hosts`; events of
/// snapshots sent to the server `from` are timed into the lags returned.
/// The streams end when the runtime does.
pub async fn watch(url: &str, hosts: &[String], sent: Sent, from: usize) -> anyhow::Result<Lags> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let signed_in = client
        .post(format!("{url}api/session/"))
        .header("x-procmon-csrf", "1")
        .json(&serde_json::json!({ "name": NAME, "password": PASSWORD }))
        .send()
        .await?;
    if !signed_in.status().is_success() {
        bail!(
            "sign-in refused: {}",
            signed_in.text().await.unwrap_or_default()
        );
    }
    let lags = Lags::default();
    for host in hosts {
        let mut stream = client
            .get(format!("{url}api/live/"))
            .query(&[("host", host)])
            .send()
            .await?;
        if !stream.status().is_success() {
            bail!("the live stream of {host}: {}", stream.status());
        }
        let (sent, lags) = (sent.clone(), lags.clone());
        tokio::spawn(async move {
            let mut pending = String::new();
            while let Ok(Some(chunk)) = stream.chunk().await {
                let arrived = Instant::now();
                pending.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    let Some(id) = line.trim().strip_prefix("id:") else {
                        continue;
                    };
                    let Ok(id) = id.trim().parse::<Uuid>() else {
                        continue;
                    };
                    if let Some((began, server)) = sent.take(&id) {
                        if server == from {
                            lags.0.lock().unwrap().push(arrived - began);
                        }
                    }
                }
            }
        });
    }
    Ok(lags)
}
