//! The numeric fields of a process sample, named once.
//!
//! The store's encoding, its roll-ups and the series API all walk
//! [`Metric::ALL`], so adding a numeric column to [`ProcessSample`] is one
//! line in the `metrics!` list below (plus the wire struct, the collector
//! and the page), not a tour of SQL strings.
//!
//! Every value is kept as a `u64` "raw" code that round-trips exactly
//! (floats by their bits, absent values as 0 and present ones shifted up by
//! one), so what is read back equals what the agent sent, bit for bit.

use procmon_model::{ProcessSample, ProcessStatus};

/// How one Rust field type becomes a raw code and back.
pub trait RawValue: Sized {
    /// The exact code of the value.
    fn to_raw(&self) -> u64;
    /// The value of a code made by [`to_raw`](Self::to_raw).
    fn from_raw(raw: u64) -> Self;
    /// The value for charts and roll-ups; `None` when absent or not a
    /// quantity.
    fn chart(raw: u64) -> Option<f64>;
}

impl RawValue for u64 {
    fn to_raw(&self) -> u64 {
        *self
    }
    fn from_raw(raw: u64) -> Self {
        raw
    }
    fn chart(raw: u64) -> Option<f64> {
        Some(raw as f64)
    }
}

impl RawValue for f32 {
    fn to_raw(&self) -> u64 {
        u64::from(self.to_bits())
    }
    fn from_raw(raw: u64) -> Self {
        f32::from_bits(raw as u32)
    }
    fn chart(raw: u64) -> Option<f64> {
        Some(f64::from(Self::from_raw(raw)))
    }
}

impl RawValue for Option<u64> {
    fn to_raw(&self) -> u64 {
        // u64::MAX itself cannot be told from "absent + 1" overflow, so it
        // is kept as u64::MAX - 1: only ever a bogus reading.
        self.map_or(0, |v| v.min(u64::MAX - 1) + 1)
    }
    fn from_raw(raw: u64) -> Self {
        raw.checked_sub(1)
    }
    fn chart(raw: u64) -> Option<f64> {
        Self::from_raw(raw).map(|v| v as f64)
    }
}

impl RawValue for Option<u32> {
    fn to_raw(&self) -> u64 {
        self.map_or(0, |v| u64::from(v) + 1)
    }
    fn from_raw(raw: u64) -> Self {
        raw.checked_sub(1).map(|v| v as u32)
    }
    fn chart(raw: u64) -> Option<f64> {
        Self::from_raw(raw).map(f64::from)
    }
}

impl RawValue for ProcessStatus {
    fn to_raw(&self) -> u64 {
        STATUSES.iter().position(|s| s == self).unwrap_or(0) as u64
    }
    fn from_raw(raw: u64) -> Self {
        STATUSES
            .get(raw as usize)
            .copied()
            .unwrap_or(ProcessStatus::Unknown)
    }
    fn chart(_raw: u64) -> Option<f64> {
        None
    }
}

/// Status codes as stored; append only, never reorder.
const STATUSES: [ProcessStatus; 8] = [
    ProcessStatus::Unknown,
    ProcessStatus::Running,
    ProcessStatus::Sleeping,
    ProcessStatus::DiskSleep,
    ProcessStatus::Idle,
    ProcessStatus::Stopped,
    ProcessStatus::Zombie,
    ProcessStatus::Dead,
];

macro_rules! metrics {
    ($( $(#[$doc:meta])* $variant:ident => $field:ident : $ty:ty ),* $(,)?) => {
        /// A numeric field of [`ProcessSample`]: what changes from one
        /// sample to the next, as opposed to a process's facts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric {
            $( $(#[$doc])* $variant, )*
        }

        impl Metric {
            /// Every metric, in the order the encoding and the series use.
            /// Append only: stored data refers to metrics by position.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant),*];

            /// The field's name on the wire, e.g. "cpu_percent".
            pub fn name(self) -> &'static str {
                match self { $(Metric::$variant => stringify!($field),)* }
            }

            /// The field's exact code in `p`.
            pub fn raw(self, p: &ProcessSample) -> u64 {
                match self { $(Metric::$variant => RawValue::to_raw(&p.$field),)* }
            }

            /// Sets the field of `p` from its code.
            pub fn set_raw(self, p: &mut ProcessSample, raw: u64) {
                match self { $(Metric::$variant => p.$field = <$ty as RawValue>::from_raw(raw),)* }
            }

            /// The value of a code for charts and roll-ups.
            pub fn chart(self, raw: u64) -> Option<f64> {
                match self { $(Metric::$variant => <$ty as RawValue>::chart(raw),)* }
            }
        }
    };
}

metrics! {
    /// Scheduling state; kept and replayed, but not charted.
    Status => status: ProcessStatus,
    /// CPU % since the previous sample (100 = one core).
    CpuPercent => cpu_percent: f32,
    /// Resident memory (working set).
    MemoryRssBytes => memory_rss_bytes: u64,
    /// Virtual memory size.
    MemoryVirtualBytes => memory_virtual_bytes: u64,
    /// Private bytes (Windows' commit charge).
    MemoryPrivateBytes => memory_private_bytes: Option<u64>,
    /// Threads.
    Threads => threads: Option<u32>,
    /// Handles or open file descriptors.
    Handles => handles: Option<u32>,
    /// Bytes read from storage since start.
    DiskReadBytes => disk_read_bytes: u64,
    /// Bytes written to storage since start.
    DiskWrittenBytes => disk_written_bytes: u64,
}

impl Metric {
    /// The metrics that are quantities, for series and roll-ups.
    pub fn charted() -> impl Iterator<Item = Metric> {
        Self::ALL
            .iter()
            .copied()
            .filter(|m| m.chart(m.raw(&ZERO_PROBE)).is_some())
    }

    /// Position in [`Metric::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|&m| m == self).unwrap_or(0)
    }

    /// The metric named `name` on the wire.
    pub fn by_name(name: &str) -> Option<Metric> {
        Self::ALL.iter().copied().find(|m| m.name() == name)
    }
}

/// A sample whose optional numbers are all present, to ask each metric
/// whether it charts.
static ZERO_PROBE: std::sync::LazyLock<ProcessSample> =
    std::sync::LazyLock::new(|| ProcessSample {
        pid: 0,
        parent_pid: None,
        name: String::new(),
        exe: None,
        cmd: Vec::new(),
        user: None,
        start_time: chrono::DateTime::UNIX_EPOCH,
        status: ProcessStatus::Unknown,
        cpu_percent: 0.0,
        memory_rss_bytes: 0,
        memory_virtual_bytes: 0,
        memory_private_bytes: Some(0),
        threads: Some(0),
        handles: Some(0),
        disk_read_bytes: 0,
        disk_written_bytes: 0,
    });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_codes_round_trip() {
        let mut p = ZERO_PROBE.clone();
        p.cpu_percent = 12.345;
        p.memory_private_bytes = None;
        p.threads = Some(u32::MAX);
        p.status = ProcessStatus::Zombie;
        p.disk_read_bytes = u64::MAX;
        let mut q = ZERO_PROBE.clone();
        for &m in Metric::ALL {
            m.set_raw(&mut q, m.raw(&p));
        }
        assert_eq!(p, q);
    }

    #[test]
    fn status_is_kept_but_not_charted() {
        let charted: Vec<_> = Metric::charted().map(Metric::name).collect();
        assert!(!charted.contains(&"status"));
        assert!(charted.contains(&"cpu_percent"));
        assert!(charted.contains(&"memory_private_bytes"));
        assert_eq!(charted.len(), Metric::ALL.len() - 1);
    }
}
