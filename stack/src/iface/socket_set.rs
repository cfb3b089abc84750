//! The socket tables of an interface, apart from the interface itself
//! (as smoltcp keeps its `SocketSet` apart from its `Interface`): TCP
//! connections, listeners and TIME-WAIT records with their demultiplexing
//! ([`TcpTable`]), UDP sockets and their port table, ICMP echo sockets by
//! identifier.
//!
//! The protocol code (`tcp/`, `udp`, `icmp`) works on these tables through
//! the [`Interface`](super::Interface), which owns one `SocketSet` beside
//! the layers below (the IP layer, reassembly) and the counters; keeping
//! the tables in one member lets that code borrow the sockets and the
//! layers below independently.

use std::collections::HashMap;

use super::tcp::TcpTable;
use super::{IcmpHandle, IcmpSocket, UdpHandle, UdpSocket};
use crate::slab::Slab;

/// Every socket of one interface.
pub(crate) struct SocketSet {
    /// TCP: connections, listeners, TIME-WAIT records, timers.
    pub(crate) tcp: TcpTable,
    /// UDP sockets.
    pub(crate) udp_sockets: Slab<UdpSocket>,
    /// UDP demultiplexing: local (and connected remote) addresses.
    pub(crate) udp_table: ::udp::UdpTable<UdpHandle>,
    /// Receive buffer of new UDP sockets, in bytes.
    pub(crate) udp_rcvbuf: usize,
    /// ICMP echo sockets.
    pub(crate) icmp_sockets: Slab<IcmpSocket>,
    /// ICMP echo sockets by echo identifier.
    pub(crate) icmp_by_ident: HashMap<u16, IcmpHandle>,
}

impl SocketSet {
    /// No sockets yet; `tcp` is the TCP table (with its configuration and
    /// secrets), `udp_rcvbuf` the receive buffer of new UDP sockets.
    pub(crate) fn new(tcp: TcpTable, udp_rcvbuf: usize) -> SocketSet {
        SocketSet {
            tcp,
            udp_sockets: Slab::new(),
            udp_table: ::udp::UdpTable::new(),
            udp_rcvbuf,
            icmp_sockets: Slab::new(),
            icmp_by_ident: HashMap::new(),
        }
    }
}
