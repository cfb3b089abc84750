//! The services `ustack serve` runs on the interface: UDP echo, and TCP
//! echo, discard and chargen for any number of connections. They are driven
//! by the interface's readiness events, so an idle connection costs nothing.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use stack::{Event, FrameSink, Interface, ListenerHandle, SocketError, TcpHandle, UdpHandle};
use tcp::TcpStats;

use crate::cli::ServeArgs;

/// Chargen writes byte `b' ' + (i % 95)` at stream offset `i`: the 95
/// printable ASCII characters, repeating.
pub const CHARGEN_PERIOD: usize = 95;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Echo,
    Discard,
    Chargen,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Discard => "discard",
            Kind::Chargen => "chargen",
        }
    }
}

struct Conn {
    kind: Kind,
    /// Echo: bytes read but not yet written back.
    pending: Vec<u8>,
    /// Chargen: stream offset of the next byte.
    offset: usize,
    eof: bool,
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

/// All services of one `ustack serve`.
pub struct Services {
    udp_echo: HashMap<UdpHandle, u16>,
    listeners: HashMap<ListenerHandle, (Kind, u16)>,
    conns: HashMap<TcpHandle, Conn>,
    events: Vec<Event>,
    buf: Vec<u8>,
    chargen: Vec<u8>,
    totals: Totals,
}

impl Services {
    /// Opens the sockets the command line asks for.
    pub fn start(iface: &mut Interface, args: &ServeArgs) -> Result<Services, Box<dyn Error>> {
        let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let mut udp_echo = HashMap::new();
        for &port in &args.udp_echo {
            let h = iface
                .udp_bind(any(port))
                .map_err(|e| format!("UDP echo on port {port}: {e}"))?;
            udp_echo.insert(h, port);
        }
        let mut listeners = HashMap::new();
        let tcp = [
            (Kind::Echo, &args.echo),
            (Kind::Discard, &args.discard),
            (Kind::Chargen, &args.chargen),
        ];
        for (kind, ports) in tcp {
            for &port in ports {
                let lh = iface
                    .tcp_listen(any(port), 1024)
                    .map_err(|e| format!("TCP {} on port {port}: {e}", kind.name()))?;
                listeners.insert(lh, (kind, port));
            }
        }
        // A block of whole pattern periods, written from any phase.
        let chargen = (0..CHARGEN_PERIOD * 700)
            .map(|i| b' ' + (i % CHARGEN_PERIOD) as u8)
            .collect();
        Ok(Services {
            udp_echo,
            listeners,
            conns: HashMap::new(),
            events: Vec::new(),
            buf: vec![0u8; 65_536],
            chargen,
            totals: Totals::default(),
        })
    }

    /// One line per running service.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .udp_echo
            .values()
            .map(|p| format!("UDP echo on port {p}"))
            .collect();
        lines.extend(
            self.listeners
                .values()
                .map(|(k, p)| format!("TCP {} on port {p}", k.name())),
        );
        lines.sort();
        lines
    }

    /// Serves the sockets that have events.
    pub fn poll<S: FrameSink + ?Sized>(&mut self, iface: &mut Interface, now: Instant, tx: &mut S) {
        if !iface.has_events() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        iface.take_events(&mut events);
        for event in events.drain(..) {
            match event {
                Event::Udp(h) if self.udp_echo.contains_key(&h) => self.udp_echo(iface, now, h, tx),
                Event::Listener(lh) => {
                    let Some(&(kind, _)) = self.listeners.get(&lh) else {
                        continue;
                    };
                    while let Ok(h) = iface.tcp_accept(lh) {
                        if let Some(c) = iface.tcp_mut(h) {
                            // Interactive echo wants no Nagle delay.
                            c.set_nodelay(kind == Kind::Echo);
                        }
                        self.conns.insert(
                            h,
                            Conn {
                                kind,
                                pending: Vec::new(),
                                offset: 0,
                                eof: false,
                            },
                        );
                        self.serve(iface, now, h);
                    }
                }
                Event::Tcp(h) => self.serve(iface, now, h),
                _ => {}
            }
        }
        self.events = events;
    }

    fn udp_echo<S: FrameSink + ?Sized>(
        &mut self,
        iface: &mut Interface,
        now: Instant,
        h: UdpHandle,
        tx: &mut S,
    ) {
        loop {
            match iface.udp_recv_from(h, &mut self.buf) {
                Ok((n, from)) => {
                    let n = n.min(self.buf.len());
                    if let Err(e) = iface.udp_send_to(now, h, &self.buf[..n], Some(from), tx) {
                        log::debug!("UDP echo to {from}: {e}");
                    }
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => {
                    log::debug!("UDP echo: {e}");
                    break;
                }
            }
        }
    }

    /// Does what a connection's service can do now; closes it when done.
    fn serve(&mut self, iface: &mut Interface, now: Instant, h: TcpHandle) {
        let Some(conn) = self.conns.get_mut(&h) else {
            return;
        };
        let result = match conn.kind {
            Kind::Discard => discard(iface, h, &mut self.buf),
            Kind::Echo => echo(iface, h, conn, &mut self.buf),
            Kind::Chargen => chargen(iface, h, conn, &self.chargen, &mut self.buf),
        };
        let finished = match result {
            Ok(done) => done,
            Err(SocketError::ConnectionReset) => {
                log::debug!("{} connection reset by the peer", conn.kind.name());
                self.totals.resets += 1;
                true
            }
            Err(e) => {
                log::debug!("{} connection ended: {e}", conn.kind.name());
                self.totals.errors += 1;
                true
            }
        };
        if finished {
            if let Some(c) = iface.tcp(h) {
                let stats = c.stats();
                log::debug!("{} {} closed: {stats}", conn.kind.name(), c.remote());
                self.account(&stats);
            }
            self.conns.remove(&h);
            iface.tcp_close(now, h);
        }
    }

    fn account(&mut self, s: &TcpStats) {
        let t = &mut self.totals;
        t.connections += 1;
        t.bytes_in += s.bytes_received;
        t.bytes_out += s.bytes_acked;
        t.retrans_fast += s.retrans_fast;
        t.retrans_rto += s.retrans_rto;
        t.bytes_retransmitted += s.bytes_retransmitted;
    }

    /// Totals for the exit summary, and the statistics of every connection
    /// still open.
    pub fn summary(&self, iface: &Interface) -> String {
        let mut out = String::new();
        if self.listeners.is_empty() {
            return out;
        }
        let t = &self.totals;
        let _ = writeln!(
            out,
            "services:   {:>12} TCP connections closed ({} reset by peer, {} other errors), {} still open",
            t.connections,
            t.resets,
            t.errors,
            self.conns.len()
        );
        let _ = writeln!(
            out,
            "            {:>12} bytes in, {} bytes out, {} bytes retransmitted ({} fast, {} after timeouts)",
            t.bytes_in, t.bytes_out, t.bytes_retransmitted, t.retrans_fast, t.retrans_rto
        );
        let mut open: Vec<_> = self.conns.iter().collect();
        open.sort_by_key(|(h, _)| **h);
        for (h, c) in open.into_iter().take(50) {
            if let Some(conn) = iface.tcp(*h) {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    c.kind.name(),
                    conn.remote(),
                    conn.stats()
                );
            }
        }
        if self.conns.len() > 50 {
            let _ = writeln!(out, "  ... and {} more", self.conns.len() - 50);
        }
        out
    }
}

/// Reads and drops everything; done at end of stream.
fn discard(iface: &mut Interface, h: TcpHandle, buf: &mut [u8]) -> Result<bool, SocketError> {
    loop {
        match iface.tcp_recv(h, buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(SocketError::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Writes back what was read, never reading more than it can write back.
fn echo(
    iface: &mut Interface,
    h: TcpHandle,
    conn: &mut Conn,
    buf: &mut [u8],
) -> Result<bool, SocketError> {
    loop {
        while !conn.pending.is_empty() {
            match iface.tcp_send(h, &conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(SocketError::WouldBlock) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        if conn.eof {
            return Ok(true);
        }
        match iface.tcp_recv(h, buf) {
            Ok(0) => conn.eof = true,
            Ok(n) => match iface.tcp_send(h, &buf[..n]) {
                Ok(k) => conn.pending.extend_from_slice(&buf[k..n]),
                Err(SocketError::WouldBlock) => conn.pending.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            },
            Err(SocketError::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Keeps the send buffer full of the pattern until the peer closes.
fn chargen(
    iface: &mut Interface,
    h: TcpHandle,
    conn: &mut Conn,
    block: &[u8],
    buf: &mut [u8],
) -> Result<bool, SocketError> {
    // Anything the peer sends is read and ignored; its end of stream ends
    // the service.
    loop {
        match iface.tcp_recv(h, buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(SocketError::WouldBlock) => break,
            Err(e) => return Err(e),
        }
    }
    loop {
        let phase = conn.offset % CHARGEN_PERIOD;
        let chunk = &block[phase..block.len() - CHARGEN_PERIOD + phase];
        match iface.tcp_send(h, chunk) {
            Ok(n) => conn.offset += n,
            Err(SocketError::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
