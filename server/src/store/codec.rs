//! Bytes in and out: LEB128 varints, zigzag, length-prefixed strings, and
//! zstd around a whole payload. The store's own compact format; see
//! [`super::chain`] for what is written with it.
//!
//! Hand-written rather than a serde format because the target is a few
//! bytes per process sample: a varint of a delta is usually one byte, and a
//! generic format spends more on framing than on the value.

use anyhow::{bail, ensure, Context};

/// Payloads at least this long are compressed.
const COMPRESS_FROM: usize = 96;
/// zstd level: 3 is its default, fast to write and to read.
const LEVEL: i32 = 3;
/// Flag in the first byte: the rest is `varint(len) + zstd(payload)`.
const COMPRESSED: u8 = 0x80;
/// The largest payload a stored blob may inflate to (a 200,000-process
/// keyframe with long command lines stays far below it).
const MAX_PAYLOAD: usize = 1 << 30;

/// Builds a payload.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A payload that starts with the byte `kind`.
    pub fn new(kind: u8) -> Self {
        Self { buf: vec![kind] }
    }

    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// `None` and `Some` in one varint: 0, or the length plus one.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.varint(0),
            Some(s) => {
                self.varint(s.len() as u64 + 1);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// The payload as it is, for applying in memory.
    pub fn payload(&self) -> &[u8] {
        &self.buf
    }

    /// The payload as stored: compressed when that pays.
    pub fn stored(&self) -> Vec<u8> {
        seal(&self.buf)
    }
}

thread_local! {
    // zstd's contexts cost more to make than a small payload costs to
    // (de)compress, so each thread keeps one of each.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Compressor::new(LEVEL)?);
        }
        cell.as_mut().expect("made above").compress(data)
    })
}

fn decompress(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Decompressor::new()?);
        }
        cell.as_mut()
            .expect("made above")
            .decompress(data, capacity)
    })
}

/// The stored form of a payload whose first byte is its kind (< 0x80).
pub fn seal(payload: &[u8]) -> Vec<u8> {
    if payload.len() >= COMPRESS_FROM {
        if let Ok(packed) = compress(&payload[1..]) {
            if packed.len() + 6 < payload.len() {
                let mut out = Writer::new(payload[0] | COMPRESSED);
                out.varint((payload.len() - 1) as u64);
                out.buf.extend_from_slice(&packed);
                return out.buf;
            }
        }
    }
    payload.to_vec()
}

/// The payload of a stored blob (undoing [`seal`]).
pub fn open(stored: &[u8]) -> anyhow::Result<std::borrow::Cow<'_, [u8]>> {
    let Some(&first) = stored.first() else {
        bail!("empty stored payload");
    };
    if first & COMPRESSED == 0 {
        return Ok(std::borrow::Cow::Borrowed(stored));
    }
    let mut reader = Reader::new(&stored[1..]);
    let len = reader.varint()? as usize;
    ensure!(len <= MAX_PAYLOAD, "stored payload claims {len} bytes");
    let mut payload = Vec::with_capacity(len + 1);
    payload.push(first & !COMPRESSED);
    let inflated = decompress(reader.rest(), len).context("stored payload does not inflate")?;
    ensure!(
        inflated.len() == len,
        "stored payload inflated to the wrong size"
    );
    payload.extend_from_slice(&inflated);
    Ok(std::borrow::Cow::Owned(payload))
}

/// Reads a payload; every read fails cleanly on truncated or bad data.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(&self) -> &'a [u8] {
        self.data
    }

    pub fn byte(&mut self) -> anyhow::Result<u8> {
        let (&b, rest) = self.data.split_first().context("payload ends early")?;
        self.data = rest;
        Ok(b)
    }

    pub fn varint(&mut self) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("varint longer than 64 bits")
    }

    pub fn zigzag(&mut self) -> anyhow::Result<i64> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn bytes(&mut self, len: u64) -> anyhow::Result<&'a [u8]> {
        let len = usize::try_from(len).context("length too large")?;
        ensure!(len <= self.data.len(), "payload ends early");
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(head)
    }

    pub fn str(&mut self) -> anyhow::Result<String> {
        let len = self.varint()?;
        let bytes = self.bytes(len)?;
        Ok(std::str::from_utf8(bytes)
            .context("stored text is not UTF-8")?
            .to_owned())
    }

    /// Passes over a string without reading it.
    pub fn skip_str(&mut self) -> anyhow::Result<()> {
        let len = self.varint()?;
        self.bytes(len).map(drop)
    }

    /// Passes over an optional string without reading it.
    pub fn skip_opt_str(&mut self) -> anyhow::Result<()> {
        match self.varint()? {
            0 => Ok(()),
            n => self.bytes(n - 1).map(drop),
        }
    }

    pub fn opt_str(&mut self) -> anyhow::Result<Option<String>> {
        match self.varint()? {
            0 => Ok(None),
            n => {
                let bytes = self.bytes(n - 1)?;
                Ok(Some(
                    std::str::from_utf8(bytes)
                        .context("stored text is not UTF-8")?
                        .to_owned(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut w = Writer::new(1);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.varint(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            w.zigzag(v);
        }
        w.str("héllo");
        w.opt_str(None);
        w.opt_str(Some(""));
        let stored = w.stored();
        let payload = open(&stored).unwrap();
        let mut r = Reader::new(&payload);
        assert_eq!(r.byte().unwrap(), 1);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.zigzag().unwrap(), v);
        }
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.opt_str().unwrap(), None);
        assert_eq!(r.opt_str().unwrap(), Some(String::new()));
        assert!(r.is_empty());
    }

    #[test]
    fn long_payloads_are_compressed_and_come_back() {
        let mut w = Writer::new(2);
        for _ in 0..200 {
            w.str("/usr/lib/systemd/systemd-journald");
        }
        let stored = w.stored();
        assert!(stored.len() < w.payload().len() / 4);
        assert_eq!(&*open(&stored).unwrap(), w.payload());
    }

    #[test]
    fn truncated_data_is_an_error_not_a_panic() {
        let mut w = Writer::new(1);
        w.str("abcdef");
        let payload = w.payload();
        for cut in 0..payload.len() {
            let mut r = Reader::new(&payload[..cut]);
            let _ = r.byte();
            assert!(r.str().is_err());
        }
        assert!(open(&[COMPRESSED | 1, 5, 1, 2, 3]).is_err());
    }
}
