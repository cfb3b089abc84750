//! Async sockets for tokio (feature `tokio`): [`TcpListener`],
//! [`TcpStream`] and [`UdpSocket`] shaped like `tokio::net`'s, so that code
//! ports by changing the import and passing the [`Stack`] to the
//! constructor.
//!
//! They run on any tokio runtime (current-thread or multi-thread) and need
//! no tokio driver: the futures register their task's waker in the socket,
//! and the ustack stack thread wakes the tasks waiting on a socket when its
//! readiness may have changed (see the crate's `wakers` design note in
//! docs/ARCHITECTURE.md). Nothing polls, and no timer retries.
//!
//! Like tokio's registration, a socket remembers the waiting tasks per
//! direction (read, write); the `poll_*` methods, `AsyncRead` and
//! `AsyncWrite` are meant for one task per direction at a time (a
//! [`split`](TcpStream::split) gives each half its own direction), while
//! the `async fn`s on `&self` may be awaited by several tasks at once (all
//! are woken, and race for the data). Cancellation-safe where tokio's are:
//! [`TcpListener::accept`], [`UdpSocket::recv_from`], [`UdpSocket::recv`],
//! [`UdpSocket::send_to`] and [`UdpSocket::send`] do their work in one step
//! when they complete, so dropping a pending one loses nothing; dropping a
//! pending [`TcpStream::connect`] closes the half-open socket.
//!
//! When the stack stops (asked to, or because its device failed or its
//! thread panicked), every pending future completes with ENETDOWN;
//! [`Stack::last_error`] tells why.
//!
//! ```
//! use sockets_api::StackBuilder;
//! use sockets_api::tokio::{TcpListener, TcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # fn main() -> std::io::Result<()> {
//! let (server, client) = StackBuilder::memory_pair(
//!     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
//!     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
//! )?;
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind(&server, "0.0.0.0:7").await?;
//!     let echo = tokio::spawn(async move {
//!         let (mut conn, _) = listener.accept().await?;
//!         let (mut rd, mut wr) = conn.split();
//!         tokio::io::copy(&mut rd, &mut wr).await
//!     });
//!     let mut stream = TcpStream::connect(&client, "10.0.0.1:7").await?;
//!     stream.write_all(b"hello").await?;
//!     stream.shutdown().await?;
//!     let mut reply = Vec::new();
//!     stream.read_to_end(&mut reply).await?;
//!     assert_eq!(reply, b"hello");
//!     assert_eq!(echo.await.unwrap()?, 5);
//!     Ok(())
//! })
//! # }
//! ```

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Stack;
use crate::calls::errno;
use crate::types::events::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDHUP};
use crate::types::{
    Domain, Fd, PollFd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue, Type,
};
use crate::wakers::Direction;

/// A descriptor this module owns (non-blocking), closed on drop.
struct Owned {
    stack: Stack,
    fd: Fd,
}

impl Owned {
    /// Takes a second descriptor of `fd`'s socket and makes the socket
    /// non-blocking (the flag belongs to the socket, as O_NONBLOCK does).
    fn dup_nonblocking(stack: &Stack, fd: Fd) -> io::Result<Owned> {
        let owned = Owned {
            stack: stack.clone(),
            fd: stack.dup(fd)?,
        };
        stack.set_nonblocking(owned.fd, true)?;
        Ok(owned)
    }

    fn poll(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.stack.poll_op(self.fd, dir, cx.waker(), op)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stack.getsockname(self.fd).map(SocketAddr::V4)
    }

    /// Ready when the socket is readable (`Read`: data, a datagram, end
    /// of stream, an error) or writable (`Write`), as poll(2) reports it.
    fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        let events = match dir {
            Direction::Read => POLLIN | POLLRDHUP,
            Direction::Write => POLLOUT,
        };
        self.stack.poll_op(self.fd, dir, cx.waker(), || {
            let mut fds = [PollFd::new(self.fd, events)];
            self.stack.poll(&mut fds, Some(Duration::ZERO))?;
            if fds[0].revents & (events | POLLERR | POLLHUP | POLLNVAL) != 0 {
                Ok(())
            } else {
                Err(errno(libc::EAGAIN))
            }
        })
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stack.getpeername(self.fd).map(SocketAddr::V4)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.stack.getsockopt(self.fd, SockOptName::Error)? {
            SockOptValue::Error(e) => Ok(e.map(io::Error::from_raw_os_error)),
            _ => Ok(None),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.stack.close(self.fd);
    }
}

impl fmt::Debug for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Socket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.fd).finish()
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

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(errno(libc::EAFNOSUPPORT)),
    }
}

// ---------------------------------------------------------------------------

/// A TCP listener, like `tokio::net::TcpListener`.
pub struct TcpListener {
    sock: Owned,
}

impl TcpListener {
    /// Binds to `addr` (port 0: an ephemeral port) and listens, with
    /// SO_REUSEADDR as tokio sets it (`tokio::net::TcpListener::bind`,
    /// with the stack as first argument).
    pub async fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpListener> {
        Self::from_std(crate::TcpListener::bind(stack, addr)?)
    }

    /// Turns a blocking [`crate::TcpListener`] into an async one (the
    /// socket becomes non-blocking, for every handle to it).
    pub fn from_std(listener: crate::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Owned::dup_nonblocking(listener.stack(), listener.as_fd())?,
        })
    }

    /// Waits for the next connection. Cancellation-safe: a connection is
    /// taken from the queue only by the poll that returns it.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection, registering the task to be woken
    /// when one may have arrived.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let s = &self.sock;
        let (fd, peer) = ready!(s.stack.poll_op(s.fd, Direction::Read, cx.waker(), || {
            s.stack.accept4(s.fd, libc::SOCK_NONBLOCK)
        }))?;
        let sock = Owned {
            stack: s.stack.clone(),
            fd,
        };
        Poll::Ready(Ok((TcpStream::new(sock), SocketAddr::V4(peer))))
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// The descriptor, for [`Stack`]'s calls.
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.sock.stack
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpListener").field(&self.sock).finish()
    }
}

// ---------------------------------------------------------------------------

/// A TCP connection, like `tokio::net::TcpStream`: `AsyncRead` and
/// `AsyncWrite` (with vectored writes, and `poll_shutdown` sending our
/// FIN), [`split`](Self::split) and [`into_split`](Self::into_split).
/// Dropping it closes the connection gracefully (queued data is still
/// delivered).
pub struct TcpStream {
    sock: Arc<Owned>,
}

impl TcpStream {
    fn new(sock: Owned) -> TcpStream {
        TcpStream {
            sock: Arc::new(sock),
        }
    }

    /// Connects to the first address of `addr` that accepts
    /// (`tokio::net::TcpStream::connect`, with the stack as first
    /// argument). Dropping the future before it completes closes the
    /// half-open socket.
    pub async fn connect<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<TcpStream> {
        let mut last = None;
        for a in v4_addrs(addr)? {
            match Self::connect_one(stack, a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| errno(libc::EINVAL)))
    }

    async fn connect_one(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
        let fd = stack.socket_flags(
            Domain::Inet,
            Type::Stream,
            Protocol::Default,
            libc::SOCK_NONBLOCK,
        )?;
        let sock = Owned {
            stack: stack.clone(),
            fd,
        };
        match stack.connect(fd, addr) {
            Ok(()) => return Ok(TcpStream::new(sock)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // The handshake runs; connect(2) again tells how it ended
        // (EALREADY while it runs, the error once it failed), as a
        // non-blocking connect on Linux does.
        poll_fn(|cx| {
            stack.poll_op(fd, Direction::Write, cx.waker(), || {
                match stack.connect(fd, addr) {
                    Ok(()) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EISCONN) => Ok(()),
                    Err(e) if e.raw_os_error() == Some(libc::EALREADY) => Err(errno(libc::EAGAIN)),
                    Err(e) => Err(e),
                }
            })
        })
        .await?;
        Ok(TcpStream::new(sock))
    }

    /// Turns a blocking [`crate::TcpStream`] into an async one (the socket
    /// becomes non-blocking, for every handle to it).
    pub fn from_std(stream: crate::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream::new(Owned::dup_nonblocking(
            stream.stack(),
            stream.as_fd(),
        )?))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// TCP_NODELAY: send small writes at once instead of coalescing them
    /// while data is unacknowledged (Nagle).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::NoDelay(on))
    }

    /// TCP_NODELAY's value.
    pub fn nodelay(&self) -> io::Result<bool> {
        match self
            .sock
            .stack
            .getsockopt(self.sock.fd, SockOptName::NoDelay)?
        {
            SockOptValue::Opt(SockOpt::NoDelay(on)) => Ok(on),
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Waits until the stream is readable (data, end of stream or an
    /// error); a `try_read` may still find nothing (another task took it).
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.sock.poll_ready(cx, Direction::Read)).await
    }

    /// Waits until the stream is writable (room in the send buffer, or
    /// the write side is shut or failed).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.sock.poll_ready(cx, Direction::Write)).await
    }

    /// Reads queued data without consuming it (MSG_PEEK), waiting until
    /// there is some; 0 at end of stream.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &self.sock;
        poll_fn(|cx| {
            s.poll(cx, Direction::Read, || {
                s.stack.recv_flags(s.fd, buf, libc::MSG_PEEK)
            })
        })
        .await
    }

    /// SO_LINGER: `Some(0)` resets the connection on drop; `Some(t)`
    /// makes the drop wait up to `t` for queued data to be acknowledged
    /// (it blocks the dropping thread, as it does with tokio).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::Linger(linger))
    }

    /// Reads what is queued without waiting (`WouldBlock` when nothing
    /// is), like tokio's `try_read`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.stack.recv(self.sock.fd, buf)
    }

    /// Queues what fits without waiting (`WouldBlock` when nothing does).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.stack.send(self.sock.fd, buf)
    }

    /// Borrowed read and write halves, usable from two tasks of one scope
    /// (`tokio::io::copy(&mut rd, &mut wr)`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        (ReadHalf(&self.sock), WriteHalf(&self.sock))
    }

    /// Owned read and write halves, for two independent tasks. Dropping
    /// the write half shuts the connection down for writing (our FIN), as
    /// tokio's does; the connection closes when both halves are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                sock: self.sock.clone(),
            },
            OwnedWriteHalf {
                sock: self.sock,
                shutdown_on_drop: true,
            },
        )
    }

    /// The descriptor, for [`Stack`]'s calls.
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.sock.stack
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpStream").field(&self.sock).finish()
    }
}

/// One non-blocking read into `buf`'s unfilled part, or `Pending` with the
/// task registered.
fn poll_read(sock: &Owned, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let dst = buf.initialize_unfilled();
    let n = ready!(sock.poll(cx, Direction::Read, || sock.stack.recv(sock.fd, dst)))?;
    buf.advance(n);
    Poll::Ready(Ok(()))
}

fn poll_write(sock: &Owned, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    sock.poll(cx, Direction::Write, || sock.stack.send(sock.fd, buf))
}

fn poll_write_vectored(
    sock: &Owned,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    if bufs.iter().all(|b| b.is_empty()) {
        return Poll::Ready(Ok(0));
    }
    sock.poll(cx, Direction::Write, || sock.stack.writev(sock.fd, bufs))
}

/// Our FIN (shutdown(SHUT_WR)); a connection already over is not an error.
fn poll_shutdown(sock: &Owned) -> Poll<io::Result<()>> {
    match sock.stack.shutdown(sock.fd, Shutdown::Write) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Poll::Ready(Ok(())),
        r => Poll::Ready(r),
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read(&self.sock, cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write(&self.sock, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored(&self.sock, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written data is in the stack already; it sends it on its own.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_shutdown(&self.sock)
    }
}

/// The read half of [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a Owned);

/// The write half of [`TcpStream::split`].
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a Owned);

/// The read half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    sock: Arc<Owned>,
}

/// The write half of [`TcpStream::into_split`]; dropping it sends our FIN.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    sock: Arc<Owned>,
    shutdown_on_drop: bool,
}

impl OwnedReadHalf {
    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Puts the stream back together with its write half (`Err` gives both
    /// back when they come from different streams).
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, (Self, OwnedWriteHalf)> {
        if Arc::ptr_eq(&self.sock, &other.sock) {
            let mut other = other;
            other.shutdown_on_drop = false;
            drop(other);
            Ok(TcpStream { sock: self.sock })
        } else {
            Err((self, other))
        }
    }
}

impl OwnedWriteHalf {
    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Drops the half without sending a FIN.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.sock.stack.shutdown(self.sock.fd, Shutdown::Write);
        }
    }
}

macro_rules! read_half {
    ($t:ty, $sock:ident => $e:expr) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $sock = &*self;
                poll_read($e, cx, buf)
            }
        }
    };
}

macro_rules! write_half {
    ($t:ty, $sock:ident => $e:expr) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $sock = &*self;
                poll_write($e, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let $sock = &*self;
                poll_write_vectored($e, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                let $sock = &*self;
                poll_shutdown($e)
            }
        }
    };
}

read_half!(ReadHalf<'_>, h => h.0);
write_half!(WriteHalf<'_>, h => h.0);
read_half!(OwnedReadHalf, h => &h.sock);
write_half!(OwnedWriteHalf, h => &h.sock);

// ---------------------------------------------------------------------------

/// A UDP socket, like `tokio::net::UdpSocket`. Its `async fn`s take
/// `&self`, may be awaited by several tasks at once, and are
/// cancellation-safe (a datagram is taken or queued only by the poll that
/// completes).
pub struct UdpSocket {
    sock: Owned,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port): the first of its
    /// addresses that binds.
    pub async fn bind<A: ToSocketAddrs>(stack: &Stack, addr: A) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in v4_addrs(addr)? {
            let fd = stack.socket_flags(
                Domain::Inet,
                Type::Dgram,
                Protocol::Default,
                libc::SOCK_NONBLOCK,
            )?;
            let sock = Owned {
                stack: stack.clone(),
                fd,
            };
            match stack.bind(fd, a) {
                Ok(()) => return Ok(UdpSocket { sock }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| errno(libc::EINVAL)))
    }

    /// Sets the default destination and receives only from it.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let mut last = None;
        for a in v4_addrs(addr)? {
            match self.sock.stack.connect(self.sock.fd, a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| errno(libc::EINVAL)))
    }

    /// Sends one datagram to `target`.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let a = *v4_addrs(target)?
            .first()
            .ok_or_else(|| errno(libc::EINVAL))?;
        poll_fn(|cx| self.poll_send_to(cx, buf, SocketAddr::V4(a))).await
    }

    /// Polls to send one datagram to `target`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let a = v4(target)?;
        let s = &self.sock;
        s.poll(cx, Direction::Write, || s.stack.sendto(s.fd, buf, a))
    }

    /// Receives one datagram (truncated to `buf`) and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let s = &self.sock;
        poll_fn(|cx| {
            s.stack.poll_op(s.fd, Direction::Read, cx.waker(), || {
                s.stack.recvfrom(s.fd, buf)
            })
        })
        .await
        .map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    /// Polls to receive one datagram into `buf`; returns its sender.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let s = &self.sock;
        let dst = buf.initialize_unfilled();
        let (n, from) = ready!(s.stack.poll_op(s.fd, Direction::Read, cx.waker(), || {
            s.stack.recvfrom(s.fd, dst)
        }))?;
        buf.advance(n);
        Poll::Ready(Ok(SocketAddr::V4(from)))
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send(cx, buf)).await
    }

    /// Polls to send one datagram to the connected peer.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let s = &self.sock;
        s.poll(cx, Direction::Write, || s.stack.send(s.fd, buf))
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let s = &self.sock;
        poll_fn(|cx| s.poll(cx, Direction::Read, || s.stack.recv(s.fd, buf))).await
    }

    /// Polls to receive one datagram from the connected peer into `buf`.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        poll_read(&self.sock, cx, buf)
    }

    /// Waits until a datagram (or an error) is there to receive.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.sock.poll_ready(cx, Direction::Read)).await
    }

    /// Waits until a datagram can be sent.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.sock.poll_ready(cx, Direction::Write)).await
    }

    /// Receives without waiting (`WouldBlock` when nothing is queued).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock
            .stack
            .recvfrom(self.sock.fd, buf)
            .map(|(n, a)| (n, SocketAddr::V4(a)))
    }

    /// Sends without waiting.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.sock.stack.sendto(self.sock.fd, buf, v4(target)?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The connected peer's address (ENOTCONN when not connected).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// SO_BROADCAST.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock
            .stack
            .setsockopt(self.sock.fd, SockOpt::Broadcast(on))
    }

    /// SO_ERROR.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// The descriptor, for [`Stack`]'s calls.
    pub fn as_fd(&self) -> Fd {
        self.sock.fd
    }

    /// The stack this socket lives on.
    pub fn stack(&self) -> &Stack {
        &self.sock.stack
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UdpSocket").field(&self.sock).finish()
    }
}

// ---------------------------------------------------------------------------

#[cfg(feature = "futures-io")]
mod futures_traits {
    //! futures' `AsyncRead`/`AsyncWrite` (feature `futures-io`).

    use super::*;

    fn read_slice(sock: &Owned, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        sock.poll(cx, Direction::Read, || sock.stack.recv(sock.fd, buf))
    }

    macro_rules! futures_io {
        ($t:ty, $sock:ident => $e:expr) => {
            impl futures_io::AsyncRead for $t {
                fn poll_read(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &mut [u8],
                ) -> Poll<io::Result<usize>> {
                    let $sock = &*self;
                    read_slice($e, cx, buf)
                }
            }

            impl futures_io::AsyncWrite for $t {
                fn poll_write(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    buf: &[u8],
                ) -> Poll<io::Result<usize>> {
                    let $sock = &*self;
                    poll_write($e, cx, buf)
                }

                fn poll_write_vectored(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    bufs: &[IoSlice<'_>],
                ) -> Poll<io::Result<usize>> {
                    let $sock = &*self;
                    poll_write_vectored($e, cx, bufs)
                }

                fn poll_flush(
                    self: Pin<&mut Self>,
                    _cx: &mut Context<'_>,
                ) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }

                fn poll_close(
                    self: Pin<&mut Self>,
                    _cx: &mut Context<'_>,
                ) -> Poll<io::Result<()>> {
                    let $sock = &*self;
                    poll_shutdown($e)
                }
            }
        };
    }

    futures_io!(TcpStream, s => &s.sock);
}
