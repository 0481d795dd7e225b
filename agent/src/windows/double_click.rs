//! What `procmon-agent.exe` does when started without arguments, as a
//! double-click starts it: with a config beside it, it just runs; with none,
//! it writes a commented one there, says what to edit, and keeps running
//! (waiting for the key, then sending) until its window is closed.

use crate::config::{self, Overrides};
use crate::first_run;

use super::{console, logfile};

/// Runs the agent until Ctrl+C or the console window closes.
pub fn run() -> anyhow::Result<()> {
    let overrides = Overrides::default();
    let env_has_settings = std::env::vars().any(|(name, _)| name.starts_with("PROCMON_AGENT_"));
    if config::default_file().is_none() && !env_has_settings {
        match logfile::exe_dir().map(|dir| first_run::write_default_config(&dir)) {
            Some(Ok((path, true))) => {
                tracing::info!(file = %path.display(), "wrote a default config file");
                println!("\n{}\n", first_run::instructions(&path));
            }
            Some(Ok((_, false))) => {}
            Some(Err(error)) => tracing::error!(
                "cannot write {} beside the .exe ({error}); put the .exe in a folder you may write to, \
                 or create the file there yourself",
                config::FILE_NAME
            ),
            None => tracing::error!("cannot tell which folder the .exe is in"),
        }
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(first_run::run_when_configured(&overrides, closed));
    if let Err(error) = &result {
        tracing::error!("{error:#}");
        console::pause_if_own_console();
    }
    result
}

/// Completes on Ctrl+C, Ctrl+Break or the console window being closed.
async fn closed() {
    use tokio::signal::windows;
    let (Ok(mut c), Ok(mut brk), Ok(mut close)) = (
        windows::ctrl_c(),
        windows::ctrl_break(),
        windows::ctrl_close(),
    ) else {
        // Without those signals, run until the process is ended.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = c.recv() => {}
        _ = brk.recv() => {}
        _ = close.recv() => {}
    }
}
