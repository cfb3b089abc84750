//! The services `ustack serve` runs, written on the public socket API: UDP
//! echo, TCP echo, discard and chargen, and the HTTP file server, for any
//! number of connections.
//!
//! One event-loop thread ([`event_loop`]) serves every listener, every
//! echo, discard and chargen connection and the UDP echo sockets, with
//! non-blocking sockets and a [`Poller`](sockets_api::Poller): the thread
//! count stays the same whatever the number of connections. A connection
//! holds a few dozen bytes of state of its own; I/O goes through one
//! buffer per loop (echo keeps the bytes its peer did not take yet, only
//! while it has them). Each connection has an idle deadline
//! (`--idle-timeout`), and the caps `--max-conns` (per service) and
//! `--max-conns-per-ip` refuse the excess with a RST right after accept.
//!
//! HTTP connections still run on the blocking file server, one thread
//! each, behind the [`handlers::ConnHandler`] boundary (see
//! [`handlers::handler_for`]); the accept, the caps and the counters are
//! the event loop's already.
//!
//! A registry of open connections keeps totals for the exit summary and
//! reads the TCP statistics (TCP_INFO) of each connection when it ends.

mod event_loop;
mod handlers;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use sockets_api::{Stack, TcpListener, TcpStats, TcpStream, UdpSocket};

use http::{CloseReason, FileServer, drain_input};

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

/// Stack size of HTTP connection threads (their buffers live on the heap).
const CONNECTION_STACK: usize = 256 * 1024;
/// An HTTP connection idle this long (no request) is closed (or sooner,
/// with a shorter `--idle-timeout`).
const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A client that takes no data for this long is dropped.
const HTTP_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Lingering close after an error response: read (and discard) at most
/// this much, for at most this long, so the client sees the response.
const HTTP_DRAIN_BYTES: u64 = 1 << 20;
const HTTP_DRAIN_TIME: Duration = Duration::from_secs(2);
/// Open connections listed one by one in the exit summary.
const SUMMARY_CONNECTIONS: usize = 50;

/// What `ustack serve` was asked to run.
pub struct ServiceConfig {
    pub udp_echo: Vec<u16>,
    pub echo: Vec<u16>,
    pub discard: Vec<u16>,
    pub chargen: Vec<u16>,
    pub http: Vec<u16>,
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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            udp_echo: Vec::new(),
            echo: Vec::new(),
            discard: Vec::new(),
            chargen: Vec::new(),
            http: Vec::new(),
            file_server: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_conns: DEFAULT_MAX_CONNS,
            max_conns_per_ip: DEFAULT_MAX_CONNS_PER_IP,
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
    resets: u64,
    errors: u64,
    /// Closed by the idle timeout, per service.
    idle: [u64; 4],
    refused_max_conns: u64,
    refused_per_ip: u64,
}

struct OpenConnection {
    kind: Kind,
    peer: SocketAddrV4,
    stream: TcpStream,
}

#[derive(Default)]
struct RegistryState {
    next_id: u64,
    open: HashMap<u64, OpenConnection>,
    /// Open connections per service and per client address (for the caps).
    open_per_kind: [usize; 4],
    open_per_ip: HashMap<Ipv4Addr, usize>,
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

    /// Admits a new connection under the caps (returns its id) or counts
    /// its refusal.
    fn open(
        &self,
        limits: &Limits,
        kind: Kind,
        peer: SocketAddrV4,
        stream: &TcpStream,
    ) -> Result<u64, Refusal> {
        let mut s = self.lock();
        let per_ip = s.open_per_ip.get(peer.ip()).copied().unwrap_or(0);
        let refusal = if s.open_per_kind[kind.index()] >= limits.max_conns {
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
        s.open_per_kind[kind.index()] += 1;
        *s.open_per_ip.entry(*peer.ip()).or_insert(0) += 1;
        let id = s.next_id;
        s.next_id += 1;
        let stream = stream.clone();
        s.open.insert(id, OpenConnection { kind, peer, stream });
        Ok(id)
    }

    /// Records the end of connection `id` with its final statistics.
    fn finish(&self, id: u64, ending: &Ending, stats: Option<&TcpStats>) {
        let mut s = self.lock();
        let Some(conn) = s.open.remove(&id) else {
            return;
        };
        s.open_per_kind[conn.kind.index()] -= 1;
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
        if let Some(stats) = stats {
            log::debug!("{name} {} closed: {stats}", conn.peer);
            t.bytes_in += stats.bytes_received;
            t.bytes_out += stats.bytes_acked;
            t.retrans_fast += stats.retrans_fast;
            t.retrans_rto += stats.retrans_rto;
            t.bytes_retransmitted += stats.bytes_retransmitted;
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
        // The same totals as space-separated key=value pairs, for scripts.
        let _ = writeln!(
            out,
            "services-totals: closed={} resets={} errors={} open={} bytes_in={} bytes_out={} \
             bytes_retransmitted={} retrans_fast={} retrans_rto={} idle_closed={} \
             refused_max_conns={} refused_per_ip={}",
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
            t.refused_per_ip
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
}

/// What the event loop and the HTTP threads share.
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
        lines.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let context = Arc::new(Context {
            registry: Registry::default(),
            chargen: (0..CHARGEN_PERIOD * 700)
                .map(|i| b' ' + (i % CHARGEN_PERIOD) as u8)
                .collect(),
            file_server: config.file_server,
            limits: Limits {
                idle_timeout: config.idle_timeout,
                max_conns: config.max_conns,
                max_conns_per_ip: config.max_conns_per_ip,
            },
        });
        let tcp_services = !listeners.is_empty();
        let event_loop = event_loop::EventLoop::new(stack, context.clone(), listeners, udp)?;
        thread::Builder::new()
            .name("services".into())
            .spawn(move || event_loop.run())?;
        Ok(Services {
            context,
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
        if self.tcp_services {
            self.context.registry.summary()
        } else {
            String::new()
        }
    }
}

/// Serves one HTTP connection on a thread of its own (the blocking file
/// server); the connection is in the registry already.
fn spawn_http(ctx: &Arc<Context>, id: u64, stream: TcpStream, peer: SocketAddrV4) {
    let thread_ctx = ctx.clone();
    let spawned = thread::Builder::new()
        .name(format!("http {peer}"))
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let ending = match &thread_ctx.file_server {
                Some(fs) => {
                    let idle = thread_ctx.limits.idle_timeout.min(HTTP_IDLE_TIMEOUT);
                    http(fs, &stream, peer.into(), idle).unwrap_or_else(Ending::from)
                }
                None => Ending::Clean,
            };
            let stats = stream.stats().ok();
            thread_ctx.registry.finish(id, &ending, stats.as_ref());
            // Dropping the last handle closes the connection gracefully:
            // what was written is still delivered, then a FIN.
        });
    if let Err(e) = spawned {
        log::warn!("http {peer}: cannot start a thread: {e}");
        ctx.registry.finish(id, &Ending::Failed(e), None);
    }
}

/// Serves HTTP requests until the client is done (or idle), then closes;
/// after an error response, closes the way RFC 9112 section 9.6 asks
/// (shut down writing, drain briefly) so the client reads the response.
fn http(
    server: &FileServer,
    stream: &TcpStream,
    peer: SocketAddr,
    idle: Duration,
) -> io::Result<Ending> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(HTTP_WRITE_TIMEOUT))?;
    let mut s = stream;
    let client = peer.ip().to_string();
    let stats = server.serve_connection_logged(&mut s, &client, &mut |record| {
        log::info!("{}", record.access_log_line());
    })?;
    log::debug!(
        "http {peer}: {} requests, {} bytes sent, {} received ({})",
        stats.requests,
        stats.bytes_sent,
        stats.bytes_received,
        stats.close
    );
    if stats.drain_before_close {
        stream.shutdown(std::net::Shutdown::Write)?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        drain_input(&mut s, HTTP_DRAIN_BYTES, HTTP_DRAIN_TIME);
    }
    Ok(match stats.close {
        CloseReason::Reset => Ending::Reset,
        CloseReason::Idle => Ending::Idle,
        _ => Ending::Clean,
    })
}

/// The file server for `--http-root`, checked before anything starts.
pub fn file_server(root: &Path) -> Result<FileServer, String> {
    FileServer::new(root).map_err(|e| format!("--http-root: {e}"))
}

#[cfg(test)]
mod tests;
