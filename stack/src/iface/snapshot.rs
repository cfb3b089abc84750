//! A snapshot of every socket of an interface, taken on request (for `ss`,
//! the control socket, metrics): it walks the tables once and copies out a
//! few figures per socket; nothing on the packet path keeps it up to date.

use std::net::SocketAddrV4;

use super::Interface;

/// The protocol of a socket in a [`SocketInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// A TCP connection, listener or TIME-WAIT record.
    Tcp,
    /// A UDP socket.
    Udp,
    /// An ICMP echo (ping) socket.
    Icmp,
}

impl SocketKind {
    /// "tcp", "udp" or "icmp".
    pub fn name(self) -> &'static str {
        match self {
            SocketKind::Tcp => "tcp",
            SocketKind::Udp => "udp",
            SocketKind::Icmp => "icmp",
        }
    }
}

/// One socket as `ss` shows it.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// The protocol.
    pub kind: SocketKind,
    /// The state in `ss`'s words: for TCP `LISTEN`, `SYN-SENT`,
    /// `SYN-RECV`, `ESTAB`, `FIN-WAIT-1`, `FIN-WAIT-2`, `CLOSE-WAIT`,
    /// `CLOSING`, `LAST-ACK`, `TIME-WAIT`, `CLOSED`; for UDP `ESTAB`
    /// (connected) or `UNCONN`; for ICMP `UNCONN`.
    pub state: &'static str,
    /// The TCP state (None for UDP and ICMP).
    pub tcp_state: Option<tcp::State>,
    /// Local address (ICMP: our address and the echo identifier as port).
    pub local: SocketAddrV4,
    /// Peer address, when connected.
    pub peer: Option<SocketAddrV4>,
    /// Bytes waiting to be read (listeners: connections waiting to be
    /// accepted, as `ss` shows; ICMP: replies queued).
    pub recv_queue: usize,
    /// Bytes not yet acknowledged or not yet sent (listeners: the backlog
    /// in use by half-open connections).
    pub send_queue: usize,
    /// The application closed it; it finishes in the background.
    pub orphan: bool,
    /// Per-connection statistics (TCP connections, not listeners or
    /// TIME-WAIT records): what `TCP_INFO` reports.
    pub tcp: Option<Box<tcp::TcpStats>>,
}

/// `ss`'s name of a TCP state.
pub fn ss_state_name(state: tcp::State) -> &'static str {
    use tcp::State::*;
    match state {
        Closed => "CLOSED",
        Listen => "LISTEN",
        SynSent => "SYN-SENT",
        SynReceived => "SYN-RECV",
        Established => "ESTAB",
        FinWait1 => "FIN-WAIT-1",
        FinWait2 => "FIN-WAIT-2",
        CloseWait => "CLOSE-WAIT",
        Closing => "CLOSING",
        LastAck => "LAST-ACK",
        TimeWait => "TIME-WAIT",
    }
}

impl Interface {
    /// Every socket: TCP listeners, connections and TIME-WAIT records, UDP
    /// and ICMP sockets, in that order. Walks every table once: for
    /// reports, not the data path.
    pub fn sockets(&self) -> Vec<SocketInfo> {
        let mut out = Vec::with_capacity(
            self.tcp_socket_count()
                + self.sockets.udp_sockets.len()
                + self.sockets.icmp_sockets.len(),
        );
        self.tcp_snapshot(&mut out);
        for (_, u) in self.sockets.udp_sockets.iter() {
            out.push(SocketInfo {
                kind: SocketKind::Udp,
                state: if u.remote.is_some() {
                    "ESTAB"
                } else {
                    "UNCONN"
                },
                tcp_state: None,
                local: u.local,
                peer: u.remote,
                recv_queue: u.rx.bytes(),
                send_queue: 0,
                orphan: false,
                tcp: None,
            });
        }
        let ours = self.cidr().addr();
        for (_, i) in self.sockets.icmp_sockets.iter() {
            out.push(SocketInfo {
                kind: SocketKind::Icmp,
                state: "UNCONN",
                tcp_state: None,
                local: SocketAddrV4::new(ours, i.ident()),
                peer: None,
                recv_queue: i.queued(),
                send_queue: 0,
                orphan: false,
                tcp: None,
            });
        }
        out
    }
}
