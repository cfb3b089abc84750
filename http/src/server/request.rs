//! Request parsing: the request line, the header fields, and what they
//! say about the connection and the body.

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read};

use super::{CloseReason, MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE};
use crate::wire::{
    InBuf, Line, is_timeout, is_token, list_contains, parse_decimal, parse_field_line,
};

/// Empty lines tolerated before a request line.
const MAX_LEADING_EMPTY_LINES: usize = 8;
/// Request lines are cut to this many bytes in log records.
const LOG_LINE_MAX: usize = 1024;

/// Escapes a request line or header value for a log line.
pub(super) fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(LOG_LINE_MAX));
    for &b in bytes {
        if out.len() >= LOG_LINE_MAX {
            out.push_str("...");
            break;
        }
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if out.is_empty() { "-".to_owned() } else { out }
}

/// A parsed request head.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: Vec<u8>,
    pub(super) http10: bool,
    /// Field names in lower case, values trimmed, in arrival order.
    pub(super) headers: Vec<(String, String)>,
    pub(super) log_line: String,
}

/// How the request body is delimited.
pub(super) enum Framing {
    None,
    Length(u64),
    /// `Transfer-Encoding`: not read by this server.
    Unframed,
}

impl Request {
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }

    /// Whether the client wants the connection kept open after this
    /// request (RFC 9112 section 9.3).
    pub(super) fn keep_alive(&self) -> bool {
        let (mut close, mut keep) = (false, false);
        for value in self.all("connection") {
            close |= list_contains(value, "close");
            keep |= list_contains(value, "keep-alive");
        }
        !close && (!self.http10 || keep)
    }

    /// HTTP/1.1 requests need exactly one `Host` (RFC 9112 section 3.2).
    pub(super) fn check_host(&self) -> Result<(), u16> {
        let mut hosts = self.all("host");
        match (hosts.next(), hosts.next()) {
            (None, _) if self.http10 => Ok(()),
            (None, _) | (Some(_), Some(_)) => Err(400),
            (Some(host), None) => {
                let bad = |b: u8| b <= b' ' || b == 0x7f || b"/\\@?#\"<>{}|^`".contains(&b);
                if host.bytes().any(bad) {
                    Err(400)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The body framing (RFC 9112 section 6.3): conflicting or invalid
    /// `Content-Length`, or one together with `Transfer-Encoding`, is an
    /// error.
    pub(super) fn framing(&self) -> Result<Framing, u16> {
        let chunked = self.header("transfer-encoding").is_some();
        let mut length = None;
        for value in self.all("content-length") {
            for item in value.split(',') {
                let n = parse_decimal(item.trim()).ok_or(400u16)?;
                if length.is_some_and(|l| l != n) {
                    return Err(400);
                }
                length = Some(n);
            }
        }
        match (chunked, length) {
            (true, Some(_)) => Err(400),
            (true, None) => Ok(Framing::Unframed),
            (false, None | Some(0)) => Ok(Framing::None),
            (false, Some(n)) => Ok(Framing::Length(n)),
        }
    }
}

/// Parses `METHOD SP target SP HTTP/x.y`: (method, target, is HTTP/1.0).
fn parse_request_line(line: &[u8]) -> Result<(String, Vec<u8>, bool), u16> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !is_token(method) || target.is_empty() || target.iter().any(|&b| b < 0x21 || b == 0x7f) {
        return Err(400);
    }
    let [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] = *version else {
        return Err(400);
    };
    if !major.is_ascii_digit() || !minor.is_ascii_digit() {
        return Err(400);
    }
    if major != b'1' {
        return Err(505);
    }
    // A token is ASCII.
    let method = String::from_utf8_lossy(method).into_owned();
    Ok((method, target.to_vec(), minor == b'0'))
}

/// Why no request head could be read.
pub(super) enum HeadError {
    Stop(CloseReason),
    Io(io::Error),
    /// Answer with this status, log this request line, and close.
    Reject(u16, String),
}

/// Read errors that end a connection normally (`Ok`) or not.
pub(super) fn read_error(e: io::Error) -> Result<CloseReason, io::Error> {
    if is_timeout(&e) {
        Ok(CloseReason::Idle)
    } else if matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    ) {
        Ok(CloseReason::Reset)
    } else {
        Err(e)
    }
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> HeadError {
        match read_error(e) {
            Ok(reason) => HeadError::Stop(reason),
            Err(e) => HeadError::Io(e),
        }
    }
}

/// Reads a request head: the request line (after up to a few empty
/// lines, RFC 9112 section 2.2) and the header fields.
pub(super) fn read_head<S: Read>(
    input: &mut InBuf,
    stream: &mut S,
    line: &mut Vec<u8>,
) -> Result<Request, HeadError> {
    let mut empty_lines = 0;
    loop {
        let status = input.read_line(stream, line, MAX_REQUEST_LINE)?;
        match status {
            Line::Complete if line.is_empty() => {
                empty_lines += 1;
                if empty_lines > MAX_LEADING_EMPTY_LINES {
                    return Err(HeadError::Reject(400, "-".to_owned()));
                }
            }
            Line::Complete => break,
            Line::TooLong => return Err(HeadError::Reject(400, sanitize(line))),
            Line::Eof { .. } => return Err(HeadError::Stop(CloseReason::ClientClosed)),
        }
    }
    let log_line = sanitize(line);
    let (method, target, http10) =
        parse_request_line(line).map_err(|status| HeadError::Reject(status, log_line.clone()))?;
    let mut headers = Vec::new();
    let mut used = 0usize;
    loop {
        let budget = MAX_HEADER_BYTES.saturating_sub(used);
        let status = input.read_line(stream, line, budget)?;
        match status {
            Line::Complete => {}
            Line::TooLong => return Err(HeadError::Reject(431, log_line)),
            Line::Eof { .. } => return Err(HeadError::Stop(CloseReason::ClientClosed)),
        }
        if line.is_empty() {
            break;
        }
        used += line.len() + 2;
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::Reject(431, log_line));
        }
        // Obsolete line folding is rejected (RFC 9112 section 5.2).
        if matches!(line[0], b' ' | b'\t') {
            return Err(HeadError::Reject(400, log_line));
        }
        let Some((name, value)) = parse_field_line(line) else {
            return Err(HeadError::Reject(400, log_line));
        };
        headers.push((name.to_ascii_lowercase(), value));
    }
    Ok(Request {
        method,
        target,
        http10,
        headers,
        log_line,
    })
}

#[cfg(test)]
mod tests;
