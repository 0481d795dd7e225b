//! The kernel's process table, read whole with one
//! `NtQuerySystemInformation(SystemProcessInformation)` call: the cheapest
//! way to get every process's threads, handles and memory figures at once
//! (Task Manager reads the same table).

use std::collections::HashMap;

use windows_sys::Wdk::System::SystemInformation::{
    NtQuerySystemInformation, SystemProcessInformation,
};
use windows_sys::Win32::Foundation::STATUS_INFO_LENGTH_MISMATCH;
use windows_sys::Win32::System::WindowsProgramming::SYSTEM_PROCESS_INFORMATION;

/// One process's row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableEntry {
    /// Creation time as a FILETIME; with the pid it identifies the process
    /// (pids are reused).
    pub create_time: i64,
    /// Number of threads.
    pub threads: u32,
    /// Open handles.
    pub handles: u32,
    /// Private bytes: the commit charge, as Process Explorer shows it.
    pub private_bytes: u64,
    /// Virtual size: all reserved address space.
    pub virtual_bytes: u64,
}

/// Every process now, by pid.
pub fn read() -> std::io::Result<HashMap<u32, TableEntry>> {
    let buffer = query()?;
    let bytes = buffer.len() * 8;
    let base = buffer.as_ptr().cast::<u8>();
    let mut table = HashMap::new();
    let mut offset = 0usize;
    while offset + size_of::<SYSTEM_PROCESS_INFORMATION>() <= bytes {
        // SAFETY: in bounds (checked above), and the OS wrote a whole entry
        // at every offset it linked to. Copied out unaligned: Windows aligns
        // entries to 8 bytes, Wine only to 4.
        let entry = unsafe {
            base.add(offset)
                .cast::<SYSTEM_PROCESS_INFORMATION>()
                .read_unaligned()
        };
        table.insert(
            entry.UniqueProcessId as usize as u32,
            TableEntry::from(&entry),
        );
        if entry.NextEntryOffset == 0 {
            break;
        }
        offset += entry.NextEntryOffset as usize;
    }
    Ok(table)
}

/// The raw table, in a buffer grown while processes appear between the
/// size query and the read.
fn query() -> std::io::Result<Vec<u64>> {
    // u64 elements align the first entry as its fields need.
    let mut buffer: Vec<u64> = vec![0; 32 * 1024];
    loop {
        let bytes = u32::try_from(buffer.len() * 8).unwrap_or(u32::MAX);
        let mut needed = 0u32;
        // SAFETY: the buffer is writable for `bytes` bytes.
        let status = unsafe {
            NtQuerySystemInformation(
                SystemProcessInformation,
                buffer.as_mut_ptr().cast(),
                bytes,
                &mut needed,
            )
        };
        if status == STATUS_INFO_LENGTH_MISMATCH {
            let wanted = (needed as usize).max(bytes as usize) + 64 * 1024;
            buffer = vec![0; wanted.div_ceil(8)];
            continue;
        }
        if status < 0 {
            return Err(std::io::Error::other(format!(
                "NtQuerySystemInformation(SystemProcessInformation) failed with NTSTATUS {status:#010x}"
            )));
        }
        return Ok(buffer);
    }
}

impl From<&SYSTEM_PROCESS_INFORMATION> for TableEntry {
    fn from(entry: &SYSTEM_PROCESS_INFORMATION) -> Self {
        // The documented struct hides in `Reserved1` the fields
        // WorkingSetPrivateSize, HardFaultCount, NumberOfThreadsHighWatermark,
        // CycleTime and then CreateTime at byte 24; that layout has held
        // since Windows 2000, and Wine fills it the same way.
        let create_time = i64::from_ne_bytes(entry.Reserved1[24..32].try_into().expect("8 bytes"));
        TableEntry {
            create_time,
            threads: entry.NumberOfThreads,
            handles: entry.HandleCount,
            // Windows fills both fields with the commit charge; Wine only
            // PagefileUsage.
            private_bytes: entry.PrivatePageCount.max(entry.PagefileUsage) as u64,
            virtual_bytes: entry.VirtualSize as u64,
        }
    }
}
