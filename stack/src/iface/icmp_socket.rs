//! ICMP echo sockets, in the manner of Linux "ping sockets": bound to an
//! identifier, they send echo requests and receive the matching replies.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::slab::Handle;

/// Handle of an ICMP echo socket.
pub type IcmpHandle = Handle<IcmpSocket>;

/// Replies a socket holds before new ones are dropped.
const RX_LIMIT: usize = 256;

/// An echo reply received by a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// The identifier (the socket's).
    pub ident: u16,
    /// The sequence number echoed back.
    pub seq: u16,
    /// TTL of the reply datagram.
    pub ttl: u8,
    /// The data echoed back.
    pub data: Vec<u8>,
    /// When the reply arrived.
    pub received_at: Instant,
}

/// An ICMP echo socket.
#[derive(Debug)]
pub struct IcmpSocket {
    ident: u16,
    rx: VecDeque<EchoReply>,
}

impl IcmpSocket {
    pub(crate) fn new(ident: u16) -> Self {
        IcmpSocket {
            ident,
            rx: VecDeque::new(),
        }
    }

    /// The identifier this socket owns.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Takes the oldest reply.
    pub fn recv(&mut self) -> Option<EchoReply> {
        self.rx.pop_front()
    }

    /// Replies waiting.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// True when a reply is waiting.
    pub fn can_recv(&self) -> bool {
        !self.rx.is_empty()
    }

    pub(crate) fn push(&mut self, reply: EchoReply) -> bool {
        if self.rx.len() >= RX_LIMIT {
            return false;
        }
        self.rx.push_back(reply);
        true
    }
}
