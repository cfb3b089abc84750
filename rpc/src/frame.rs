//! Length-prefixed framing for byte streams.
//!
//! Wire format of one frame:
//!
//! ```text
//! +----------------------+-----------+---------------------+
//! | length: u32, BE      | version=2 | payload (length B)  |
//! +----------------------+-----------+---------------------+
//! ```
//!
//! On a connection authenticated with a key, every frame after the greeting
//! ends with a 32-byte MAC, counted in `length` (see [`auth`](crate::auth)).
//! Version 2 is that format; version 1 (no MACs) is refused, so a peer of
//! the old format fails at its first frame, the greeting, with an error
//! naming both versions ([`FrameError::BadVersion`]).
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
pub const FRAME_VERSION: u8 = 2;
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
                    "frame version {v} is not supported (expected {FRAME_VERSION}): \
                     the peer runs another version of ustack-rpc"
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

    /// Changes the maximum payload size for the frames still to come (an
    /// authenticated session allows [`MAC_LEN`](crate::auth::MAC_LEN) more).
    pub fn set_max_frame(&mut self, max: usize) {
        self.max = max;
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
mod tests;
