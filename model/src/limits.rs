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

use crate::{ProcessSample, ProcessUpdate};

/// Most processes one snapshot may hold; far above any real machine.
pub const MAX_PROCESSES: usize = 200_000;

/// Longest host id, hostname and other host facts, in bytes.
pub const MAX_HOST_FIELD: usize = 256;

/// Most labels one host may carry ([`crate::HostInfo::labels`]).
pub const MAX_LABELS: usize = 32;

/// Longest host label, in bytes (a label is ASCII, so also characters).
pub const MAX_LABEL: usize = 64;

/// What a host label is, as a regular expression: 1 to [`MAX_LABEL`] of
/// letters, digits and `_ . : = / -` (so `prod`, `role=db`, `dc/eu-1`).
/// No spaces or commas: labels are written as a comma-separated list.
pub const LABEL_PATTERN: &str = "^[A-Za-z0-9_.:=/-]{1,64}$";

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

/// Most logical CPUs one host may report ([`crate::HostLoad::cpu_per_core`]).
pub const MAX_CORES: usize = 4096;

/// Highest CPU % of one process: 100 per core, for up to [`MAX_CORES`]
/// cores. Sums of many such values stay finite in the 32-bit floats the API
/// reports.
pub const MAX_CPU_PERCENT: f32 = 100.0 * MAX_CORES as f32;

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

/// `Ok` when `label` is a host label as [`LABEL_PATTERN`] says, else why
/// not (without naming it: the caller says where it came from).
pub fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("a label cannot be empty".to_owned());
    }
    if label.len() > MAX_LABEL {
        return Err(format!(
            "it is {} bytes long, more than the {MAX_LABEL} a label may have",
            label.len()
        ));
    }
    match label.chars().find(|&c| !is_label_char(c)) {
        Some(c) => Err(format!(
            "{c:?} cannot be in a label: use letters, digits and _ . : = / -"
        )),
        None => Ok(()),
    }
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.:=/-".contains(c)
}

/// Whether `time` can be stored: times are kept as nanoseconds since 1970
/// in 64 bits, which covers the years 1677 to 2262.
pub fn is_storable_time(time: DateTime<Utc>) -> bool {
    time.timestamp_nanos_opt().is_some()
}

/// Reads a list of at most `limit` items, refusing the next one as soon
/// as it begins, so the rest is never allocated; `each` may refuse an item
/// too (a total it adds to). `what` names the list in errors ("arguments
/// one process may send").
fn read_list<'de, D, T, F>(
    deserializer: D,
    limit: usize,
    what: &'static str,
    each: F,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
    F: FnMut(&T) -> Result<(), String>,
{
    struct List<T, F> {
        limit: usize,
        what: &'static str,
        each: F,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: serde::Deserialize<'de>, F: FnMut(&T) -> Result<(), String>> Visitor<'de>
        for List<T, F>
    {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {} {}", self.limit, self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element::<T>()? {
                if items.len() == self.limit {
                    return Err(de::Error::custom(format_args!(
                        "more than the {} {}",
                        self.limit, self.what
                    )));
                }
                (self.each)(&item).map_err(de::Error::custom)?;
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(List {
        limit,
        what,
        each,
        item: std::marker::PhantomData,
    })
}

/// Counts command-line arguments against [`MAX_SNAPSHOT_CMD_ARGS`], for
/// [`read_list`]: the error once a list's processes have more in all.
fn count_args(args: &mut usize, more: usize) -> Result<(), String> {
    *args += more;
    if *args > MAX_SNAPSHOT_CMD_ARGS {
        return Err(format!(
            "the command lines have more than the {MAX_SNAPSHOT_CMD_ARGS} arguments one snapshot \
             may hold"
        ));
    }
    Ok(())
}

/// Reads a command line, refusing more than [`MAX_CMD_ARGS`] arguments as
/// soon as the next one begins, so the rest is never allocated.
pub(crate) fn deserialize_cmd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    read_list(
        deserializer,
        MAX_CMD_ARGS,
        "arguments one process may send",
        |_: &String| Ok(()),
    )
}

/// As [`deserialize_cmd`], for a command line that may be absent or
/// `null` (a change batch's, when it did not change).
pub(crate) fn deserialize_changed_cmd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct Cmd(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Cmd {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize_cmd(deserializer).map(Cmd)
        }
    }
    Ok(<Option<Cmd> as serde::Deserialize>::deserialize(deserializer)?.map(|Cmd(cmd)| cmd))
}

/// Reads a snapshot's processes (or a change batch's started ones),
/// refusing more than [`MAX_PROCESSES`] or more than
/// [`MAX_SNAPSHOT_CMD_ARGS`] arguments in all as soon as they are reached.
pub(crate) fn deserialize_processes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ProcessSample>, D::Error> {
    let mut args = 0;
    read_list(
        deserializer,
        MAX_PROCESSES,
        "processes one snapshot may hold",
        |p: &ProcessSample| count_args(&mut args, p.cmd.len()),
    )
}

/// Reads a change batch's changed processes, bounded as a snapshot's.
pub(crate) fn deserialize_updates<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ProcessUpdate>, D::Error> {
    let mut args = 0;
    read_list(
        deserializer,
        MAX_PROCESSES,
        "processes one snapshot may hold",
        |u: &ProcessUpdate| count_args(&mut args, u.cmd.as_ref().map_or(0, Vec::len)),
    )
}

/// Reads a change batch's exited pids: no more than a snapshot's processes.
pub(crate) fn deserialize_pids<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<u32>, D::Error> {
    read_list(
        deserializer,
        MAX_PROCESSES,
        "processes one snapshot may hold",
        |_: &u32| Ok(()),
    )
}

/// Reads a host's CPU use per core: no more than [`MAX_CORES`].
pub(crate) fn deserialize_cores<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<f32>, D::Error> {
    read_list(
        deserializer,
        MAX_CORES,
        "cores one host may have",
        |_: &f32| Ok(()),
    )
}

/// Reads a host's labels: no more than [`MAX_LABELS`], refused as soon as
/// the next begins (what each may be is checked with the rest of the host).
pub(crate) fn deserialize_labels<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    read_list(
        deserializer,
        MAX_LABELS,
        "labels one host may carry",
        |_: &String| Ok(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_short_plain_ascii_as_its_pattern_says() {
        for good in [
            "prod",
            "role=db",
            "dc/eu-1",
            "a",
            "v1.2_x:y",
            &"x".repeat(MAX_LABEL),
        ] {
            assert_eq!(check_label(good), Ok(()), "{good}");
        }
        let error = check_label("").unwrap_err();
        assert!(error.contains("empty"), "{error}");
        let error = check_label(&"x".repeat(MAX_LABEL + 1)).unwrap_err();
        assert!(error.contains("65 bytes"), "{error}");
        for (bad, shown) in [("a b", "' '"), ("a,b", "','"), ("prod\u{e9}", "'\u{e9}'")] {
            let error = check_label(bad).unwrap_err();
            assert!(error.contains(shown), "{bad}: {error}");
        }
        // The pattern the schema states says the same.
        assert!(LABEL_PATTERN.ends_with(&format!("{{1,{MAX_LABEL}}}$")));
    }

    #[test]
    fn too_many_labels_are_refused_while_reading() {
        let labels = |n: usize| format!("[{}]", vec!["\"a\""; n].join(","));
        let read = |json: &str| {
            deserialize_labels(&mut serde_json::Deserializer::from_str(json))
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&labels(MAX_LABELS)).unwrap().len(), MAX_LABELS);
        let error = read(&labels(MAX_LABELS + 1)).unwrap_err();
        assert!(error.contains("more than the 32 labels"), "{error}");
    }

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

    /// A change batch's lists are bounded as a snapshot's, while read.
    #[test]
    fn a_change_batch_is_bounded_while_read() {
        let batch = |extra: &str| {
            format!(
                r#"{{"version":1,"id":"00000000-0000-0000-0000-000000000001",
                "base_id":"00000000-0000-0000-0000-000000000002",
                "collected_at":"2026-01-01T00:00:00Z","interval_ms":2000,
                "host_id":"h"{extra}}}"#
            )
        };
        let read = |json: String| {
            serde_json::from_str::<crate::ChangeBatch>(&json).map_err(|e| e.to_string())
        };
        let list = |item: &str, n: usize| vec![item; n].join(",");

        let pids = read(batch(&format!(
            r#","exited":[{}]"#,
            list("1", MAX_PROCESSES)
        )));
        assert_eq!(pids.unwrap().exited.len(), MAX_PROCESSES);
        let error = read(batch(&format!(
            r#","exited":[{}]"#,
            list("1", MAX_PROCESSES + 1)
        )));
        assert!(error
            .unwrap_err()
            .contains("more than the 200000 processes"));

        let cmd = format!(r#"{{"pid":1,"cmd":[{}]}}"#, list(r#""""#, MAX_CMD_ARGS + 1));
        let error = read(batch(&format!(r#","changed":[{cmd}]"#))).unwrap_err();
        assert!(error.contains("more than the 4096 arguments"), "{error}");
        let null = read(batch(r#","changed":[{"pid":1,"cmd":null}]"#)).unwrap();
        assert_eq!(null.changed[0].cmd, None);

        // 245 updates of 4096 arguments: over a million in all.
        let cmd = format!(r#"{{"pid":1,"cmd":[{}]}}"#, list(r#""""#, MAX_CMD_ARGS));
        let error = read(batch(&format!(r#","changed":[{}]"#, list(&cmd, 245)))).unwrap_err();
        assert!(error.contains("more than the 1000000 arguments"), "{error}");

        let load = |cores: usize| {
            format!(
                r#","load":{{"cpu_per_core":[{}],"memory_used_bytes":0,
                "memory_available_bytes":0,"swap_total_bytes":0,"swap_used_bytes":0}}"#,
                list("1.5", cores)
            )
        };
        assert!(read(batch(&load(MAX_CORES))).is_ok());
        let error = read(batch(&load(MAX_CORES + 1))).unwrap_err();
        assert!(error.contains("more than the 4096 cores"), "{error}");
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
