//! The procmon server: receives agents' snapshots over HTTP, stores them in
//! SQLite, and serves the API and the web page.
//!
//! [`startup::Application`] is the whole server; `main.rs` only reads the
//! configuration and runs it, so tests start exactly what users run.

pub mod addresses;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod keys;
pub mod private;
pub mod rate_limit;
pub mod retention;
pub mod serve;
pub mod startup;
pub mod store;
pub mod tls;
pub mod web;
