//! Reads what a handler left of a request's body before the answer goes.
//!
//! A request refused before its body is read (a wrong agent key on a 2 MiB
//! snapshot, say) would otherwise leave the body unread in the socket; when
//! the connection then closes, the kernel answers the unread bytes with a
//! reset, and a client or proxy still sending loses the answer with it:
//! nginx answers 502 instead of passing on the 401 that says what is wrong.
//! Web servers read on before closing for the same reason (nginx's
//! `lingering_close`). What is read is bounded by the body limit, and by
//! the body timeout, which wraps the body outside this layer.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};

use crate::startup::AppState;

/// The request's body, shared between the handler and this layer.
struct Shared(Arc<Mutex<Body>>);

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .map(|body| body.is_end_stream())
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .lock()
            .map(|body| body.size_hint())
            .unwrap_or_default()
    }
}

/// Runs the request, then reads the rest of its body (at most the body
/// limit) before answering.
pub async fn drain_unread(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(Shared(Arc::clone(&body))));
    let response = next.run(request).await;
    let rest = std::mem::take(&mut *body.lock().unwrap_or_else(|e| e.into_inner()));
    if !http_body::Body::is_end_stream(&rest) {
        let mut rest = rest.into_data_stream();
        let mut read = 0usize;
        // An error (the body timed out, the client went) ends it too.
        while let Some(Ok(chunk)) = rest.next().await {
            read = read.saturating_add(chunk.len());
            if read > state.body_limit {
                break;
            }
        }
    }
    response
}
