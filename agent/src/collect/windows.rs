//! Windows: the machine GUID, the product name from the registry, and per
//! process what sysinfo lacks or gets wrong (threads, handles, private
//! bytes, virtual size, exact start time, the owner as DOMAIN\name). See the
//! contract in `mod.rs`.
//!
//! Nothing here uses PDH performance counters: they are slow, and Wine
//! does not implement them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::PlatformExtras;
use crate::windows::owner::AccountNames;
use crate::windows::process_table::{self, TableEntry};
use crate::windows::{privilege, registry};

/// A FILETIME (100 ns units since 1601-01-01 UTC) as a UTC time; `None`
/// for 0, which the table gives the System and Idle processes.
fn filetime_to_utc(filetime: i64) -> Option<DateTime<Utc>> {
    const UNIX_EPOCH_AS_FILETIME: i64 = 116_444_736_000_000_000;
    let since_unix = filetime
        .checked_sub(UNIX_EPOCH_AS_FILETIME)
        .filter(|_| filetime > 0)?;
    DateTime::from_timestamp(
        since_unix.div_euclid(10_000_000),
        (since_unix.rem_euclid(10_000_000) * 100) as u32,
    )
}

const CRYPTOGRAPHY_KEY: &str = r"SOFTWARE\Microsoft\Cryptography";
const CURRENT_VERSION_KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion";

/// `MachineGuid`, which Windows setup creates once per installation (and
/// Wine once per prefix). Images cloned without sysprep share it; the saved
/// id is the fallback only for a registry without one.
pub(super) fn host_id() -> String {
    registry::machine_string(CRYPTOGRAPHY_KEY, "MachineGuid")
        .map(|guid| guid.to_ascii_lowercase())
        .unwrap_or_else(super::saved_id::load_or_create)
}

/// E.g. ("Windows 11 Pro 23H2", "22631.2861"): the product name with its
/// release, and the build with its update revision, as `winver` shows them.
pub(super) fn os_name_and_version() -> (String, String) {
    let build = registry::machine_string(CURRENT_VERSION_KEY, "CurrentBuild")
        .or_else(|| registry::machine_string(CURRENT_VERSION_KEY, "CurrentBuildNumber"))
        .unwrap_or_default();
    let mut name = registry::machine_string(CURRENT_VERSION_KEY, "ProductName")
        .unwrap_or_else(|| "Windows".to_owned());
    // Windows 11 kept Windows 10's ProductName; its builds start at 22000.
    if build.parse::<u32>().is_ok_and(|b| b >= 22000) && name.starts_with("Windows 10") {
        name = name.replacen("Windows 10", "Windows 11", 1);
    }
    if let Some(release) = registry::machine_string(CURRENT_VERSION_KEY, "DisplayVersion") {
        name = format!("{name} {release}");
    }
    let version = match registry::machine_dword(CURRENT_VERSION_KEY, "UBR") {
        Some(revision) if !build.is_empty() => format!("{build}.{revision}"),
        _ => build,
    };
    (name, version)
}

/// Reads the kernel's process table once per snapshot (one system call for
/// all processes) and looks each process up in it; owners are read from
/// the process token once per process and kept while it lives.
pub(super) struct ProcessDetails {
    table: HashMap<u32, TableEntry>,
    /// Owners by (pid, creation time): a process's owner never changes.
    owners: HashMap<(u32, i64), Option<String>>,
    accounts: AccountNames,
    /// Whether a snapshot was begun before, so its owners were asked for.
    begun: bool,
    table_error_logged: bool,
    denied_logged: bool,
}

impl ProcessDetails {
    pub(super) fn new() -> Self {
        privilege::enable_debug_privilege();
        ProcessDetails {
            table: HashMap::new(),
            owners: HashMap::new(),
            accounts: AccountNames::default(),
            begun: false,
            table_error_logged: false,
            denied_logged: false,
        }
    }

    /// Reads the table, after sysinfo's refresh: every process sysinfo
    /// listed is in it unless it has exited since.
    pub(super) fn begin_snapshot(&mut self) {
        self.log_denied_once();
        self.begun = true;
        match process_table::read() {
            Ok(table) => self.table = table,
            Err(error) => {
                if !self.table_error_logged {
                    tracing::warn!(%error, "cannot read the process table; threads, handles and private bytes will be missing");
                    self.table_error_logged = true;
                }
                self.table.clear();
            }
        }
        // Forget owners of exited processes, so the map stays the table's size.
        let table = &self.table;
        self.owners
            .retain(|(pid, created), _| table.get(pid).is_some_and(|e| e.create_time == *created));
    }

    pub(super) fn read(&mut self, pid: u32) -> PlatformExtras {
        let Some(entry) = self.table.get(&pid).copied() else {
            // Gone since the table was read, or the table could not be
            // read: only the owner can still be read.
            return PlatformExtras {
                user: self.accounts.owner_of(pid),
                ..PlatformExtras::default()
            };
        };
        let accounts = &mut self.accounts;
        let user = self
            .owners
            .entry((pid, entry.create_time))
            .or_insert_with(|| accounts.owner_of(pid))
            .clone();
        PlatformExtras {
            threads: Some(entry.threads),
            handles: Some(entry.handles),
            private_bytes: Some(entry.private_bytes),
            virtual_bytes: Some(entry.virtual_bytes),
            start_time: filetime_to_utc(entry.create_time),
            user,
        }
    }

    /// After the first snapshot, says once how many processes denied us
    /// their owner (and so their command line too): people otherwise take
    /// the empty columns for a bug. Every owner known then was asked for in
    /// that snapshot.
    fn log_denied_once(&mut self) {
        if self.denied_logged || !self.begun {
            return;
        }
        self.denied_logged = true;
        // Idle (0) and System (4) can be opened by no one.
        let denied = self
            .owners
            .iter()
            .filter(|((pid, _), owner)| owner.is_none() && *pid > 4)
            .count();
        if denied > 0 {
            tracing::info!(
                "access denied to {denied} processes (other users' or protected ones): they are \
                 reported without owner and command line. Run the agent as administrator, or \
                 install it as the service, to see them"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_converts_to_utc() {
        let utc = filetime_to_utc(133_485_408_000_000_000).unwrap();
        assert_eq!(utc.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(filetime_to_utc(0), None);
    }
}
