//! Length-prefixed framing for byte streams.
//!
//! Wire format of one frame:
//!
//! ```text
//! +----------------------+-----------+---------------------+
//! | length: u32, BE      | version=1 | payload (length B)  |
//! +----------------------+-----------+---------------------+
//! ```
//!
//! `length` counts the payload only (not the version byte, not itself), so a
//! frame occupies `5 + length` bytes. A zero-length payload is legal. The
//! receiver refuses any length above its configured maximum
//! ([`DEFAULT_MAX_FRAME`] unless told otherwise) *before* reading the payload,
//! and the decoder grows its buffer only as payload bytes actually arrive, so a
//! hostile length field can never make it allocate more than the maximum, nor
//! more than the peer has really sent.
//!
//! A byte stream cannot be resynchronised after a framing error (the next
//! frame boundary is unknown), so every [`FrameError`] is fatal for the
//! connection: the decoder stays failed and the caller closes the stream.

use std::fmt;

/// Size of the frame header: 4 length bytes and 1 version byte.
pub const HEADER_LEN: usize = 5;
/// The only frame version this crate speaks.
pub const FRAME_VERSION: u8 = 1;
/// Default maximum payload size of one frame: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Why a byte stream could not be split into frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field announces more than the configured maximum.
    TooLarge {
        /// Announced payload length.
        len: u64,
        /// Configured maximum payload length.
        max: usize,
    },
    /// The version byte is not [`FRAME_VERSION`].
    BadVersion(u8),
    /// The stream ended in the middle of a frame.
    Truncated {
        /// Bytes of the frame (header included) that had arrived.
        have: usize,
        /// Bytes the frame needs (header included), when the header was complete.
        need: Option<usize>,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max} bytes")
            }
            FrameError::BadVersion(v) => {
                write!(
                    f,
                    "frame version {v} is not supported (expected {FRAME_VERSION})"
                )
            }
            FrameError::Truncated {
                have,
                need: Some(need),
            } => {
                write!(f, "stream ended inside a frame ({have} of {need} bytes)")
            }
            FrameError::Truncated { have, need: None } => {
                write!(
                    f,
                    "stream ended inside a frame header ({have} of {HEADER_LEN} bytes)"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame carrying `payload` to `out`.
///
/// Fails with [`FrameError::TooLarge`] (and leaves `out` untouched) when the
/// payload exceeds `max`.
pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8], max: usize) -> Result<(), FrameError> {
    encode_frame_with(out, max, |buf| {
        buf.extend_from_slice(payload);
        Ok(())
    })
}

/// Appends one frame whose payload is written by `fill` directly into `out`
/// (no intermediate buffer), then patches the length field.
///
/// If `fill` fails or the payload exceeds `max`, `out` is restored to its
/// previous length and the error is returned.
pub fn encode_frame_with<E: From<FrameError>>(
    out: &mut Vec<u8>,
    max: usize,
    fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, FRAME_VERSION]);
    if let Err(e) = fill(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - HEADER_LEN;
    let wire_len = match u32::try_from(len) {
        Ok(l) if len <= max => l,
        _ => {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len: len as u64,
                max,
            }
            .into());
        }
    };
    out[start..start + 4].copy_from_slice(&wire_len.to_be_bytes());
    Ok(())
}

/// Streaming frame decoder: feed it arbitrary chunks of a byte stream and it
/// returns complete frame payloads.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Payload length of the frame being read, once its header is complete.
    want: Option<usize>,
    payload: Vec<u8>,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            header: [0; HEADER_LEN],
            header_len: 0,
            want: None,
            payload: Vec::new(),
            failed: None,
        }
    }

    /// The configured maximum payload size.
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Consumes bytes from the front of `input` until one frame is complete
    /// (returned) or `input` is exhausted (`Ok(None)`; the partial frame is
    /// kept for the next call). Bytes after a completed frame stay in `input`,
    /// so callers loop until it is empty.
    ///
    /// After an error the decoder is failed for good and returns that error
    /// again on every call.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let Some(want) = self.want else {
                let take = (HEADER_LEN - self.header_len).min(input.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&input[..take]);
                self.header_len += take;
                *input = &input[take..];
                if self.header_len < HEADER_LEN {
                    return Ok(None);
                }
                let [a, b, c, d, version] = self.header;
                let len = u32::from_be_bytes([a, b, c, d]);
                // Check the length before the version: a wild length is the
                // more telling symptom of garbage.
                if u64::from(len) > self.max as u64 {
                    return Err(self.fail(FrameError::TooLarge {
                        len: u64::from(len),
                        max: self.max,
                    }));
                }
                if version != FRAME_VERSION {
                    return Err(self.fail(FrameError::BadVersion(version)));
                }
                self.want = Some(len as usize);
                continue;
            };
            // Grow by what has actually arrived, never by the announced length.
            let take = (want - self.payload.len()).min(input.len());
            self.payload.extend_from_slice(&input[..take]);
            *input = &input[take..];
            if self.payload.len() < want {
                return Ok(None);
            }
            self.want = None;
            self.header_len = 0;
            return Ok(Some(std::mem::take(&mut self.payload)));
        }
    }

    /// Decodes every complete frame in `chunk`, appending payloads to `out`.
    /// A trailing partial frame is kept for the next call.
    pub fn decode_all(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), FrameError> {
        let mut input = chunk;
        while !input.is_empty() {
            match self.decode(&mut input)? {
                Some(frame) => out.push(frame),
                None => break,
            }
        }
        Ok(())
    }

    /// True when no partial frame is buffered (a clean place for the stream to end).
    pub fn is_idle(&self) -> bool {
        self.failed.is_none() && self.header_len == 0
    }

    /// Call at end of stream: an error if the stream stopped inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.header_len == 0 {
            return Ok(());
        }
        let (have, need) = match self.want {
            Some(want) => (HEADER_LEN + self.payload.len(), Some(HEADER_LEN + want)),
            None => (self.header_len, None),
        };
        Err(FrameError::Truncated { have, need })
    }

    /// Forgets any partial frame and any error (for a new connection).
    pub fn reset(&mut self) {
        *self = FrameDecoder::new(self.max);
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        self.payload = Vec::new();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(&mut out, p, DEFAULT_MAX_FRAME).expect("encode");
        }
        out
    }

    #[test]
    fn fixture_bytes() {
        let mut out = Vec::new();
        encode_frame(&mut out, b"hi", 16).expect("encode");
        assert_eq!(out, [0, 0, 0, 2, 1, b'h', b'i']);
        encode_frame(&mut out, b"", 16).expect("encode");
        assert_eq!(out[7..], [0, 0, 0, 0, 1]);
    }

    #[test]
    fn zero_length_payload() {
        let mut d = FrameDecoder::new(16);
        let mut got = Vec::new();
        d.decode_all(&[0, 0, 0, 0, 1, 0, 0, 0, 0, 1], &mut got)
            .expect("decode");
        assert_eq!(got, vec![Vec::<u8>::new(), Vec::new()]);
        assert!(d.is_idle());
        d.finish().expect("clean end");
    }

    #[test]
    fn split_at_every_boundary() {
        let payloads: [&[u8]; 4] = [b"alpha", b"", b"\x00\x01\x02", &[7u8; 300]];
        let bytes = frames(&payloads);
        for cut in 0..=bytes.len() {
            let mut d = FrameDecoder::default();
            let mut got = Vec::new();
            d.decode_all(&bytes[..cut], &mut got).expect("first half");
            d.decode_all(&bytes[cut..], &mut got).expect("second half");
            assert_eq!(
                got,
                payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
                "cut {cut}"
            );
            d.finish().expect("clean end");
        }
        // And one byte at a time.
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for b in &bytes {
            d.decode_all(std::slice::from_ref(b), &mut got)
                .expect("byte");
        }
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn several_frames_per_chunk_leave_rest_in_input() {
        let bytes = frames(&[b"one", b"two"]);
        let mut d = FrameDecoder::default();
        let mut input = &bytes[..];
        assert_eq!(d.decode(&mut input).expect("ok"), Some(b"one".to_vec()));
        assert_eq!(input.len(), 5 + 3);
        assert_eq!(d.decode(&mut input).expect("ok"), Some(b"two".to_vec()));
        assert!(input.is_empty());
        assert_eq!(d.decode(&mut input).expect("ok"), None);
    }

    #[test]
    fn oversized_is_refused_before_payload() {
        let mut d = FrameDecoder::new(10);
        let mut input: &[u8] = &[0, 0, 0, 11, 1];
        assert_eq!(
            d.decode(&mut input),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        // Failed for good.
        let mut more: &[u8] = &[0, 0, 0, 1, 1, 0];
        assert!(d.decode(&mut more).is_err());
        assert!(d.finish().is_err());
        // The maximum itself is fine.
        let mut d = FrameDecoder::new(10);
        let mut input: &[u8] = &[0, 0, 0, 10, 1];
        assert_eq!(d.decode(&mut input), Ok(None));
        // A 4 GiB claim allocates nothing.
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1];
        assert!(matches!(
            d.decode(&mut input),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(d.payload.capacity(), 0);
    }

    #[test]
    fn encoder_refuses_oversized() {
        let mut out = vec![9];
        assert_eq!(
            encode_frame(&mut out, &[0; 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(out, vec![9]);
    }

    #[test]
    fn version_mismatch() {
        let mut d = FrameDecoder::default();
        let mut input: &[u8] = &[0, 0, 0, 1, 2, 0];
        assert_eq!(d.decode(&mut input), Err(FrameError::BadVersion(2)));
    }

    #[test]
    fn garbage() {
        let mut d = FrameDecoder::default();
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert!(matches!(
            d.decode(&mut input),
            Err(FrameError::TooLarge { .. })
        ));
        let mut d = FrameDecoder::default();
        let mut input: &[u8] = &[0, 0, 0, 3, 0x47, 1, 2, 3];
        assert_eq!(d.decode(&mut input), Err(FrameError::BadVersion(0x47)));
    }

    #[test]
    fn truncated() {
        let mut d = FrameDecoder::default();
        d.decode_all(&[0, 0], &mut Vec::new()).expect("partial");
        assert!(!d.is_idle());
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                have: 2,
                need: None
            })
        );
        let mut d = FrameDecoder::default();
        d.decode_all(&[0, 0, 0, 4, 1, 9], &mut Vec::new())
            .expect("partial");
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                have: 6,
                need: Some(9)
            })
        );
        d.reset();
        d.finish().expect("reset clears");
    }
}
