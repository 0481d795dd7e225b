//! `GET /api/health`: 200 while the database answers, 503 when it does not;
//! and a database file that is not one stops the server at start, clearly.

use procmon_model::HealthStatus;
use procmon_server::config::Settings;
use procmon_server::startup::Application;

use crate::common::spawn_app;

#[tokio::test]
async fn health_is_200_while_the_database_answers_and_503_once_it_is_gone() {
    let app = spawn_app().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 200);
    let health: HealthStatus = response.json().await.unwrap();
    assert_eq!(health.status, "ok");
    assert!(health.database);
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));

    app.state.store.close().await;
    let response = app.get("/api/health").await;
    assert_eq!(response.status(), 503);
    let health: HealthStatus = response.json().await.unwrap();
    assert_eq!(health.status, "unavailable");
    assert!(!health.database);

    // Other reads fail with a JSON 503 that says why, not a hang, a
    // dropped connection or a generic 500.
    let response = app.get_hosts().await;
    assert_eq!(response.status(), 503);
    let error: procmon_model::ErrorBody = response.json().await.unwrap();
    assert_eq!(error.error, "store_unavailable");
    assert!(error.message.contains("closed"), "{}", error.message);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, just some text that is long enough",
    )
    .unwrap();
    let mut settings = Settings::with_data_dir(dir.path());
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.embedded_agent = false;
    let error = match Application::build(settings).await {
        Ok(_) => panic!("a broken database file must stop the server"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("not a database"), "{error}");
    // What was there is left alone.
    assert!(std::fs::read(&path)
        .unwrap()
        .starts_with(b"this is not an SQLite"));
}
