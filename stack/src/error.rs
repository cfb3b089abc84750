//! Errors of socket operations, with the errno Linux reports in the same
//! situation.

use std::fmt;
use std::io;

/// Why a socket operation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SocketError {
    /// The handle does not name a live socket (EBADF).
    BadHandle,
    /// The address, port or ICMP identifier is taken (EADDRINUSE).
    AddrInUse,
    /// The address is not one of ours (EADDRNOTAVAIL), or no ephemeral port
    /// is left.
    AddrNotAvailable,
    /// No route covers the destination (ENETUNREACH).
    NetUnreachable,
    /// The destination host is unreachable (EHOSTUNREACH).
    HostUnreachable,
    /// The peer refused: port unreachable, or a TCP reset in reply to a SYN
    /// (ECONNREFUSED).
    ConnectionRefused,
    /// The peer does not speak the protocol (ENOPROTOOPT, as Linux reports
    /// ICMP protocol unreachable).
    ProtocolUnavailable,
    /// The datagram does not fit (EMSGSIZE); carries the MTU that applies.
    MessageTooBig(usize),
    /// Nothing to do without blocking (EAGAIN / EWOULDBLOCK).
    WouldBlock,
    /// An argument is invalid for this socket in its state (EINVAL).
    InvalidInput,
    /// The socket is not connected (ENOTCONN).
    NotConnected,
    /// No destination given for an unconnected socket (EDESTADDRREQ).
    DestAddrRequired,
    /// The peer reset the connection (ECONNRESET).
    ConnectionReset,
    /// The connection timed out (ETIMEDOUT).
    TimedOut,
    /// Writing to a connection whose write side is closed (EPIPE).
    BrokenPipe,
    /// The socket is already connected or listening (EISCONN).
    AlreadyConnected,
    /// The stack's memory budget is exhausted (ENOBUFS).
    NoBufferSpace,
}

impl SocketError {
    /// The Linux errno for this error.
    pub fn errno(self) -> i32 {
        match self {
            SocketError::BadHandle => libc::EBADF,
            SocketError::AddrInUse => libc::EADDRINUSE,
            SocketError::AddrNotAvailable => libc::EADDRNOTAVAIL,
            SocketError::NetUnreachable => libc::ENETUNREACH,
            SocketError::HostUnreachable => libc::EHOSTUNREACH,
            SocketError::ConnectionRefused => libc::ECONNREFUSED,
            SocketError::ProtocolUnavailable => libc::ENOPROTOOPT,
            SocketError::MessageTooBig(_) => libc::EMSGSIZE,
            SocketError::WouldBlock => libc::EAGAIN,
            SocketError::InvalidInput => libc::EINVAL,
            SocketError::NotConnected => libc::ENOTCONN,
            SocketError::DestAddrRequired => libc::EDESTADDRREQ,
            SocketError::ConnectionReset => libc::ECONNRESET,
            SocketError::TimedOut => libc::ETIMEDOUT,
            SocketError::BrokenPipe => libc::EPIPE,
            SocketError::AlreadyConnected => libc::EISCONN,
            SocketError::NoBufferSpace => libc::ENOBUFS,
        }
    }
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::MessageTooBig(mtu) => write!(f, "message too long (MTU {mtu})"),
            other => write!(f, "{}", io::Error::from_raw_os_error(other.errno())),
        }
    }
}

impl std::error::Error for SocketError {}

impl From<tcp::TcpError> for SocketError {
    fn from(e: tcp::TcpError) -> Self {
        match e {
            tcp::TcpError::Refused => SocketError::ConnectionRefused,
            tcp::TcpError::Reset => SocketError::ConnectionReset,
            tcp::TcpError::TimedOut => SocketError::TimedOut,
            tcp::TcpError::WouldBlock => SocketError::WouldBlock,
            tcp::TcpError::Closed => SocketError::BrokenPipe,
            // A reset in CLOSE-WAIT: EPIPE, as Linux's tcp_reset.
            tcp::TcpError::ResetAfterFin => SocketError::BrokenPipe,
            tcp::TcpError::NotConnected => SocketError::NotConnected,
            tcp::TcpError::NoMemory => SocketError::NoBufferSpace,
            tcp::TcpError::NetUnreachable => SocketError::NetUnreachable,
            tcp::TcpError::HostUnreachable => SocketError::HostUnreachable,
            tcp::TcpError::ProtocolUnavailable => SocketError::ProtocolUnavailable,
        }
    }
}

impl From<SocketError> for io::Error {
    fn from(e: SocketError) -> io::Error {
        io::Error::from_raw_os_error(e.errno())
    }
}

#[cfg(test)]
mod tests;
