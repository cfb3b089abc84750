//! A static file server: HTTP/1.1 (RFC 9110, RFC 9112) over any byte
//! stream, one connection per call of [`FileServer::serve_connection`].
//!
//! It serves `GET` and `HEAD` of regular files below a root directory, with
//! persistent connections, pipelining, single byte ranges and
//! `If-Modified-Since`. Request targets are percent-decoded once; a `..`
//! segment, a backslash, or a path whose canonical form (symlinks resolved)
//! leaves the root is refused with **403 Forbidden**; missing files,
//! directories without `index.html` and anything that is not a regular file
//! get **404 Not Found**.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::date::{clf_date, imf_fixdate, parse_imf_fixdate, unix_seconds};
use super::wire::{
    InBuf, Line, is_timeout, is_token, list_contains, parse_decimal, parse_field_line,
};

/// Longest request line accepted (without its CRLF); longer gets 400.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Most bytes of header fields accepted in one request; more gets 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one request; more gets 431.
pub const MAX_HEADERS: usize = 100;
/// Largest request body that is read and thrown away on `GET`/`HEAD` (or
/// before a 405); a larger or chunked body gets an error and the connection
/// is closed.
pub const MAX_DISCARDED_BODY: u64 = 64 * 1024;
/// File bodies are read and written in pieces of this size.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Read buffer per connection; request heads longer than this are fine
/// (lines are assembled across reads).
const INPUT_BUFFER: usize = 16 * 1024;
/// Empty lines tolerated before a request line.
const MAX_LEADING_EMPTY_LINES: usize = 8;
/// Request lines are cut to this many bytes in log records.
const LOG_LINE_MAX: usize = 1024;

/// Serves the files below one directory.
#[derive(Debug, Clone)]
pub struct FileServer {
    /// Canonical (absolute, symlink-free) root directory.
    root: PathBuf,
}

/// Why [`FileServer::serve_connection`] stopped serving a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side (end of stream), between requests or in
    /// the middle of one.
    #[default]
    ClientClosed,
    /// The client reset the connection.
    Reset,
    /// A read timed out (the stream's read timeout, or `WouldBlock`): an
    /// idle keep-alive connection, or a client that stalled mid-request.
    Idle,
    /// The last request asked to close (`Connection: close`, or HTTP/1.0
    /// without `Connection: keep-alive`); its response said so.
    ConnectionClose,
    /// The request could not be served safely on a persistent connection
    /// (malformed, too large, unsupported framing); an error response with
    /// `Connection: close` was sent.
    Rejected,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::ClientClosed => "closed by client",
            CloseReason::Reset => "reset by client",
            CloseReason::Idle => "idle timeout",
            CloseReason::ConnectionClose => "Connection: close",
            CloseReason::Rejected => "bad request",
        })
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Responses sent, error responses included (not `100 Continue`).
    pub requests: u64,
    /// Bytes written to the stream (heads and bodies).
    pub bytes_sent: u64,
    /// Bytes read from the stream.
    pub bytes_received: u64,
    /// Why serving stopped.
    pub close: CloseReason,
    /// The connection was closed with input possibly left unread (an
    /// error response, or a pipelined request after `Connection: close`).
    /// Closing a TCP socket with unread input makes the kernel send a RST,
    /// which can destroy the response before the client reads it, so the
    /// caller should shut down its write side and then [`drain_input`]
    /// briefly before dropping the stream.
    pub drain_before_close: bool,
}

/// One request and the response to it, for access logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The `peer` given to [`FileServer::serve_connection_logged`].
    pub peer: String,
    /// When the request head had been read.
    pub time: SystemTime,
    /// The request line, with `"`, `\`, control and non-ASCII bytes escaped
    /// (`\"`, `\\`, `\xHH`) and cut to 1 KiB; `-` when nothing usable
    /// arrived.
    pub request_line: String,
    /// Status code sent.
    pub status: u16,
    /// Body bytes sent (0 for `HEAD` and `304`).
    pub body_bytes: u64,
    /// `Referer` of the request, escaped like `request_line`.
    pub referer: Option<String>,
    /// `User-Agent` of the request, escaped like `request_line`.
    pub user_agent: Option<String>,
    /// False when writing the response failed part-way (the connection
    /// was then aborted and `serve_connection` returned the error).
    pub complete: bool,
}

impl RequestRecord {
    /// The record in the Common Log Format:
    /// `peer - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 2326`
    /// (times in UTC; `-` for a zero-byte body).
    pub fn access_log_line(&self) -> String {
        let bytes = if self.body_bytes == 0 {
            "-".to_owned()
        } else {
            self.body_bytes.to_string()
        };
        format!(
            "{} - - [{}] \"{}\" {} {}",
            self.peer,
            clf_date(self.time),
            self.request_line,
            self.status,
            bytes
        )
    }
}

/// Reads and discards input until end of stream, an error (a read timeout
/// included), `max_bytes`, or `max_time`; returns the bytes discarded.
///
/// This is the "lingering close" of an HTTP server: after
/// [`ConnectionStats::drain_before_close`], shut down the write side of
/// the stream (so the client sees the end of the response), set a short
/// read timeout (`max_time` is only checked between reads), then call this
/// before dropping the stream.
pub fn drain_input<S: Read + ?Sized>(stream: &mut S, max_bytes: u64, max_time: Duration) -> u64 {
    let start = Instant::now();
    let mut buf = [0u8; 8192];
    let mut total = 0u64;
    while total < max_bytes && start.elapsed() < max_time {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    total
}

impl FileServer {
    /// A server for the files below `root`, which must be a directory. The
    /// root is canonicalized once here.
    pub fn new(root: &Path) -> io::Result<FileServer> {
        let canonical = fs::canonicalize(root)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(FileServer { root: canonical })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves requests on `stream` until the client closes, asks to close,
    /// sends something unusable, or stays idle past the stream's read
    /// timeout. `peer` only names the client in log records; see
    /// [`FileServer::serve_connection_logged`].
    // Used by the tests (the programs log every request).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn serve_connection<S: Read + Write>(
        &self,
        stream: &mut S,
        peer: &str,
    ) -> io::Result<ConnectionStats> {
        self.serve_connection_logged(stream, peer, &mut |_| {})
    }

    /// [`FileServer::serve_connection`], calling `log` after each response
    /// (also one that failed part-way).
    ///
    /// Returns `Ok` when the connection ended in one of the ways of
    /// [`CloseReason`], and `Err` when writing to the stream failed (a
    /// write timeout included), reading it failed other than by end of
    /// stream, reset or timeout, or a file could not be read after its
    /// response had begun. In every case the caller just drops the stream.
    pub fn serve_connection_logged<S: Read + Write>(
        &self,
        stream: &mut S,
        peer: &str,
        log: &mut dyn FnMut(&RequestRecord),
    ) -> io::Result<ConnectionStats> {
        let mut conn = Conn {
            server: self,
            stream,
            input: InBuf::new(INPUT_BUFFER),
            line: Vec::new(),
            chunk: Vec::new(),
            stats: ConnectionStats::default(),
        };
        let result = conn.run(peer, log);
        conn.stats.bytes_received = conn.input.total;
        result.map(|()| conn.stats)
    }

    /// Maps a request target to an open regular file below the root, or
    /// to the status code of the refusal.
    fn resolve(&self, target: &[u8]) -> Result<Found, u16> {
        let raw_path = request_path(target)?;
        let decoded = percent_decode(raw_path).ok_or(400u16)?;
        if decoded.contains(&b'\\') {
            return Err(403);
        }
        let mut path = self.root.clone();
        let mut name: &[u8] = b"";
        // `/file.txt/` names a directory, which a file is not.
        let mut wants_dir = false;
        for segment in decoded.split(|&b| b == b'/') {
            wants_dir = matches!(segment, b"" | b".");
            match segment {
                b"" | b"." => {}
                b".." => return Err(403),
                _ => {
                    path.push(OsStr::from_bytes(segment));
                    name = segment;
                }
            }
        }
        let mut path = self.canonical_inside(&path)?;
        let mut meta = fs::metadata(&path).map_err(|e| status_of(&e))?;
        if !meta.is_dir() && wants_dir {
            return Err(404);
        }
        if meta.is_dir() {
            path = self.canonical_inside(&path.join("index.html"))?;
            meta = fs::metadata(&path).map_err(|e| status_of(&e))?;
            name = b"index.html";
        }
        // Checked before opening: opening a FIFO would block.
        if !meta.is_file() {
            return Err(404);
        }
        let file = File::open(&path).map_err(|e| status_of(&e))?;
        let meta = file.metadata().map_err(|e| status_of(&e))?;
        if !meta.is_file() {
            return Err(404);
        }
        Ok(Found {
            file,
            len: meta.len(),
            mtime: meta.modified().unwrap_or(UNIX_EPOCH),
            content_type: content_type(name),
        })
    }

    /// `path` with every symlink resolved, if that is inside the root.
    fn canonical_inside(&self, path: &Path) -> Result<PathBuf, u16> {
        let canonical = fs::canonicalize(path).map_err(|e| status_of(&e))?;
        if canonical.starts_with(&self.root) {
            Ok(canonical)
        } else {
            Err(403)
        }
    }
}

/// Status for a file system error while resolving a path.
fn status_of(e: &io::Error) -> u16 {
    if e.kind() == ErrorKind::PermissionDenied {
        403
    } else {
        404
    }
}

/// A file found for a request.
struct Found {
    file: File,
    len: u64,
    mtime: SystemTime,
    content_type: &'static str,
}

/// The path part of a request target: origin-form (`/a/b?q`) or
/// absolute-form (`http://host/a/b?q`), without query or fragment.
fn request_path(target: &[u8]) -> Result<&[u8], u16> {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let target = &target[..end];
    if target.starts_with(b"/") {
        return Ok(target);
    }
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            return Ok(match rest.iter().position(|&b| b == b'/') {
                Some(i) => &rest[i..],
                None => b"/",
            });
        }
    }
    Err(400)
}

/// Decodes `%XX` escapes once (so `%252e` becomes the three characters
/// `%2e`, never `.`). `None` for a malformed escape or an escaped NUL.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let pair = s.get(i + 1..i + 3)?;
            let byte = hex(pair[0])? << 4 | hex(pair[1])?;
            if byte == 0 {
                return None;
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `Content-Type` for a file name, from its extension.
fn content_type(name: &[u8]) -> &'static str {
    let ext = match name.iter().rposition(|&b| b == b'.') {
        Some(i) => name[i + 1..].to_ascii_lowercase(),
        None => Vec::new(),
    };
    match ext.as_slice() {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"txt" => "text/plain; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"md" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"json" => "application/json",
        b"xml" => "application/xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"svg" => "image/svg+xml",
        b"ico" => "image/x-icon",
        b"pdf" => "application/pdf",
        b"wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// A single range of a `Range: bytes=...` header (RFC 9110 section 14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-` or `first-last`.
    Int(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a `Range` value holding exactly one byte range. `None` (ignore
/// the header, send the whole file) for another unit, a malformed value,
/// `last < first`, or several ranges.
fn parse_range(value: &str) -> Option<RangeSpec> {
    fn number(s: &str) -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Longer than u64: as large as it gets.
        Some(s.parse().unwrap_or(u64::MAX))
    }
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    // Empty list elements are allowed (RFC 9110 section 5.6.1.2).
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(RangeSpec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(RangeSpec::Int(first, None));
    }
    let last = number(last)?;
    if last < first {
        return None;
    }
    Some(RangeSpec::Int(first, Some(last)))
}

/// What a range means for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeOutcome {
    /// Send the whole file (200).
    Full,
    /// Send bytes `first..=last` (206).
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

fn apply_range(spec: RangeSpec, len: u64) -> RangeOutcome {
    match spec {
        RangeSpec::Int(first, _) if first >= len => RangeOutcome::Unsatisfiable,
        RangeSpec::Int(first, last) => {
            RangeOutcome::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
        }
        RangeSpec::Suffix(0) => RangeOutcome::Unsatisfiable,
        // A suffix range is satisfiable on an empty file, but there are no
        // bytes to send: answer with the whole (empty) file.
        RangeSpec::Suffix(_) if len == 0 => RangeOutcome::Full,
        RangeSpec::Suffix(n) => RangeOutcome::Part(len - n.min(len), len - 1),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Escapes a request line or header value for a log line.
fn sanitize(bytes: &[u8]) -> String {
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
struct Request {
    method: String,
    target: Vec<u8>,
    http10: bool,
    /// Field names in lower case, values trimmed, in arrival order.
    headers: Vec<(String, String)>,
    log_line: String,
}

/// How the request body is delimited.
enum Framing {
    None,
    Length(u64),
    /// `Transfer-Encoding`: not read by this server.
    Unframed,
}

impl Request {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.all(name).next()
    }

    /// Whether the client wants the connection kept open after this
    /// request (RFC 9112 section 9.3).
    fn keep_alive(&self) -> bool {
        let (mut close, mut keep) = (false, false);
        for value in self.all("connection") {
            close |= list_contains(value, "close");
            keep |= list_contains(value, "keep-alive");
        }
        !close && (!self.http10 || keep)
    }

    /// HTTP/1.1 requests need exactly one `Host` (RFC 9112 section 3.2).
    fn check_host(&self) -> Result<(), u16> {
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
    fn framing(&self) -> Result<Framing, u16> {
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

/// A response about to be sent.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    /// `Content-Length`; `None` sends none (304).
    content_length: Option<u64>,
    body: Body,
}

enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of the file from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Reply {
    /// An error response with a short HTML body.
    fn error(status: u16) -> Reply {
        let text = format!("{status} {}", reason_phrase(status));
        let body = format!(
            "<!DOCTYPE html>\n<html><head><title>{text}</title></head>\
             <body><h1>{text}</h1></body></html>\n"
        );
        Reply {
            status,
            headers: vec![("Content-Type", "text/html; charset=utf-8".to_owned())],
            content_length: Some(body.len() as u64),
            body: Body::Bytes(body.into_bytes()),
        }
    }

    fn method_not_allowed() -> Reply {
        let mut reply = Reply::error(405);
        reply.headers.push(("Allow", "GET, HEAD".to_owned()));
        reply
    }
}

/// What to do after the request head.
enum Step {
    /// Send `reply`, then close the connection for `close` if it is set.
    Reply {
        reply: Reply,
        close: Option<CloseReason>,
    },
    /// The client went away or stalled while its body was being read.
    Stop(CloseReason),
}

/// The `Connection` header of a response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnectionHeader {
    Close,
    /// `keep-alive`, for HTTP/1.0 clients that asked for it.
    KeepAlive,
    /// None: HTTP/1.1 connections persist by default.
    Omit,
}

/// Why no request head could be read.
enum HeadError {
    Stop(CloseReason),
    Io(io::Error),
    /// Answer with this status, log this request line, and close.
    Reject(u16, String),
}

/// Read errors that end a connection normally (`Ok`) or not.
fn read_error(e: io::Error) -> Result<CloseReason, io::Error> {
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

fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// One connection being served.
struct Conn<'a, S> {
    server: &'a FileServer,
    stream: &'a mut S,
    input: InBuf,
    line: Vec<u8>,
    /// Output buffer for a response head and a piece of its body;
    /// allocated on the first file response.
    chunk: Vec<u8>,
    stats: ConnectionStats,
}

impl<S: Read + Write> Conn<'_, S> {
    fn run(&mut self, peer: &str, log: &mut dyn FnMut(&RequestRecord)) -> io::Result<()> {
        loop {
            let request = match self.read_head() {
                Ok(request) => request,
                Err(HeadError::Stop(reason)) => {
                    self.stats.close = reason;
                    return Ok(());
                }
                Err(HeadError::Io(e)) => return Err(with_context(e, "reading request")),
                Err(HeadError::Reject(status, log_line)) => {
                    let record = RequestRecord {
                        peer: peer.to_owned(),
                        time: SystemTime::now(),
                        request_line: log_line,
                        status,
                        body_bytes: 0,
                        referer: None,
                        user_agent: None,
                        complete: true,
                    };
                    self.stats.close = CloseReason::Rejected;
                    self.stats.drain_before_close = true;
                    let reply = Reply::error(status);
                    return self.send_logged(reply, false, ConnectionHeader::Close, record, log);
                }
            };
            let record = RequestRecord {
                peer: peer.to_owned(),
                time: SystemTime::now(),
                request_line: request.log_line.clone(),
                status: 0,
                body_bytes: 0,
                referer: request.header("referer").map(|v| sanitize(v.as_bytes())),
                user_agent: request.header("user-agent").map(|v| sanitize(v.as_bytes())),
                complete: true,
            };
            let (reply, close) = match self.respond(&request)? {
                Step::Reply { reply, close } => (reply, close),
                Step::Stop(reason) => {
                    self.stats.close = reason;
                    return Ok(());
                }
            };
            let connection = match close {
                Some(_) => ConnectionHeader::Close,
                None if request.http10 => ConnectionHeader::KeepAlive,
                None => ConnectionHeader::Omit,
            };
            let head_only = request.method == "HEAD";
            self.send_logged(reply, head_only, connection, record, log)?;
            if let Some(reason) = close {
                self.stats.close = reason;
                self.stats.drain_before_close =
                    reason == CloseReason::Rejected || self.input.buffered() > 0;
                return Ok(());
            }
        }
    }

    /// Reads a request head: the request line (after up to a few empty
    /// lines, RFC 9112 section 2.2) and the header fields.
    fn read_head(&mut self) -> Result<Request, HeadError> {
        let mut empty_lines = 0;
        loop {
            let status = self
                .input
                .read_line(self.stream, &mut self.line, MAX_REQUEST_LINE)?;
            match status {
                Line::Complete if self.line.is_empty() => {
                    empty_lines += 1;
                    if empty_lines > MAX_LEADING_EMPTY_LINES {
                        return Err(HeadError::Reject(400, "-".to_owned()));
                    }
                }
                Line::Complete => break,
                Line::TooLong => return Err(HeadError::Reject(400, sanitize(&self.line))),
                Line::Eof { .. } => return Err(HeadError::Stop(CloseReason::ClientClosed)),
            }
        }
        let log_line = sanitize(&self.line);
        let (method, target, http10) = parse_request_line(&self.line)
            .map_err(|status| HeadError::Reject(status, log_line.clone()))?;
        let mut headers = Vec::new();
        let mut used = 0usize;
        loop {
            let budget = MAX_HEADER_BYTES.saturating_sub(used);
            let status = self.input.read_line(self.stream, &mut self.line, budget)?;
            match status {
                Line::Complete => {}
                Line::TooLong => return Err(HeadError::Reject(431, log_line)),
                Line::Eof { .. } => return Err(HeadError::Stop(CloseReason::ClientClosed)),
            }
            if self.line.is_empty() {
                break;
            }
            used += self.line.len() + 2;
            if headers.len() == MAX_HEADERS {
                return Err(HeadError::Reject(431, log_line));
            }
            // Obsolete line folding is rejected (RFC 9112 section 5.2).
            if matches!(self.line[0], b' ' | b'\t') {
                return Err(HeadError::Reject(400, log_line));
            }
            let Some((name, value)) = parse_field_line(&self.line) else {
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

    /// Decides the response to a request, reading (and discarding) a small
    /// request body first.
    fn respond(&mut self, request: &Request) -> io::Result<Step> {
        let reject = |reply| {
            Ok(Step::Reply {
                reply,
                close: Some(CloseReason::Rejected),
            })
        };
        if let Err(status) = request.check_host() {
            return reject(Reply::error(status));
        }
        let framing = match request.framing() {
            Ok(framing) => framing,
            Err(status) => return reject(Reply::error(status)),
        };
        let expect_continue = match request.header("expect") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            Some(_) => return reject(Reply::error(417)),
        };
        let allowed = matches!(request.method.as_str(), "GET" | "HEAD");
        let refusal = || {
            if allowed {
                Reply::error(400)
            } else {
                Reply::method_not_allowed()
            }
        };
        match framing {
            Framing::None => {}
            Framing::Unframed => return reject(refusal()),
            Framing::Length(n) if n > MAX_DISCARDED_BODY => return reject(refusal()),
            Framing::Length(n) => {
                if expect_continue {
                    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
                    self.stream
                        .write_all(interim)
                        .and_then(|()| self.stream.flush())
                        .map_err(|e| with_context(e, "writing response"))?;
                    self.stats.bytes_sent += interim.len() as u64;
                }
                if let Some(reason) = self.discard(n)? {
                    return Ok(Step::Stop(reason));
                }
            }
        }
        let close = (!request.keep_alive()).then_some(CloseReason::ConnectionClose);
        if !allowed {
            return Ok(Step::Reply {
                reply: Reply::method_not_allowed(),
                close,
            });
        }
        Ok(match self.server.resolve(&request.target) {
            // A malformed target closes the connection like other 400s.
            Err(400) => Step::Reply {
                reply: Reply::error(400),
                close: Some(CloseReason::Rejected),
            },
            Err(status) => Step::Reply {
                reply: Reply::error(status),
                close,
            },
            Ok(found) => Step::Reply {
                reply: file_reply(request, found),
                close,
            },
        })
    }

    /// Reads and throws away `n` bytes of request body; `Some` when the
    /// client went away or stalled first.
    fn discard(&mut self, mut n: u64) -> io::Result<Option<CloseReason>> {
        while n > 0 {
            match self
                .input
                .take(self.stream, usize::try_from(n).unwrap_or(usize::MAX))
            {
                Ok([]) => return Ok(Some(CloseReason::ClientClosed)),
                Ok(bytes) => n -= bytes.len() as u64,
                Err(e) => {
                    return read_error(e)
                        .map(Some)
                        .map_err(|e| with_context(e, "reading request body"));
                }
            }
        }
        Ok(None)
    }

    /// Sends a response and logs it.
    fn send_logged(
        &mut self,
        reply: Reply,
        head_only: bool,
        connection: ConnectionHeader,
        mut record: RequestRecord,
        log: &mut dyn FnMut(&RequestRecord),
    ) -> io::Result<()> {
        record.status = reply.status;
        self.stats.requests += 1;
        let result = self.send(reply, head_only, connection, &mut record.body_bytes);
        record.complete = result.is_ok();
        log(&record);
        result
    }

    /// Writes a response: the head, then the body in pieces of
    /// [`CHUNK_SIZE`] (the first one in the same write as the head).
    fn send(
        &mut self,
        reply: Reply,
        head_only: bool,
        connection: ConnectionHeader,
        body_sent: &mut u64,
    ) -> io::Result<()> {
        let mut head = String::with_capacity(512);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: ustack\r\n",
            reply.status,
            reason_phrase(reply.status),
            imf_fixdate(SystemTime::now())
        );
        for (name, value) in &reply.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some(len) = reply.content_length {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        match connection {
            ConnectionHeader::Close => head.push_str("Connection: close\r\n"),
            ConnectionHeader::KeepAlive => head.push_str("Connection: keep-alive\r\n"),
            ConnectionHeader::Omit => {}
        }
        head.push_str("\r\n");

        let body = if head_only { Body::Empty } else { reply.body };
        let written = match body {
            Body::Empty => self.write(head.as_bytes()),
            Body::Bytes(bytes) => {
                let mut all = head.into_bytes();
                all.extend_from_slice(&bytes);
                self.write(&all).map(|()| *body_sent = bytes.len() as u64)
            }
            Body::File { file, offset, len } => self.send_file(&head, file, offset, len, body_sent),
        };
        written.and_then(|()| {
            self.stream
                .flush()
                .map_err(|e| with_context(e, "writing response"))
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream
            .write_all(bytes)
            .map_err(|e| with_context(e, "writing response"))?;
        self.stats.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    fn send_file(
        &mut self,
        head: &str,
        mut file: File,
        offset: u64,
        len: u64,
        body_sent: &mut u64,
    ) -> io::Result<()> {
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| with_context(e, "reading file"))?;
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(CHUNK_SIZE.max(head.len() + 1), 0);
        chunk[..head.len()].copy_from_slice(head.as_bytes());
        let mut start = head.len();
        let mut remaining = len;
        let result = loop {
            let n = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(chunk.len() - start);
            // A file that shrank since its length was taken fails here:
            // the promised Content-Length cannot be kept, so the
            // connection is aborted.
            if let Err(e) = file.read_exact(&mut chunk[start..start + n]) {
                break Err(with_context(e, "reading file"));
            }
            if let Err(e) = self.write(&chunk[..start + n]) {
                break Err(e);
            }
            *body_sent += n as u64;
            remaining -= n as u64;
            start = 0;
            if remaining == 0 {
                break Ok(());
            }
        };
        self.chunk = chunk;
        result
    }
}

/// The response to a `GET` or `HEAD` of a file that was found.
fn file_reply(request: &Request, found: Found) -> Reply {
    // Last-Modified must not be in the future (RFC 9110 section 8.8.2.1).
    let mtime = found.mtime.min(SystemTime::now());
    let last_modified = imf_fixdate(mtime);
    let mut headers = vec![
        ("Content-Type", found.content_type.to_owned()),
        ("Last-Modified", last_modified.clone()),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    // If-Modified-Since is ignored when If-None-Match is present (we have
    // no entity tags to compare); RFC 9110 section 13.1.3.
    if request.header("if-none-match").is_none() {
        let since = request
            .header("if-modified-since")
            .and_then(parse_imf_fixdate);
        if since.is_some_and(|since| unix_seconds(mtime) <= since) {
            headers.remove(0);
            return Reply {
                status: 304,
                headers,
                content_length: None,
                body: Body::Empty,
            };
        }
    }
    let len = found.len;
    // Ranges apply to GET only (RFC 9110 section 14.2); several Range
    // fields, or an If-Range that does not match, mean the whole file.
    let mut ranges = request.all("range");
    let outcome = match (ranges.next(), ranges.next()) {
        (Some(range), None)
            if request.method == "GET"
                && request
                    .header("if-range")
                    .is_none_or(|v| v.trim() == last_modified) =>
        {
            parse_range(range).map_or(RangeOutcome::Full, |spec| apply_range(spec, len))
        }
        _ => RangeOutcome::Full,
    };
    match outcome {
        RangeOutcome::Full => Reply {
            status: 200,
            headers,
            content_length: Some(len),
            body: Body::File {
                file: found.file,
                offset: 0,
                len,
            },
        },
        RangeOutcome::Part(first, last) => {
            headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
            let n = last - first + 1;
            Reply {
                status: 206,
                headers,
                content_length: Some(n),
                body: Body::File {
                    file: found.file,
                    offset: first,
                    len: n,
                },
            }
        }
        RangeOutcome::Unsatisfiable => {
            let mut reply = Reply::error(416);
            reply
                .headers
                .push(("Content-Range", format!("bytes */{len}")));
            reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_parsing() {
        use RangeSpec::*;
        assert_eq!(parse_range("bytes=0-499"), Some(Int(0, Some(499))));
        assert_eq!(parse_range("BYTES=500-"), Some(Int(500, None)));
        assert_eq!(parse_range("bytes=-500"), Some(Suffix(500)));
        assert_eq!(parse_range("bytes= 1-2 ,"), Some(Int(1, Some(2))));
        assert_eq!(
            parse_range("bytes=1-99999999999999999999999"),
            Some(Int(1, Some(u64::MAX)))
        );
        for bad in [
            "bytes=5-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "items=1-2",
            "1-2",
            "bytes=0-1,3-4",
            "bytes=--1",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
        assert_eq!(apply_range(Int(0, Some(9)), 5), RangeOutcome::Part(0, 4));
        assert_eq!(apply_range(Int(5, None), 5), RangeOutcome::Unsatisfiable);
        assert_eq!(apply_range(Suffix(9), 5), RangeOutcome::Part(0, 4));
        assert_eq!(apply_range(Suffix(2), 5), RangeOutcome::Part(3, 4));
        assert_eq!(apply_range(Suffix(0), 5), RangeOutcome::Unsatisfiable);
        assert_eq!(apply_range(Suffix(3), 0), RangeOutcome::Full);
        assert_eq!(apply_range(Int(0, None), 0), RangeOutcome::Unsatisfiable);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"/a%20b%2Fc").unwrap(), b"/a b/c");
        assert_eq!(percent_decode(b"/%252e").unwrap(), b"/%2e");
        for bad in [&b"/%"[..], b"/%2", b"/%zz", b"/%00", b"/%g0"] {
            assert_eq!(percent_decode(bad), None);
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /x HTTP/1.1"),
            Ok(("GET".to_owned(), b"/x".to_vec(), false))
        );
        assert_eq!(
            parse_request_line(b"GET /x HTTP/1.0").map(|r| r.2),
            Ok(true)
        );
        assert_eq!(parse_request_line(b"GET /x HTTP/2.0"), Err(505));
        for bad in [
            &b"GET /x"[..],
            b"GET  /x HTTP/1.1",
            b"GET /x HTTP/1.1 ",
            b"G(T /x HTTP/1.1",
            b"GET /x HTTP/1",
            b"GET /\x01 HTTP/1.1",
            b"",
        ] {
            assert_eq!(
                parse_request_line(bad),
                Err(400),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn targets_and_types() {
        assert_eq!(request_path(b"/a?x=/../"), Ok(&b"/a"[..]));
        assert_eq!(request_path(b"http://h:1/a/b#f"), Ok(&b"/a/b"[..]));
        assert_eq!(request_path(b"HTTP://h"), Ok(&b"/"[..]));
        assert_eq!(request_path(b"*"), Err(400));
        assert_eq!(request_path(b"a/b"), Err(400));
        assert_eq!(content_type(b"x.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"archive.tar.gz"), "application/octet-stream");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
        assert_eq!(sanitize(b"GET /\"x\\\x01\xff"), "GET /\\\"x\\\\\\x01\\xff");
    }
}
