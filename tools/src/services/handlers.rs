//! What each service does with a ready connection: the [`ConnHandler`]
//! boundary between the event loop and a protocol, and the echo, discard
//! and chargen handlers. A handler holds only its protocol state; the I/O
//! buffer is the loop's ([`ConnIo::buf`]).

use std::io::{self, ErrorKind, Read, Write};
use std::time::Instant;

use sockets_api::{Interest, TcpStream};

use super::{CHARGEN_PERIOD, Ending, Kind};

/// Reads per readiness report before the loop moves on to other
/// connections (a level-triggered report comes back if there is more).
const READS_PER_EVENT: usize = 4;

/// What the loop lends a handler for one call.
pub(super) struct ConnIo<'a> {
    pub stream: &'a TcpStream,
    /// The loop's I/O buffer (shared by every connection).
    pub buf: &'a mut [u8],
    /// Whole chargen periods.
    pub chargen: &'a [u8],
    /// Set by the handler when the peer made progress (sent something,
    /// or took something): the idle deadline moves.
    pub progress: bool,
}

/// After a handler call: keep going, or close with this ending.
pub(super) enum Flow {
    Continue,
    Close(Ending),
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
}

/// The handler for a new connection of `kind`; `None` means "serve it on
/// the blocking path" ([`super::spawn_http`], a thread per connection),
/// which only HTTP still takes.
///
/// INTEGRATION POINT: once `http::Session` (sans-IO) exists, return
/// `Some(Box::new(HttpConn::new(...)))` for [`Kind::Http`] here, with an
/// `HttpConn` implementing [`ConnHandler`] over the session
/// (`handle_input` from `on_readable`, `poll_output` from `on_writable`,
/// `poll_timeout`/`handle_timeout` from the methods of the same names);
/// then `spawn_http` and the thread path go.
pub(super) fn handler_for(kind: Kind) -> Option<Box<dyn ConnHandler>> {
    match kind {
        Kind::Echo => Some(Box::new(Echo::default())),
        Kind::Discard => Some(Box::new(Discard)),
        Kind::Chargen => Some(Box::new(Chargen::default())),
        Kind::Http => None,
    }
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
