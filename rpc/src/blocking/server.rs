//! The blocking server: a thread per connection, one shared service and
//! at-most-once table.
//!
//! The bounds of [`ServerConfig`] hold here as in the sans-IO core (see
//! [`server`](crate::server) for the table of defaults and counters): at
//! most `max_connections` connection threads (the excess is closed at once
//! and counted), a greeting or a frame unfinished after `frame_timeout` and
//! a connection idle for `idle_timeout` are dropped (a write that makes no
//! progress for `frame_timeout` too), and a failed accept or thread spawn
//! costs that one connection (counted) while the accept loop goes on.
//! Replies are written as each call completes. On an authenticated
//! connection every frame after the greeting carries a MAC, checked before
//! the frame is decoded (a failure closes the connection, counted in
//! [`ServerStats::bad_mac`](crate::ServerStats::bad_mac)).

use super::{Transport, is_timeout};
use crate::auth::{MAC_LEN, ServerAuth, Session, random_bytes};
use crate::error::{RemoteError, RpcError};
use crate::frame::FrameDecoder;
use crate::message::{Request, Response, ServerMessage, decode_message, encode_message};
use crate::server::{
    Admission, ReplyCache, ServerConfig, ServerStats, check_authenticate, encode_reply,
};
use crate::service::{CallContext, Dispatch};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    auth: Option<ServerAuth>,
    max_connections: usize,
    frame_timeout: Duration,
    idle_timeout: Duration,
    /// Connections being served.
    open: AtomicUsize,
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
            auth: config.auth,
            max_connections: config.max_connections,
            frame_timeout: config.frame_timeout,
            idle_timeout: config.idle_timeout,
            open: AtomicUsize::new(0),
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
        ServerStats {
            reply_cache_evictions: lock(&self.cache).evictions(),
            ..*lock(&self.stats)
        }
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Handles one request: executes it at most once and returns the reply,
    /// or `None` when a duplicate's original did not finish in time.
    pub fn handle(&self, req: Request) -> Option<Response> {
        self.handle_from(req, None)
    }

    /// [`handle`](Self::handle) for a request from a connection that proved
    /// the identity `peer` (passed on as [`CallContext::peer`]).
    pub fn handle_from(&self, req: Request, peer: Option<u64>) -> Option<Response> {
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
                    peer,
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

/// How often a connection thread wakes to check its deadlines.
fn tick<D>(server: &SharedServer<D>) -> Duration {
    (server.frame_timeout.min(server.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
}

fn invalid(e: RpcError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes `out` (and empties it). A write that made no progress for
/// `frame_timeout` (a peer that does not read) counts as a stall.
fn send<S: Transport, D>(
    stream: &mut S,
    out: &mut Vec<u8>,
    server: &SharedServer<D>,
) -> io::Result<()> {
    let r = stream.write_all(out).and_then(|()| stream.flush());
    out.clear();
    if let Err(e) = &r {
        if is_timeout(e) {
            lock(&server.stats).stalled += 1;
            let _ = stream.shutdown();
        }
    }
    r
}

/// Serves one connection until the peer closes it or stays idle for
/// [`ServerConfig::idle_timeout`] (`Ok`), or sends something malformed,
/// fails to authenticate, stalls a greeting or frame for
/// [`ServerConfig::frame_timeout`], or the stream fails (`Err`). The first
/// frame sent is the greeting: the incarnation, or with a key the challenge
/// of [`auth`](crate::auth).
pub fn serve_connection<S: Transport, D: Dispatch>(
    mut stream: S,
    server: &SharedServer<D>,
) -> io::Result<()> {
    stream.set_read_timeout(Some(tick(server)))?;
    stream.set_write_timeout(Some(server.frame_timeout))?;
    let mut decoder = FrameDecoder::new(server.max_frame);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    // `challenge`: the nonce sent, until the client has proved the key.
    let mut challenge = None;
    let greeting = match &server.auth {
        None => ServerMessage::Hello {
            incarnation: server.incarnation,
        },
        Some(_) => {
            let nonce = random_bytes();
            challenge = Some(nonce);
            ServerMessage::Challenge { nonce }
        }
    };
    let mut peer = None;
    // The MACs of the frames after the greeting (authenticated only).
    let mut session: Option<Session> = None;
    encode_message(&mut out, &greeting, server.max_frame).map_err(invalid)?;
    send(&mut stream, &mut out, server)?;
    let mut last_input = Instant::now();
    // When the unfinished greeting or frame began.
    let mut pending_since = challenge.map(|_| last_input);
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) if challenge.is_some() => {
                log::info!("rpc server: connection refused: closed before proving the key");
                lock(&server.stats).auth_failed += 1;
                return Ok(());
            }
            Ok(0) => return decoder.finish().map_err(|e| invalid(e.into())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                let now = Instant::now();
                if pending_since.is_some_and(|t| now >= t + server.frame_timeout) {
                    lock(&server.stats).stalled += 1;
                    let _ = stream.shutdown();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "greeting or frame unfinished for too long",
                    ));
                }
                if now >= last_input + server.idle_timeout {
                    lock(&server.stats).idle_closed += 1;
                    let _ = stream.shutdown();
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        last_input = Instant::now();
        let mut input = &buf[..n];
        loop {
            let mut frame = match decoder.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(protocol_error(&stream, server, e.into())),
            };
            if let (Some(nonce), Some(auth)) = (challenge, server.auth.as_ref()) {
                match check_authenticate(auth, nonce, server.incarnation, &frame) {
                    Ok((identity, accepted, keys)) => {
                        lock(&server.stats).authenticated += 1;
                        session = Some(keys);
                        decoder.set_max_frame(server.max_frame + MAC_LEN);
                        challenge = None;
                        pending_since = None;
                        peer = Some(identity);
                        encode_message(&mut out, &accepted, server.max_frame).map_err(invalid)?;
                        send(&mut stream, &mut out, server)?;
                        continue;
                    }
                    Err(why) => {
                        log::info!("rpc server: connection refused: {why}");
                        lock(&server.stats).auth_failed += 1;
                        if encode_message(&mut out, &ServerMessage::Refused, server.max_frame)
                            .is_ok()
                        {
                            let _ = send(&mut stream, &mut out, server);
                        }
                        let _ = stream.shutdown();
                        return Err(invalid(RpcError::Unauthenticated(why)));
                    }
                }
            }
            // The MAC is checked before anything of the frame is decoded.
            if let Some(session) = session.as_mut() {
                if let Err(e) = session.recv.open(&mut frame) {
                    log::info!("rpc server: closing a connection: {e}");
                    lock(&server.stats).bad_mac += 1;
                    let _ = stream.shutdown();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            let req: Request = match decode_message(&frame) {
                Ok(req) => req,
                Err(e) => return Err(protocol_error(&stream, server, e)),
            };
            if let Some(resp) = server.handle_from(req, peer) {
                encode_reply(&mut out, resp, server.max_frame, session.as_mut())
                    .map_err(invalid)?;
                send(&mut stream, &mut out, server)?;
            }
        }
        if challenge.is_none() {
            pending_since = if decoder.is_idle() {
                None
            } else {
                pending_since.or(Some(last_input))
            };
        }
    }
}

fn protocol_error<S: Transport, D>(stream: &S, server: &SharedServer<D>, e: RpcError) -> io::Error {
    lock(&server.stats).protocol_errors += 1;
    let _ = stream.shutdown();
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Failed accepts in a row for longer than this end [`serve`]: the
/// listener itself is broken.
const ACCEPT_FAILING_FOR: Duration = Duration::from_secs(60);

/// Decrements the open-connection count when a connection thread ends.
struct OpenGuard<D: Send + 'static>(Arc<SharedServer<D>>);

impl<D: Send + 'static> Drop for OpenGuard<D> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections from `accept` (e.g. `|| listener.accept().map(|(s, _)| s)`)
/// forever, serving each on its own thread, at most
/// [`ServerConfig::max_connections`] at once (the excess is closed at once,
/// counted in [`ServerStats::refused_connections`]). A failed accept
/// ([`ServerStats::accept_errors`]) or thread spawn
/// ([`ServerStats::spawn_failures`]) costs that one connection; the loop
/// backs off briefly and goes on. Returns only when `accept` has failed
/// without a success for a minute.
pub fn serve<S, A, D>(accept: A, server: Arc<SharedServer<D>>) -> io::Result<()>
where
    S: Transport,
    A: FnMut() -> io::Result<S>,
    D: Dispatch + Send + 'static,
{
    serve_with(accept, server, |work| {
        thread::Builder::new()
            .name("rpc-server-conn".into())
            .spawn(work)
            .map(drop)
    })
}

/// A connection's work, for [`serve_with`]'s spawner.
pub(crate) type ConnWork = Box<dyn FnOnce() + Send + 'static>;

/// [`serve`] with the way connection threads are started given (tests
/// make it fail).
pub(crate) fn serve_with<S, A, D, P>(
    mut accept: A,
    server: Arc<SharedServer<D>>,
    mut spawn: P,
) -> io::Result<()>
where
    S: Transport,
    A: FnMut() -> io::Result<S>,
    D: Dispatch + Send + 'static,
    P: FnMut(ConnWork) -> io::Result<()>,
{
    let mut failing_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(1);
    loop {
        let stream = match accept() {
            Ok(s) => {
                failing_since = None;
                backoff = Duration::from_millis(1);
                s
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                lock(&server.stats).accept_errors += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= ACCEPT_FAILING_FOR {
                    return Err(e);
                }
                log::warn!("rpc server: accept failed: {e}; going on");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
        };
        if server.open.fetch_add(1, Ordering::Relaxed) >= server.max_connections {
            server.open.fetch_sub(1, Ordering::Relaxed);
            lock(&server.stats).refused_connections += 1;
            log::debug!("rpc server: connection refused: too many connections");
            let _ = stream.shutdown();
            continue;
        }
        let guard = OpenGuard(Arc::clone(&server));
        let spawned = spawn(Box::new(move || {
            let guard = guard;
            if let Err(e) = serve_connection(stream, &guard.0) {
                log::debug!("rpc server: connection ended: {e}");
            }
        }));
        if let Err(e) = spawned {
            // The closure (with the stream and the guard) is dropped: the
            // connection closes and stops counting as open.
            lock(&server.stats).spawn_failures += 1;
            log::warn!("rpc server: cannot start a connection thread: {e}");
            thread::sleep(backoff);
        }
    }
}
