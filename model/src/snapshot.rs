//! What an agent sends: one snapshot of one host's processes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// All processes of one host at one moment, as an agent delivers them in
/// `POST /api/processes/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Wire format version; see [`crate::WIRE_VERSION`].
    #[serde(deserialize_with = "crate::whole::exact")]
    pub version: u32,
    /// Made by the agent when it takes the snapshot. The server stores a
    /// snapshot id once, so an agent may retry a send without duplicating it.
    pub id: Uuid,
    /// When the agent took the snapshot, by the agent's clock (which may be
    /// wrong; the server also records when it received it).
    pub collected_at: DateTime<Utc>,
    /// How often this agent sends, in milliseconds. The server calls a host
    /// offline when nothing arrived for three of its intervals.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub interval_ms: u64,
    /// The machine the processes run on.
    pub host: HostInfo,
    /// How busy the machine is now (CPU per core, memory, swap, load);
    /// absent from agents older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<HostLoad>,
    /// Every process the agent could see, in no particular order.
    #[serde(deserialize_with = "crate::limits::deserialize_processes")]
    pub processes: Vec<ProcessSample>,
}

/// Facts about the machine an agent runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostInfo {
    /// Stable machine identity (Linux `/etc/machine-id`, Windows
    /// `MachineGuid`), not the hostname: hostnames are not unique.
    pub id: String,
    /// The host's name as the OS reports it; shown to people.
    pub hostname: String,
    /// Operating system name, e.g. "Debian GNU/Linux" or "Windows 10 Pro".
    pub os_name: String,
    /// Operating system version or build, e.g. "12" or "19045".
    pub os_version: String,
    /// Kernel version, e.g. "6.1.0-18-amd64" or the Windows NT build.
    pub kernel: String,
    /// CPU architecture, e.g. "x86_64" or "aarch64".
    pub arch: String,
    /// Logical CPUs; a process can use up to `cpu_count * 100` CPU %.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub cpu_count: u32,
    /// Physical memory in bytes.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub memory_total_bytes: u64,
    /// When the host last booted.
    pub boot_time: DateTime<Utc>,
    /// Version of the procmon agent that took the snapshot.
    pub agent_version: String,
    /// Labels the agent's settings give the host, such as `prod` or
    /// `role=db`, for alert rules to pick hosts by. At most
    /// [`MAX_LABELS`](crate::limits::MAX_LABELS), each as
    /// [`LABEL_PATTERN`](crate::limits::LABEL_PATTERN) says. Absent when
    /// there are none, and from agents older than this field.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::deserialize_labels"
    )]
    pub labels: Vec<String>,
}

/// How busy a host is at one moment: what its meters on the page show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostLoad {
    /// CPU use of each logical CPU since the previous snapshot, 0 to 100.
    #[serde(default, deserialize_with = "crate::limits::deserialize_cores")]
    pub cpu_per_core: Vec<f32>,
    /// Memory in use, in bytes (total minus available).
    #[serde(deserialize_with = "crate::whole::exact")]
    pub memory_used_bytes: u64,
    /// Memory available for new work without swapping, in bytes.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub memory_available_bytes: u64,
    /// Swap (or Windows page file) size, in bytes.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub swap_total_bytes: u64,
    /// Swap in use, in bytes.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub swap_used_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes; absent where the OS has none
    /// (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
}

/// One process as seen in one snapshot.
///
/// A pid alone is not an identity, since pids are reused: a process is
/// (host, `pid`, `start_time`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessSample {
    /// Process id.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub pid: u32,
    /// Parent's pid as the OS reports it. The parent may have exited, or its
    /// pid may have been reused, so it can point at an unrelated process.
    #[serde(default, deserialize_with = "crate::whole::optional")]
    pub parent_pid: Option<u32>,
    /// Short name, e.g. "sshd" or "svchost.exe".
    pub name: String,
    /// Full path of the executable, when it could be read.
    pub exe: Option<String>,
    /// Command line as a list of arguments; empty when it could not be read.
    /// May hold secrets, so the server only shows it to readers it trusts.
    #[serde(deserialize_with = "crate::limits::deserialize_cmd")]
    pub cmd: Vec<String>,
    /// Owner: "name" on Unix, "DOMAIN\name" on Windows; absent when denied.
    pub user: Option<String>,
    /// When the process started.
    pub start_time: DateTime<Utc>,
    /// Scheduling state.
    pub status: ProcessStatus,
    /// CPU use since the previous snapshot, 100 = one full core (as in top).
    pub cpu_percent: f32,
    /// Resident memory in bytes (the working set on Windows).
    #[serde(deserialize_with = "crate::whole::exact")]
    pub memory_rss_bytes: u64,
    /// Virtual memory size in bytes.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub memory_virtual_bytes: u64,
    /// Private bytes (Windows' commit charge); absent where the OS has no
    /// such figure.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::optional"
    )]
    pub memory_private_bytes: Option<u64>,
    /// Number of threads, when it could be read.
    #[serde(default, deserialize_with = "crate::whole::optional")]
    pub threads: Option<u32>,
    /// Number of open handles (Windows) or file descriptors, when read.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole::optional"
    )]
    pub handles: Option<u32>,
    /// Bytes read from storage since the process started.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub disk_read_bytes: u64,
    /// Bytes written to storage since the process started.
    #[serde(deserialize_with = "crate::whole::exact")]
    pub disk_written_bytes: u64,
}

/// A process's scheduling state, in the words of `ps` and Process Explorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProcessStatus {
    Running,
    Sleeping,
    /// Waiting on I/O, not interruptible (`D` in ps).
    DiskSleep,
    Idle,
    Stopped,
    Zombie,
    Dead,
    /// Any state this version of the format has no name for.
    #[serde(other)]
    Unknown,
}

impl ProcessStatus {
    /// The name used on the wire, e.g. "running".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Sleeping => "sleeping",
            Self::DiskSleep => "disk_sleep",
            Self::Idle => "idle",
            Self::Stopped => "stopped",
            Self::Zombie => "zombie",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }

    /// The inverse of [`as_str`](Self::as_str); unknown names map to
    /// `Unknown` rather than failing, as on the wire.
    pub fn from_name(name: &str) -> Self {
        match name {
            "running" => Self::Running,
            "sleeping" => Self::Sleeping,
            "disk_sleep" => Self::DiskSleep,
            "idle" => Self::Idle,
            "stopped" => Self::Stopped,
            "zombie" => Self::Zombie,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures;

    /// Older agents send no labels, and a host without any is sent as
    /// they send it: the field is absent, not an empty list.
    #[test]
    fn labels_absent_on_the_wire_are_none_and_none_are_not_sent() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let bare = fixtures::host("host-1", now);
        let json = serde_json::to_value(&bare).unwrap();
        assert!(json.get("labels").is_none(), "{json}");
        let read: super::HostInfo = serde_json::from_value(json).unwrap();
        assert_eq!(read, bare);
        assert!(read.labels.is_empty());

        let labelled = super::HostInfo {
            labels: vec!["prod".into(), "role=db".into()],
            ..bare
        };
        let json = serde_json::to_value(&labelled).unwrap();
        assert_eq!(json["labels"], serde_json::json!(["prod", "role=db"]));
        assert_eq!(
            serde_json::from_value::<super::HostInfo>(json).unwrap(),
            labelled
        );
    }
}
