//! Request parsing: the request line, the header fields, and what they
//! say about the connection and the body.

use std::fmt::Write as _;
use std::io::{self, ErrorKind};

use super::{CloseReason, MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE};
use crate::wire::{is_timeout, is_token, list_contains, parse_decimal, parse_field_line};

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

/// What a complete (or refused) request head gave.
pub(super) enum Head {
    /// A request to answer.
    Request(Request),
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

/// The request line of a head being parsed.
struct StartLine {
    method: String,
    target: Vec<u8>,
    http10: bool,
    log_line: String,
}

/// Parses a request head incrementally from bytes fed as they arrive:
/// the request line (after up to a few empty lines, RFC 9112 section
/// 2.2) and the header fields. Memory stays bounded by the limits: a line
/// is kept only up to its limit (plus what one call feeds).
#[derive(Default)]
pub(super) struct HeadParser {
    /// The line being assembled, without its line ending.
    line: Vec<u8>,
    start: Option<StartLine>,
    /// Field names in lower case, values trimmed, in arrival order.
    headers: Vec<(String, String)>,
    /// Bytes of header lines so far (with their CRLF).
    used: usize,
    empty_lines: usize,
}

impl HeadParser {
    /// Longest line accepted now (without its line ending).
    fn limit(&self) -> usize {
        match self.start {
            None => MAX_REQUEST_LINE,
            Some(_) => MAX_HEADER_BYTES.saturating_sub(self.used),
        }
    }

    /// Feeds `bytes`: returns how many were consumed and, once a head is
    /// complete or refused, the outcome (the parser is then ready for the
    /// next head, and bytes after this head are left unconsumed).
    pub(super) fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Head>) {
        let mut pos = 0;
        while pos < bytes.len() {
            let avail = &bytes[pos..];
            let max = self.limit();
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&avail[..i]);
                    pos += i + 1;
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    let outcome = if self.line.len() > max {
                        Some(self.too_long())
                    } else {
                        self.complete_line()
                    };
                    self.line.clear();
                    if let Some(outcome) = outcome {
                        self.reset();
                        return (pos, Some(outcome));
                    }
                }
                None => {
                    self.line.extend_from_slice(avail);
                    pos = bytes.len();
                    // One extra byte may be the CR of the line ending.
                    if self.line.len() > max.saturating_add(1) {
                        let outcome = self.too_long();
                        self.reset();
                        return (pos, Some(outcome));
                    }
                }
            }
        }
        (pos, None)
    }

    /// Ready for the next head (a large line buffer is given back).
    fn reset(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        if line.capacity() > 4096 {
            line = Vec::new();
        }
        *self = HeadParser {
            line,
            ..HeadParser::default()
        };
    }

    fn too_long(&self) -> Head {
        match &self.start {
            None => Head::Reject(400, sanitize(&self.line)),
            Some(start) => Head::Reject(431, start.log_line.clone()),
        }
    }

    /// Takes in the complete line in `self.line`; `Some` when the head
    /// is complete or refused.
    fn complete_line(&mut self) -> Option<Head> {
        let line = &self.line;
        let Some(start) = &self.start else {
            if line.is_empty() {
                self.empty_lines += 1;
                return (self.empty_lines > MAX_LEADING_EMPTY_LINES)
                    .then(|| Head::Reject(400, "-".to_owned()));
            }
            let log_line = sanitize(line);
            return match parse_request_line(line) {
                Ok((method, target, http10)) => {
                    self.start = Some(StartLine {
                        method,
                        target,
                        http10,
                        log_line,
                    });
                    None
                }
                Err(status) => Some(Head::Reject(status, log_line)),
            };
        };
        if line.is_empty() {
            let start = self.start.take()?;
            return Some(Head::Request(Request {
                method: start.method,
                target: start.target,
                http10: start.http10,
                headers: std::mem::take(&mut self.headers),
                log_line: start.log_line,
            }));
        }
        self.used += line.len() + 2;
        if self.headers.len() == MAX_HEADERS {
            return Some(Head::Reject(431, start.log_line.clone()));
        }
        // Obsolete line folding is rejected (RFC 9112 section 5.2).
        if matches!(line[0], b' ' | b'\t') {
            return Some(Head::Reject(400, start.log_line.clone()));
        }
        let Some((name, value)) = parse_field_line(line) else {
            return Some(Head::Reject(400, start.log_line.clone()));
        };
        self.headers.push((name.to_ascii_lowercase(), value));
        None
    }
}

#[cfg(test)]
mod tests;
