//! The HTTP API under `/api`, and `GET /metrics`. Routes are registered together with their
//! OpenAPI description, so the document cannot miss one.

pub mod actions;
pub mod alerts;
mod body;
pub mod channels;
pub mod enroll;
pub mod health;
pub mod history;
pub mod hosts;
pub mod ingest;
pub mod keys;
pub mod live;
pub mod load;
pub mod openapi;
mod params;
pub mod processes;
pub mod schema_limits;
pub mod session;
pub mod users;
pub mod validate;

use axum::http::{Method, Uri};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::startup::AppState;

/// Every API route with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ingest::ingest, processes::list))
        .routes(routes!(ingest::ingest_changes))
        .routes(routes!(live::changes))
        .routes(routes!(enroll::enroll))
        .routes(routes!(hosts::list))
        .routes(routes!(hosts::remove))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::rotate_enroll_secret))
        .routes(routes!(history::process_series))
        .routes(routes!(history::host_series))
        .routes(routes!(history::changes))
        .routes(routes!(history::search))
        .routes(routes!(load::host_load))
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
        .routes(routes!(users::list, users::add))
        .routes(routes!(users::remove))
        .routes(routes!(users::set_password))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::get))
        .routes(routes!(alerts::rules, alerts::create))
        .routes(routes!(alerts::rule, alerts::update, alerts::delete))
        .routes(routes!(alerts::versions))
        .routes(routes!(alerts::preview))
        .routes(routes!(alerts::silences, alerts::silence))
        .routes(routes!(alerts::end_silence))
        .routes(routes!(channels::list, channels::create))
        .routes(routes!(channels::update, channels::delete))
        .routes(routes!(channels::test))
        .routes(routes!(channels::deliveries))
        .routes(routes!(actions::list, actions::create))
        .routes(routes!(actions::get))
        .routes(routes!(actions::agent_fetch))
        .routes(routes!(actions::agent_report))
        .routes(routes!(health::health))
        .routes(routes!(openapi::serve))
        .routes(routes!(crate::metrics::scrape::scrape))
}

/// A JSON 404 for a path under `/api` that has no route, pointing at the
/// route the caller probably meant.
pub async fn no_route(uri: Uri) -> ApiError {
    let path = uri.path();
    let with_slash = format!("{path}/");
    let known = openapi::document().paths.paths.contains_key(&with_slash);
    ApiError::NoRoute(if known {
        format!("{path} (did you mean {with_slash}?)")
    } else {
        format!("{path} (see /api/openapi.json for the API)")
    })
}

/// A JSON 405 for a known path called with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
