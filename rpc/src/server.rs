//! The sans-IO server core and its at-most-once reply cache.
//!
//! At-most-once (Birrell and Nelson's "exactly once if it returns, at most
//! once otherwise"): every request carries `(client_id, request_id)` and a
//! client retries with the *same* ids. The server remembers, for each key it
//! has seen recently, either "executing" or the reply it sent, and answers a
//! duplicate from that memory instead of running the procedure again.
//!
//! Memory is bounded three ways: completed replies are forgotten after
//! [`ServerConfig::reply_ttl`], or (oldest first, counted in
//! [`ServerStats::reply_cache_evictions`]) when more than
//! [`ServerConfig::reply_cache_capacity`] are held or they add up to more
//! than [`ServerConfig::reply_cache_bytes`]. Forgetting
//! must not reopen the door to a second execution, so for each client the
//! cache keeps a *floor*: the highest request id it has forgotten. A request
//! at or below the floor that is not in the table is refused with
//! [`RemoteError::Stale`] rather than executed (request ids only grow, so a
//! fresh call is always above the floor). A client's floor is dropped
//! [`ServerConfig::client_ttl`] after its last activity; the guarantee covers
//! duplicates that arrive within that time.
//!
//! The table lives in memory, so a restart empties it. What keeps a retry
//! from running a second time on the restarted server is the *incarnation*:
//! a random number drawn at every start ([`ServerConfig::incarnation`]) and
//! sent as the first frame of every connection
//! ([`ServerMessage::Hello`]). A client
//! stamps each request with the incarnation its first copy went to, and a
//! server refuses a request stamped with another incarnation
//! ([`Admission::Restarted`], [`RemoteError::Restarted`]) instead of
//! executing it: the old incarnation may have run it. This is the "detect
//! duplicates across receiver failures" half of the lectures' choice; the
//! other half, operations that survive a restart, is for the service to
//! provide (a durable log, as [`twopc`](crate::twopc) has, or idempotence).
//!
//! # Defences
//!
//! Every resource a client can make the server hold has a bound, a
//! documented default and a counter in [`ServerStats`]:
//!
//! | What | Bound ([`ServerConfig`]) | Default | Counter |
//! |---|---|---|---|
//! | connections at once | `max_connections` | 512 | `refused_connections` |
//! | a greeting or a frame half received | `frame_timeout` | 10 s | `stalled` |
//! | a connection with no input | `idle_timeout` | 300 s | `idle_closed` |
//! | replies remembered | `reply_cache_capacity` | 65,536 | `reply_cache_evictions` |
//! | bytes of replies remembered | `reply_cache_bytes` | 64 MiB | `reply_cache_evictions` |
//! | a frame | `max_frame` | 1 MiB | `protocol_errors` |
//! | a frame failing its MAC (authenticated) | closes the connection | - | `bad_mac` |
//!
//! With [`ServerConfig::auth`] every connection must pass the
//! challenge-response of [`auth`](crate::auth) before any of its calls is
//! decoded; failures are counted in [`ServerStats::auth_failed`], and the
//! proved identity reaches each call as [`CallContext::peer`]. Every frame
//! after the greeting then carries a MAC, checked before it is decoded; a
//! frame that fails it closes the connection and is counted in
//! [`ServerStats::bad_mac`].

use crate::auth::{MAC_LEN, Nonce, NonceSource, ServerAuth, Session};
use crate::error::{RemoteError, RpcError};
use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder};
use crate::message::{
    Authenticate, Request, Response, ServerMessage, decode_message, encode_message,
};
use crate::service::{CallContext, Dispatch};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Tunables of the server side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest frame payload accepted or sent.
    pub max_frame: usize,
    /// Most completed replies remembered for duplicate suppression.
    pub reply_cache_capacity: usize,
    /// How long a completed reply is remembered.
    pub reply_ttl: Duration,
    /// How long a client's floor is kept after its last request.
    pub client_ttl: Duration,
    /// This run of the server: must differ between runs (a restart draws a
    /// new one), so that requests sent to an earlier run are recognised.
    /// `Default` draws a random value; the simulator passes a seeded one.
    pub incarnation: u64,
    /// Most bytes of completed replies remembered (payload sizes plus a
    /// small per-entry overhead); default 64 MiB.
    pub reply_cache_bytes: usize,
    /// The key every connection must prove (see [`auth`](crate::auth));
    /// `None` (the default) greets with a plain `Hello`.
    pub auth: Option<ServerAuth>,
    /// Most connections served at once; more are refused (closed at once)
    /// and counted. Default 512.
    pub max_connections: usize,
    /// Longest a greeting may take to complete, and a frame may stay half
    /// received, before the connection is dropped. Default 10 s.
    pub frame_timeout: Duration,
    /// A connection with no input for this long is closed (the client
    /// reconnects on its next call). Default 300 s.
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: DEFAULT_MAX_FRAME,
            reply_cache_capacity: 65_536,
            reply_ttl: Duration::from_secs(60),
            client_ttl: Duration::from_secs(600),
            incarnation: crate::random_id(),
            reply_cache_bytes: 64 << 20,
            auth: None,
            max_connections: 512,
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// What to do with an arriving request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// First sighting: execute it, then call [`ReplyCache::complete`].
    Execute,
    /// A duplicate of a completed call: send this reply again.
    Replay(Response),
    /// A duplicate of a call still executing: do not execute; its reply will
    /// be available from the cache when it completes.
    InProgress,
    /// Older than what the cache remembers: refuse without executing.
    Stale,
    /// First sent to another incarnation of the server (which may have
    /// executed it): refuse without executing.
    Restarted,
}

#[derive(Debug)]
enum Slot {
    InProgress,
    Done(Response),
}

#[derive(Debug)]
struct ClientWindow {
    /// Highest forgotten request id, if any.
    floor: Option<u64>,
    /// Entries in the table for this client.
    live: usize,
    last_seen: Instant,
}

/// The at-most-once table: `(client_id, request_id)` to "executing" or the
/// cached reply. Sans-IO: time is passed in.
#[derive(Debug)]
pub struct ReplyCache {
    entries: HashMap<(u64, u64), Slot>,
    /// Completed keys in completion order (for expiry and eviction).
    completed: VecDeque<(Instant, (u64, u64))>,
    clients: HashMap<u64, ClientWindow>,
    next_client_sweep: Option<Instant>,
    capacity: usize,
    /// Bytes of the completed replies held, and their bound.
    bytes: usize,
    max_bytes: usize,
    evictions: u64,
    ttl: Duration,
    client_ttl: Duration,
    incarnation: u64,
}

impl ReplyCache {
    /// An empty cache with the limits of `config`.
    pub fn new(config: &ServerConfig) -> Self {
        ReplyCache {
            entries: HashMap::new(),
            completed: VecDeque::new(),
            clients: HashMap::new(),
            next_client_sweep: None,
            capacity: config.reply_cache_capacity.max(1),
            bytes: 0,
            max_bytes: config.reply_cache_bytes,
            evictions: 0,
            ttl: config.reply_ttl,
            client_ttl: config.client_ttl,
            incarnation: config.incarnation,
        }
    }

    /// The server incarnation this table belongs to.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Classifies a request: [`Admission::Restarted`] when it names another
    /// incarnation, otherwise as [`admit`](Self::admit).
    pub fn admit_request(&mut self, now: Instant, req: &Request) -> Admission {
        if req.incarnation != self.incarnation {
            return Admission::Restarted;
        }
        self.admit(now, req.client_id, req.request_id)
    }

    /// Classifies a request; on [`Admission::Execute`] the key is recorded as
    /// executing, and the caller must later call [`complete`](Self::complete).
    pub fn admit(&mut self, now: Instant, client_id: u64, request_id: u64) -> Admission {
        let window = self.clients.entry(client_id).or_insert(ClientWindow {
            floor: None,
            live: 0,
            last_seen: now,
        });
        window.last_seen = now;
        match self.entries.get(&(client_id, request_id)) {
            Some(Slot::InProgress) => return Admission::InProgress,
            Some(Slot::Done(resp)) => return Admission::Replay(resp.clone()),
            None => {}
        }
        if window.floor.is_some_and(|floor| request_id <= floor) {
            return Admission::Stale;
        }
        window.live += 1;
        self.entries
            .insert((client_id, request_id), Slot::InProgress);
        if self.next_client_sweep.is_none() {
            self.next_client_sweep = Some(now + self.client_ttl);
        }
        Admission::Execute
    }

    /// Records the reply of an executed call (keeps it for duplicates).
    pub fn complete(&mut self, now: Instant, client_id: u64, response: Response) {
        let key = (client_id, response.request_id);
        if !matches!(self.entries.get(&key), Some(Slot::InProgress)) {
            return;
        }
        self.bytes += reply_size(&response);
        self.entries.insert(key, Slot::Done(response));
        self.completed.push_back((now, key));
        while self.completed.len() > self.capacity || self.bytes > self.max_bytes {
            let Some((_, key)) = self.completed.pop_front() else {
                break;
            };
            self.forget(key);
            self.evictions += 1;
        }
    }

    /// Bytes of the completed replies held (as counted for
    /// [`ServerConfig::reply_cache_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Replies forgotten early because a bound was reached.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The cached reply for a key, if completed.
    pub fn reply(&self, client_id: u64, request_id: u64) -> Option<&Response> {
        match self.entries.get(&(client_id, request_id)) {
            Some(Slot::Done(resp)) => Some(resp),
            _ => None,
        }
    }

    /// Completed replies held.
    pub fn len(&self) -> usize {
        self.completed.len()
    }

    /// True when no reply is held.
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty()
    }

    /// When [`expire`](Self::expire) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reply = self.completed.front().map(|(at, _)| *at + self.ttl);
        [reply, self.next_client_sweep].into_iter().flatten().min()
    }

    /// Forgets replies older than the TTL and idle clients' floors.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.completed.front() {
            if at + self.ttl > now {
                break;
            }
            self.completed.pop_front();
            self.forget(key);
        }
        if self.next_client_sweep.is_some_and(|t| t <= now) {
            let ttl = self.client_ttl;
            self.clients
                .retain(|_, w| w.live > 0 || w.last_seen + ttl > now);
            self.next_client_sweep = if self.clients.is_empty() {
                None
            } else {
                Some(now + ttl / 4)
            };
        }
    }

    fn forget(&mut self, key: (u64, u64)) {
        let Some(slot) = self.entries.remove(&key) else {
            return;
        };
        if let Slot::Done(resp) = &slot {
            self.bytes = self.bytes.saturating_sub(reply_size(resp));
        }
        if let Some(window) = self.clients.get_mut(&key.0) {
            window.live = window.live.saturating_sub(1);
            window.floor = Some(window.floor.map_or(key.1, |f| f.max(key.1)));
        }
    }
}

/// What a cached reply counts for [`ServerConfig::reply_cache_bytes`]:
/// its payload plus the bookkeeping around it.
fn reply_size(resp: &Response) -> usize {
    const OVERHEAD: usize = 96;
    OVERHEAD
        + match &resp.result {
            Ok(bytes) => bytes.len(),
            Err(RemoteError::Application(s) | RemoteError::BadArguments(s)) => s.len(),
            Err(_) => 0,
        }
}

/// Counters of a server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests executed.
    pub executed: u64,
    /// Duplicates answered from the reply cache.
    pub replayed: u64,
    /// Duplicates of a call still executing (not executed again).
    pub in_progress_duplicates: u64,
    /// Requests refused as older than the cache's memory.
    pub stale: u64,
    /// Requests refused because they were first sent to another incarnation.
    pub restarted: u64,
    /// Connections closed because of malformed input.
    pub protocol_errors: u64,
    /// Connections that proved the key.
    pub authenticated: u64,
    /// Connections closed because a frame after the greeting failed its MAC
    /// (altered, injected, replayed, reordered or cut short); its contents
    /// were not decoded.
    pub bad_mac: u64,
    /// Connections closed because their greeting did not prove the key
    /// (a wrong proof, or closed before giving one).
    pub auth_failed: u64,
    /// Connections refused because `max_connections` were open.
    pub refused_connections: u64,
    /// Connections dropped because a greeting or a frame stayed unfinished
    /// for `frame_timeout`.
    pub stalled: u64,
    /// Connections closed after `idle_timeout` without input.
    pub idle_closed: u64,
    /// Replies forgotten early because the reply cache was full (entries or
    /// bytes).
    pub reply_cache_evictions: u64,
    /// Connections dropped because no thread could be started for them
    /// (blocking driver).
    pub spawn_failures: u64,
    /// Failed accepts (blocking driver; the accept loop goes on).
    pub accept_errors: u64,
}

/// Identifies one connection of a server (assigned by the driver).
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnAuth {
    /// Challenge sent with this nonce; waiting for the `Authenticate`.
    Challenged(Nonce),
    /// Calls are accepted; the identity the greeting proved, if any.
    Open(Option<u64>),
    /// Authentication failed: the refusal is queued; input is ignored.
    Refused,
}

#[derive(Debug)]
struct ServerConn {
    decoder: FrameDecoder,
    out: Vec<u8>,
    auth: ConnAuth,
    /// The MACs of the frames after the greeting (authenticated only).
    session: Option<Session>,
    /// Last input (or the accept), once known.
    last_input: Option<Instant>,
    /// When the unfinished greeting or frame began, if one is unfinished.
    pending_since: Option<Instant>,
}

/// The sans-IO RPC server: bytes in per connection, bytes out per
/// connection, with the at-most-once table shared by all connections (a
/// client that reconnects retries on a new connection).
///
/// Driver contract: announce each accepted connection with
/// [`handle_accepted_at`](Self::handle_accepted_at) (it queues the greeting
/// the client waits for; `false` means the connection cap is reached: close
/// it at once), feed received bytes with [`handle_bytes`](Self::handle_bytes)
/// (an `Err` means "close this connection", after sending what
/// [`poll_transmit`](Self::poll_transmit) still returns for it: the refusal
/// of a failed authentication), send what `poll_transmit` returns, report
/// closed connections with [`handle_closed`](Self::handle_closed), call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and close every connection
/// [`poll_close`](Self::poll_close) returns (stalled or idle).
/// Calls are executed synchronously inside `handle_bytes`.
#[derive(Debug)]
pub struct ServerCore<D> {
    dispatch: D,
    cache: ReplyCache,
    conns: HashMap<ConnId, ServerConn>,
    max_frame: usize,
    stats: ServerStats,
    config: ServerConfig,
    nonces: Option<NonceSource>,
    /// Connections given up by a timer, for `poll_close`.
    closing: VecDeque<ConnId>,
}

impl<D: Dispatch> ServerCore<D> {
    /// A server executing calls with `dispatch`.
    pub fn new(dispatch: D, config: ServerConfig) -> Self {
        let nonces = config
            .auth
            .as_ref()
            .map(|a| NonceSource::new(a.nonce_seed, config.incarnation));
        ServerCore {
            dispatch,
            cache: ReplyCache::new(&config),
            conns: HashMap::new(),
            max_frame: config.max_frame,
            stats: ServerStats::default(),
            config,
            nonces,
            closing: VecDeque::new(),
        }
    }

    /// The service implementation.
    pub fn dispatcher(&self) -> &D {
        &self.dispatch
    }

    /// The service implementation, mutably.
    pub fn dispatcher_mut(&mut self) -> &mut D {
        &mut self.dispatch
    }

    /// Forgets what a crash loses (the at-most-once table, every
    /// connection's partial input and unsent replies) and goes on as run
    /// `incarnation` with the same service, whose state the caller treats as
    /// durable. For crash tests: a request executed again would show in it.
    pub fn restart(&mut self, incarnation: u64) {
        self.config.incarnation = incarnation;
        self.cache = ReplyCache::new(&self.config);
        self.conns.clear();
        self.closing.clear();
        self.nonces = self
            .config
            .auth
            .as_ref()
            .map(|a| NonceSource::new(a.nonce_seed, incarnation));
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            reply_cache_evictions: self.cache.evictions(),
            ..self.stats
        }
    }

    /// This run's incarnation (sent in every greeting).
    pub fn incarnation(&self) -> u64 {
        self.cache.incarnation()
    }

    /// Connections open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A connection was accepted: queues the greeting
    /// ([`ServerMessage::Hello`], or a [`ServerMessage::Challenge`] with a
    /// key) for [`poll_transmit`](Self::poll_transmit). Clients send nothing
    /// until they have it. Like [`handle_accepted_at`](Self::handle_accepted_at)
    /// without a time: the connection's timers start at its first input.
    pub fn handle_accepted(&mut self, conn: ConnId) -> bool {
        self.accept(None, conn)
    }

    /// A connection was accepted at `now`: queues the greeting and starts
    /// its timers. Returns `false`, counting it in
    /// [`ServerStats::refused_connections`], when
    /// [`ServerConfig::max_connections`] are already open: the driver must
    /// close it.
    pub fn handle_accepted_at(&mut self, now: Instant, conn: ConnId) -> bool {
        self.accept(Some(now), conn)
    }

    fn accept(&mut self, now: Option<Instant>, conn: ConnId) -> bool {
        if !self.conns.contains_key(&conn) && self.conns.len() >= self.config.max_connections {
            self.stats.refused_connections += 1;
            return false;
        }
        let state = self.greeted(now);
        self.conns.insert(conn, state);
        true
    }

    /// A connection's state with the greeting queued.
    fn greeted(&mut self, now: Option<Instant>) -> ServerConn {
        let mut out = Vec::new();
        let (msg, auth) = match self.nonces.as_mut() {
            Some(nonces) => {
                let nonce = nonces.next_nonce();
                (
                    ServerMessage::Challenge { nonce },
                    ConnAuth::Challenged(nonce),
                )
            }
            None => (
                ServerMessage::Hello {
                    incarnation: self.cache.incarnation(),
                },
                ConnAuth::Open(None),
            ),
        };
        // A greeting is a few bytes; it always fits a frame.
        if let Err(e) = encode_message(&mut out, &msg, self.max_frame) {
            log::error!("rpc server: cannot encode the greeting: {e}");
        }
        let challenged = matches!(auth, ConnAuth::Challenged(_));
        ServerConn {
            decoder: FrameDecoder::new(self.max_frame),
            out,
            auth,
            session: None,
            last_input: now,
            pending_since: now.filter(|_| challenged),
        }
    }

    /// Handles one decoded request (message level, without framing), as
    /// from an unauthenticated connection. Returns the reply to send;
    /// `None` for a duplicate of a call still executing (impossible here
    /// since calls complete synchronously, kept for drivers that execute
    /// elsewhere).
    pub fn handle_request(&mut self, now: Instant, req: Request) -> Option<Response> {
        self.handle_request_from(now, None, req)
    }

    /// [`handle_request`](Self::handle_request) for a request from `peer`
    /// (the identity its connection proved), passed on in
    /// [`CallContext::peer`].
    pub fn handle_request_from(
        &mut self,
        now: Instant,
        peer: Option<u64>,
        req: Request,
    ) -> Option<Response> {
        match self.cache.admit_request(now, &req) {
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
                let result = self.dispatch.dispatch(&ctx, req.method, &req.args);
                self.stats.executed += 1;
                let resp = Response {
                    request_id: req.request_id,
                    result,
                };
                self.cache.complete(now, req.client_id, resp.clone());
                Some(resp)
            }
            Admission::Replay(resp) => {
                self.stats.replayed += 1;
                Some(resp)
            }
            Admission::InProgress => {
                self.stats.in_progress_duplicates += 1;
                None
            }
            Admission::Stale => {
                self.stats.stale += 1;
                Some(Response {
                    request_id: req.request_id,
                    result: Err(RemoteError::Stale),
                })
            }
            Admission::Restarted => {
                self.stats.restarted += 1;
                Some(Response {
                    request_id: req.request_id,
                    result: Err(RemoteError::Restarted),
                })
            }
        }
    }

    /// Feeds bytes received on `conn` (an id not yet announced with
    /// [`handle_accepted_at`](Self::handle_accepted_at) is accepted now).
    /// Complete requests are executed and their replies queued for
    /// [`poll_transmit`](Self::poll_transmit). An `Err` means: close the
    /// connection (after sending what `poll_transmit` still returns).
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        conn: ConnId,
        bytes: &[u8],
    ) -> Result<(), RpcError> {
        let max_frame = self.max_frame;
        if !self.conns.contains_key(&conn) && !self.accept(Some(now), conn) {
            return Err(RpcError::Protocol("too many connections".into()));
        }
        let mut input = bytes;
        loop {
            let Some(state) = self.conns.get_mut(&conn) else {
                return Ok(());
            };
            state.last_input = Some(now);
            if state.auth == ConnAuth::Refused {
                return Err(RpcError::Unauthenticated("refused".into()));
            }
            let mut frame = match state.decoder.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    let greeting = matches!(state.auth, ConnAuth::Challenged(_));
                    if state.decoder.is_idle() && !greeting {
                        state.pending_since = None;
                    } else if state.pending_since.is_none() {
                        state.pending_since = Some(now);
                    }
                    return Ok(());
                }
                Err(e) => return Err(self.protocol_error(conn, e.into())),
            };
            let peer = match state.auth {
                ConnAuth::Open(peer) => peer,
                ConnAuth::Challenged(nonce) => {
                    self.authenticate(conn, nonce, &frame)?;
                    continue;
                }
                ConnAuth::Refused => return Err(RpcError::Unauthenticated("refused".into())),
            };
            // The MAC is checked before anything of the frame is decoded.
            if let Some(session) = state.session.as_mut() {
                if let Err(e) = session.recv.open(&mut frame) {
                    log::info!("rpc server: closing connection {conn}: {e}");
                    self.stats.bad_mac += 1;
                    self.conns.remove(&conn);
                    return Err(RpcError::Protocol(e.to_string()));
                }
            }
            let req: Request = match decode_message(&frame) {
                Ok(req) => req,
                Err(e) => return Err(self.protocol_error(conn, e)),
            };
            if let Some(resp) = self.handle_request_from(now, peer, req) {
                let Some(state) = self.conns.get_mut(&conn) else {
                    return Ok(());
                };
                encode_reply(&mut state.out, resp, max_frame, state.session.as_mut())?;
            }
        }
    }

    /// Checks the client's `Authenticate` (the first frame on a connection
    /// of a server with a key).
    fn authenticate(
        &mut self,
        conn: ConnId,
        server_nonce: Nonce,
        frame: &[u8],
    ) -> Result<(), RpcError> {
        let incarnation = self.cache.incarnation();
        let (Some(auth), Some(state)) = (self.config.auth.as_ref(), self.conns.get_mut(&conn))
        else {
            return Ok(());
        };
        match check_authenticate(auth, server_nonce, incarnation, frame) {
            Ok((identity, accepted, session)) => {
                state.auth = ConnAuth::Open(Some(identity));
                state.session = Some(session);
                state.decoder.set_max_frame(self.max_frame + MAC_LEN);
                state.pending_since = None;
                if let Err(e) = encode_message(&mut state.out, &accepted, self.max_frame) {
                    log::error!("rpc server: cannot encode the greeting: {e}");
                }
                self.stats.authenticated += 1;
                Ok(())
            }
            Err(why) => {
                log::info!("rpc server: connection {conn} refused: {why}");
                self.stats.auth_failed += 1;
                state.auth = ConnAuth::Refused;
                state.pending_since = None;
                state.out.clear();
                let _ = encode_message(&mut state.out, &ServerMessage::Refused, self.max_frame);
                Err(RpcError::Unauthenticated(why))
            }
        }
    }

    /// Moves the bytes waiting to be sent on `conn` into `out` (appending).
    pub fn poll_transmit(&mut self, conn: ConnId, out: &mut Vec<u8>) {
        if let Some(state) = self.conns.get_mut(&conn) {
            out.append(&mut state.out);
        }
    }

    /// True when `conn` has bytes waiting.
    pub fn has_transmit(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.out.is_empty())
    }

    /// The connection is gone: forget its partial input and unsent replies
    /// (the client will retry; the cache still holds the replies).
    pub fn handle_closed(&mut self, conn: ConnId) {
        if let Some(ServerConn {
            auth: ConnAuth::Challenged(_),
            ..
        }) = self.conns.remove(&conn)
        {
            // Gone before proving the key.
            self.stats.auth_failed += 1;
        }
    }

    /// A connection the core gave up ([`ServerConfig::frame_timeout`] or
    /// [`ServerConfig::idle_timeout`]): the driver closes it. Its state is
    /// already dropped.
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.closing.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().flat_map(|c| {
            [
                c.pending_since.map(|t| t + self.config.frame_timeout),
                c.last_input.map(|t| t + self.config.idle_timeout),
            ]
        });
        conns.chain([self.cache.poll_timeout()]).flatten().min()
    }

    /// Expires old entries of the reply cache, and gives up connections
    /// whose greeting or frame stalled or that stayed idle (see
    /// [`poll_close`](Self::poll_close)).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cache.expire(now);
        let (frame_timeout, idle_timeout) = (self.config.frame_timeout, self.config.idle_timeout);
        let mut stalled = Vec::new();
        let mut idle = Vec::new();
        for (&id, c) in &mut self.conns {
            let last = *c.last_input.get_or_insert(now);
            if c.pending_since.is_some_and(|t| t + frame_timeout <= now) {
                stalled.push(id);
            } else if last + idle_timeout <= now {
                idle.push(id);
            }
        }
        for id in stalled {
            log::debug!("rpc server: connection {id}: greeting or frame stalled; closing");
            self.stats.stalled += 1;
            self.conns.remove(&id);
            self.closing.push_back(id);
        }
        for id in idle {
            log::debug!("rpc server: connection {id} idle; closing");
            self.stats.idle_closed += 1;
            self.conns.remove(&id);
            self.closing.push_back(id);
        }
    }

    fn protocol_error(&mut self, conn: ConnId, e: RpcError) -> RpcError {
        log::debug!("rpc server: closing connection {conn}: {e}");
        self.stats.protocol_errors += 1;
        self.conns.remove(&conn);
        e
    }
}

/// Checks an `Authenticate` frame against the challenge `server_nonce`
/// with the key of the identity it claims: the proved identity, the
/// `Accepted` to send and the session of the frames to come, or why it
/// failed.
pub(crate) fn check_authenticate(
    auth: &ServerAuth,
    server_nonce: Nonce,
    incarnation: u64,
    frame: &[u8],
) -> Result<(u64, ServerMessage, Session), String> {
    let answer: Authenticate =
        decode_message(frame).map_err(|e| format!("not an authentication: {e}"))?;
    let Some(key) = auth.keys.key_for(answer.identity) else {
        return Err(format!("identity {} has no key here", answer.identity));
    };
    if !key.verify_client(&server_nonce, &answer.nonce, answer.identity, &answer.mac) {
        return Err(format!(
            "identity {} did not prove its key",
            answer.identity
        ));
    }
    let mac = key.server_mac(&server_nonce, &answer.nonce, answer.identity, incarnation);
    let session = Session::server(
        key,
        &server_nonce,
        &answer.nonce,
        answer.identity,
        incarnation,
    );
    Ok((
        answer.identity,
        ServerMessage::Accepted { incarnation, mac },
        session,
    ))
}

/// Appends `resp` as a frame; a reply too large for a frame is replaced by
/// an error reply saying so.
/// With a `session`, the frame is sealed with its MAC.
pub(crate) fn encode_reply(
    out: &mut Vec<u8>,
    resp: Response,
    max_frame: usize,
    session: Option<&mut Session>,
) -> Result<(), RpcError> {
    let start = out.len();
    let request_id = resp.request_id;
    if let Err(e) = encode_message(out, &ServerMessage::Response(resp), max_frame) {
        let small = Response {
            request_id,
            result: Err(RemoteError::Application(e.to_string())),
        };
        encode_message(out, &ServerMessage::Response(small), max_frame)?;
    }
    if let Some(session) = session {
        session.send.seal(out, start)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
