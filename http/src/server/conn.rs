//! The connection loop: read a request head, decide the response, send
//! it, and go on until the connection ends.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::SystemTime;

use super::request::{Framing, HeadError, Request, read_error, read_head, sanitize};
use super::response::{Body, Reply, file_reply, reason_phrase};
use super::{
    CHUNK_SIZE, CloseReason, ConnectionStats, FileServer, INPUT_BUFFER, MAX_DISCARDED_BODY,
    RequestRecord,
};
use crate::date::imf_fixdate;
use crate::wire::InBuf;

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
    let mut conn = Conn {
        server,
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
            let request = match read_head(&mut self.input, &mut *self.stream, &mut self.line) {
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
