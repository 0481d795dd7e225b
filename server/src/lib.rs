//! The procmon server: receives agents' snapshots over HTTP, stores them in
//! SQLite, and serves the API and the web page.
//!
//! [`startup::Application`] is the whole server; `main.rs` only reads the
//! configuration and runs it, so tests start exactly what users run.

pub mod accounts;
pub mod actions;
pub mod addresses;
pub mod agent_keys;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod drain;
pub mod embedded;
pub mod error;
pub mod gzip;
pub mod host_check;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod private;
pub mod rate_limit;
pub mod relay;
pub mod retention;
pub mod serve;
pub mod sign_in_throttle;
pub mod startup;
pub mod store;
pub mod tls;
pub mod users_cli;
pub mod web;
