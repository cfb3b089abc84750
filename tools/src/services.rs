//! The services `ustack serve` runs, written on the public socket API: UDP
//! echo, TCP echo, discard and chargen, and the HTTP file server, for any
//! number of connections.
//!
//! Every listening socket has an accept thread, and every connection its
//! own thread with a small stack; a blocked thread sleeps on its socket's
//! condition variable, so an idle connection costs no CPU. (The stack
//! demultiplexes by hash table, so a thousand connections cost what ten
//! do; the threads' stacks are the only per-connection memory here.)
//! A registry of open connections keeps totals for the exit summary and
//! reads the TCP statistics (TCP_INFO) of each connection when it ends.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use sockets_api::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use sockets_api::{PollFd, Stack, TcpListener, TcpStats, TcpStream, UdpSocket};

use http::{CloseReason, FileServer, drain_input};

/// Chargen writes byte `b' ' + (i % 95)` at stream offset `i`: the 95
/// printable ASCII characters, repeating.
pub const CHARGEN_PERIOD: usize = 95;

/// Stack size of connection threads (their buffers live on the heap).
const CONNECTION_STACK: usize = 256 * 1024;
/// Service I/O buffer.
const BUFFER: usize = 64 * 1024;
/// An HTTP connection idle this long (no request) is closed.
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
#[derive(Default)]
pub struct ServiceConfig {
    pub udp_echo: Vec<u16>,
    pub echo: Vec<u16>,
    pub discard: Vec<u16>,
    pub chargen: Vec<u16>,
    pub http: Vec<u16>,
    /// Serves the `http` ports (required when there are any).
    pub file_server: Option<FileServer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Echo,
    Discard,
    Chargen,
    Http,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Discard => "discard",
            Kind::Chargen => "chargen",
            Kind::Http => "http",
        }
    }
}

/// How a connection's service ended.
#[derive(Debug)]
enum Ending {
    Clean,
    Reset,
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
}

struct OpenConnection {
    kind: Kind,
    peer: SocketAddr,
    stream: TcpStream,
}

#[derive(Default)]
struct RegistryState {
    next_id: u64,
    open: HashMap<u64, OpenConnection>,
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

    fn open(&self, kind: Kind, peer: SocketAddr, stream: TcpStream) -> u64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.open.insert(id, OpenConnection { kind, peer, stream });
        id
    }

    /// Records the end of connection `id` with its final statistics.
    fn finish(&self, id: u64, ending: &Ending, stats: Option<&TcpStats>) {
        let mut s = self.lock();
        let Some(conn) = s.open.remove(&id) else {
            return;
        };
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
        // The same totals as space-separated key=value pairs, for scripts.
        let _ = writeln!(
            out,
            "services-totals: closed={} resets={} errors={} open={} bytes_in={} bytes_out={} \
             bytes_retransmitted={} retrans_fast={} retrans_rto={}",
            t.connections,
            t.resets,
            t.errors,
            s.open.len(),
            t.bytes_in,
            t.bytes_out,
            t.bytes_retransmitted,
            t.retrans_fast,
            t.retrans_rto
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

/// What every connection thread shares.
struct Context {
    stack: Stack,
    registry: Registry,
    /// A block of whole chargen periods, written from any phase.
    chargen: Vec<u8>,
    file_server: Option<FileServer>,
}

/// All services of one `ustack serve`.
pub struct Services {
    context: Arc<Context>,
    lines: Vec<String>,
    tcp_services: bool,
}

impl Services {
    /// Opens the sockets `config` asks for, then starts serving them.
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
            stack: stack.clone(),
            registry: Registry::default(),
            chargen: (0..CHARGEN_PERIOD * 700)
                .map(|i| b' ' + (i % CHARGEN_PERIOD) as u8)
                .collect(),
            file_server: config.file_server,
        });
        let tcp_services = !listeners.is_empty();
        for sock in udp {
            let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
            thread::Builder::new()
                .name(format!("udp-echo {port}"))
                .spawn(move || udp_echo(&sock))?;
        }
        for (kind, listener) in listeners {
            let ctx = context.clone();
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            thread::Builder::new()
                .name(format!("{} {port}", kind.name()))
                .spawn(move || accept_loop(&ctx, kind, &listener))?;
        }
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

/// The errors a call gets once the stack has stopped (or closed the
/// socket while stopping).
fn is_shutdown(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENETDOWN))
}

fn udp_echo(sock: &UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = sock.send_to(&buf[..n], from) {
                    log::debug!("UDP echo to {from}: {e}");
                }
            }
            Err(e) if is_shutdown(&e) => return,
            Err(e) => log::debug!("UDP echo: {e}"),
        }
    }
}

fn accept_loop(ctx: &Arc<Context>, kind: Kind, listener: &TcpListener) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => spawn_connection(ctx, kind, stream, peer),
            Err(e) if is_shutdown(&e) => return,
            Err(e) => {
                log::warn!("{}: accept failed: {e}", kind.name());
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn spawn_connection(ctx: &Arc<Context>, kind: Kind, stream: TcpStream, peer: SocketAddr) {
    let id = ctx.registry.open(kind, peer, stream.clone());
    let thread_ctx = ctx.clone();
    let spawned = thread::Builder::new()
        .name(format!("{} {peer}", kind.name()))
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let ending = match serve(&thread_ctx, kind, &stream, peer) {
                Ok(ending) => ending,
                Err(e) => Ending::from(e),
            };
            let stats = stream.stats().ok();
            thread_ctx.registry.finish(id, &ending, stats.as_ref());
            // Dropping the last handle closes the connection gracefully:
            // what was written is still delivered, then a FIN.
        });
    if let Err(e) = spawned {
        log::warn!("{} {peer}: cannot start a thread: {e}", kind.name());
        ctx.registry.finish(id, &Ending::Failed(e), None);
    }
}

fn serve(ctx: &Context, kind: Kind, stream: &TcpStream, peer: SocketAddr) -> io::Result<Ending> {
    match kind {
        Kind::Echo => echo(stream),
        Kind::Discard => discard(stream),
        Kind::Chargen => chargen(&ctx.stack, stream, &ctx.chargen),
        Kind::Http => match &ctx.file_server {
            Some(fs) => http(fs, stream, peer),
            None => Ok(Ending::Clean),
        },
    }
}

/// Reads and drops everything; done at end of stream.
fn discard(stream: &TcpStream) -> io::Result<Ending> {
    let mut buf = vec![0u8; BUFFER];
    let mut s = stream;
    loop {
        if s.read(&mut buf)? == 0 {
            return Ok(Ending::Clean);
        }
    }
}

/// Writes back what was read (a blocking write returns once all of it is
/// queued, so echo never reads more than it can write back); done at end
/// of stream.
fn echo(stream: &TcpStream) -> io::Result<Ending> {
    // Interactive echo wants no Nagle delay.
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUFFER];
    let mut s = stream;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(Ending::Clean);
        }
        s.write_all(&buf[..n])?;
    }
}

/// Keeps the send buffer full of the pattern until the peer closes its
/// side; anything the peer sends is read and ignored. Non-blocking calls
/// and poll, so that end of stream is seen while the send buffer is full.
fn chargen(stack: &Stack, stream: &TcpStream, block: &[u8]) -> io::Result<Ending> {
    stream.set_nonblocking(true)?;
    let mut s = stream;
    let mut sink = vec![0u8; 4096];
    let mut offset = 0usize;
    let mut fds = [PollFd::new(stream.as_fd(), POLLIN | POLLOUT)];
    loop {
        stack.poll(&mut fds, None)?;
        let ready = fds[0].revents;
        let mut progress = false;
        if ready & (POLLIN | POLLERR | POLLHUP) != 0 {
            loop {
                match s.read(&mut sink) {
                    Ok(0) => return Ok(Ending::Clean),
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if ready & POLLOUT != 0 {
            loop {
                let phase = offset % CHARGEN_PERIOD;
                let chunk = &block[phase..block.len() - CHARGEN_PERIOD + phase];
                match s.write(chunk) {
                    Ok(n) => {
                        offset += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if !progress && ready & POLLHUP != 0 {
            // Hung up with nothing left to do either way.
            return Ok(Ending::Clean);
        }
    }
}

/// Serves HTTP requests until the client is done (or idle), then closes;
/// after an error response, closes the way RFC 9112 section 9.6 asks
/// (shut down writing, drain briefly) so the client reads the response.
fn http(server: &FileServer, stream: &TcpStream, peer: SocketAddr) -> io::Result<Ending> {
    stream.set_read_timeout(Some(HTTP_IDLE_TIMEOUT))?;
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
    Ok(if stats.close == CloseReason::Reset {
        Ending::Reset
    } else {
        Ending::Clean
    })
}

/// The file server for `--http-root`, checked before anything starts.
pub fn file_server(root: &Path) -> Result<FileServer, String> {
    FileServer::new(root).map_err(|e| format!("--http-root: {e}"))
}

#[cfg(test)]
mod tests;
