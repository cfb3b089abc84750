//! UDP on the interface: delivery to sockets and the socket calls.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ::udp::{BindError, UdpError, UdpRepr};
use ip::{IpProtocol, Ipv4Repr};

use super::icmp::ErrorKind;
use super::{Interface, SendError, UdpHandle, UdpSocket};
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::error::SocketError;
use crate::memory::{Component, MemoryPressure};

impl From<SendError> for SocketError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NoRoute => SocketError::NetUnreachable,
            SendError::MessageTooBig(m) => SocketError::MessageTooBig(m),
        }
    }
}

/// Most UDP sockets one SO_REUSEADDR group holds.
pub(crate) const MAX_REUSEADDR_GROUP: usize = 64;

impl Interface {
    pub(super) fn process_udp<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        header: Option<&[u8]>,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        let (udp, payload) = match UdpRepr::parse(data, repr.src, repr.dst) {
            Ok(x) => x,
            Err(e) => {
                return self.counters.drop(match e {
                    UdpError::Truncated => DropReason::UdpTruncated,
                    UdpError::BadLength => DropReason::UdpBadLength,
                    UdpError::BadChecksum => DropReason::UdpBadChecksum,
                });
            }
        };
        let local = SocketAddrV4::new(repr.dst, udp.dst_port);
        let remote = SocketAddrV4::new(repr.src, udp.src_port);
        let found = self.udp_lookup(local, remote);
        match found {
            Some(h) => {
                // SO_REUSEADDR group: a broadcast goes to every member
                // (Linux __udp4_lib_mcast_deliver); a unicast datagram to
                // the first that matches, the most recently bound (Linux
                // adds sockets at the head of the hash chain).
                let mut next = Some(h);
                // Bounded by the group's size limit.
                for _ in 0..MAX_REUSEADDR_GROUP {
                    let Some(h) = next else {
                        break;
                    };
                    self.udp_deliver(h, remote, payload);
                    if !to_broadcast {
                        break;
                    }
                    next = self.udp_older_unconnected(h);
                }
            }
            None => {
                self.counters.drop(DropReason::UdpNoSocket);
                // RFC 1122 4.1.3.1: a datagram for a port with no listener
                // SHOULD get ICMP Port Unreachable.
                self.send_icmp_error(
                    now,
                    ErrorKind::PortUnreachable,
                    repr,
                    header,
                    data,
                    to_broadcast,
                    tx,
                );
            }
        }
    }

    /// The socket a datagram from `remote` to `local` goes to: the
    /// table's (a connected socket, else the newest of the group bound to
    /// the address), else in a SO_REUSEADDR group, the newest member not
    /// connected to another peer.
    fn udp_lookup(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<UdpHandle> {
        let found = self.sockets.udp_table.lookup(local, remote, |_| false)?;
        let s = self.sockets.udp_sockets.get(found)?;
        if s.remote.is_none() || s.remote == Some(remote) {
            return Some(found);
        }
        self.udp_older_unconnected(found)
    }

    /// The next older member of `h`'s SO_REUSEADDR group that is not
    /// connected (bounded walk: the group is at most
    /// 64).
    fn udp_older_unconnected(&self, h: UdpHandle) -> Option<UdpHandle> {
        let mut at = self.sockets.udp_sockets.get(h)?.reuse_older;
        for _ in 0..MAX_REUSEADDR_GROUP {
            let s = self.sockets.udp_sockets.get(at?)?;
            if s.remote.is_none() {
                return at;
            }
            at = s.reuse_older;
        }
        None
    }

    /// Queues a datagram on socket `h`.
    fn udp_deliver(&mut self, h: UdpHandle, remote: SocketAddrV4, payload: &[u8]) {
        let may_grow = self.mem.state() != MemoryPressure::Exhausted;
        let Some(socket) = self.sockets.udp_sockets.get_mut(h) else {
            return;
        };
        if !socket.rx.fits(payload.len()) {
            self.counters.drop(DropReason::UdpQueueFull);
        } else if socket.rx.push_within(remote, payload, may_grow) {
            self.counters.udp_delivered += 1;
            self.events.push(super::Event::Udp(h));
            self.udp_recharge(h);
        } else {
            // It fits the socket's buffer; the budget refused.
            self.counters.drop(DropReason::UdpNoMemory);
        }
    }

    /// Records an ICMP-reported error on the connected socket for
    /// `local`->`remote`. Returns whether a socket matched.
    pub(super) fn udp_error(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        error: Option<SocketError>,
    ) -> bool {
        let sockets = &self.sockets.udp_sockets;
        let found = self.sockets.udp_table.lookup(local, remote, |h| {
            sockets.get(h).is_some_and(|s| s.remote.is_some())
        });
        let Some((h, socket)) =
            found.and_then(|h| self.sockets.udp_sockets.get_mut(h).map(|s| (h, s)))
        else {
            return false;
        };
        // Like Linux without IP_RECVERR, only connected sockets hear of it.
        if socket.remote == Some(remote)
            && let Some(e) = error
        {
            socket.error = Some(e);
            self.events.push(super::Event::Udp(h));
        }
        true
    }

    fn check_local(&self, ip: Ipv4Addr) -> Result<(), SocketError> {
        if ip.is_unspecified() || self.ip.is_local(ip) {
            Ok(())
        } else {
            Err(SocketError::AddrNotAvailable)
        }
    }

    fn pick_udp_port(&mut self) -> Result<u16, SocketError> {
        let table = &self.sockets.udp_table;
        ::udp::ephemeral_port(&mut self.rng, |p| table.port_in_use(p))
            .ok_or(SocketError::AddrNotAvailable)
    }

    /// Opens a UDP socket bound to `local` (port 0: an ephemeral port;
    /// address 0.0.0.0: any of ours).
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, SocketError> {
        self.udp_bind_with(local, false)
    }

    /// [`udp_bind`](Self::udp_bind) with SO_REUSEADDR: sockets that all
    /// set it may bind the same address and port (at most 64). A unicast datagram goes to the most
    /// recently bound one (not connected to another peer), as Linux's
    /// lookup finds the head of its hash chain first; a broadcast goes to
    /// every one. Only identical addresses share: a wildcard and a
    /// specific address on one port still conflict (EADDRINUSE).
    pub fn udp_bind_with(
        &mut self,
        local: SocketAddrV4,
        reuseaddr: bool,
    ) -> Result<UdpHandle, SocketError> {
        self.check_local(*local.ip())?;
        let port = match local.port() {
            0 => self.pick_udp_port()?,
            p => p,
        };
        let local = SocketAddrV4::new(*local.ip(), port);
        // An existing binding of exactly this address (the newest of its
        // group): port 0 matches no connection, so the table answers with
        // the bound socket.
        let head = self
            .sockets
            .udp_table
            .lookup(local, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), |_| {
                false
            })
            .filter(|&h| {
                self.sockets
                    .udp_sockets
                    .get(h)
                    .is_some_and(|s| s.local == local)
            });
        if let Some(head) = head {
            if !reuseaddr
                || !self
                    .sockets
                    .udp_sockets
                    .get(head)
                    .is_some_and(|s| s.reuseaddr)
            {
                return Err(SocketError::AddrInUse);
            }
            let mut members = 1;
            let mut at = self
                .sockets
                .udp_sockets
                .get(head)
                .and_then(|s| s.reuse_older);
            while let Some(h) = at
                && members <= MAX_REUSEADDR_GROUP
            {
                members += 1;
                at = self.sockets.udp_sockets.get(h).and_then(|s| s.reuse_older);
            }
            if members >= MAX_REUSEADDR_GROUP {
                return Err(SocketError::NoBufferSpace);
            }
            let mut socket = UdpSocket::new(local, self.sockets.udp_rcvbuf);
            socket.reuseaddr = true;
            socket.reuse_older = Some(head);
            let handle = self.sockets.udp_sockets.insert(socket);
            if let Some(s) = self.sockets.udp_sockets.get_mut(head) {
                s.reuse_newer = Some(handle);
            }
            // The newest member takes the table's binding.
            self.sockets.udp_table.unbind(local, None);
            self.sockets
                .udp_table
                .bind(local, handle)
                .expect("the address was just freed");
            return Ok(handle);
        }
        let mut socket = UdpSocket::new(local, self.sockets.udp_rcvbuf);
        socket.reuseaddr = reuseaddr;
        let handle = self.sockets.udp_sockets.insert(socket);
        if let Err(e) = self.sockets.udp_table.bind(local, handle) {
            self.sockets.udp_sockets.remove(handle);
            return Err(match e {
                BindError::AddrInUse => SocketError::AddrInUse,
                BindError::NoPortsLeft => SocketError::AddrNotAvailable,
            });
        }
        Ok(handle)
    }

    /// Connects a UDP socket: it then sends to and only receives from
    /// `remote`. Connecting again replaces the peer.
    pub fn udp_connect(
        &mut self,
        handle: UdpHandle,
        remote: SocketAddrV4,
    ) -> Result<(), SocketError> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(SocketError::InvalidInput);
        }
        let socket = self
            .sockets
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(old) = socket.remote.take() {
            self.sockets.udp_table.disconnect(socket.local, old);
        }
        socket.remote = Some(remote);
        socket.error = None;
        self.sockets.udp_table.connect(socket.local, remote, handle);
        Ok(())
    }

    /// Dissolves a UDP socket's association (connect with AF_UNSPEC): it
    /// receives from anyone again and needs a destination to send.
    pub fn udp_disconnect(&mut self, handle: UdpHandle) -> Result<(), SocketError> {
        let socket = self
            .sockets
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(old) = socket.remote.take() {
            self.sockets.udp_table.disconnect(socket.local, old);
        }
        socket.error = None;
        Ok(())
    }

    /// The socket behind `handle`.
    pub fn udp_socket(&self, handle: UdpHandle) -> Option<&UdpSocket> {
        self.sockets.udp_sockets.get(handle)
    }

    /// Mutable access to the socket (options).
    pub fn udp_socket_mut(&mut self, handle: UdpHandle) -> Option<&mut UdpSocket> {
        self.sockets.udp_sockets.get_mut(handle)
    }

    /// Sends `data` to `dst` (or to the connected peer when `dst` is None).
    /// Returns the bytes sent. A pending asynchronous error (for instance
    /// ECONNREFUSED after ICMP port unreachable) is reported instead, once.
    pub fn udp_send_to<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        handle: UdpHandle,
        data: &[u8],
        dst: Option<SocketAddrV4>,
        tx: &mut S,
    ) -> Result<usize, SocketError> {
        let socket = self
            .sockets
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(e) = socket.error.take() {
            return Err(e);
        }
        let dst = dst.or(socket.remote).ok_or(SocketError::DestAddrRequired)?;
        if dst.port() == 0 || dst.ip().is_unspecified() {
            return Err(SocketError::InvalidInput);
        }
        if data.len() > UdpRepr::MAX_PAYLOAD {
            return Err(SocketError::MessageTooBig(UdpRepr::MAX_PAYLOAD));
        }
        let udp = UdpRepr {
            src_port: socket.local.port(),
            dst_port: dst.port(),
        };
        // The bound address, or the one the route to `dst` gives (127.0.0.1
        // towards the loopback network).
        let src = match *socket.local.ip() {
            ip if ip.is_unspecified() => self.ip.source_for(*dst.ip()),
            ip => ip,
        };
        let mut repr = Ipv4Repr::new(
            src,
            *dst.ip(),
            IpProtocol::UDP,
            socket.ttl.unwrap_or(self.ip.ttl),
            0,
        );
        repr.dont_fragment = socket.dont_fragment;
        repr.tos = socket.tos;
        let dst_ip = *dst.ip();
        self.ip.send_ipv4(
            &mut self.counters,
            now,
            repr,
            UdpRepr::HEADER_LEN + data.len(),
            |buf| udp.emit(buf, src, dst_ip, data),
            tx,
        )?;
        self.counters.udp_sent += 1;
        Ok(data.len())
    }

    /// Takes the oldest datagram into `buf` (truncating, like recvfrom);
    /// returns its full length and sender. WouldBlock when none is queued;
    /// a pending asynchronous error is reported first.
    pub fn udp_recv_from(
        &mut self,
        handle: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), SocketError> {
        let socket = self
            .sockets
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(e) = socket.error.take() {
            return Err(e);
        }
        let got = socket
            .rx
            .pop(buf)
            .map(|(from, len)| (len, from))
            .ok_or(SocketError::WouldBlock);
        if self.mem.state() != MemoryPressure::Normal {
            socket.rx.release_if_empty();
        }
        self.udp_recharge(handle);
        got
    }

    /// Like [`udp_recv_from`](Self::udp_recv_from) but leaves the datagram
    /// queued (MSG_PEEK). A pending error is still reported, and cleared,
    /// first, as Linux's `__skb_recv_udp` does.
    pub fn udp_peek_from(
        &mut self,
        handle: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), SocketError> {
        let socket = self
            .sockets
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(e) = socket.error.take() {
            return Err(e);
        }
        socket
            .rx
            .peek(buf)
            .map(|(from, len)| (len, from))
            .ok_or(SocketError::WouldBlock)
    }

    /// Charges a UDP socket's queue memory to the budget.
    fn udp_recharge(&mut self, handle: UdpHandle) {
        let Some(socket) = self.sockets.udp_sockets.get_mut(handle) else {
            return;
        };
        let now_used = socket.rx.memory_used();
        let old = std::mem::replace(&mut socket.charged, now_used);
        if old != now_used {
            let changed = self.mem.recharge(Component::Udp, old, now_used);
            self.mem_state_changed(changed);
        }
    }

    /// Closes a UDP socket, discarding what it had queued. In a
    /// SO_REUSEADDR group, the others keep the address.
    pub fn udp_close(&mut self, handle: UdpHandle) {
        if let Some(s) = self.sockets.udp_sockets.remove(handle) {
            if let Some(newer) = s.reuse_newer {
                // Not the table's: unlink it from the list; its own
                // connection goes.
                if let Some(n) = self.sockets.udp_sockets.get_mut(newer) {
                    n.reuse_older = s.reuse_older;
                }
                if let Some(o) = s
                    .reuse_older
                    .and_then(|o| self.sockets.udp_sockets.get_mut(o))
                {
                    o.reuse_newer = Some(newer);
                }
                if let Some(remote) = s.remote {
                    self.sockets.udp_table.disconnect(s.local, remote);
                }
            } else {
                self.sockets.udp_table.unbind(s.local, s.remote);
                if let Some(older) = s.reuse_older {
                    // The next newest takes the binding over.
                    if let Some(o) = self.sockets.udp_sockets.get_mut(older) {
                        o.reuse_newer = None;
                    }
                    let _ = self.sockets.udp_table.bind(s.local, older);
                }
            }
            if s.charged > 0 {
                let changed = self.mem.recharge(Component::Udp, s.charged, 0);
                self.mem_state_changed(changed);
            }
        }
    }
}
