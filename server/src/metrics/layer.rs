//! The middleware that counts every answer by status class, and every
//! refused delivery by the error code its agent was answered.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ErrorKind;
use crate::startup::AppState;

/// The routes agents deliver to.
const INGEST_PATHS: [&str; 2] = ["/api/processes/", "/api/changes/"];

/// Counts the answer. It sits outside the other layers, so it sees their
/// refusals too: a body in an unknown encoding, a foreign `Host`, a request
/// that ran out of time.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ingest = request.method() == Method::POST && INGEST_PATHS.contains(&request.uri().path());
    let response = next.run(request).await;
    state.metrics.answered(response.status());
    if ingest {
        // Every refusal of a delivery, before ingest (no key, a body that
        // does not parse) or in it, answers an `ErrorBody` whose code
        // `ApiError` leaves on the response.
        if let Some(ErrorKind(reason)) = response.extensions().get::<ErrorKind>() {
            state.metrics.rejected(reason);
        }
    }
    response
}
