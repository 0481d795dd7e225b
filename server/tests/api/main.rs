//! The API tests: one binary, one module per area, each test against a real
//! server on a free port with a fresh SQLite file.

#[path = "../common/mod.rs"]
mod common;

mod actions;
mod actions_embedded;
mod agent_keys;
mod alerts;
mod alerts_notify;
mod auth;
mod binary;
mod changes;
mod channels;
mod data_dir;
mod end_to_end;
mod fuzz;
mod health;
mod hostile;
mod hostile_changes;
mod hosts;
mod ingest;
mod keys_admin;
mod live;
mod live_shared;
mod metrics;
mod openapi;
mod page;
mod processes;
mod retention;
mod tls;
mod two_servers;
mod users;
