//! The sans-IO client core: many outstanding calls on one connection,
//! deadlines, retries with the same request id, reconnection.
//!
//! Life of a call: [`ClientCore::start_call`] queues it; while connected it is
//! encoded into the transmit buffer at once. If no reply arrives within
//! [`ClientConfig::attempt_timeout`], or the connection drops, it is sent
//! again *with the same request id* after an exponential backoff, at most
//! [`ClientConfig::max_attempts`] times in all, so that an at-most-once server
//! executes it once. It fails with [`RpcError::Timeout`] at its deadline,
//! [`RpcError::Unreachable`] when connecting failed on every attempt and it was
//! never sent, and [`RpcError::Closed`] when the connection dropped after it was
//! sent and no attempt is left. Replies are matched by request id, in any order;
//! a reply for an unknown id (a late duplicate) is ignored.
//!
//! Every connection starts with the server's greeting, which names its
//! incarnation; nothing is sent before it (a server that does not greet
//! within [`ClientConfig::attempt_timeout`] counts as a failed connection).
//! A call remembers the incarnation its first copy went to. When a retry
//! finds a different one, the server has restarted and may have executed
//! the call before it did: the call fails with [`RpcError::Restarted`]
//! rather than being sent again (the server would refuse it anyway).
//!
//! With [`ClientConfig::auth`] the client answers the server's challenge
//! and checks the server's proof before it sends any call (see
//! [`auth`](crate::auth)). When the greeting does not authenticate (the
//! server refused the key, did not prove it, or wants a key this client
//! does not have), every waiting call fails at once with
//! [`RpcError::Unauthenticated`] (or [`RpcError::Closed`] if a copy was
//! sent on an earlier connection): another attempt with the same key
//! would fail the same way. After the greeting every frame either way
//! carries a MAC; a reply that fails it drops the connection (counted in
//! [`ClientStats::bad_mac`]) before it is decoded, and the calls are retried
//! on a new connection as after any broken connection.
//!
//! Driver contract (one connection at a time):
//!
//! 1. When [`wants_connection`](ClientCore::wants_connection) is true, connect,
//!    then call [`handle_connected`](ClientCore::handle_connected) or
//!    [`handle_connect_failed`](ClientCore::handle_connect_failed).
//! 2. Feed received bytes to [`handle_bytes`](ClientCore::handle_bytes); on
//!    `Err` (malformed input) or on end of stream / reset, close the connection
//!    and call [`handle_disconnected`](ClientCore::handle_disconnected).
//! 3. After any call into the core, send what
//!    [`poll_transmit`](ClientCore::poll_transmit) returns, and collect
//!    finished calls from [`poll_event`](ClientCore::poll_event).
//! 4. Call [`handle_timeout`](ClientCore::handle_timeout) when
//!    [`poll_timeout`](ClientCore::poll_timeout) is reached.

use crate::auth::{ClientAuth, Nonce, NonceSource, Session};
use crate::error::RemoteError;
use crate::error::RpcError;
use crate::frame::{DEFAULT_MAX_FRAME, FrameDecoder, FrameError};
use crate::message::{
    Authenticate, Request, Response, ServerMessage, decode_message, encode_message,
};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Tunables of the client side.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of a call that does not set its own.
    pub call_timeout: Duration,
    /// Resend (same request id) when no reply arrived in this time.
    pub attempt_timeout: Duration,
    /// Transmissions (and failed connection attempts) allowed per call, >= 1.
    pub max_attempts: u32,
    /// First backoff before a retry or reconnection; doubles each time.
    pub backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Largest frame payload sent or accepted.
    pub max_frame: usize,
    /// The key and identity to authenticate with (see
    /// [`auth`](crate::auth)); `None` (the default) talks only to servers
    /// without a key.
    pub auth: Option<ClientAuth>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            call_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(1),
            max_attempts: 4,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_frame: DEFAULT_MAX_FRAME,
            auth: None,
        }
    }
}

/// Identifies a call; it is the call's request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// Something the driver must pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A call finished: the marshalled return value, or why it failed.
    Completed {
        /// Which call.
        call: CallId,
        /// Reply bytes (decode with the call's [`ReplyDecoder`](crate::ReplyDecoder)).
        result: Result<Vec<u8>, RpcError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to be written (needs a connection).
    Queued,
    /// Written; resend at this time if no reply.
    Sent { retry_at: Instant },
    /// Waiting before the next attempt.
    Backoff { until: Instant },
    /// Out of attempts; waiting for a reply until the deadline.
    LastChance,
}

#[derive(Debug)]
struct Call {
    method: u32,
    args: Vec<u8>,
    deadline: Instant,
    /// Transmissions and failed connection attempts so far.
    attempts: u32,
    /// The server incarnation the first copy was sent to.
    sent_to: Option<u64>,
    phase: Phase,
}

/// The sans-IO RPC client for one server. See the [module docs](self).
#[derive(Debug)]
pub struct ClientCore {
    client_id: u64,
    next_request_id: u64,
    config: ClientConfig,
    calls: BTreeMap<u64, Call>,
    connected: bool,
    /// The incarnation greeting the current connection, once it arrived.
    server: Option<u64>,
    /// Give up on a connection whose greeting has not arrived by then.
    hello_deadline: Option<Instant>,
    /// The incarnation of the previous connection (to log restarts).
    last_server: Option<u64>,
    connect_failures: u32,
    reconnect_at: Option<Instant>,
    decoder: FrameDecoder,
    transmit: Vec<u8>,
    events: VecDeque<ClientEvent>,
    /// Client nonces, when authenticating.
    nonces: Option<NonceSource>,
    /// The current connection's (server, client) nonces once the challenge
    /// is answered, until the server's proof arrives.
    challenge: Option<(Nonce, Nonce)>,
    /// The MACs of the current connection's frames after the greeting
    /// (authenticated only).
    session: Option<Session>,
    stats: ClientStats,
}

/// Counters of a client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections dropped because a frame from the server failed its MAC
    /// (altered, injected, replayed, reordered or cut short); its contents
    /// were not decoded.
    pub bad_mac: u64,
    /// Greetings that did not authenticate (refused, or the server did not
    /// prove the key).
    pub auth_failed: u64,
}

impl ClientCore {
    /// A client with the given id (random per client incarnation, so that the
    /// server's at-most-once table never confuses two clients).
    pub fn new(client_id: u64, config: ClientConfig) -> Self {
        let nonces = config
            .auth
            .as_ref()
            .map(|a| NonceSource::new(a.nonce_seed, client_id));
        ClientCore {
            nonces,
            challenge: None,
            session: None,
            stats: ClientStats::default(),
            client_id,
            next_request_id: 1,
            decoder: FrameDecoder::new(config.max_frame),
            config: ClientConfig {
                max_attempts: config.max_attempts.max(1),
                ..config
            },
            calls: BTreeMap::new(),
            connected: false,
            server: None,
            hello_deadline: None,
            last_server: None,
            connect_failures: 0,
            reconnect_at: None,
            transmit: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Forgets the connection's framing state and session.
    fn reset_connection(&mut self) {
        self.challenge = None;
        self.session = None;
        self.decoder = FrameDecoder::new(self.config.max_frame);
    }

    /// This client's id.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Calls not yet finished.
    pub fn outstanding(&self) -> usize {
        self.calls.len()
    }

    /// True between `handle_connected` and `handle_disconnected` (or a
    /// protocol error, or a greeting that never came: after
    /// [`handle_timeout`](Self::handle_timeout) the driver closes the
    /// connection when this turns false).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The incarnation of the server on the current connection, once its
    /// greeting has arrived.
    pub fn server_incarnation(&self) -> Option<u64> {
        self.server
    }

    /// Starts a call; its outcome comes out of [`poll_event`](Self::poll_event).
    /// `timeout` overrides [`ClientConfig::call_timeout`].
    pub fn start_call(
        &mut self,
        now: Instant,
        method: u32,
        args: Vec<u8>,
        timeout: Option<Duration>,
    ) -> CallId {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let deadline = now + timeout.unwrap_or(self.config.call_timeout);
        self.calls.insert(
            id,
            Call {
                method,
                args,
                deadline,
                attempts: 0,
                sent_to: None,
                phase: Phase::Queued,
            },
        );
        self.flush_queued(now);
        CallId(id)
    }

    /// Abandons a call (no event will be produced for it). A copy already
    /// sent may still execute on the server.
    pub fn cancel(&mut self, call: CallId) -> bool {
        self.calls.remove(&call.0).is_some()
    }

    /// True when the driver should open a connection now.
    pub fn wants_connection(&self, now: Instant) -> bool {
        !self.connected
            && self.reconnect_at.is_none_or(|t| t <= now)
            && self.calls.values().any(|c| c.phase == Phase::Queued)
    }

    /// A connection is up: queued calls are written once the server's
    /// greeting arrives.
    pub fn handle_connected(&mut self, now: Instant) {
        self.connected = true;
        self.server = None;
        self.reset_connection();
        self.hello_deadline = Some(now + self.config.attempt_timeout);
        self.reconnect_at = None;
        self.transmit.clear();
    }

    /// Connecting failed: each waiting call uses up an attempt; those with
    /// none left fail ([`RpcError::Unreachable`] if never sent).
    pub fn handle_connect_failed(&mut self, now: Instant, why: &str) {
        self.connect_failures += 1;
        self.reconnect_at = Some(now + self.backoff(self.connect_failures));
        let max = self.config.max_attempts;
        let mut failed = Vec::new();
        for (id, call) in &mut self.calls {
            if call.phase != Phase::Queued {
                continue;
            }
            call.attempts += 1;
            if call.attempts >= max {
                failed.push(*id);
            }
        }
        for id in failed {
            if let Some(call) = self.calls.remove(&id) {
                let err = if call.sent_to.is_some() {
                    RpcError::Closed
                } else {
                    RpcError::Unreachable(why.to_string())
                };
                self.events.push_back(ClientEvent::Completed {
                    call: CallId(id),
                    result: Err(err),
                });
            }
        }
    }

    /// The connection closed or broke. Unsent bytes are dropped; calls sent
    /// on it are retried after a backoff (same request id) or fail with
    /// [`RpcError::Closed`] when out of attempts.
    pub fn handle_disconnected(&mut self, now: Instant) {
        self.connected = false;
        self.reset_connection();
        self.last_server = self.server.take().or(self.last_server);
        self.hello_deadline = None;
        self.transmit.clear();
        if self.reconnect_at.is_none() {
            self.reconnect_at = Some(now + self.backoff(1));
        }
        let max = self.config.max_attempts;
        let mut failed = Vec::new();
        for (id, call) in &mut self.calls {
            match call.phase {
                Phase::Sent { .. } if call.attempts < max => {
                    call.phase = Phase::Backoff {
                        until: now + backoff(&self.config, call.attempts),
                    };
                }
                Phase::Sent { .. } | Phase::LastChance => failed.push(*id),
                Phase::Queued | Phase::Backoff { .. } => {}
            }
        }
        for id in failed {
            self.calls.remove(&id);
            self.events.push_back(ClientEvent::Completed {
                call: CallId(id),
                result: Err(RpcError::Closed),
            });
        }
    }

    /// Feeds received bytes. Replies complete their calls. An `Err` is a
    /// protocol error: the core is now disconnected and the driver must close
    /// the connection (no need to call `handle_disconnected`).
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) -> Result<(), RpcError> {
        if !self.connected {
            // Bytes from a connection the core has already given up (e.g.
            // after no greeting in time): the driver must close it.
            return Err(RpcError::Protocol(
                "input on a connection already given up".into(),
            ));
        }
        let mut input = bytes;
        loop {
            let mut frame = match self.decoder.decode(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e @ FrameError::BadVersion(_)) if self.server.is_none() => {
                    // The server speaks another frame format: every attempt
                    // would fail the same way, so the calls fail now, saying
                    // why.
                    return Err(self.fail_all(now, RpcError::Protocol(e.to_string())));
                }
                Err(e) => {
                    self.handle_disconnected(now);
                    return Err(e.into());
                }
            };
            // After the greeting of an authenticated connection, the MAC is
            // checked before anything of the frame is decoded.
            if let Some(session) = self.session.as_mut() {
                if let Err(e) = session.recv.open(&mut frame) {
                    log::info!("rpc client: closing the connection: {e}");
                    self.stats.bad_mac += 1;
                    self.handle_disconnected(now);
                    return Err(RpcError::Protocol(e.to_string()));
                }
            }
            let msg: ServerMessage = match decode_message(&frame) {
                Ok(msg) => msg,
                Err(e) => {
                    self.handle_disconnected(now);
                    return Err(e);
                }
            };
            match (msg, self.server) {
                (ServerMessage::Response(resp), Some(_)) => self.handle_response(resp),
                (_, Some(_)) => {
                    self.handle_disconnected(now);
                    return Err(RpcError::Protocol("a second greeting".into()));
                }
                (ServerMessage::Response(_), None) => {
                    self.handle_disconnected(now);
                    return Err(RpcError::Protocol("a reply before the greeting".into()));
                }
                (greeting, None) => self.handle_greeting(now, greeting)?,
            }
        }
    }

    /// A greeting message (`Hello`, `Challenge`, `Accepted`, `Refused`)
    /// before the connection is open.
    fn handle_greeting(&mut self, now: Instant, msg: ServerMessage) -> Result<(), RpcError> {
        let auth = self.config.auth.as_ref();
        match (msg, auth, self.challenge) {
            (ServerMessage::Hello { incarnation }, None, None) => {
                self.handle_hello(now, incarnation);
                Ok(())
            }
            (ServerMessage::Hello { .. }, Some(_), _) => {
                Err(self.auth_failed(now, "the server did not prove the key (it has none)"))
            }
            (ServerMessage::Challenge { .. }, None, _) => {
                Err(self.auth_failed(now, "the server requires a key, and this client has none"))
            }
            (
                ServerMessage::Challenge {
                    nonce: server_nonce,
                },
                Some(auth),
                None,
            ) => {
                let client_nonce = match self.nonces.as_mut() {
                    Some(n) => n.next_nonce(),
                    None => NonceSource::new(auth.nonce_seed, self.client_id).next_nonce(),
                };
                let answer = Authenticate {
                    identity: auth.identity,
                    nonce: client_nonce,
                    mac: auth
                        .key
                        .client_mac(&server_nonce, &client_nonce, auth.identity),
                };
                if let Err(e) = encode_message(&mut self.transmit, &answer, self.config.max_frame) {
                    self.handle_disconnected(now);
                    return Err(e);
                }
                self.challenge = Some((server_nonce, client_nonce));
                Ok(())
            }
            (ServerMessage::Accepted { incarnation, mac }, Some(auth), Some((sn, cn))) => {
                if auth
                    .key
                    .verify_server(&sn, &cn, auth.identity, incarnation, &mac)
                {
                    let session = Session::client(&auth.key, &sn, &cn, auth.identity, incarnation);
                    self.challenge = None;
                    self.session = Some(session);
                    self.decoder
                        .set_max_frame(self.config.max_frame + crate::auth::MAC_LEN);
                    self.handle_hello(now, incarnation);
                    Ok(())
                } else {
                    Err(self.auth_failed(now, "the server did not prove the key"))
                }
            }
            (ServerMessage::Refused, _, _) => {
                Err(self.auth_failed(now, "the server refused the key (wrong key?)"))
            }
            _ => {
                self.handle_disconnected(now);
                Err(RpcError::Protocol("greeting messages out of order".into()))
            }
        }
    }

    /// The greeting did not authenticate: the connection is given up and
    /// every call fails now (retrying with the same key cannot help).
    fn auth_failed(&mut self, now: Instant, why: &str) -> RpcError {
        self.stats.auth_failed += 1;
        self.fail_all(now, RpcError::Unauthenticated(why.to_string()))
    }

    /// The connection is given up and every call fails now with `err`
    /// ([`RpcError::Closed`] if a copy was sent on an earlier connection):
    /// another attempt would meet the same server the same way.
    fn fail_all(&mut self, now: Instant, err: RpcError) -> RpcError {
        log::debug!("rpc client: {err}");
        self.handle_disconnected(now);
        for (id, call) in std::mem::take(&mut self.calls) {
            let err = if call.sent_to.is_some() {
                RpcError::Closed
            } else {
                err.clone()
            };
            self.events.push_back(ClientEvent::Completed {
                call: CallId(id),
                result: Err(err),
            });
        }
        err
    }

    /// The server's greeting arrived (message level): queued calls go out.
    pub fn handle_hello(&mut self, now: Instant, incarnation: u64) {
        if self.last_server.is_some_and(|last| last != incarnation) {
            log::info!("rpc client: the server restarted (incarnation {incarnation:#x})");
        }
        self.server = Some(incarnation);
        self.hello_deadline = None;
        self.connect_failures = 0;
        self.flush_queued(now);
    }

    /// Handles one decoded reply (message level, without framing).
    pub fn handle_response(&mut self, resp: Response) {
        if self.calls.remove(&resp.request_id).is_some() {
            let result = resp.result.map_err(|e| match e {
                RemoteError::Restarted => RpcError::Restarted,
                e => RpcError::Remote(e),
            });
            self.events.push_back(ClientEvent::Completed {
                call: CallId(resp.request_id),
                result,
            });
        } else {
            log::trace!(
                "rpc client: reply for unknown request {} ignored",
                resp.request_id
            );
        }
    }

    /// Appends the bytes to send to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.transmit);
    }

    /// True when bytes are waiting to be sent.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// The next finished call.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout)
    /// has work (a deadline, a retry, or a reconnection).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        let mut queued = false;
        for call in self.calls.values() {
            consider(call.deadline);
            match call.phase {
                Phase::Sent { retry_at } => consider(retry_at),
                Phase::Backoff { until } => consider(until),
                Phase::Queued => queued = true,
                Phase::LastChance => {}
            }
        }
        if queued && !self.connected {
            if let Some(t) = self.reconnect_at {
                consider(t);
            }
        }
        if let Some(t) = self.hello_deadline {
            consider(t);
        }
        earliest
    }

    /// Fails calls past their deadline with [`RpcError::Timeout`], resends
    /// calls whose attempt timed out (same request id), and moves calls out
    /// of backoff.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.connected && self.hello_deadline.is_some_and(|t| t <= now) {
            // Connected, but the server never greeted: nothing was sent on
            // this connection, so it counts as a failed connection attempt.
            log::debug!("rpc client: no greeting from the server; closing");
            self.connected = false;
            self.hello_deadline = None;
            self.transmit.clear();
            self.reset_connection();
            self.handle_connect_failed(now, "the server did not greet");
        }
        let max = self.config.max_attempts;
        let mut expired = Vec::new();
        for (id, call) in &mut self.calls {
            if call.deadline <= now {
                expired.push(*id);
                continue;
            }
            match call.phase {
                Phase::Sent { retry_at } if retry_at <= now => {
                    call.phase = if call.attempts < max {
                        Phase::Backoff {
                            until: now + backoff(&self.config, call.attempts),
                        }
                    } else {
                        Phase::LastChance
                    };
                }
                _ => {}
            }
            if let Phase::Backoff { until } = call.phase {
                if until <= now {
                    call.phase = Phase::Queued;
                }
            }
        }
        for id in expired {
            let Some(call) = self.calls.remove(&id) else {
                continue;
            };
            let err = if call.sent_to.is_some() {
                RpcError::Timeout
            } else {
                RpcError::Unreachable("not sent before the deadline".into())
            };
            self.events.push_back(ClientEvent::Completed {
                call: CallId(id),
                result: Err(err),
            });
        }
        self.flush_queued(now);
    }

    fn backoff(&self, attempt: u32) -> Duration {
        backoff(&self.config, attempt)
    }

    /// Writes every queued call into the transmit buffer, if connected and
    /// greeted.
    fn flush_queued(&mut self, now: Instant) {
        let Some(incarnation) = self.server.filter(|_| self.connected) else {
            return;
        };
        let mut failed = Vec::new();
        for (&id, call) in &mut self.calls {
            if call.phase != Phase::Queued {
                continue;
            }
            if call.sent_to.is_some_and(|first| first != incarnation) {
                // The incarnation that got the first copy may have run it.
                failed.push((id, RpcError::Restarted));
                continue;
            }
            let remaining = call.deadline.saturating_duration_since(now);
            let req = Request {
                client_id: self.client_id,
                request_id: id,
                method: call.method,
                args: call.args.clone(),
                deadline_ms: Some(u32::try_from(remaining.as_millis()).unwrap_or(u32::MAX)),
                incarnation,
            };
            let start = self.transmit.len();
            if let Err(e) = encode_message(&mut self.transmit, &req, self.config.max_frame) {
                failed.push((id, e));
                continue;
            }
            if let Some(session) = self.session.as_mut() {
                if let Err(e) = session.send.seal(&mut self.transmit, start) {
                    failed.push((id, e.into()));
                    continue;
                }
            }
            call.attempts += 1;
            call.sent_to = Some(incarnation);
            call.phase = Phase::Sent {
                retry_at: (now + self.config.attempt_timeout).min(call.deadline),
            };
        }
        for (id, e) in failed {
            self.calls.remove(&id);
            self.events.push_back(ClientEvent::Completed {
                call: CallId(id),
                result: Err(e),
            });
        }
    }
}

/// `backoff * 2^(attempt-1)`, capped.
fn backoff(config: &ClientConfig, attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(16);
    config
        .backoff
        .saturating_mul(1 << shift)
        .min(config.max_backoff)
}
