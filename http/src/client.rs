//! A minimal HTTP/1.1 client: one `GET` per connection (RFC 9110, RFC
//! 9112), the body streamed to a writer, and a progress line renderer.

use std::error::Error;
use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::wire::{InBuf, Line, is_timeout, parse_decimal, parse_field_line};

/// Most bytes of response header fields (and of trailer fields) accepted.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;
/// Most response header fields accepted.
pub const MAX_RESPONSE_HEADERS: usize = 256;
/// `progress` is called at least this often (in body bytes) ...
pub const PROGRESS_BYTES: u64 = 256 * 1024;
/// ... or after this much time with some data, whichever comes first.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Read buffer of the client.
const BUFFER: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// At most this much of the body of a non-2xx response is read (and
/// discarded) before giving up on it.
const MAX_DRAIN: u64 = 1024 * 1024;

/// An `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or address, without brackets for IPv6 literals.
    pub host: String,
    /// Port, 80 when the URL has none.
    pub port: u16,
    /// Request target: path and query, starting with `/`, without the
    /// fragment; spaces, controls and non-ASCII bytes percent-encoded.
    pub path: String,
}

impl Url {
    /// Parses `http://host[:port][/path][?query][#fragment]`. Errors are
    /// one line, suitable after "ustack: error: ".
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "missing scheme in URL '{s}' (expected http://HOST[:PORT][/PATH])"
            ));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err("https:// URLs are not supported (no TLS); use http://".to_owned());
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!(
                "unsupported URL scheme '{scheme}' (only http:// is supported)"
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err("user names and passwords in URLs are not supported".to_owned());
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(format!("unterminated '[' in URL host '{authority}'"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("unexpected '{after}' after URL host '[{host}]'")),
                },
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("empty host in URL '{s}'"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"\\^`{|}".contains(c))
        {
            return Err(format!("invalid host '{host}' in URL"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => match parse_decimal(p).and_then(|n| u16::try_from(n).ok()) {
                Some(n) if n > 0 => n,
                _ => return Err(format!("bad port '{p}' in URL (expected 1-65535)")),
            },
        };
        let tail = tail.split('#').next().unwrap_or("");
        let mut path = String::with_capacity(tail.len() + 1);
        if !tail.starts_with('/') {
            path.push('/');
        }
        for &b in tail.as_bytes() {
            if b <= b' ' || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
                let _ = write!(path, "%{b:02X}");
            } else {
                path.push(b as char);
            }
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The value of the `Host` header: the host, brackets around an IPv6
    /// literal, and the port unless it is 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// The final response to a [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code of the final (non-1xx) response.
    pub status: u16,
    /// Reason phrase of the status line (possibly empty).
    pub reason: String,
    /// Header fields as received (names in their original case).
    pub headers: Vec<(String, String)>,
    /// Body bytes written to `out` (after removing chunked framing).
    pub body_len: u64,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a [`get`] failed.
#[derive(Debug)]
pub enum HttpError {
    /// Reading from or writing to the connection failed (a timeout
    /// included); `context` says what was being done.
    Io {
        /// What was being done: `sending request`, `reading response`...
        context: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// Writing the body to the output failed.
    Output(io::Error),
    /// The server did not send a valid HTTP/1.x response.
    Malformed(String),
    /// The connection closed before the whole body arrived: after
    /// `received` of `expected` bytes (`None`: a chunked body).
    Truncated {
        /// Body bytes received.
        received: u64,
        /// The `Content-Length`, if the body had one.
        expected: Option<u64>,
    },
    /// The final status was not 2xx. Its body was read and discarded.
    Status {
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
        /// The `Location` header of a redirection, if any.
        location: Option<String>,
    },
    /// The response head exceeded [`MAX_RESPONSE_HEADER_BYTES`] or
    /// [`MAX_RESPONSE_HEADERS`].
    HeadersTooLarge,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io { context, source } if is_timeout(source) => {
                write!(f, "{context}: timed out")
            }
            HttpError::Io { context, source } => write!(f, "{context}: {source}"),
            HttpError::Output(e) => write!(f, "writing output: {e}"),
            HttpError::Malformed(what) => write!(f, "malformed response: {what}"),
            HttpError::Truncated {
                received,
                expected: Some(expected),
            } => write!(
                f,
                "connection closed early: got {received} of {expected} body bytes"
            ),
            HttpError::Truncated {
                received,
                expected: None,
            } => write!(
                f,
                "connection closed early: chunked body ended without its last chunk \
                 (got {received} bytes)"
            ),
            HttpError::Status {
                status,
                reason,
                location,
            } => {
                write!(f, "server answered {status} {reason}")?;
                match location {
                    Some(location) => write!(f, " (Location: {location})"),
                    None => Ok(()),
                }
            }
            HttpError::HeadersTooLarge => write!(
                f,
                "response headers too large (over {} KiB or {MAX_RESPONSE_HEADERS} fields)",
                MAX_RESPONSE_HEADER_BYTES / 1024
            ),
        }
    }
}

impl Error for HttpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            HttpError::Io { source, .. } => Some(source),
            HttpError::Output(e) => Some(e),
            _ => None,
        }
    }
}

fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> HttpError {
    move |source| HttpError::Io { context, source }
}

/// Sends `GET url.path` on `stream` (already connected to the URL's host
/// and port, with the timeouts the caller wants), reads the response, and
/// writes its body to `out`.
///
/// The request carries `Host`, `User-Agent: ustack` and `Connection:
/// close`. Interim 1xx responses are skipped. The body is delimited by
/// `Transfer-Encoding: chunked` (trailers are read into
/// [`Response::trailers`]), else by `Content-Length`, else by the end of
/// the stream. `progress(received, total)` is called once before the body
/// with 0, then whenever [`PROGRESS_BYTES`] more have arrived or
/// [`PROGRESS_INTERVAL`] has passed since the last call (checked after each
/// read), and once at the end with the final count; `total` is the
/// `Content-Length` if there is one. A non-2xx status gives
/// [`HttpError::Status`] after its body has been discarded (`out` and
/// `progress` are not used).
pub fn get<S: Read + Write>(
    stream: &mut S,
    url: &Url,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Response, HttpError> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ustack\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        url.path,
        url.host_header()
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(io_error("sending request"))?;

    let mut input = InBuf::new(BUFFER);
    let mut line = Vec::new();
    let Head {
        status,
        reason,
        headers,
    } = loop {
        let head = read_head(stream, &mut input, &mut line)?;
        match head.status {
            101 => {
                return Err(HttpError::Malformed(
                    "unexpected 101 Switching Protocols".into(),
                ));
            }
            100..=199 => continue,
            _ => break head,
        }
    };
    let framing = body_framing(status, &headers)?;
    let total = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };

    if !(200..300).contains(&status) {
        let location = find_header(&headers, "location").map(str::to_owned);
        let mut ignore = |_: u64, _: Option<u64>| {};
        let mut sink = Sink::new(None, &mut ignore, total, MAX_DRAIN);
        // Errors while draining do not matter: the status is the news.
        let _ = read_body(stream, &mut input, &mut line, framing, &mut sink);
        return Err(HttpError::Status {
            status,
            reason,
            location,
        });
    }

    progress(0, total);
    let mut sink = Sink::new(Some(out), progress, total, u64::MAX);
    let trailers = read_body(stream, &mut input, &mut line, framing, &mut sink)?;
    sink.report();
    Ok(Response {
        status,
        reason,
        headers,
        body_len: sink.received,
        trailers,
    })
}

/// How a response body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

fn body_framing(status: u16, headers: &[(String, String)]) -> Result<Framing, HttpError> {
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Framing::None);
    }
    if let Some(te) = find_header(headers, "transfer-encoding") {
        let last = te.rsplit(',').next().unwrap_or("").trim();
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilEof
        });
    }
    let mut length = None;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        for item in value.split(',') {
            let n = parse_decimal(item.trim())
                .ok_or_else(|| HttpError::Malformed(format!("invalid Content-Length '{value}'")))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Malformed(
                    "conflicting Content-Length values".into(),
                ));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilEof, Framing::Length))
}

/// Where body bytes go: `out` (or nowhere), with progress reports.
struct Sink<'a> {
    out: Option<&'a mut dyn Write>,
    progress: &'a mut dyn FnMut(u64, Option<u64>),
    total: Option<u64>,
    received: u64,
    /// Stop reading the body once this many bytes have arrived.
    limit: u64,
    reported: u64,
    reported_at: Instant,
}

impl<'a> Sink<'a> {
    fn new(
        out: Option<&'a mut dyn Write>,
        progress: &'a mut dyn FnMut(u64, Option<u64>),
        total: Option<u64>,
        limit: u64,
    ) -> Sink<'a> {
        Sink {
            out,
            progress,
            total,
            received: 0,
            limit,
            reported: 0,
            reported_at: Instant::now(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), HttpError> {
        if let Some(out) = &mut self.out {
            out.write_all(data).map_err(HttpError::Output)?;
        }
        self.received += data.len() as u64;
        if self.received - self.reported >= PROGRESS_BYTES
            || self.reported_at.elapsed() >= PROGRESS_INTERVAL
        {
            self.report();
        }
        Ok(())
    }

    fn report(&mut self) {
        (self.progress)(self.received, self.total);
        self.reported = self.received;
        self.reported_at = Instant::now();
    }

    fn full(&self) -> bool {
        self.received >= self.limit
    }
}

/// Reads the body into `sink`; returns the trailer fields.
fn read_body<S: Read>(
    stream: &mut S,
    input: &mut InBuf,
    line: &mut Vec<u8>,
    framing: Framing,
    sink: &mut Sink<'_>,
) -> Result<Vec<(String, String)>, HttpError> {
    match framing {
        Framing::None => {}
        Framing::Length(n) => copy_exact(stream, input, n, sink, Some(n))?,
        Framing::UntilEof => {
            while !sink.full() {
                let data = input
                    .take(stream, BUFFER)
                    .map_err(io_error("reading response body"))?;
                if data.is_empty() {
                    break;
                }
                sink.write(data)?;
            }
        }
        Framing::Chunked => return read_chunked(stream, input, line, sink),
    }
    Ok(Vec::new())
}

/// Copies `n` body bytes into `sink`; the end of the stream first is
/// [`HttpError::Truncated`] with `expected`.
fn copy_exact<S: Read>(
    stream: &mut S,
    input: &mut InBuf,
    n: u64,
    sink: &mut Sink<'_>,
    expected: Option<u64>,
) -> Result<(), HttpError> {
    let mut remaining = n;
    while remaining > 0 && !sink.full() {
        let want = usize::try_from(remaining).unwrap_or(usize::MAX);
        let data = input
            .take(stream, want)
            .map_err(io_error("reading response body"))?;
        if data.is_empty() {
            return Err(HttpError::Truncated {
                received: sink.received,
                expected,
            });
        }
        remaining -= data.len() as u64;
        sink.write(data)?;
    }
    Ok(())
}

/// Decodes a chunked body (RFC 9112 section 7.1) into `sink`; returns the
/// trailer fields.
fn read_chunked<S: Read>(
    stream: &mut S,
    input: &mut InBuf,
    line: &mut Vec<u8>,
    sink: &mut Sink<'_>,
) -> Result<Vec<(String, String)>, HttpError> {
    let truncated = |sink: &Sink<'_>| HttpError::Truncated {
        received: sink.received,
        expected: None,
    };
    loop {
        if sink.full() {
            return Ok(Vec::new());
        }
        match input
            .read_line(stream, line, MAX_CHUNK_LINE)
            .map_err(io_error("reading response body"))?
        {
            Line::Complete => {}
            Line::Eof { .. } => return Err(truncated(sink)),
            Line::TooLong => return Err(HttpError::Malformed("chunk size line too long".into())),
        }
        let size = parse_chunk_size(line).ok_or_else(|| {
            HttpError::Malformed(format!(
                "bad chunk size line '{}'",
                String::from_utf8_lossy(&line[..line.len().min(64)])
            ))
        })?;
        if size == 0 {
            break;
        }
        let before = sink.received;
        copy_exact(stream, input, size, sink, None)?;
        if sink.received - before < size {
            // The drain limit was reached inside this chunk.
            return Ok(Vec::new());
        }
        match input
            .read_line(stream, line, 0)
            .map_err(io_error("reading response body"))?
        {
            Line::Complete => {}
            Line::Eof { .. } => return Err(truncated(sink)),
            Line::TooLong => {
                return Err(HttpError::Malformed(
                    "chunk data longer than its size".into(),
                ));
            }
        }
    }
    // Trailer section: field lines up to an empty line. A connection that
    // closes here has delivered the whole body, so that is accepted.
    let mut trailers = Vec::new();
    let mut used = 0;
    loop {
        let budget = MAX_RESPONSE_HEADER_BYTES.saturating_sub(used);
        match input
            .read_line(stream, line, budget)
            .map_err(io_error("reading response body"))?
        {
            Line::Complete if line.is_empty() => return Ok(trailers),
            Line::Complete => {}
            Line::Eof { .. } => return Ok(trailers),
            Line::TooLong => return Err(HttpError::HeadersTooLarge),
        }
        used += line.len() + 2;
        if trailers.len() == MAX_RESPONSE_HEADERS {
            return Err(HttpError::HeadersTooLarge);
        }
        let (name, value) = parse_field_line(line)
            .ok_or_else(|| HttpError::Malformed("invalid trailer field".into()))?;
        trailers.push((name.to_owned(), value));
    }
}

/// The size of a `chunk-size [; extensions]` line.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// A response head.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

/// Reads a status line and header fields.
fn read_head<S: Read>(
    stream: &mut S,
    input: &mut InBuf,
    line: &mut Vec<u8>,
) -> Result<Head, HttpError> {
    let read_err = io_error("reading response headers");
    let status_line = input
        .read_line(stream, line, MAX_RESPONSE_HEADER_BYTES)
        .map_err(read_err)?;
    match status_line {
        Line::Complete => {}
        Line::Eof { partial: false } => {
            return Err(HttpError::Malformed(
                "connection closed before a response arrived".into(),
            ));
        }
        Line::Eof { partial: true } => {
            return Err(HttpError::Malformed(
                "connection closed inside the status line".into(),
            ));
        }
        Line::TooLong => return Err(HttpError::HeadersTooLarge),
    }
    let (status, reason) = parse_status_line(line)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut used = line.len() + 2;
    loop {
        let budget = MAX_RESPONSE_HEADER_BYTES.saturating_sub(used);
        let got = input
            .read_line(stream, line, budget)
            .map_err(io_error("reading response headers"))?;
        match got {
            Line::Complete if line.is_empty() => {
                return Ok(Head {
                    status,
                    reason,
                    headers,
                });
            }
            Line::Complete => {}
            Line::Eof { .. } => {
                return Err(HttpError::Malformed(
                    "connection closed inside the response headers".into(),
                ));
            }
            Line::TooLong => return Err(HttpError::HeadersTooLarge),
        }
        used += line.len() + 2;
        // Obsolete line folding: a user agent may replace it with a space
        // (RFC 9112 section 5.2).
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(line.trim_ascii()).as_ref());
                continue;
            }
        }
        if headers.len() == MAX_RESPONSE_HEADERS {
            return Err(HttpError::HeadersTooLarge);
        }
        let (name, value) = parse_field_line(line).ok_or_else(|| {
            HttpError::Malformed(format!(
                "invalid header line '{}'",
                String::from_utf8_lossy(&line[..line.len().min(64)])
            ))
        })?;
        headers.push((name.to_owned(), value));
    }
}

/// Parses `HTTP/1.x SSS reason` (the reason may be missing).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), HttpError> {
    let bad = || {
        HttpError::Malformed(format!(
            "not an HTTP/1.x status line: '{}'",
            String::from_utf8_lossy(&line[..line.len().min(64)]).escape_debug()
        ))
    };
    let (Some(version), Some(code)) = (line.get(..9), line.get(9..12)) else {
        return Err(bad());
    };
    let version_ok =
        version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit() && version[8] == b' ';
    if !version_ok || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if status < 100 {
        return Err(bad());
    }
    let reason = match &line[12..] {
        [] => String::new(),
        [b' ', reason @ ..] => String::from_utf8_lossy(reason).into_owned(),
        _ => return Err(bad()),
    };
    Ok((status, reason))
}

#[cfg(test)]
mod tests;
