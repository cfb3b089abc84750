//! TCP on the interface: the connection table (hash of the 4-tuple, then
//! TIME-WAIT records, then the listener by local address -- never a scan
//! of all connections), listeners with bounded SYN and accept queues and
//! SYN cookies, compact TIME-WAIT records, the orphan limit, memory
//! charging, the timer queue, resets for segments that belong to nothing,
//! and the socket calls.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ip::{IpProtocol, Ipv4Repr};
use tcp::syncookie::SynCookies;
use tcp::{
    Connection, Input, IsnGenerator, MemoryPressure, SegmentError, TcpConfig, TcpRepr, TimeWait,
    TimeWaitInput,
};

use super::{Interface, IpLayer};

mod listen;
mod resources;
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::error::SocketError;
use crate::memory::Component;
use crate::slab::{Handle, Slab};

/// When a listener answers SYNs with SYN cookies (RFC 4987 3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SynCookieMode {
    /// Never: a full SYN queue evicts its oldest half-open entry.
    Off,
    /// When the listener's SYN queue is full or memory is short (Linux's
    /// `tcp_syncookies = 1`, the default).
    #[default]
    Auto,
    /// For every SYN (`tcp_syncookies = 2`; for tests).
    Always,
}

/// Limits on what peers can make TCP hold, with Linux's sysctls as the
/// model. The memory budget ([`crate::MemoryBudget`]) caps bytes; these cap
/// counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    /// SYN cookies (`tcp_syncookies`).
    pub syncookies: SynCookieMode,
    /// TIME-WAIT records held at most (`tcp_max_tw_buckets`); beyond it a
    /// connection closes without TIME-WAIT. Default 65,536 (about 15 MiB).
    pub max_time_wait: usize,
    /// Orphaned connections (closed by the application, still finishing)
    /// at most (`tcp_max_orphans`); a connection closed beyond it is reset.
    /// Default 16,384.
    pub max_orphans: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            syncookies: SynCookieMode::Auto,
            max_time_wait: 65_536,
            max_orphans: 16_384,
        }
    }
}

/// Memory charged per TIME-WAIT record: the record, its map entry and its
/// timer entry.
const TIME_WAIT_COST: usize = std::mem::size_of::<TimeWait>() + 96;

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
    /// Bytes charged to the memory budget for it.
    charged: usize,
    /// On the list of connections held back by memory pressure.
    mem_waiting: bool,
    /// TCP_DEFER_ACCEPT: established, but kept from the accept queue until
    /// data arrives or this time passes.
    defer_until: Option<Instant>,
}

impl TcpSocket {
    fn new(conn: Connection, embryonic_of: Option<ListenerHandle>) -> TcpSocket {
        TcpSocket {
            conn,
            embryonic_of,
            orphan: false,
            linked: true,
            scheduled: None,
            queued: false,
            event_pending: false,
            charged: 0,
            mem_waiting: false,
            defer_until: None,
        }
    }
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
    /// Half-open connections in arrival order (may hold handles that left
    /// the SYN queue; they are skipped, and compacted away).
    syn_fifo: VecDeque<TcpHandle>,
    /// The last time a SYN was answered with a cookie: cookies are only
    /// accepted within their lifetime after that (as Linux's
    /// `tcp_synq_no_recent_overflow`), so forged ACKs have nothing to aim
    /// at outside floods.
    last_cookie: Option<Instant>,
    cfg: TcpConfig,
    dropped_syns: u64,
    /// Bound with SO_REUSEPORT (shares its address with its group).
    reuseport: bool,
    /// TCP_DEFER_ACCEPT.
    defer_accept: Option<Duration>,
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

    /// The configuration accepted connections inherit (buffers, options,
    /// `tos` for its SYN-ACKs too).
    pub fn config_mut(&mut self) -> &mut TcpConfig {
        &mut self.cfg
    }

    /// True when bound with SO_REUSEPORT.
    pub fn reuseport(&self) -> bool {
        self.reuseport
    }

    /// TCP_DEFER_ACCEPT: with `Some(d)`, a connection whose handshake is
    /// done is handed to accept only once its first data (or its FIN)
    /// arrives, or once `d` has passed since it was established, whichever
    /// is first; `None` (or zero) hands connections over at once.
    ///
    /// Linux instead drops the bare final ACK of the handshake while the
    /// period lasts (the request stays in the SYN queue, `inet_rsk(req)->
    /// acked` set, tcp_check_req), retransmits the SYN-ACK near its end and
    /// establishes the connection on data, or on the ACK answering that
    /// SYN-ACK after the period (the period counted in SYN-ACK
    /// retransmissions from the SYN, rounded up). ustack establishes the
    /// connection on the ACK (so the client's data is acknowledged as
    /// usual) and holds it out of the accept queue instead, counted in the
    /// SYN queue as Linux counts the request; the period is counted from
    /// the final ACK. What the application sees is the same: accept wakes
    /// on the first data, or after the period without it.
    pub fn set_defer_accept(&mut self, defer: Option<Duration>) {
        self.defer_accept = defer.filter(|d| !d.is_zero());
    }

    /// The TCP_DEFER_ACCEPT period, if set.
    pub fn defer_accept(&self) -> Option<Duration> {
        self.defer_accept
    }
}

/// The listeners bound to one local address: one, or several that all set
/// SO_REUSEPORT.
#[derive(Debug, Default)]
struct ListenGroup {
    members: Vec<ListenerHandle>,
    reuseport: bool,
}

/// The smallest TCP_MAXSEG Linux accepts (`TCP_MIN_MSS`).
pub(crate) const TCP_MIN_MSS: u16 = 88;

/// Most listeners one SO_REUSEPORT group holds.
pub(crate) const MAX_REUSEPORT_GROUP: usize = 256;

/// The TCP state of an interface.
pub(crate) struct TcpTable {
    socks: Slab<TcpSocket>,
    by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), TcpHandle>,
    listeners: Slab<TcpListener>,
    by_local: HashMap<SocketAddrV4, ListenGroup>,
    /// Key of the hash that spreads SYNs over a SO_REUSEPORT group.
    reuseport_key: u64,
    /// Local ports used by connections (for ephemeral port choice).
    ports: HashMap<u16, PortUse>,
    /// Local ports used by compact TIME-WAIT records (with `ports`, makes
    /// [`Interface::tcp_port_in_use`] O(1)).
    tw_ports: HashMap<u16, PortUse>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    ready: Vec<TcpHandle>,
    /// The ready list being worked on (kept to reuse its memory).
    servicing: Vec<TcpHandle>,
    isn: IsnGenerator,
    cookies: SynCookies,
    epoch: Instant,
    pub(crate) cfg: TcpConfig,
    pub(crate) limits: TcpLimits,
    /// TIME-WAIT records, without connections.
    /// TIME-WAIT records, with the time of their live entry in
    /// `time_wait_timers` (entries left by an earlier record of the same
    /// four-tuple are told apart by it and dropped when they come up).
    time_wait: HashMap<(SocketAddrV4, SocketAddrV4), (TimeWait, Instant)>,
    /// One live entry per record: (when it expires as last seen, its key).
    time_wait_timers: BinaryHeap<Reverse<(Instant, SocketAddrV4, SocketAddrV4)>>,
    /// Orphaned connections alive.
    orphans: usize,
    /// Connections held back by memory pressure, woken when it eases.
    mem_waiters: Vec<TcpHandle>,
    /// Walk the connections once to apply a new memory state.
    reclaim_pending: bool,
}

/// How many connections (or TIME-WAIT records) use a local port, and how
/// many of them without SO_REUSEADDR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PortUse {
    pub(crate) all: u32,
    pub(crate) exclusive: u32,
}

impl PortUse {
    pub(crate) fn add(map: &mut HashMap<u16, PortUse>, port: u16, reuse: bool) {
        let u = map.entry(port).or_default();
        u.all += 1;
        u.exclusive += u32::from(!reuse);
    }

    fn remove(map: &mut HashMap<u16, PortUse>, port: u16, reuse: bool) {
        if let Some(u) = map.get_mut(&port) {
            u.all = u.all.saturating_sub(1);
            u.exclusive = u.exclusive.saturating_sub(u32::from(!reuse));
            if u.all == 0 {
                map.remove(&port);
            }
        }
    }

    /// True when a new bind (with SO_REUSEADDR `reuse`) conflicts.
    fn conflicts(map: &HashMap<u16, PortUse>, port: u16, reuse: bool) -> bool {
        map.get(&port)
            .is_some_and(|u| if reuse { u.exclusive > 0 } else { u.all > 0 })
    }
}

impl TcpTable {
    pub(crate) fn new(
        cfg: TcpConfig,
        limits: TcpLimits,
        isn_key: (u64, u64),
        cookie_key: (u64, u64),
        epoch: Instant,
    ) -> Self {
        TcpTable {
            socks: Slab::new(),
            by_tuple: HashMap::new(),
            listeners: Slab::new(),
            by_local: HashMap::new(),
            reuseport_key: isn_key.0.rotate_left(17) ^ cookie_key.1,
            ports: HashMap::new(),
            tw_ports: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: Vec::new(),
            servicing: Vec::new(),
            isn: IsnGenerator::new(isn_key, epoch),
            cookies: SynCookies::new(cookie_key, epoch),
            epoch,
            cfg,
            limits,
            time_wait: HashMap::new(),
            time_wait_timers: BinaryHeap::new(),
            orphans: 0,
            mem_waiters: Vec::new(),
            reclaim_pending: false,
        }
    }

    /// When the table next needs attention.
    pub(crate) fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() || self.reclaim_pending {
            return Some(now);
        }
        let conn = self.timers.peek().map(|Reverse((t, _))| *t);
        let tw = self.time_wait_timers.peek().map(|Reverse((t, _, _))| *t);
        conn.into_iter().chain(tw).min()
    }

    /// Our timestamp clock for connections between `local` and `remote`
    /// (what their connection will use, so a cookie's timestamp and the
    /// connection's agree).
    fn ts_now(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.isn.ts_offset(*local.ip(), *remote.ip()))
    }

    /// True when the 4-tuple is taken by a connection or a TIME-WAIT record.
    fn tuple_in_use(&self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        self.by_tuple.contains_key(&(local, remote))
            || self.time_wait.contains_key(&(local, remote))
    }

    fn link(&mut self, h: TcpHandle, local: SocketAddrV4, remote: SocketAddrV4) {
        self.by_tuple.insert((local, remote), h);
        let reuse = self
            .socks
            .get(h)
            .is_some_and(|s| s.conn.config().reuse_addr);
        PortUse::add(&mut self.ports, local.port(), reuse);
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
        let reuse = sock.conn.config().reuse_addr;
        if self.by_tuple.get(&key) == Some(&h) {
            self.by_tuple.remove(&key);
        }
        PortUse::remove(&mut self.ports, key.0.port(), reuse);
    }

    /// The listener group for `local`: bound to that address, else to the
    /// wildcard address.
    fn group_for(&self, local: SocketAddrV4) -> Option<&ListenGroup> {
        self.by_local.get(&local).or_else(|| {
            self.by_local
                .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
        })
    }

    /// The listener a segment from `remote` to `local` is for. In a
    /// SO_REUSEPORT group, a keyed hash of the 4-tuple picks one, as
    /// Linux's `reuseport_select_sock` (`reciprocal_scale(hash, n)`): the
    /// same tuple always lands on the same listener while the group is
    /// unchanged (so a SYN-cookie ACK finds the listener whose cookie it
    /// carries), and tuples spread evenly.
    fn listener_for(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<ListenerHandle> {
        let group = self.group_for(local)?;
        match group.members.as_slice() {
            [] => None,
            [one] => Some(*one),
            members => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (self.reuseport_key, local, remote).hash(&mut h);
                let hash = h.finish() as u32;
                let i = (u64::from(hash) * members.len() as u64) >> 32;
                members.get(i as usize).copied()
            }
        }
    }

    /// Counts a TIME-WAIT record's local port.
    fn tw_port_add(&mut self, port: u16, reuse: bool) {
        PortUse::add(&mut self.tw_ports, port, reuse);
    }

    /// Forgets a TIME-WAIT record's local port.
    fn tw_port_remove(&mut self, port: u16, reuse: bool) {
        PortUse::remove(&mut self.tw_ports, port, reuse);
    }

    /// The configuration a new connection runs with, from one the
    /// application set (socket options before connect, or a listener's):
    /// the MSS no larger than the interface's (TCP_MAXSEG only lowers it),
    /// a zero user timeout replaced by the stack's. Returns it with the
    /// per-connection user timeout to record (zero: the default).
    fn effective_config(&self, mut cfg: TcpConfig) -> (TcpConfig, Duration) {
        cfg.mss = cfg.mss.min(self.cfg.mss);
        let user = cfg.user_timeout;
        let set = if user.is_zero() || user == self.cfg.user_timeout {
            Duration::ZERO
        } else {
            user
        };
        cfg.user_timeout = self.cfg.user_timeout;
        (cfg, set)
    }

    /// Number of connections in the table (any state).
    pub(crate) fn len(&self) -> usize {
        self.socks.len()
    }
}

/// Sends one TCP segment from `src` over IP (DF set: TCP relies on path MTU
/// discovery). With `gso_mss`, the segment is a super segment the device
/// cuts into segments of that many payload bytes (see
/// [`crate::device::gso`]). Returns whether it was handed to the link.
#[allow(clippy::too_many_arguments)]
fn emit_segment<S: FrameSink + ?Sized>(
    ip: &mut IpLayer,
    now: Instant,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &TcpRepr,
    a: &[u8],
    b: &[u8],
    tos: u8,
    gso_mss: Option<usize>,
    tx: &mut S,
) -> bool {
    let hlen = seg.header_len();
    let total = hlen + a.len() + b.len();
    let mut repr = Ipv4Repr::new(src, dst, IpProtocol::TCP, ip.ttl, 0);
    repr.dont_fragment = true;
    // IP_TOS; the ECN bits are TCP's, not the application's (Linux clears
    // them from IP_TOS on stream sockets), and ustack does not use ECN.
    repr.tos = tos & !0b11;
    let fill = |buf: &mut [u8]| {
        seg.emit_header(buf);
        buf[hlen..hlen + a.len()].copy_from_slice(a);
        buf[hlen + a.len()..total].copy_from_slice(b);
        match gso_mss {
            None => tcp::fill_checksum(&mut buf[..total], src, dst),
            Some(_) => {
                crate::device::gso::fill_partial_checksum(&mut buf[..total], src, dst, total)
            }
        }
    };
    let result = match gso_mss {
        None => ip.send_ipv4(now, repr, total, fill, tx),
        Some(mss) => ip.send_ipv4_segmented(now, repr, total, mss, fill, tx),
    };
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
            let pressure = self.mem.state();
            let input = self.tcp.socks.get_mut(h).map(|s| {
                s.conn.set_memory_pressure(pressure);
                s.conn.handle_segment(now, &seg, payload)
            });
            match input {
                Some(Input::Done) => {
                    // Transmission (ACKs, data the ACK released) waits for
                    // the end of the receive batch: one ACK then covers every
                    // segment of this connection in the batch, which halves
                    // or better the frames (and device writes) per byte. The
                    // application hears of the change at once, so its reply
                    // can share those frames.
                    self.tcp_recharge(h);
                    self.tcp_after_change(Some(now), h);
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
        } else if let Some((tw, _)) = self.tcp.time_wait.get_mut(&(local, remote)) {
            match tw.handle_segment(now, &seg, payload.len()) {
                TimeWaitInput::Drop => {
                    if seg.flags.rst() {
                        self.ip.counters.drop(DropReason::TcpTimeWaitRst);
                    }
                    return;
                }
                TimeWaitInput::Ack(ack) => {
                    let tos = tw.tos();
                    emit_segment(
                        &mut self.ip,
                        now,
                        repr.dst,
                        repr.src,
                        &ack,
                        &[],
                        &[],
                        tos,
                        None,
                        tx,
                    );
                    return;
                }
                TimeWaitInput::Reincarnate => self.tcp_forget_time_wait(local, remote),
            }
        }
        if let Some(lh) = self.tcp.listener_for(local, remote) {
            return self.tcp_listen_input(now, lh, local, remote, &seg, payload, tx);
        }
        // RFC 9293 3.10.7.1: "If the state is CLOSED (i.e., TCB does not
        // exist), then ... a reset is sent in response to any incoming
        // segment except another reset."
        self.ip.counters.drop(DropReason::TcpNoSocket);
        self.tcp_reset_for(now, local, remote, &seg, payload.len(), tx);
    }

    /// Answers `seg` with a reset (RFC 9293 3.10.7.1), unless it is one.
    fn tcp_reset_for<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
        payload_len: usize,
        tx: &mut S,
    ) {
        if let Some(rst) = tcp::reset_for(seg, payload_len) {
            self.ip.counters.tcp_resets_sent += 1;
            emit_segment(
                &mut self.ip,
                now,
                *local.ip(),
                *remote.ip(),
                &rst,
                &[],
                &[],
                0,
                None,
                tx,
            );
        }
    }

    /// Lets a connection transmit, moves it through its life cycle (SYN
    /// queue -> accept queue; orphan in TIME-WAIT -> compact record;
    /// closed -> removed), charges its memory and schedules its timer.
    fn tcp_service<S: FrameSink + ?Sized>(&mut self, now: Instant, h: TcpHandle, tx: &mut S) {
        let pressure = self.mem.state();
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        let src = *sock.conn.local().ip();
        sock.conn.set_memory_pressure(pressure);
        let dst = *sock.conn.remote().ip();
        let mtu = self.ip.path_mtu(now, dst);
        let tos = sock.conn.tos();
        let ip = &mut self.ip;
        let burst = if ip.segmentation_offload {
            MAX_SUPER_SEGMENT
        } else {
            0
        };
        sock.conn
            .poll_transmit_burst(now, mtu, burst, |seg, a, b, mss| {
                let gso_mss = (a.len() + b.len() > mss).then_some(mss);
                emit_segment(ip, now, src, dst, seg, a, b, tos, gso_mss, tx)
            });
        self.tcp_recharge(h);
        self.tcp_after_change(Some(now), h);
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        if sock.conn.is_closed() {
            if sock.embryonic_of.is_some() && sock.conn.error() == Some(tcp::TcpError::TimedOut) {
                self.ip.counters.defenses.half_open_timed_out += 1;
            }
            self.tcp.unlink(h);
            let sock = self.tcp.socks.get(h).expect("present");
            if sock.embryonic_of.is_some() || sock.orphan {
                self.tcp_release(h);
            }
            return;
        }
        if sock.orphan && sock.conn.state() == tcp::State::TimeWait {
            return self.tcp_enter_time_wait(now, h);
        }
        self.tcp_schedule(now, h);
    }

    /// After input or timers changed a connection: an established
    /// connection moves from its listener's SYN queue to the accept queue
    /// (with TCP_DEFER_ACCEPT, once data arrived or the period passed),
    /// and the application gets an event. `now` is None where the caller
    /// has no clock (ICMP): a deferred connection then waits for its timer.
    fn tcp_after_change(&mut self, now: Option<Instant>, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        if let Some(lh) = sock.embryonic_of
            && sock.conn.is_established()
        {
            let defer = self.tcp.listeners.get(lh).and_then(|l| l.defer_accept);
            let due = matches!((sock.defer_until, now), (Some(t), Some(n)) if n >= t);
            if let Some(d) = defer
                && !sock.conn.can_recv()
                && !due
            {
                // TCP_DEFER_ACCEPT: not yet; tcp_schedule wakes it at the
                // end of the period.
                if sock.defer_until.is_none()
                    && let Some(n) = now
                {
                    sock.defer_until = Some(n + d);
                }
                return;
            }
            sock.defer_until = None;
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

    /// Frees a connection's slot (it is unlinked already) and its charge.
    fn tcp_release(&mut self, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.remove(h) else {
            return;
        };
        if let Some(lh) = sock.embryonic_of
            && let Some(l) = self.tcp.listeners.get_mut(lh)
        {
            l.syn_queue = l.syn_queue.saturating_sub(1);
        }
        if sock.orphan {
            self.tcp.orphans = self.tcp.orphans.saturating_sub(1);
            self.ip.counters.defenses.orphans_now = self.tcp.orphans as u64;
        }
        if sock.charged > 0 {
            let changed = self.mem.recharge(Component::Tcp, sock.charged, 0);
            self.mem_state_changed(changed);
        }
    }

    /// Puts the connection on the timer heap or the ready list.
    fn tcp_schedule(&mut self, now: Instant, h: TcpHandle) {
        let Some(sock) = self.tcp.socks.get_mut(h) else {
            return;
        };
        let at = match (sock.conn.poll_at(), sock.defer_until) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        match at {
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

    /// Runs due TCP timers and transmissions the application asked for,
    /// expires TIME-WAIT records, and applies a new memory state.
    pub(super) fn tcp_poll<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        if self.tcp.reclaim_pending {
            self.tcp_reclaim();
        }
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
        let mut expired = false;
        while let Some(&Reverse((t, local, remote))) = self.tcp.time_wait_timers.peek() {
            if t > now {
                break;
            }
            self.tcp.time_wait_timers.pop();
            let Some((record, queued)) = self.tcp.time_wait.get_mut(&(local, remote)) else {
                continue; // reincarnated
            };
            if *queued != t {
                continue; // left by an earlier record of this four-tuple
            }
            if record.expires() > t {
                // Restarted by a retransmitted FIN: wait again.
                *queued = record.expires();
                self.tcp
                    .time_wait_timers
                    .push(Reverse((*queued, local, remote)));
                continue;
            }
            let reuse = record.reuse_addr();
            self.tcp.time_wait.remove(&(local, remote));
            self.tcp.tw_port_remove(local.port(), reuse);
            expired = true;
        }
        if expired {
            self.mem_charge_time_wait();
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
        self.tcp_listen_with(local, backlog, false)
    }

    /// [`tcp_listen`](Self::tcp_listen) with SO_REUSEPORT: listeners that
    /// all set it may share one local address and port (at most 256); each SYN goes to one of them, picked by a
    /// keyed hash of its 4-tuple (Linux's `reuseport_select_sock`). A
    /// listener without it, or a group it would overlap (wildcard and
    /// specific address on one port), makes the bind fail with EADDRINUSE.
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        reuseport: bool,
    ) -> Result<ListenerHandle, SocketError> {
        if !local.ip().is_unspecified() && !self.ip.is_local(*local.ip()) {
            return Err(SocketError::AddrNotAvailable);
        }
        let port = local.port();
        if port == 0 {
            return Err(SocketError::InvalidInput);
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        match self.tcp.by_local.get(&local) {
            Some(g) if !(g.reuseport && reuseport) => return Err(SocketError::AddrInUse),
            Some(g) if g.members.len() >= MAX_REUSEPORT_GROUP => {
                return Err(SocketError::NoBufferSpace);
            }
            Some(_) => {}
            None => {
                // A wildcard listener overlaps every address of its port (a
                // walk over the listeners, at listen time only).
                let overlap = if local.ip().is_unspecified() {
                    self.tcp.by_local.keys().any(|k| k.port() == port)
                } else {
                    self.tcp.by_local.contains_key(&any)
                };
                if overlap {
                    return Err(SocketError::AddrInUse);
                }
            }
        }
        let lh = self.tcp.listeners.insert(TcpListener {
            local,
            backlog: backlog.max(1),
            syn_queue: 0,
            accept_queue: VecDeque::new(),
            syn_fifo: VecDeque::new(),
            last_cookie: None,
            cfg: self.tcp.cfg.clone(),
            dropped_syns: 0,
            reuseport,
            defer_accept: None,
        });
        let group = self.tcp.by_local.entry(local).or_default();
        group.reuseport = reuseport;
        group.members.push(lh);
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

    /// Stops listening; connections not yet accepted are reset (in a
    /// SO_REUSEPORT group too: Linux migrates them to another member only
    /// with `tcp_migrate_req`, off by default). The rest of its group
    /// keeps listening and takes all new connections.
    pub fn tcp_close_listener(&mut self, now: Instant, lh: ListenerHandle) {
        let Some(l) = self.tcp.listeners.remove(lh) else {
            return;
        };
        if let Some(g) = self.tcp.by_local.get_mut(&l.local) {
            g.members.retain(|&m| m != lh);
            if g.members.is_empty() {
                self.tcp.by_local.remove(&l.local);
            }
        }
        for h in l.accept_queue {
            self.tcp_abort(now, h);
            self.tcp_close(now, h);
        }
        // Embryonic connections point at the gone listener: abort them too
        // (its arrival list holds every one of them).
        for h in l.syn_fifo {
            if let Some(s) = self.tcp.socks.get_mut(h)
                && s.embryonic_of == Some(lh)
            {
                s.embryonic_of = None;
                s.orphan = true;
                s.conn.abort(now);
                self.tcp.orphans += 1;
                self.tcp_touch(h);
            }
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
        let cfg = self.tcp.cfg.clone();
        self.tcp_connect_with(now, remote, local, cfg)
    }

    /// [`tcp_connect`](Self::tcp_connect) with the socket's options, so
    /// that they apply from the SYN on: buffers (and so the window scale
    /// offered), `mss` (TCP_MAXSEG: announced in the SYN and bounding the
    /// segments sent; never above the interface's; at least 88, Linux's
    /// TCP_MIN_MSS, else EINVAL), `tos`, `user_timeout` (zero: the stack's),
    /// `nodelay`, `keepalive`, `congestion`, `cork`.
    pub fn tcp_connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
        config: TcpConfig,
    ) -> Result<TcpHandle, SocketError> {
        if config.mss < TCP_MIN_MSS {
            return Err(SocketError::InvalidInput);
        }
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
        // The bound address when there is one (ours, or a loopback address
        // towards a local peer), else the one the route gives.
        let src = match local {
            Some(l) if !l.ip().is_unspecified() => *l.ip(),
            _ => self.ip.source_for(*remote.ip()),
        };
        let local = match local {
            Some(l)
                if !l.ip().is_unspecified()
                    && (!self.ip.is_local(*l.ip())
                        || l.ip().is_loopback() && !self.ip.is_local(*remote.ip())) =>
            {
                return Err(SocketError::AddrNotAvailable);
            }
            Some(l) if l.port() != 0 => {
                let l = SocketAddrV4::new(src, l.port());
                if self.tcp.tuple_in_use(l, remote) {
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
                    table.tuple_in_use(l, remote) || table.group_for(l).is_some()
                })
                .ok_or(SocketError::AddrNotAvailable)?;
                SocketAddrV4::new(src, port)
            }
        };
        if self.mem.state() == MemoryPressure::Exhausted {
            return Err(SocketError::NoBufferSpace);
        }
        let iss = self.tcp.isn.isn(now, local, remote);
        let ts_offset = self.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let (cfg, user_timeout) = self.tcp.effective_config(config);
        let mut conn =
            Connection::connect(&cfg, local, remote, iss, ts_offset, self.tcp.epoch, now);
        conn.set_user_timeout(user_timeout);
        let h = self.tcp.socks.insert(TcpSocket::new(conn, None));
        self.tcp.link(h, local, remote);
        self.ip.counters.tcp_active_opens += 1;
        self.tcp_touch(h);
        Ok(h)
    }

    /// The connection behind `h`.
    pub fn tcp(&self, h: TcpHandle) -> Option<&Connection> {
        self.tcp.socks.get(h).map(|s| &s.conn)
    }

    /// Runs `f` on the connection behind `h` (options, shutdown, consuming
    /// received data...) and then, whatever `f` did, charges what the
    /// change costs to the memory budget and schedules the connection for
    /// the next poll, so that anything the change lets it send goes out
    /// and its timers are rearmed. `None` (and `f` not run) when `h` is
    /// not a connection.
    pub fn tcp_with<R>(&mut self, h: TcpHandle, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let sock = self.tcp.socks.get_mut(h)?;
        let r = f(&mut sock.conn);
        self.tcp_recharge(h);
        self.tcp_touch(h);
        Some(r)
    }

    /// Writes into the connection's send buffer.
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, SocketError> {
        let state = self.mem.state();
        let sock = self.tcp.socks.get_mut(h).ok_or(SocketError::BadHandle)?;
        sock.conn.set_memory_pressure(state);
        let result = sock.conn.send(data);
        self.tcp_recharge(h);
        let n = result?;
        self.tcp_touch(h);
        Ok(n)
    }

    /// Makes everything queued on the connection urgent data (the second
    /// half of send(MSG_OOB)).
    pub fn tcp_mark_urgent(&mut self, h: TcpHandle) {
        if let Some(sock) = self.tcp.socks.get_mut(h) {
            sock.conn.mark_urgent();
            self.tcp_touch(h);
        }
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
        if sock.orphan {
            return;
        }
        sock.orphan = true;
        sock.conn.close(now);
        self.tcp.orphans += 1;
        if sock.conn.is_closed() && !sock.linked {
            self.tcp_release(h);
            return;
        }
        // Linux's tcp_max_orphans: beyond the limit a closed connection is
        // reset instead of finishing in the background.
        if self.tcp.orphans > self.tcp.limits.max_orphans && !sock.conn.is_closed() {
            log::debug!("tcp: too many orphaned connections; resetting");
            self.ip.counters.defenses.orphans_over_limit += 1;
            sock.conn.abort(now);
        }
        self.ip.counters.defenses.orphans_now = self.tcp.orphans as u64;
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

    /// Number of TCP connections held (any state, orphans included; not
    /// the compact TIME-WAIT records).
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.len()
    }

    /// True when a connection (in any state, orphans still closing
    /// included) or a TIME-WAIT record uses local port `port` in a way that
    /// conflicts with a new bind of it with SO_REUSEADDR `reuseaddr`:
    /// without it any use conflicts; with it, only uses by sockets that
    /// did not set it (Linux's `inet_csk_bind_conflict` sees the TIME-WAIT
    /// sockets in the bind bucket, with the flag of the socket they came
    /// from). O(1): per-port counts kept as connections and records come
    /// and go.
    pub fn tcp_port_in_use(&self, port: u16, reuseaddr: bool) -> bool {
        PortUse::conflicts(&self.tcp.ports, port, reuseaddr)
            || PortUse::conflicts(&self.tcp.tw_ports, port, reuseaddr)
    }

    /// Number of compact TIME-WAIT records held.
    pub fn tcp_time_wait_count(&self) -> usize {
        self.tcp.time_wait.len()
    }

    /// Number of orphaned connections (closed by the application, still
    /// finishing).
    pub fn tcp_orphan_count(&self) -> usize {
        self.tcp.orphans
    }

    /// Connections per state (compact TIME-WAIT records counted as
    /// TIME-WAIT). Walks all connections: for reports, not the data path.
    pub fn tcp_states(&self) -> Vec<(tcp::State, usize)> {
        let mut counts: Vec<(tcp::State, usize)> = Vec::new();
        let mut add = |st: tcp::State, n: usize| match counts.iter_mut().find(|(s, _)| *s == st) {
            Some((_, c)) => *c += n,
            None => counts.push((st, n)),
        };
        for (_, s) in self.tcp.socks.iter() {
            add(s.conn.state(), 1);
        }
        if !self.tcp.time_wait.is_empty() {
            add(tcp::State::TimeWait, self.tcp.time_wait.len());
        }
        counts
    }

    /// The limits in force.
    pub fn tcp_limits(&self) -> TcpLimits {
        self.tcp.limits
    }

    /// Changes the limits.
    pub fn set_tcp_limits(&mut self, limits: TcpLimits) {
        self.tcp.limits = limits;
    }
}
