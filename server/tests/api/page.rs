//! The page's files, served from inside the binary.

use crate::common::spawn_app;

#[tokio::test]
async fn the_page_is_served_at_the_root_with_revalidation() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let etag = response.headers()["etag"].clone();
    let html = response.text().await.unwrap();
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/index.html")).unwrap();
    assert_eq!(html, on_disk, "the embedded page is the one in web/");

    let again = app
        .client
        .get(format!("{}/", app.address))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn every_file_under_web_is_served_with_its_type() {
    let app = spawn_app().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let mut files = vec![root.clone()];
    let mut served = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let response = app.get(&format!("/{relative}")).await;
        assert_eq!(response.status(), 200, "/{relative}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html",
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "",
        };
        assert!(
            content_type.starts_with(expected),
            "/{relative}: {content_type}"
        );
        let file = std::fs::read(&path).unwrap();
        assert_eq!(response.bytes().await.unwrap(), file, "/{relative}");
        // Compressed once and kept.
        let response = app
            .client
            .get(format!("{}/{relative}", app.address))
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-encoding"],
            "gzip",
            "/{relative}"
        );
        assert_eq!(response.headers()["vary"], "accept-encoding", "/{relative}");
        let body = response.bytes().await.unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut back)
            .unwrap();
        assert_eq!(back, file, "/{relative}, gzipped");
        served += 1;
    }
    assert!(served > 0);
}

#[tokio::test]
async fn a_missing_file_is_404() {
    let app = spawn_app().await;
    assert_eq!(app.get("/no-such-file.js").await.status(), 404);
    assert_eq!(app.get("/../Cargo.toml").await.status(), 404);
}
