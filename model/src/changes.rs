//! Change batches: a snapshot told as what changed since an earlier one.
//!
//! Most of a host's processes do not change between two snapshots, so after
//! one full [`Snapshot`] an agent sends only a [`ChangeBatch`] against the
//! last snapshot the server acknowledged (`POST /api/changes/`): processes
//! started (in full), processes exited, and for the others only the fields
//! that moved. The server applies it to the snapshot it holds as that base
//! ([`apply`]) and stores the result exactly as if it had been sent in full.
//! The same type is what the page is pushed for a host it watches.
//!
//! A batch names its base by snapshot id, and [`apply`] refuses any other
//! base, so a batch is never applied to the wrong tree: a server that lacks
//! the base answers so, and the agent sends in full again.
//!
//! Within a batch a process is named by pid alone: the base has one process
//! per pid, exits are applied before starts, so a reused pid is an exit and
//! a start of the same pid in one batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{HostInfo, HostLoad, ProcessSample, ProcessStatus, Snapshot, WIRE_VERSION};

/// What changed on one host between snapshot `base_id` and snapshot `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeBatch {
    /// Wire format version; see [`crate::WIRE_VERSION`].
    #[serde(deserialize_with = "crate::whole::exact")]
    pub version: u32,
    /// The id of the snapshot this batch makes (as [`Snapshot::id`]): a
    /// retried batch is stored once.
    pub id: Uuid,
    /// The snapshot this batch is relative to: the last one the server
    /// acknowledged.
    pub base_id: Uuid,
    /// When the agent took the snapshot this batch makes.
    pub collected_at: DateTime<Utc>,
    /// How often this agent sends, in milliseconds.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub interval_ms: u64,
    /// The host's id ([`HostInfo::id`]); it never changes.
    pub host_id: String,
    /// The host's facts, only when they differ from the base's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostInfo>,
    /// The host's load now (sent every time: it always moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<HostLoad>,
    /// Pids of processes of the base that are gone. Applied first.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::deserialize_pids"
    )]
    pub exited: Vec<u32>,
    /// Processes not in the base, in full. Applied after `exited`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::deserialize_processes"
    )]
    pub started: Vec<ProcessSample>,
    /// Processes of the base whose fields changed, with only those fields.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::deserialize_updates"
    )]
    pub changed: Vec<ProcessUpdate>,
}

impl ChangeBatch {
    /// True when nothing but the time (and load) moved.
    pub fn is_quiet(&self) -> bool {
        self.host.is_none()
            && self.exited.is_empty()
            && self.started.is_empty()
            && self.changed.is_empty()
    }
}

/// The fields of one process that changed; absent means unchanged. For a
/// field that may be missing (say `exe`), `null` means it became missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessUpdate {
    /// The process, present in the base under this pid.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub parent_pid: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub exe: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::limits::deserialize_changed_cmd"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub user: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProcessStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_virtual_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub memory_private_bytes: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub threads: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "maybe")]
    pub handles: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_read_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_written_bytes: Option<u64>,
}

/// Why a batch cannot be applied to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The batch is relative to another snapshot than the one given.
    WrongBase { expected: Uuid, given: Uuid },
    /// The batch is for another host.
    OtherHost { batch: String, base: String },
    /// The batch names a pid the base (after exits) does not have.
    UnknownPid(u32),
    /// The batch starts a pid that is already running.
    DuplicatePid(u32),
    /// The batch's version is not [`WIRE_VERSION`].
    Version(u32),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongBase { expected, given } => write!(
                f,
                "the batch is relative to snapshot {expected}, not to {given}"
            ),
            Self::OtherHost { batch, base } => {
                write!(f, "the batch is for host {batch:?}, the base for {base:?}")
            }
            Self::UnknownPid(pid) => write!(f, "pid {pid} is not in the base"),
            Self::DuplicatePid(pid) => write!(f, "pid {pid} starts but is already running"),
            Self::Version(v) => write!(
                f,
                "wire version {v} is not known; this side speaks version {WIRE_VERSION}"
            ),
        }
    }
}

impl std::error::Error for ApplyError {}

/// The batch that turns `base` into `next` (two snapshots of one host).
///
/// A pid whose start time differs between the two is a new process (an
/// exit and a start), never an update.
pub fn diff(base: &Snapshot, next: &Snapshot) -> ChangeBatch {
    let before: HashMap<u32, &ProcessSample> = base.processes.iter().map(|p| (p.pid, p)).collect();
    let mut seen = std::collections::HashSet::with_capacity(next.processes.len());
    let mut batch = ChangeBatch {
        version: WIRE_VERSION,
        id: next.id,
        base_id: base.id,
        collected_at: next.collected_at,
        interval_ms: next.interval_ms,
        host_id: next.host.id.clone(),
        host: (next.host != base.host).then(|| next.host.clone()),
        load: next.load.clone(),
        exited: Vec::new(),
        started: Vec::new(),
        changed: Vec::new(),
    };
    for p in &next.processes {
        seen.insert(p.pid);
        match before.get(&p.pid) {
            Some(old) if old.start_time == p.start_time => {
                if let Some(update) = update_between(old, p) {
                    batch.changed.push(update);
                }
            }
            Some(_) => {
                batch.exited.push(p.pid);
                batch.started.push(p.clone());
            }
            None => batch.started.push(p.clone()),
        }
    }
    batch.exited.extend(
        base.processes
            .iter()
            .map(|p| p.pid)
            .filter(|pid| !seen.contains(pid)),
    );
    batch
}

/// The snapshot `batch` makes of `base`: processes keep the base's order,
/// the exited go, the started are appended.
pub fn apply(base: &Snapshot, batch: &ChangeBatch) -> Result<Snapshot, ApplyError> {
    if batch.version != WIRE_VERSION {
        return Err(ApplyError::Version(batch.version));
    }
    if batch.base_id != base.id {
        return Err(ApplyError::WrongBase {
            expected: batch.base_id,
            given: base.id,
        });
    }
    if batch.host_id != base.host.id {
        return Err(ApplyError::OtherHost {
            batch: batch.host_id.clone(),
            base: base.host.id.clone(),
        });
    }
    let mut processes: Vec<Option<ProcessSample>> =
        base.processes.iter().cloned().map(Some).collect();
    let mut index: HashMap<u32, usize> = base
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pid, i))
        .collect();
    for pid in &batch.exited {
        let i = index.remove(pid).ok_or(ApplyError::UnknownPid(*pid))?;
        processes[i] = None;
    }
    for p in &batch.started {
        if index.insert(p.pid, processes.len()).is_some() {
            return Err(ApplyError::DuplicatePid(p.pid));
        }
        processes.push(Some(p.clone()));
    }
    for update in &batch.changed {
        let i = *index
            .get(&update.pid)
            .ok_or(ApplyError::UnknownPid(update.pid))?;
        if let Some(p) = processes[i].as_mut() {
            update_apply(p, update);
        }
    }
    Ok(Snapshot {
        version: WIRE_VERSION,
        id: batch.id,
        collected_at: batch.collected_at,
        interval_ms: batch.interval_ms,
        host: batch.host.clone().unwrap_or_else(|| base.host.clone()),
        load: batch.load.clone(),
        processes: processes.into_iter().flatten().collect(),
    })
}

/// Every field of a process, each named once, so that `update_between` and
/// `update_apply` cannot disagree about which fields there are.
macro_rules! process_fields {
    ($m:ident) => {
        $m!(
            parent_pid,
            name,
            exe,
            cmd,
            user,
            status,
            memory_rss_bytes,
            memory_virtual_bytes,
            memory_private_bytes,
            threads,
            handles,
            disk_read_bytes,
            disk_written_bytes
        )
    };
}

fn update_between(old: &ProcessSample, new: &ProcessSample) -> Option<ProcessUpdate> {
    let mut u = ProcessUpdate {
        pid: new.pid,
        ..ProcessUpdate::default()
    };
    let mut any = false;
    macro_rules! compare {
        ($($field:ident),*) => {$(
            if old.$field != new.$field {
                u.$field = Some(new.$field.clone());
                any = true;
            }
        )*};
    }
    process_fields!(compare);
    // Bitwise, so that a NaN or -0.0 that the server would store as sent
    // is sent too.
    if old.cpu_percent.to_bits() != new.cpu_percent.to_bits() {
        u.cpu_percent = Some(new.cpu_percent);
        any = true;
    }
    any.then_some(u)
}

fn update_apply(p: &mut ProcessSample, u: &ProcessUpdate) {
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(value) = &u.$field {
                p.$field = value.clone();
            }
        )*};
    }
    process_fields!(set);
    if let Some(cpu) = u.cpu_percent {
        p.cpu_percent = cpu;
    }
}

/// Serde for `Option<Option<T>>`: an absent field is `None` (unchanged),
/// `null` is `Some(None)` (became missing). Used with `default` and
/// `skip_serializing_if = "Option::is_none"`.
mod maybe {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{snapshot, SimHost};
    use chrono::TimeZone;

    fn sim(count: usize, seed: u64) -> SimHost {
        SimHost::new(
            "host-1",
            count,
            seed,
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        )
    }

    fn sorted(mut s: Snapshot) -> Snapshot {
        s.processes.sort_by_key(|p| p.pid);
        s
    }

    #[test]
    fn applying_the_diff_gives_the_next_snapshot_over_a_churning_host() {
        let mut host = sim(300, 7);
        let mut base = host.next();
        for _ in 0..200 {
            let next = host.next();
            let batch = diff(&base, &next);
            // Through JSON, as on the wire.
            let batch: ChangeBatch =
                serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
            let made = apply(&base, &batch).expect("the batch fits its base");
            assert_eq!(sorted(made), sorted(next.clone()));
            base = next;
        }
    }

    #[test]
    fn a_field_that_becomes_missing_is_sent_as_null() {
        let base = snapshot("host-1", 3);
        let mut next = base.clone();
        next.id = Uuid::from_u128(99);
        next.processes[1].exe = None;
        next.processes[1].threads = None;
        let batch = diff(&base, &next);
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.contains(r#""exe":null"#), "{json}");
        let back: ChangeBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(apply(&base, &back).unwrap(), next);
    }

    #[test]
    fn a_reused_pid_is_an_exit_and_a_start() {
        let base = snapshot("host-1", 3);
        let mut next = base.clone();
        next.id = Uuid::from_u128(99);
        next.processes[2].start_time += chrono::Duration::seconds(5);
        next.processes[2].name = "other".into();
        let batch = diff(&base, &next);
        assert_eq!(batch.exited, vec![next.processes[2].pid]);
        assert_eq!(batch.started, vec![next.processes[2].clone()]);
        assert!(batch.changed.is_empty());
        assert_eq!(sorted(apply(&base, &batch).unwrap()), sorted(next));
    }

    #[test]
    fn a_batch_is_never_applied_to_another_base() {
        let mut host = sim(50, 1);
        let a = host.next();
        let b = host.next();
        let c = host.next();
        let batch = diff(&b, &c);
        assert_eq!(
            apply(&a, &batch),
            Err(ApplyError::WrongBase {
                expected: b.id,
                given: a.id
            })
        );
    }

    #[test]
    fn an_unchanged_host_makes_a_quiet_batch() {
        let base = snapshot("host-1", 20);
        let mut next = base.clone();
        next.id = Uuid::from_u128(5);
        let batch = diff(&base, &next);
        assert!(batch.is_quiet());
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.len() < 300, "{json}");
    }
}
