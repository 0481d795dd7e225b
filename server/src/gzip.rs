//! Bodies compressed once and sent many times: the page's files and the
//! newest process listings. The general compression layer compresses every
//! response anew as it goes out; for a body that does not change, that is
//! the same work for every viewer, on the path that opens the page.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use axum::http::{HeaderMap, HeaderValue};
use flate2::write::GzEncoder;

/// Whether the client takes gzip: named in `Accept-Encoding`, and not with
/// `q=0`. (`*` is not taken to mean gzip: browsers always name it.)
pub fn accepted(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| {
                    let p = p.replace(' ', "");
                    p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0)
                })
        })
}

/// `data` gzipped at `level` (0-9): 9 for what is compressed once and kept,
/// lower for what is compressed while a viewer waits.
pub fn compress(data: &[u8], level: u32) -> Bytes {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::new(level),
    );
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("writing to memory cannot fail")
}

/// A gzipped body made on the blocking pool by `write` and sent as it is
/// made, so its first bytes leave while the rest is still being written
/// and compressed (serializing, compressing and sending overlap instead of
/// following one another). When all is written, `done` is handed the whole
/// compressed body, to keep. A client that goes away stops nothing: the
/// body is still finished for `done`.
pub fn streamed(
    level: u32,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send + 'static,
    done: impl FnOnce(Bytes) + Send + 'static,
) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        let chunks = Chunks {
            sender,
            pending: Vec::with_capacity(CHUNK),
            whole: Vec::new(),
        };
        let encoder = GzEncoder::new(chunks, flate2::Compression::new(level));
        // serde writes a few bytes at a time: gathered before compressing.
        let mut buffered = std::io::BufWriter::with_capacity(CHUNK, encoder);
        let finished = write(&mut buffered)
            .and_then(|()| buffered.into_inner().map_err(|e| e.into_error()))
            .and_then(|encoder| encoder.finish())
            .and_then(|mut chunks| chunks.send().map(|()| chunks.whole));
        match finished {
            Ok(whole) => done(Bytes::from(whole)),
            // Writing to memory fails only if `write` does; the body ends
            // short and the client sees a broken response.
            Err(e) => tracing::error!("a streamed body could not be made: {e}"),
        }
    });
    Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move {
            let chunk = receiver.recv().await?;
            Some((Ok::<_, std::convert::Infallible>(chunk), receiver))
        },
    ))
}

/// Compressed bytes sent on in pieces of this size.
const CHUNK: usize = 64 * 1024;

/// Where a streamed body's compressed bytes go: to the response in
/// pieces, and into the whole kept for later.
struct Chunks {
    sender: tokio::sync::mpsc::UnboundedSender<Bytes>,
    pending: Vec<u8>,
    whole: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            // A client gone is not an error: `whole` is still wanted.
            let _ = self.sender.send(Bytes::from(std::mem::replace(
                &mut self.pending,
                Vec::with_capacity(CHUNK),
            )));
        }
        Ok(())
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        self.whole.extend_from_slice(data);
        if self.pending.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Marks a response's headers as carrying a gzipped body (the compression
/// layer leaves such a response alone), varying by `Accept-Encoding`.
pub fn mark(headers: &mut HeaderMap) {
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
}

/// Says that a response not gzipped here would have been for another
/// client, so caches keep the two apart.
pub fn vary(headers: &mut HeaderMap) {
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(accepted(&with("gzip, deflate, br, zstd")));
        assert!(accepted(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepted(&with("gzip;q=0")));
        assert!(!accepted(&with("gzip; q=0.000")));
        assert!(!accepted(&with("br, zstd")));
        assert!(!accepted(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_streamed_body_is_the_whole_that_is_kept() {
        use std::io::Read;
        let data: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i * 7919).to_le_bytes())
            .collect();
        let written = data.clone();
        let (kept, keep) = tokio::sync::oneshot::channel();
        let body = streamed(
            4,
            move |out| out.write_all(&written),
            move |whole| {
                let _ = kept.send(whole);
            },
        );
        let sent = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(sent, keep.await.unwrap());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&sent[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn what_is_compressed_comes_back() {
        use std::io::Read;
        let data = b"{\"pid\":1,\"name\":\"init\"}".repeat(100);
        let packed = compress(&data, 9);
        assert!(packed.len() < data.len() / 10);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
