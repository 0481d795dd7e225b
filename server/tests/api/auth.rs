//! Reading needs the viewer key only when the server listens beyond
//! loopback; sending always needs the agent key.

use procmon_model::ErrorBody;

use crate::common::{sample_snapshot, spawn_app, spawn_app_with, TestApp};

async fn get_with_key(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

const READ_PATHS: [&str; 2] = ["/api/hosts/", "/api/processes/?host=host-a"];

#[tokio::test]
async fn on_loopback_reading_needs_no_key() {
    let app = spawn_app().await;
    app.post_snapshot(&sample_snapshot("host-a", 2)).await;
    for path in READ_PATHS {
        assert_eq!(get_with_key(&app, path, None).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn beyond_loopback_reading_needs_the_viewer_key() {
    let app = spawn_app_with(|s| s.listen = "0.0.0.0:0".parse().unwrap()).await;
    assert!(app.state.viewer_key_required);
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-a", 2))
            .await
            .status(),
        201
    );

    let viewer = app.viewer_key.clone();
    let agent = app.agent_key.clone();
    for path in READ_PATHS {
        let response = get_with_key(&app, path, None).await;
        assert_eq!(response.status(), 401, "{path}");
        let error: ErrorBody = response.json().await.unwrap();
        assert!(error.message.contains("viewer key"), "{}", error.message);

        let response = get_with_key(&app, path, Some(&agent)).await;
        assert_eq!(
            response.status(),
            401,
            "the agent key must not read: {path}"
        );
        let error: ErrorBody = response.json().await.unwrap();
        assert!(
            error.message.contains("viewer key was refused"),
            "{}",
            error.message
        );

        assert_eq!(
            get_with_key(&app, path, Some(&viewer)).await.status(),
            200,
            "{path}"
        );
    }
    // Health and the API description stay open for monitors and tools.
    assert_eq!(get_with_key(&app, "/api/health", None).await.status(), 200);
    assert_eq!(
        get_with_key(&app, "/api/openapi.json", None).await.status(),
        200
    );
    // The page itself is open; it asks for the key when the API says 401.
    assert_eq!(get_with_key(&app, "/", None).await.status(), 200);
}

#[tokio::test]
async fn configured_keys_replace_the_generated_ones() {
    let app = spawn_app_with(|s| {
        s.viewer_key = Some("viewer-key-from-config".to_owned().into());
        s.listen = "0.0.0.0:0".parse().unwrap();
    })
    .await;
    assert!(!app.data_dir.path().join("viewer.key").exists());
    assert_eq!(
        app.post_snapshot(&sample_snapshot("host-a", 1))
            .await
            .status(),
        201
    );
    let response = get_with_key(&app, "/api/hosts/", Some("viewer-key-from-config")).await;
    assert_eq!(response.status(), 200);
}
