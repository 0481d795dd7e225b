//! A bounded on-disk spool of outgoing messages, so that nothing is lost
//! while the server cannot be reached.
//!
//! Messages are opaque payloads (compressed by the caller) with a small
//! header: a [`Kind`] and the message id. They go into numbered segment
//! files in one directory (`000000000001.seg`, ...), oldest first:
//!
//! ```text
//! segment = "PMSPOOL1" frame*
//! frame   = len: u32 LE | crc32(body): u32 LE | body
//! body    = kind: u8 ('K' or 'D') | message id: 16 bytes | payload
//! ```
//!
//! Every segment starts with a [`Kind::Keyframe`] (a full snapshot), and a
//! [`Kind::Delta`] is a change batch against the record before it. So a
//! segment can always be decoded from its own start, and when the spool is
//! full it drops the oldest *whole* segments: what remains still decodes.
//!
//! Durability: a segment is fsynced when it is closed and the read cursor
//! each time it is written; appends are not. A killed agent loses nothing
//! that reached the OS (the page cache outlives the process); a power cut
//! may lose the tail of the open segment, which is the newest data and the
//! least costly to lose, and costs no fsync per snapshot. A record cut short
//! or damaged is found by its length and CRC when the spool is opened again,
//! and the segment ends there.
//!
//! The spool is used by one process at a time; two agents given the same
//! directory would mix their segments.
//!
//! The directory and every file in it are private to the agent's user
//! (`crate::private`): the snapshots hold command lines, which can hold
//! secrets. A spool left wider by an older agent is narrowed at open.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::private;

/// The bytes every segment file starts with.
const SEGMENT_MAGIC: &[u8; 8] = b"PMSPOOL1";
const MAGIC_LEN: u64 = SEGMENT_MAGIC.len() as u64;
/// Length and CRC in front of every record.
const FRAME_HEADER: u64 = 8;
/// Kind and message id in front of every payload.
const RECORD_HEADER: u64 = 1 + 16;
const SEGMENT_EXTENSION: &str = "seg";
/// Where the oldest unsent record is: segment number and offset.
const CURSOR_FILE: &str = "cursor";
const CURSOR_TEMP: &str = "cursor.tmp";

/// The spool's size on disk when nothing says otherwise: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// A new segment is due once the open one holds this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1024 * 1024;
/// ... or this many records, so that one damaged record costs at most this
/// many (the records after it in its segment have lost their base).
pub const DEFAULT_SEGMENT_RECORDS: u32 = 256;

/// What a record holds, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full snapshot: needs nothing before it.
    Keyframe,
    /// A change batch against the record before it in the same segment.
    Delta,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Keyframe => b'K',
            Kind::Delta => b'D',
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            b'K' => Some(Kind::Keyframe),
            b'D' => Some(Kind::Delta),
            _ => None,
        }
    }
}

/// One spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Whether it decodes alone.
    pub kind: Kind,
    /// The message id the server deduplicates by.
    pub id: Uuid,
    /// The bytes to send, as the caller appended them.
    pub payload: Vec<u8>,
}

/// How large the spool and its segments may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The most the segment files may hold together. When an append would
    /// pass it, the oldest segments are dropped, unsent records and all.
    /// One record may take at most a quarter of it.
    pub max_bytes: NonZeroU64,
    /// A new segment is due ([`Spool::wants_keyframe`]) once the open one
    /// holds this many bytes (at most a quarter of `max_bytes`)...
    pub segment_bytes: NonZeroU64,
    /// ... or this many records.
    pub segment_records: NonZeroU32,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            max_bytes: NonZeroU64::new(DEFAULT_MAX_BYTES).expect("not zero"),
            segment_bytes: NonZeroU64::new(DEFAULT_SEGMENT_BYTES).expect("not zero"),
            segment_records: NonZeroU32::new(DEFAULT_SEGMENT_RECORDS).expect("not zero"),
        }
    }
}

impl SpoolOptions {
    /// The default segment sizes with a total of `max_bytes`.
    pub fn with_max_bytes(max_bytes: NonZeroU64) -> SpoolOptions {
        SpoolOptions {
            max_bytes,
            ..SpoolOptions::default()
        }
    }

    /// Bytes after which a new segment is due.
    fn soft_segment_bytes(&self) -> u64 {
        self.segment_bytes.get().min(self.max_bytes.get() / 4)
    }

    /// The largest frame (header included) one record may take.
    fn max_frame(&self) -> u64 {
        (self.max_bytes.get() / 4).min(u64::from(u32::MAX))
    }
}

/// Why the spool refused an append or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool file {} cannot be used: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The open segment has no keyframe to decode a delta against (it is
    /// new, or was closed), or it is too long: append a full snapshot.
    #[error("a change batch needs a full snapshot before it in a new spool segment: append a keyframe first")]
    KeyframeNeeded,
    #[error(
        "a message of {len} bytes is larger than the spool takes ({max} bytes, a quarter of its \
         maximum size): raise spool_max_mb"
    )]
    TooLarge { len: u64, max: u64 },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One segment file, as far as it decodes.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Where its last whole record ends; anything after it is ignored.
    bytes: u64,
    records: u64,
}

/// A bounded on-disk queue of [`Record`]s, read oldest first.
///
/// ```no_run
/// # use procmon_agent::spool::{Kind, Spool, SpoolOptions};
/// # fn send(_: &[u8]) -> bool { true }
/// let mut spool = Spool::open("spool", SpoolOptions::default())?;
/// let kind = if spool.wants_keyframe() { Kind::Keyframe } else { Kind::Delta };
/// spool.append(kind, uuid::Uuid::new_v4(), b"compressed message")?;
/// while let Some(record) = spool.peek()? {
///     if !send(&record.payload) {
///         break;
///     }
///     spool.ack(record.id)?;
/// }
/// # Ok::<(), procmon_agent::spool::SpoolError>(())
/// ```
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    options: SpoolOptions,
    /// Oldest first. The reader is always in the front one; when `writer`
    /// is set, the back one is open for appends.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next_seq: u64,
    /// Where the oldest unsent record of the front segment starts, and how
    /// many records of it come before.
    read_offset: u64,
    read_index: u64,
    /// The front segment's file, open for reading.
    read_file: Option<(u64, File)>,
    /// What [`peek`](Self::peek) returned, and its frame's length.
    peeked: Option<(Record, u64)>,
    total_bytes: u64,
    dropped: u64,
}

impl Spool {
    /// Opens the spool in `dir` (created if missing), taking up the
    /// segments of an earlier run in order and its read cursor. A record
    /// cut short or damaged ends its segment there, with a warning. New
    /// records always go to a new segment, so the first append must be a
    /// keyframe.
    pub fn open(dir: impl Into<PathBuf>, options: SpoolOptions) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        private::dir(&dir).map_err(io_error(&dir))?;
        narrow_files(&dir)?;
        let cursor = read_cursor(&dir);
        let mut spool = Spool {
            dir,
            options,
            segments: VecDeque::new(),
            writer: None,
            next_seq: 1,
            read_offset: MAGIC_LEN,
            read_index: 0,
            read_file: None,
            peeked: None,
            total_bytes: 0,
            dropped: 0,
        };
        let mut found = segment_files(&spool.dir)?;
        found.sort_unstable();
        if let Some((seq, _)) = cursor {
            spool.next_seq = spool.next_seq.max(seq + 1);
        }
        for (seq, path) in found {
            spool.next_seq = spool.next_seq.max(seq + 1);
            match cursor {
                // Sent entirely; its deletion was cut short.
                Some((sent, _)) if seq < sent => {
                    remove(&path)?;
                    continue;
                }
                _ => {}
            }
            let Some(scanned) = scan_segment(seq, &path)? else {
                continue;
            };
            if scanned.segment.records == 0 {
                remove(&path)?;
                continue;
            }
            if spool.segments.is_empty() {
                if let Some((sent, offset)) = cursor.filter(|(sent, _)| *sent == seq) {
                    spool.start_reading_at(&scanned, sent, offset);
                }
            }
            spool.total_bytes += scanned.segment.bytes;
            spool.segments.push_back(scanned.segment);
        }
        spool.settle()?;
        Ok(spool)
    }

    /// Where the oldest unsent record is after a restart: the cursor's
    /// offset in its segment, if that is where a record starts.
    fn start_reading_at(&mut self, scanned: &Scanned, seq: u64, offset: u64) {
        if offset >= scanned.segment.bytes {
            self.read_offset = scanned.segment.bytes;
            self.read_index = scanned.segment.records;
        } else if let Ok(index) = scanned.starts.binary_search(&offset) {
            self.read_offset = offset;
            self.read_index = index as u64;
        } else {
            // Resending is safe: the server stores each message id once.
            tracing::warn!(
                file = %scanned.segment.path.display(),
                offset,
                "the spool's read cursor points inside a record of segment {seq}; \
                 its records are sent again from the start"
            );
        }
    }

    /// The directory the segments are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the next record must be a [`Kind::Keyframe`] to start a new
    /// segment: there is no open segment, or it is full. A
    /// [`Kind::Delta`] is still taken while the open segment is under
    /// twice its size.
    pub fn wants_keyframe(&self) -> bool {
        match (&self.writer, self.segments.back()) {
            (Some(_), Some(open)) => {
                open.bytes >= self.options.soft_segment_bytes()
                    || open.records >= u64::from(self.options.segment_records.get())
            }
            _ => true,
        }
    }

    /// Whether a delta must be refused: no open segment, or one at twice
    /// its size, so that a caller ignoring [`wants_keyframe`] still cannot
    /// grow one segment without end.
    fn refuses_delta(&self) -> bool {
        match (&self.writer, self.segments.back()) {
            (Some(_), Some(open)) => {
                open.bytes >= 2 * self.options.soft_segment_bytes()
                    || open.records >= 2 * u64::from(self.options.segment_records.get())
            }
            _ => true,
        }
    }

    /// Appends a record. A [`Kind::Keyframe`] starts a new segment when one
    /// is due ([`wants_keyframe`](Self::wants_keyframe)); a
    /// [`Kind::Delta`] is refused with [`SpoolError::KeyframeNeeded`] when
    /// there is no open segment to add it to. When the spool would pass its
    /// maximum, its oldest segments are dropped first, with a warning.
    pub fn append(&mut self, kind: Kind, id: Uuid, payload: &[u8]) -> Result<(), SpoolError> {
        let frame_len = FRAME_HEADER + RECORD_HEADER + payload.len() as u64;
        let max = self.options.max_frame();
        if frame_len > max {
            return Err(SpoolError::TooLarge {
                len: frame_len,
                max,
            });
        }
        match kind {
            Kind::Delta if self.refuses_delta() => return Err(SpoolError::KeyframeNeeded),
            Kind::Delta => {}
            Kind::Keyframe if self.wants_keyframe() => self.roll()?,
            Kind::Keyframe => {}
        }
        self.make_room(frame_len)?;
        let frame = encode_frame(kind, id, payload);
        let (Some(writer), Some(open)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            unreachable!("an open segment after roll");
        };
        if let Err(source) = writer.write_all(&frame) {
            // Cut the partial record off (if that fails too, the next open
            // finds it by its CRC) and start afresh with a keyframe.
            let _ = writer.set_len(open.bytes);
            self.writer = None;
            return Err(SpoolError::Io {
                path: open.path.clone(),
                source,
            });
        }
        open.bytes += frame_len;
        open.records += 1;
        self.total_bytes += frame_len;
        Ok(())
    }

    /// Closes the open segment (fsynced, so that what was appended survives
    /// a power cut) and opens the next one.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.close_writer()?;
        let seq = self.next_seq;
        let path = self.dir.join(segment_name(seq));
        let mut file = private::create_new_file(&path).map_err(io_error(&path))?;
        if let Err(source) = file.write_all(SEGMENT_MAGIC) {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(SpoolError::Io { path, source });
        }
        sync_dir(&self.dir);
        self.next_seq += 1;
        self.total_bytes += MAGIC_LEN;
        self.segments.push_back(Segment {
            seq,
            path,
            bytes: MAGIC_LEN,
            records: 0,
        });
        self.writer = Some(file);
        // The segment just closed may have been sent already.
        self.settle()
    }

    fn close_writer(&mut self) -> Result<(), SpoolError> {
        if let (Some(file), Some(open)) = (self.writer.take(), self.segments.back()) {
            file.sync_all().map_err(io_error(&open.path))?;
        }
        Ok(())
    }

    /// Drops the oldest closed segments until `frame_len` more bytes fit.
    fn make_room(&mut self, frame_len: u64) -> Result<(), SpoolError> {
        let max = self.options.max_bytes.get();
        while self.total_bytes + frame_len > max {
            let front_is_open = self.writer.is_some() && self.segments.len() == 1;
            if self.segments.is_empty() || front_is_open {
                // Cannot happen: a record is at most a quarter of the
                // maximum and the open segment at most half of it.
                break;
            }
            let front = &self.segments[0];
            let unsent = front.records - self.read_index;
            tracing::warn!(
                file = %front.path.display(),
                dropped_records = unsent,
                max_bytes = max,
                "the spool is full: dropped its oldest segment, {unsent} records that were \
                 never sent, to make room for new ones (the server has been unreachable or \
                 refusing for long; raise spool_max_mb to keep more)"
            );
            self.dropped += unsent;
            self.remove_front()?;
        }
        Ok(())
    }

    /// Deletes the front segment; the reader moves to the next one's start.
    fn remove_front(&mut self) -> Result<(), SpoolError> {
        let Some(front) = self.segments.pop_front() else {
            return Ok(());
        };
        if self.segments.is_empty() {
            self.writer = None;
        }
        self.read_file = None;
        self.peeked = None;
        self.read_offset = MAGIC_LEN;
        self.read_index = 0;
        self.total_bytes -= front.bytes;
        remove(&front.path)
    }

    /// Deletes closed segments that have been read to the end.
    fn settle(&mut self) -> Result<(), SpoolError> {
        while let Some(front) = self.segments.front() {
            let is_open = self.writer.is_some() && self.segments.len() == 1;
            if is_open || self.read_index < front.records {
                break;
            }
            self.remove_front()?;
        }
        Ok(())
    }

    /// The oldest unsent record, the same one until it is acknowledged
    /// ([`ack`](Self::ack)) or given up ([`skip_segment`](Self::skip_segment)),
    /// or dropped to make room by an [`append`](Self::append). A record
    /// found damaged now ends its segment, with a warning, and the next
    /// segment's first record is returned.
    pub fn peek(&mut self) -> Result<Option<Record>, SpoolError> {
        Ok(self.oldest()?.map(|(record, _)| record.clone()))
    }

    /// The oldest unsent record and its frame's length, read once.
    fn oldest(&mut self) -> Result<Option<&(Record, u64)>, SpoolError> {
        while self.peeked.is_none() {
            let Some(front) = self.segments.front() else {
                return Ok(None);
            };
            if self.read_index >= front.records {
                return Ok(None);
            }
            let (seq, path, limit) = (front.seq, front.path.clone(), front.bytes);
            if !matches!(&self.read_file, Some((open, _)) if *open == seq) {
                let file = File::open(&path).map_err(io_error(&path))?;
                self.read_file = Some((seq, file));
            }
            let (_, file) = self.read_file.as_mut().expect("opened above");
            file.seek(SeekFrom::Start(self.read_offset))
                .map_err(io_error(&path))?;
            let why = match decode_frame(file, limit - self.read_offset).map_err(io_error(&path))? {
                Decoded::Record(record, frame_len) => {
                    self.peeked = Some((record, frame_len));
                    break;
                }
                Decoded::Bad(why) => why,
                // Not while records remain; as damage if ever.
                Decoded::End => "the segment ends before its last record",
            };
            let offset = self.read_offset;
            let lost = self.skip_front();
            tracing::warn!(
                file = %path.display(),
                offset,
                dropped_records = lost,
                "a spooled record is damaged ({why}): the rest of its segment is skipped"
            );
            self.dropped += lost;
            self.settle()?;
        }
        Ok(self.peeked.as_ref())
    }

    /// Whether `id` is the oldest unsent record's.
    fn is_oldest(&mut self, id: Uuid) -> Result<bool, SpoolError> {
        Ok(self.oldest()?.is_some_and(|(record, _)| record.id == id))
    }

    /// Marks record `id` sent, if it is still the oldest unsent one, and
    /// persists the read position. `false` if it is not (it was dropped to
    /// make room while it was being sent): then nothing changes.
    ///
    /// The position is written to a small file, replaced atomically and
    /// fsynced; a crash between a send and its ack means that record is
    /// sent again after the restart, which is harmless because the server
    /// stores each message id once.
    pub fn ack(&mut self, id: Uuid) -> Result<bool, SpoolError> {
        if !self.is_oldest(id)? {
            return Ok(false);
        }
        let Some((_, frame_len)) = self.peeked.take() else {
            unreachable!("is_oldest read it");
        };
        self.read_offset += frame_len;
        self.read_index += 1;
        self.settle()?;
        self.write_cursor()?;
        Ok(true)
    }

    /// Gives up record `id`, if it is still the oldest unsent one, and the
    /// rest of its segment (say, after the server refused it for good, so
    /// the deltas after it cannot apply): the next record read is the next
    /// segment's keyframe, and the next append must be a keyframe if this
    /// was the open segment. Returns how many unsent records were given up,
    /// 0 if `id` is not the oldest (it was dropped to make room).
    pub fn skip_segment(&mut self, id: Uuid) -> Result<u64, SpoolError> {
        if !self.is_oldest(id)? {
            return Ok(0);
        }
        let skipped = self.skip_front();
        self.settle()?;
        self.write_cursor()?;
        Ok(skipped)
    }

    /// Moves the reader to the end of the front segment, closing it for
    /// appends if it is the open one.
    fn skip_front(&mut self) -> u64 {
        self.peeked = None;
        let Some(front) = self.segments.front() else {
            return 0;
        };
        let skipped = front.records - self.read_index;
        if self.segments.len() == 1 {
            self.writer = None;
        }
        self.read_index = front.records;
        self.read_offset = front.bytes;
        skipped
    }

    /// Records the read position: the front segment and offset, or, with
    /// nothing left, the number the next segment will have.
    fn write_cursor(&self) -> Result<(), SpoolError> {
        let (seq, offset) = match self.segments.front() {
            Some(front) => (front.seq, self.read_offset),
            None => (self.next_seq, MAGIC_LEN),
        };
        let mut bytes = Vec::with_capacity(20);
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend_from_slice(&offset.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
        let temp = self.dir.join(CURSOR_TEMP);
        // Left by a crash between writing and renaming.
        remove(&temp)?;
        let mut file = private::create_new_file(&temp).map_err(io_error(&temp))?;
        file.write_all(&bytes).map_err(io_error(&temp))?;
        file.sync_all().map_err(io_error(&temp))?;
        drop(file);
        let path = self.dir.join(CURSOR_FILE);
        fs::rename(&temp, &path).map_err(io_error(&path))
    }

    /// Records not yet acknowledged.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum::<u64>() - self.read_index
    }

    /// Whether every record has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the segment files hold.
    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Unsent records dropped since [`open`](Self::open): for room, or
    /// because they were damaged (not those given up by
    /// [`skip_segment`](Self::skip_segment)).
    pub fn dropped_records(&self) -> u64 {
        self.dropped
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // A clean stop keeps the open segment's tail through a power cut.
        let _ = self.close_writer();
    }
}

fn segment_name(seq: u64) -> String {
    format!("{seq:012}.{SEGMENT_EXTENSION}")
}

/// Narrows every file in the spool's directory to this user: all of them
/// are the spool's (segments, the cursor, a cursor cut short), and on
/// Windows a private folder does not keep others from a file that lets
/// them in.
fn narrow_files(dir: &Path) -> Result<(), SpoolError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if entry.file_type().map_err(io_error(&path))?.is_file() {
            private::narrow_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// The segment files in `dir` and their numbers; other files are left
/// alone.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXTENSION) {
            continue;
        }
        let seq = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .filter(|stem| stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(seq) = seq {
            found.push((seq, path));
        }
    }
    Ok(found)
}

/// A segment read through at open, and where each of its records starts.
struct Scanned {
    segment: Segment,
    starts: Vec<u64>,
}

/// Reads a segment through, checking every record. A damaged one ends the
/// segment: the file is cut there, with a warning naming the offset.
/// `None` for a file that is not a segment (left alone).
fn scan_segment(seq: u64, path: &Path) -> Result<Option<Scanned>, SpoolError> {
    let file = File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0; 8];
    if len < MAGIC_LEN {
        // Killed while creating it: nothing in it.
        return Ok(Some(Scanned {
            segment: Segment {
                seq,
                path: path.to_owned(),
                bytes: 0,
                records: 0,
            },
            starts: Vec::new(),
        }));
    }
    reader.read_exact(&mut magic).map_err(io_error(path))?;
    if &magic != SEGMENT_MAGIC {
        tracing::warn!(
            file = %path.display(),
            "not a spool segment (it does not start as one); left alone"
        );
        return Ok(None);
    }
    let mut offset = MAGIC_LEN;
    let mut starts = Vec::new();
    loop {
        match decode_frame(&mut reader, len - offset).map_err(io_error(path))? {
            Decoded::Record(record, frame_len) => {
                if starts.is_empty() && record.kind != Kind::Keyframe {
                    tracing::warn!(
                        file = %path.display(),
                        offset,
                        "a spool segment starts with a change batch, not a full snapshot: \
                         it is skipped"
                    );
                    offset = MAGIC_LEN;
                    break;
                }
                starts.push(offset);
                offset += frame_len;
            }
            Decoded::End => break,
            Decoded::Bad(why) => {
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    "the spool segment is damaged from this offset on ({why}), as when the \
                     agent was stopped mid-write: the records before it are kept, the rest \
                     is skipped"
                );
                break;
            }
        }
    }
    if offset < len {
        drop(reader);
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error(path))?;
        file.set_len(offset).map_err(io_error(path))?;
        file.sync_all().map_err(io_error(path))?;
    }
    Ok(Some(Scanned {
        segment: Segment {
            seq,
            path: path.to_owned(),
            bytes: offset,
            records: starts.len() as u64,
        },
        starts,
    }))
}

enum Decoded {
    /// A whole record and its frame's length.
    Record(Record, u64),
    /// Nothing left.
    End,
    /// A record cut short or damaged, and how.
    Bad(&'static str),
}

/// Reads one frame from `reader`, which has `remaining` bytes left.
fn decode_frame(reader: &mut impl Read, remaining: u64) -> io::Result<Decoded> {
    if remaining == 0 {
        return Ok(Decoded::End);
    }
    if remaining < FRAME_HEADER {
        return Ok(Decoded::Bad("its length is cut short"));
    }
    let mut header = [0; 8];
    reader.read_exact(&mut header)?;
    let len = u64::from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len < RECORD_HEADER {
        return Ok(Decoded::Bad("its length is too small to be a record"));
    }
    if len > remaining - FRAME_HEADER {
        return Ok(Decoded::Bad("it is cut short"));
    }
    let mut body = vec![0; len as usize];
    reader.read_exact(&mut body)?;
    if crc32fast::hash(&body) != crc {
        return Ok(Decoded::Bad("its checksum does not match"));
    }
    let Some(kind) = Kind::from_byte(body[0]) else {
        return Ok(Decoded::Bad("its kind is unknown"));
    };
    let id = Uuid::from_bytes(body[1..17].try_into().expect("16 bytes"));
    body.drain(..RECORD_HEADER as usize);
    Ok(Decoded::Record(
        Record {
            kind,
            id,
            payload: body,
        },
        FRAME_HEADER + len,
    ))
}

fn encode_frame(kind: Kind, id: Uuid, payload: &[u8]) -> Vec<u8> {
    let body_len = RECORD_HEADER as usize + payload.len();
    let mut frame = Vec::with_capacity(FRAME_HEADER as usize + body_len);
    frame.extend_from_slice(&(body_len as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.push(kind.byte());
    frame.extend_from_slice(id.as_bytes());
    frame.extend_from_slice(payload);
    let crc = crc32fast::hash(&frame[FRAME_HEADER as usize..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// The read position of an earlier run, if its file is whole.
fn read_cursor(dir: &Path) -> Option<(u64, u64)> {
    let path = dir.join(CURSOR_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read the spool's read cursor ({e}): every spooled record is sent again");
            return None;
        }
    };
    let whole = bytes.len() == 20 && crc32fast::hash(&bytes[..16]).to_le_bytes() == bytes[16..20];
    if !whole {
        // Resending is safe: the server stores each message id once.
        tracing::warn!(file = %path.display(), "the spool's read cursor is damaged: every spooled record is sent again");
        return None;
    }
    let seq = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let offset = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    Some((seq, offset))
}

fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SpoolError::Io {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Makes a new file's name durable. Windows has no directory fsync (and
/// needs none for this).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
