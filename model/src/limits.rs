//! The limits every snapshot must respect, in one place.
//!
//! The server refuses a snapshot that breaks any of them (HTTP 422, naming
//! the field), so that hostile or broken input cannot fill its store; the
//! agent fits what it collects within them before sending, so that one odd
//! process (a 2 MiB command line, a start time centuries off) can never get
//! a whole host's snapshots refused. Both read the numbers from here.
//!
//! Lengths are in bytes of UTF-8, as `str::len` counts them.

use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Most processes one snapshot may hold; far above any real machine.
pub const MAX_PROCESSES: usize = 200_000;

/// Longest host id, hostname and other host facts, in bytes.
pub const MAX_HOST_FIELD: usize = 256;

/// Longest process name and user name, in bytes.
pub const MAX_NAME: usize = 1024;

/// Longest executable path, in bytes.
pub const MAX_PATH: usize = 4096;

/// Most bytes of one process's command line, all arguments together
/// (see [`cmd_bytes`]). Linux allows up to 2 MiB; agents cut longer ones.
pub const MAX_CMD_BYTES: usize = 256 * 1024;

/// Shortest and longest agent interval accepted, in milliseconds
/// (100 ms to one day).
pub const INTERVAL_MS: RangeInclusive<u64> = 100..=86_400_000;

/// The longest agent interval accepted, [`INTERVAL_MS`]'s end as a duration.
pub const MAX_INTERVAL: Duration = Duration::from_millis(*INTERVAL_MS.end());

/// The length of a command line as [`MAX_CMD_BYTES`] counts it: the bytes
/// of all its arguments together.
pub fn cmd_bytes(cmd: &[String]) -> usize {
    cmd.iter().map(String::len).sum()
}

/// Whether `time` can be stored: times are kept as nanoseconds since 1970
/// in 64 bits, which covers the years 1677 to 2262.
pub fn is_storable_time(time: DateTime<Utc>) -> bool {
    time.timestamp_nanos_opt().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_counts_the_bytes_of_all_its_arguments() {
        assert_eq!(cmd_bytes(&[]), 0);
        assert_eq!(cmd_bytes(&["ab".into(), String::new(), "é".into()]), 4);
    }

    #[test]
    fn storable_times_run_from_1677_to_2262() {
        let at = |year, month, day| {
            chrono::NaiveDate::from_ymd_opt(year, month, day)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        };
        assert!(is_storable_time(at(1677, 9, 22)));
        assert!(is_storable_time(DateTime::UNIX_EPOCH));
        assert!(is_storable_time(at(2262, 4, 11)));
        assert!(!is_storable_time(at(1677, 9, 21)));
        assert!(!is_storable_time(at(2262, 4, 12)));
        // What sysinfo once gave as start times under Wine.
        assert!(!is_storable_time(at(21086, 1, 1)));
    }
}
