//! The connection state machine: bytes in, bytes out, deadlines, and
//! access-log records, without doing any I/O on the connection itself.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::{Instant, SystemTime};

use super::request::{Framing, Head, HeadParser, Request, sanitize};
use super::response::{Body, Reply, file_reply, reason_phrase};
use super::{
    CHUNK_SIZE, CloseReason, ConnectionStats, FileServer, INPUT_BUFFER, MAX_DISCARDED_BODY,
    RequestRecord, ServerLimits,
};
use crate::date::imf_fixdate;

/// A following (pipelined) request is only read while less than this much
/// output is waiting and no file body is being sent.
const PIPELINE_OUTPUT: usize = 16 * 1024;
/// An output buffer with more capacity than this is given back once it
/// drained, so that idle connections hold little memory.
const KEEP_OUTPUT_CAPACITY: usize = 16 * 1024;

/// The `Connection` header of a response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnectionHeader {
    Close,
    /// `keep-alive`, for HTTP/1.0 clients that asked for it.
    KeepAlive,
    /// None: HTTP/1.1 connections persist by default.
    Omit,
}

/// A response decided before its request body has been read.
struct Prepared {
    reply: Reply,
    head_only: bool,
    connection: ConnectionHeader,
    record: RequestRecord,
    close: Option<CloseReason>,
}

/// Where the session is in the protocol.
enum State {
    /// Waiting for a request head, or reading one.
    Head,
    /// Reading and throwing away `remaining` bytes of request body; then
    /// `then` is sent.
    Body {
        remaining: u64,
        then: Box<Prepared>,
    },
    /// No more requests: once the output is sent, linger (`linger`) or
    /// finish, for `reason`.
    Closing {
        reason: CloseReason,
        linger: bool,
    },
    /// The response is out and the write side should be shut down; input
    /// is drained until end of stream, a byte budget or `until`.
    Lingering {
        reason: CloseReason,
        until: Instant,
        drained: u64,
    },
    Finished(CloseReason),
}

/// A response whose bytes are (partly) in the output, for its log record.
/// Offsets count every byte ever queued on the connection.
struct InFlight {
    record: RequestRecord,
    /// Offset just after the response head.
    head_end: u64,
    /// Offset just after the response.
    end: u64,
}

/// The rest of a file body, read a chunk at a time.
struct FileBody {
    file: File,
    remaining: u64,
}

/// One HTTP connection as a sans-IO state machine: the driver (a blocking
/// loop, or an event loop with thousands of connections) moves bytes
/// between the socket and the session, tells it the time, and waits for
/// [`Session::poll_timeout`]; the session parses requests, produces
/// responses (file bodies read a [`CHUNK_SIZE`] piece at a time, only once
/// the previous piece was taken), enforces the deadlines of
/// [`ServerLimits`], and keeps access-log records.
///
/// Created by [`FileServer::session`] (or [`FileServer::busy_session`] for
/// a connection over the driver's cap, which gets **503** and is closed).
/// A session owns everything it needs (`'static`); times are
/// [`Instant`]s passed in by the driver, so tests can use a virtual clock.
/// Response `Date` headers and record times read the wall clock.
///
/// Memory is bounded: 16 KiB of input (only while some is waiting), one
/// request head (limited by
/// [`MAX_REQUEST_LINE`](crate::MAX_REQUEST_LINE) and
/// [`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES)), and about one
/// [`CHUNK_SIZE`] of output; an idle keep-alive session gives its output
/// buffer back.
///
/// # Driver loop
///
/// A sketch for a non-blocking socket under an epoll-style loop (errors
/// other than `WouldBlock` become [`Session::handle_reset`]). Reading
/// into one scratch buffer per thread and [`Session::handle_input`] keeps
/// idle sessions small; [`Session::input_buffer`] with
/// [`Session::commit_input`] saves the copy.
///
/// ```no_run
/// # use std::io::{ErrorKind, Read, Write};
/// # use std::net::{Shutdown, TcpStream};
/// # use std::time::Instant;
/// # fn wait_until_ready(_: &TcpStream, _read: bool, _write: bool, _deadline: Option<Instant>) {}
/// # fn demo(server: &http::FileServer, mut sock: TcpStream) {
/// let mut scratch = vec![0u8; 16 * 1024]; // one per thread
/// let mut session = server.session(Instant::now(), "192.0.2.7");
/// let mut shut = false;
/// loop {
///     let now = Instant::now();
///     // Write what is waiting.
///     while session.wants_write() {
///         match sock.write(session.poll_output()) {
///             Ok(n) => session.consume_output(Instant::now(), n),
///             Err(e) if e.kind() == ErrorKind::WouldBlock => break,
///             Err(_) => session.handle_reset(now),
///         }
///     }
///     if session.wants_write_shutdown() && !shut {
///         let _ = sock.shutdown(Shutdown::Write); // lingering close
///         shut = true;
///     }
///     // Read what arrived, no more than the session takes.
///     while session.wants_read() {
///         let room = session.input_room().min(scratch.len());
///         match sock.read(&mut scratch[..room]) {
///             Ok(0) => session.handle_eof(now),
///             Ok(n) => {
///                 session.handle_input(now, &scratch[..n]);
///             }
///             Err(e) if e.kind() == ErrorKind::WouldBlock => break,
///             Err(_) => session.handle_reset(now),
///         }
///     }
///     while let Some(record) = session.poll_record() {
///         println!("{}", record.access_log_line());
///     }
///     if session.is_finished().is_some() {
///         break; // drop (close) the socket
///     }
///     if session.wants_write() {
///         continue; // reading produced output: write it first
///     }
///     // Sleep until the socket is ready for what the session wants, or
///     // its deadline (an event loop registers interest and a timer).
///     let deadline = session.poll_timeout();
///     wait_until_ready(&sock, session.wants_read(), session.wants_write(), deadline);
///     if deadline.is_some_and(|d| Instant::now() >= d) {
///         session.handle_timeout(Instant::now());
///     }
/// }
/// # }
/// ```
pub struct Session {
    server: FileServer,
    limits: ServerLimits,
    peer: String,
    /// Answer the first request with 503 and close.
    busy: bool,
    state: State,
    parser: HeadParser,
    /// Input received but not processed: `input[in_pos..in_len]`.
    /// Allocated only while it holds something (or the driver asked for
    /// [`Session::input_buffer`]), so idle sessions stay small.
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    /// The client closed its side.
    eof: bool,
    /// Output not yet taken by the driver: `out[out_pos..]`.
    out: Vec<u8>,
    out_pos: usize,
    file: Option<FileBody>,
    /// Bytes ever queued and taken (see [`InFlight`]).
    queued: u64,
    sent: u64,
    in_flight: VecDeque<InFlight>,
    records: VecDeque<RequestRecord>,
    /// Deadline of the request being read (head and small body).
    request_deadline: Option<Instant>,
    /// When the connection last became idle (no response in flight).
    idle_since: Instant,
    /// When the output last made progress (or started to wait).
    output_progress: Instant,
    stats: ConnectionStats,
    error: Option<io::Error>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("busy", &self.busy)
            .field("finished", &self.is_finished())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FileServer {
    /// A session for a connection accepted at `now` from `peer` (which
    /// only names the client in log records). The first request head must
    /// be complete within [`ServerLimits::head_timeout`] of `now`.
    pub fn session(&self, now: Instant, peer: impl Into<String>) -> Session {
        Session::new(self, now, peer.into(), false)
    }

    /// A session for a connection the driver accepted over its cap: the
    /// first request is read (under the same deadlines), answered with
    /// **503 Service Unavailable**, `Retry-After` and `Connection: close`,
    /// and the connection is closed with [`CloseReason::Busy`] (after a
    /// lingering close). A malformed first request gets its usual error.
    pub fn busy_session(&self, now: Instant, peer: impl Into<String>) -> Session {
        Session::new(self, now, peer.into(), true)
    }
}

impl Session {
    fn new(server: &FileServer, now: Instant, peer: String, busy: bool) -> Session {
        Session {
            server: server.clone(),
            limits: server.limits,
            peer,
            busy,
            state: State::Head,
            parser: HeadParser::default(),
            input: Vec::new(),
            in_pos: 0,
            in_len: 0,
            eof: false,
            out: Vec::new(),
            out_pos: 0,
            file: None,
            queued: 0,
            sent: 0,
            in_flight: VecDeque::new(),
            records: VecDeque::new(),
            request_deadline: now.checked_add(server.limits.head_timeout),
            idle_since: now,
            output_progress: now,
            stats: ConnectionStats::default(),
            error: None,
        }
    }

    // ---- input ----

    /// Whether the session wants bytes from the client now. False while a
    /// response is being sent (a pipelined request waits in the socket:
    /// TCP flow control, not memory, holds it back), after end of stream,
    /// and once no more requests are read.
    pub fn wants_read(&self) -> bool {
        if self.eof {
            return false;
        }
        match self.state {
            State::Head => !self.output_blocked() && self.buffered() < INPUT_BUFFER,
            State::Body { .. } => self.buffered() < INPUT_BUFFER,
            State::Lingering { .. } => true,
            State::Closing { .. } | State::Finished(_) => false,
        }
    }

    /// Free space to read client bytes into (empty when the session does
    /// not want any); follow with [`Session::commit_input`]. The buffer
    /// (16 KiB) is given back whenever the session has processed all its
    /// input and is kept after a read that found nothing, so a driver
    /// with many idle connections should rather read into a scratch
    /// buffer of its own and call [`Session::handle_input`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        if !self.wants_read() {
            return &mut [];
        }
        if self.input.is_empty() {
            self.input = vec![0; INPUT_BUFFER];
        }
        if matches!(self.state, State::Lingering { .. }) {
            self.in_pos = 0;
            self.in_len = 0;
        } else if self.in_pos > 0 {
            self.input.copy_within(self.in_pos..self.in_len, 0);
            self.in_len -= self.in_pos;
            self.in_pos = 0;
        }
        &mut self.input[self.in_len..]
    }

    /// `n` bytes were read into [`Session::input_buffer`] at `now`.
    pub fn commit_input(&mut self, now: Instant, n: usize) {
        let n = n.min(self.input.len() - self.in_len);
        self.stats.bytes_received += n as u64;
        if let State::Lingering { drained, .. } = &mut self.state {
            *drained += n as u64;
        } else if !matches!(self.state, State::Finished(_)) {
            self.in_len += n;
        }
        self.advance(now);
    }

    /// How many bytes [`Session::handle_input`] takes now: 0 when the
    /// session does not want input ([`Session::wants_read`]).
    pub fn input_room(&self) -> usize {
        match self.state {
            _ if !self.wants_read() => 0,
            State::Lingering { .. } => INPUT_BUFFER,
            _ => INPUT_BUFFER - self.buffered(),
        }
    }

    /// Copies client bytes in and processes them; returns how many were
    /// taken: all of them when there are at most [`Session::input_room`]
    /// (read no more than that from the socket), else that many.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.input_room());
        if n > 0 {
            let buf = self.input_buffer();
            buf[..n].copy_from_slice(&bytes[..n]);
            self.commit_input(now, n);
        }
        n
    }

    /// The client closed its side (a read gave end of stream). Requests
    /// already received are still answered; a partial one is dropped.
    pub fn handle_eof(&mut self, now: Instant) {
        self.eof = true;
        self.advance(now);
    }

    /// The connection failed (reset by the client, or any read or write
    /// error): the session finishes with [`CloseReason::Reset`]; a response
    /// in flight is logged as incomplete.
    pub fn handle_reset(&mut self, now: Instant) {
        self.abort(now, CloseReason::Reset);
    }

    /// Ends the session at once with `reason` (for instance a driver
    /// shutting down); a response in flight is logged as incomplete.
    pub fn abort(&mut self, _now: Instant, reason: CloseReason) {
        self.finish(reason);
    }

    // ---- output ----

    /// Whether output is waiting for the driver.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len() && !matches!(self.state, State::Finished(_))
    }

    /// The output waiting to be written (empty when there is none).
    pub fn poll_output(&self) -> &[u8] {
        if matches!(self.state, State::Finished(_)) {
            return &[];
        }
        &self.out[self.out_pos..]
    }

    /// The first `n` bytes of [`Session::poll_output`] were written at
    /// `now`. Once the buffer drained, the next chunk of a file body is
    /// read into it (a failing read ends the session with
    /// [`CloseReason::FileError`]).
    pub fn consume_output(&mut self, now: Instant, n: usize) {
        if matches!(self.state, State::Finished(_)) {
            return;
        }
        let n = n.min(self.out.len() - self.out_pos);
        if n > 0 {
            self.output_progress = now;
        }
        self.out_pos += n;
        self.sent += n as u64;
        self.stats.bytes_sent += n as u64;
        while let Some(front) = self.in_flight.front() {
            if self.sent < front.end {
                break;
            }
            let Some(mut done) = self.in_flight.pop_front() else {
                break;
            };
            done.record.body_bytes = done.end - done.head_end;
            done.record.complete = true;
            self.records.push_back(done.record);
        }
        if n > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.file.is_some() {
                self.fill_file(CHUNK_SIZE);
            } else {
                if self.out.capacity() > KEEP_OUTPUT_CAPACITY {
                    self.out = Vec::new();
                }
                self.idle_since = now;
            }
        }
        self.advance(now);
    }

    /// True once the session has sent its last response and lingers: the
    /// driver should shut down the write side of the socket (once), so the
    /// client sees the end of the response, and keep reading until the
    /// session finishes. Closing a socket with unread input would make the
    /// kernel send a RST that can destroy the response (RFC 9112 section
    /// 9.6).
    pub fn wants_write_shutdown(&self) -> bool {
        matches!(self.state, State::Lingering { .. })
    }

    // ---- time ----

    /// The next deadline, if any: call [`Session::handle_timeout`] when it
    /// passed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let read = match &self.state {
            State::Finished(_) => return None,
            State::Lingering { until, .. } => return Some(*until),
            State::Closing { .. } => None,
            State::Body { .. } => self.request_deadline,
            State::Head if self.output_blocked() => None,
            State::Head => match self.request_deadline {
                Some(deadline) => Some(deadline),
                None if self.output_pending() => None,
                None => self.idle_since.checked_add(self.limits.idle_timeout),
            },
        };
        let write = if self.output_pending() {
            self.output_progress
                .checked_add(self.limits.write_stall_timeout)
        } else {
            None
        };
        match (read, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Acts on the deadlines that passed by `now`: a client that took no
    /// output for [`ServerLimits::write_stall_timeout`] is dropped
    /// ([`CloseReason::WriteStalled`]), a request head (with its small
    /// body) not complete in time ends the connection
    /// ([`CloseReason::HeadTimeout`]), as does a keep-alive connection idle
    /// too long ([`CloseReason::IdleTimeout`]), and a lingering close ends.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        let stalled = self.output_pending()
            && self
                .output_progress
                .checked_add(self.limits.write_stall_timeout)
                .is_some_and(|t| now >= t);
        let reason = match &self.state {
            State::Finished(_) => return,
            State::Lingering { reason, .. } => *reason,
            _ if stalled => CloseReason::WriteStalled,
            State::Head if self.request_deadline.is_none() => CloseReason::IdleTimeout,
            _ => CloseReason::HeadTimeout,
        };
        self.finish(reason);
    }

    // ---- results ----

    /// `Some` once the connection is done; the driver then closes the
    /// socket (after writing nothing more).
    pub fn is_finished(&self) -> Option<CloseReason> {
        match self.state {
            State::Finished(reason) => Some(reason),
            _ => None,
        }
    }

    /// The record of the next finished request (a response fully taken by
    /// the driver, or one cut short), for the access log.
    pub fn poll_record(&mut self) -> Option<RequestRecord> {
        self.records.pop_front()
    }

    /// What happened so far. `close` is meaningful once finished (or
    /// lingering); `drain_before_close` is set while lingering.
    pub fn stats(&self) -> ConnectionStats {
        let mut stats = self.stats.clone();
        match self.state {
            State::Finished(reason) => stats.close = reason,
            State::Lingering { reason, .. } => {
                stats.close = reason;
                stats.drain_before_close = true;
            }
            _ => {}
        }
        stats
    }

    /// The I/O error behind [`CloseReason::FileError`], once.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// The peer name given when the session was created.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    // ---- internals ----

    /// Input received and not processed yet.
    fn buffered(&self) -> usize {
        self.in_len - self.in_pos
    }

    fn output_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.file.is_some()
    }

    /// Too much output waiting to read a following request yet.
    fn output_blocked(&self) -> bool {
        self.file.is_some() || self.out.len() - self.out_pos > PIPELINE_OUTPUT
    }

    fn finish(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Finished(_)) {
            return;
        }
        self.state = State::Finished(reason);
        for mut cut in self.in_flight.drain(..) {
            cut.record.body_bytes = self.sent.min(cut.end).saturating_sub(cut.head_end);
            cut.record.complete = false;
            self.records.push_back(cut.record);
        }
        self.file = None;
        self.out = Vec::new();
        self.out_pos = 0;
        self.input = Vec::new();
        self.in_pos = 0;
        self.in_len = 0;
    }

    /// Makes all the progress the buffered input and output allow, then
    /// gives back an empty input buffer.
    fn advance(&mut self, now: Instant) {
        self.make_progress(now);
        if self.buffered() == 0 {
            self.input = Vec::new();
            self.in_pos = 0;
            self.in_len = 0;
        }
    }

    fn make_progress(&mut self, now: Instant) {
        loop {
            match &mut self.state {
                State::Finished(_) => return,
                State::Lingering {
                    reason, drained, ..
                } => {
                    if self.eof || *drained >= self.limits.linger_bytes {
                        let reason = *reason;
                        self.finish(reason);
                    }
                    return;
                }
                State::Closing { reason, linger } => {
                    let (reason, linger) = (*reason, *linger);
                    if self.output_pending() {
                        return;
                    }
                    if linger && !self.eof {
                        self.in_pos = 0;
                        self.in_len = 0;
                        self.state = State::Lingering {
                            reason,
                            until: now.checked_add(self.limits.linger_time).unwrap_or(now),
                            drained: 0,
                        };
                    } else {
                        self.finish(reason);
                    }
                    return;
                }
                State::Body { remaining, .. } => {
                    let n = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.in_len - self.in_pos);
                    self.in_pos += n;
                    *remaining -= n as u64;
                    if *remaining > 0 {
                        if self.eof {
                            self.close(CloseReason::ClientClosed, false);
                            continue;
                        }
                        return;
                    }
                    if let State::Body { then, .. } =
                        std::mem::replace(&mut self.state, State::Head)
                    {
                        self.send_prepared(*then, now);
                    }
                }
                State::Head => {
                    if self.output_blocked() {
                        return;
                    }
                    if self.in_pos == self.in_len {
                        if self.eof {
                            self.close(CloseReason::ClientClosed, false);
                            continue;
                        }
                        return;
                    }
                    if self.request_deadline.is_none() {
                        self.request_deadline = now.checked_add(self.limits.head_timeout);
                    }
                    let (n, head) = self.parser.feed(&self.input[self.in_pos..self.in_len]);
                    self.in_pos += n;
                    match head {
                        None => {}
                        Some(Head::Reject(status, log_line)) => {
                            let record = self.record(log_line, None);
                            let prepared = Prepared {
                                reply: Reply::error(status),
                                head_only: false,
                                connection: ConnectionHeader::Close,
                                record,
                                close: Some(CloseReason::Rejected),
                            };
                            self.send_prepared(prepared, now);
                        }
                        Some(Head::Request(request)) => self.start_request(&request, now),
                    }
                }
            }
        }
    }

    /// Moves to [`State::Closing`].
    fn close(&mut self, reason: CloseReason, linger: bool) {
        self.state = State::Closing { reason, linger };
    }

    fn record(&self, request_line: String, request: Option<&Request>) -> RequestRecord {
        let field = |name| {
            request
                .and_then(|r| r.header(name))
                .map(|v| sanitize(v.as_bytes()))
        };
        RequestRecord {
            peer: self.peer.clone(),
            time: SystemTime::now(),
            request_line,
            status: 0,
            body_bytes: 0,
            referer: field("referer"),
            user_agent: field("user-agent"),
            complete: true,
        }
    }

    /// Decides the response to a complete request head; a small request
    /// body is read (and thrown away) before it is sent.
    fn start_request(&mut self, request: &Request, now: Instant) {
        let record = self.record(request.log_line.clone(), Some(request));
        let head_only = request.method == "HEAD";
        let reject = |reply| Prepared {
            reply,
            head_only: false,
            connection: ConnectionHeader::Close,
            record: record.clone(),
            close: Some(CloseReason::Rejected),
        };
        if let Err(status) = request.check_host() {
            return self.send_prepared(reject(Reply::error(status)), now);
        }
        let framing = match request.framing() {
            Ok(framing) => framing,
            Err(status) => return self.send_prepared(reject(Reply::error(status)), now),
        };
        if self.busy {
            let mut reply = Reply::error(503);
            reply.headers.push((
                "Retry-After",
                self.limits.busy_retry_after.as_secs().to_string(),
            ));
            let prepared = Prepared {
                reply,
                head_only,
                connection: ConnectionHeader::Close,
                record,
                close: Some(CloseReason::Busy),
            };
            return self.send_prepared(prepared, now);
        }
        let expect_continue = match request.header("expect") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            Some(_) => return self.send_prepared(reject(Reply::error(417)), now),
        };
        let allowed = matches!(request.method.as_str(), "GET" | "HEAD");
        let refusal = if allowed {
            Reply::error(400)
        } else {
            Reply::method_not_allowed()
        };
        let body = match framing {
            Framing::None => 0,
            Framing::Unframed => return self.send_prepared(reject(refusal), now),
            Framing::Length(n) if n > MAX_DISCARDED_BODY => {
                return self.send_prepared(reject(refusal), now);
            }
            Framing::Length(n) => n,
        };
        let mut close = (!request.keep_alive()).then_some(CloseReason::ConnectionClose);
        let reply = if !allowed {
            Reply::method_not_allowed()
        } else {
            match self.server.resolve(&request.target) {
                // A malformed target closes the connection like other 400s.
                Err(400) => {
                    close = Some(CloseReason::Rejected);
                    Reply::error(400)
                }
                Err(status) => Reply::error(status),
                Ok(found) => file_reply(request, found),
            }
        };
        let connection = match close {
            Some(_) => ConnectionHeader::Close,
            None if request.http10 => ConnectionHeader::KeepAlive,
            None => ConnectionHeader::Omit,
        };
        let prepared = Prepared {
            reply,
            head_only,
            connection,
            record,
            close,
        };
        if body == 0 {
            return self.send_prepared(prepared, now);
        }
        if expect_continue {
            self.queue(b"HTTP/1.1 100 Continue\r\n\r\n", now);
        }
        self.state = State::Body {
            remaining: body,
            then: Box::new(prepared),
        };
    }

    /// Appends bytes to the output.
    fn queue(&mut self, bytes: &[u8], now: Instant) {
        if !self.output_pending() {
            self.output_progress = now;
        }
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        self.out.extend_from_slice(bytes);
        self.queued += bytes.len() as u64;
    }

    /// Queues a response (its head, and its body or the first piece of
    /// it), then goes on reading requests or closes.
    fn send_prepared(&mut self, prepared: Prepared, now: Instant) {
        let Prepared {
            reply,
            head_only,
            connection,
            mut record,
            close,
        } = prepared;
        self.request_deadline = None;
        record.status = reply.status;
        self.stats.requests += 1;

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
        self.queue(head.as_bytes(), now);
        let head_end = self.queued;
        let body = if head_only { Body::Empty } else { reply.body };
        let end = match body {
            Body::Empty => self.queued,
            Body::Bytes(bytes) => {
                self.queue(&bytes, now);
                self.queued
            }
            Body::File { file, offset, len } => {
                let end = self.queued + len;
                self.in_flight.push_back(InFlight {
                    record,
                    head_end,
                    end,
                });
                self.start_file(file, offset, len);
                self.after_response(close);
                return;
            }
        };
        self.in_flight.push_back(InFlight {
            record,
            head_end,
            end,
        });
        self.after_response(close);
    }

    fn after_response(&mut self, close: Option<CloseReason>) {
        if matches!(self.state, State::Finished(_)) {
            return;
        }
        match close {
            None => self.state = State::Head,
            Some(reason) => {
                // Unread input (an error, or a pipelined request after
                // `Connection: close`) asks for a lingering close.
                let linger = matches!(reason, CloseReason::Rejected | CloseReason::Busy)
                    || self.in_pos < self.in_len;
                self.close(reason, linger);
            }
        }
    }

    /// Starts sending `len` bytes of `file` from `offset`: the first
    /// piece fills the output up to [`CHUNK_SIZE`].
    fn start_file(&mut self, mut file: File, offset: u64, len: u64) {
        if offset > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                return self.fail(e);
            }
        }
        self.file = Some(FileBody {
            file,
            remaining: len,
        });
        let room = CHUNK_SIZE.saturating_sub(self.out.len() - self.out_pos);
        self.fill_file(room.max(1));
    }

    /// Appends up to `max` bytes of the file body to the output.
    fn fill_file(&mut self, max: usize) {
        let Some(body) = &mut self.file else {
            return;
        };
        let n = usize::try_from(body.remaining)
            .unwrap_or(usize::MAX)
            .min(max);
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        let start = self.out.len();
        self.out.resize(start + n, 0);
        // A file that shrank since its length was taken fails here: the
        // promised Content-Length cannot be kept, so the connection is
        // aborted.
        if let Err(e) = body.file.read_exact(&mut self.out[start..]) {
            self.out.truncate(start);
            return self.fail(e);
        }
        self.queued += n as u64;
        body.remaining -= n as u64;
        if body.remaining == 0 {
            self.file = None;
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.error = Some(io::Error::new(e.kind(), format!("reading file: {e}")));
        self.finish(CloseReason::FileError);
    }
}

#[cfg(test)]
mod tests;
