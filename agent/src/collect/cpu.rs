//! CPU % of each process between two readings of it, from the total CPU
//! time the OS reports for it. Platform-neutral: any reader that reads
//! every process's CPU time at once can use it (today the Windows one).
#![cfg_attr(not(windows), allow(dead_code))]

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Remembers each process's CPU time from one reading to the next.
///
/// `K` must identify a process for its whole life, e.g. pid plus start
/// time, never the pid alone: a pid reused by a new process must never be
/// measured against the CPU time of the process that had it before.
///
/// - 100 % is one core busy for the whole span (as `top` and sysinfo
///   count), so a process can exceed 100 on a machine with several cores.
/// - A process the previous reading did not see has started since (or the
///   reading before failed; see [`CpuMeter::begin`]): all of its CPU time
///   was used within the span, so it is measured from zero over the whole
///   span. Its first figure is then a fair average, neither 0 nor blown
///   up by dividing by its short life.
/// - On the first reading there is no span and every process gets 0.
pub(crate) struct CpuMeter<K> {
    previous: HashMap<K, Duration>,
    current: HashMap<K, Duration>,
    previous_at: Option<Instant>,
    span: Option<Duration>,
}

impl<K: Hash + Eq> CpuMeter<K> {
    pub(crate) fn new() -> Self {
        CpuMeter {
            previous: HashMap::new(),
            current: HashMap::new(),
            previous_at: None,
            span: None,
        }
    }

    /// Starts a new reading, whose CPU times were read at about `at`. Call
    /// it only for a reading that succeeded: the span then runs from the
    /// last good reading, and every process it saw is measured correctly.
    pub(crate) fn begin(&mut self, at: Instant) {
        self.span = self
            .previous_at
            .map(|previous| at.saturating_duration_since(previous))
            .filter(|span| !span.is_zero());
        self.previous_at = Some(at);
        std::mem::swap(&mut self.previous, &mut self.current);
        // Processes that have exited are forgotten here.
        self.current.clear();
    }

    /// CPU % of process `key` since the previous reading; `cpu` is all the
    /// CPU time (user plus kernel) it has used since it started.
    pub(crate) fn percent(&mut self, key: K, cpu: Duration) -> f32 {
        let before = self.previous.get(&key).copied().unwrap_or(Duration::ZERO);
        self.current.insert(key, cpu);
        match self.span {
            Some(span) => {
                (cpu.saturating_sub(before).as_secs_f64() / span.as_secs_f64() * 100.0) as f32
            }
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn percent_is_cpu_time_over_the_span_with_100_for_one_core() {
        let mut meter = CpuMeter::new();
        let t0 = Instant::now();
        meter.begin(t0);
        assert_eq!(meter.percent((10, 1), 500 * MS), 0.0, "no span yet");
        assert_eq!(meter.percent((11, 1), Duration::ZERO), 0.0);
        meter.begin(t0 + 1000 * MS);
        // 250 ms in 1 s: a quarter of one core.
        assert!((meter.percent((10, 1), 750 * MS) - 25.0).abs() < 0.01);
        // Two cores busy.
        assert!((meter.percent((11, 1), 2000 * MS) - 200.0).abs() < 0.01);
    }

    #[test]
    fn a_reused_pid_is_never_measured_against_the_old_process() {
        let mut meter = CpuMeter::new();
        let t0 = Instant::now();
        meter.begin(t0);
        meter.percent((10, 1), 90_000 * MS);
        meter.begin(t0 + 1000 * MS);
        // Pid 10 again, started later: a new process with 100 ms of its own,
        // not 89.9 s less than the old one (which would saturate at 0).
        let new = meter.percent((10, 2), 100 * MS);
        assert!((new - 10.0).abs() < 0.01, "{new}");
    }

    #[test]
    fn a_process_started_between_readings_counts_all_its_time_over_the_span() {
        let mut meter = CpuMeter::new();
        let t0 = Instant::now();
        meter.begin(t0);
        meter.percent((1, 1), Duration::ZERO);
        meter.begin(t0 + 2000 * MS);
        let started_since = meter.percent((2, 5), 500 * MS);
        assert!((started_since - 25.0).abs() < 0.01, "{started_since}");
    }

    #[test]
    fn exited_processes_are_forgotten() {
        let mut meter = CpuMeter::new();
        let t0 = Instant::now();
        meter.begin(t0);
        meter.percent((1, 1), 100 * MS);
        meter.begin(t0 + 1000 * MS);
        meter.begin(t0 + 2000 * MS);
        assert!(meter.previous.is_empty() && meter.current.is_empty());
    }
}
