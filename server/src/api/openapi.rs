//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the API, built from
//! the same route list the server serves.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

/// The parts of the document that are not routes: title, auth schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "procmon",
        description = "Agents send snapshots of their host's processes, whole or as change batches against the last one acknowledged; people sign in and read hosts, process lists and history. \
            Times are UTC, RFC 3339. Every error is an ErrorBody."
    ),
    modifiers(&KeySchemes),
    // Named here too, so the wire types agents send are in the document
    // whichever routes refer to them.
    components(schemas(
        procmon_model::ChangeBatch,
        procmon_model::ProcessUpdate,
        procmon_model::HostLoad,
        crate::live::LiveEvent
    )),
    tags(
        (name = "processes", description = "Snapshots of a host's processes"),
        (name = "hosts", description = "The machines that send snapshots"),
        (name = "agents", description = "Agents getting their host keys"),
        (name = "history", description = "Series, changes and search over stored history"),
        (name = "session", description = "Signing in and out"),
        (name = "users", description = "The people who may sign in (admins manage them)"),
        (name = "alerts", description = "Rules that watch processes and hosts, the alerts they raise, silences"),
        (name = "server", description = "The server itself"),
        (name = "channels", description = "Where alerts are sent, and how each notification's delivery went"),
        (name = "actions", description = "Acting on a process (operators and admins ask, the host's agent fetches, acts and reports), and the audit log of every action"),
    )
)]
pub struct ApiDoc;

/// Names of the auth schemes, as the paths refer to them.
pub const AGENT_KEY: &str = "agent_key";
pub const SESSION: &str = "session";
pub const METRICS_TOKEN: &str = "metrics_token";

struct KeySchemes;

impl Modify for KeySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut agent = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        agent.description =
            Some("The host's agent key (`procmon-server keys create`, or from enrollment)".into());
        components.add_security_scheme(AGENT_KEY, SecurityScheme::Http(agent));
        let mut session = ApiKeyValue::new(crate::auth::SESSION_COOKIE);
        session.description = Some(
            "The session cookie set by POST /api/session/. Requests that change something also \
             send `X-Procmon-Csrf: 1`. With the server's no_login setting (loopback only), reads \
             need no session."
                .into(),
        );
        components.add_security_scheme(SESSION, SecurityScheme::ApiKey(ApiKey::Cookie(session)));
        let mut metrics = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        metrics.description = Some(
            "The server's metrics_token setting, for GET /metrics (an admin's session works too)"
                .into(),
        );
        components.add_security_scheme(METRICS_TOKEN, SecurityScheme::Http(metrics));
    }
}

/// The whole document, built once.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // The snapshot schemas exist only once the routes are added, after
        // the modifiers above have run.
        let mut document = super::router().split_for_parts().1;
        super::schema_limits::state(&mut document);
        spool_headers_are_whole_numbers(&mut document);
        document
    })
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "server",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)),
)]
pub async fn serve() -> Json<&'static Document> {
    Json(document())
}

/// The agents' spool headers are optional, so their type is an `Option`,
/// which utoipa writes as "integer or null" for a header; but a header has
/// no null (the text "null" is refused), so the document says what the
/// server takes: a whole number of 0 or more, when sent.
fn spool_headers_are_whole_numbers(document: &mut Document) {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let names = [
        procmon_model::SPOOL_WAITING_HEADER,
        procmon_model::SPOOL_BYTES_HEADER,
    ];
    for item in document.paths.paths.values_mut() {
        let Some(operation) = item.post.as_mut() else {
            continue;
        };
        for parameter in operation.parameters.iter_mut().flatten() {
            if names.contains(&parameter.name.as_str()) {
                parameter.schema = Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(0))
                        .into(),
                );
            }
        }
    }
}
