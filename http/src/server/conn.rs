//! The blocking driver: one [`Session`] over a `Read + Write` stream,
//! with the stream's own timeouts.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Instant;

use super::request::read_error;
use super::{CloseReason, ConnectionStats, FileServer, RequestRecord, Session};

/// `e` with `what` was being done put in front of its message.
fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Serves one connection (see [`FileServer::serve_connection_logged`]).
pub(super) fn serve<S: Read + Write>(
    server: &FileServer,
    stream: &mut S,
    peer: &str,
    log: &mut dyn FnMut(&RequestRecord),
) -> io::Result<ConnectionStats> {
    let mut session = server.session(Instant::now(), peer);
    let result = drive(&mut session, stream, log);
    while let Some(record) = session.poll_record() {
        log(&record);
    }
    result?;
    if let Some(e) = session.take_error() {
        return Err(e);
    }
    Ok(session.stats())
}

/// Moves bytes until the session finishes or would linger (which needs a
/// half-close the stream type cannot do; the caller drains instead).
fn drive<S: Read + Write>(
    session: &mut Session,
    stream: &mut S,
    log: &mut dyn FnMut(&RequestRecord),
) -> io::Result<()> {
    loop {
        while let Some(record) = session.poll_record() {
            log(&record);
        }
        if session.is_finished().is_some() || session.wants_write_shutdown() {
            return Ok(());
        }
        let now = Instant::now();
        if session.poll_timeout().is_some_and(|t| now >= t) {
            session.handle_timeout(now);
            continue;
        }
        let out = session.poll_output();
        if !out.is_empty() {
            let n = out.len();
            match stream.write_all(out).and_then(|()| stream.flush()) {
                Ok(()) => session.consume_output(Instant::now(), n),
                Err(e) => {
                    session.handle_reset(now);
                    return Err(with_context(e, "writing response"));
                }
            }
            continue;
        }
        if !session.wants_read() {
            // Neither input nor output can make progress: cannot happen
            // with a consistent session, but never spin.
            session.abort(now, CloseReason::ClientClosed);
            continue;
        }
        let read = stream.read(session.input_buffer());
        let now = Instant::now();
        match read {
            Ok(0) => session.handle_eof(now),
            Ok(n) => session.commit_input(now, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => match read_error(e) {
                Ok(CloseReason::Reset) => session.handle_reset(now),
                Ok(reason) => {
                    // The stream's read timeout: a deadline of the session
                    // if one passed, else the stream's own.
                    session.handle_timeout(now);
                    session.abort(now, reason);
                }
                Err(e) => {
                    session.handle_reset(now);
                    return Err(with_context(e, "reading request"));
                }
            },
        }
    }
}
