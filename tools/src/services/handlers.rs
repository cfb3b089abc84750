//! What each service does with a ready connection: the [`ConnHandler`]
//! boundary between the event loop and a protocol, and the echo, discard,
//! chargen and HTTP handlers. A handler holds only its protocol state; the
//! read buffer is the loop's ([`ConnIo::buf`]).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddrV4};
use std::time::Instant;

use http::{CloseReason, ConnectionStats, FileServer, Session};
use sockets_api::{Interest, TcpStream};

use super::{CHARGEN_PERIOD, Ending, Kind};

/// Reads per readiness report before the loop moves on to other
/// connections (a level-triggered report comes back if there is more).
const READS_PER_EVENT: usize = 4;
/// Writes per readiness report (an HTTP file body: a few send buffers'
/// worth) before the loop moves on.
const WRITES_PER_EVENT: usize = 8;

/// What the loop lends a handler for one call.
pub(super) struct ConnIo<'a> {
    pub stream: &'a TcpStream,
    /// The loop's I/O buffer (shared by every connection).
    pub buf: &'a mut [u8],
    /// Whole chargen periods.
    pub chargen: &'a [u8],
    /// The socket reported an error or a hang-up (whatever the interest).
    pub hangup: bool,
    /// Set by the handler when the peer made progress (sent something,
    /// or took something): the idle deadline moves.
    pub progress: bool,
}

/// After a handler call: keep going, or close with this ending (after
/// what was written, then a FIN), or abort with it (a RST: the stack
/// frees at once what it held for the connection).
pub(super) enum Flow {
    Continue,
    Close(Ending),
    Abort(Ending),
}

/// A protocol driven by the event loop. Each call does what it can
/// without blocking; the loop registers [`interest`](Self::interest) after
/// each one and keeps the idle deadline. An HTTP `Session` plugs in here
/// (see [`handler_for`]).
pub(super) trait ConnHandler: Send {
    /// What to wait for now.
    fn interest(&self) -> Interest;
    /// The socket is readable (or failed, or hung up).
    fn on_readable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow>;
    /// The socket is writable.
    fn on_writable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow>;
    /// A deadline of the protocol's own (besides the idle timeout).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// [`poll_timeout`](Self::poll_timeout) passed.
    fn on_timeout(&mut self, _io: &mut ConnIo<'_>, _now: Instant) -> io::Result<Flow> {
        Ok(Flow::Continue)
    }
    /// The HTTP figures of the connection, for the registry's totals.
    fn http_stats(&self) -> Option<ConnectionStats> {
        None
    }
}

/// How a new connection is to be served.
pub(super) struct NewConn<'a> {
    pub kind: Kind,
    pub peer: SocketAddrV4,
    /// Over `--max-conns`: an HTTP connection answered 503.
    pub busy: bool,
    pub now: Instant,
    /// Required for [`Kind::Http`].
    pub file_server: Option<&'a FileServer>,
}

/// The handler for a new connection (`None`: HTTP without a file server,
/// which [`super::Services::start`] does not allow).
pub(super) fn handler_for(new: &NewConn<'_>) -> Option<Box<dyn ConnHandler>> {
    Some(match new.kind {
        Kind::Echo => Box::new(Echo::default()),
        Kind::Discard => Box::new(Discard),
        Kind::Chargen => Box::new(Chargen::default()),
        Kind::Http => {
            let fs = new.file_server?;
            let client = new.peer.ip().to_string();
            let session = if new.busy {
                fs.busy_session(new.now, client)
            } else {
                fs.session(new.now, client)
            };
            Box::new(HttpConn {
                session,
                shut: false,
            })
        }
    })
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

/// Writes what it can of `data` without blocking.
fn write_some(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut s = stream;
    match s.write(data) {
        Ok(n) => Ok(n),
        Err(e) if would_block(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes back what it reads (RFC 862). What the peer does not take at
/// once waits in `pending` (allocated only then), and reading stops until
/// it is gone: echo never holds more than one read's worth.
#[derive(Default)]
struct Echo {
    pending: Vec<u8>,
    /// The peer closed its side; close once `pending` is written.
    eof: bool,
}

impl Echo {
    fn flush(&mut self, io: &mut ConnIo<'_>) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let n = write_some(io.stream, &self.pending)?;
        if n > 0 {
            io.progress = true;
            self.pending.drain(..n);
            if self.pending.is_empty() {
                // Give the memory back: an idle connection holds none.
                self.pending = Vec::new();
            }
        }
        Ok(())
    }

    fn done(&self) -> Flow {
        if self.eof && self.pending.is_empty() {
            Flow::Close(Ending::Clean)
        } else {
            Flow::Continue
        }
    }
}

impl ConnHandler for Echo {
    fn interest(&self) -> Interest {
        if self.pending.is_empty() {
            Interest::READABLE
        } else {
            Interest::WRITABLE
        }
    }

    fn on_readable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        // An error or hang-up is reported whatever the interest: the
        // write below meets it.
        self.flush(io)?;
        for _ in 0..READS_PER_EVENT {
            if !self.pending.is_empty() || self.eof {
                break;
            }
            let mut s = io.stream;
            let n = match s.read(io.buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            };
            io.progress = true;
            let w = write_some(io.stream, &io.buf[..n])?;
            if w < n {
                self.pending.extend_from_slice(&io.buf[w..n]);
            }
        }
        Ok(self.done())
    }

    fn on_writable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        self.flush(io)?;
        Ok(self.done())
    }
}

/// Reads and drops everything (RFC 863); done at end of stream.
struct Discard;

impl ConnHandler for Discard {
    fn interest(&self) -> Interest {
        Interest::READABLE
    }

    fn on_readable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        for _ in 0..READS_PER_EVENT {
            let mut s = io.stream;
            match s.read(io.buf) {
                Ok(0) => return Ok(Flow::Close(Ending::Clean)),
                Ok(_) => io.progress = true,
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Flow::Continue)
    }

    fn on_writable(&mut self, _io: &mut ConnIo<'_>) -> io::Result<Flow> {
        Ok(Flow::Continue)
    }
}

/// Keeps the send buffer full of the pattern until the peer closes its
/// side; anything the peer sends is read and ignored. A write that takes
/// bytes means the peer acknowledged some (the buffer drained): that is
/// chargen's progress.
#[derive(Default)]
struct Chargen {
    offset: usize,
}

impl ConnHandler for Chargen {
    fn interest(&self) -> Interest {
        Interest::READABLE | Interest::WRITABLE
    }

    fn on_readable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        for _ in 0..READS_PER_EVENT {
            let mut s = io.stream;
            match s.read(io.buf) {
                Ok(0) => return Ok(Flow::Close(Ending::Clean)),
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Flow::Continue)
    }

    fn on_writable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        loop {
            let phase = self.offset % CHARGEN_PERIOD;
            let chunk = &io.chargen[phase..io.chargen.len() - CHARGEN_PERIOD + phase];
            let n = write_some(io.stream, chunk)?;
            if n == 0 {
                return Ok(Flow::Continue);
            }
            self.offset += n;
            io.progress = true;
        }
    }
}

/// One HTTP connection: the loop moves bytes between the socket and an
/// [`http::Session`], which parses requests, produces responses, keeps
/// the deadlines and the access-log records. Reads go through the loop's
/// buffer ([`Session::handle_input`] copies what the session keeps), so an
/// idle keep-alive connection holds no buffer at all.
struct HttpConn {
    session: Session,
    /// The write side was shut down (lingering close).
    shut: bool,
}

impl HttpConn {
    /// Writes what the session has waiting, up to [`WRITES_PER_EVENT`]
    /// times; a failed write ends the session.
    fn write(&mut self, io: &mut ConnIo<'_>) {
        for _ in 0..WRITES_PER_EVENT {
            if !self.session.wants_write() {
                break;
            }
            let mut s = io.stream;
            match s.write(self.session.poll_output()) {
                Ok(0) => break,
                Ok(n) => {
                    io.progress = true;
                    self.session.consume_output(Instant::now(), n);
                }
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    log::debug!("http {}: write failed: {e}", self.session.peer());
                    self.session.handle_reset(Instant::now());
                }
            }
        }
    }

    /// Reads what the session takes, through the loop's buffer; a response
    /// produced on the way is written before reading on.
    fn read(&mut self, io: &mut ConnIo<'_>) {
        for _ in 0..READS_PER_EVENT {
            let room = self.session.input_room().min(io.buf.len());
            if room == 0 {
                break;
            }
            let mut s = io.stream;
            match s.read(&mut io.buf[..room]) {
                Ok(0) => {
                    self.session.handle_eof(Instant::now());
                    break;
                }
                Ok(n) => {
                    io.progress = true;
                    self.session.handle_input(Instant::now(), &io.buf[..n]);
                }
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    log::debug!("http {}: read failed: {e}", self.session.peer());
                    self.session.handle_reset(Instant::now());
                    break;
                }
            }
            self.write(io);
        }
    }

    /// After any step: the lingering close's shutdown, the access log, and
    /// whether the connection is over.
    fn settle(&mut self, io: &mut ConnIo<'_>) -> Flow {
        if self.session.wants_write_shutdown() && !self.shut {
            self.shut = true;
            if let Err(e) = io.stream.shutdown(Shutdown::Write) {
                log::debug!("http {}: shutdown failed: {e}", self.session.peer());
                self.session.handle_reset(Instant::now());
            }
        }
        while let Some(record) = self.session.poll_record() {
            log::info!("{}", record.access_log_line());
        }
        match self.session.is_finished() {
            None => Flow::Continue,
            Some(reason) => self.ending(reason),
        }
    }

    /// How a finished session's connection ends. A client cut by a
    /// deadline of its own making (a request head that never completes,
    /// output it does not take) is reset: the stack drops at once what it
    /// held for it. Everything else closes gracefully.
    fn ending(&mut self, reason: CloseReason) -> Flow {
        match reason {
            CloseReason::Reset => Flow::Close(Ending::Reset),
            CloseReason::HeadTimeout | CloseReason::WriteStalled => Flow::Abort(Ending::Idle),
            CloseReason::IdleTimeout | CloseReason::Idle => Flow::Close(Ending::Idle),
            CloseReason::FileError => {
                let e = self
                    .session
                    .take_error()
                    .unwrap_or_else(|| io::Error::other("file read error"));
                Flow::Abort(Ending::Failed(e))
            }
            _ => Flow::Close(Ending::Clean),
        }
    }
}

impl ConnHandler for HttpConn {
    fn interest(&self) -> Interest {
        match (self.session.wants_read(), self.session.wants_write()) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (true, false) => Interest::READABLE,
            (false, true) => Interest::WRITABLE,
            // Errors and hang-ups are reported all the same.
            (false, false) => Interest::from_events(0),
        }
    }

    fn on_readable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        self.write(io);
        self.read(io);
        if io.hangup && self.session.is_finished().is_none() && !self.session.wants_read() {
            // The connection is over and the session wants no end of
            // stream to learn it: nothing more can be sent.
            self.write(io);
            if self.session.is_finished().is_none() && !self.session.wants_read() {
                self.session.handle_reset(Instant::now());
            }
        }
        Ok(self.settle(io))
    }

    fn on_writable(&mut self, io: &mut ConnIo<'_>) -> io::Result<Flow> {
        self.write(io);
        // Output taken may let a pipelined request be read.
        if self.session.wants_read() {
            self.read(io);
        }
        Ok(self.settle(io))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn on_timeout(&mut self, io: &mut ConnIo<'_>, now: Instant) -> io::Result<Flow> {
        self.session.handle_timeout(now);
        Ok(self.settle(io))
    }

    fn http_stats(&self) -> Option<ConnectionStats> {
        Some(self.session.stats())
    }
}
