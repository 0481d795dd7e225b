//! Summaries over time: per bucket (a minute, an hour, or a series step),
//! each charted metric's count, minimum, maximum and sum. The store keeps
//! minute and hour buckets for long history, and the series API merges
//! buckets into the steps it answers with. Backend-neutral: a database only
//! stores the encoded blobs.

use std::collections::BTreeMap;

use anyhow::ensure;

use super::codec::{Reader, Writer};

/// One metric over one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Samples that had a value.
    pub n: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl Default for Stat {
    fn default() -> Self {
        Self {
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
}

impl Stat {
    pub fn add(&mut self, v: f64) {
        self.n += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
    }

    pub fn merge(&mut self, other: &Stat) {
        if other.n == 0 {
            return;
        }
        self.n += other.n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn avg(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    pub fn min(&self) -> Option<f64> {
        (self.n > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.n > 0).then_some(self.max)
    }
}

/// Every metric over one bucket, starting at `start` (nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start: i64,
    /// Samples that fell in the bucket.
    pub samples: u64,
    /// One per metric, in the order the caller uses.
    pub stats: Vec<Stat>,
}

impl Bucket {
    pub fn new(start: i64, metrics: usize) -> Self {
        Self {
            start,
            samples: 0,
            stats: vec![Stat::default(); metrics],
        }
    }

    /// Adds one sample: a value (or none) per metric.
    pub fn add(&mut self, values: impl IntoIterator<Item = Option<f64>>) {
        self.samples += 1;
        for (stat, v) in self.stats.iter_mut().zip(values) {
            if let Some(v) = v {
                stat.add(v);
            }
        }
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.samples += other.samples;
        for (a, b) in self.stats.iter_mut().zip(&other.stats) {
            a.merge(b);
        }
    }
}

/// Buckets of one width, keyed by start, filled in any order.
#[derive(Debug, Clone)]
pub struct Buckets {
    width: i64,
    metrics: usize,
    by_start: BTreeMap<i64, Bucket>,
}

impl Buckets {
    /// Buckets `width` nanoseconds wide, aligned to multiples of it.
    pub fn new(width: i64, metrics: usize) -> Self {
        Self {
            width,
            metrics,
            by_start: BTreeMap::new(),
        }
    }

    fn at(&mut self, time: i64) -> &mut Bucket {
        let start = time - time.rem_euclid(self.width);
        let metrics = self.metrics;
        self.by_start
            .entry(start)
            .or_insert_with(|| Bucket::new(start, metrics))
    }

    /// Adds one sample taken at `time`.
    pub fn add(&mut self, time: i64, values: impl IntoIterator<Item = Option<f64>>) {
        self.at(time).add(values);
    }

    /// Merges a finer bucket into the one that holds its start.
    pub fn merge(&mut self, bucket: &Bucket) {
        self.at(bucket.start).merge(bucket);
    }

    pub fn into_vec(self) -> Vec<Bucket> {
        self.by_start.into_values().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

/// Payload kind of encoded buckets.
const BUCKETS: u8 = 3;

/// How one metric of one bucket is written.
const NO_VALUE: u64 = 0;
/// Every sample had it, all equal: one value.
const STEADY: u64 = 1;
/// Every sample had it: minimum, maximum, sum.
const EVERY_SAMPLE: u64 = 2;
/// Some samples had it: their count, then minimum, maximum, sum.
const SOME_SAMPLES: u64 = 3;

/// A float written as its bits XORed with the same figure of the bucket
/// before, bit-reversed: a value that did not move costs one byte, and one
/// that moved a little (whose low bits agree) a few, since its differing
/// bits sit high and land low.
fn put_float(w: &mut Writer, value: f64, previous: &mut u64) {
    let bits = value.to_bits();
    w.varint((bits ^ *previous).reverse_bits());
    *previous = bits;
}

fn get_float(r: &mut Reader<'_>, previous: &mut u64) -> anyhow::Result<f64> {
    *previous ^= r.varint()?.reverse_bits();
    Ok(f64::from_bits(*previous))
}

/// Encodes buckets that all start at `base` or later, each start a
/// multiple of `width` after `base`.
pub fn encode(base: i64, width: i64, buckets: &[Bucket]) -> Vec<u8> {
    let mut w = Writer::new(BUCKETS);
    w.varint(buckets.len() as u64);
    let metrics = buckets.first().map_or(0, |b| b.stats.len());
    w.varint(metrics as u64);
    let mut previous = vec![[0u64; 3]; metrics];
    for b in buckets {
        w.varint(((b.start - base) / width) as u64);
        w.varint(b.samples);
        for (stat, prev) in b.stats.iter().zip(previous.iter_mut()) {
            if stat.n == 0 {
                w.varint(NO_VALUE);
                continue;
            }
            let steady =
                stat.n == b.samples && stat.min == stat.max && stat.sum == stat.min * stat.n as f64;
            if steady {
                w.varint(STEADY);
                put_float(&mut w, stat.min, &mut prev[0]);
                prev[1] = prev[0];
                prev[2] = stat.sum.to_bits();
                continue;
            }
            if stat.n == b.samples {
                w.varint(EVERY_SAMPLE);
            } else {
                w.varint(SOME_SAMPLES);
                w.varint(stat.n);
            }
            put_float(&mut w, stat.min, &mut prev[0]);
            put_float(&mut w, stat.max, &mut prev[1]);
            put_float(&mut w, stat.sum, &mut prev[2]);
        }
    }
    w.stored()
}

/// The inverse of [`encode`].
pub fn decode(base: i64, width: i64, stored: &[u8]) -> anyhow::Result<Vec<Bucket>> {
    let payload = super::codec::open(stored)?;
    let mut r = Reader::new(&payload);
    ensure!(r.byte()? == BUCKETS, "not a bucket payload");
    let count = r.varint()?;
    let metrics = r.varint()? as usize;
    ensure!(metrics <= 64, "bucket payload claims {metrics} metrics");
    let mut previous = vec![[0u64; 3]; metrics];
    let mut out = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let start = base + r.varint()? as i64 * width;
        let mut bucket = Bucket::new(start, metrics);
        bucket.samples = r.varint()?;
        for (stat, prev) in bucket.stats.iter_mut().zip(previous.iter_mut()) {
            match r.varint()? {
                NO_VALUE => continue,
                STEADY => {
                    stat.n = bucket.samples;
                    stat.min = get_float(&mut r, &mut prev[0])?;
                    stat.max = stat.min;
                    stat.sum = stat.min * stat.n as f64;
                    prev[1] = prev[0];
                    prev[2] = stat.sum.to_bits();
                    continue;
                }
                EVERY_SAMPLE => stat.n = bucket.samples,
                SOME_SAMPLES => stat.n = r.varint()?,
                other => anyhow::bail!("unknown roll-up form {other}"),
            }
            stat.min = get_float(&mut r, &mut prev[0])?;
            stat.max = get_float(&mut r, &mut prev[1])?;
            stat.sum = get_float(&mut r, &mut prev[2])?;
        }
        out.push(bucket);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        let mut buckets = Buckets::new(60, 2);
        for t in 0..600 {
            buckets.add(
                1_000_000 + t,
                [Some((t % 7) as f64), (t % 3 == 0).then_some(1.5)],
            );
        }
        let buckets = buckets.into_vec();
        assert_eq!(buckets.len(), 11);
        let stored = encode(0, 60, &buckets);
        assert_eq!(decode(0, 60, &stored).unwrap(), buckets);
    }

    #[test]
    fn merging_gives_the_stats_of_the_whole() {
        let mut fine = Buckets::new(10, 1);
        let mut whole = Bucket::new(0, 1);
        for t in 0..100 {
            let v = Some(((t * 37) % 11) as f64);
            fine.add(t, [v]);
            whole.add([v]);
        }
        let mut coarse = Buckets::new(100, 1);
        for b in fine.into_vec() {
            coarse.merge(&b);
        }
        assert_eq!(coarse.into_vec(), vec![whole]);
    }

    #[test]
    fn steady_values_cost_little() {
        let buckets: Vec<_> = (0..60)
            .map(|i| {
                let mut b = Bucket::new(i * 60, 8);
                for _ in 0..30 {
                    b.add([Some(123456.0); 8]);
                }
                b
            })
            .collect();
        let stored = encode(0, 60, &buckets);
        assert!(stored.len() < 200, "{} bytes", stored.len());
    }
}
