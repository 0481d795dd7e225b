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

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::ProcessSample;

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

/// Most arguments of one process's command line. An empty argument is 3
/// bytes of JSON but a 24-byte string in memory: without a count, a 24 MB
/// body of 8 million empty arguments would cost the server 200 MB to read
/// while counting as 0 bytes of command line. Snapshots with more are
/// refused while they are read, before the rest of the body is parsed.
pub const MAX_CMD_ARGS: usize = 4096;

/// Most command-line arguments of all processes of one snapshot together,
/// for the same reason: at most 24 MB of strings, whatever the body.
pub const MAX_SNAPSHOT_CMD_ARGS: usize = 1_000_000;

/// Highest CPU % of one process: 100 per core, for up to 4096 cores. Sums
/// of many such values stay finite in the 32-bit floats the API reports.
pub const MAX_CPU_PERCENT: f32 = 100.0 * 4096.0;

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

/// Reads a command line, refusing more than [`MAX_CMD_ARGS`] arguments as
/// soon as the next one begins, so the rest is never allocated.
pub(crate) fn deserialize_cmd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct Args;
    impl<'de> Visitor<'de> for Args {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {MAX_CMD_ARGS} strings")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(arg) = seq.next_element()? {
                if args.len() == MAX_CMD_ARGS {
                    return Err(de::Error::custom(format_args!(
                        "a cmd has more than the {MAX_CMD_ARGS} arguments one process may send"
                    )));
                }
                args.push(arg);
            }
            Ok(args)
        }
    }
    deserializer.deserialize_seq(Args)
}

/// Reads a snapshot's processes, refusing more than [`MAX_PROCESSES`] or
/// more than [`MAX_SNAPSHOT_CMD_ARGS`] arguments in all as soon as they
/// are reached.
pub(crate) fn deserialize_processes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ProcessSample>, D::Error> {
    struct Processes;
    impl<'de> Visitor<'de> for Processes {
        type Value = Vec<ProcessSample>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {MAX_PROCESSES} processes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut processes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            let mut args = 0;
            while let Some(process) = seq.next_element::<ProcessSample>()? {
                if processes.len() == MAX_PROCESSES {
                    return Err(de::Error::custom(format_args!(
                        "more than the {MAX_PROCESSES} processes one snapshot may hold"
                    )));
                }
                args += process.cmd.len();
                if args > MAX_SNAPSHOT_CMD_ARGS {
                    return Err(de::Error::custom(format_args!(
                        "the command lines have more than the {MAX_SNAPSHOT_CMD_ARGS} arguments \
                         one snapshot may hold"
                    )));
                }
                processes.push(process);
            }
            Ok(processes)
        }
    }
    deserializer.deserialize_seq(Processes)
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
    fn too_many_arguments_are_refused_while_reading() {
        let cmd = |n: usize| format!("[{}]", vec!["\"\""; n].join(","));
        let read = |json: &str| {
            deserialize_cmd(&mut serde_json::Deserializer::from_str(json))
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&cmd(MAX_CMD_ARGS)).unwrap().len(), MAX_CMD_ARGS);
        let error = read(&cmd(MAX_CMD_ARGS + 1)).unwrap_err();
        assert!(error.contains("more than the 4096 arguments"), "{error}");
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
