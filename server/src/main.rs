//! `procmon-server`: reads the settings, and either starts the server (and
//! the agent for this machine inside it) and says where to find it, or
//! runs one of the account commands (`users ...`, `signin-link`).

use std::process::ExitCode;

use procmon_server::config::{Cli, Settings};
use procmon_server::startup::Application;
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr, so stdout holds only the lines below for people
    // (and scripts) that look for the URL. The embedded agent's line per
    // send would scroll the server's own messages away every 2 s, so only
    // its warnings show unless RUST_LOG asks for more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,procmon_agent=warn")),
        )
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
    let mut cli = Cli::parse_args();
    let command = cli.command.take();
    let settings = Settings::from_cli(cli)?;
    if let Some(command) = command {
        return procmon_server::users_cli::run(command, &settings).await;
    }
    let embedded_agent = settings.embedded_agent;
    let no_login = settings.no_login;
    let database = settings.database.clone();
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
    println!("  database: {database}");
    if let Some(certificate) = certificate {
        println!("  HTTPS certificate: {}", certificate.display());
    }
    if let Some(link) = application.first_signin_link() {
        // Shown this once: the link is stored only as a hash.
        println!("  first start: sign in as admin with this one-time link (valid 24 h):");
        println!("    {}", link.expose_secret());
        println!("  then set a password on the page, or here: procmon-server users passwd admin");
    } else if no_login {
        println!("  no_login: anyone on this machine reads without signing in");
    } else {
        println!("  sign in on the page; a lost password: procmon-server signin-link NAME");
    }
    if let Some(secret) = application.new_enroll_secret() {
        println!("  agents enroll with this secret (shown once; `procmon-server enroll-secret rotate` makes a new one):");
        println!("    {}", secret.expose_secret());
    }
    if embedded_agent {
        println!("  this machine's agent runs inside the server (--no-agent turns it off)");
    }
    println!("  Ctrl-C stops it");
    application.run_until_stopped().await
}
