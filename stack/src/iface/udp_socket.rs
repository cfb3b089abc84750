//! UDP sockets.

use std::net::SocketAddrV4;

use udp::RecvQueue;

use crate::error::SocketError;
use crate::slab::Handle;

/// Handle of a UDP socket.
pub type UdpHandle = Handle<UdpSocket>;

/// Default receive buffer, as Linux's `net.core.rmem_default`.
pub const DEFAULT_RCVBUF: usize = 212_992;

/// A UDP socket's state on the interface.
#[derive(Debug)]
pub struct UdpSocket {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: Option<SocketAddrV4>,
    pub(crate) rx: RecvQueue<SocketAddrV4>,
    /// An asynchronous error (from ICMP) reported on the next call.
    pub(crate) error: Option<SocketError>,
    pub(crate) dont_fragment: bool,
    pub(crate) ttl: Option<u8>,
    /// Bytes charged to the memory budget for its queue.
    pub(crate) charged: usize,
    /// IP_TOS of its datagrams.
    pub(crate) tos: u8,
    /// Bound with SO_REUSEADDR.
    pub(crate) reuseaddr: bool,
    /// The SO_REUSEADDR group sharing its address, as a list from the most
    /// recently bound socket (the one the table holds) to the oldest:
    /// the next older and the next newer member.
    pub(crate) reuse_older: Option<UdpHandle>,
    pub(crate) reuse_newer: Option<UdpHandle>,
}

impl UdpSocket {
    pub(crate) fn new(local: SocketAddrV4, rcvbuf: usize) -> Self {
        UdpSocket {
            local,
            remote: None,
            rx: RecvQueue::new(rcvbuf),
            error: None,
            dont_fragment: false,
            ttl: None,
            charged: 0,
            tos: 0,
            reuseaddr: false,
            reuse_older: None,
            reuse_newer: None,
        }
    }

    /// The local address (port 0 until the socket is bound).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// The peer of a connected socket.
    pub fn peer_addr(&self) -> Option<SocketAddrV4> {
        self.remote
    }

    /// True when a datagram is queued.
    pub fn can_recv(&self) -> bool {
        !self.rx.is_empty()
    }

    /// Datagrams queued.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// The pending asynchronous error, if any (not cleared).
    pub fn pending_error(&self) -> Option<SocketError> {
        self.error
    }

    /// Takes the pending asynchronous error (SO_ERROR reads clear it).
    pub fn take_error(&mut self) -> Option<SocketError> {
        self.error.take()
    }

    /// Length of the next queued datagram (FIONREAD), if any.
    pub fn next_len(&self) -> Option<usize> {
        self.rx.peek_len()
    }

    /// The receive buffer size in bytes.
    pub fn recv_buffer_size(&self) -> usize {
        self.rx.capacity()
    }

    /// Sets the receive buffer size (SO_RCVBUF).
    pub fn set_recv_buffer_size(&mut self, bytes: usize) {
        self.rx.set_capacity(bytes);
    }

    /// Sets the DF flag on datagrams (Linux IP_PMTUDISC_DO): too-large
    /// datagrams fail with EMSGSIZE instead of being fragmented.
    pub fn set_dont_fragment(&mut self, on: bool) {
        self.dont_fragment = on;
    }

    /// Sets the IPv4 TOS byte of this socket's datagrams (IP_TOS; all
    /// eight bits, as Linux keeps them for datagram sockets).
    pub fn set_tos(&mut self, tos: u8) {
        self.tos = tos;
    }

    /// The IPv4 TOS byte of this socket's datagrams.
    pub fn tos(&self) -> u8 {
        self.tos
    }

    /// True when bound with SO_REUSEADDR.
    pub fn reuseaddr(&self) -> bool {
        self.reuseaddr
    }

    /// Overrides the interface TTL for this socket's datagrams.
    pub fn set_ttl(&mut self, ttl: Option<u8>) {
        self.ttl = ttl;
    }
}
