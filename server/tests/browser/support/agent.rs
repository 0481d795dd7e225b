//! The real agent code reporting this machine while a test runs.

use super::*;

/// The real agent code (collector and sender) reporting this machine every
/// second while a test runs, so the page has live data to refresh.
pub struct AgentLoop {
    task: tokio::task::JoinHandle<()>,
    first: tokio::sync::watch::Receiver<Option<Snapshot>>,
}

impl AgentLoop {
    pub async fn start(app: &TestApp) -> AgentLoop {
        let sender = procmon_agent::Sender::new(&app.address, app.unbound_key().await.into())
            .expect("a sender for the test server");
        let (tell, first) = tokio::sync::watch::channel(None);
        let task = tokio::spawn(async move {
            let mut collector = procmon_agent::Collector::new();
            loop {
                let (back, snapshot) = tokio::task::spawn_blocking(move || {
                    let snapshot = collector.snapshot(Duration::from_secs(2));
                    (collector, snapshot)
                })
                .await
                .expect("collector thread");
                collector = back;
                sender.send(&snapshot).await.expect("the agent's send");
                tell.send_if_modified(|first| {
                    first.is_none().then(|| *first = Some(snapshot)).is_some()
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        AgentLoop { task, first }
    }

    /// The first snapshot the server accepted.
    pub async fn first_snapshot(&self) -> Snapshot {
        let mut first = self.first.clone();
        let snapshot = tokio::time::timeout(PATIENCE, first.wait_for(Option::is_some))
            .await
            .expect("the agent delivered a snapshot in time")
            .expect("the agent loop stopped");
        snapshot.clone().unwrap()
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
