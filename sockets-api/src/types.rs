//! The vocabulary of the socket calls: domains, types, options, poll flags.

use std::time::Duration;

use tcp::TcpStats;
use tcp::cc::Algorithm;

/// A socket descriptor, like a Unix file descriptor (per stack).
pub type Fd = i32;

/// Address family. Only IPv4 exists in ustack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// AF_INET.
    Inet,
}

/// Socket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// SOCK_STREAM: TCP.
    Stream,
    /// SOCK_DGRAM: UDP, or ICMP echo with [`Protocol::Icmp`].
    Dgram,
}

/// Protocol within the type (the third argument of socket()).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// The type's default: TCP for streams, UDP for datagrams.
    #[default]
    Default,
    /// ICMP echo ("ping socket", Linux's SOCK_DGRAM/IPPROTO_ICMP).
    Icmp,
}

/// Which half of a connection to shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SHUT_RD.
    Read,
    /// SHUT_WR: sends a FIN after the queued data.
    Write,
    /// SHUT_RDWR.
    Both,
}

impl From<std::net::Shutdown> for Shutdown {
    fn from(s: std::net::Shutdown) -> Self {
        match s {
            std::net::Shutdown::Read => Shutdown::Read,
            std::net::Shutdown::Write => Shutdown::Write,
            std::net::Shutdown::Both => Shutdown::Both,
        }
    }
}

/// A socket option with its value, for [`Stack::setsockopt`](crate::Stack::setsockopt).
#[derive(Clone, Debug, PartialEq)]
pub enum SockOpt {
    /// SO_REUSEADDR: bind even if connections (not listeners) use the port.
    ReuseAddr(bool),
    /// SO_RCVBUF, bytes.
    RcvBuf(usize),
    /// SO_SNDBUF, bytes.
    SndBuf(usize),
    /// SO_RCVTIMEO: blocking receives (and accepts) give up with EAGAIN.
    RcvTimeo(Option<Duration>),
    /// SO_SNDTIMEO: blocking sends and connects give up with EAGAIN.
    SndTimeo(Option<Duration>),
    /// SO_KEEPALIVE.
    KeepAlive(bool),
    /// SO_LINGER: `Some(0)` resets on close; `Some(t)` makes close wait up
    /// to `t` for queued data to be acknowledged.
    Linger(Option<Duration>),
    /// TCP_NODELAY.
    NoDelay(bool),
    /// O_NONBLOCK (set with fcntl on Unix; an option here).
    NonBlocking(bool),
    /// TCP_CONGESTION: the congestion control algorithm.
    Congestion(Algorithm),
    /// IP_TTL for this socket's datagrams (UDP).
    Ttl(u8),
    /// SO_OOBINLINE: urgent data stays in line. ustack always delivers it
    /// in line (RFC 6093 recommends it; RFC 9293 3.8.5), so this reads as
    /// on, and turning it off fails with EINVAL.
    OobInline(bool),
}

/// Which option to read, for [`Stack::getsockopt`](crate::Stack::getsockopt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOptName {
    /// SO_REUSEADDR.
    ReuseAddr,
    /// SO_RCVBUF.
    RcvBuf,
    /// SO_SNDBUF.
    SndBuf,
    /// SO_RCVTIMEO.
    RcvTimeo,
    /// SO_SNDTIMEO.
    SndTimeo,
    /// SO_KEEPALIVE.
    KeepAlive,
    /// SO_LINGER.
    Linger,
    /// TCP_NODELAY.
    NoDelay,
    /// O_NONBLOCK.
    NonBlocking,
    /// TCP_CONGESTION.
    Congestion,
    /// IP_TTL.
    Ttl,
    /// SO_ERROR: the pending error, cleared by reading it.
    Error,
    /// TCP_INFO: connection statistics.
    TcpInfo,
    /// SO_OOBINLINE (always on).
    OobInline,
}

/// The value [`Stack::getsockopt`](crate::Stack::getsockopt) returns.
#[derive(Clone, Debug, PartialEq)]
pub enum SockOptValue {
    /// An option with its value.
    Opt(SockOpt),
    /// SO_ERROR: the pending error's errno, if any.
    Error(Option<i32>),
    /// TCP_INFO.
    TcpInfo(Box<TcpStats>),
}

/// poll() event bits, with Linux's values.
pub mod events {
    /// Data (or end of stream, or a connection to accept) to read.
    pub const POLLIN: i16 = 0x001;
    /// Urgent data (TCP) not read yet (RFC 9293 MUST-32).
    pub const POLLPRI: i16 = 0x002;
    /// Room to write.
    pub const POLLOUT: i16 = 0x004;
    /// An error is pending (always reported).
    pub const POLLERR: i16 = 0x008;
    /// Hung up: both directions closed, or never connected (always reported).
    pub const POLLHUP: i16 = 0x010;
    /// Not an open descriptor (always reported).
    pub const POLLNVAL: i16 = 0x020;
    /// The peer closed its write side.
    pub const POLLRDHUP: i16 = 0x2000;
}

/// One entry of a [`Stack::poll`](crate::Stack::poll) set, as `struct pollfd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollFd {
    /// The descriptor.
    pub fd: Fd,
    /// Events of interest.
    pub events: i16,
    /// Events that happened (filled in by poll).
    pub revents: i16,
}

impl PollFd {
    /// Interest in `events` on `fd`.
    pub fn new(fd: Fd, events: i16) -> Self {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }
}
