//! Two servers on one PostgreSQL database, as behind a balancer: a host's
//! budget and a user's failed sign-ins count once across both, not once
//! per server.

use std::time::Duration;

use crate::common::{
    browser_like_client, postgres, sample_snapshot, spawn_app_on, too_many, TestApp, TEST_PASSWORD,
    TEST_USER,
};

/// Two servers on one new database, with `configure` for both, or `None`
/// when there is no PostgreSQL test server.
async fn two_servers(configure: fn(&mut procmon_server::config::Settings)) -> Option<[TestApp; 2]> {
    let url = postgres::fresh_database().await?;
    let first = spawn_app_on(&url, configure).await;
    let second = spawn_app_on(&url, configure).await;
    Some([first, second])
}

/// `POST /api/processes/` of a snapshot of `host` to `app` with `key`.
async fn post(app: &TestApp, host: &str, key: &str) -> reqwest::Response {
    let body = serde_json::to_vec(&sample_snapshot(host, 1)).unwrap();
    app.post_raw(body, Some("application/json"), Some(key))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_sending_to_both_servers_gets_its_budget_once() {
    let Some(servers) = two_servers(|s| {
        s.ingest_burst = 3;
        s.ingest_per_second = 1;
    })
    .await
    else {
        return;
    };
    // One key, as the host's agent has, whichever server it reaches.
    let key = servers[0].key_for("busy").await;
    for i in 0..3 {
        let response = post(&servers[i % 2], "busy", &key).await;
        assert_eq!(response.status(), 201, "snapshot {i}");
    }
    // Each server saw fewer than three; together they saw three.
    let mut waits = Vec::new();
    for app in &servers {
        let response = post(app, "busy", &key).await;
        let (retry_after, _) = too_many(response, "rate_limited", 1..=2).await;
        waits.push(retry_after);
    }
    // Another host is not held back.
    let calm = servers[1].key_for("calm").await;
    assert_eq!(post(&servers[1], "calm", &calm).await.status(), 201);
    // Once the unit is back, either server takes it, and only one.
    tokio::time::sleep(Duration::from_secs(*waits.iter().max().unwrap())).await;
    assert_eq!(post(&servers[1], "busy", &key).await.status(), 201);
    assert_eq!(post(&servers[0], "busy", &key).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_at_both_servers_lock_the_account_after_five() {
    let Some(servers) = two_servers(|_| {}).await else {
        return;
    };
    let client = browser_like_client();
    for i in 0..procmon_server::startup::SIGN_IN_FAILURES {
        let response = servers[i % 2]
            .sign_in_with(&client, TEST_USER, "guess")
            .await;
        assert_eq!(response.status(), 401, "guess {i}");
    }
    // Five failures in all, though neither server saw five: both refuse,
    // the right password too.
    for app in &servers {
        let response = app.sign_in_with(&client, TEST_USER, TEST_PASSWORD).await;
        too_many(response, "too_many_sign_ins", 1..=60).await;
    }
}

/// `procmon_agents_connected` comes from the database: a host sending only
/// to the first server counts as connected on the second too, so a
/// dashboard summing or picking any server sees the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_count_a_host_sending_to_one_as_connected() {
    const TOKEN: &str = "metrics-token-for-two-servers-0123";
    let Some(servers) = two_servers(|s| {
        s.metrics_token = Some(secrecy::SecretString::from(TOKEN));
    })
    .await
    else {
        return;
    };
    let connected = |app: &TestApp| {
        let request = app
            .anonymous()
            .get(format!("{}/metrics", app.address))
            .bearer_auth(TOKEN)
            .send();
        async move {
            let text = request.await.unwrap().text().await.unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("procmon_agents_connected "))
                .unwrap_or_else(|| panic!("no procmon_agents_connected in\n{text}"))
                .parse::<f64>()
                .unwrap()
        }
    };
    assert_eq!(connected(&servers[1]).await, 0.0);
    let key = servers[0].key_for("only-to-a").await;
    assert_eq!(post(&servers[0], "only-to-a", &key).await.status(), 201);
    assert_eq!(connected(&servers[0]).await, 1.0);
    assert_eq!(connected(&servers[1]).await, 1.0);
}
