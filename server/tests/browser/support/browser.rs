//! The browser: a fresh headless Chromium for each test, closed afterwards
//! even when the test fails, and screenshots for a person to look at.

use super::*;

pub fn browser_available() -> bool {
    require("chromedriver") && require("chromium")
}

/// Runs `test` with a fresh headless Chromium of the given window size, and
/// closes the browser afterwards even when the test fails.
pub async fn with_browser<F, Fut>(width: u32, height: u32, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_in(width, height, false, test).await;
}

/// As [`with_browser`], the system's colour scheme dark when `dark`.
pub async fn with_browser_in<F, Fut>(width: u32, height: u32, dark: bool, test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
    let driver = start_driver(PATIENCE);
    let client = connect(&driver, profile.path(), width, height, dark).await;
    let outcome = tokio::spawn(test(client.clone())).await;
    if outcome.is_err() {
        screenshot(&client, "failure").await;
    }
    let _ = client.close().await;
    drop(driver);
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Saves a screenshot to `PROCMON_SCREENSHOT_DIR`, when set, for a person to look at.
pub async fn screenshot(page: &Client, name: &str) {
    let Some(dir) = std::env::var_os("PROCMON_SCREENSHOT_DIR") else {
        return;
    };
    if let Ok(png) = page.screenshot().await {
        let path = Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
    }
}

/// Saves a screenshot for a person to look at: to `PROCMON_SCREENSHOT_DIR`
/// when set, else to `target/screenshots/`.
pub async fn save_screenshot(page: &Client, name: &str) {
    let dir = std::env::var_os("PROCMON_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"));
    std::fs::create_dir_all(&dir).expect("make the screenshot directory");
    let png = page.screenshot().await.expect("a screenshot");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
}
