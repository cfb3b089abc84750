//! A static file server: HTTP/1.1 (RFC 9110, RFC 9112). Each connection
//! is a sans-IO [`Session`] (from [`FileServer::session`]) that an event
//! loop drives; [`FileServer::serve_connection`] drives one over a
//! blocking stream.
//!
//! It serves `GET` and `HEAD` of regular files below a root directory, with
//! persistent connections, pipelining, single byte ranges,
//! `If-Modified-Since` and `If-Range`. Request targets are percent-decoded once; a `..`
//! segment, a backslash, or a path whose canonical form (symlinks resolved)
//! leaves the root is refused with **403 Forbidden**; missing files,
//! directories without `index.html` and anything that is not a regular file
//! get **404 Not Found**.
//!
//! The pieces: `request` parses request heads, `target` maps a target to
//! a file, `range` parses and applies byte ranges, `response` builds
//! replies (conditional requests included), `session` is the connection
//! state machine that ties them together, and `conn` drives a session
//! over a blocking stream.

mod conn;
mod range;
mod request;
mod response;
mod session;
mod target;

pub use session::Session;

use std::fmt;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::date::clf_date;

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
/// Deadlines and budgets of a connection, set with
/// [`FileServer::with_limits`]. The defaults are those of
/// [`ServerLimits::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Total time for a request head, from its first byte (from the start
    /// of the connection for the first request) to the blank line that ends
    /// it, a small request body included; however slowly the bytes trickle
    /// in, the request is cut at this deadline
    /// ([`CloseReason::HeadTimeout`]). Default 10 s.
    pub head_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request
    /// once the last response was sent ([`CloseReason::IdleTimeout`]).
    /// Default 15 s.
    pub idle_timeout: Duration,
    /// How long the client may take no output at all while a response is
    /// waiting ([`CloseReason::WriteStalled`]). Default 30 s.
    pub write_stall_timeout: Duration,
    /// Lingering close (after an error response, a 503, or a request left
    /// unread): the longest time input is drained. Default 2 s.
    pub linger_time: Duration,
    /// Lingering close: the most bytes drained. Default 1 MiB.
    pub linger_bytes: u64,
    /// `Retry-After` of a 503 from [`FileServer::busy_session`] (whole
    /// seconds). Default 5 s.
    pub busy_retry_after: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            write_stall_timeout: Duration::from_secs(30),
            linger_time: Duration::from_secs(2),
            linger_bytes: 1 << 20,
            busy_retry_after: Duration::from_secs(5),
        }
    }
}

/// Serves the files below one directory. Cheap to clone (the root is
/// shared).
#[derive(Debug, Clone)]
pub struct FileServer {
    /// Canonical (absolute, symlink-free) root directory.
    root: Arc<Path>,
    limits: ServerLimits,
}

/// Why a connection stopped being served ([`Session::is_finished`],
/// [`ConnectionStats::close`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side (end of stream), between requests or in
    /// the middle of one.
    #[default]
    ClientClosed,
    /// The client reset the connection.
    Reset,
    /// A read on a blocking stream timed out (the stream's own read
    /// timeout, or `WouldBlock`) before any deadline of the session: an
    /// idle keep-alive connection, or a client that stalled mid-request.
    Idle,
    /// The request head (and small body) was not complete within
    /// [`ServerLimits::head_timeout`].
    HeadTimeout,
    /// No new request within [`ServerLimits::idle_timeout`] of the last
    /// response.
    IdleTimeout,
    /// The client took no output for
    /// [`ServerLimits::write_stall_timeout`].
    WriteStalled,
    /// The connection was over the driver's cap and got 503
    /// ([`FileServer::busy_session`]).
    Busy,
    /// A file could not be read after its response had begun; the
    /// connection was aborted ([`Session::take_error`] has the error).
    FileError,
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
            CloseReason::Idle => "read timeout",
            CloseReason::HeadTimeout => "request head timeout",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::WriteStalled => "write stalled",
            CloseReason::Busy => "busy (503)",
            CloseReason::FileError => "file read error",
            CloseReason::ConnectionClose => "Connection: close",
            CloseReason::Rejected => "bad request",
        })
    }
}

/// What happened on one connection ([`Session::stats`], or the result
/// of [`FileServer::serve_connection`]).
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
    /// briefly before dropping the stream. (A [`Session`] driven by an
    /// event loop does this lingering close itself: see
    /// [`Session::wants_write_shutdown`]; this flag is set while it
    /// lingers.)
    pub drain_before_close: bool,
}

/// One request and the response to it, for access logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The `peer` given to [`FileServer::session`] or
    /// [`FileServer::serve_connection_logged`].
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
    /// False when the response was cut short: the client vanished or
    /// stalled, writing failed, or its file could not be read (the
    /// connection was then aborted; `serve_connection` returns the error).
    /// `body_bytes` then counts the body bytes the driver took.
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
        Ok(FileServer {
            root: canonical.into(),
            limits: ServerLimits::default(),
        })
    }

    /// The same server with other deadlines and budgets for the
    /// connections it serves from now on.
    pub fn with_limits(mut self, limits: ServerLimits) -> FileServer {
        self.limits = limits;
        self
    }

    /// The deadlines and budgets of connections.
    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves requests on a blocking `stream` until the client closes,
    /// asks to close, sends something unusable, stays idle past the
    /// stream's read timeout, or misses a deadline of [`ServerLimits`].
    /// `peer` only names the client in log records; see
    /// [`FileServer::serve_connection_logged`].
    ///
    /// This drives a [`Session`]; the deadlines are checked each time a
    /// read or write returns, so set read and write timeouts on the stream
    /// (a few seconds) for them to be enforced on time. It stops where the
    /// session would linger (see [`ConnectionStats::drain_before_close`]).
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
        conn::serve(self, stream, peer, log)
    }
}
