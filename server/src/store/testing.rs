//! Small helpers for the store's unit tests, on the shared fixtures.

use chrono::DateTime;
use procmon_model::ProcessSample;

/// The shared fixture process `pid`, at a fixed time.
pub fn process(pid: u32) -> ProcessSample {
    let at = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
    procmon_model::fixtures::process(pid, at)
}

/// The processes ordered by pid, to compare sets.
pub fn sorted(processes: impl IntoIterator<Item = ProcessSample>) -> Vec<ProcessSample> {
    let mut v: Vec<_> = processes.into_iter().collect();
    v.sort_by_key(|p| (p.pid, p.start_time));
    v
}
