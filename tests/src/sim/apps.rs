//! Ready-made applications and helpers for simulation tests: a UDP echo
//! server, a UDP source sending numbered datagrams on a schedule, a UDP sink
//! that records what it receives, and ping.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use stack::{Interface, SocketError, UdpHandle};

use super::engine::Sim;
use super::host::{App, HostCtx, HostId};

/// Largest UDP payload (65,535 - 20 - 8).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// UDP echo service (RFC 862): sends every datagram back to its sender.
pub struct UdpEcho {
    sock: UdpHandle,
    buf: Vec<u8>,
    /// Datagrams echoed.
    pub echoed: u64,
}

impl UdpEcho {
    /// Binds `port` on `iface` (add the result with [`Sim::add_app`]).
    pub fn bind(iface: &mut Interface, port: u16) -> Result<UdpEcho, SocketError> {
        let sock = iface.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        Ok(UdpEcho {
            sock,
            buf: vec![0; MAX_UDP_PAYLOAD],
            echoed: 0,
        })
    }

    /// The server's socket.
    pub fn socket(&self) -> UdpHandle {
        self.sock
    }
}

impl App for UdpEcho {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        while let Ok((n, from)) = cx.iface.udp_recv_from(self.sock, &mut self.buf) {
            let n = n.min(self.buf.len());
            if cx
                .iface
                .udp_send_to(cx.now, self.sock, &self.buf[..n], Some(from), cx.tx)
                .is_ok()
            {
                self.echoed += 1;
            }
        }
    }
}

/// The payload [`UdpSource`] sends as datagram number `seq`: `seq` as 8
/// big-endian bytes, then bytes counting up from `seq` (truncated to `len`).
pub fn pattern(seq: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill_pattern(seq, &mut buf);
    buf
}

/// Writes [`pattern`]`(seq, buf.len())` into `buf`.
pub fn fill_pattern(seq: u64, buf: &mut [u8]) {
    let head = seq.to_be_bytes();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = match head.get(i) {
            Some(&h) => h,
            None => (seq as usize).wrapping_add(i) as u8,
        };
    }
}

/// The sequence number at the start of a [`pattern`] payload.
pub fn pattern_seq(data: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(..8)?.try_into().ok()?))
}

/// Sends `count` numbered datagrams ([`pattern`] payloads) of `size` bytes
/// to `dst`, one every `interval` starting at its first run (all in its first
/// run when `interval` is zero).
pub struct UdpSource {
    sock: UdpHandle,
    dst: SocketAddrV4,
    size: usize,
    interval: Duration,
    next: Option<Instant>,
    buf: Vec<u8>,
    /// Datagrams still to send.
    pub left: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Sends that failed (no route, message too big...).
    pub errors: u64,
}

impl UdpSource {
    /// Binds an ephemeral port on `iface` (add the result with
    /// [`Sim::add_app`]).
    pub fn new(
        iface: &mut Interface,
        dst: SocketAddrV4,
        count: u64,
        size: usize,
        interval: Duration,
    ) -> Result<UdpSource, SocketError> {
        let sock = iface.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        Ok(UdpSource {
            sock,
            dst,
            size,
            interval,
            next: None,
            buf: vec![0; size],
            left: count,
            sent: 0,
            errors: 0,
        })
    }

    /// The source's socket.
    pub fn socket(&self) -> UdpHandle {
        self.sock
    }
}

impl App for UdpSource {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        let mut next = self.next.unwrap_or(cx.now);
        while self.left > 0 && next <= cx.now {
            fill_pattern(self.sent + self.errors, &mut self.buf[..self.size]);
            match cx
                .iface
                .udp_send_to(cx.now, self.sock, &self.buf, Some(self.dst), cx.tx)
            {
                Ok(_) => self.sent += 1,
                Err(_) => self.errors += 1,
            }
            self.left -= 1;
            next += self.interval;
        }
        self.next = Some(next);
        if self.left > 0 {
            cx.wake_at(next);
        }
    }
}

/// A datagram as a [`UdpSink`] received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Virtual time of arrival (of the batch that delivered it).
    pub at: Instant,
    /// Sender.
    pub from: SocketAddrV4,
    /// Payload (empty when the sink does not keep payloads).
    pub data: Vec<u8>,
    /// Payload length.
    pub len: usize,
}

/// Receives datagrams on a port and records them (discard service, RFC 863,
/// with a memory).
pub struct UdpSink {
    sock: UdpHandle,
    buf: Vec<u8>,
    keep_data: bool,
    /// Everything received, oldest first.
    pub received: Vec<Received>,
    /// Payload bytes received.
    pub bytes: u64,
}

impl UdpSink {
    /// Binds `port` on `iface`; `keep_data` keeps payloads (otherwise only
    /// lengths and times).
    pub fn bind(iface: &mut Interface, port: u16, keep_data: bool) -> Result<UdpSink, SocketError> {
        let sock = iface.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        Ok(UdpSink {
            sock,
            buf: vec![0; MAX_UDP_PAYLOAD],
            keep_data,
            received: Vec::new(),
            bytes: 0,
        })
    }

    /// The sink's socket.
    pub fn socket(&self) -> UdpHandle {
        self.sock
    }
}

impl App for UdpSink {
    fn step(&mut self, cx: &mut HostCtx<'_>) {
        while let Ok((n, from)) = cx.iface.udp_recv_from(self.sock, &mut self.buf) {
            let len = n.min(self.buf.len());
            self.bytes += len as u64;
            self.received.push(Received {
                at: cx.now,
                from,
                data: if self.keep_data {
                    self.buf[..len].to_vec()
                } else {
                    Vec::new()
                },
                len,
            });
        }
    }
}

/// Sends one echo request from `from` to `to` and waits for the reply;
/// returns the round-trip time in virtual time, or `None` after `timeout`.
/// Opens and closes its own echo socket.
///
/// # Panics
/// When no echo socket can be opened or the request cannot be sent (no
/// route): a test setup error.
pub fn ping(
    sim: &mut Sim,
    from: HostId,
    to: HostId,
    seq: u16,
    payload: &[u8],
    timeout: Duration,
) -> Option<Duration> {
    let dst = sim.ip(to);
    let sock = sim
        .iface(from)
        .icmp_open(None)
        .unwrap_or_else(|e| panic!("ping: cannot open an echo socket on {from:?}: {e:?}"));
    let sent_at = sim.now();
    sim.with_host(from, |cx| {
        cx.iface
            .icmp_send_echo(cx.now, sock, dst, seq, payload, cx.tx)
    })
    .unwrap_or_else(|e| panic!("ping: {from:?} cannot send to {dst}: {e:?}"));
    let reply = sim.run_until_some(
        |sim| {
            let s = sim.iface(from).icmp_socket(sock)?;
            std::iter::from_fn(|| s.recv()).find(|r| r.seq == seq && r.data == payload)
        },
        timeout,
    );
    sim.iface(from).icmp_close(sock);
    reply.map(|r| r.received_at - sent_at)
}
