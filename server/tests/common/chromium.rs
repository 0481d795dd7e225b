//! Headless Chromium over WebDriver, for the browser tests and the page
//! benchmark alike: chromedriver on a free port, and a session with the
//! flags this machine's closed network needs.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

use crate::common::KillOnDrop;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    _process: KillOnDrop,
    pub port: u16,
}

/// Starts chromedriver and waits (up to `patience`) until it listens.
pub fn start_driver(patience: Duration) -> Driver {
    // A free port from the OS; chromedriver binds it a moment later.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        _process: KillOnDrop(process),
        port,
    };
    let deadline = Instant::now() + patience;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

/// A new headless Chromium with its profile in `profile`, a window of
/// `width` x `height` (a phone's screen emulated below 500 px), light or
/// dark as the page sees it.
pub async fn connect(
    driver: &Driver,
    profile: &Path,
    width: u32,
    height: u32,
    dark: bool,
) -> Client {
    let mut options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
            // prefers-color-scheme as the page sees it (0 = dark, 1 = light).
            format!("--blink-settings=preferredColorScheme={}", if dark { 0 } else { 1 }),
        ],
    });
    if width < 500 {
        // Desktop Chromium will not make a window this narrow: emulate the
        // phone's screen instead.
        options["mobileEmulation"] = json!({
            "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
        });
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}
