//! The data directory: created private, its database private too, and a
//! busy port refused with a hint.

use procmon_server::config::Settings;
use procmon_server::startup::Application;

fn settings_in(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::with_data_dir(dir);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    settings
}

#[tokio::test]
async fn a_new_data_dir_is_private_and_enrollment_is_opened_once() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("procmon-data");
    let first = Application::build(settings_in(&dir)).await.unwrap();
    assert!(dir.join("procmon.db").is_file());
    assert!(
        first.new_enroll_secret().is_some(),
        "the first start opens enrollment"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("procmon.db")), 0o600);
        assert!(
            !dir.join("agent.key").exists(),
            "agent keys are kept as hashes only"
        );
        assert!(!dir.join("viewer.key").exists(), "people sign in instead");
    }
    first.state().store.close().await;
    drop(first);

    // A restart keeps the secret in force and shows none.
    let second = Application::build(settings_in(&dir)).await.unwrap();
    assert!(second.new_enroll_secret().is_none());
    assert!(second.state().agent_keys.enrollment_open().await.unwrap());

    // Enrollment closed by an admin stays closed across restarts.
    second
        .state()
        .agent_keys
        .store()
        .revoke_enroll_secrets(chrono::Utc::now())
        .await
        .unwrap();
    second.state().store.close().await;
    drop(second);
    let third = Application::build(settings_in(&dir)).await.unwrap();
    assert!(third.new_enroll_secret().is_none());
    assert!(!third.state().agent_keys.enrollment_open().await.unwrap());
}

#[tokio::test]
async fn a_busy_port_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let first = Application::build(settings_in(dir.path())).await.unwrap();
    let mut settings = settings_in(dir.path());
    settings.listen = first.local_addr();
    let error = match Application::build(settings).await {
        Ok(_) => panic!("two servers on one port"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains(&first.local_addr().to_string()), "{error}");
    assert!(error.contains("--listen"), "{error}");
}
