//! [`TcpSocket`]: a TCP socket set up before it connects or listens, as
//! tokio's `TcpSocket` and socket2's `Socket` allow (buffer sizes, address
//! reuse, keep-alive, TTL must be in place before the SYN).

use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tcp::Keepalive;

use crate::Stack;
use crate::calls::errno;
use crate::net::{Socket, TcpListener, TcpStream};
use crate::types::{Fd, Protocol, SockOpt, SockOptName, Type};

/// A TCP socket that is neither connected nor listening yet: set options,
/// maybe [`bind`](Self::bind), then [`connect`](Self::connect) or
/// [`listen`](Self::listen).
///
/// ```
/// use sockets_api::{StackBuilder, TcpSocket};
/// # fn main() -> std::io::Result<()> {
/// let (a, b) = StackBuilder::memory_pair(
///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
/// )?;
/// let server = TcpSocket::new_v4(&a)?;
/// server.set_reuseaddr(true)?;
/// server.set_recv_buffer_size(64 * 1024)?;
/// server.bind("0.0.0.0:9000".parse().unwrap())?;
/// let listener = server.listen(16)?;
///
/// let client = TcpSocket::new_v4(&b)?;
/// client.set_send_buffer_size(32 * 1024)?;
/// client.set_nodelay(true)?;
/// let stream = client.connect("10.0.0.1:9000".parse().unwrap())?;
/// let (accepted, _) = listener.accept()?;
/// assert_eq!(stream.peer_addr()?, accepted.local_addr()?);
/// # Ok(()) }
/// ```
pub struct TcpSocket {
    sock: Arc<Socket>,
}

impl TcpSocket {
    /// A new IPv4 TCP socket.
    pub fn new_v4(stack: &Stack) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            sock: Socket::new(stack, Type::Stream, Protocol::Default)?,
        })
    }

    /// SO_REUSEADDR: bind a port that connections (in TIME-WAIT, say)
    /// still use.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::ReuseAddr(on))
    }

    /// Whether SO_REUSEADDR is set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::ReuseAddr)
    }

    /// SO_REUSEPORT: listeners that all set it share an address and port.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::ReusePort(on))
    }

    /// Whether SO_REUSEPORT is set.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::ReusePort)
    }

    /// SO_SNDBUF in bytes (at least 2048; not doubled as Linux does).
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set(SockOpt::SndBuf(size as usize))
    }

    /// SO_SNDBUF.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        match self.sock.get(SockOptName::SndBuf)? {
            SockOpt::SndBuf(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// SO_RCVBUF in bytes (at least 2048): it bounds the window the
    /// connection announces, and its window scale is chosen from it at
    /// the SYN.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set(SockOpt::RcvBuf(size as usize))
    }

    /// SO_RCVBUF.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        match self.sock.get(SockOptName::RcvBuf)? {
            SockOpt::RcvBuf(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// SO_KEEPALIVE.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::KeepAlive(on))
    }

    /// Whether SO_KEEPALIVE is on.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::KeepAlive)
    }

    /// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT, and SO_KEEPALIVE on.
    pub fn set_tcp_keepalive(&self, keepalive: &Keepalive) -> io::Result<()> {
        self.sock.set_tcp_keepalive(keepalive)
    }

    /// The keep-alive timing.
    pub fn tcp_keepalive(&self) -> io::Result<Keepalive> {
        self.sock.tcp_keepalive()
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.set(SockOpt::NoDelay(on))
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.flag(SockOptName::NoDelay)
    }

    /// SO_LINGER.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.set(SockOpt::Linger(linger))
    }

    /// IP_TTL of every segment, the SYN included.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// IP_TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Binds to a local address (port 0: an ephemeral port).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.sock.stack.bind(self.sock.fd, v4(addr)?)
    }

    /// The bound address (0.0.0.0:0 before `bind`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .stack
            .getsockname(self.sock.fd)
            .map(SocketAddr::V4)
    }

    /// Connects (blocking, up to SYN retries), turning the socket into a
    /// stream.
    pub fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.sock.stack.connect(self.sock.fd, v4(addr)?)?;
        Ok(TcpStream { sock: self.sock })
    }

    /// Listens with `backlog` (a hint, see the README's "Hostile peers"),
    /// turning the socket into a listener.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.sock.stack.listen(self.sock.fd, backlog as usize)?;
        Ok(TcpListener { sock: self.sock })
    }

    /// The descriptor.
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket")
            .field("fd", &self.sock.fd)
            .finish()
    }
}

/// ustack speaks IPv4 only.
fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(errno(libc::EAFNOSUPPORT)),
    }
}
