//! Reading a JSON request body, the one way every endpoint does.

use axum::extract::{FromRequest, Request};
use axum::Json;

use crate::error::ApiError;
use crate::startup::AppState;

/// A JSON body read with every failure turned into an [`ApiError`] that
/// says what was wrong (syntax, a field, the size limit, a stalled body).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(body)| Self(body))
            .map_err(|rejection| {
                ApiError::from_json_rejection(rejection, state.body_limit, state.body_timeout)
            })
    }
}
