//! The connection table: connections by 4-tuple, listeners by local
//! address, TIME-WAIT records, local port use, and the demultiplexing
//! that goes with them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tcp::syncookie::SynCookies;
use tcp::{IsnGenerator, TcpConfig, TimeWait};

use super::{ListenGroup, ListenerHandle, TcpHandle, TcpLimits, TcpListener, TcpSocket};
use crate::slab::Slab;

/// The TCP state of an interface.
pub(crate) struct TcpTable {
    pub(super) socks: Slab<TcpSocket>,
    pub(super) by_tuple: HashMap<(SocketAddrV4, SocketAddrV4), TcpHandle>,
    pub(super) listeners: Slab<TcpListener>,
    pub(super) by_local: HashMap<SocketAddrV4, ListenGroup>,
    /// Key of the hash that spreads SYNs over a SO_REUSEPORT group.
    pub(super) reuseport_key: u64,
    /// Local ports used by connections (for ephemeral port choice).
    pub(super) ports: HashMap<u16, PortUse>,
    /// Local ports used by compact TIME-WAIT records (with `ports`, makes
    /// [`Interface::tcp_port_in_use`] O(1)).
    pub(super) tw_ports: HashMap<u16, PortUse>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, u64)>>,
    pub(super) ready: Vec<TcpHandle>,
    /// The ready list being worked on (kept to reuse its memory).
    pub(super) servicing: Vec<TcpHandle>,
    pub(super) isn: IsnGenerator,
    pub(super) cookies: SynCookies,
    pub(super) epoch: Instant,
    pub(crate) cfg: TcpConfig,
    pub(crate) limits: TcpLimits,
    /// TIME-WAIT records, without connections.
    /// TIME-WAIT records, with the time of their live entry in
    /// `time_wait_timers` (entries left by an earlier record of the same
    /// four-tuple are told apart by it and dropped when they come up).
    pub(super) time_wait: HashMap<(SocketAddrV4, SocketAddrV4), (TimeWait, Instant)>,
    /// One live entry per record: (when it expires as last seen, its key).
    pub(super) time_wait_timers: BinaryHeap<Reverse<(Instant, SocketAddrV4, SocketAddrV4)>>,
    /// Orphaned connections alive.
    pub(super) orphans: usize,
    /// Connections held back by memory pressure, woken when it eases.
    pub(super) mem_waiters: Vec<TcpHandle>,
    /// Walk the connections once to apply a new memory state.
    pub(super) reclaim_pending: bool,
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

    pub(super) fn remove(map: &mut HashMap<u16, PortUse>, port: u16, reuse: bool) {
        if let Some(u) = map.get_mut(&port) {
            u.all = u.all.saturating_sub(1);
            u.exclusive = u.exclusive.saturating_sub(u32::from(!reuse));
            if u.all == 0 {
                map.remove(&port);
            }
        }
    }

    /// True when a new bind (with SO_REUSEADDR `reuse`) conflicts.
    pub(super) fn conflicts(map: &HashMap<u16, PortUse>, port: u16, reuse: bool) -> bool {
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
    pub(super) fn ts_now(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.isn.ts_offset(*local.ip(), *remote.ip()))
    }

    /// True when the 4-tuple is taken by a connection or a TIME-WAIT record.
    pub(super) fn tuple_in_use(&self, local: SocketAddrV4, remote: SocketAddrV4) -> bool {
        self.by_tuple.contains_key(&(local, remote))
            || self.time_wait.contains_key(&(local, remote))
    }

    pub(super) fn link(&mut self, h: TcpHandle, local: SocketAddrV4, remote: SocketAddrV4) {
        self.by_tuple.insert((local, remote), h);
        let reuse = self
            .socks
            .get(h)
            .is_some_and(|s| s.conn.config().reuse_addr);
        PortUse::add(&mut self.ports, local.port(), reuse);
    }

    pub(super) fn unlink(&mut self, h: TcpHandle) {
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
    pub(super) fn group_for(&self, local: SocketAddrV4) -> Option<&ListenGroup> {
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
    pub(super) fn listener_for(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Option<ListenerHandle> {
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
    pub(super) fn tw_port_add(&mut self, port: u16, reuse: bool) {
        PortUse::add(&mut self.tw_ports, port, reuse);
    }

    /// Forgets a TIME-WAIT record's local port.
    pub(super) fn tw_port_remove(&mut self, port: u16, reuse: bool) {
        PortUse::remove(&mut self.tw_ports, port, reuse);
    }

    /// The configuration a new connection runs with, from one the
    /// application set (socket options before connect, or a listener's):
    /// the MSS no larger than the interface's (TCP_MAXSEG only lowers it),
    /// a zero user timeout replaced by the stack's. Returns it with the
    /// per-connection user timeout to record (zero: the default).
    pub(super) fn effective_config(&self, mut cfg: TcpConfig) -> (TcpConfig, Duration) {
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
