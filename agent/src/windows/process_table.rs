//! The kernel's process table, read whole with one
//! `NtQuerySystemInformation(SystemProcessInformation)` call: every
//! process's pid, parent, name, start time, CPU times, memory, threads,
//! handles and I/O at once, without opening any process (Task Manager reads
//! the same table).

use std::time::Duration;

use chrono::{DateTime, Utc};

use windows_sys::Wdk::System::SystemInformation::{
    NtQuerySystemInformation, SystemProcessInformation,
};
use windows_sys::Win32::Foundation::{STATUS_INFO_LENGTH_MISMATCH, UNICODE_STRING};
use windows_sys::Win32::System::WindowsProgramming::SYSTEM_PROCESS_INFORMATION;

/// One process's row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    pub pid: u32,
    /// The process that created this one (it may have exited since, and its
    /// pid may even belong to another process now).
    pub parent_pid: Option<u32>,
    /// The executable's file name, e.g. "services.exe"; empty for the Idle
    /// process.
    pub name: String,
    /// Creation time as a FILETIME; with the pid it identifies the process
    /// (pids are reused). 0 for the System and Idle processes.
    pub create_time: i64,
    /// User plus kernel time, all threads, since the process started.
    pub cpu_time: Duration,
    /// Number of threads.
    pub threads: u32,
    /// Open handles.
    pub handles: u32,
    /// Working set: resident memory.
    pub working_set: u64,
    /// Private bytes: the commit charge, as Process Explorer shows it.
    pub private_bytes: u64,
    /// Virtual size: all reserved address space.
    pub virtual_bytes: u64,
    /// Bytes read and written by I/O calls (files, devices, pipes), since
    /// the process started.
    pub read_bytes: u64,
    pub written_bytes: u64,
}

/// The fields of a table row, as Windows lays them out since Windows 2000
/// (x64); the documented `SYSTEM_PROCESS_INFORMATION` names most of them
/// only `Reserved`. Wine fills the same layout.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawEntry {
    next_entry_offset: u32,
    number_of_threads: u32,
    working_set_private_size: i64,
    hard_fault_count: u32,
    number_of_threads_high_watermark: u32,
    cycle_time: u64,
    create_time: i64,
    user_time: i64,
    kernel_time: i64,
    image_name: UNICODE_STRING,
    base_priority: i32,
    unique_process_id: usize,
    inherited_from_unique_process_id: usize,
    handle_count: u32,
    session_id: u32,
    unique_process_key: usize,
    peak_virtual_size: usize,
    virtual_size: usize,
    page_fault_count: u32,
    peak_working_set_size: usize,
    working_set_size: usize,
    quota_peak_paged_pool_usage: usize,
    quota_paged_pool_usage: usize,
    quota_peak_non_paged_pool_usage: usize,
    quota_non_paged_pool_usage: usize,
    pagefile_usage: usize,
    peak_pagefile_usage: usize,
    private_page_count: usize,
    read_operation_count: i64,
    write_operation_count: i64,
    other_operation_count: i64,
    read_transfer_count: i64,
    write_transfer_count: i64,
    other_transfer_count: i64,
}

// The documented struct and ours must agree, field for field.
const _: () = assert!(size_of::<RawEntry>() == size_of::<SYSTEM_PROCESS_INFORMATION>());
const _: () = assert!(
    std::mem::offset_of!(RawEntry, unique_process_id)
        == std::mem::offset_of!(SYSTEM_PROCESS_INFORMATION, UniqueProcessId)
);
const _: () = assert!(
    std::mem::offset_of!(RawEntry, private_page_count)
        == std::mem::offset_of!(SYSTEM_PROCESS_INFORMATION, PrivatePageCount)
);

/// A FILETIME (100 ns units since 1601-01-01 UTC) as a UTC time; `None`
/// for 0, which the table gives the System and Idle processes. What the
/// collector reports as a process's start time, and what an action's start
/// time is checked against (`super::actions`): one conversion for both, so
/// they agree to the 100 ns.
pub fn filetime_to_utc(filetime: i64) -> Option<DateTime<Utc>> {
    const UNIX_EPOCH_AS_FILETIME: i64 = 116_444_736_000_000_000;
    let since_unix = filetime
        .checked_sub(UNIX_EPOCH_AS_FILETIME)
        .filter(|_| filetime > 0)?;
    DateTime::from_timestamp(
        since_unix.div_euclid(10_000_000),
        (since_unix.rem_euclid(10_000_000) * 100) as u32,
    )
}

/// Reads the table; keeps its buffer between readings, so a steady machine
/// costs one system call and no reallocation per reading.
pub struct KernelProcessTable {
    /// u64 elements align the first entry as its fields need.
    buffer: Vec<u64>,
}

impl KernelProcessTable {
    pub fn new() -> Self {
        KernelProcessTable {
            buffer: vec![0; 32 * 1024],
        }
    }

    /// Every process now.
    pub fn read(&mut self) -> std::io::Result<Vec<TableEntry>> {
        self.query()?;
        let bytes = self.buffer.len() * 8;
        let base = self.buffer.as_ptr().cast::<u8>();
        let mut table = Vec::with_capacity(256);
        let mut offset = 0usize;
        while offset + size_of::<RawEntry>() <= bytes {
            // SAFETY: in bounds (checked above), and the OS wrote a whole
            // entry at every offset it linked to. Copied out unaligned:
            // Windows aligns entries to 8 bytes, Wine only to 4.
            let raw = unsafe { base.add(offset).cast::<RawEntry>().read_unaligned() };
            // SAFETY: the name points into the buffer, which is alive and
            // unchanged until the next query.
            let name = unsafe { image_name(&raw.image_name) };
            table.push(TableEntry::new(&raw, name));
            if raw.next_entry_offset == 0 {
                break;
            }
            offset += raw.next_entry_offset as usize;
        }
        Ok(table)
    }

    /// The raw table into the buffer, grown while processes appear between
    /// the size query and the read.
    fn query(&mut self) -> std::io::Result<()> {
        loop {
            let bytes = u32::try_from(self.buffer.len() * 8).unwrap_or(u32::MAX);
            let mut needed = 0u32;
            // SAFETY: the buffer is writable for `bytes` bytes.
            let status = unsafe {
                NtQuerySystemInformation(
                    SystemProcessInformation,
                    self.buffer.as_mut_ptr().cast(),
                    bytes,
                    &mut needed,
                )
            };
            if status == STATUS_INFO_LENGTH_MISMATCH {
                let wanted = (needed as usize).max(bytes as usize) + 64 * 1024;
                self.buffer = vec![0; wanted.div_ceil(8)];
                continue;
            }
            if status < 0 {
                return Err(std::io::Error::other(format!(
                    "NtQuerySystemInformation(SystemProcessInformation) failed with NTSTATUS {status:#010x}"
                )));
            }
            return Ok(());
        }
    }
}

/// The image name, or "" for none (the Idle process).
///
/// # Safety
///
/// `name.Buffer` is null or points to `name.Length` readable bytes.
unsafe fn image_name(name: &UNICODE_STRING) -> String {
    if name.Buffer.is_null() || name.Length == 0 {
        return String::new();
    }
    // SAFETY: as the caller promises. Read unaligned-safe: UTF-16 units
    // copied out one by one.
    let units: Vec<u16> = (0..usize::from(name.Length / 2))
        .map(|i| unsafe { name.Buffer.add(i).read_unaligned() })
        .collect();
    String::from_utf16_lossy(&units)
}

impl TableEntry {
    fn new(raw: &RawEntry, name: String) -> Self {
        let ticks = |t: i64| u64::try_from(t).unwrap_or(0);
        let pid = raw.unique_process_id as u32;
        TableEntry {
            pid,
            // The Idle process (0) has no parent; the System process (4)
            // names 0, which is no parent either.
            parent_pid: u32::try_from(raw.inherited_from_unique_process_id)
                .ok()
                .filter(|&parent| parent != 0 && parent != pid),
            name,
            create_time: raw.create_time,
            // CPU times count 100 ns units.
            cpu_time: Duration::from_nanos(
                ticks(raw.user_time)
                    .saturating_add(ticks(raw.kernel_time))
                    .saturating_mul(100),
            ),
            threads: raw.number_of_threads,
            handles: raw.handle_count,
            working_set: raw.working_set_size as u64,
            // Windows fills both fields with the commit charge; Wine only
            // PagefileUsage.
            private_bytes: raw.private_page_count.max(raw.pagefile_usage) as u64,
            virtual_bytes: raw.virtual_size as u64,
            read_bytes: ticks(raw.read_transfer_count),
            written_bytes: ticks(raw.write_transfer_count),
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
