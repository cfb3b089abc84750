//! TCP on the interface: the connection table (hash of the 4-tuple, then
//! the listener by local address -- never a scan of all connections),
//! listeners with bounded SYN and accept queues, the timer queue, resets for
//! segments that belong to nothing, and the socket calls.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ip::{IpProtocol, Ipv4Repr};
use tcp::{Connection, Input, IsnGenerator, SegmentError, TcpConfig, TcpRepr};

use super::{Interface, IpLayer};
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::error::SocketError;
use crate::slab::{Handle, Slab};

/// Handle of a TCP connection.
pub type TcpHandle = Handle<TcpSocket>;
/// Handle of a TCP listener.
pub type ListenerHandle = Handle<TcpListener>;

/// A connection and its bookkeeping on the interface.
#[derive(Debug)]
pub struct TcpSocket {
    conn: Connection,
    /// The listener whose SYN queue holds this connection until it is
    /// established.
    embryonic_of: Option<ListenerHandle>,
    /// The application let go of it: remove once it has closed.
    orphan: bool,
    /// Present in the 4-tuple table.
    linked: bool,
    /// The earliest timer entry pending for it in the heap.
    scheduled: Option<Instant>,
    /// In the ready list.
    queued: bool,
    /// An event for it is waiting in the event list.
    event_pending: bool,
}

impl TcpSocket {
    /// The connection (state, statistics, readiness).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A listening socket.
#[derive(Debug)]
pub struct TcpListener {
    local: SocketAddrV4,
    backlog: usize,
    syn_queue: usize,
    accept_queue: VecDeque<TcpHandle>,
    cfg: TcpConfig,
    dropped_syns: u64,
}

impl TcpListener {
    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Connections waiting to be accepted.
    pub fn pending(&self) -> usize {
        self.accept_queue.len()
    }

    /// Connections still in the handshake.
    pub fn embryonic(&self) -> usize {
        self.syn_queue
    }

    /// SYNs dropped because a queue was full.
    pub fn dropped_syns(&self) -> u64 {
        self.dropped_syns
    }

    /// The configuration accepted connections inherit (buffers, options).
    pub fn config_mut(&mut self) -> &mut TcpConfig {
        &mut self.cfg
    }
}

/// The TCP state of an interface.
pub(crate) struct TcpTable {
    socks: Slab<TcpSocket>,
    by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), TcpHandle>,
    listeners: Slab<TcpListener>,
    by_local: HashMap<SocketAddrV4, ListenerHandle>,
    /// Local ports used by connections (for ephemeral port choice).
    ports: HashMap<u16, u32>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    ready: Vec<TcpHandle>,
    /// The ready list being worked on (kept to reuse its memory).
    servicing: Vec<TcpHandle>,
    isn: IsnGenerator,
    epoch: Instant,
    pub(crate) cfg: TcpConfig,
}

impl TcpTable {
    pub(crate) fn new(cfg: TcpConfig, isn_key: (u64, u64), epoch: Instant) -> Self {
        TcpTable {
            socks: Slab::new(),
            by_tuple: HashMap::new(),
            listeners: Slab::new(),
            by_local: HashMap::new(),
            ports: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: Vec::new(),
            servicing: Vec::new(),
            isn: IsnGenerator::new(isn_key, epoch),
            epoch,
            cfg,
        }
    }

    /// When the table next needs attention.
    pub(crate) fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn link(&mut self, h: TcpHandle, local: SocketAddrV4, remote: SocketAddrV4) {
        self.by_tuple.insert((local, remote), h);
        *self.ports.entry(local.port()).or_insert(0) += 1;
    }

    fn unlink(&mut self, h: TcpHandle) {
        let Some(sock) = self.socks.get_mut(h) else {
            return;
        };
        if !sock.linked {
            return;
        }
        sock.linked = false;
        let key = (sock.conn.local(), sock.conn.remote());
        if self.by_tuple.get(&key) == Some(&h) {
            self.by_tuple.remove(&key);
        }
        if let Some(n) = self.ports.get_mut(&key.0.port()) {
            *n -= 1;
            if *n == 0 {
                self.ports.remove(&key.0.port());
            }
        }
    }

    fn listener_for(&self, local: SocketAddrV4) -> Option<ListenerHandle> {
        self.by_local
            .get(&local)
            .or_else(|| {
                self.by_local
                    .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
            })
            .copied()
    }

    /// Number of connections in the table (any state).
    pub(crate) fn len(&self) -> usize {
        self.socks.len()
    }
}

/// Sends one TCP segment from `src` over IP (DF set: TCP relies on path MTU
/// discovery). Returns whether it was handed to the link.
#[allow(clippy::too_many_arguments)]
fn emit_segment<S: FrameSink + ?Sized>(
    ip: &mut IpLayer,
    now: Instant,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &TcpRepr,
    a: &[u8],
    b: &[u8],
    tx: &mut S,
) -> bool {
    let hlen = seg.header_len();
    let total = hlen + a.len() + b.len();
    let mut repr = Ipv4Repr::new(src, dst, IpProtocol::TCP, ip.ttl, 0);
    repr.dont_fragment = true;
    let result = ip.send_ipv4(
        now,
        repr,
        total,
        |buf| {
            seg.emit_header(buf);
            buf[hlen..hlen + a.len()].copy_from_slice(a);
            buf[hlen + a.len()..total].copy_from_slice(b);
            tcp::fill_checksum(&mut buf[..total], src, dst);
        },
        tx,
    );
    if result.is_ok() {
        ip.counters.tcp_segments_out += 1;
    }
    result.is_ok()
}

/// Sends a TCP super segment from `src`: the device cuts it into segments
/// of `mss` payload bytes (see [`crate::device::gso`]).
#[allow(clippy::too_many_arguments)]
fn emit_super_segment<S: FrameSink + ?Sized>(
    ip: &mut IpLayer,
    now: Instant,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &TcpRepr,
    a: &[u8],
    b: &[u8],
    mss: usize,
    tx: &mut S,
) -> bool {
    let hlen = seg.header_len();
    let total = hlen + a.len() + b.len();
    let mut repr = Ipv4Repr::new(src, dst, IpProtocol::TCP, ip.ttl, 0);
    repr.dont_fragment = true;
    let result = ip.send_ipv4_segmented(
        now,
        repr,
        total,
        mss,
        |buf| {
            seg.emit_header(buf);
            buf[hlen..hlen + a.len()].copy_from_slice(a);
            buf[hlen + a.len()..total].copy_from_slice(b);
            crate::device::gso::fill_partial_checksum(&mut buf[..total], src, dst, total);
        },
        tx,
    );
    if result.is_ok() {
        ip.counters.tcp_segments_out += 1;
    }
    result.is_ok()
}

/// Largest super segment built for a device with segmentation offload: an
/// IPv4 packet of 64 KiB less room for the largest headers.
const MAX_SUPER_SEGMENT: usize = 65_535 - 20 - 60;

impl Interface {
    /// Handles a TCP segment for us.
    pub(super) fn process_tcp<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        // RFC 1122 4.2.3.10: TCP is unicast only.
        if to_broadcast {
            return self.ip.counters.drop(DropReason::TcpToBroadcast);
        }
        let parsed = if self.rx_checksum_trusted {
            TcpRepr::parse_unverified(data)
        } else {
            TcpRepr::parse(data, repr.src, repr.dst)
        };
        let (seg, payload) = match parsed {
            Ok(x) => x,
            Err(e) => {
                return self.ip.counters.drop(match e {
                    SegmentError::Truncated => DropReason::TcpTruncated,
                    SegmentError::BadDataOffset => DropReason::TcpBadOffset,
                    SegmentError::BadOption => DropReason::TcpBadOption,
                    SegmentError::BadChecksum => DropReason::TcpBadChecksum,
                });
            }
        };
        self.ip.counters.tcp_segments_in += 1;
        let local = SocketAddrV4::new(repr.dst, seg.dst_port);
        let remote = SocketAddrV4::new(repr.src, seg.src_port);
        if let Some(&h) = self.tcp.by_tuple.get(&(local, remote)) {
            let input = self
                .tcp
                .socks
                .get_mut(h)
                .map(|s| s.conn.handle_segment(now, &seg, payload));
            match input {
                Some(Input::Done) => {
                    // Transmission (ACKs, data the ACK released) waits for
                    // the end of the receive batch: one ACK then covers every
                    // segment of this connection in the batch, which halves
                    // or better the frames (and device writes) per byte. The
                    // application hears of the change at once, so its reply
                    // can share those frames.
                    self.tcp_after_change(h);
                    self.tcp_touch(h);
                    return;
                }
                Some(Input::Reincarnate) => {
                    // The TIME-WAIT incarnation yields to the new SYN.
                    self.tcp.unlink(h);
                    self.tcp_release(h);
                }
                None => {}
            }
        }
        if let Some(lh) = self.tcp.listener_for(local) {
            return self.tcp_listen_input(now, lh, local, remote, &seg, tx);
        }
        // RFC 9293 3.10.7.1: "If the state is CLOSED (i.e., TCB does not
        // exist), then ... a reset is sent in response to any incoming
        // segment except another reset."
        self.ip.counters.drop(DropReason::TcpNoSocket);
        if let Some(rst) = tcp::reset_for(&seg, payload.len()) {
            self.ip.counters.tcp_resets_sent += 1;
            emit_segment(&mut self.ip, now, repr.dst, repr.src, &rst, &[], &[], tx);
        }
    }

    /// A segment for a listener (RFC 9293 3.10.7.2, LISTEN state).
    fn tcp_listen_input<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
        tx: &mut S,
    ) {
        if seg.flags.rst() {
            // "An incoming RST segment could not be valid ... ignore it."
            return self.ip.counters.drop(DropReason::TcpListenBadSegment);
        }
        if seg.flags.ack() {
            // "Any acknowledgment is bad if it arrives on a connection still
            // in the LISTEN state. An acceptable reset segment should be
            // formed for any arriving ACK-bearing segment."
            self.ip.counters.drop(DropReason::TcpListenBadSegment);
            if let Some(rst) = tcp::reset_for(seg, 0) {
                self.ip.counters.tcp_resets_sent += 1;
                emit_segment(
                    &mut self.ip,
                    now,
                    *local.ip(),
                    *remote.ip(),
                    &rst,
                    &[],
                    &[],
                    tx,
                );
            }
            return;
        }
        if !seg.flags.syn() {
            return self.ip.counters.drop(DropReason::TcpListenBadSegment);
        }
        let Some(listener) = self.tcp.listeners.get_mut(lh) else {
            return;
        };
        // Bounded queues: when full, the SYN is dropped (the client
        // retransmits), not answered.
        if listener.syn_queue >= listener.backlog || listener.accept_queue.len() >= listener.backlog
        {
            listener.dropped_syns += 1;
            return self.ip.counters.drop(DropReason::TcpListenOverflow);
        }
        listener.syn_queue += 1;
        let cfg = listener.cfg.clone();
        let iss = self.tcp.isn.isn(now, local, remote);
        let ts_offset = self.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let conn = Connection::accept(
            &cfg,
            local,
            remote,
            iss,
            ts_offset,
            self.tcp.epoch,
            now,
            seg,
        );
        let h = self.tcp.socks.insert(TcpSocket {
            conn,
            embryonic_of: Some(lh),
            orphan: false,
            linked: true,
            scheduled: None,
            queued: false,
            event_pending: false,
        });
        self.tcp.link(h, local, remote);
        self.ip.counters.tcp_passive_opens += 1;
        self.tcp_service(now, h, tx);
    }

    /// Lets a connection transmit, moves it through its life cycle (SYN
    /// queue -> accept queue; closed -> removed) and schedules its timer.
    fn tcp_service<S: FrameSink + ?Sized>(&mut self, now: Instant, h: TcpHandle, tx: &mut S) {
        let src = self.ip.addr();
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        let dst = *sock.conn.remote().ip();
        let mtu = self.ip.path_mtu(now, dst);
        let ip = &mut self.ip;
        let burst = if ip.segmentation_offload {
            MAX_SUPER_SEGMENT
        } else {
            0
        };
        sock.conn
            .poll_transmit_burst(now, mtu, burst, |seg, a, b, mss| {
                if a.len() + b.len() > mss {
                    emit_super_segment(ip, now, src, dst, seg, a, b, mss, tx)
                } else {
                    emit_segment(ip, now, src, dst, seg, a, b, tx)
                }
            });
        self.tcp_after_change(h);
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        if sock.conn.is_closed() {
            self.tcp.unlink(h);
            let sock = self.tcp.socks.get(h).expect("present");
            if sock.embryonic_of.is_some() || sock.orphan {
                self.tcp_release(h);
            }
            return;
        }
        self.tcp_schedule(now, h);
    }

    /// After input or timers changed a connection: an established
    /// connection moves from its listener's SYN queue to the accept queue,
    /// and the application gets an event.
    fn tcp_after_change(&mut self, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        if let Some(lh) = sock.embryonic_of
            && sock.conn.is_established()
        {
            sock.embryonic_of = None;
            if let Some(l) = self.tcp.listeners.get_mut(lh) {
                l.syn_queue = l.syn_queue.saturating_sub(1);
                l.accept_queue.push_back(h);
                self.events.push(super::Event::Listener(lh));
            }
        }
        if let Some(sock) = self.tcp.socks.get_mut(h)
            && sock.embryonic_of.is_none()
            && !sock.orphan
            && !sock.event_pending
        {
            sock.event_pending = true;
            self.events.push(super::Event::Tcp(h));
        }
    }

    /// Frees a connection's slot (it is unlinked already).
    fn tcp_release(&mut self, h: TcpHandle) {
        if let Some(sock) = self.tcp.socks.remove(h)
            && let Some(lh) = sock.embryonic_of
            && let Some(l) = self.tcp.listeners.get_mut(lh)
        {
            l.syn_queue = l.syn_queue.saturating_sub(1);
        }
    }

    /// Puts the connection on the timer heap or the ready list.
    fn tcp_schedule(&mut self, now: Instant, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        match sock.conn.poll_at() {
            Some(t) if t <= now && !sock.queued => {
                sock.queued = true;
                self.tcp.ready.push(h);
            }
            Some(t) if t > now && sock.scheduled.is_none_or(|s| t < s) => {
                sock.scheduled = Some(t);
                self.tcp.timers.push(Reverse((t, h.to_bits())));
            }
            _ => {}
        }
    }

    /// Runs due TCP timers and transmissions the application asked for.
    pub(super) fn tcp_poll<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        let mut ready = std::mem::take(&mut self.tcp.servicing);
        std::mem::swap(&mut ready, &mut self.tcp.ready);
        for &h in &ready {
            if let Some(s) = self.tcp.socks.get_mut(h) {
                s.queued = false;
            }
        }
        for &h in &ready {
            self.tcp_service(now, h, tx);
        }
        ready.clear();
        self.tcp.servicing = ready;
        while let Some(&Reverse((t, bits))) = self.tcp.timers.peek() {
            if t > now {
                break;
            }
            self.tcp.timers.pop();
            let h = TcpHandle::from_bits(bits);
            let Some(sock) = self.tcp.socks.get_mut(h) else {
                continue;
            };
            if sock.scheduled != Some(t) {
                continue; // superseded by an earlier entry
            }
            sock.scheduled = None;
            self.tcp_service(now, h, tx);
        }
    }

    /// Asks for a connection to be serviced on the next poll (after the
    /// application changed something).
    fn tcp_touch(&mut self, h: TcpHandle) {
        if let Some(sock) = self.tcp.socks.get_mut(h)
            && !sock.queued
        {
            sock.queued = true;
            self.tcp.ready.push(h);
        }
    }

    // --- socket calls -------------------------------------------------------

    /// The TCP configuration new connections and listeners start from.
    pub fn tcp_config(&self) -> &TcpConfig {
        &self.tcp.cfg
    }

    /// Changes the TCP configuration for sockets created from now on.
    pub fn set_tcp_config(&mut self, cfg: TcpConfig) {
        self.tcp.cfg = cfg;
    }

    /// Listens on `local` (address 0.0.0.0: any of ours) with `backlog`
    /// bounding both the SYN queue and the accept queue.
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenerHandle, SocketError> {
        if !local.ip().is_unspecified() && *local.ip() != self.ip.addr() {
            return Err(SocketError::AddrNotAvailable);
        }
        let port = local.port();
        if port == 0 {
            return Err(SocketError::InvalidInput);
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let ours = SocketAddrV4::new(self.ip.addr(), port);
        if self.tcp.by_local.contains_key(&any) || self.tcp.by_local.contains_key(&ours) {
            return Err(SocketError::AddrInUse);
        }
        let lh = self.tcp.listeners.insert(TcpListener {
            local,
            backlog: backlog.max(1),
            syn_queue: 0,
            accept_queue: VecDeque::new(),
            cfg: self.tcp.cfg.clone(),
            dropped_syns: 0,
        });
        self.tcp.by_local.insert(local, lh);
        Ok(lh)
    }

    /// The listener behind `lh`.
    pub fn tcp_listener(&self, lh: ListenerHandle) -> Option<&TcpListener> {
        self.tcp.listeners.get(lh)
    }

    /// Mutable access to a listener (backlog, inherited options).
    pub fn tcp_listener_mut(&mut self, lh: ListenerHandle) -> Option<&mut TcpListener> {
        self.tcp.listeners.get_mut(lh)
    }

    /// Takes an established connection from the accept queue.
    pub fn tcp_accept(&mut self, lh: ListenerHandle) -> Result<TcpHandle, SocketError> {
        let l = self
            .tcp
            .listeners
            .get_mut(lh)
            .ok_or(SocketError::BadHandle)?;
        l.accept_queue.pop_front().ok_or(SocketError::WouldBlock)
    }

    /// Stops listening; connections not yet accepted are reset.
    pub fn tcp_close_listener(&mut self, now: Instant, lh: ListenerHandle) {
        let Some(l) = self.tcp.listeners.remove(lh) else {
            return;
        };
        if self.tcp.by_local.get(&l.local) == Some(&lh) {
            self.tcp.by_local.remove(&l.local);
        }
        for h in l.accept_queue {
            self.tcp_abort(now, h);
            self.tcp_close(now, h);
        }
        // Embryonic connections point at the gone listener: abort them too.
        let embryonic: Vec<TcpHandle> = self
            .tcp
            .socks
            .iter()
            .filter(|(_, s)| s.embryonic_of == Some(lh))
            .map(|(h, _)| h)
            .collect();
        for h in embryonic {
            if let Some(s) = self.tcp.socks.get_mut(h) {
                s.embryonic_of = None;
                s.orphan = true;
                s.conn.abort(now);
            }
            self.tcp_touch(h);
        }
    }

    /// Opens a connection to `remote` from an ephemeral port (or from
    /// `local` if given). The SYN goes out on the next poll.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
    ) -> Result<TcpHandle, SocketError> {
        if remote.port() == 0
            || remote.ip().is_unspecified()
            || self.ip.is_broadcast(*remote.ip())
            || remote.ip().is_multicast()
        {
            return Err(SocketError::InvalidInput);
        }
        if self.ip.routes.lookup(*remote.ip()).is_none() {
            return Err(SocketError::NetUnreachable);
        }
        let src = self.ip.addr();
        let local = match local {
            Some(l) if !l.ip().is_unspecified() && *l.ip() != src => {
                return Err(SocketError::AddrNotAvailable);
            }
            Some(l) if l.port() != 0 => {
                let l = SocketAddrV4::new(src, l.port());
                if self.tcp.by_tuple.contains_key(&(l, remote)) {
                    return Err(SocketError::AddrInUse);
                }
                l
            }
            _ => {
                // RFC 6056 Algorithm 1 over ports free for this 4-tuple and
                // not bound by a listener.
                let table = &self.tcp;
                let port = ::udp::ephemeral_port(&mut self.rng, |p| {
                    let l = SocketAddrV4::new(src, p);
                    table.by_tuple.contains_key(&(l, remote)) || table.listener_for(l).is_some()
                })
                .ok_or(SocketError::AddrNotAvailable)?;
                SocketAddrV4::new(src, port)
            }
        };
        let iss = self.tcp.isn.isn(now, local, remote);
        let ts_offset = self.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let conn = Connection::connect(
            &self.tcp.cfg,
            local,
            remote,
            iss,
            ts_offset,
            self.tcp.epoch,
            now,
        );
        let h = self.tcp.socks.insert(TcpSocket {
            conn,
            embryonic_of: None,
            orphan: false,
            linked: true,
            scheduled: None,
            queued: false,
            event_pending: false,
        });
        self.tcp.link(h, local, remote);
        self.ip.counters.tcp_active_opens += 1;
        self.tcp_touch(h);
        Ok(h)
    }

    /// The connection behind `h`.
    pub fn tcp(&self, h: TcpHandle) -> Option<&Connection> {
        self.tcp.socks.get(h).map(|s| &s.conn)
    }

    /// Mutable access to the connection (options). Call
    /// [`tcp_touch_public`](Self::tcp_touch_public) after changes that may
    /// let it send.
    pub fn tcp_mut(&mut self, h: TcpHandle) -> Option<&mut Connection> {
        let sock = self.tcp.socks.get_mut(h)?;
        Some(&mut sock.conn)
    }

    /// Schedules the connection for transmission on the next poll.
    pub fn tcp_touch_public(&mut self, h: TcpHandle) {
        self.tcp_touch(h);
    }

    /// Writes into the connection's send buffer.
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, SocketError> {
        let sock = self.tcp.socks.get_mut(h).ok_or(SocketError::BadHandle)?;
        let n = sock.conn.send(data)?;
        self.tcp_touch(h);
        Ok(n)
    }

    /// Reads from the connection; `Ok(0)` is end of stream.
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, SocketError> {
        let sock = self.tcp.socks.get_mut(h).ok_or(SocketError::BadHandle)?;
        let n = sock.conn.recv(buf)?;
        // A read may open the window: let the connection send an update.
        if sock.conn.wants_transmit() {
            self.tcp_touch(h);
        }
        Ok(n)
    }

    /// Shuts down the write side (FIN after queued data), the read side, or
    /// both.
    pub fn tcp_shutdown(
        &mut self,
        h: TcpHandle,
        read: bool,
        write: bool,
    ) -> Result<(), SocketError> {
        let sock = self.tcp.socks.get_mut(h).ok_or(SocketError::BadHandle)?;
        if !sock.conn.is_established() && sock.conn.state() != tcp::State::SynSent {
            return Err(SocketError::NotConnected);
        }
        if read {
            sock.conn.shutdown_read();
        }
        if write {
            sock.conn.shutdown_write();
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Closes the application's handle: the connection finishes in the
    /// background (or is reset if unread data was pending) and its slot is
    /// freed once it is closed. `h` is invalid afterwards.
    pub fn tcp_close(&mut self, now: Instant, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        sock.orphan = true;
        sock.conn.close(now);
        if sock.conn.is_closed() && !sock.linked {
            self.tcp_release(h);
            return;
        }
        self.tcp_touch(h);
    }

    /// Aborts the connection with a reset. The handle stays valid until
    /// closed.
    pub fn tcp_abort(&mut self, now: Instant, h: TcpHandle) {
        if let Some(sock) = self.tcp.socks.get_mut(h) {
            sock.conn.abort(now);
            self.tcp_touch(h);
        }
    }

    /// Marks a TCP event as consumed (the event list was drained).
    pub(super) fn tcp_event_taken(&mut self, h: TcpHandle) {
        if let Some(sock) = self.tcp.socks.get_mut(h) {
            sock.event_pending = false;
        }
    }

    /// True when TCP has work queued for the next poll (application calls
    /// asked for transmission).
    pub(super) fn tcp_has_ready(&self) -> bool {
        !self.tcp.ready.is_empty()
    }

    /// True when no connection still has data of ours to deliver: every
    /// connection is closed, in TIME-WAIT or FIN-WAIT-2, never got to carry
    /// data (SYN states), or has had all its data acknowledged and its FIN
    /// sent. Walks all connections: for shutdown, not the data path.
    pub fn tcp_all_delivered(&self) -> bool {
        use tcp::State::*;
        self.tcp.socks.iter().all(|(_, s)| match s.conn.state() {
            Closed | TimeWait | FinWait2 | Listen | SynSent | SynReceived => true,
            FinWait1 | Closing | LastAck => s.conn.send_queued() == 0,
            Established | CloseWait => false,
        })
    }

    /// Number of TCP connections held (any state, orphans included).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.len()
    }
}
