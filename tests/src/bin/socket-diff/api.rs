//! The BSD calls the scenarios make, as one trait with two implementations
//! (Linux kernel sockets, ustack sockets). Errors are plain errno values.

use std::net::SocketAddrV4;
use std::time::Duration;

/// A call's result: the value, or the errno.
pub type R<T> = Result<T, i32>;

/// The socket type of socket().
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_STREAM (TCP).
    Stream,
    /// SOCK_DGRAM (UDP).
    Dgram,
}

/// A socket option with the value to set.
#[derive(Clone, Copy, Debug)]
pub enum Opt {
    ReuseAddr(bool),
    ReusePort(bool),
    Broadcast(bool),
    RcvTimeo(Duration),
    SndTimeo(Duration),
    /// SO_LINGER: `None` off, `Some(secs)` on.
    Linger(Option<u32>),
    RcvLowat(i32),
    NoDelay(bool),
    MaxSeg(i32),
    Cork(bool),
    QuickAck(bool),
    /// TCP_USER_TIMEOUT, milliseconds.
    UserTimeout(u32),
    /// TCP_DEFER_ACCEPT, seconds.
    DeferAccept(u32),
    Tos(u8),
    Ttl(u8),
    /// TCP_KEEPIDLE, seconds.
    KeepIdle(i32),
    /// TCP_KEEPINTVL, seconds.
    KeepIntvl(i32),
    /// TCP_KEEPCNT.
    KeepCnt(i32),
}

/// An option to read; getsockopt returns it as an integer (booleans 0/1,
/// SO_ERROR the errno, SO_LINGER the seconds or -1 when off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptName {
    Error,
    Type,
    AcceptConn,
    ReuseAddr,
    ReusePort,
    Broadcast,
    Linger,
    RcvLowat,
    NoDelay,
    MaxSeg,
    Cork,
    QuickAck,
    UserTimeout,
    DeferAccept,
    Tos,
    Ttl,
    KeepIdle,
    KeepIntvl,
    KeepCnt,
}

impl OptName {
    /// The C name, for the trace.
    pub fn c_name(self) -> &'static str {
        match self {
            OptName::Error => "SO_ERROR",
            OptName::Type => "SO_TYPE",
            OptName::AcceptConn => "SO_ACCEPTCONN",
            OptName::ReuseAddr => "SO_REUSEADDR",
            OptName::ReusePort => "SO_REUSEPORT",
            OptName::Broadcast => "SO_BROADCAST",
            OptName::Linger => "SO_LINGER",
            OptName::RcvLowat => "SO_RCVLOWAT",
            OptName::NoDelay => "TCP_NODELAY",
            OptName::MaxSeg => "TCP_MAXSEG",
            OptName::Cork => "TCP_CORK",
            OptName::QuickAck => "TCP_QUICKACK",
            OptName::UserTimeout => "TCP_USER_TIMEOUT",
            OptName::DeferAccept => "TCP_DEFER_ACCEPT",
            OptName::Tos => "IP_TOS",
            OptName::Ttl => "IP_TTL",
            OptName::KeepIdle => "TCP_KEEPIDLE",
            OptName::KeepIntvl => "TCP_KEEPINTVL",
            OptName::KeepCnt => "TCP_KEEPCNT",
        }
    }
}

impl Opt {
    /// `SO_X=value`, for the trace.
    pub fn show(&self) -> String {
        match *self {
            Opt::ReuseAddr(v) => format!("SO_REUSEADDR={}", v as i32),
            Opt::ReusePort(v) => format!("SO_REUSEPORT={}", v as i32),
            Opt::Broadcast(v) => format!("SO_BROADCAST={}", v as i32),
            Opt::RcvTimeo(d) => format!("SO_RCVTIMEO={}ms", d.as_millis()),
            Opt::SndTimeo(d) => format!("SO_SNDTIMEO={}ms", d.as_millis()),
            Opt::Linger(l) => format!("SO_LINGER={l:?}"),
            Opt::RcvLowat(v) => format!("SO_RCVLOWAT={v}"),
            Opt::NoDelay(v) => format!("TCP_NODELAY={}", v as i32),
            Opt::MaxSeg(v) => format!("TCP_MAXSEG={v}"),
            Opt::Cork(v) => format!("TCP_CORK={}", v as i32),
            Opt::QuickAck(v) => format!("TCP_QUICKACK={}", v as i32),
            Opt::UserTimeout(v) => format!("TCP_USER_TIMEOUT={v}"),
            Opt::DeferAccept(v) => format!("TCP_DEFER_ACCEPT={v}"),
            Opt::Tos(v) => format!("IP_TOS={v:#x}"),
            Opt::Ttl(v) => format!("IP_TTL={v}"),
            Opt::KeepIdle(v) => format!("TCP_KEEPIDLE={v}"),
            Opt::KeepIntvl(v) => format!("TCP_KEEPINTVL={v}"),
            Opt::KeepCnt(v) => format!("TCP_KEEPCNT={v}"),
        }
    }
}

/// ioctl requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl {
    /// FIONREAD (SIOCINQ): bytes (TCP) or the next datagram's size (UDP).
    FionRead,
    /// SIOCOUTQ: bytes in the send queue not yet acknowledged.
    SiocOutq,
}

/// The calls. `&self` and `Sync` so a scenario can block one call in a
/// second thread. Stream sends always behave as with MSG_NOSIGNAL.
pub trait Api: Sync {
    /// socket(AF_INET, kind [| SOCK_NONBLOCK], 0).
    fn socket(&self, kind: Kind, nonblock: bool) -> R<i32>;
    fn bind(&self, fd: i32, addr: SocketAddrV4) -> R<()>;
    fn listen(&self, fd: i32, backlog: i32) -> R<()>;
    fn accept(&self, fd: i32) -> R<(i32, SocketAddrV4)>;
    /// accept4(fd, SOCK_NONBLOCK or 0).
    fn accept4(&self, fd: i32, nonblock: bool) -> R<(i32, SocketAddrV4)>;
    fn connect(&self, fd: i32, addr: SocketAddrV4) -> R<()>;
    /// connect() with an AF_UNSPEC address: dissolves the association.
    fn disconnect(&self, fd: i32) -> R<()>;
    fn send(&self, fd: i32, buf: &[u8], flags: i32) -> R<usize>;
    /// recv(); the count may exceed `buf.len()` with MSG_TRUNC.
    fn recv(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<usize>;
    fn sendto(&self, fd: i32, buf: &[u8], addr: SocketAddrV4) -> R<usize>;
    fn recvfrom(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<(usize, SocketAddrV4)>;
    /// shutdown(fd, SHUT_RD/SHUT_WR/SHUT_RDWR).
    fn shutdown(&self, fd: i32, how: i32) -> R<()>;
    fn close(&self, fd: i32) -> R<()>;
    fn setsockopt(&self, fd: i32, opt: Opt) -> R<()>;
    fn getsockopt(&self, fd: i32, name: OptName) -> R<i64>;
    fn getsockname(&self, fd: i32) -> R<SocketAddrV4>;
    fn getpeername(&self, fd: i32) -> R<SocketAddrV4>;
    /// poll() on one descriptor: the revents.
    fn poll(&self, fd: i32, events: i16, timeout: Duration) -> R<i16>;
    /// fcntl(F_SETFL, O_NONBLOCK on/off).
    fn set_nonblocking(&self, fd: i32, on: bool) -> R<()>;
    /// fcntl(F_GETFL) & O_NONBLOCK.
    fn nonblocking(&self, fd: i32) -> R<bool>;
    fn ioctl(&self, fd: i32, req: Ioctl) -> R<usize>;
    fn dup(&self, fd: i32) -> R<i32>;
    fn readv(&self, fd: i32, bufs: &mut [&mut [u8]]) -> R<usize>;
    fn writev(&self, fd: i32, bufs: &[&[u8]]) -> R<usize>;
}

/// The symbolic name of an errno.
pub fn errno_name(e: i32) -> String {
    let s = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        0 => "0",
        _ => return format!("errno{e}"),
    };
    s.to_string()
}

/// poll() flags as names, `0` for none.
pub fn revents_name(r: i16) -> String {
    const NAMES: &[(i16, &str)] = &[
        (libc::POLLIN, "IN"),
        (libc::POLLPRI, "PRI"),
        (libc::POLLOUT, "OUT"),
        (libc::POLLERR, "ERR"),
        (libc::POLLHUP, "HUP"),
        (libc::POLLNVAL, "NVAL"),
        (libc::POLLRDHUP, "RDHUP"),
    ];
    let mut out: Vec<String> = NAMES
        .iter()
        .filter(|(b, _)| r & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = r & !NAMES.iter().fold(0, |a, (b, _)| a | b);
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    if out.is_empty() {
        "0".into()
    } else {
        out.join("|")
    }
}
