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
    /// IP_TTL: the time-to-live of this socket's packets (UDP datagrams
    /// and TCP segments, the SYN included); 1 to 255, EINVAL for 0. Reads
    /// as the stack's default until set.
    Ttl(u8),
    /// SO_OOBINLINE: urgent data stays in line. ustack always delivers it
    /// in line (RFC 6093 recommends it; RFC 9293 3.8.5), so this reads as
    /// on, and turning it off fails with EINVAL.
    OobInline(bool),
    /// SO_REUSEPORT: several sockets that all set it may bind the same
    /// address and port; listeners then share the incoming connections
    /// (spread by a hash of the addresses and ports).
    ReusePort(bool),
    /// SO_BROADCAST: datagrams may go to a broadcast address (EACCES
    /// otherwise).
    Broadcast(bool),
    /// SO_RCVLOWAT: a stream read (and POLLIN) waits for at least this many
    /// bytes, or end of stream, an error or SO_RCVTIMEO. At least 1.
    RcvLowat(usize),
    /// IP_TOS: the type-of-service byte of this socket's packets (a
    /// stream's two ECN bits stay TCP's, as on Linux).
    Tos(u8),
    /// TCP_USER_TIMEOUT: how long transmitted data may stay unacknowledged
    /// before the connection is given up with ETIMEDOUT (RFC 5482); zero is
    /// the stack's default.
    UserTimeout(Duration),
    /// TCP_MAXSEG: the largest segment this socket sends and announces
    /// (set before connect or listen; at least 88, EINVAL below). Read on
    /// a connected socket, the MSS in use.
    MaxSeg(u16),
    /// TCP_CORK: only full segments go out until uncorked (or for 200 ms
    /// at most), so a header and a body written apart share segments.
    Cork(bool),
    /// TCP_QUICKACK: on acknowledges at once (sending a delayed ACK now);
    /// off returns to delayed acknowledgements.
    QuickAck(bool),
    /// TCP_DEFER_ACCEPT (listeners): a connection is handed to accept only
    /// once data arrived on it, or after this long; zero turns it off.
    DeferAccept(Duration),
    /// TCP_KEEPIDLE: idle time before the first keep-alive probe (with
    /// SO_KEEPALIVE on). 1 s to 32767 s, EINVAL outside; default 7200 s.
    KeepIdle(Duration),
    /// TCP_KEEPINTVL: time between unanswered keep-alive probes. 1 s to
    /// 32767 s, EINVAL outside; default 75 s.
    KeepIntvl(Duration),
    /// TCP_KEEPCNT: unanswered probes before the connection fails with
    /// ETIMEDOUT. 1 to 127, EINVAL outside; default 9.
    KeepCnt(u32),
    /// SO_MAX_PACING_RATE: the most a TCP socket's pacing sends, bytes per
    /// second; setting a cap turns pacing on for the connection, as on
    /// Linux. `u64::MAX` (Linux's ~0) is no cap, the default. Datagram
    /// sockets keep the value and ignore it (ustack has no fq qdisc).
    MaxPacingRate(u64),
}

impl SockOpt {
    /// The name that reads this option back with
    /// [`Stack::getsockopt`](crate::Stack::getsockopt).
    pub fn name(&self) -> SockOptName {
        match self {
            SockOpt::ReuseAddr(_) => SockOptName::ReuseAddr,
            SockOpt::RcvBuf(_) => SockOptName::RcvBuf,
            SockOpt::SndBuf(_) => SockOptName::SndBuf,
            SockOpt::RcvTimeo(_) => SockOptName::RcvTimeo,
            SockOpt::SndTimeo(_) => SockOptName::SndTimeo,
            SockOpt::KeepAlive(_) => SockOptName::KeepAlive,
            SockOpt::Linger(_) => SockOptName::Linger,
            SockOpt::NoDelay(_) => SockOptName::NoDelay,
            SockOpt::NonBlocking(_) => SockOptName::NonBlocking,
            SockOpt::Congestion(_) => SockOptName::Congestion,
            SockOpt::Ttl(_) => SockOptName::Ttl,
            SockOpt::OobInline(_) => SockOptName::OobInline,
            SockOpt::ReusePort(_) => SockOptName::ReusePort,
            SockOpt::Broadcast(_) => SockOptName::Broadcast,
            SockOpt::RcvLowat(_) => SockOptName::RcvLowat,
            SockOpt::Tos(_) => SockOptName::Tos,
            SockOpt::UserTimeout(_) => SockOptName::UserTimeout,
            SockOpt::MaxSeg(_) => SockOptName::MaxSeg,
            SockOpt::Cork(_) => SockOptName::Cork,
            SockOpt::QuickAck(_) => SockOptName::QuickAck,
            SockOpt::DeferAccept(_) => SockOptName::DeferAccept,
            SockOpt::KeepIdle(_) => SockOptName::KeepIdle,
            SockOpt::KeepIntvl(_) => SockOptName::KeepIntvl,
            SockOpt::KeepCnt(_) => SockOptName::KeepCnt,
            SockOpt::MaxPacingRate(_) => SockOptName::MaxPacingRate,
        }
    }
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
    /// SO_REUSEPORT.
    ReusePort,
    /// SO_BROADCAST.
    Broadcast,
    /// SO_RCVLOWAT.
    RcvLowat,
    /// IP_TOS.
    Tos,
    /// TCP_USER_TIMEOUT.
    UserTimeout,
    /// TCP_MAXSEG.
    MaxSeg,
    /// TCP_CORK.
    Cork,
    /// TCP_QUICKACK.
    QuickAck,
    /// TCP_DEFER_ACCEPT.
    DeferAccept,
    /// TCP_KEEPIDLE.
    KeepIdle,
    /// TCP_KEEPINTVL.
    KeepIntvl,
    /// TCP_KEEPCNT.
    KeepCnt,
    /// SO_MAX_PACING_RATE.
    MaxPacingRate,
    /// SO_TYPE (read only).
    Type,
    /// SO_ACCEPTCONN (read only): the socket listens.
    AcceptConn,
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
    /// SO_TYPE.
    Type(Type),
    /// SO_ACCEPTCONN.
    AcceptConn(bool),
}

/// An ioctl(2) request, for [`Stack::ioctl`](crate::Stack::ioctl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl {
    /// FIONREAD (SIOCINQ): bytes ready to read; on a datagram socket the
    /// size of the next datagram.
    FionRead,
    /// SIOCOUTQ: bytes in the send queue (not yet acknowledged).
    SiocOutQ,
    /// SIOCATMARK: 1 when the next byte is the urgent mark.
    SiocAtMark,
    /// FIONBIO: sets or clears O_NONBLOCK.
    FionBio(bool),
}

/// What [`Stack::recvmsg`](crate::Stack::recvmsg) returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMsg {
    /// Bytes received (with `MSG_TRUNC` in the flags: the datagram's full
    /// length).
    pub len: usize,
    /// The sender, on a datagram socket.
    pub addr: Option<std::net::SocketAddrV4>,
    /// The datagram was longer than the buffers (MSG_TRUNC in msg_flags).
    pub truncated: bool,
}

/// A descriptor set for [`Stack::select`](crate::Stack::select), like
/// `fd_set` (without its 1024 limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdSet {
    fds: std::collections::BTreeSet<Fd>,
}

impl FdSet {
    /// An empty set (FD_ZERO).
    pub fn new() -> Self {
        FdSet::default()
    }

    /// Adds `fd` (FD_SET).
    pub fn insert(&mut self, fd: Fd) {
        self.fds.insert(fd);
    }

    /// Removes `fd` (FD_CLR).
    pub fn remove(&mut self, fd: Fd) {
        self.fds.remove(&fd);
    }

    /// True when `fd` is in the set (FD_ISSET).
    pub fn contains(&self, fd: Fd) -> bool {
        self.fds.contains(&fd)
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Number of descriptors in the set.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// The descriptors, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Fd> + '_ {
        self.fds.iter().copied()
    }
}

impl FromIterator<Fd> for FdSet {
    fn from_iter<I: IntoIterator<Item = Fd>>(iter: I) -> Self {
        FdSet {
            fds: iter.into_iter().collect(),
        }
    }
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
