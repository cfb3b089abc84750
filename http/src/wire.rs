//! Pieces of the HTTP/1.1 message syntax (RFC 9112) shared by the server
//! and the client: a read buffer that hands out lines and body bytes
//! without losing what follows them, and field-syntax helpers.

use std::io::{self, ErrorKind, Read};

/// What [`InBuf::read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line {
    /// A whole line is in the caller's vector, without its line ending.
    Complete,
    /// End of stream; `partial` says whether part of a line had arrived.
    Eof { partial: bool },
    /// The line is longer than allowed (part of it has been consumed).
    TooLong,
}

/// A read buffer over a byte stream that is passed in on every call, so the
/// same stream can be written to between reads. Bytes that arrive after the
/// current message (a pipelined request) stay here for the next one.
pub(crate) struct InBuf {
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Bytes read from the stream so far.
    pub(crate) total: u64,
}

impl InBuf {
    pub(crate) fn new(capacity: usize) -> InBuf {
        InBuf {
            buf: vec![0; capacity].into_boxed_slice(),
            pos: 0,
            len: 0,
            total: 0,
        }
    }

    /// Makes sure some bytes are buffered, reading once from `r` if none
    /// are; returns how many are buffered (0: end of stream).
    fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
            let n = loop {
                match r.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            self.len = n;
            self.total += n as u64;
        }
        Ok(self.len - self.pos)
    }

    /// Reads one line ending in LF (a CR before it is dropped too) into
    /// `line`, which is cleared first. Lines longer than `max` bytes
    /// (without the line ending) give [`Line::TooLong`].
    pub(crate) fn read_line<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        line: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<Line> {
        line.clear();
        loop {
            if self.fill(r)? == 0 {
                return Ok(Line::Eof {
                    partial: !line.is_empty(),
                });
            }
            let avail = &self.buf[self.pos..self.len];
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&avail[..i]);
                    self.pos += i + 1;
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(if line.len() > max {
                        Line::TooLong
                    } else {
                        Line::Complete
                    });
                }
                None => {
                    line.extend_from_slice(avail);
                    self.pos = self.len;
                    // One extra byte may be the CR of the line ending.
                    if line.len() > max.saturating_add(1) {
                        return Ok(Line::TooLong);
                    }
                }
            }
        }
    }

    /// Up to `max` bytes of the stream (reading if nothing is buffered),
    /// consumed; empty at the end of the stream.
    pub(crate) fn take<R: Read + ?Sized>(&mut self, r: &mut R, max: usize) -> io::Result<&[u8]> {
        let n = self.fill(r)?.min(max);
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }
}

/// `tchar` of RFC 9110 section 5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Splits a field line `name: value` (RFC 9112 section 5) into its name and
/// its value without surrounding whitespace. `None` when the name is not a
/// token (this includes whitespace before the colon, which RFC 9112
/// requires servers to reject) or the value holds CR, LF or NUL.
pub(crate) fn parse_field_line(line: &[u8]) -> Option<(&str, String)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if !is_token(name) {
        return None;
    }
    let value = value.trim_ascii();
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return None;
    }
    // A token is ASCII, so this cannot fail.
    let name = std::str::from_utf8(name).ok()?;
    Some((name, String::from_utf8_lossy(value).into_owned()))
}

/// Whether a comma-separated field value (such as `Connection`) lists
/// `token`, compared case-insensitively.
pub(crate) fn list_contains(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Parses a string of ASCII digits as a `u64`; `None` if it is empty, holds
/// anything else, or overflows.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether an I/O error means "no data within the read timeout".
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests;
