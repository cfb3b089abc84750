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
                return self.ip.counters.drop(match e {
                    UdpError::Truncated => DropReason::UdpTruncated,
                    UdpError::BadLength => DropReason::UdpBadLength,
                    UdpError::BadChecksum => DropReason::UdpBadChecksum,
                });
            }
        };
        let local = SocketAddrV4::new(repr.dst, udp.dst_port);
        let remote = SocketAddrV4::new(repr.src, udp.src_port);
        let sockets = &self.udp_sockets;
        let found = self.udp_table.lookup(local, remote, |h| {
            sockets.get(h).is_some_and(|s| s.remote.is_some())
        });
        let may_grow = self.mem.state() != MemoryPressure::Exhausted;
        match found.and_then(|h| self.udp_sockets.get_mut(h).map(|s| (h, s))) {
            Some((h, socket)) => {
                if !socket.rx.fits(payload.len()) {
                    self.ip.counters.drop(DropReason::UdpQueueFull);
                } else if socket.rx.push_within(remote, payload, may_grow) {
                    self.ip.counters.udp_delivered += 1;
                    self.events.push(super::Event::Udp(h));
                    self.udp_recharge(h);
                } else {
                    // It fits the socket's buffer; the budget refused.
                    self.ip.counters.drop(DropReason::UdpNoMemory);
                }
            }
            None => {
                self.ip.counters.drop(DropReason::UdpNoSocket);
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

    /// Records an ICMP-reported error on the connected socket for
    /// `local`->`remote`. Returns whether a socket matched.
    pub(super) fn udp_error(
        &mut self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        error: Option<SocketError>,
    ) -> bool {
        let sockets = &self.udp_sockets;
        let found = self.udp_table.lookup(local, remote, |h| {
            sockets.get(h).is_some_and(|s| s.remote.is_some())
        });
        let Some((h, socket)) = found.and_then(|h| self.udp_sockets.get_mut(h).map(|s| (h, s)))
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
        if ip.is_unspecified() || ip == self.ip.addr() {
            Ok(())
        } else {
            Err(SocketError::AddrNotAvailable)
        }
    }

    fn pick_udp_port(&mut self) -> Result<u16, SocketError> {
        let table = &self.udp_table;
        ::udp::ephemeral_port(&mut self.rng, |p| table.port_in_use(p))
            .ok_or(SocketError::AddrNotAvailable)
    }

    /// Opens a UDP socket bound to `local` (port 0: an ephemeral port;
    /// address 0.0.0.0: any of ours).
    pub fn udp_bind(&mut self, local: SocketAddrV4) -> Result<UdpHandle, SocketError> {
        self.check_local(*local.ip())?;
        let port = match local.port() {
            0 => self.pick_udp_port()?,
            p => p,
        };
        let local = SocketAddrV4::new(*local.ip(), port);
        let handle = self
            .udp_sockets
            .insert(UdpSocket::new(local, self.udp_rcvbuf));
        if let Err(e) = self.udp_table.bind(local, handle) {
            self.udp_sockets.remove(handle);
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
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(old) = socket.remote.take() {
            self.udp_table.disconnect(socket.local, old);
        }
        socket.remote = Some(remote);
        socket.error = None;
        self.udp_table.connect(socket.local, remote, handle);
        Ok(())
    }

    /// Dissolves a UDP socket's association (connect with AF_UNSPEC): it
    /// receives from anyone again and needs a destination to send.
    pub fn udp_disconnect(&mut self, handle: UdpHandle) -> Result<(), SocketError> {
        let socket = self
            .udp_sockets
            .get_mut(handle)
            .ok_or(SocketError::BadHandle)?;
        if let Some(old) = socket.remote.take() {
            self.udp_table.disconnect(socket.local, old);
        }
        socket.error = None;
        Ok(())
    }

    /// The socket behind `handle`.
    pub fn udp_socket(&self, handle: UdpHandle) -> Option<&UdpSocket> {
        self.udp_sockets.get(handle)
    }

    /// Mutable access to the socket (options).
    pub fn udp_socket_mut(&mut self, handle: UdpHandle) -> Option<&mut UdpSocket> {
        self.udp_sockets.get_mut(handle)
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
        let mut repr = Ipv4Repr::new(
            self.ip.addr(),
            *dst.ip(),
            IpProtocol::UDP,
            socket.ttl.unwrap_or(self.ip.ttl),
            0,
        );
        repr.dont_fragment = socket.dont_fragment;
        let (src, dst_ip) = (self.ip.addr(), *dst.ip());
        self.ip.send_ipv4(
            now,
            repr,
            UdpRepr::HEADER_LEN + data.len(),
            |buf| udp.emit(buf, src, dst_ip, data),
            tx,
        )?;
        self.ip.counters.udp_sent += 1;
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

    /// Charges a UDP socket's queue memory to the budget.
    fn udp_recharge(&mut self, handle: UdpHandle) {
        let Some(socket) = self.udp_sockets.get_mut(handle) else {
            return;
        };
        let now_used = socket.rx.memory_used();
        let old = std::mem::replace(&mut socket.charged, now_used);
        if old != now_used {
            let changed = self.mem.recharge(Component::Udp, old, now_used);
            self.mem_state_changed(changed);
        }
    }

    /// Closes a UDP socket, discarding what it had queued.
    pub fn udp_close(&mut self, handle: UdpHandle) {
        if let Some(s) = self.udp_sockets.remove(handle) {
            self.udp_table.unbind(s.local, s.remote);
            if s.charged > 0 {
                let changed = self.mem.recharge(Component::Udp, s.charged, 0);
                self.mem_state_changed(changed);
            }
        }
    }
}
