//! Test-only (feature `act-probe`, never released): the agent's OS half of
//! process actions (`procmon_agent::actions::act` and `critical`, on
//! Windows the code of `procmon_agent::windows::actions`) driven from the
//! command line, for the Wine test, which runs this .exe beside the
//! agent's. Each command prints one line of JSON.
//!
//! - `act_probe find NAME`: `[{"pid": 42, "start_time": "…"}, …]`, every
//!   process named NAME (any case) as the agent's collector reports it.
//! - `act_probe act KIND PID STARTED_AT`: `{"ok": "message"}`, or
//!   `{"error": "gone" | "reused" | "access_denied" | "failed", …}`.
//! - `act_probe critical PID`: `{"critical": "why" | null}`.

#[cfg(windows)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let answer = match args.as_slice() {
        ["find", name] => probe::find(name),
        ["act", kind, pid, started_at] => probe::act(kind, pid, started_at),
        ["critical", pid] => probe::critical(pid),
        _ => {
            eprintln!("usage: act_probe find NAME | act KIND PID STARTED_AT | critical PID");
            std::process::exit(2);
        }
    };
    println!("{answer}");
}

#[cfg(not(windows))]
fn main() {
    eprintln!("act_probe tests the Windows actions; it does nothing elsewhere");
    std::process::exit(2);
}

#[cfg(windows)]
mod probe {
    use std::time::Duration;

    use chrono::{DateTime, SecondsFormat, Utc};
    use procmon_agent::actions::{self, ActError};
    use procmon_agent::Collector;
    use procmon_model::actions::ActionKind;
    use serde_json::{json, Value};

    /// Times as the signed action carries them.
    fn rfc3339(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    fn pid(text: &str) -> u32 {
        text.parse()
            .unwrap_or_else(|_| panic!("not a pid: {text:?}"))
    }

    pub fn find(name: &str) -> Value {
        let snapshot = Collector::new().snapshot(Duration::from_secs(1));
        snapshot
            .processes
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| json!({"pid": p.pid, "start_time": rfc3339(p.start_time)}))
            .collect()
    }

    pub fn act(kind: &str, pid_text: &str, started_at: &str) -> Value {
        let kind =
            ActionKind::parse(kind).unwrap_or_else(|| panic!("not an action kind: {kind:?}"));
        let started_at = DateTime::parse_from_rfc3339(started_at)
            .unwrap_or_else(|e| panic!("not an RFC 3339 time: {started_at:?}: {e}"))
            .with_timezone(&Utc);
        match actions::act(kind, pid(pid_text), started_at) {
            Ok(message) => json!({"ok": message}),
            Err(ActError::Gone) => json!({"error": "gone"}),
            Err(ActError::Reused { started_at }) => {
                json!({"error": "reused", "started_at": rfc3339(started_at)})
            }
            Err(ActError::AccessDenied(message)) => {
                json!({"error": "access_denied", "message": message})
            }
            Err(ActError::Failed(message)) => json!({"error": "failed", "message": message}),
        }
    }

    pub fn critical(pid_text: &str) -> Value {
        json!({"critical": actions::critical(pid(pid_text))})
    }
}
