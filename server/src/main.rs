//! `procmon-server`: reads the settings, starts the server (and the agent
//! for this machine inside it), and says where to find it.

use std::process::ExitCode;

use procmon_server::config::Settings;
use procmon_server::startup::Application;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr, so stdout holds only the lines below for people
    // (and scripts) that look for the URL. The embedded agent's line per
    // send would scroll the server's own messages away every 2 s, so only
    // its warnings show unless RUST_LOG asks for more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new("info,tower_http=warn,procmon_agent=warn")
        }))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procmon-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let embedded_agent = settings.embedded_agent;
    let database = settings.database_path.clone();
    let certificate = settings.tls_cert.clone();
    let application = Application::build(settings).await?;

    println!("procmon is running at {}", application.local_url());
    let others = procmon_server::addresses::for_other_machines(
        application.local_addr(),
        application.scheme(),
    );
    if !others.is_empty() {
        println!("  from other machines: {}", others.join(" or "));
    }
    println!("  database: {}", database.display());
    if let Some(certificate) = certificate {
        println!("  HTTPS certificate: {}", certificate.display());
    }
    for file in &application.state().keys.files {
        println!("  key file: {}", file.display());
    }
    if application.state().viewer_key_required {
        println!("  listening beyond this machine: readers need the viewer key");
    }
    if embedded_agent {
        println!("  this machine's agent runs inside the server (--no-agent turns it off)");
    }
    println!("  Ctrl-C stops it");
    application.run_until_stopped().await
}
