//! RPC and two-phase commit over ustack TCP in the simulation.
//!
//! The `rpc` crate's cores are sans-IO: bytes in, bytes out, time passed in.
//! This module drives them over the TCP sockets of a simulated host:
//!
//! - [`RpcClient`]: a [`ClientCore`] over one TCP connection to a server,
//!   connecting when the core asks (or eagerly), reporting handshakes,
//!   failures and losses to the core, which retries with the same request id.
//! - [`RpcServer`]: a [`ServerCore`] over every connection accepted on a port
//!   (one at-most-once table for all of them).
//! - [`RpcServerApp`], [`CounterClientApp`] and [`RequestReplayer`]: a
//!   server, a client with a workload, and a replayer of old requests, over
//!   the [`Counter`] service, whose `increment` returns the new value, so a
//!   call executed twice shows up as a value skipped by its client.
//! - [`TwoPcNode`]: a 2PC coordinator or participant whose protocol
//!   messages travel as `TwoPcPeer::deliver` calls, and which can crash at
//!   any step of its driver (see [`TwoPcNode`] for what a crash does).
//!
//! None of this panics on what the network delivers: malformed input closes
//! the connection, and invariant violations a node detects are recorded in
//! its [`NodeHistory`] for the test to assert on.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use rpc::frame::FrameDecoder;
use rpc::message::{decode_message, encode_message};
use rpc::{
    CallContext, CallId, ClientConfig, ClientCore, ClientEvent, ConnId, Dispatch, ReplyDecoder,
    Request, Response, RpcError, ServerConfig, ServerCore, ServerMessage,
};
use stack::{Interface, ListenerHandle, SocketError, TcpHandle};
use tcp::State;

use super::host::{App, HostCtx};

mod twopc;

pub use twopc::{
    CrashMode, CrashPlan, Mailbox, NodeHistory, TwoPcNode, TwoPcNodeSpec, TwoPcRole, Work,
    sim_nonce, tx_id,
};

/// Size of the scratch buffer sockets are read into.
const READ_CHUNK: usize = 16 * 1024;

/// Wake-ups are never asked for earlier than this after `now`, so that a
/// deadline a core cannot act on yet (a reconnection while a handshake is
/// under way) does not spin the simulation at one instant.
const MIN_WAKE: Duration = Duration::from_millis(1);

fn wake_no_earlier(now: Instant, t: Instant) -> Instant {
    t.max(now + MIN_WAKE)
}

fn earliest(times: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    times.into_iter().flatten().min()
}

/// A seeded generator for test schedules.
fn seeded_rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// Decodes the request frames of a chunk the client core produced (it only
/// ever produces whole frames).
fn decode_requests(chunk: &[u8], out: &mut Vec<Request>) {
    let mut decoder = FrameDecoder::new(rpc::frame::DEFAULT_MAX_FRAME);
    let mut input = chunk;
    while let Ok(Some(frame)) = decoder.decode(&mut input) {
        if let Ok(req) = decode_message::<Request>(&frame) {
            out.push(req);
        }
    }
}

// ---- client ------------------------------------------------------------

/// How an [`RpcClient`] manages its connection (the call semantics are the
/// core's [`ClientConfig`]).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Keep a connection open even with no call outstanding, and reopen it
    /// as soon as it is lost (after `retry`), instead of waiting for a call.
    pub eager: bool,
    /// Abort a handshake that has not completed in this time (a silent
    /// server would otherwise hold a connection attempt for minutes).
    pub connect_timeout: Duration,
    /// First wait before an eager reconnection; doubles with each failure.
    pub retry: Duration,
    /// Longest wait between eager reconnections.
    pub max_retry: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            eager: false,
            connect_timeout: Duration::from_secs(1),
            retry: Duration::from_millis(50),
            max_retry: Duration::from_secs(1),
        }
    }
}

/// What happened to an [`RpcClient`]'s connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RpcClientStats {
    /// `tcp_connect` calls.
    pub connect_attempts: u64,
    /// Handshakes completed.
    pub connects: u64,
    /// Connection attempts refused, reset or timed out.
    pub connect_failures: u64,
    /// Established connections lost (end of stream, reset, error).
    pub disconnects: u64,
    /// Connections aborted on purpose ([`RpcClient::abort`]).
    pub aborts: u64,
    /// Connections closed because the server sent garbage.
    pub protocol_errors: u64,
    /// Request frames written to connections (retries included).
    pub requests_sent: u64,
}

#[derive(Debug)]
struct ClientConn {
    handle: TcpHandle,
    established: bool,
    started: Instant,
    /// Bytes the core produced that the socket has not taken yet.
    out: Vec<u8>,
}

/// A [`ClientCore`] driven over ustack TCP: one connection at a time to one
/// server, following the core's driver contract. Call [`pump`](Self::pump)
/// whenever the host's application runs, and wake it at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct RpcClient {
    /// The sans-IO core (calls, retries, deadlines).
    pub core: ClientCore,
    server: SocketAddrV4,
    options: ConnectOptions,
    conn: Option<ClientConn>,
    next_eager: Option<Instant>,
    first_delay: Option<Duration>,
    eager_failures: u32,
    events: VecDeque<ClientEvent>,
    /// Counters.
    pub stats: RpcClientStats,
    /// When set, every request frame written (retries included), in order.
    pub recorded: Option<Vec<Request>>,
    buf: Vec<u8>,
}

impl RpcClient {
    /// A client of `server` with id `client_id` (unique per client
    /// incarnation). Nothing happens until the first [`pump`](Self::pump).
    pub fn new(
        client_id: u64,
        server: SocketAddrV4,
        config: ClientConfig,
        options: ConnectOptions,
    ) -> Self {
        RpcClient {
            core: ClientCore::new(client_id, config),
            server,
            options,
            conn: None,
            next_eager: None,
            first_delay: None,
            eager_failures: 0,
            events: VecDeque::new(),
            stats: RpcClientStats::default(),
            recorded: None,
            buf: vec![0; READ_CHUNK],
        }
    }

    /// The server this client calls.
    pub fn server(&self) -> SocketAddrV4 {
        self.server
    }

    /// True while a connection is established.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.established)
    }

    /// Starts a call (see [`ClientCore::start_call`]); pump to send it.
    pub fn start_call(
        &mut self,
        now: Instant,
        method: u32,
        args: Vec<u8>,
        timeout: Option<Duration>,
    ) -> CallId {
        self.core.start_call(now, method, args, timeout)
    }

    /// Makes the first eager connection wait `delay` after the first
    /// [`pump`](Self::pump).
    pub fn delay_first_connection(&mut self, delay: Duration) {
        self.first_delay = Some(delay);
    }

    /// The next finished call.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Does everything due: handshake outcome, replies, the core's timers,
    /// (re)connection, and writing what the core has to send.
    pub fn pump(&mut self, cx: &mut HostCtx<'_>) {
        self.check_handshake(cx);
        self.read(cx);
        let now = cx.now;
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
            if self.is_connected() && !self.core.is_connected() {
                // The server never greeted; the core gave the connection up.
                if let Some(c) = self.conn.take() {
                    cx.iface.tcp_abort(now, c.handle);
                    cx.iface.tcp_close(now, c.handle);
                }
                self.stats.disconnects += 1;
                self.schedule_eager(now);
            }
        }
        self.maybe_connect(cx);
        self.write(cx);
        while let Some(ev) = self.core.poll_event() {
            self.events.push_back(ev);
        }
    }

    /// When [`pump`](Self::pump) next has work (never before `now` + 1 ms).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let handshake = self
            .conn
            .as_ref()
            .filter(|c| !c.established)
            .map(|c| c.started + self.options.connect_timeout);
        let eager = if self.conn.is_none() && self.options.eager {
            Some(self.next_eager.unwrap_or(now))
        } else {
            None
        };
        earliest([self.core.poll_timeout(), handshake, eager]).map(|t| wake_no_earlier(now, t))
    }

    /// Resets the connection (a test's chaos): the core retries its calls on
    /// a new one.
    pub fn abort(&mut self, cx: &mut HostCtx<'_>) {
        if let Some(c) = self.conn.take() {
            cx.iface.tcp_abort(cx.now, c.handle);
            cx.iface.tcp_close(cx.now, c.handle);
            self.stats.aborts += 1;
            if c.established {
                self.core.handle_disconnected(cx.now);
            } else {
                self.core.handle_connect_failed(cx.now, "aborted");
            }
            self.schedule_eager(cx.now);
        }
    }

    /// The process holding this client exits: the stack closes the socket.
    pub fn shutdown(&mut self, cx: &mut HostCtx<'_>) {
        if let Some(c) = self.conn.take() {
            cx.iface.tcp_close(cx.now, c.handle);
        }
    }

    fn schedule_eager(&mut self, now: Instant) {
        let shift = self.eager_failures.min(16);
        let wait = self
            .options
            .retry
            .saturating_mul(1 << shift)
            .min(self.options.max_retry);
        self.eager_failures = self.eager_failures.saturating_add(1);
        self.next_eager = Some(now + wait);
    }

    fn connect_failed(&mut self, cx: &mut HostCtx<'_>, why: &str) {
        if let Some(c) = self.conn.take() {
            cx.iface.tcp_close(cx.now, c.handle);
        }
        self.stats.connect_failures += 1;
        self.core.handle_connect_failed(cx.now, why);
        self.schedule_eager(cx.now);
    }

    fn disconnected(&mut self, cx: &mut HostCtx<'_>) {
        if let Some(c) = self.conn.take() {
            cx.iface.tcp_close(cx.now, c.handle);
        }
        self.stats.disconnects += 1;
        self.core.handle_disconnected(cx.now);
        self.schedule_eager(cx.now);
    }

    fn check_handshake(&mut self, cx: &mut HostCtx<'_>) {
        let Some(c) = &mut self.conn else { return };
        if c.established {
            return;
        }
        let now = cx.now;
        let status = cx
            .iface
            .tcp(c.handle)
            .map(|t| (t.is_established(), t.error(), t.state()));
        match status {
            Some((true, None, _)) => {
                c.established = true;
                c.out.clear();
                self.stats.connects += 1;
                self.eager_failures = 0;
                self.next_eager = None;
                self.core.handle_connected(now);
            }
            Some((_, Some(e), _)) => self.connect_failed(cx, &format!("{e:?}")),
            None | Some((_, None, State::Closed)) => self.connect_failed(cx, "closed"),
            Some(_) if now >= c.started + self.options.connect_timeout => {
                cx.iface.tcp_abort(now, c.handle);
                self.connect_failed(cx, "connect timeout");
            }
            Some(_) => {}
        }
    }

    fn read(&mut self, cx: &mut HostCtx<'_>) {
        let now = cx.now;
        loop {
            let Some(c) = self.conn.as_ref().filter(|c| c.established) else {
                return;
            };
            match cx.iface.tcp_recv(c.handle, &mut self.buf) {
                Ok(0) => return self.disconnected(cx),
                Ok(n) => {
                    if self.core.handle_bytes(now, &self.buf[..n]).is_err() {
                        // The core is already disconnected; drop the connection.
                        self.stats.protocol_errors += 1;
                        if let Some(c) = self.conn.take() {
                            cx.iface.tcp_abort(now, c.handle);
                            cx.iface.tcp_close(now, c.handle);
                        }
                        self.schedule_eager(now);
                        return;
                    }
                }
                Err(SocketError::WouldBlock) => return,
                Err(_) => return self.disconnected(cx),
            }
        }
    }

    fn maybe_connect(&mut self, cx: &mut HostCtx<'_>) {
        let now = cx.now;
        if self.conn.is_some() {
            return;
        }
        if let Some(delay) = self.first_delay.take() {
            self.next_eager = Some(now + delay);
        }
        let eager_due = self.options.eager && self.next_eager.is_none_or(|t| t <= now);
        if !(self.core.wants_connection(now) || eager_due) {
            return;
        }
        self.stats.connect_attempts += 1;
        match cx.iface.tcp_connect(now, self.server, None) {
            Ok(handle) => {
                cx.iface.tcp_with(handle, |t| t.set_nodelay(true));
                self.conn = Some(ClientConn {
                    handle,
                    established: false,
                    started: now,
                    out: Vec::new(),
                });
            }
            Err(e) => {
                self.stats.connect_failures += 1;
                self.core.handle_connect_failed(now, &format!("{e:?}"));
                self.schedule_eager(now);
            }
        }
    }

    fn write(&mut self, cx: &mut HostCtx<'_>) {
        let Some(c) = self.conn.as_mut().filter(|c| c.established) else {
            return;
        };
        if self.core.has_transmit() {
            let start = c.out.len();
            self.core.poll_transmit(&mut c.out);
            let mut reqs = Vec::new();
            decode_requests(&c.out[start..], &mut reqs);
            self.stats.requests_sent += reqs.len() as u64;
            if let Some(rec) = &mut self.recorded {
                rec.extend(reqs);
            }
        }
        while !c.out.is_empty() {
            match cx.iface.tcp_send(c.handle, &c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(SocketError::WouldBlock) => return,
                Err(_) => return self.disconnected(cx),
            }
        }
    }
}

// ---- server ------------------------------------------------------------

/// What happened to an [`RpcServer`]'s connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RpcServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended (end of stream or error).
    pub closed: u64,
    /// Connections closed because the client sent garbage.
    pub protocol_errors: u64,
    /// Connections reset on purpose ([`RpcServer::reset_all`]).
    pub resets: u64,
    /// Crash-restarts ([`RpcServer::restart`]).
    pub restarts: u64,
}

#[derive(Debug)]
struct ServerConn {
    handle: TcpHandle,
    out: Vec<u8>,
}

/// A [`ServerCore`] serving every connection accepted on one port.
#[derive(Debug)]
pub struct RpcServer<D> {
    /// The sans-IO core (dispatch, at-most-once table).
    pub core: ServerCore<D>,
    listener: Option<ListenerHandle>,
    conns: BTreeMap<ConnId, ServerConn>,
    next_conn: ConnId,
    /// Counters.
    pub stats: RpcServerStats,
    buf: Vec<u8>,
}

impl<D: Dispatch> RpcServer<D> {
    /// Listens on `port` of `iface`.
    pub fn listen(
        iface: &mut Interface,
        port: u16,
        dispatch: D,
        config: ServerConfig,
    ) -> Result<Self, SocketError> {
        let listener = iface.tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), 64)?;
        Ok(RpcServer {
            core: ServerCore::new(dispatch, config),
            listener: Some(listener),
            conns: BTreeMap::new(),
            next_conn: 1,
            stats: RpcServerStats::default(),
            buf: vec![0; READ_CHUNK],
        })
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Accepts, reads and executes requests, writes replies, expires the
    /// reply cache.
    pub fn pump(&mut self, cx: &mut HostCtx<'_>) {
        let now = cx.now;
        if let Some(l) = self.listener {
            while let Ok(handle) = cx.iface.tcp_accept(l) {
                cx.iface.tcp_with(handle, |t| t.set_nodelay(true));
                self.stats.accepted += 1;
                let id = self.next_conn;
                self.next_conn += 1;
                if !self.core.handle_accepted_at(now, id) {
                    // Over the core's connection cap.
                    cx.iface.tcp_close(now, handle);
                    self.stats.closed += 1;
                    continue;
                }
                self.conns.insert(
                    id,
                    ServerConn {
                        handle,
                        out: Vec::new(),
                    },
                );
            }
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            if !self.serve(cx, id) {
                if let Some(c) = self.conns.remove(&id) {
                    cx.iface.tcp_close(now, c.handle);
                }
                self.core.handle_closed(id);
                self.stats.closed += 1;
            }
        }
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        // Connections the core gave up (stalled or idle).
        while let Some(id) = self.core.poll_close() {
            if let Some(c) = self.conns.remove(&id) {
                cx.iface.tcp_close(now, c.handle);
                self.stats.closed += 1;
            }
        }
    }

    /// Reads and answers on one connection; false when it must be closed.
    fn serve(&mut self, cx: &mut HostCtx<'_>, id: ConnId) -> bool {
        let now = cx.now;
        let Some(handle) = self.conns.get(&id).map(|c| c.handle) else {
            return false;
        };
        loop {
            match cx.iface.tcp_recv(handle, &mut self.buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if self.core.handle_bytes(now, id, &self.buf[..n]).is_err() {
                        self.stats.protocol_errors += 1;
                        cx.iface.tcp_abort(now, handle);
                        return false;
                    }
                }
                Err(SocketError::WouldBlock) => break,
                Err(_) => return false,
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        self.core.poll_transmit(id, &mut c.out);
        while !c.out.is_empty() {
            match cx.iface.tcp_send(handle, &c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(SocketError::WouldBlock) => break,
                Err(_) => return false,
            }
        }
        true
    }

    /// When [`pump`](Self::pump) next has work of its own (reply expiry,
    /// connection deadlines).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.core.poll_timeout().map(|t| wake_no_earlier(now, t))
    }

    /// Resets every connection (a test's chaos): clients retry elsewhere.
    pub fn reset_all(&mut self, cx: &mut HostCtx<'_>) {
        for (id, c) in std::mem::take(&mut self.conns) {
            cx.iface.tcp_abort(cx.now, c.handle);
            cx.iface.tcp_close(cx.now, c.handle);
            self.core.handle_closed(id);
            self.stats.resets += 1;
        }
    }

    /// The server process crashes and starts again at once as run
    /// `incarnation`: every connection is reset, and the at-most-once table
    /// is lost; the service's state survives (as if it were on disk), so a
    /// request executed again would show.
    pub fn restart(&mut self, cx: &mut HostCtx<'_>, incarnation: u64) {
        for (_, c) in std::mem::take(&mut self.conns) {
            cx.iface.tcp_abort(cx.now, c.handle);
            cx.iface.tcp_close(cx.now, c.handle);
        }
        self.stats.restarts += 1;
        self.core.restart(incarnation);
    }

    /// The process exits: the stack closes the listener (refusing new
    /// connections) and every connection (FIN, or RST if unread data).
    pub fn shutdown(&mut self, cx: &mut HostCtx<'_>) {
        if let Some(l) = self.listener.take() {
            cx.iface.tcp_close_listener(cx.now, l);
        }
        for (id, c) in std::mem::take(&mut self.conns) {
            cx.iface.tcp_close(cx.now, c.handle);
            self.core.handle_closed(id);
        }
    }
}

/// An RPC server as a simulation application, with optional resets of
/// every connection at chosen times.
pub struct RpcServerApp<D> {
    /// The server.
    pub server: RpcServer<D>,
    /// When to reset every connection, earliest first.
    pub resets: VecDeque<Instant>,
    /// When to crash and restart, with the new run's incarnation, earliest
    /// first (see [`RpcServer::restart`]).
    pub restarts: VecDeque<(Instant, u64)>,
}

impl<D: Dispatch> RpcServerApp<D> {
    /// Serves `dispatch` on `port` of `iface`.
    pub fn listen(
        iface: &mut Interface,
        port: u16,
        dispatch: D,
        config: ServerConfig,
    ) -> Result<Self, SocketError> {
        Ok(RpcServerApp {
            server: RpcServer::listen(iface, port, dispatch, config)?,
            resets: VecDeque::new(),
            restarts: VecDeque::new(),
        })
    }
}

impl<D: Dispatch + 'static> App for RpcServerApp<D> {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        if self.resets.front().is_some_and(|&t| t <= cx.now) {
            while self.resets.front().is_some_and(|&t| t <= cx.now) {
                self.resets.pop_front();
            }
            self.server.reset_all(cx);
        }
        while let Some(&(at, incarnation)) = self.restarts.front()
            && at <= cx.now
        {
            self.restarts.pop_front();
            self.server.restart(cx, incarnation);
        }
        self.server.pump(cx);
        let now = cx.now;
        let next = [
            self.server.poll_timeout(now),
            self.resets.front().copied(),
            self.restarts.front().map(|&(t, _)| t),
        ];
        if let Some(t) = earliest(next) {
            cx.wake_at(t);
        }
    }
}

// ---- the counter service -------------------------------------------------

rpc::service! {
    /// Named counters. `increment` is deliberately not idempotent: a call
    /// executed twice shows up as a value its caller never sees.
    pub trait Counter {
        server CounterServer;
        client CounterClient;
        calls CounterCall;

        /// Adds one to `key`'s counter and returns the new value.
        fn increment(key: String) -> u64;
        /// The counter's value.
        fn get(key: String) -> u64;
    }
}

/// One execution of `increment`, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Calling client.
    pub client_id: u64,
    /// Its request id.
    pub request_id: u64,
    /// Counter incremented.
    pub key: String,
    /// Value returned.
    pub value: u64,
}

/// The counters, with a log of every execution.
#[derive(Debug, Default)]
pub struct Counters {
    /// Current values.
    pub values: BTreeMap<String, u64>,
    /// Every `increment` executed, in order.
    pub executions: Vec<Execution>,
}

impl Counter for Counters {
    fn increment(&mut self, ctx: &CallContext, key: String) -> u64 {
        let value = self.values.entry(key.clone()).or_insert(0);
        *value += 1;
        let value = *value;
        self.executions.push(Execution {
            client_id: ctx.client_id,
            request_id: ctx.request_id,
            key,
            value,
        });
        value
    }

    fn get(&mut self, _ctx: &CallContext, key: String) -> u64 {
        self.values.get(&key).copied().unwrap_or(0)
    }
}

/// The counter server application.
pub type CounterServerApp = RpcServerApp<CounterServer<Counters>>;

/// A client that makes `total` `increment` calls on one key, at most
/// `window` outstanding, and optionally resets its own connection at
/// random times (mean `chaos_interval`) so calls are retried on new
/// connections.
pub struct CounterClientApp {
    /// The RPC client (records every request it writes).
    pub rpc: RpcClient,
    key: String,
    total: u64,
    window: usize,
    issued: u64,
    pending: BTreeMap<CallId, (u64, ReplyDecoder<u64>)>,
    /// Call number (0-based, in issue order) to its request id.
    pub call_ids: BTreeMap<u64, CallId>,
    /// Call number to its outcome: the counter value it saw, or the error.
    pub results: BTreeMap<u64, Result<u64, RpcError>>,
    chaos: Option<(SmallRng, Duration, Instant)>,
}

impl CounterClientApp {
    /// A client calling `server` with id `client_id`.
    pub fn new(
        client_id: u64,
        server: SocketAddrV4,
        config: ClientConfig,
        key: &str,
        total: u64,
        window: usize,
    ) -> Self {
        let mut rpc = RpcClient::new(client_id, server, config, ConnectOptions::default());
        rpc.recorded = Some(Vec::new());
        CounterClientApp {
            rpc,
            key: key.to_string(),
            total,
            window: window.max(1),
            issued: 0,
            pending: BTreeMap::new(),
            call_ids: BTreeMap::new(),
            results: BTreeMap::new(),
            chaos: None,
        }
    }

    /// Resets the connection at random times, `mean` apart on average, from
    /// `start` on (the randomness comes from `seed`).
    pub fn with_chaos(mut self, seed: u64, mean: Duration, start: Instant) -> Self {
        self.chaos = Some((seeded_rng(seed), mean, start + mean));
        self
    }

    /// The counter it increments.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Every call finished (successfully or not).
    pub fn done(&self) -> bool {
        self.results.len() as u64 == self.total
    }
}

impl App for CounterClientApp {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        let now = cx.now;
        let done = self.done();
        if let Some((state, mean, next)) = &mut self.chaos
            && *next <= now
        {
            // Uniform in [mean/2, 3*mean/2).
            let jitter = state.random_range(0..mean.as_micros().max(1) as u64);
            *next = now + *mean / 2 + Duration::from_micros(jitter);
            if !done {
                self.rpc.abort(cx);
            }
        }
        while self.issued < self.total && self.pending.len() < self.window {
            let seq = self.issued;
            self.issued += 1;
            match CounterCall::increment(self.key.clone()) {
                Ok(call) => {
                    let (method, args, decoder) = call.into_parts();
                    let id = self.rpc.start_call(now, method, args, None);
                    self.pending.insert(id, (seq, decoder));
                    self.call_ids.insert(seq, id);
                }
                Err(e) => {
                    self.results.insert(seq, Err(e));
                }
            }
        }
        self.rpc.pump(cx);
        while let Some(ClientEvent::Completed { call, result }) = self.rpc.poll_event() {
            let Some((seq, decoder)) = self.pending.remove(&call) else {
                continue;
            };
            let value = result.and_then(|bytes| decoder.decode(&bytes));
            self.results.insert(seq, value);
        }
        let chaos = self
            .chaos
            .as_ref()
            .filter(|_| !self.done())
            .map(|&(_, _, t)| t);
        if let Some(t) = earliest([self.rpc.poll_timeout(now), chaos]) {
            cx.wake_at(t);
        }
    }
}

/// Replays recorded requests on a fresh connection, each `copies` times,
/// and collects the replies (delayed duplicates, as from an old connection
/// or a confused middlebox).
pub struct RequestReplayer {
    handle: TcpHandle,
    out: Vec<u8>,
    decoder: FrameDecoder,
    /// Every copy was written to the connection.
    pub sent_all: bool,
    /// Replies received, in order.
    pub responses: Vec<Response>,
    /// The incarnation in the server's greeting.
    pub greeted_by: Option<u64>,
    /// The connection failed.
    pub error: Option<SocketError>,
    buf: Vec<u8>,
}

impl RequestReplayer {
    /// Connects to `server` and will send `requests`, each `copies` times
    /// (all first copies, then all second copies, ...).
    pub fn connect(
        iface: &mut Interface,
        now: Instant,
        server: SocketAddrV4,
        requests: &[Request],
        copies: usize,
    ) -> Result<Self, SocketError> {
        let handle = iface.tcp_connect(now, server, None)?;
        let mut out = Vec::new();
        for _ in 0..copies {
            for req in requests {
                encode_message(&mut out, req, rpc::frame::DEFAULT_MAX_FRAME)
                    .map_err(|_| SocketError::InvalidInput)?;
            }
        }
        Ok(RequestReplayer {
            handle,
            out,
            decoder: FrameDecoder::new(rpc::frame::DEFAULT_MAX_FRAME),
            sent_all: false,
            responses: Vec::new(),
            greeted_by: None,
            error: None,
            buf: vec![0; READ_CHUNK],
        })
    }
}

impl App for RequestReplayer {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        if self.error.is_some() {
            return;
        }
        let Some(conn) = cx.iface.tcp(self.handle) else {
            self.error = Some(SocketError::BadHandle);
            return;
        };
        if let Some(e) = conn.error() {
            self.error = Some(e.into());
            return;
        }
        if !conn.is_established() {
            return;
        }
        while !self.out.is_empty() {
            match cx.iface.tcp_send(self.handle, &self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        self.sent_all = self.out.is_empty();
        loop {
            match cx.iface.tcp_recv(self.handle, &mut self.buf) {
                Ok(0) => return,
                Ok(n) => {
                    let mut input = &self.buf[..n];
                    while let Ok(Some(frame)) = self.decoder.decode(&mut input) {
                        match decode_message::<ServerMessage>(&frame) {
                            Ok(ServerMessage::Response(resp)) => self.responses.push(resp),
                            Ok(ServerMessage::Hello { incarnation }) => {
                                self.greeted_by = Some(incarnation);
                            }
                            // Authentication messages: this raw client has no key.
                            Ok(_) | Err(_) => {}
                        }
                    }
                }
                Err(SocketError::WouldBlock) => return,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
    }
}
