//! The README's several servers as a new user would set them up: two
//! servers on one PostgreSQL database behind Debian's nginx with the
//! README's configuration, run for real by `scripts/try-nginx` (which says
//! what it checks). Here on a fresh database of the test server and free
//! ports.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn two_servers_on_postgres_behind_nginx_work_as_the_readme_says() {
    if !common::require("nginx") || !common::require("curl") {
        return;
    }
    let Some(database) = common::postgres::fresh_database().await else {
        return;
    };
    let ports = format!("{} {} {}", free_port(), free_port(), free_port());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/try-nginx");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(script)
            .env("PROCMON_TEST_POSTGRES_URL", &database)
            .env("PROCMON_TRY_PORTS", &ports)
            .env("PROCMON_SERVER_BIN", env!("CARGO_BIN_EXE_procmon-server"))
            .output()
            .expect("run scripts/try-nginx")
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "scripts/try-nginx failed:\n{said}");
    assert!(
        said.contains("ok: the second server shows the host the first stored"),
        "{said}"
    );
}
