//! `std::net`-shaped types over the descriptor calls.
//!
//! Each type owns a descriptor through a shared guard: `try_clone` hands out
//! another owner of the *same* socket (like `dup(2)`), and the socket is
//! closed when the last owner is dropped. All types are `Send + Sync`; one
//! thread may read a [`TcpStream`] while another writes it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tcp::cc::Algorithm;
use tcp::{Keepalive, TcpStats};

use crate::Stack;
use crate::calls::errno;
use crate::types::{Domain, Fd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue, Type};

pub use stack::EchoReply;

/// Owns a descriptor; closes it when dropped.
pub(crate) struct Socket {
    pub(crate) stack: Stack,
    pub(crate) fd: Fd,
}

/// The descriptor of a [`Socket`] that handed its descriptor over.
const RELEASED: Fd = -1;

impl Drop for Socket {
    fn drop(&mut self) {
        if self.fd != RELEASED {
            let _ = self.stack.close(self.fd);
        }
    }
}

impl Socket {
    pub(crate) fn new(stack: &Stack, ty: Type, protocol: Protocol) -> io::Result<Arc<Socket>> {
        let fd = stack.socket(Domain::Inet, ty, protocol)?;
        Ok(Arc::new(Socket {
            stack: stack.clone(),
            fd,
        }))
    }

    /// Takes ownership of `fd` after checking it is a socket of type `ty`
    /// that listens (or not) as `listening` says: EINVAL otherwise, EBADF
    /// for a descriptor that is not open.
    fn adopt(stack: &Stack, fd: Fd, ty: Type, listening: bool) -> io::Result<Arc<Socket>> {
        let SockOptValue::Type(t) = stack.getsockopt(fd, SockOptName::Type)? else {
            return Err(errno(libc::EINVAL));
        };
        let SockOptValue::AcceptConn(l) = stack.getsockopt(fd, SockOptName::AcceptConn)? else {
            return Err(errno(libc::EINVAL));
        };
        if t != ty || l != listening {
            return Err(errno(libc::EINVAL));
        }
        Ok(Arc::new(Socket {
            stack: stack.clone(),
            fd,
        }))
    }

    /// Hands the descriptor over without closing it. If other handles
    /// (`try_clone`) share the socket, they keep it, and the caller gets a
    /// `dup` of it.
    fn release(sock: Arc<Socket>) -> io::Result<Fd> {
        match Arc::try_unwrap(sock) {
            Ok(mut s) => Ok(std::mem::replace(&mut s.fd, RELEASED)),
            Err(shared) => shared.stack.dup(shared.fd),
        }
    }

    pub(crate) fn set(&self, opt: SockOpt) -> io::Result<()> {
        self.stack.setsockopt(self.fd, opt)
    }

    pub(crate) fn get(&self, name: SockOptName) -> io::Result<SockOpt> {
        match self.stack.getsockopt(self.fd, name)? {
            SockOptValue::Opt(o) => Ok(o),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    pub(crate) fn ttl(&self) -> io::Result<u32> {
        match self.get(SockOptName::Ttl)? {
            SockOpt::Ttl(t) => Ok(u32::from(t)),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    pub(crate) fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| errno(libc::EINVAL))?;
        self.set(SockOpt::Ttl(ttl))
    }

    /// A boolean option (`None` if the name is not a boolean one).
    pub(crate) fn flag(&self, name: SockOptName) -> io::Result<bool> {
        match self.get(name)? {
            SockOpt::ReuseAddr(v)
            | SockOpt::ReusePort(v)
            | SockOpt::KeepAlive(v)
            | SockOpt::NoDelay(v)
            | SockOpt::Broadcast(v) => Ok(v),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT at once, and SO_KEEPALIVE
    /// on.
    pub(crate) fn set_tcp_keepalive(&self, k: &Keepalive) -> io::Result<()> {
        self.set(SockOpt::KeepIdle(k.idle))?;
        self.set(SockOpt::KeepIntvl(k.interval))?;
        self.set(SockOpt::KeepCnt(k.probes))?;
        self.set(SockOpt::KeepAlive(true))
    }

    /// The keep-alive timing (whether or not SO_KEEPALIVE is on).
    pub(crate) fn tcp_keepalive(&self) -> io::Result<Keepalive> {
        let mut k = Keepalive::default();
        if let SockOpt::KeepIdle(t) = self.get(SockOptName::KeepIdle)? {
            k.idle = t;
        }
        if let SockOpt::KeepIntvl(t) = self.get(SockOptName::KeepIntvl)? {
            k.interval = t;
        }
        if let SockOpt::KeepCnt(n) = self.get(SockOptName::KeepCnt)? {
            k.probes = n;
        }
        Ok(k)
    }

    fn set_timeout(
        &self,
        opt: fn(Option<Duration>) -> SockOpt,
        t: Option<Duration>,
    ) -> io::Result<()> {
        // std::net refuses a zero timeout with InvalidInput.
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.stack.setsockopt(self.fd, opt(t))
    }

    fn timeout(&self, name: SockOptName) -> io::Result<Option<Duration>> {
        match self.stack.getsockopt(self.fd, name)? {
            SockOptValue::Opt(SockOpt::RcvTimeo(t) | SockOpt::SndTimeo(t)) => Ok(t),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.stack.getsockopt(self.fd, SockOptName::Error)? {
            SockOptValue::Error(e) => Ok(e.map(io::Error::from_raw_os_error)),
            _ => Ok(None),
        }
    }
}

/// Resolves `addr` to IPv4 socket addresses (ustack has no IPv6).
fn v4_addrs<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddrV4>> {
    let all: Vec<SocketAddrV4> = addr
        .to_socket_addrs()?
        .filter_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .collect();
    if all.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no IPv4 address to use (ustack speaks IPv4 only)",
        ));
    }
    Ok(all)
}

/// Tries `f` on each address in turn, returning the first success or the
/// last error (as `std::net` does).
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddrV4) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in v4_addrs(addr)? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| errno(libc::EINVAL)))
}

// ---------------------------------------------------------------------------

/// A TCP listening socket, like [`std::net::TcpListener`].
///
/// ```
/// use sockets_api::{StackBuilder, TcpListener};
/// # fn main() -> std::io::Result<()> {
/// let stack = StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()).start()?;
/// let listener = TcpListener::bind(&stack, "0.0.0.0:8080")?;
/// assert_eq!(listener.local_addr()?.port(), 8080);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpListener {
    pub(crate) sock: Arc<Socket>,
}

/// The default listen backlog (as Rust's std uses on Linux).
const BACKLOG: usize = 128;

impl TcpListener {
    /// Binds to `addr` (port 0: an ephemeral port) and listens, with
    /// SO_REUSEADDR set as `std` does on Unix.
    pub fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        Self::bind_with_backlog(stack, addr, BACKLOG)
    }

    /// [`bind`](Self::bind) with an explicit listen backlog.
    pub fn bind_with_backlog<A: ToSocketAddrs>(
        stack: &Stack,
        addr: A,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let sock = Socket::new(stack, Type::Stream, Protocol::Default)?;
            stack.setsockopt(sock.fd, SockOpt::ReuseAddr(true))?;
            stack.bind(sock.fd, a)?;
            stack.listen(sock.fd, backlog)?;
            Ok(TcpListener { sock })
        })
    }

    /// Waits for a connection (or fails with EAGAIN when non-blocking).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = self.sock.stack.accept(self.sock.fd)?;
        let stream = TcpStream {
            sock: Arc::new(Socket {
                stack: self.sock.stack.clone(),
                fd,
            }),
        };
        Ok((stream, SocketAddr::V4(peer)))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getsockname(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// Another handle to the same listener.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(self.clone())
    }

    /// Non-blocking accept: EAGAIN (`WouldBlock`) when nothing is queued.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.sock.stack.set_nonblocking(self.sock.fd, on)
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// IP_TTL of the SYN-ACKs and of the connections it accepts from now on.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// IP_TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// The descriptor, for [`Stack::poll`].
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }

    /// Takes ownership of a listening stream descriptor of `stack` (EINVAL
    /// if it is not one; EBADF if not open). It is closed with the
    /// listener.
    pub fn from_fd(stack: &Stack, fd: Fd) -> io::Result<TcpListener> {
        Socket::adopt(stack, fd, Type::Stream, true).map(|sock| TcpListener { sock })
    }

    /// Gives up the descriptor without closing it (a `dup` of it if
    /// `try_clone` handles still share the listener).
    pub fn into_fd(self) -> io::Result<Fd> {
        Socket::release(self.sock)
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.sock.stack
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.fd).finish()
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

// ---------------------------------------------------------------------------

/// A TCP connection, like [`std::net::TcpStream`]. Reading and writing may
/// happen from different threads at once (`&TcpStream` implements both
/// `Read` and `Write`, or use [`try_clone`](Self::try_clone)).
///
/// ```
/// use std::io::{ErrorKind, Read, Write};
/// use std::time::Duration;
/// use sockets_api::{StackBuilder, TcpListener, TcpStream};
/// # fn main() -> std::io::Result<()> {
/// let (server, client) = StackBuilder::memory_pair(
///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
/// )?;
/// let listener = TcpListener::bind(&server, "0.0.0.0:7")?;
/// let stream = TcpStream::connect(&client, "10.0.0.1:7")?;
/// let (conn, _) = listener.accept()?;
///
/// // One thread writes a megabyte while this one reads it.
/// let writer = stream.try_clone()?;
/// let t = std::thread::spawn(move || (&writer).write_all(&vec![7u8; 1 << 20]));
/// let mut got = vec![0u8; 1 << 20];
/// (&conn).read_exact(&mut got)?;
/// t.join().unwrap()?;
/// assert!(got.iter().all(|&b| b == 7));
///
/// // Nothing more is coming: a read timeout gives WouldBlock, as on Linux.
/// conn.set_read_timeout(Some(Duration::from_millis(50)))?;
/// let err = (&conn).read(&mut got).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::WouldBlock);
///
/// // Connecting to a port nobody listens on is refused.
/// let err = TcpStream::connect(&client, "10.0.0.1:8").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TcpStream {
    pub(crate) sock: Arc<Socket>,
}

impl TcpStream {
    /// Connects to the first address of `addr` that accepts.
    pub fn connect<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| Self::connect_inner(stack, a, None))
    }

    /// Connects, giving up with ETIMEDOUT (`TimedOut`) after `timeout`.
    pub fn connect_timeout(
        stack: &Stack,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let SocketAddr::V4(a) = addr else {
            return Err(errno(libc::EAFNOSUPPORT));
        };
        Self::connect_inner(stack, *a, Some(Instant::now() + timeout))
    }

    fn connect_inner(
        stack: &Stack,
        addr: SocketAddrV4,
        limit: Option<Instant>,
    ) -> io::Result<TcpStream> {
        let sock = Socket::new(stack, Type::Stream, Protocol::Default)?;
        stack.connect_until(sock.fd, addr, limit)?;
        Ok(TcpStream { sock })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getpeername(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getsockname(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// Shuts down the read, write or both halves. `Write` sends a FIN after
    /// the queued data.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.sock.stack.shutdown(self.sock.fd, Shutdown::from(how))
    }

    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// SO_RCVTIMEO: reads give up with `WouldBlock` (EAGAIN) after `t`.
    /// A zero duration is refused, as std does.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(SockOpt::RcvTimeo, t)
    }

    /// SO_SNDTIMEO.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(SockOpt::SndTimeo, t)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(SockOptName::RcvTimeo)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(SockOptName::SndTimeo)
    }

    /// TCP_NODELAY: disables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::NoDelay(on))
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        match self
            .sock
            .stack
            .getsockopt(self.sock.fd, SockOptName::NoDelay)?
        {
            SockOptValue::Opt(SockOpt::NoDelay(v)) => Ok(v),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// O_NONBLOCK: reads and writes fail with `WouldBlock` instead of
    /// waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.sock.stack.set_nonblocking(self.sock.fd, on)
    }

    /// SO_LINGER.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::Linger(linger))
    }

    /// TCP_CONGESTION.
    pub fn set_congestion_control(&self, algorithm: Algorithm) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::Congestion(algorithm))
    }

    /// TCP_INFO: the connection's statistics.
    pub fn stats(&self) -> io::Result<TcpStats> {
        match self
            .sock
            .stack
            .getsockopt(self.sock.fd, SockOptName::TcpInfo)?
        {
            SockOptValue::TcpInfo(s) => Ok(*s),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Reads queued bytes without consuming them (MSG_PEEK): the next read
    /// returns them again. Waits as `read` does.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock
            .stack
            .recv_flags(self.sock.fd, buf, libc::MSG_PEEK)
    }

    /// IP_TTL of this connection's segments, applied at once.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// IP_TTL (the stack's default until set).
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// SO_KEEPALIVE.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::KeepAlive(on))
    }

    /// Whether SO_KEEPALIVE is on.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::KeepAlive)
    }

    /// Keep-alive tuning (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT; whole
    /// seconds from 1 s to 32767 s, 1 to 127 probes, EINVAL outside), and
    /// SO_KEEPALIVE on. Like socket2's `set_tcp_keepalive`.
    pub fn set_tcp_keepalive(&self, keepalive: &Keepalive) -> io::Result<()> {
        self.sock.set_tcp_keepalive(keepalive)
    }

    /// The keep-alive timing in force when SO_KEEPALIVE is on.
    pub fn tcp_keepalive(&self) -> io::Result<Keepalive> {
        self.sock.tcp_keepalive()
    }

    /// The descriptor, for [`Stack::poll`].
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }

    /// Takes ownership of a stream descriptor of `stack` (connected or
    /// not; EINVAL for a listener or a datagram socket, EBADF if not open),
    /// like `FromRawFd`. It is closed with the stream.
    pub fn from_fd(stack: &Stack, fd: Fd) -> io::Result<TcpStream> {
        Socket::adopt(stack, fd, Type::Stream, false).map(|sock| TcpStream { sock })
    }

    /// Gives up the descriptor without closing it, like `IntoRawFd` (a
    /// `dup` of it if `try_clone` handles still share the stream).
    pub fn into_fd(self) -> io::Result<Fd> {
        Socket::release(self.sock)
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.sock.stack
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.sock.fd).finish()
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.sock.stack.recv(self.sock.fd, buf)
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.sock.stack.send(self.sock.fd, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------

/// A UDP socket, like [`std::net::UdpSocket`].
///
/// ```
/// use sockets_api::{StackBuilder, UdpSocket};
/// # fn main() -> std::io::Result<()> {
/// let (a, b) = StackBuilder::memory_pair(
///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
/// )?;
/// let server = UdpSocket::bind(&a, "0.0.0.0:5353")?;
/// let client = UdpSocket::bind(&b, "0.0.0.0:0")?;
/// // 5,000 bytes: larger than the MTU, so it travels as IPv4 fragments.
/// client.send_to(&[1u8; 5000], "10.0.0.1:5353")?;
/// let mut buf = [0u8; 8192];
/// let (n, from) = server.recv_from(&mut buf)?;
/// assert_eq!(n, 5000);
/// assert_eq!(from.ip().to_string(), "10.0.0.2");
/// assert_eq!(from.port(), client.local_addr()?.port());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    sock: Arc<Socket>,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port).
    pub fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let sock = Socket::new(stack, Type::Dgram, Protocol::Default)?;
            stack.bind(sock.fd, a)?;
            Ok(UdpSocket { sock })
        })
    }

    /// Sets the default destination and filters received datagrams to it.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| self.sock.stack.connect(self.sock.fd, a))
    }

    /// Sends to the connected peer (ENOTCONN... EDESTADDRREQ if none).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.stack.send(self.sock.fd, buf)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.stack.recv(self.sock.fd, buf)
    }

    /// Sends one datagram to `addr` (EMSGSIZE when it cannot fit in an IPv4
    /// datagram).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let a = *v4_addrs(addr)?.first().ok_or_else(|| errno(libc::EINVAL))?;
        self.sock.stack.sendto(self.sock.fd, buf, a)
    }

    /// Receives one datagram (truncated to `buf`) and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock
            .stack
            .recvfrom(self.sock.fd, buf)
            .map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getsockname(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getpeername(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// SO_RCVTIMEO.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(SockOpt::RcvTimeo, t)
    }

    /// SO_SNDTIMEO (UDP sends never wait in ustack; kept for symmetry).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(SockOpt::SndTimeo, t)
    }

    /// O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.sock.stack.set_nonblocking(self.sock.fd, on)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(SockOptName::RcvTimeo)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.sock.timeout(SockOptName::SndTimeo)
    }

    /// The next datagram from the connected peer, left queued (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock
            .stack
            .recv_flags(self.sock.fd, buf, libc::MSG_PEEK)
    }

    /// The next datagram and its sender, left queued (MSG_PEEK).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock
            .stack
            .recvfrom_flags(self.sock.fd, buf, libc::MSG_PEEK)
            .map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    /// SO_BROADCAST: without it, sending to 255.255.255.255 or the
    /// subnet's broadcast address fails with EACCES (`PermissionDenied`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::Broadcast(on))
    }

    /// Whether SO_BROADCAST is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::Broadcast)
    }

    /// IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// IP_TTL (the stack's default until set).
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Takes ownership of a datagram descriptor of `stack` (EINVAL if it is
    /// not one, EBADF if not open).
    pub fn from_fd(stack: &Stack, fd: Fd) -> io::Result<UdpSocket> {
        Socket::adopt(stack, fd, Type::Dgram, false).map(|sock| UdpSocket { sock })
    }

    /// Gives up the descriptor without closing it (a `dup` of it if
    /// `try_clone` handles still share the socket).
    pub fn into_fd(self) -> io::Result<Fd> {
        Socket::release(self.sock)
    }

    /// SO_ERROR (an ICMP error matched to this socket: ECONNREFUSED...).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Another handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(self.clone())
    }

    /// The descriptor, for [`Stack::poll`].
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.fd).finish()
    }
}

// ---------------------------------------------------------------------------

/// An ICMP echo ("ping") socket, like Linux's `SOCK_DGRAM`/`IPPROTO_ICMP`:
/// the stack fills in the identifier and checksum and hands back only the
/// replies to this socket's requests.
#[derive(Clone)]
pub struct PingSocket {
    sock: Arc<Socket>,
}

impl PingSocket {
    /// Opens a ping socket.
    pub fn open(stack: &Stack) -> io::Result<PingSocket> {
        Ok(PingSocket {
            sock: Socket::new(stack, Type::Dgram, Protocol::Icmp)?,
        })
    }

    /// Sends an echo request with sequence number `seq`.
    pub fn send(&self, dst: Ipv4Addr, seq: u16, payload: &[u8]) -> io::Result<()> {
        self.sock.stack.ping_send(self.sock.fd, dst, seq, payload)
    }

    /// Waits for the next echo reply (up to the read timeout).
    pub fn recv(&self) -> io::Result<EchoReply> {
        self.sock.stack.ping_recv(self.sock.fd)
    }

    /// SO_RCVTIMEO.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(SockOpt::RcvTimeo, t)
    }

    /// O_NONBLOCK.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.sock.stack.set_nonblocking(self.sock.fd, on)
    }

    /// The descriptor, for [`Stack::poll`].
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }
}

impl fmt::Debug for PingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingSocket")
            .field("fd", &self.sock.fd)
            .finish()
    }
}
