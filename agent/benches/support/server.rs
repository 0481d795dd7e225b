//! A real procmon server for the agent's benchmarks: in this process, on a
//! runtime and thread of its own (so the agent's CPU time is not mixed
//! with it), with a temporary database, on port 0, and a key for the agent.

use secrecy::SecretString;
use tempfile::TempDir;

/// The running server; it stops when dropped.
pub struct LocalServer {
    /// Where agents send, e.g. `http://127.0.0.1:41234/`.
    pub url: String,
    /// A key made for the bench's agent.
    pub key: SecretString,
    _data: TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// Starts the server and makes a key labelled `label`.
pub fn start(label: &str) -> LocalServer {
    let data = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (url, key) = runtime.block_on(async {
        let mut settings = procmon_server::config::Settings::with_data_dir(data.path());
        settings.listen = "127.0.0.1:0".parse().unwrap();
        settings.embedded_agent = false;
        let application = procmon_server::startup::Application::build(settings)
            .await
            .expect("the server builds");
        let key = application
            .state()
            .agent_keys
            .create(None, label, chrono::Utc::now())
            .await
            .expect("a key")
            .key;
        let url = application.local_url();
        tokio::spawn(application.run_until(std::future::pending()));
        (url, key)
    });
    LocalServer {
        url,
        key,
        _data: data,
        _runtime: runtime,
    }
}
