//! A real procmon server started in the test's own process, with its
//! database in a directory of the test's, for the agent tests that send to
//! one.

use std::path::Path;

use procmon_server::config::Settings;
use procmon_server::startup::{AppState, Application};

/// A server with its database in `dir`, on `port` (0: any); stops when
/// told to ([`Server::stop`]) or when the stop sender is dropped.
pub struct Server {
    pub state: AppState,
    pub port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts a server that reads without sign-in, with no agent of its own
/// and a rate limit no test reaches.
pub async fn serve(dir: &Path, port: u16) -> Server {
    let mut settings = Settings::with_data_dir(dir);
    settings.listen = format!("127.0.0.1:{port}").parse().unwrap();
    settings.embedded_agent = false;
    settings.no_login = true;
    settings.ingest_burst = 100_000;
    let application = Application::build(settings)
        .await
        .expect("the server builds");
    let (state, port) = (application.state().clone(), application.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    Server {
        state,
        port,
        stop,
        task,
    }
}

impl Server {
    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
