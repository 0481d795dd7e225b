//! Checks on a snapshot beyond its JSON shape: what the schema cannot say.
//! Each message names the field (and the process) that is wrong.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
// The limits live in the model crate, shared with the agent, which cuts
// what it collects to fit them.
use procmon_model::limits::{
    cmd_bytes, is_storable_time, INTERVAL_MS, MAX_CMD_ARGS, MAX_CMD_BYTES, MAX_CPU_PERCENT,
    MAX_HOST_FIELD, MAX_NAME, MAX_PATH, MAX_PROCESSES, MAX_SNAPSHOT_CMD_ARGS,
};
use procmon_model::{ChangeBatch, Snapshot, WIRE_VERSION};

/// `Ok` when the snapshot can be stored, else what is wrong with it.
pub fn validate(snapshot: &Snapshot) -> Result<(), String> {
    version(snapshot.version)?;
    let host = &snapshot.host;
    host_id("host.id", &host.id)?;
    for (field, value) in [
        ("host.id", &host.id),
        ("host.hostname", &host.hostname),
        ("host.os_name", &host.os_name),
        ("host.os_version", &host.os_version),
        ("host.kernel", &host.kernel),
        ("host.arch", &host.arch),
        ("host.agent_version", &host.agent_version),
    ] {
        at_most(|| field.to_owned(), value, MAX_HOST_FIELD)?;
    }
    interval(snapshot.interval_ms)?;
    storable_time(|| "collected_at".to_owned(), snapshot.collected_at)?;
    storable_time(|| "host.boot_time".to_owned(), host.boot_time)?;
    if snapshot.processes.len() > MAX_PROCESSES {
        return Err(format!(
            "{} processes is more than the {MAX_PROCESSES} one snapshot may hold",
            snapshot.processes.len()
        ));
    }

    let args: usize = snapshot.processes.iter().map(|p| p.cmd.len()).sum();
    if args > MAX_SNAPSHOT_CMD_ARGS {
        return Err(format!(
            "the command lines have {args} arguments in all, more than the \
             {MAX_SNAPSHOT_CMD_ARGS} one snapshot may hold"
        ));
    }

    let mut first_index = HashMap::with_capacity(snapshot.processes.len());
    for (i, p) in snapshot.processes.iter().enumerate() {
        // Called only to word an error: a valid snapshot formats nothing.
        let at = |field: &str| format!("processes[{i}] (pid {}).{field}", p.pid);
        if let Some(earlier) = first_index.insert(p.pid, i) {
            return Err(format!(
                "pid {} appears twice, at processes[{earlier}] and processes[{i}]",
                p.pid
            ));
        }
        at_most(|| at("name"), &p.name, MAX_NAME)?;
        if let Some(exe) = &p.exe {
            at_most(|| at("exe"), exe, MAX_PATH)?;
        }
        if let Some(user) = &p.user {
            at_most(|| at("user"), user, MAX_NAME)?;
        }
        if p.cmd.len() > MAX_CMD_ARGS {
            return Err(format!(
                "{} has {} arguments, more than the {MAX_CMD_ARGS} allowed",
                at("cmd"),
                p.cmd.len()
            ));
        }
        let cmd_bytes = cmd_bytes(&p.cmd);
        if cmd_bytes > MAX_CMD_BYTES {
            return Err(format!(
                "{} is {cmd_bytes} bytes long, more than the {MAX_CMD_BYTES} allowed",
                at("cmd")
            ));
        }
        if !(0.0..=MAX_CPU_PERCENT).contains(&p.cpu_percent) {
            return Err(format!(
                "{} is {}: it must be between 0 and {MAX_CPU_PERCENT} (100 per core)",
                at("cpu_percent"),
                p.cpu_percent
            ));
        }
        storable_time(|| at("start_time"), p.start_time)?;
    }
    Ok(())
}

/// What can be checked of a change batch before its base is at hand: the
/// snapshot it makes is checked whole with [`validate`] once applied. The
/// host id first of all, since an agent key is bound to the first host id
/// it sends.
pub fn validate_batch(batch: &ChangeBatch) -> Result<(), String> {
    version(batch.version)?;
    host_id("host_id", &batch.host_id)?;
    interval(batch.interval_ms)?;
    storable_time(|| "collected_at".to_owned(), batch.collected_at)
}

fn version(version: u32) -> Result<(), String> {
    if version != WIRE_VERSION {
        return Err(format!(
            "version {version} is not spoken here: this server speaks snapshot version \
             {WIRE_VERSION}; update the agent or the server so they match"
        ));
    }
    Ok(())
}

fn host_id(field: &str, id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err(format!(
            "{field} is empty: it must be the machine's stable id"
        ));
    }
    // Refused rather than trimmed: `?host=` is matched exactly too, so an
    // id stored with spaces could never be asked for reliably.
    if id.trim() != id {
        return Err(format!(
            "{field} {id:?} has spaces at its start or end: send the id without them"
        ));
    }
    at_most(|| field.to_owned(), id, MAX_HOST_FIELD)
}

fn interval(interval_ms: u64) -> Result<(), String> {
    if !INTERVAL_MS.contains(&interval_ms) {
        return Err(format!(
            "interval_ms is {interval_ms}: it must be between {} and {}",
            INTERVAL_MS.start(),
            INTERVAL_MS.end()
        ));
    }
    Ok(())
}

/// `field` names the value in the error; it is only called when there is one.
fn at_most(field: impl FnOnce() -> String, value: &str, limit: usize) -> Result<(), String> {
    if value.len() > limit {
        return Err(format!(
            "{} is {} bytes long, more than the {limit} allowed",
            field(),
            value.len()
        ));
    }
    Ok(())
}

/// Times are stored as nanoseconds in 64 bits: years 1677 to 2262.
fn storable_time(field: impl FnOnce() -> String, time: DateTime<Utc>) -> Result<(), String> {
    if is_storable_time(time) {
        Ok(())
    } else {
        Err(format!(
            "{} is {time}, outside the years 1677 to 2262",
            field()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared test snapshot, with processes of these pids.
    fn snapshot(pids: &[u32]) -> Snapshot {
        let mut s = procmon_model::fixtures::snapshot("host-1", 0);
        s.processes = pids
            .iter()
            .map(|&pid| procmon_model::fixtures::process(pid, s.collected_at))
            .collect();
        s
    }

    #[test]
    fn a_good_snapshot_passes() {
        assert_eq!(validate(&snapshot(&[1, 2, 3])), Ok(()));
    }

    #[test]
    fn each_problem_is_named() {
        let mut s = snapshot(&[1]);
        s.version = 99;
        assert!(validate(&s)
            .unwrap_err()
            .contains("speaks snapshot version 1"));

        let mut s = snapshot(&[1]);
        s.host.id = " ".into();
        assert!(validate(&s).unwrap_err().contains("host.id is empty"));

        let s = snapshot(&[1, 7, 7]);
        assert!(validate(&s)
            .unwrap_err()
            .contains("pid 7 appears twice, at processes[1] and processes[2]"));

        let mut s = snapshot(&[1, 2]);
        s.processes[1].name = "x".repeat(MAX_NAME + 1);
        assert!(validate(&s)
            .unwrap_err()
            .contains("processes[1] (pid 2).name"));

        let mut s = snapshot(&[1]);
        s.processes[0].cpu_percent = -1.0;
        assert!(validate(&s).unwrap_err().contains("cpu_percent"));

        let mut s = snapshot(&[1]);
        s.processes[0].cpu_percent = 3e38;
        assert!(validate(&s).unwrap_err().contains("between 0 and 409600"));

        let mut s = snapshot(&[1]);
        s.processes[0].cpu_percent = f32::NAN;
        assert!(validate(&s).unwrap_err().contains("cpu_percent"));

        let mut s = snapshot(&[1]);
        s.host.id = " host-1".into();
        assert!(validate(&s)
            .unwrap_err()
            .contains("has spaces at its start or end"));

        let mut s = snapshot(&[1]);
        s.processes[0].cmd = vec![String::new(); MAX_CMD_ARGS + 1];
        assert!(validate(&s)
            .unwrap_err()
            .contains("processes[0] (pid 1).cmd has 4097 arguments"));

        let mut s = snapshot(&[1]);
        s.interval_ms = 0;
        assert!(validate(&s).unwrap_err().contains("interval_ms"));

        let mut s = snapshot(&[1]);
        s.processes[0].start_time = DateTime::parse_from_rfc3339("1500-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(validate(&s).unwrap_err().contains("start_time"));
    }
}
