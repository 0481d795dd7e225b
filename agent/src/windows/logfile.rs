//! Logging to the console and to a file beside the .exe, so a double-clicked
//! agent or the service (which has no console) leaves a record to read.

use std::path::PathBuf;

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Log files are named `procmon-agent.<date>.log`.
pub const FILE_PREFIX: &str = "procmon-agent";
/// A new file each day, and only this many kept, so a service running for
/// months cannot fill the disk.
const FILES_KEPT: usize = 7;

/// The folder of the running .exe, where the log and config files live.
pub fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(PathBuf::from)
}

/// Sends log lines to stderr and to the day's file beside the .exe. If
/// that folder is not writable, says so on stderr and logs there only.
pub fn init() {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let console = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let file = exe_dir()
        .ok_or_else(|| "the .exe's folder is unknown".to_owned())
        .and_then(|dir| {
            RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(FILE_PREFIX)
                .filename_suffix("log")
                .max_log_files(FILES_KEPT)
                .build(&dir)
                .map_err(|e| format!("cannot write a log file in {}: {e}", dir.display()))
        });
    match file {
        Ok(appender) => {
            // Written at once, not through a background thread: closing the
            // console window ends the process without warning.
            let file_layer = fmt::layer()
                .with_ansi(false)
                .with_writer(appender)
                .with_filter(filter());
            tracing_subscriber::registry()
                .with(console)
                .with(file_layer)
                .init();
        }
        Err(problem) => {
            tracing_subscriber::registry().with(console).init();
            tracing::warn!("{problem}; logging to the console only");
        }
    }
}
