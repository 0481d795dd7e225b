//! `procmon-agent`: see `procmon-agent --help`.

use std::process::ExitCode;

use clap::Parser;
use procmon_agent::cli::Cli;
use procmon_agent::config::Settings;
use procmon_agent::enroll::Credentials;
use procmon_agent::{Collector, Deliver, Delivery, HttpOutbox};
#[cfg(not(windows))]
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr so that `--once --print` leaves stdout pure JSON;
    // on Windows also to a file beside the .exe.
    #[cfg(windows)]
    procmon_agent::windows::logfile::init();
    #[cfg(not(windows))]
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();

    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("procmon-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(cycles) = cli.bench_collect {
        return procmon_agent::bench::run(cycles);
    }
    #[cfg(windows)]
    {
        use procmon_agent::cli::Command;
        if let Some(Command::Service { action }) = cli.command {
            return procmon_agent::windows::service::execute(action);
        }
        // Started with no arguments, as a double-click starts it.
        if std::env::args_os().len() == 1 {
            return procmon_agent::windows::double_click::run();
        }
    }
    let settings = Settings::load(&cli.overrides())?;
    if cli.print {
        let snapshot = Collector::new()
            .with_labels(settings.labels.clone())
            .snapshot(settings.interval);
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
        return Ok(());
    }
    if let Some(file) = &settings.file {
        tracing::info!(file = %file.display(), "read settings");
    }
    let config = settings.into_agent_config()?;
    let runtime = tokio::runtime::Runtime::new()?;
    if cli.once {
        let credentials = Credentials::new(
            &config.server_urls,
            config.key.clone(),
            config.trust.clone(),
        )?;
        let mut outbox = HttpOutbox::new(credentials, config.return_after);
        let snapshot = Collector::new()
            .with_labels(config.labels.clone())
            .snapshot(config.interval);
        let answer = runtime.block_on(outbox.deliver(Delivery::Full(&snapshot)))?;
        tracing::info!(
            snapshot = %answer.snapshot_id,
            processes = snapshot.processes.len(),
            stored = answer.stored,
            "sent one snapshot"
        );
        return Ok(());
    }
    runtime.block_on(async { procmon_agent::run(config, stop_signal()).await })
}

/// Ctrl-C, or SIGTERM (how service managers, `kill` and `docker stop`
/// ask). A signal that cannot be watched is waited for never: the agent
/// then runs until killed.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("stopping: Ctrl-C"),
        () = terminate => tracing::info!("stopping: SIGTERM"),
    }
}
