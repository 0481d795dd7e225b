//! Snapshots as changes: a chain is a keyframe (every process in full)
//! followed by deltas, each holding only what changed since the snapshot
//! before it in the chain. Both sides of the store use it: the writer keeps
//! each host's current chain in memory and encodes the next snapshot
//! against it; readers replay a chain to rebuild a snapshot exactly.
//!
//! Processes are numbered by slot within a chain (their order of first
//! appearance), so a delta names a process in a byte or two. A delta holds:
//! processes started (in full), processes exited (by slot), facts changed
//! (name, exe, command line, user, parent: in full) and numbers changed
//! (a mask of which [`Metric`]s moved, then each one's difference).

use std::collections::HashMap;

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Utc};
use procmon_model::ProcessSample;

use super::codec::{Reader, Writer};
use super::fields::Metric;

/// First byte of a payload: what it is.
const KEYFRAME: u8 = 1;
const DELTA: u8 = 2;

/// Delta operations.
const OP_START: u64 = 0;
const OP_EXIT: u64 = 1;
const OP_FACTS: u64 = 2;
const OP_NUMBERS: u64 = 3;

/// A process's identity on its host: pid and start time in nanoseconds.
pub type Identity = (u32, i64);

/// The identity of `p`. Start times were checked to fit before storing.
pub fn identity(p: &ProcessSample) -> Identity {
    (p.pid, nanos(p.start_time))
}

/// Nanoseconds since the epoch; times outside 1677-2262 were refused at the
/// API, and clamp here rather than fail.
pub fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// What one applied payload did, for the changes API.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A process appeared; its slot holds it now.
    Started(usize),
    /// A process went; this is how it last was.
    Exited(ProcessSample),
    /// A process's facts changed; this is how it was before.
    FactsChanged { slot: usize, before: ProcessSample },
}

/// The processes of a chain as of its newest applied snapshot.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    slots: Vec<Option<ProcessSample>>,
    index: HashMap<Identity, usize>,
}

impl Chain {
    /// The processes alive now, in slot order.
    pub fn processes(&self) -> impl Iterator<Item = &ProcessSample> {
        self.slots.iter().flatten()
    }

    /// The process in `slot`, if alive.
    pub fn slot(&self, slot: usize) -> Option<&ProcessSample> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// The slot of the process with this identity, if alive.
    pub fn find(&self, id: Identity) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// A payload holding every process in full.
    pub fn encode_keyframe(processes: &[ProcessSample]) -> Writer {
        let mut w = Writer::new(KEYFRAME);
        w.varint(processes.len() as u64);
        for p in processes {
            write_record(&mut w, p);
        }
        w
    }

    /// A payload that turns this chain's state into exactly `processes`.
    /// Its size follows what changed, not how many processes there are.
    pub fn encode_delta(&self, processes: &[ProcessSample]) -> Writer {
        let mut w = Writer::new(DELTA);
        let mut seen = vec![false; self.slots.len()];
        for p in processes {
            let Some(slot) = self.find(identity(p)) else {
                w.varint(OP_START);
                write_record(&mut w, p);
                continue;
            };
            seen[slot] = true;
            let old = self.slots[slot].as_ref().expect("indexed slots are alive");
            if !same_facts(old, p) {
                w.varint(OP_FACTS);
                w.varint(slot as u64);
                write_facts(&mut w, p);
            }
            let mut mask = 0u64;
            for (i, &m) in Metric::ALL.iter().enumerate() {
                if m.raw(old) != m.raw(p) {
                    mask |= 1 << i;
                }
            }
            if mask != 0 {
                w.varint(OP_NUMBERS);
                w.varint(slot as u64);
                w.varint(mask);
                for (i, &m) in Metric::ALL.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        w.zigzag(m.raw(p).wrapping_sub(m.raw(old)) as i64);
                    }
                }
            }
        }
        for (slot, was) in self.slots.iter().enumerate() {
            if was.is_some() && !seen[slot] {
                w.varint(OP_EXIT);
                w.varint(slot as u64);
            }
        }
        w
    }

    /// Applies a payload: a keyframe replaces the state, a delta changes
    /// it. With `events`, records what happened.
    pub fn apply(&mut self, payload: &[u8], events: Option<&mut Vec<Event>>) -> anyhow::Result<()> {
        let mut r = Reader::new(payload);
        match r.byte()? {
            KEYFRAME => {
                let count = r.varint()?;
                let mut fresh = Chain::default();
                for _ in 0..count {
                    fresh.push(read_record(&mut r)?)?;
                }
                ensure!(r.is_empty(), "keyframe has trailing bytes");
                if let Some(events) = events {
                    diff_events(self, &fresh, events);
                }
                *self = fresh;
                Ok(())
            }
            DELTA => self.apply_delta(&mut r, events),
            other => bail!("unknown payload kind {other}"),
        }
    }

    fn apply_delta(
        &mut self,
        r: &mut Reader<'_>,
        mut events: Option<&mut Vec<Event>>,
    ) -> anyhow::Result<()> {
        while !r.is_empty() {
            match r.varint()? {
                OP_START => {
                    let slot = self.push(read_record(r)?)?;
                    if let Some(events) = events.as_deref_mut() {
                        events.push(Event::Started(slot));
                    }
                }
                OP_EXIT => {
                    let slot = r.varint()? as usize;
                    let gone = self
                        .slots
                        .get_mut(slot)
                        .and_then(Option::take)
                        .with_context(|| format!("exit of empty slot {slot}"))?;
                    self.index.remove(&identity(&gone));
                    if let Some(events) = events.as_deref_mut() {
                        events.push(Event::Exited(gone));
                    }
                }
                OP_FACTS => {
                    let slot = r.varint()? as usize;
                    let p = self.live_mut(slot)?;
                    let before = events.is_some().then(|| p.clone());
                    read_facts(r, p)?;
                    if let (Some(events), Some(before)) = (events.as_deref_mut(), before) {
                        events.push(Event::FactsChanged { slot, before });
                    }
                }
                OP_NUMBERS => {
                    let slot = r.varint()? as usize;
                    let mask = r.varint()?;
                    let p = self.live_mut(slot)?;
                    for (i, &m) in Metric::ALL.iter().enumerate() {
                        if mask & (1 << i) != 0 {
                            let change = r.zigzag()? as u64;
                            m.set_raw(p, m.raw(p).wrapping_add(change));
                        }
                    }
                }
                other => bail!("unknown delta operation {other}"),
            }
        }
        Ok(())
    }

    /// The events that lead from `before` to this state, as if this
    /// state were a keyframe applied over it.
    pub fn events_since(&self, before: &Chain, events: &mut Vec<Event>) {
        diff_events(before, self, events);
    }

    fn live_mut(&mut self, slot: usize) -> anyhow::Result<&mut ProcessSample> {
        self.slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .with_context(|| format!("change to empty slot {slot}"))
    }

    fn push(&mut self, p: ProcessSample) -> anyhow::Result<usize> {
        let slot = self.slots.len();
        ensure!(
            self.index.insert(identity(&p), slot).is_none(),
            "process {} appears twice in one chain state",
            p.pid
        );
        self.slots.push(Some(p));
        Ok(slot)
    }
}

/// Events that turn `old` into `new` when a keyframe replaces a state.
fn diff_events(old: &Chain, new: &Chain, events: &mut Vec<Event>) {
    for (slot, p) in new.slots.iter().enumerate() {
        let Some(p) = p else { continue };
        match old.find(identity(p)).and_then(|s| old.slot(s)) {
            None => events.push(Event::Started(slot)),
            Some(before) if !same_facts(before, p) => events.push(Event::FactsChanged {
                slot,
                before: before.clone(),
            }),
            Some(_) => {}
        }
    }
    for p in old.processes() {
        if new.find(identity(p)).is_none() {
            events.push(Event::Exited(p.clone()));
        }
    }
}

/// Whether two samples of one process have the same facts.
pub fn same_facts(a: &ProcessSample, b: &ProcessSample) -> bool {
    a.parent_pid == b.parent_pid
        && a.name == b.name
        && a.exe == b.exe
        && a.cmd == b.cmd
        && a.user == b.user
}

fn write_facts(w: &mut Writer, p: &ProcessSample) {
    w.varint(p.parent_pid.map_or(0, |v| u64::from(v) + 1));
    w.str(&p.name);
    w.opt_str(p.exe.as_deref());
    w.varint(p.cmd.len() as u64);
    for arg in &p.cmd {
        w.str(arg);
    }
    w.opt_str(p.user.as_deref());
}

fn read_facts(r: &mut Reader<'_>, p: &mut ProcessSample) -> anyhow::Result<()> {
    p.parent_pid = match r.varint()? {
        0 => None,
        v => Some(u32::try_from(v - 1).context("parent pid out of range")?),
    };
    p.name = r.str()?;
    p.exe = r.opt_str()?;
    let args = r.varint()?;
    // Each argument takes at least one byte, so a count past what is left
    // is corrupt data, not a reason to allocate.
    let mut cmd = Vec::with_capacity(args.min(1 << 16) as usize);
    for _ in 0..args {
        cmd.push(r.str()?);
    }
    p.cmd = cmd;
    p.user = r.opt_str()?;
    Ok(())
}

fn write_record(w: &mut Writer, p: &ProcessSample) {
    w.varint(u64::from(p.pid));
    w.zigzag(nanos(p.start_time));
    write_facts(w, p);
    for &m in Metric::ALL {
        w.varint(m.raw(p));
    }
}

fn read_record(r: &mut Reader<'_>) -> anyhow::Result<ProcessSample> {
    let (pid, start) = read_identity(r)?;
    read_rest_of_record(r, pid, start)
}

fn read_identity(r: &mut Reader<'_>) -> anyhow::Result<Identity> {
    let pid = u32::try_from(r.varint()?).context("pid out of range")?;
    Ok((pid, r.zigzag()?))
}

fn read_rest_of_record(r: &mut Reader<'_>, pid: u32, start: i64) -> anyhow::Result<ProcessSample> {
    let start_time = DateTime::from_timestamp_nanos(start);
    let mut p = ProcessSample {
        pid,
        parent_pid: None,
        name: String::new(),
        exe: None,
        cmd: Vec::new(),
        user: None,
        start_time,
        status: procmon_model::ProcessStatus::Unknown,
        cpu_percent: 0.0,
        memory_rss_bytes: 0,
        memory_virtual_bytes: 0,
        memory_private_bytes: None,
        threads: None,
        handles: None,
        disk_read_bytes: 0,
        disk_written_bytes: 0,
    };
    read_facts(r, &mut p)?;
    for &m in Metric::ALL {
        m.set_raw(&mut p, r.varint()?);
    }
    Ok(p)
}

fn skip_facts(r: &mut Reader<'_>) -> anyhow::Result<()> {
    r.varint()?;
    r.skip_str()?;
    r.skip_opt_str()?;
    for _ in 0..r.varint()? {
        r.skip_str()?;
    }
    r.skip_opt_str()
}

fn skip_rest_of_record(r: &mut Reader<'_>) -> anyhow::Result<()> {
    skip_facts(r)?;
    for _ in Metric::ALL {
        r.varint()?;
    }
    Ok(())
}

/// Follows one process through a chain's payloads, passing over every other
/// process without building it: what a series of one process needs, at a
/// fraction of what rebuilding every snapshot costs.
#[derive(Debug, Clone)]
pub struct Follower {
    target: Identity,
    slot: Option<usize>,
    next_slot: usize,
    current: Option<ProcessSample>,
    started: bool,
}

impl Follower {
    pub fn new(target: Identity) -> Self {
        Self {
            target,
            slot: None,
            next_slot: 0,
            current: None,
            started: false,
        }
    }

    /// The process as of the last payload, if alive then.
    pub fn current(&self) -> Option<&ProcessSample> {
        self.current.as_ref()
    }

    /// Whether a keyframe was applied (a delta needs one before it).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Applies a payload, as [`Chain::apply`] would to the whole state.
    pub fn apply(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let mut r = Reader::new(payload);
        match r.byte()? {
            KEYFRAME => {
                let count = r.varint()? as usize;
                self.started = true;
                self.slot = None;
                self.current = None;
                for slot in 0..count {
                    self.record(&mut r, slot)?;
                }
                self.next_slot = count;
                Ok(())
            }
            DELTA => {
                ensure!(self.started, "a delta before its chain's keyframe");
                while !r.is_empty() {
                    match r.varint()? {
                        OP_START => {
                            let slot = self.next_slot;
                            self.record(&mut r, slot)?;
                            self.next_slot += 1;
                        }
                        OP_EXIT => {
                            if Some(r.varint()? as usize) == self.slot {
                                self.slot = None;
                                self.current = None;
                            }
                        }
                        OP_FACTS => {
                            let slot = r.varint()? as usize;
                            match (&mut self.current, Some(slot) == self.slot) {
                                (Some(p), true) => read_facts(&mut r, p)?,
                                _ => skip_facts(&mut r)?,
                            }
                        }
                        OP_NUMBERS => {
                            let slot = r.varint()? as usize;
                            let mask = r.varint()?;
                            let mine = Some(slot) == self.slot;
                            for (i, &m) in Metric::ALL.iter().enumerate() {
                                if mask & (1 << i) != 0 {
                                    let change = r.zigzag()? as u64;
                                    if let (true, Some(p)) = (mine, &mut self.current) {
                                        m.set_raw(p, m.raw(p).wrapping_add(change));
                                    }
                                }
                            }
                        }
                        other => bail!("unknown delta operation {other}"),
                    }
                }
                Ok(())
            }
            other => bail!("unknown payload kind {other}"),
        }
    }

    fn record(&mut self, r: &mut Reader<'_>, slot: usize) -> anyhow::Result<()> {
        let (pid, start) = read_identity(r)?;
        if (pid, start) == self.target {
            self.current = Some(read_rest_of_record(r, pid, start)?);
            self.slot = Some(slot);
            Ok(())
        } else {
            skip_rest_of_record(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{process, sorted};

    #[test]
    fn a_follower_sees_its_process_as_the_whole_state_does() {
        let mut states = vec![(1..=20).map(process).collect::<Vec<_>>()];
        for round in 0..30u32 {
            let mut next = states.last().unwrap().clone();
            next[(round % 7) as usize].cpu_percent += 1.0;
            next[5].memory_rss_bytes += 4096;
            if round == 10 {
                next.retain(|p| p.pid != 6);
            }
            if round == 20 {
                let mut back = process(6);
                back.start_time += chrono::Duration::seconds(999);
                next.push(back);
            }
            if round % 4 == 0 {
                next[2].cmd.push(format!("--r{round}"));
            }
            states.push(next);
        }
        for target in [3u32, 6, 15] {
            let mut chain = Chain::default();
            let mut follower = Follower::new(identity(&process(target)));
            let mut reborn = Follower::new((6, nanos(process(6).start_time) + 999_000_000_000));
            for (i, state) in states.iter().enumerate() {
                let payload = if i % 9 == 0 {
                    Chain::encode_keyframe(state)
                } else {
                    chain.encode_delta(state)
                };
                chain.apply(payload.payload(), None).unwrap();
                follower.apply(payload.payload()).unwrap();
                reborn.apply(payload.payload()).unwrap();
                let whole = chain
                    .find(identity(&process(target)))
                    .and_then(|s| chain.slot(s));
                assert_eq!(follower.current(), whole, "pid {target} after payload {i}");
                let whole = chain.find(reborn.target).and_then(|s| chain.slot(s));
                assert_eq!(reborn.current(), whole, "the new pid 6 after payload {i}");
            }
        }
    }

    #[test]
    fn a_delta_turns_one_snapshot_into_the_next() {
        let first: Vec<_> = (1..=50).map(process).collect();
        let mut chain = Chain::default();
        chain
            .apply(Chain::encode_keyframe(&first).payload(), None)
            .unwrap();
        assert_eq!(sorted(chain.processes().cloned()), sorted(first.clone()));

        let mut next = first.clone();
        next.retain(|p| p.pid != 7);
        next.push(process(99));
        next[3].cpu_percent = 42.5;
        next[4].memory_rss_bytes -= 100;
        next[5].cmd.push("--changed".into());
        next[6].threads = None;
        let delta = chain.encode_delta(&next);
        let mut events = Vec::new();
        chain.apply(delta.payload(), Some(&mut events)).unwrap();
        assert_eq!(sorted(chain.processes().cloned()), sorted(next.clone()));
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(&events[0], Event::FactsChanged { before, .. } if before.cmd.len() == 3));

        // Nothing changed: an empty delta, one byte.
        assert_eq!(chain.encode_delta(&next).payload().len(), 1);
    }

    #[test]
    fn a_keyframe_over_a_state_reports_the_difference() {
        let mut chain = Chain::default();
        let a: Vec<_> = (1..=3).map(process).collect();
        chain
            .apply(Chain::encode_keyframe(&a).payload(), None)
            .unwrap();
        let b: Vec<_> = (2..=4).map(process).collect();
        let mut events = Vec::new();
        chain
            .apply(Chain::encode_keyframe(&b).payload(), Some(&mut events))
            .unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[1], Event::Exited(p) if p.pid == 1));
    }
}
