//! The limits the server enforces on a snapshot ([`procmon_model::limits`]
//! and the wire version), on user names and passwords, and on query
//! parameters, written into the OpenAPI schemas, so that a client that
//! follows the document is never refused. The numbers come from the same
//! constants `validate.rs` and `accounts.rs` check against.
//!
//! Lengths are limited in bytes of UTF-8, which JSON Schema cannot say:
//! `maxLength` (characters) is set to the byte limit, which every accepted
//! string meets, and each description states the byte limit, which text
//! beyond ASCII reaches sooner.

use procmon_model::limits::{
    INTERVAL_MS, LABEL_PATTERN, MAX_CMD_ARGS, MAX_CMD_BYTES, MAX_CORES, MAX_CPU_PERCENT,
    MAX_HOST_FIELD, MAX_LABEL, MAX_LABELS, MAX_NAME, MAX_PATH, MAX_PROCESSES,
};
use procmon_model::WIRE_VERSION;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{ArrayItems, KnownFormat, SchemaFormat};
use utoipa::openapi::{Components, OpenApi as Document, RefOr, Schema};

/// Times the store can hold (nanoseconds since 1970 in 64 bits: late 1677
/// to early 2262), as a pattern on RFC 3339 text: the years 1678 to 2261,
/// which no zone offset takes out of range. The `date-time` format says the
/// rest.
pub const STORABLE_TIME: &str = r"^(167[89]|16[89]\d|1[7-9]\d\d|2[01]\d\d|22[0-5]\d|226[01])-";

/// A host id: no spaces at its start or end, where a space is what the
/// server trims (Unicode White_Space, as Rust's `trim`), and no control
/// character anywhere (Unicode Cc, as Rust's `char::is_control`: U+0000 to
/// U+001F and U+007F to U+009F, which holds the controls among the
/// spaces). Spelled out: `\s` differs between JSON Schema's regexes (no
/// U+0085, but U+FEFF) and others (Python's has U+0085 and U+001C to
/// U+001F).
pub const HOST_ID: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"([^\u0000-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u001F\u007F-\u009F \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
);

/// The query parameters that are times.
const QUERY_TIMES: [&str; 4] = ["at", "from", "to", "start_time"];

/// Adds every limit to the `Snapshot`, `ChangeBatch`, `HostInfo`,
/// `ProcessSample`, `ProcessUpdate` and `HostLoad` schemas. Panics if one of them lacks a field named here: the model and
/// this list must change together.
pub fn state(document: &mut Document) {
    let components = document
        .components
        .as_mut()
        .expect("the document has components");

    // A change batch carries the same head as a snapshot, and its
    // processes are checked as a snapshot's once applied.
    for schema in ["Snapshot", "ChangeBatch"] {
        let version = object(property(components, schema, "version"));
        version.enum_values = Some(vec![WIRE_VERSION.into()]);
        let interval = object(property(components, schema, "interval_ms"));
        interval.minimum = Some((*INTERVAL_MS.start() as usize).into());
        interval.maximum = Some((*INTERVAL_MS.end() as usize).into());
    }
    let batch_host = object(property(components, "ChangeBatch", "host_id"));
    batch_host.min_length = Some(1);
    batch_host.pattern = Some(HOST_ID.to_owned());
    at_most_bytes(batch_host, MAX_HOST_FIELD);
    let processes = array(property(components, "Snapshot", "processes"));
    processes.max_items = Some(MAX_PROCESSES);
    // `uniqueItems` compares whole processes; it cannot say this.
    processes.description = Some(format!(
        "{} No pid appears twice.",
        processes.description.as_deref().unwrap_or_default()
    ));

    let id = object(property(components, "HostInfo", "id"));
    id.min_length = Some(1);
    // No spaces around it: the server refuses those rather than trim.
    id.pattern = Some(HOST_ID.to_owned());
    for field in [
        "id",
        "hostname",
        "os_name",
        "os_version",
        "kernel",
        "arch",
        "agent_version",
    ] {
        at_most_bytes(
            object(property(components, "HostInfo", field)),
            MAX_HOST_FIELD,
        );
    }

    labels(array(property(components, "HostInfo", "labels")));
    labels(array(property(components, "AlertRuleSpec", "host_labels")));

    for (field, limit) in [("name", MAX_NAME), ("user", MAX_NAME), ("exe", MAX_PATH)] {
        at_most_bytes(object(property(components, "ProcessSample", field)), limit);
    }
    let cmd = array(property(components, "ProcessSample", "cmd"));
    cmd.max_items = Some(MAX_CMD_ARGS);
    if let ArrayItems::RefOrSchema(item) = &mut cmd.items {
        if let RefOr::T(item) = item.as_mut() {
            object(item).max_length = Some(MAX_CMD_BYTES);
        }
    }
    cmd.description = Some(format!(
        "{} At most {MAX_CMD_ARGS} arguments and {MAX_CMD_BYTES} bytes in all.",
        cmd.description.as_deref().unwrap_or_default()
    ));
    let cpu = object(property(components, "ProcessSample", "cpu_percent"));
    cpu.minimum = Some(0.into());
    cpu.maximum = Some(f64::from(MAX_CPU_PERCENT).into());

    for (field, limit) in [("name", MAX_NAME), ("user", MAX_NAME), ("exe", MAX_PATH)] {
        at_most_bytes(object(property(components, "ProcessUpdate", field)), limit);
    }
    let cmd = array(property(components, "ProcessUpdate", "cmd"));
    cmd.max_items = Some(MAX_CMD_ARGS);
    cmd.description = Some(format!(
        "{} At most {MAX_CMD_ARGS} arguments and {MAX_CMD_BYTES} bytes in all.",
        cmd.description.as_deref().unwrap_or_default()
    ));
    for list in ["exited", "started", "changed"] {
        array(property(components, "ChangeBatch", list)).max_items = Some(MAX_PROCESSES);
    }
    // An array, not a tuple, to JSON Schema; serde takes exactly three.
    let averages = array(property(components, "HostLoad", "load_average"));
    averages.min_items = Some(3);
    averages.max_items = Some(3);
    if let ArrayItems::RefOrSchema(item) = &mut averages.items {
        if let RefOr::T(item) = item.as_mut() {
            object(item).minimum = Some(0.into());
        }
    }
    let cores = array(property(components, "HostLoad", "cpu_per_core"));
    cores.max_items = Some(MAX_CORES);
    if let ArrayItems::RefOrSchema(item) = &mut cores.items {
        if let RefOr::T(item) = item.as_mut() {
            let core = object(item);
            core.minimum = Some(0.into());
            core.maximum = Some(100.into());
        }
    }

    let cpu = object(property(components, "ProcessUpdate", "cpu_percent"));
    cpu.minimum = Some(0.into());
    cpu.maximum = Some(f64::from(MAX_CPU_PERCENT).into());

    for (schema, field) in [
        ("Snapshot", "collected_at"),
        ("ChangeBatch", "collected_at"),
        ("HostInfo", "boot_time"),
        ("ProcessSample", "start_time"),
    ] {
        storable_time(object(property(components, schema, field)));
    }

    // A key's host, as stored: as a snapshot's host id.
    let key_host = object(property(components, "NewAgentKey", "host_id"));
    key_host.pattern = Some(HOST_ID.to_owned());

    let name = object(property(components, "NewUser", "name"));
    name.min_length = Some(1);
    name.max_length = Some(crate::accounts::MAX_NAME);
    name.pattern = Some("^[A-Za-z0-9._@-]+$".to_owned());
    for schema in ["NewUser", "PasswordChange"] {
        let password = object(property(components, schema, "password"));
        password.min_length = Some(*crate::accounts::PASSWORD_BYTES.start());
        at_most_bytes(password, *crate::accounts::PASSWORD_BYTES.end());
    }
    actions(components);
    parameters(document);
}

/// A list of host labels: at most [`MAX_LABELS`], each as
/// [`LABEL_PATTERN`] says.
fn labels(list: &mut utoipa::openapi::schema::Array) {
    list.max_items = Some(MAX_LABELS);
    if let ArrayItems::RefOrSchema(item) = &mut list.items {
        if let RefOr::T(item) = item.as_mut() {
            let label = object(item);
            label.min_length = Some(1);
            label.max_length = Some(MAX_LABEL);
            label.pattern = Some(LABEL_PATTERN.to_owned());
        }
    }
}

/// What `POST /api/actions/` and an agent's report are held to: a host id
/// as stored, a start time the store can hold, a reason of 1 to 500
/// characters, a message of at most 1000 (characters, as JSON Schema
/// counts them, and as the server does).
fn actions(components: &mut Components) {
    use procmon_model::actions::{MAX_REASON_CHARS, MAX_REPORT_CHARS};
    let host = object(property(components, "ActionRequest", "host_id"));
    host.min_length = Some(1);
    host.pattern = Some(HOST_ID.to_owned());
    at_most_bytes(host, MAX_HOST_FIELD);
    storable_time(object(property(components, "ActionRequest", "started_at")));
    let reason = object(property(components, "ActionRequest", "reason"));
    reason.min_length = Some(1);
    reason.max_length = Some(MAX_REASON_CHARS);
    reason.description = Some(format!(
        "{} Not all spaces.",
        reason.description.as_deref().unwrap_or_default()
    ));
    object(property(components, "ActionReport", "message")).max_length = Some(MAX_REPORT_CHARS);
}

/// What the handlers require of their parameters beyond a type: times the
/// store can hold, a host id that is not empty, the CSRF header's one value.
fn parameters(document: &mut Document) {
    let (mut times, mut hosts, mut csrf) = (0, 0, 0);
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                let Some(RefOr::T(schema)) = parameter.schema.as_mut() else {
                    continue;
                };
                let query = parameter.parameter_in == ParameterIn::Query;
                match parameter.name.as_str() {
                    name if query && QUERY_TIMES.contains(&name) => {
                        storable_time(object(schema));
                        times += 1;
                    }
                    "host" if query => {
                        // As stored: an id that is empty or all spaces is a
                        // 400, it names no host at all.
                        let host = object(schema);
                        host.min_length = Some(1);
                        host.pattern = Some(HOST_ID.to_owned());
                        hosts += 1;
                    }
                    "X-Procmon-Csrf" => {
                        object(schema).enum_values = Some(vec!["1".into()]);
                        csrf += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        times > 0 && hosts > 0 && csrf > 0,
        "parameters not found: {times} times, {hosts} host ids, {csrf} CSRF headers"
    );
}

fn storable_time(time: &mut utoipa::openapi::schema::Object) {
    time.format = Some(SchemaFormat::KnownFormat(KnownFormat::DateTime));
    time.pattern = Some(STORABLE_TIME.to_owned());
    let said = time.description.as_deref().unwrap_or_default();
    time.description = Some(
        format!("{said} RFC 3339, in the years 1678 to 2261.")
            .trim_start()
            .to_owned(),
    );
}

fn at_most_bytes(string: &mut utoipa::openapi::schema::Object, limit: usize) {
    string.max_length = Some(limit);
    string.description = Some(format!(
        "{} At most {limit} bytes of UTF-8.",
        string.description.as_deref().unwrap_or_default()
    ));
}

fn property<'a>(components: &'a mut Components, schema: &str, field: &str) -> &'a mut Schema {
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        panic!("no object schema {schema} in the document");
    };
    match object.properties.get_mut(field) {
        Some(RefOr::T(property)) => property,
        _ => panic!("{schema} has no inline property {field}"),
    }
}

fn object(schema: &mut Schema) -> &mut utoipa::openapi::schema::Object {
    match schema {
        Schema::Object(object) => object,
        _ => panic!("expected an object schema"),
    }
}

fn array(schema: &mut Schema) -> &mut utoipa::openapi::schema::Array {
    match schema {
        Schema::Array(array) => array,
        _ => panic!("expected an array schema"),
    }
}
