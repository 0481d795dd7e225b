//! The page: the files of `web/`, compiled into the binary, so one binary
//! is the whole server.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// The page shows names and command lines that any process on any host can
/// choose: should one ever reach the DOM as markup, the browser still runs
/// no script and loads nothing that is not the server's own.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(RustEmbed)]
#[folder = "../web/"]
struct PageFiles;

/// Serves the page's files: `/` is `index.html`. Every response carries an
/// ETag and asks the browser to revalidate, so a new server version's page
/// is picked up at once while unchanged files cost a 304.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served here\n",
        )
            .into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let Some(file) = PageFiles::get(&path) else {
        return (StatusCode::NOT_FOUND, format!("no such page: /{path}\n")).into_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    let common = [
        (ETAG, etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|given| given == etag)
    {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let gzipped = crate::gzip::accepted(&headers).then(|| gzipped(&path, &file.data));
    match gzipped {
        Some(body) => {
            let mut response = (common, [(CONTENT_TYPE, content_type)], body).into_response();
            crate::gzip::mark(response.headers_mut());
            response
        }
        None => (common, [(CONTENT_TYPE, content_type)], file.data).into_response(),
    }
}

/// Compresses every file of the page ahead of its first request.
pub fn compress_all() {
    for path in PageFiles::iter() {
        if let Some(file) = PageFiles::get(&path) {
            gzipped(&path, &file.data);
        }
    }
}

/// The file gzipped, compressed once per run of the server at the highest
/// level and kept (the page's files are about 200 KB in all, 60 KB
/// gzipped).
fn gzipped(path: &str, data: &[u8]) -> Bytes {
    static KEPT: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let kept = KEPT.get_or_init(Default::default);
    if let Some(body) = kept.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return body.clone();
    }
    // Compressed outside the lock: two first requests may both compress,
    // and neither waits on the other.
    let body = crate::gzip::compress(data, 9);
    kept.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_owned(), body.clone());
    body
}
