//! The blocking server: a thread per connection, one shared service and
//! at-most-once table.

use super::Transport;
use crate::error::{RemoteError, RpcError};
use crate::frame::FrameDecoder;
use crate::message::{Request, Response, ServerMessage, decode_message, encode_message};
use crate::server::{Admission, ReplyCache, ServerConfig, ServerStats, encode_reply};
use crate::service::{CallContext, Dispatch};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a duplicate waits for the original call to finish before it is
/// dropped (the client will retry and find the cached reply).
const MAX_DUPLICATE_WAIT: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A service plus its at-most-once table, shared by the connection threads.
///
/// Calls execute one at a time (the service is behind a mutex: the `&mut
/// self` of the generated traits). The table has its own lock, so a
/// duplicate that arrives on another connection while the original is
/// executing waits for the original's reply instead of executing again.
#[derive(Debug)]
pub struct SharedServer<D> {
    service: Mutex<D>,
    cache: Mutex<ReplyCache>,
    completed: Condvar,
    stats: Mutex<ServerStats>,
    max_frame: usize,
    incarnation: u64,
}

impl<D: Dispatch> SharedServer<D> {
    /// Wraps a service.
    pub fn new(service: D, config: ServerConfig) -> Arc<Self> {
        Arc::new(SharedServer {
            service: Mutex::new(service),
            cache: Mutex::new(ReplyCache::new(&config)),
            completed: Condvar::new(),
            stats: Mutex::new(ServerStats::default()),
            max_frame: config.max_frame,
            incarnation: config.incarnation,
        })
    }

    /// This run's incarnation (the greeting of every connection).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The service, locked (for inspection between calls).
    pub fn service(&self) -> MutexGuard<'_, D> {
        lock(&self.service)
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        *lock(&self.stats)
    }

    /// Handles one request: executes it at most once and returns the reply,
    /// or `None` when a duplicate's original did not finish in time.
    pub fn handle(&self, req: Request) -> Option<Response> {
        let now = Instant::now();
        let admission = {
            let mut cache = lock(&self.cache);
            cache.expire(now);
            cache.admit_request(now, &req)
        };
        match admission {
            Admission::Execute => {
                let ctx = CallContext {
                    now,
                    client_id: req.client_id,
                    request_id: req.request_id,
                    deadline: req
                        .deadline_ms
                        .map(|ms| now + Duration::from_millis(ms.into())),
                    peer: None,
                };
                let result = lock(&self.service).dispatch(&ctx, req.method, &req.args);
                let resp = Response {
                    request_id: req.request_id,
                    result,
                };
                lock(&self.cache).complete(Instant::now(), req.client_id, resp.clone());
                lock(&self.stats).executed += 1;
                self.completed.notify_all();
                Some(resp)
            }
            Admission::Replay(resp) => {
                lock(&self.stats).replayed += 1;
                Some(resp)
            }
            Admission::Stale => {
                lock(&self.stats).stale += 1;
                Some(Response {
                    request_id: req.request_id,
                    result: Err(RemoteError::Stale),
                })
            }
            Admission::Restarted => {
                lock(&self.stats).restarted += 1;
                Some(Response {
                    request_id: req.request_id,
                    result: Err(RemoteError::Restarted),
                })
            }
            Admission::InProgress => {
                lock(&self.stats).in_progress_duplicates += 1;
                let patience = req
                    .deadline_ms
                    .map_or(MAX_DUPLICATE_WAIT, |ms| Duration::from_millis(ms.into()))
                    .min(MAX_DUPLICATE_WAIT);
                let give_up = now + patience;
                let mut cache = lock(&self.cache);
                loop {
                    if let Some(resp) = cache.reply(req.client_id, req.request_id) {
                        return Some(resp.clone());
                    }
                    let left = give_up.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    cache = match self.completed.wait_timeout(cache, left) {
                        Ok((g, _)) => g,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
            }
        }
    }
}

/// Serves one connection until the peer closes it (`Ok`) or sends
/// something malformed or the stream fails (`Err`). The first frame sent is
/// the greeting with the server's incarnation.
pub fn serve_connection<S: Transport, D: Dispatch>(
    mut stream: S,
    server: &SharedServer<D>,
) -> io::Result<()> {
    stream.set_read_timeout(None)?;
    let mut decoder = FrameDecoder::new(server.max_frame);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let hello = ServerMessage::Hello {
        incarnation: server.incarnation,
    };
    encode_message(&mut out, &hello, server.max_frame)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    stream.write_all(&out)?;
    stream.flush()?;
    out.clear();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                return decoder
                    .finish()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut input = &buf[..n];
        loop {
            let frame = match decoder.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(protocol_error(&stream, server, e.into())),
            };
            let req: Request = match decode_message(&frame) {
                Ok(req) => req,
                Err(e) => return Err(protocol_error(&stream, server, e)),
            };
            if let Some(resp) = server.handle(req) {
                encode_reply(&mut out, resp, server.max_frame)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            stream.flush()?;
            out.clear();
        }
    }
}

fn protocol_error<S: Transport, D>(stream: &S, server: &SharedServer<D>, e: RpcError) -> io::Error {
    lock(&server.stats).protocol_errors += 1;
    let _ = stream.shutdown();
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Accepts connections from `accept` (e.g. `|| listener.accept().map(|(s, _)| s)`)
/// forever, serving each on its own thread. Returns only when `accept`
/// fails with an error other than an aborted connection or an interruption.
pub fn serve<S, A, D>(mut accept: A, server: Arc<SharedServer<D>>) -> io::Result<()>
where
    S: Transport,
    A: FnMut() -> io::Result<S>,
    D: Dispatch + Send + 'static,
{
    loop {
        let stream = match accept() {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let server = Arc::clone(&server);
        thread::Builder::new()
            .name("rpc-server-conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &server) {
                    log::debug!("rpc server: connection ended: {e}");
                }
            })?;
    }
}
