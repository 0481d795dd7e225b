//! The page, driven in real headless Chromium over WebDriver against a real
//! server: pick a host, expand and collapse, search, details, hostile data
//! (parent cycles, reused pids, HTML in names), phone width, and signing
//! in and out (every test signs in through the page's form first).
//!
//! One module per area of the page, in `browser/`; what they share (the
//! browser, the data, asking the page) is in `browser/support/`, and each
//! area brings it in with `use super::*;`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them each test
//! says why it skipped (and fails under `CI=true`). Set
//! `PROCMON_SCREENSHOT_DIR` to keep screenshots of the page for a look.

#[path = "common/chromium.rs"]
mod chromium;
mod common;
// The browser, the data the tests send, and asking the page.
#[path = "browser/support/mod.rs"]
mod support;

// The tree of one host: live, searched, its details; hostile data.
#[path = "browser/tree.rs"]
mod tree;
// Layout and drawing: phone width, flat list, columns, 10,000 rows, screenshots.
#[path = "browser/view.rs"]
mod view;
// The host kept current: pushed changes, polling, the view kept.
#[path = "browser/live.rs"]
mod live;
// Signing in and out, sessions that end, one-time links.
#[path = "browser/sign_in.rs"]
mod sign_in;
// An admin's users, agent keys and host removal.
#[path = "browser/admin.rs"]
mod admin;
// The page in time and across the fleet (tests named history_*).
#[path = "browser/history.rs"]
mod history;
// Alerts, rules, silences on the page (tests named alerts_*).
#[path = "browser/alerts.rs"]
mod alerts;
// Acting on a process, and the actions log (tests named actions_*).
#[path = "browser/actions.rs"]
mod actions;

use support::*;
