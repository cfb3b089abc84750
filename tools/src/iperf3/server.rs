//! `ustack serve --iperf3 PORT`: an iperf3 server on the stack's socket
//! API, so that Linux's `iperf3 -c` measures ustack.
//!
//! Like iperf3's own server it runs one test at a time. An acceptor
//! thread takes every connection to the port and collects its cookie on a
//! poller, never blocking on one (at most [`MAX_PENDING`] at a time, each
//! within [`COOKIE_DEADLINE`]): with no test running, the connection becomes the
//! control connection of a new test (its own thread); a connection
//! carrying the running test's cookie while the test is creating its
//! streams becomes a data stream; anything else gets `ACCESS_DENIED` and
//! is closed (counted as refused). A test holds at most
//! [`MAX_STREAMS`](super::MAX_STREAMS) streams per direction (one thread
//! each; UDP: one receiving thread), and deadlines end a test whose
//! client vanished: [`CONTROL_DEADLINE`] for each control step,
//! [`STREAMS_DEADLINE`] to open the streams, the test's own duration plus
//! [`END_GRACE`] for `TEST_END` (a test that ends on a byte count: no
//! data and no control message for [`IDLE_DEADLINE`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::{Interest, PollEvent, Poller, Stack, TcpListener, TcpStream, UdpSocket};

use super::streams::{self, Settings, Shared};
use super::{
    COOKIE_SIZE, Protocol, Results, StreamResult, TestParams, UDP_CONNECT_REPLY, cpu_times,
    cpu_util, errors, human_bytes, human_rate, json_length, state, stream_id,
};

/// A new connection must send its cookie within this time.
pub const COOKIE_DEADLINE: Duration = Duration::from_secs(3);
/// Connections waiting for their cookie at a time; more are refused.
pub const MAX_PENDING: usize = 64;
/// The listener's poller token (connections count up from 0).
const LISTENER: u64 = u64::MAX;
/// Each control step (parameters, results, the final `IPERF_DONE`) must
/// come within this time.
pub const CONTROL_DEADLINE: Duration = Duration::from_secs(10);
/// All data streams must be open within this time of `CREATE_STREAMS`.
pub const STREAMS_DEADLINE: Duration = Duration::from_secs(10);
/// `TEST_END` may come this long after the test's duration.
pub const END_GRACE: Duration = Duration::from_secs(30);
/// A test without a duration ends after this long without data or a
/// control message.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(60);

/// Totals over the tests, for the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tests that ran to the exchange of results.
    pub tests: u64,
    /// Tests that ended early: bad parameters, a client that vanished or
    /// terminated, a deadline.
    pub failed: u64,
    /// Connections answered `ACCESS_DENIED` (a test was running, or a
    /// stream with the wrong cookie).
    pub refused: u64,
    /// Bytes moved by the data streams, both directions.
    pub bytes: u64,
    /// UDP datagrams dropped as malformed or from a stranger.
    pub malformed: u64,
}

/// A connection that has not sent its whole cookie yet.
struct Pending {
    conn: TcpStream,
    peer: SocketAddr,
    cookie: [u8; COOKIE_SIZE],
    got: usize,
    deadline: Instant,
}

/// The running test, as the acceptor sees it.
struct Active {
    cookie: [u8; COOKIE_SIZE],
    /// TCP data streams still wanted, and where they go.
    wanted: usize,
    streams: Option<SyncSender<TcpStream>>,
}

struct Inner {
    stack: Stack,
    port: u16,
    active: Mutex<Option<Active>>,
    totals: Mutex<Totals>,
    to_stderr: AtomicBool,
}

impl Inner {
    fn active(&self) -> MutexGuard<'_, Option<Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn totals(&self) -> MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running iperf3 server.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl Server {
    /// Listens on `port` (TCP; UDP tests bind the same UDP port while they
    /// run) and serves tests on threads of its own.
    pub fn start(stack: &Stack, port: u16) -> io::Result<Server> {
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let listener = TcpListener::bind_with_backlog(stack, any, 256)?;
        let inner = Arc::new(Inner {
            stack: stack.clone(),
            port,
            active: Mutex::new(None),
            totals: Mutex::new(Totals::default()),
            to_stderr: AtomicBool::new(false),
        });
        let server = Server { inner };
        let s = server.clone();
        thread::Builder::new()
            .name(format!("iperf3-{port}"))
            .spawn(move || s.accept_loop(listener))?;
        Ok(server)
    }

    /// One line per test goes to standard error instead of standard
    /// output (which `serve --pcap -` uses for the capture).
    pub fn messages_to_stderr(self, on: bool) -> Server {
        self.inner.to_stderr.store(on, Ordering::Relaxed);
        self
    }

    fn say(&self, line: &str) {
        if self.inner.to_stderr.load(Ordering::Relaxed) {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    pub fn totals(&self) -> Totals {
        *self.inner.totals()
    }

    /// Accepts connections and collects their cookies on one poller,
    /// without blocking on any of them: at most [`MAX_PENDING`] wait for
    /// their cookie at a time, each for [`COOKIE_DEADLINE`]; the excess
    /// and the late are refused.
    fn accept_loop(&self, listener: TcpListener) {
        let poller = match listener
            .set_nonblocking(true)
            .and_then(|()| Poller::new(&self.inner.stack))
            .and_then(|p| {
                p.register(listener.as_fd(), LISTENER, Interest::READABLE)?;
                Ok(p)
            }) {
            Ok(p) => p,
            Err(e) => {
                log::warn!("iperf3 on port {}: {e}", self.inner.port);
                return;
            }
        };
        let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
        let mut next_token = 0u64;
        let mut events = [PollEvent::default(); 64];
        let mut readable = Vec::with_capacity(events.len());
        loop {
            let now = Instant::now();
            let timeout = pending
                .values()
                .map(|p| p.deadline.saturating_duration_since(now))
                .min();
            let n = match poller.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("iperf3 on port {}: poll: {e}", self.inner.port);
                    return;
                }
            };
            readable.clear();
            for ev in &events[..n] {
                if ev.token == LISTENER {
                    if !self.accept_all(&listener, &poller, &mut pending, &mut next_token) {
                        return;
                    }
                } else {
                    readable.push(ev.token);
                }
            }
            // In accept order, so that data streams keep the order their
            // client opened them in (their ids follow it).
            readable.sort_unstable();
            for token in &readable {
                let Some(p) = pending.get_mut(token) else {
                    continue;
                };
                match (&p.conn).read(&mut p.cookie[p.got..]) {
                    Ok(0) => {
                        let p = self.forget(&poller, &mut pending, *token);
                        log::debug!("iperf3 {}: closed before its cookie", p.peer);
                    }
                    Ok(n) => {
                        p.got += n;
                        if p.got == COOKIE_SIZE {
                            let p = self.forget(&poller, &mut pending, *token);
                            let _ = p.conn.set_nonblocking(false);
                            self.admit(p.conn, p.peer, p.cookie);
                        }
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => {
                        let p = self.forget(&poller, &mut pending, *token);
                        log::debug!("iperf3 {}: {e}", p.peer);
                    }
                }
            }
            let now = Instant::now();
            let late: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(t, _)| *t)
                .collect();
            for token in late {
                let p = self.forget(&poller, &mut pending, token);
                log::debug!("iperf3 {}: no cookie in time", p.peer);
                self.refuse(p.conn);
            }
        }
    }

    /// Accepts every waiting connection; false when the listener is gone.
    fn accept_all(
        &self,
        listener: &TcpListener,
        poller: &Poller,
        pending: &mut BTreeMap<u64, Pending>,
        next_token: &mut u64,
    ) -> bool {
        loop {
            let (conn, peer) = match listener.accept() {
                Ok(c) => c,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    return true;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBADF) => return false,
                Err(e) => {
                    log::debug!("iperf3 on port {}: accept: {e}", self.inner.port);
                    return true;
                }
            };
            if pending.len() >= MAX_PENDING {
                self.refuse(conn);
                continue;
            }
            let token = *next_token;
            *next_token += 1;
            let registered = conn
                .set_nonblocking(true)
                .and_then(|()| poller.register(conn.as_fd(), token, Interest::READABLE));
            if let Err(e) = registered {
                log::debug!("iperf3 {peer}: {e}");
                continue;
            }
            pending.insert(
                token,
                Pending {
                    conn,
                    peer,
                    cookie: [0; COOKIE_SIZE],
                    got: 0,
                    deadline: Instant::now() + COOKIE_DEADLINE,
                },
            );
        }
    }

    fn forget(&self, poller: &Poller, pending: &mut BTreeMap<u64, Pending>, token: u64) -> Pending {
        let p = pending.remove(&token).expect("a pending connection");
        let _ = poller.deregister(p.conn.as_fd());
        p
    }

    /// Gives a connection that sent its cookie its role.
    fn admit(&self, conn: TcpStream, peer: SocketAddr, cookie: [u8; COOKIE_SIZE]) {
        let mut active = self.inner.active();
        match active.as_mut() {
            None => {
                let (tx, rx) = mpsc::sync_channel(super::MAX_STREAMS as usize * 2);
                *active = Some(Active {
                    cookie,
                    wanted: 0,
                    streams: Some(tx),
                });
                drop(active);
                let s = self.clone();
                let spawned = thread::Builder::new()
                    .name("iperf3-test".into())
                    .spawn(move || s.run_test(conn, peer, rx));
                if let Err(e) = spawned {
                    log::warn!("iperf3: cannot start a test thread: {e}");
                    *self.inner.active() = None;
                }
            }
            Some(a) if a.cookie == cookie && a.wanted > 0 => {
                if let Some(tx) = &a.streams
                    && tx.try_send(conn).is_ok()
                {
                    a.wanted -= 1;
                }
            }
            Some(_) => {
                drop(active);
                log::info!("iperf3 {peer}: refused (a test is running)");
                self.refuse(conn);
            }
        }
    }

    fn refuse(&self, conn: TcpStream) {
        self.inner.totals().refused += 1;
        let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = (&conn).write_all(&[state::ACCESS_DENIED as u8]);
    }

    fn run_test(&self, ctrl: TcpStream, peer: SocketAddr, rx: Receiver<TcpStream>) {
        let result = Test::run(&self.inner, &ctrl, peer, &rx);
        *self.inner.active() = None;
        let mut t = self.inner.totals();
        match result {
            Ok(outcome) => {
                t.tests += 1;
                t.bytes += outcome.bytes;
                t.malformed += outcome.malformed;
                self.say(&format!("ustack: {}", outcome.line));
            }
            Err(e) => {
                t.failed += 1;
                log::info!("iperf3 {peer}: test ended early: {e}");
                self.say(&format!("ustack: iperf3 test from {peer} ended early: {e}"));
            }
        }
    }
}

/// What a finished test reports.
struct Outcome {
    bytes: u64,
    malformed: u64,
    line: String,
}

fn send_state(ctrl: &TcpStream, s: i8) -> io::Result<()> {
    (&*ctrl).write_all(&[s as u8])
}

fn send_json(ctrl: &TcpStream, text: &str) -> io::Result<()> {
    let mut msg = Vec::with_capacity(4 + text.len());
    msg.extend_from_slice(&(text.len() as u32).to_be_bytes());
    msg.extend_from_slice(text.as_bytes());
    (&*ctrl).write_all(&msg)
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.into())
}

/// Reads one length-prefixed JSON message within `deadline`.
pub(super) fn read_json(ctrl: &TcpStream, deadline: Duration) -> io::Result<Vec<u8>> {
    ctrl.set_read_timeout(Some(deadline))?;
    let mut prefix = [0u8; 4];
    (&*ctrl).read_exact(&mut prefix)?;
    let n = json_length(prefix).map_err(invalid)?;
    let mut body = vec![0u8; n];
    (&*ctrl).read_exact(&mut body)?;
    Ok(body)
}

/// Sends `SERVER_ERROR` with an iperf3 error number (and errno 0).
fn send_error(ctrl: &TcpStream, code: i32) {
    let mut msg = vec![state::SERVER_ERROR as u8];
    msg.extend_from_slice(&code.to_be_bytes());
    msg.extend_from_slice(&0i32.to_be_bytes());
    let _ = (&*ctrl).write_all(&msg);
}

struct Test;

impl Test {
    fn run(
        inner: &Inner,
        ctrl: &TcpStream,
        peer: SocketAddr,
        rx: &Receiver<TcpStream>,
    ) -> io::Result<Outcome> {
        ctrl.set_nodelay(true)?;
        ctrl.set_write_timeout(Some(CONTROL_DEADLINE))?;
        send_state(ctrl, state::PARAM_EXCHANGE)?;
        let body = read_json(ctrl, CONTROL_DEADLINE)?;
        let params = match TestParams::from_json(&body) {
            Ok(p) => p,
            Err(e) => {
                send_error(ctrl, e.code);
                return Err(invalid(format!("bad parameters: {e}")));
            }
        };
        log::info!("iperf3 {peer}: test {params:?}");
        // The server's roles are the client's, reversed; the streams come
        // in the client's order.
        let roles: Vec<bool> = params.client_roles().iter().map(|c| !c).collect();
        let total = roles.len();
        let udp = match params.protocol {
            Protocol::Udp => {
                let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, inner.port);
                match UdpSocket::bind(&inner.stack, any) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        send_error(ctrl, errors::IESTREAMLISTEN);
                        return Err(io::Error::new(e.kind(), format!("UDP port: {e}")));
                    }
                }
            }
            Protocol::Tcp => {
                if let Some(a) = inner.active().as_mut() {
                    a.wanted = total;
                }
                None
            }
        };
        send_state(ctrl, state::CREATE_STREAMS)?;
        let deadline = Instant::now() + STREAMS_DEADLINE;
        let mut tcp_streams = Vec::new();
        let mut udp_peers: Vec<SocketAddr> = Vec::new();
        match &udp {
            None => {
                while tcp_streams.len() < total {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(s) => tcp_streams.push(s),
                        Err(_) => {
                            return Err(io::Error::new(
                                ErrorKind::TimedOut,
                                format!("{} of {total} streams opened", tcp_streams.len()),
                            ));
                        }
                    }
                }
                if let Some(a) = inner.active().as_mut() {
                    a.wanted = 0;
                    a.streams = None;
                }
            }
            Some(sock) => {
                let mut buf = [0u8; 64];
                while udp_peers.len() < total {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            ErrorKind::TimedOut,
                            format!("{} of {total} UDP streams opened", udp_peers.len()),
                        ));
                    }
                    sock.set_read_timeout(Some(left))?;
                    let (n, from) = match sock.recv_from(&mut buf) {
                        Ok(r) => r,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    // iperf3 does not check the content of the connect
                    // datagram; a stranger can only take a stream slot of
                    // a test it knows the port and timing of.
                    if n != 4 || from.ip() != peer.ip() {
                        continue;
                    }
                    if !udp_peers.contains(&from) {
                        udp_peers.push(from);
                    }
                    // iperf3 writes the reply in host order; x86 peers
                    // read it back as the same number.
                    sock.send_to(&UDP_CONNECT_REPLY.to_le_bytes(), from)?;
                }
            }
        }
        send_state(ctrl, state::TEST_START)?;
        send_state(ctrl, state::TEST_RUNNING)?;
        let start = Instant::now();
        let cpu_start = cpu_times();
        let shared = Shared::new(total, start);
        let settings = Settings {
            len: params.len,
            rate: params.rate(),
            counters_64bit: params.udp_counters_64bit,
            bytes: 0,
            blocks: 0,
        };
        let mut workers = Vec::new();
        let spawned = (|| -> io::Result<()> {
            match &udp {
                None => {
                    for (i, (s, sends)) in tcp_streams.into_iter().zip(&roles).enumerate() {
                        let w = if *sends {
                            streams::tcp_sender(s, i, shared.clone(), settings)?
                        } else {
                            streams::tcp_receiver(s, i, shared.clone(), settings)?
                        };
                        workers.push(w);
                    }
                }
                Some(sock) => {
                    let mut receiving = HashMap::new();
                    for (i, (p, sends)) in udp_peers.iter().zip(&roles).enumerate() {
                        if *sends {
                            workers.push(streams::udp_sender(
                                sock.try_clone()?,
                                Some(*p),
                                i,
                                shared.clone(),
                                settings,
                            )?);
                        } else {
                            receiving.insert(*p, i);
                        }
                    }
                    if !receiving.is_empty() {
                        workers.push(streams::udp_receiver(
                            sock.try_clone()?,
                            receiving,
                            None,
                            shared.clone(),
                            settings,
                        )?);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = spawned {
            streams::finish(&shared, workers);
            return Err(e);
        }
        // Wait for TEST_END (or the client's end).
        let end_by = (params.time > 0).then(|| {
            start + Duration::from_secs(u64::from(params.time) + u64::from(params.omit)) + END_GRACE
        });
        let waited = wait_for_end(ctrl, &shared, end_by);
        let wall = start.elapsed();
        let cpu_end = cpu_times();
        let reports = streams::finish(&shared, workers);
        waited?;
        drop(udp);

        let mut ours: Vec<StreamResult> = (0..total)
            .map(|i| {
                let mut r = reports.get(&i).cloned().unwrap_or_default();
                r.id = stream_id(i);
                r.start_time = 0.0;
                if r.end_time == 0.0 {
                    r.end_time = wall.as_secs_f64();
                }
                r
            })
            .collect();
        ours.sort_by_key(|r| r.id);
        let (total_cpu, user, sys) = cpu_util(cpu_start, cpu_end, wall);
        let sends = roles.iter().any(|s| *s);
        let sent: u64 = ours
            .iter()
            .zip(&roles)
            .filter(|(_, s)| **s)
            .map(|(r, _)| r.bytes)
            .sum();
        let received: u64 = ours
            .iter()
            .zip(&roles)
            .filter(|(_, s)| !**s)
            .map(|(r, _)| r.bytes)
            .sum();
        let secs = wall.as_secs_f64().max(1e-9);
        let mut line = format!(
            "iperf3 test from {peer}: {} {} stream{}{}, {:.2} s",
            params.protocol,
            params.parallel,
            if params.parallel == 1 { "" } else { "s" },
            if params.bidirectional {
                ", both ways"
            } else if params.reverse {
                ", reverse (ustack sends)"
            } else {
                ""
            },
            secs
        );
        if received > 0 || !sends {
            let _ = write!(
                line,
                "; received {} = {}",
                human_bytes(received),
                human_rate(received as f64 * 8.0 / secs)
            );
        }
        if sends {
            let _ = write!(
                line,
                "; sent {} = {}",
                human_bytes(sent),
                human_rate(sent as f64 * 8.0 / secs)
            );
        }
        if params.protocol == Protocol::Udp {
            let lost: u64 = ours.iter().map(|r| r.errors).sum();
            let packets: u64 = ours
                .iter()
                .zip(&roles)
                .filter(|(_, s)| !**s)
                .map(|r| r.0.packets)
                .sum();
            if packets > 0 {
                let _ = write!(line, "; {lost}/{packets} datagrams lost");
            }
        }
        let results = Results {
            cpu_util_total: total_cpu,
            cpu_util_user: user,
            cpu_util_system: sys,
            sender_has_retransmits: match (sends, params.protocol) {
                (false, _) => -1,
                (true, Protocol::Tcp) => 1,
                (true, Protocol::Udp) => 0,
            },
            congestion_used: ctrl
                .stats()
                .ok()
                .filter(|_| params.protocol == Protocol::Tcp)
                .map(|s| s.congestion.to_string()),
            streams: ours,
            server_output_text: params
                .get_server_output
                .then(|| format!("ustack {}\n", line)),
        };
        send_state(ctrl, state::EXCHANGE_RESULTS)?;
        let theirs = read_json(ctrl, CONTROL_DEADLINE)?;
        if let Err(e) = Results::from_json(&theirs) {
            log::debug!("iperf3 {peer}: client results: {e}");
        }
        send_json(ctrl, &results.to_json())?;
        send_state(ctrl, state::DISPLAY_RESULTS)?;
        // The client answers IPERF_DONE, or just closes.
        ctrl.set_read_timeout(Some(CONTROL_DEADLINE))?;
        let mut b = [0u8; 1];
        let _ = (&*ctrl).read(&mut b);
        Ok(Outcome {
            bytes: sent + received,
            malformed: shared.malformed.load(Ordering::Relaxed),
            line,
        })
    }
}

/// Reads control messages until `TEST_END`; an error for a client that
/// terminates, closes, sends something else, or misses the deadline.
fn wait_for_end(ctrl: &TcpStream, shared: &Shared, end_by: Option<Instant>) -> io::Result<()> {
    ctrl.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut last_bytes = 0;
    let mut last_progress = Instant::now();
    loop {
        let mut b = [0u8; 1];
        match (&*ctrl).read(&mut b) {
            Ok(0) => return Err(invalid("the client closed the control connection")),
            Ok(_) => match b[0] as i8 {
                state::TEST_END => return Ok(()),
                state::CLIENT_TERMINATE => return Err(invalid("the client terminated the test")),
                state::TEST_START | state::TEST_RUNNING | state::IPERF_START => {}
                other => return Err(invalid(format!("unexpected control message {other}"))),
            },
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let bytes = shared.total_bytes();
        if bytes != last_bytes {
            last_bytes = bytes;
            last_progress = now;
        }
        match end_by {
            Some(t) if now > t => return Err(io::Error::new(ErrorKind::TimedOut, "no TEST_END")),
            None if now.duration_since(last_progress) > IDLE_DEADLINE => {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "no data and no TEST_END",
                ));
            }
            _ => {}
        }
    }
}
