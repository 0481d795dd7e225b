//! Checks on a snapshot beyond its JSON shape: what the schema cannot say.
//! Each message names the field (and the process) that is wrong.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
// The limits live in the model crate, shared with the agent, which cuts
// what it collects to fit them.
use procmon_model::limits::{
    check_label, cmd_bytes, is_storable_time, INTERVAL_MS, MAX_CMD_ARGS, MAX_CMD_BYTES, MAX_CORES,
    MAX_CPU_PERCENT, MAX_HOST_FIELD, MAX_LABELS, MAX_NAME, MAX_PATH, MAX_PROCESSES,
    MAX_SNAPSHOT_CMD_ARGS,
};
use procmon_model::{ChangeBatch, HostInfo, HostLoad, ProcessSample, Snapshot, WIRE_VERSION};

/// `Ok` when the snapshot can be stored, else what is wrong with it.
pub fn validate(snapshot: &Snapshot) -> Result<(), String> {
    version(snapshot.version)?;
    host("host", &snapshot.host)?;
    interval(snapshot.interval_ms)?;
    storable_time(|| "collected_at".to_owned(), snapshot.collected_at)?;
    if let Some(l) = &snapshot.load {
        load(l)?;
    }
    if snapshot.processes.len() > MAX_PROCESSES {
        return Err(format!(
            "{} processes is more than the {MAX_PROCESSES} one snapshot may hold",
            snapshot.processes.len()
        ));
    }
    total_args(snapshot.processes.iter().map(|p| p.cmd.len()))?;

    let mut first_index = HashMap::with_capacity(snapshot.processes.len());
    for (i, p) in snapshot.processes.iter().enumerate() {
        if let Some(earlier) = first_index.insert(p.pid, i) {
            return Err(format!(
                "pid {} appears twice, at processes[{earlier}] and processes[{i}]",
                p.pid
            ));
        }
        process(
            &|field| format!("processes[{i}] (pid {}).{field}", p.pid),
            p,
        )?;
    }
    Ok(())
}

/// What can be checked of a change batch before its base is at hand: all
/// that it carries, by the limits of a snapshot. The snapshot it makes is
/// checked whole with [`validate`] once applied. The host id first of all,
/// since an agent key is bound to the first host id it sends.
pub fn validate_batch(batch: &ChangeBatch) -> Result<(), String> {
    version(batch.version)?;
    host_id("host_id", &batch.host_id)?;
    interval(batch.interval_ms)?;
    storable_time(|| "collected_at".to_owned(), batch.collected_at)?;
    if let Some(facts) = &batch.host {
        host("host", facts)?;
    }
    if let Some(l) = &batch.load {
        load(l)?;
    }
    for (list, len) in [
        ("exited", batch.exited.len()),
        ("started", batch.started.len()),
        ("changed", batch.changed.len()),
    ] {
        if len > MAX_PROCESSES {
            return Err(format!(
                "{list} has {len} processes, more than the {MAX_PROCESSES} one snapshot may hold"
            ));
        }
    }
    total_args(
        batch.started.iter().map(|p| p.cmd.len()).chain(
            batch
                .changed
                .iter()
                .map(|u| u.cmd.as_ref().map_or(0, Vec::len)),
        ),
    )?;
    for (i, p) in batch.started.iter().enumerate() {
        process(&|field| format!("started[{i}] (pid {}).{field}", p.pid), p)?;
    }
    for (i, u) in batch.changed.iter().enumerate() {
        let at = |field: &str| format!("changed[{i}] (pid {}).{field}", u.pid);
        texts(
            &at,
            u.name.as_deref(),
            u.exe.as_ref().and_then(Option::as_deref),
            u.user.as_ref().and_then(Option::as_deref),
        )?;
        if let Some(cmd) = &u.cmd {
            command_line(&at, cmd)?;
        }
        if let Some(cpu) = u.cpu_percent {
            cpu_percent(&at, cpu)?;
        }
    }
    Ok(())
}

/// Names a field of one process in an error; called only to word one.
type At<'a> = dyn Fn(&str) -> String + 'a;

/// A host's facts; `prefix` names them ("host").
fn host(prefix: &str, host: &HostInfo) -> Result<(), String> {
    host_id(&format!("{prefix}.id"), &host.id)?;
    for (field, value) in [
        ("hostname", &host.hostname),
        ("os_name", &host.os_name),
        ("os_version", &host.os_version),
        ("kernel", &host.kernel),
        ("arch", &host.arch),
        ("agent_version", &host.agent_version),
    ] {
        at_most(|| format!("{prefix}.{field}"), value, MAX_HOST_FIELD)?;
    }
    labels(&format!("{prefix}.labels"), &host.labels)?;
    storable_time(|| format!("{prefix}.boot_time"), host.boot_time)
}

/// A host's labels (reading already refused more than [`MAX_LABELS`];
/// checked again for a snapshot made in process). Rules pick hosts by
/// them, and the store keeps them joined by commas, so each must be as
/// [`check_label`] says.
pub fn labels(field: &str, labels: &[String]) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!(
            "{field} has {} labels, more than the {MAX_LABELS} allowed",
            labels.len()
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        check_label(label).map_err(|why| format!("{field}[{i}] {label:?} is refused: {why}"))?;
    }
    Ok(())
}

/// A host's load: each number finite, none negative, each core's use a
/// percentage, and no more cores than [`MAX_CORES`].
fn load(load: &HostLoad) -> Result<(), String> {
    let cores = load.cpu_per_core.len();
    if cores > MAX_CORES {
        return Err(format!(
            "load.cpu_per_core has {cores} cores, more than the {MAX_CORES} allowed"
        ));
    }
    for (i, &cpu) in load.cpu_per_core.iter().enumerate() {
        if !(0.0..=100.0).contains(&cpu) {
            return Err(format!(
                "load.cpu_per_core[{i}] is {cpu}: it must be between 0 and 100"
            ));
        }
    }
    for (i, &average) in load.load_average.iter().flatten().enumerate() {
        if !(average.is_finite() && average >= 0.0) {
            return Err(format!(
                "load.load_average[{i}] is {average}: it must be a finite number, 0 or more"
            ));
        }
    }
    Ok(())
}

/// The command-line arguments of all processes together.
fn total_args(each: impl Iterator<Item = usize>) -> Result<(), String> {
    let args: usize = each.sum();
    if args > MAX_SNAPSHOT_CMD_ARGS {
        return Err(format!(
            "the command lines have {args} arguments in all, more than the \
             {MAX_SNAPSHOT_CMD_ARGS} one snapshot may hold"
        ));
    }
    Ok(())
}

/// One process in full, as a snapshot holds it.
fn process(at: &At, p: &ProcessSample) -> Result<(), String> {
    texts(at, Some(&p.name), p.exe.as_deref(), p.user.as_deref())?;
    command_line(at, &p.cmd)?;
    cpu_percent(at, p.cpu_percent)?;
    storable_time(|| at("start_time"), p.start_time)
}

/// A process's name, executable and user, those that are given.
fn texts(at: &At, name: Option<&str>, exe: Option<&str>, user: Option<&str>) -> Result<(), String> {
    for (field, value, limit) in [
        ("name", name, MAX_NAME),
        ("exe", exe, MAX_PATH),
        ("user", user, MAX_NAME),
    ] {
        if let Some(value) = value {
            at_most(|| at(field), value, limit)?;
        }
    }
    Ok(())
}

fn command_line(at: &At, cmd: &[String]) -> Result<(), String> {
    if cmd.len() > MAX_CMD_ARGS {
        return Err(format!(
            "{} has {} arguments, more than the {MAX_CMD_ARGS} allowed",
            at("cmd"),
            cmd.len()
        ));
    }
    let cmd_bytes = cmd_bytes(cmd);
    if cmd_bytes > MAX_CMD_BYTES {
        return Err(format!(
            "{} is {cmd_bytes} bytes long, more than the {MAX_CMD_BYTES} allowed",
            at("cmd")
        ));
    }
    Ok(())
}

fn cpu_percent(at: &At, cpu: f32) -> Result<(), String> {
    if !(0.0..=MAX_CPU_PERCENT).contains(&cpu) {
        return Err(format!(
            "{} is {cpu}: it must be between 0 and {MAX_CPU_PERCENT} (100 per core)",
            at("cpu_percent"),
        ));
    }
    Ok(())
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
    // Nor control characters (a NUL cannot even be stored in PostgreSQL's
    // text), so `?host=` refuses them too rather than looking one up.
    if id.chars().any(char::is_control) {
        return Err(format!(
            "{field} {id:?} has a control character: a host id is printable text"
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
        s.host.id = "host\u{0}1".into();
        assert!(validate(&s).unwrap_err().contains("control character"));
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
        s.host.labels = vec!["prod".into(), "no spaces".into()];
        assert!(validate(&s)
            .unwrap_err()
            .contains("host.labels[1] \"no spaces\" is refused: ' ' cannot be in a label"));
        s.host.labels = (0..=MAX_LABELS).map(|i| format!("l{i}")).collect();
        assert!(validate(&s)
            .unwrap_err()
            .contains("host.labels has 33 labels"));
        s.host.labels = vec!["prod".into(), "role=db".into()];
        assert_eq!(validate(&s), Ok(()));

        let mut s = snapshot(&[1]);
        s.interval_ms = 0;
        assert!(validate(&s).unwrap_err().contains("interval_ms"));

        let mut s = snapshot(&[1]);
        s.processes[0].start_time = DateTime::parse_from_rfc3339("1500-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(validate(&s).unwrap_err().contains("start_time"));
    }

    #[test]
    fn a_batch_is_held_to_a_snapshots_limits_before_its_base_is_read() {
        let base = snapshot(&[1, 2]);
        let mut next = base.clone();
        next.id = uuid::Uuid::from_u128(7);
        next.processes
            .push(procmon_model::fixtures::process(3, base.collected_at));
        let good = procmon_model::changes::diff(&base, &next);
        assert_eq!(validate_batch(&good), Ok(()));
        let refused = |change: &dyn Fn(&mut ChangeBatch)| {
            let mut batch = good.clone();
            change(&mut batch);
            validate_batch(&batch).unwrap_err()
        };
        let long = |n: usize| "x".repeat(n);

        let error = refused(&|b| b.started[0].name = long(MAX_NAME + 1));
        assert!(error.contains("started[0] (pid 3).name"), "{error}");
        let error = refused(&|b| b.started[0].cmd = vec![long(MAX_CMD_BYTES + 1)]);
        assert!(
            error.contains("started[0] (pid 3).cmd is 262145 bytes"),
            "{error}"
        );
        let error = refused(&|b| {
            b.changed.push(procmon_model::ProcessUpdate {
                pid: 2,
                exe: Some(Some(long(MAX_PATH + 1))),
                ..Default::default()
            })
        });
        assert!(error.contains("changed[0] (pid 2).exe"), "{error}");
        let error = refused(&|b| {
            b.changed.push(procmon_model::ProcessUpdate {
                pid: 2,
                cpu_percent: Some(-1.0),
                ..Default::default()
            })
        });
        assert!(error.contains("changed[0] (pid 2).cpu_percent"), "{error}");
        let error = refused(&|b| {
            let mut host = base.host.clone();
            host.kernel = long(MAX_HOST_FIELD + 1);
            b.host = Some(host);
        });
        assert!(error.contains("host.kernel"), "{error}");
        let error = refused(&|b| {
            let mut host = base.host.clone();
            host.labels = vec![String::new()];
            b.host = Some(host);
        });
        assert!(error.contains("host.labels[0] \"\" is refused"), "{error}");
        let error = refused(&|b| b.host_id = String::new());
        assert!(error.contains("host_id is empty"), "{error}");
    }

    #[test]
    fn a_hosts_load_is_finite_not_negative_and_in_range() {
        let good = HostLoad {
            cpu_per_core: vec![0.0, 100.0],
            memory_used_bytes: 1,
            memory_available_bytes: 1,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            load_average: Some([0.0, 1.5, 300.0]),
        };
        assert_eq!(load(&good), Ok(()));
        let refused = |change: &dyn Fn(&mut HostLoad)| {
            let mut l = good.clone();
            change(&mut l);
            load(&l).unwrap_err()
        };
        for (cpu, shown) in [(f32::NAN, "NaN"), (-0.5, "-0.5"), (100.5, "100.5")] {
            let error = refused(&|l| l.cpu_per_core[1] = cpu);
            assert!(
                error.contains(&format!("load.cpu_per_core[1] is {shown}")),
                "{error}"
            );
        }
        let error = refused(&|l| l.cpu_per_core = vec![1.0; MAX_CORES + 1]);
        assert!(error.contains("4097 cores"), "{error}");
        for average in [f64::INFINITY, f64::NAN, -1.0] {
            let error = refused(&|l| l.load_average = Some([0.0, 0.0, average]));
            assert!(error.contains("load.load_average[2]"), "{error}");
        }
        // Checked in a snapshot too.
        let mut s = snapshot(&[1]);
        s.load = Some(HostLoad {
            cpu_per_core: vec![f32::INFINITY],
            ..good
        });
        assert!(validate(&s).unwrap_err().contains("load.cpu_per_core[0]"));
    }
}
