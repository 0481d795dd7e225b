//! The agent's Windows half of process actions (agent/src/windows/actions.rs)
//! on a real Windows process under Wine: suspend, resume, lower priority,
//! the refusal of a pid whose start time is not the target's, and
//! terminate; and which processes it calls critical.
//!
//! It runs `act_probe.exe` (agent/src/bin/act_probe.rs, built only for
//! these tests), which calls the agent's `actions::act` and
//! `actions::critical` and finds processes with the agent's collector, so
//! the start time acted on is the one a snapshot reports. Needs what the
//! other Wine tests need; skips without it, and fails under `CI=true`.

mod common;
// Shared with the agent's Wine tests, which use more of it.
#[allow(dead_code)]
mod wine;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use wine::Wine;

/// Wine on a loaded 2-core machine starts processes slowly.
const PATIENCE: Duration = Duration::from_secs(90);

/// A cmd.exe that shows whether it runs: it appends a count to a file as
/// fast as it can.
const TICKER: &str = "for /L %i in (1,1,2000000000) do @echo %i>> tick.txt";

#[test]
fn suspend_resume_refuse_a_reused_pid_then_terminate_a_windows_process() {
    if !wine::available() {
        return;
    }
    let probe = wine::release_build(
        &[
            "-p",
            "procmon-agent",
            "--features",
            "act-probe",
            "--bin",
            "act_probe",
        ],
        "act_probe.exe",
    );
    let wine = Wine::boot();
    std::fs::copy(&probe, wine.app_dir().join("act_probe.exe")).expect("copy act_probe.exe");
    let ticks = wine.app_dir().join("tick.txt");
    let mut ticker = Ticker(
        wine.command("wine")
            .args(["cmd.exe", "/c", TICKER])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the ticker"),
    );
    let (pid, started_at) = find_one(&wine, "cmd.exe");
    wait_until("the ticker to tick", || size(&ticks) > 0);

    // What the agent never touches; the ticker is not among them. Wine
    // has no ProcessBreakOnTermination (the query answers
    // STATUS_INVALID_INFO_CLASS), so here only names and pids tell.
    assert_eq!(critical(&wine, pid), Value::Null);
    let (services, _) = find_one(&wine, "services.exe");
    assert_eq!(
        critical(&wine, services),
        "services.exe is part of Windows itself"
    );
    assert_eq!(
        critical(&wine, 4),
        "pid 4 is the System process (the kernel)"
    );
    assert!(
        critical(&wine, 0)
            .as_str()
            .is_some_and(|why| why.contains("pid 0")),
        "pid 0 must be refused"
    );

    // The pid with a start time 100 ns off: another process as far as an
    // action is concerned. Refused, with the real start time, untouched.
    let off_by_one_tick = shift(&started_at, 100);
    let answer = act(&wine, "terminate", pid, &off_by_one_tick);
    assert_eq!(answer["error"], "reused", "{answer}");
    assert_eq!(answer["started_at"], started_at.as_str(), "{answer}");
    let before = size(&ticks);
    wait_until("the refused ticker to go on", || size(&ticks) > before);

    // Wine implements NtSuspendProcess: every thread stops.
    let answer = act(&wine, "suspend", pid, &started_at);
    assert!(answer["ok"].is_string(), "{answer}");
    std::thread::sleep(Duration::from_millis(500));
    let suspended = size(&ticks);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(size(&ticks), suspended, "a suspended process wrote on");

    let answer = act(&wine, "resume", pid, &started_at);
    assert!(answer["ok"].is_string(), "{answer}");
    wait_until("the resumed ticker to go on", || size(&ticks) > suspended);

    let answer = act(&wine, "lower_priority", pid, &started_at);
    assert_eq!(
        answer["ok"], "priority class set to below normal",
        "{answer}"
    );
    let answer = act(&wine, "lower_priority", pid, &started_at);
    assert_eq!(answer["ok"], "already at below normal priority", "{answer}");

    let answer = act(&wine, "terminate", pid, &started_at);
    assert!(
        answer["ok"]
            .as_str()
            .is_some_and(|said| said.contains("TerminateProcess (exit code 1)")),
        "{answer}"
    );
    let status = ticker.wait_at_most(PATIENCE);
    assert_eq!(
        status,
        Some(1),
        "wine passes on the exit code TerminateProcess set"
    );
    let listed = find(&wine, "cmd.exe");
    assert!(
        listed.iter().all(|p| p["pid"] != pid),
        "the ended ticker is still listed: {listed:?}"
    );
    let answer = act(&wine, "kill", pid, &started_at);
    assert_eq!(answer["error"], "gone", "{answer}");
}

/// The ticker's `wine` process, ended if the test fails before it does.
struct Ticker(Child);

impl Ticker {
    /// Its exit code once it ends; `None` if it runs on after `limit`.
    fn wait_at_most(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.0.try_wait().expect("wait for the ticker") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One line of JSON from `act_probe.exe <args>`.
fn probe(wine: &Wine, args: &[&str]) -> Value {
    let out = wine.run("act_probe.exe", args);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "act_probe {args:?} failed ({}):\n{said}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = said.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("act_probe {args:?} said {said:?}: {e}"))
}

fn act(wine: &Wine, kind: &str, pid: u64, started_at: &str) -> Value {
    probe(wine, &["act", kind, &pid.to_string(), started_at])
}

fn critical(wine: &Wine, pid: u64) -> Value {
    probe(wine, &["critical", &pid.to_string()])["critical"].clone()
}

/// Every process named `name`, as the collector reports it.
fn find(wine: &Wine, name: &str) -> Vec<Value> {
    match probe(wine, &["find", name]) {
        Value::Array(found) => found,
        other => panic!("act_probe find {name} said {other}"),
    }
}

/// The pid and start time of the one process named `name`, waited for.
fn find_one(wine: &Wine, name: &str) -> (u64, String) {
    let started = Instant::now();
    loop {
        let found = find(wine, name);
        if let [one] = found.as_slice() {
            let pid = one["pid"].as_u64().expect("a pid");
            let at = one["start_time"].as_str().expect("a start time");
            return (pid, at.to_owned());
        }
        assert!(
            started.elapsed() < PATIENCE,
            "not one {name} after {PATIENCE:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `at` (RFC 3339) moved by `nanos`, in the same form.
fn shift(at: &str, nanos: i64) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 time")
        + chrono::Duration::nanoseconds(nanos);
    at.to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
