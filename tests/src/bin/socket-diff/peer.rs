//! The peer: ordinary kernel sockets of the harness's namespace (P), the
//! same actions for both sides. What the peer sees goes into the trace.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::trace::Trace;

/// How long the peer waits for anything.
const PEER_WAIT: Duration = Duration::from_secs(2);

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("IPv4 only"),
    }
}

pub struct PeerListener(TcpListener);

impl PeerListener {
    /// Listens on 0.0.0.0:port (both the TAP and the veth side reach it).
    pub fn new(port: u16) -> PeerListener {
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("peer listener on port {port}: {e}"));
        l.set_nonblocking(true).expect("nonblocking listener");
        PeerListener(l)
    }

    /// Accepts one connection (waiting up to 2 s); records from where.
    pub fn accept(&self, t: &mut Trace) -> Option<PeerConn> {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            match self.0.accept() {
                Ok((s, from)) => {
                    s.set_nonblocking(false).expect("blocking stream");
                    t.note("peer accept", format!("from {}", t.ctx.addr_name(v4(from))));
                    return Some(PeerConn(s));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    t.note("peer accept", format!("failed: {}", e.kind()));
                    return None;
                }
            }
        }
    }
}

pub struct PeerConn(pub TcpStream);

/// The peer connects to `addr` (up to 2 s); records the outcome.
pub fn connect(t: &mut Trace, addr: SocketAddrV4) -> Option<PeerConn> {
    match TcpStream::connect_timeout(&addr.into(), PEER_WAIT) {
        Ok(s) => {
            t.note("peer connect", "ok");
            Some(PeerConn(s))
        }
        Err(e) => {
            t.note("peer connect", format!("failed: {}", e.kind()));
            None
        }
    }
}

impl PeerConn {
    pub fn send(&mut self, t: &mut Trace, data: &[u8]) {
        let r = self.0.write_all(data);
        t.note(
            "peer send",
            format!("{:?}: {}", String::from_utf8_lossy(data), ok_or_kind(r)),
        );
    }

    /// Reads until `n` bytes, end of stream, an error or 2 s; records what.
    pub fn read(&mut self, t: &mut Trace, n: usize) {
        self.0.set_read_timeout(Some(PEER_WAIT)).ok();
        let mut got = Vec::new();
        let mut end = String::new();
        let mut buf = [0u8; 4096];
        while got.len() < n {
            match self.0.read(&mut buf[..(n - got.len()).min(4096)]) {
                Ok(0) => {
                    end = " +EOF".into();
                    break;
                }
                Ok(k) => got.extend_from_slice(&buf[..k]),
                Err(e) => {
                    end = format!(" +{}", e.kind());
                    break;
                }
            }
        }
        t.note(
            "peer read",
            format!("{:?}{end}", String::from_utf8_lossy(&got)),
        );
    }

    /// Reads until end of stream (or 2 s); records what came.
    pub fn read_to_eof(&mut self, t: &mut Trace) {
        self.read(t, usize::MAX);
    }

    pub fn shutdown_write(&mut self, t: &mut Trace) {
        let r = self.0.shutdown(std::net::Shutdown::Write);
        t.note("peer shutdown(SHUT_WR)", ok_or_kind(r));
    }

    /// Closes with SO_LINGER 0: the kernel sends a RST.
    pub fn reset(self, t: &mut Trace) {
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid struct linger on our own socket.
        let r = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&lg as *const libc::linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_LINGER on the peer");
        drop(self);
        t.note("peer close", "RST (SO_LINGER 0)");
    }

    pub fn close(self, t: &mut Trace) {
        drop(self);
        t.note("peer close", "FIN");
    }
}

fn ok_or_kind(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{}", e.kind()),
    }
}

pub struct PeerUdp(UdpSocket);

impl PeerUdp {
    pub fn new(port: u16) -> PeerUdp {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("peer UDP socket on port {port}: {e}"));
        s.set_read_timeout(Some(PEER_WAIT)).ok();
        PeerUdp(s)
    }

    pub fn send_to(&self, t: &mut Trace, data: &[u8], to: SocketAddrV4) {
        let r = self.0.send_to(data, to).map(drop);
        t.note(
            "peer sendto",
            format!(
                "{:?} to {}: {}",
                String::from_utf8_lossy(data),
                t.ctx.addr_name(to),
                ok_or_kind(r)
            ),
        );
    }

    /// Receives one datagram (up to 2 s); records it and its sender, and
    /// returns the sender.
    pub fn recv_from(&self, t: &mut Trace) -> Option<SocketAddrV4> {
        let mut buf = [0u8; 2048];
        match self.0.recv_from(&mut buf) {
            Ok((n, from)) => {
                let from = v4(from);
                t.note(
                    "peer recvfrom",
                    format!(
                        "{:?} from {}",
                        String::from_utf8_lossy(&buf[..n]),
                        t.ctx.addr_name(from)
                    ),
                );
                Some(from)
            }
            Err(e) => {
                t.note("peer recvfrom", format!("failed: {}", e.kind()));
                None
            }
        }
    }
}

/// Lets packets in flight arrive.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}
