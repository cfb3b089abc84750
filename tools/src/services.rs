//! The services `ustack serve` runs, written on the public socket API: UDP
//! echo, TCP echo, discard and chargen, and the HTTP file server, for any
//! number of connections.
//!
//! One event-loop thread ([`event_loop`]) serves every listener, every
//! echo, discard, chargen and HTTP connection and the UDP echo sockets,
//! with non-blocking sockets and a [`Poller`](sockets_api::Poller): the
//! thread count stays the same whatever the number of connections. A
//! connection holds a few dozen bytes of state of its own (an HTTP one,
//! its [`http::Session`]: under 1 KiB); reads go through one buffer per
//! loop (echo keeps the bytes its peer did not take yet, an HTTP session
//! its pending output, only while they have them). Each connection has an
//! idle deadline (`--idle-timeout`), and the caps `--max-conns` (per
//! service) and `--max-conns-per-ip` refuse the excess with a RST right
//! after accept, except that HTTP connections over `--max-conns` get a
//! **503** to their first request while fewer than
//! [`ServiceConfig::max_busy_http`] of them are open.
//!
//! HTTP sessions (sans-IO state machines) keep their own deadlines, each
//! capped by `--idle-timeout`: the request head must be complete within
//! 10 s of its first byte, a keep-alive connection may wait 15 s for its
//! next request, a client may take no output for 30 s. Files are read in
//! the loop thread, 256 KiB at a time, once the previous piece was taken.
//!
//! A registry of open connections keeps totals for the exit summary and
//! reads the TCP statistics (TCP_INFO) of each connection when it ends.

mod event_loop;
mod handlers;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use sockets_api::{Stack, TcpListener, TcpStats, TcpStream, UdpSocket};

use http::{CloseReason, ConnectionStats, FileServer};

/// Chargen writes byte `b' ' + (i % 95)` at stream offset `i`: the 95
/// printable ASCII characters, repeating.
pub const CHARGEN_PERIOD: usize = 95;

/// Default of `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `--max-conns` (open connections per service).
pub const DEFAULT_MAX_CONNS: usize = 10_000;
/// Default of `--max-conns-per-ip` (open connections per client address,
/// all services together).
pub const DEFAULT_MAX_CONNS_PER_IP: usize = 256;

/// Default of [`ServiceConfig::max_busy_http`]: HTTP connections over
/// `--max-conns` that are answered **503** at the same time; beyond, the
/// excess is refused with a RST like any other service's.
pub const DEFAULT_MAX_BUSY_HTTP: usize = 256;
/// Open connections listed one by one in the exit summary.
const SUMMARY_CONNECTIONS: usize = 50;

/// What `ustack serve` was asked to run.
pub struct ServiceConfig {
    pub udp_echo: Vec<u16>,
    pub echo: Vec<u16>,
    pub discard: Vec<u16>,
    pub chargen: Vec<u16>,
    pub http: Vec<u16>,
    /// iperf3 servers ([`crate::iperf3::server`]), one test at a time each.
    pub iperf3: Vec<u16>,
    /// The iperf3 servers' line per test goes to standard error (standard
    /// output carries a capture).
    pub messages_to_stderr: bool,
    /// Serves the `http` ports (required when there are any).
    pub file_server: Option<FileServer>,
    /// A connection that makes no progress this long is closed (with a
    /// RST): echo and discard received nothing, chargen's peer acknowledged
    /// nothing new (its send buffer did not drain).
    pub idle_timeout: Duration,
    /// Open connections per service (kind); more are refused with a RST.
    pub max_conns: usize,
    /// Open connections per client address, all services together.
    pub max_conns_per_ip: usize,
    /// HTTP connections over `max_conns` answered **503** (first request
    /// read, then closed) at the same time; more are refused with a RST.
    /// They count towards `max_conns_per_ip`.
    pub max_busy_http: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            udp_echo: Vec::new(),
            echo: Vec::new(),
            discard: Vec::new(),
            chargen: Vec::new(),
            http: Vec::new(),
            iperf3: Vec::new(),
            messages_to_stderr: false,
            file_server: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_conns: DEFAULT_MAX_CONNS,
            max_conns_per_ip: DEFAULT_MAX_CONNS_PER_IP,
            max_busy_http: DEFAULT_MAX_BUSY_HTTP,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Echo,
    Discard,
    Chargen,
    Http,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Echo, Kind::Discard, Kind::Chargen, Kind::Http];

    fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Discard => "discard",
            Kind::Chargen => "chargen",
            Kind::Http => "http",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a connection's service ended.
#[derive(Debug)]
enum Ending {
    Clean,
    Reset,
    /// No progress for the idle timeout: closed by us.
    Idle,
    Failed(io::Error),
}

impl From<io::Error> for Ending {
    fn from(e: io::Error) -> Ending {
        if e.kind() == ErrorKind::ConnectionReset {
            Ending::Reset
        } else {
            Ending::Failed(e)
        }
    }
}

/// Why a connection was refused right after accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// Its service had `--max-conns` open.
    MaxConns,
    /// Its client address had `--max-conns-per-ip` open.
    PerIp,
}

/// Totals over closed connections, for the exit summary.
#[derive(Default)]
struct Totals {
    connections: u64,
    bytes_in: u64,
    bytes_out: u64,
    retrans_fast: u64,
    retrans_rto: u64,
    bytes_retransmitted: u64,
    /// Retransmission timeouts and tail loss probes (RFC 8985 7).
    rto_count: u64,
    tail_loss_probes: u64,
    /// Losses a tail loss probe alone repaired, and probes found
    /// unneeded by a D-SACK (RFC 8985 7.4).
    tlp_repaired: u64,
    tlp_unneeded: u64,
    /// Delivery-rate snapshots merged because the ring was full.
    rate_snapshot_merges: u64,
    resets: u64,
    errors: u64,
    /// Closed by the idle timeout, per service.
    idle: [u64; 4],
    refused_max_conns: u64,
    refused_per_ip: u64,
    /// HTTP responses sent (error responses included).
    http_requests: u64,
    /// HTTP connections cut because a request head was not complete in
    /// time (slowloris), or whose client took no output for too long.
    http_head_timeouts: u64,
    http_write_stalls: u64,
    /// HTTP connections over `--max-conns` answered 503.
    http_busy: u64,
}

struct OpenConnection {
    kind: Kind,
    peer: SocketAddrV4,
    stream: TcpStream,
    /// An HTTP connection over `--max-conns`, served a 503.
    busy: bool,
}

/// A connection admitted under the caps.
#[derive(Clone, Copy, Debug)]
struct Admission {
    /// Registry id.
    id: u64,
    /// Over `--max-conns`: answer 503 (HTTP only).
    busy: bool,
}

#[derive(Default)]
struct RegistryState {
    next_id: u64,
    open: HashMap<u64, OpenConnection>,
    /// Open connections per service and per client address (for the caps).
    open_per_kind: [usize; 4],
    open_per_ip: HashMap<Ipv4Addr, usize>,
    /// Open HTTP connections served a 503 (not in `open_per_kind`).
    open_busy: usize,
    totals: Totals,
    /// The summary was taken: what ends after it (the stack is stopping)
    /// is not counted.
    frozen: bool,
}

/// The open connections and the totals of the closed ones.
#[derive(Default)]
struct Registry {
    state: Mutex<RegistryState>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection under the caps, or counts its refusal. An
    /// HTTP connection over `--max-conns` is admitted busy (for a 503)
    /// while there is room for one under `max_busy_http` and its address
    /// is under `--max-conns-per-ip`.
    fn open(
        &self,
        limits: &Limits,
        kind: Kind,
        peer: SocketAddrV4,
        stream: &TcpStream,
    ) -> Result<Admission, Refusal> {
        let mut s = self.lock();
        let per_ip = s.open_per_ip.get(peer.ip()).copied().unwrap_or(0);
        let over = s.open_per_kind[kind.index()] >= limits.max_conns;
        let busy = over
            && kind == Kind::Http
            && s.open_busy < limits.max_busy_http
            && per_ip < limits.max_conns_per_ip;
        let refusal = if over && !busy {
            Some(Refusal::MaxConns)
        } else if per_ip >= limits.max_conns_per_ip {
            Some(Refusal::PerIp)
        } else {
            None
        };
        if let Some(r) = refusal {
            if !s.frozen {
                match r {
                    Refusal::MaxConns => s.totals.refused_max_conns += 1,
                    Refusal::PerIp => s.totals.refused_per_ip += 1,
                }
            }
            return Err(r);
        }
        if busy {
            s.open_busy += 1;
        } else {
            s.open_per_kind[kind.index()] += 1;
        }
        *s.open_per_ip.entry(*peer.ip()).or_insert(0) += 1;
        let id = s.next_id;
        s.next_id += 1;
        let stream = stream.clone();
        s.open.insert(
            id,
            OpenConnection {
                kind,
                peer,
                stream,
                busy,
            },
        );
        Ok(Admission { id, busy })
    }

    /// Records the end of connection `id` with its final statistics (TCP,
    /// and HTTP for an HTTP connection).
    fn finish(
        &self,
        id: u64,
        ending: &Ending,
        stats: Option<&TcpStats>,
        http: Option<&ConnectionStats>,
    ) {
        let mut s = self.lock();
        let Some(conn) = s.open.remove(&id) else {
            return;
        };
        if conn.busy {
            s.open_busy -= 1;
        } else {
            s.open_per_kind[conn.kind.index()] -= 1;
        }
        let ip = *conn.peer.ip();
        if let Some(n) = s.open_per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                s.open_per_ip.remove(&ip);
            }
        }
        if s.frozen {
            return;
        }
        let name = conn.kind.name();
        match ending {
            Ending::Clean => {}
            Ending::Reset => {
                log::debug!("{name} {}: connection reset by the peer", conn.peer);
                s.totals.resets += 1;
            }
            Ending::Idle => {
                log::debug!("{name} {}: idle timeout", conn.peer);
                s.totals.idle[conn.kind.index()] += 1;
            }
            Ending::Failed(e) => {
                log::debug!("{name} {}: connection ended: {e}", conn.peer);
                s.totals.errors += 1;
            }
        }
        let t = &mut s.totals;
        t.connections += 1;
        if let Some(h) = http {
            log::debug!(
                "{name} {}: {} requests, {} bytes sent, {} received ({})",
                conn.peer,
                h.requests,
                h.bytes_sent,
                h.bytes_received,
                h.close
            );
            t.http_requests += h.requests;
            match h.close {
                CloseReason::HeadTimeout => t.http_head_timeouts += 1,
                CloseReason::WriteStalled => t.http_write_stalls += 1,
                CloseReason::Busy => t.http_busy += 1,
                _ => {}
            }
        }
        if let Some(stats) = stats {
            log::debug!("{name} {} closed: {stats}", conn.peer);
            t.bytes_in += stats.bytes_received;
            t.bytes_out += stats.bytes_acked;
            t.retrans_fast += stats.retrans_fast;
            t.retrans_rto += stats.retrans_rto;
            t.bytes_retransmitted += stats.bytes_retransmitted;
            t.rto_count += stats.rto_count;
            t.tail_loss_probes += stats.tail_loss_probes;
            t.tlp_repaired += stats.tlp_repaired;
            t.tlp_unneeded += stats.tlp_unneeded;
            t.rate_snapshot_merges += stats.rate_snapshot_merges;
        }
    }

    /// Freezes the registry and renders the exit summary: totals over
    /// the closed connections and the statistics of those still open.
    fn summary(&self) -> String {
        let mut s = self.lock();
        s.frozen = true;
        let mut out = String::new();
        let t = &s.totals;
        let idle: u64 = t.idle.iter().sum();
        let _ = writeln!(
            out,
            "services:   {:>12} TCP connections closed ({} reset by peer, {} other errors), {} still open",
            t.connections,
            t.resets,
            t.errors,
            s.open.len()
        );
        let _ = writeln!(
            out,
            "            {:>12} bytes in, {} bytes out, {} bytes retransmitted ({} fast, {} after timeouts)",
            t.bytes_in, t.bytes_out, t.bytes_retransmitted, t.retrans_fast, t.retrans_rto
        );
        let per_kind: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| t.idle[k.index()] > 0)
            .map(|k| format!("{} {}", t.idle[k.index()], k.name()))
            .collect();
        let _ = writeln!(
            out,
            "            {:>12} closed idle{}, {} refused over --max-conns, {} over --max-conns-per-ip",
            idle,
            if per_kind.is_empty() {
                String::new()
            } else {
                format!(" ({})", per_kind.join(", "))
            },
            t.refused_max_conns,
            t.refused_per_ip
        );
        if t.http_requests + t.http_head_timeouts + t.http_write_stalls + t.http_busy > 0 {
            let _ = writeln!(
                out,
                "            {:>12} HTTP responses; {} connections cut by the request-head deadline, \
                 {} for a stalled client, {} answered 503 over --max-conns",
                t.http_requests, t.http_head_timeouts, t.http_write_stalls, t.http_busy
            );
        }
        // The same totals as space-separated key=value pairs, for scripts.
        let _ = writeln!(
            out,
            "services-totals: closed={} resets={} errors={} open={} bytes_in={} bytes_out={} \
             bytes_retransmitted={} retrans_fast={} retrans_rto={} idle_closed={} \
             refused_max_conns={} refused_per_ip={} http_requests={} http_head_timeouts={} \
             http_write_stalls={} http_busy={} rto_count={} tlp={} \
             tlp_repaired={} tlp_unneeded={} rate_snapshot_merges={}",
            t.connections,
            t.resets,
            t.errors,
            s.open.len(),
            t.bytes_in,
            t.bytes_out,
            t.bytes_retransmitted,
            t.retrans_fast,
            t.retrans_rto,
            idle,
            t.refused_max_conns,
            t.refused_per_ip,
            t.http_requests,
            t.http_head_timeouts,
            t.http_write_stalls,
            t.http_busy,
            t.rto_count,
            t.tail_loss_probes,
            t.tlp_repaired,
            t.tlp_unneeded,
            t.rate_snapshot_merges,
        );
        let mut open: Vec<_> = s.open.iter().collect();
        open.sort_by_key(|(id, _)| **id);
        for (_, c) in open.iter().take(SUMMARY_CONNECTIONS) {
            match c.stream.stats() {
                Ok(stats) => {
                    let _ = writeln!(out, "  {} {}: {stats}", c.kind.name(), c.peer);
                }
                Err(e) => {
                    let _ = writeln!(out, "  {} {}: ({e})", c.kind.name(), c.peer);
                }
            }
        }
        if open.len() > SUMMARY_CONNECTIONS {
            let _ = writeln!(out, "  ... and {} more", open.len() - SUMMARY_CONNECTIONS);
        }
        out
    }
}

/// The caps and the deadline every connection gets.
#[derive(Clone, Copy, Debug)]
struct Limits {
    idle_timeout: Duration,
    max_conns: usize,
    max_conns_per_ip: usize,
    max_busy_http: usize,
}

/// What the event loop shares with [`Services`].
struct Context {
    registry: Registry,
    /// A block of whole chargen periods, written from any phase.
    chargen: Vec<u8>,
    file_server: Option<FileServer>,
    limits: Limits,
}

/// All services of one `ustack serve`.
pub struct Services {
    context: Arc<Context>,
    iperf3: Vec<crate::iperf3::server::Server>,
    lines: Vec<String>,
    tcp_services: bool,
}

impl Services {
    /// Opens the sockets `config` asks for, then starts serving them on
    /// one event-loop thread.
    pub fn start(stack: &Stack, config: ServiceConfig) -> io::Result<Services> {
        let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let named =
            |what: String| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        let mut udp = Vec::new();
        let mut lines = Vec::new();
        for &port in &config.udp_echo {
            let sock = UdpSocket::bind(stack, any(port))
                .map_err(named(format!("UDP echo on port {port}")))?;
            udp.push(sock);
            lines.push((format!("UDP echo on port {port}"), port));
        }
        let mut listeners = Vec::new();
        let tcp = [
            (Kind::Echo, &config.echo),
            (Kind::Discard, &config.discard),
            (Kind::Chargen, &config.chargen),
            (Kind::Http, &config.http),
        ];
        for (kind, ports) in tcp {
            for &port in ports {
                let listener = TcpListener::bind_with_backlog(stack, any(port), 1024)
                    .map_err(named(format!("TCP {} on port {port}", kind.name())))?;
                let line = match (kind, &config.file_server) {
                    (Kind::Http, Some(fs)) => {
                        format!("HTTP on port {port}, serving {}", fs.root().display())
                    }
                    (Kind::Http, None) => {
                        return Err(io::Error::new(
                            ErrorKind::InvalidInput,
                            "HTTP needs a root directory",
                        ));
                    }
                    _ => format!("TCP {} on port {port}", kind.name()),
                };
                lines.push((line, port));
                listeners.push((kind, listener));
            }
        }
        let mut iperf3 = Vec::new();
        for &port in &config.iperf3 {
            let server = crate::iperf3::server::Server::start(stack, port)
                .map_err(named(format!("iperf3 on port {port}")))?
                .messages_to_stderr(config.messages_to_stderr);
            lines.push((format!("iperf3 server on port {port}"), port));
            iperf3.push(server);
        }
        lines.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let context = Arc::new(Context {
            registry: Registry::default(),
            chargen: (0..CHARGEN_PERIOD * 700)
                .map(|i| b' ' + (i % CHARGEN_PERIOD) as u8)
                .collect(),
            file_server: config
                .file_server
                .map(|fs| http_limits(fs, config.idle_timeout)),
            limits: Limits {
                idle_timeout: config.idle_timeout,
                max_conns: config.max_conns,
                max_conns_per_ip: config.max_conns_per_ip,
                max_busy_http: config.max_busy_http,
            },
        });
        let tcp_services = !listeners.is_empty() || !iperf3.is_empty();
        let event_loop = event_loop::EventLoop::new(stack, context.clone(), listeners, udp)?;
        thread::Builder::new()
            .name("services".into())
            .spawn(move || event_loop.run())?;
        Ok(Services {
            context,
            iperf3,
            lines: lines.into_iter().map(|(l, _)| l).collect(),
            tcp_services,
        })
    }

    /// One line per running service.
    pub fn describe(&self) -> &[String] {
        &self.lines
    }

    /// The exit summary (empty without TCP services). Call it before
    /// stopping the stack: it reads the statistics of the connections
    /// still open, and what ends after it is not counted.
    pub fn summary(&self) -> String {
        if !self.tcp_services {
            return String::new();
        }
        let mut out = self.context.registry.summary();
        for server in &self.iperf3 {
            let t = server.totals();
            let _ = writeln!(
                out,
                "iperf3:     {:>12} tests run on port {} ({} ended early), {} connections refused, \
                 {} bytes moved, {} malformed datagrams",
                t.tests,
                server.port(),
                t.failed,
                t.refused,
                t.bytes,
                t.malformed
            );
            let _ = writeln!(
                out,
                "iperf3-totals: port={} tests={} failed={} refused={} bytes={} malformed={}",
                server.port(),
                t.tests,
                t.failed,
                t.refused,
                t.bytes,
                t.malformed
            );
        }
        out
    }
}

/// The file server's own deadlines (request head, keep-alive idle, write
/// stall: 10, 15 and 30 s by default), each capped by `--idle-timeout`, so
/// that no HTTP connection waits longer than any other service's.
fn http_limits(fs: FileServer, idle: Duration) -> FileServer {
    let mut limits = *fs.limits();
    limits.head_timeout = limits.head_timeout.min(idle);
    limits.idle_timeout = limits.idle_timeout.min(idle);
    limits.write_stall_timeout = limits.write_stall_timeout.min(idle);
    fs.with_limits(limits)
}

/// The file server for `--http-root`, checked before anything starts.
pub fn file_server(root: &Path) -> Result<FileServer, String> {
    FileServer::new(root).map_err(|e| format!("--http-root: {e}"))
}

#[cfg(test)]
mod tests;
