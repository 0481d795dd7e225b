//! The on-disk spool: order, bounds, damage and a real kill mid-write.

use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};

use procmon_agent::retry::{Random, XorShift};
use procmon_agent::spool::{Kind, Record, Spool, SpoolError, SpoolOptions};
use uuid::Uuid;

#[path = "support/logs.rs"]
mod logs;
use logs::logs_of;

/// Small segments, so a few records span several.
fn small(max_bytes: u64) -> SpoolOptions {
    SpoolOptions {
        max_bytes: NonZeroU64::new(max_bytes).unwrap(),
        segment_bytes: NonZeroU64::new(4096).unwrap(),
        segment_records: NonZeroU32::new(8).unwrap(),
    }
}

fn id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x5001, n)
}

fn number(id: Uuid) -> u64 {
    id.as_u64_pair().1
}

/// A payload that says which record it belongs to, of varied length.
fn payload(n: u64, max_len: u64) -> Vec<u8> {
    let len = 16 + (n * 7919) % max_len;
    (0..len).map(|i| (n.wrapping_mul(31) + i) as u8).collect()
}

/// Appends record `n`: a keyframe when the spool wants one.
fn append(spool: &mut Spool, n: u64) -> Kind {
    let kind = if spool.wants_keyframe() {
        Kind::Keyframe
    } else {
        Kind::Delta
    };
    spool.append(kind, id(n), &payload(n, 300)).unwrap();
    kind
}

/// Reads and acknowledges the oldest record.
fn ack_oldest(spool: &mut Spool) -> Record {
    let record = spool.peek().unwrap().expect("a record to acknowledge");
    assert!(spool.ack(record.id).unwrap());
    record
}

/// The oldest record's id.
fn oldest(spool: &mut Spool) -> Uuid {
    spool.peek().unwrap().expect("a record").id
}

/// Reads and acknowledges everything left.
fn drain(spool: &mut Spool) -> Vec<Record> {
    let mut read = Vec::new();
    while let Some(record) = spool.peek().unwrap() {
        // The same record until it is acknowledged.
        assert_eq!(spool.peek().unwrap().as_ref(), Some(&record));
        assert!(spool.ack(record.id).unwrap());
        read.push(record);
    }
    assert!(spool.is_empty());
    read
}

fn numbers(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| number(r.id)).collect()
}

fn assert_intact(records: &[Record], max_len: u64) {
    for record in records {
        let n = number(record.id);
        assert_eq!(record.payload, payload(n, max_len), "record {n}");
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_new_segment_must_start_with_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    assert!(spool.wants_keyframe());
    let refused = spool.append(Kind::Delta, id(0), b"changes");
    assert!(
        matches!(refused, Err(SpoolError::KeyframeNeeded)),
        "{refused:?}"
    );
    assert!(spool.is_empty());
    spool.append(Kind::Keyframe, id(0), b"full").unwrap();
    assert!(!spool.wants_keyframe());
    spool.append(Kind::Delta, id(1), b"changes").unwrap();
    assert_eq!(spool.len(), 2);
}

#[test]
fn records_come_back_in_order_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    let kinds: Vec<Kind> = (0..50).map(|n| append(&mut spool, n)).collect();
    assert_eq!(kinds[0], Kind::Keyframe);
    assert!(
        kinds[1..].contains(&Kind::Keyframe),
        "rolls to new segments"
    );
    assert!(segment_files(dir.path()).len() > 2);

    // Half sent, then a restart: the rest comes back, not the sent half.
    for n in 0..20 {
        let record = spool.peek().unwrap().unwrap();
        assert_eq!(number(record.id), n);
        assert_eq!(record.kind, kinds[n as usize]);
        assert!(spool.ack(record.id).unwrap());
    }
    drop(spool);
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    assert_eq!(spool.len(), 30);
    // After a restart, appends go to a new segment, so a keyframe first.
    assert!(spool.wants_keyframe());
    assert!(matches!(
        spool.append(Kind::Delta, id(50), &payload(50, 300)),
        Err(SpoolError::KeyframeNeeded)
    ));
    for n in 50..60 {
        append(&mut spool, n);
    }
    let read = drain(&mut spool);
    assert_eq!(numbers(&read), (20..60).collect::<Vec<_>>());
    assert_intact(&read, 300);
    for (record, kind) in read.iter().zip(&kinds[20..]) {
        assert_eq!(record.kind, *kind);
    }
    // Sent segments are deleted.
    assert!(segment_files(dir.path()).len() <= 1);
    drop(spool);
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    assert!(spool.peek().unwrap().is_none());
}

#[test]
fn when_full_the_oldest_segments_go_counted_and_the_rest_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let max = 16 * 1024;
    let mut spool = Spool::open(dir.path(), small(max)).unwrap();
    let first = dir.path().join("000000000001.seg");
    let ((), logs) = logs_of(|| {
        for n in 0..300 {
            append(&mut spool, n);
            assert!(spool.bytes() <= max, "{} bytes", spool.bytes());
        }
    });
    // Each drop is logged, with how many and why.
    let line = logs
        .lines()
        .find(|line| line.contains(&first.display().to_string()))
        .expect("the first drop is logged");
    assert!(
        line.contains("WARN")
            && line.contains("dropped_records=8")
            && line.contains("spool is full"),
        "{line}"
    );
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, spool.bytes());
    let dropped = spool.dropped_records();
    assert!(dropped > 0);
    let read = drain(&mut spool);
    // What is left is the newest records, whole, from a keyframe on.
    assert_eq!(dropped + read.len() as u64, 300);
    assert_eq!(numbers(&read), (dropped..300).collect::<Vec<_>>());
    assert_eq!(read[0].kind, Kind::Keyframe);
    assert_intact(&read, 300);
}

#[test]
fn the_segment_being_read_may_be_dropped_and_reading_goes_on_at_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let max = 16 * 1024;
    let mut spool = Spool::open(dir.path(), small(max)).unwrap();
    for n in 0..5 {
        append(&mut spool, n);
    }
    // Half-way through the first segment (and a record peeked) ...
    for _ in 0..3 {
        ack_oldest(&mut spool);
    }
    let in_flight = spool.peek().unwrap().unwrap();
    assert_eq!(number(in_flight.id), 3);
    for n in 5..300 {
        append(&mut spool, n);
    }
    // ... it is gone, with only its unsent records counted; the record
    // that was being sent cannot be acknowledged or skipped any more, and
    // that leaves the records after it alone.
    let next = spool.peek().unwrap().unwrap();
    assert_ne!(next.id, in_flight.id);
    assert!(!spool.ack(in_flight.id).unwrap());
    assert_eq!(spool.skip_segment(in_flight.id).unwrap(), 0);
    assert_eq!(spool.peek().unwrap(), Some(next));
    let read = drain(&mut spool);
    assert_eq!(read[0].kind, Kind::Keyframe);
    assert_eq!(spool.dropped_records() + read.len() as u64, 300 - 3);
    assert_eq!(
        numbers(&read),
        (300 - read.len() as u64..300).collect::<Vec<_>>()
    );
}

/// Two segments of 8 records each, closed.
fn two_segments(dir: &Path) -> Vec<PathBuf> {
    let mut spool = Spool::open(dir, small(1 << 20)).unwrap();
    for n in 0..16 {
        append(&mut spool, n);
    }
    drop(spool);
    let files = segment_files(dir);
    assert_eq!(files.len(), 2);
    files
}

#[test]
fn a_tail_cut_mid_record_is_skipped_and_appends_go_to_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_segments(dir.path());
    let last = &files[1];
    let len = last.metadata().unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 5)
        .unwrap();

    let (spool, logs) = logs_of(|| Spool::open(dir.path(), small(1 << 20)).unwrap());
    let mut spool = spool;
    // Named with the file and the offset where the cut record starts.
    let cut_at = std::fs::metadata(last).unwrap().len();
    assert!(
        logs.contains("WARN")
            && logs.contains(&last.display().to_string())
            && logs.contains(&format!("offset={cut_at}")),
        "{logs}"
    );
    assert_eq!(spool.len(), 15);
    assert!(spool.wants_keyframe());
    append(&mut spool, 100);
    append(&mut spool, 101);
    assert_eq!(segment_files(dir.path()).len(), 3);
    let read = drain(&mut spool);
    let expected: Vec<u64> = (0..15).chain([100, 101]).collect();
    assert_eq!(numbers(&read), expected);
    assert_intact(&read, 300);
}

#[test]
fn a_damaged_record_ends_its_segment_and_the_next_segment_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_segments(dir.path());
    // A byte in the middle of the first segment flipped: the records after
    // it in that segment have lost their base, the second segment has not.
    let first = &files[0];
    let mut bytes = std::fs::read(first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(first, &bytes).unwrap();

    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    let read = drain(&mut spool);
    let kept = numbers(&read);
    let before: Vec<u64> = kept.iter().copied().filter(|n| *n < 8).collect();
    assert!(!before.is_empty() && before.len() < 8, "{kept:?}");
    assert_eq!(before, (0..before.len() as u64).collect::<Vec<_>>());
    assert_eq!(kept[before.len()..], (8..16).collect::<Vec<_>>());
    assert_intact(&read, 300);
}

#[test]
fn damage_found_while_reading_skips_to_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    for n in 0..16 {
        append(&mut spool, n);
    }
    // Damaged after it was opened (a disk error, say).
    let first = &segment_files(dir.path())[0];
    let mut bytes = std::fs::read(first).unwrap();
    let len = bytes.len();
    bytes[len - 3] ^= 0x01;
    std::fs::write(first, &bytes).unwrap();

    let read = drain(&mut spool);
    assert_eq!(numbers(&read), (0..7).chain(8..16).collect::<Vec<_>>());
    assert_eq!(spool.dropped_records(), 1);
}

#[test]
fn a_damaged_cursor_means_sending_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    for n in 0..4 {
        append(&mut spool, n);
    }
    ack_oldest(&mut spool);
    ack_oldest(&mut spool);
    drop(spool);
    std::fs::write(dir.path().join("cursor"), b"garbage").unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    assert_eq!(numbers(&drain(&mut spool)), [0, 1, 2, 3]);
}

#[test]
fn skipping_a_segment_goes_to_the_next_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    for n in 0..12 {
        append(&mut spool, n);
    }
    ack_oldest(&mut spool);
    let from = oldest(&mut spool);
    assert_eq!(spool.skip_segment(from).unwrap(), 7);
    let record = spool.peek().unwrap().unwrap();
    assert_eq!((number(record.id), record.kind), (8, Kind::Keyframe));
    // Skipping the open segment closes it: the next append is a keyframe.
    assert_eq!(spool.skip_segment(record.id).unwrap(), 4);
    assert!(spool.is_empty());
    assert!(spool.wants_keyframe());
    append(&mut spool, 12);
    drop(spool);
    let mut spool = Spool::open(dir.path(), small(1 << 20)).unwrap();
    assert_eq!(numbers(&drain(&mut spool)), [12]);
}

#[test]
fn a_record_over_a_quarter_of_the_maximum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small(16 * 1024)).unwrap();
    let error = spool.append(Kind::Keyframe, id(0), &[0; 5000]).unwrap_err();
    assert!(matches!(error, SpoolError::TooLarge { .. }), "{error:?}");
    assert!(error.to_string().contains("spool_max_mb"), "{error}");
}

/// Random appends, reads, acks, skips and restarts against a plain queue
/// of what should be there.
#[test]
fn behaves_as_a_queue_of_segments_under_random_steps() {
    let dropped = run_against_model(64 << 20, 50, 20261126);
    assert_eq!(dropped, 0, "the bound is far off");
}

/// The same with a small bound: what goes is always whole segments, the
/// oldest, and the count says how many unsent records went.
#[test]
fn drops_whole_oldest_segments_under_random_steps() {
    let dropped = run_against_model(8 * 1024, 65, 7);
    assert!(dropped > 0, "the bound is reached");
}

/// Runs random steps on a spool bounded to `max_bytes` and on a model of
/// it, `append_percent` of them appends, most others reads; the unsent
/// records dropped in all.
fn run_against_model(max_bytes: u64, append_percent: u64, seed: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut random = XorShift::new(seed);
    let mut spool = Spool::open(dir.path(), small(max_bytes)).unwrap();
    // Segments of what is unsent, oldest first, as the model sees them.
    let mut model: VecDeque<VecDeque<u64>> = VecDeque::new();
    let mut open_in_model = false;
    let mut next = 0;
    let mut total_dropped = 0;
    for _ in 0..1500 {
        match random.next_u64() % 100 {
            step if step < append_percent => {
                let dropped_before = spool.dropped_records();
                let kind = append(&mut spool, next);
                if kind == Kind::Keyframe || !open_in_model {
                    assert_eq!(kind, Kind::Keyframe);
                    model.push_back(VecDeque::new());
                    open_in_model = true;
                }
                model.back_mut().unwrap().push_back(next);
                next += 1;
                let mut dropped = spool.dropped_records() - dropped_before;
                total_dropped += dropped;
                while dropped > 0 {
                    let oldest = model.pop_front().expect("a segment to drop");
                    let unsent = oldest.len() as u64;
                    assert!(unsent <= dropped, "only whole segments go");
                    dropped -= unsent;
                }
            }
            0..=89 => {
                while model.front().is_some_and(|s| s.is_empty()) && model.len() > 1 {
                    model.pop_front();
                }
                let expected = model.front().and_then(|s| s.front().copied());
                let got = spool.peek().unwrap();
                assert_eq!(got.as_ref().map(|r| number(r.id)), expected);
                if let Some(record) = got {
                    assert_eq!(record.payload, payload(record.id.as_u64_pair().1, 300));
                    assert!(spool.ack(record.id).unwrap());
                    model.front_mut().unwrap().pop_front();
                }
            }
            90..=94 => {
                while model.front().is_some_and(|s| s.is_empty()) && model.len() > 1 {
                    model.pop_front();
                }
                let expected = model.front().map_or(0, |s| s.len() as u64);
                let from = model
                    .front()
                    .and_then(|s| s.front())
                    .map_or(id(u64::MAX), |n| id(*n));
                assert_eq!(spool.skip_segment(from).unwrap(), expected);
                // With nothing unsent there is nothing to skip.
                if expected > 0 {
                    model.front_mut().unwrap().clear();
                    if model.len() == 1 {
                        open_in_model = false;
                    }
                }
            }
            _ => {
                drop(spool);
                spool = Spool::open(dir.path(), small(max_bytes)).unwrap();
                open_in_model = false;
            }
        }
        let unsent: usize = model.iter().map(VecDeque::len).sum();
        assert_eq!(spool.len(), unsent as u64);
        assert!(spool.bytes() <= max_bytes);
    }
    total_dropped
}

/// Where the child below writes; set only in the child.
const CHILD_DIR: &str = "PROCMON_SPOOL_TEST_CHILD_DIR";
/// Payload lengths in the kill test, long enough that a write may be cut.
const KILL_PAYLOAD: u64 = 40_000;

fn kill_options() -> SpoolOptions {
    SpoolOptions {
        max_bytes: NonZeroU64::new(1 << 30).unwrap(),
        segment_bytes: NonZeroU64::new(256 * 1024).unwrap(),
        segment_records: NonZeroU32::new(16).unwrap(),
    }
}

/// Not a test of its own: the body of the child process that
/// `a_writer_killed_mid_write_leaves_a_spool_that_reopens_whole` kills.
/// Appends until killed, saying each record it has appended.
#[test]
fn child_that_appends_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mut spool = Spool::open(PathBuf::from(dir), kill_options()).unwrap();
    for n in 0.. {
        let kind = if spool.wants_keyframe() {
            Kind::Keyframe
        } else {
            Kind::Delta
        };
        spool
            .append(kind, id(n), &payload(n, KILL_PAYLOAD))
            .unwrap();
        println!("appended {n}");
    }
}

#[test]
fn a_writer_killed_mid_write_leaves_a_spool_that_reopens_whole() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_that_appends_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut appended = None;
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            let n: u64 = n.parse().unwrap();
            appended = Some(n);
            if n >= 200 {
                break;
            }
        }
    }
    // SIGKILL on Unix: no destructor, no flush, possibly mid-write.
    child.kill().unwrap();
    child.wait().unwrap();
    let appended = appended.expect("the child appended");

    let mut spool = Spool::open(dir.path(), kill_options()).unwrap();
    let read = drain(&mut spool);
    // Everything the child reported is there, whole and in order, and
    // perhaps a few it wrote before it could say so.
    assert!(read.len() as u64 > appended, "{} of {appended}", read.len());
    assert_eq!(numbers(&read), (0..read.len() as u64).collect::<Vec<_>>());
    assert_eq!(read[0].kind, Kind::Keyframe);
    assert_intact(&read, KILL_PAYLOAD);

    // And it goes on: a new segment from a keyframe.
    let next = read.len() as u64;
    assert!(spool.wants_keyframe());
    spool
        .append(Kind::Keyframe, id(next), &payload(next, KILL_PAYLOAD))
        .unwrap();
    spool
        .append(Kind::Delta, id(next + 1), &payload(next + 1, KILL_PAYLOAD))
        .unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), kill_options()).unwrap();
    assert_eq!(numbers(&drain(&mut spool)), [next, next + 1]);
}
