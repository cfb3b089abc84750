//! The neighbor cache: IPv4 address -> MAC address, with resolution state.
//!
//! States follow the spirit of Linux's neighbor unreachability detection:
//!
//! * `Incomplete`: a request is out; packets for the address wait in a
//!   bounded queue. After `max_attempts` unanswered requests the entry is
//!   removed and its packets are handed back to the owner in
//!   [`NeighborAction::Unreachable`] (to be counted and reported to their
//!   senders). With the defaults (a request at once, then one every
//!   `retry_interval` = 1 s, `max_attempts` = 3) resolution gives up 3 s
//!   after the first packet, like Linux (`mcast_solicit` 3 times
//!   `retrans_time` 1 s).
//! * `Reachable`: confirmed by an ARP packet from the neighbor less than
//!   `reachable_time` ago.
//! * `Probe`: the confirmation is older than `reachable_time` and the entry was
//!   used. Traffic keeps flowing to the old address while unicast requests
//!   re-confirm it; if none is answered the entry is removed.
//!
//! # Hostile peers
//!
//! RFC 5227, section 6: "The ARP protocol [RFC826] is insecure. A malicious
//! host may send fraudulent ARP packets on the network, interfering with the
//! correct operation of other hosts." Nothing in ARP can tell a forged packet
//! from a true one, so the cache limits what any sequence of packets can cost
//! and how fast it can change a binding, after Linux's neighbour subsystem:
//!
//! * **Size** (Linux `gc_thresh3`): at most [`NeighborConfig::max_entries`]
//!   entries. A new entry, when the cache is full, evicts the least recently
//!   used entry of the first non-empty class, in this order: *unsolicited*
//!   entries (learned from a request that targeted us, and not used by our
//!   own traffic since), *pending* (`Incomplete`) entries, *confirmed*
//!   entries. Each class is a doubly linked list in LRU order, so eviction and
//!   "use" are O(1). An entry created by an unsolicited packet may only evict
//!   another unsolicited entry: a flood of forged requests recycles the
//!   unsolicited slots and never reaches an entry our traffic depends on.
//!   Unsolicited entries are further capped at
//!   [`NeighborConfig::max_unsolicited_entries`] (half the cache by default).
//!   Recency is our own use: creation, a [`NeighborCache::lookup`] hit, an
//!   [`NeighborCache::enqueue`], and the answer that resolves a pending
//!   entry. ARP packets from a neighbor do not refresh it, so a peer cannot
//!   keep itself cached by talking.
//! * **Queued bytes** (Linux `unres_qlen_bytes`): per address, and in total
//!   over all addresses ([`NeighborConfig::max_total_queued_bytes`]). Each
//!   packet is charged its length plus [`NeighborCache::QUEUED_PACKET_OVERHEAD`],
//!   so empty packets cannot grow the queue without bound.
//! * **Lock time** (Linux `locktime`): a confirmed entry keeps its MAC for
//!   [`NeighborConfig::lock_time`] after it was last set; a different MAC
//!   within that time is ignored. Accepted changes are logged with
//!   `log::warn!`. Everything is counted in [`NeighborStats`].
//!
//! Packets dropped because their pending entry was evicted are reported by the
//! next [`NeighborCache::poll`] as [`NeighborAction::Unreachable`] (the same
//! action as a failed resolution), and counted in
//! [`NeighborStats::evicted_packets_dropped`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ethernet::MacAddr;

/// Tunables of the neighbor cache.
#[derive(Clone, Debug)]
pub struct NeighborConfig {
    /// How long a confirmed entry is used without re-confirmation.
    pub reachable_time: Duration,
    /// Time between two requests for the same address.
    pub retry_interval: Duration,
    /// Requests sent before an address is declared unreachable.
    pub max_attempts: u32,
    /// Packets held per unresolved address. The first packet for an address
    /// is always held (RFC 1122 2.3.2.2), whatever this and
    /// `max_queued_bytes` say; only `max_total_queued_bytes` can refuse it.
    pub max_queued_packets: usize,
    /// Bytes held per unresolved address, each packet charged its length plus
    /// [`NeighborCache::QUEUED_PACKET_OVERHEAD`] (Linux `unres_qlen_bytes`).
    pub max_queued_bytes: usize,
    /// Entries in the whole cache (Linux `gc_thresh3`, 1024). A new entry in a
    /// full cache evicts the least recently used one (see the module docs).
    pub max_entries: usize,
    /// Bytes held for all unresolved addresses together, charged like
    /// `max_queued_bytes`. Default 1 MiB.
    pub max_total_queued_bytes: usize,
    /// A confirmed entry does not take a new MAC from an ARP packet received
    /// less than this after its MAC was last set (Linux `locktime`, 1 s).
    pub lock_time: Duration,
    /// Entries created from an ARP packet that targeted us while we had no
    /// entry for its sender, and not used since ("unsolicited"); at most
    /// `min(max_unsolicited_entries, max_entries)`. Default 512, half of the
    /// default `max_entries`.
    pub max_unsolicited_entries: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            reachable_time: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            max_attempts: 3,
            max_queued_packets: 1024,
            max_queued_bytes: 256 * 1024,
            max_entries: 1024,
            max_total_queued_bytes: 1024 * 1024,
            lock_time: Duration::from_secs(1),
            max_unsolicited_entries: 512,
        }
    }
}

/// The resolution state of one entry, for inspection and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NeighborState {
    /// Resolution in progress.
    Incomplete,
    /// Confirmed recently.
    Reachable,
    /// In use, being re-confirmed.
    Probe,
}

/// The outcome of a lookup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lookup {
    /// Send to this address now.
    Found(MacAddr),
    /// Not resolved: queue the packet with [`NeighborCache::enqueue`].
    Unknown,
}

/// Why a packet could not be queued.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QueueError {
    /// The per-address queue is at its packet or byte limit (or the address
    /// is already resolved).
    QueueFull,
    /// No entry could be made for the address (only when `max_entries` is 0:
    /// otherwise a new entry evicts an old one).
    CacheFull,
    /// The packet would take the bytes queued for all unresolved addresses
    /// over `max_total_queued_bytes`.
    TotalQueueFull,
}

/// Something the cache needs its owner to do.
#[derive(Debug, PartialEq, Eq)]
pub enum NeighborAction {
    /// Send an ARP request for `target`, broadcast (`dst: None`) or unicast to
    /// the address being re-confirmed.
    SendRequest {
        /// The protocol address asked for.
        target: Ipv4Addr,
        /// Unicast destination of a re-confirmation probe.
        dst: Option<MacAddr>,
    },
    /// Resolution of `target` failed, or its pending entry was evicted to make
    /// room for another; `dropped` queued packets were discarded.
    ///
    /// When resolution failed (`max_attempts` requests unanswered), the
    /// discarded packets themselves are handed over in `packets`, oldest
    /// first, so that the owner can tell their senders, as Linux's
    /// `neigh_invalidate` hands each queued packet to `arp_error_report`
    /// (which turns it into a local ICMP host unreachable). The cache no
    /// longer holds or charges them. Packets of an evicted entry were
    /// released at eviction (they no longer fit the cache's bounds) and are
    /// only counted: `packets` is then empty.
    Unreachable {
        /// The address that did not answer.
        target: Ipv4Addr,
        /// Packets that were waiting for it.
        dropped: usize,
        /// Those packets, when resolution failed (empty after an eviction).
        packets: VecDeque<Vec<u8>>,
    },
}

/// Counters of what the cache refused, evicted or changed, for monitoring.
/// They only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighborStats {
    /// Unsolicited entries evicted to make room.
    pub evicted_unsolicited: u64,
    /// Pending (`Incomplete`) entries evicted to make room.
    pub evicted_pending: u64,
    /// Confirmed (`Reachable`/`Probe`) entries evicted to make room.
    pub evicted_confirmed: u64,
    /// Queued packets dropped with an evicted pending entry (also reported by
    /// `poll` as [`NeighborAction::Unreachable`]).
    pub evicted_packets_dropped: u64,
    /// Unsolicited entries created (RFC 826: we were the target and had no
    /// entry for the sender).
    pub unsolicited_learned: u64,
    /// Unsolicited entries not created: the unsolicited cap is 0, or the
    /// cache is full of pending and confirmed entries, which an unsolicited
    /// packet may not evict.
    pub unsolicited_refused: u64,
    /// Confirmed entries whose MAC changed.
    pub mac_changes: u64,
    /// ARP packets whose different MAC was ignored because the entry was
    /// set less than `lock_time` before.
    pub mac_changes_refused: u64,
    /// Packets refused by `max_total_queued_bytes`.
    pub total_queue_refused: u64,
}

impl NeighborStats {
    /// Entries evicted to make room, of any class.
    pub fn evictions(&self) -> u64 {
        self.evicted_unsolicited + self.evicted_pending + self.evicted_confirmed
    }
}

#[derive(Debug)]
enum State {
    Incomplete {
        attempts: u32,
        next_attempt: Instant,
        queue: VecDeque<Vec<u8>>,
        /// What the queue is charged: lengths plus per-packet overhead.
        queued_bytes: usize,
        /// Heap the queue really holds (buffers' capacities), for
        /// `memory_used`.
        heap: usize,
    },
    Reachable {
        mac: MacAddr,
        until: Instant,
    },
    Probe {
        mac: MacAddr,
        attempts: u32,
        next_attempt: Instant,
    },
}

/// Eviction classes, evicted in this order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// Created by a packet that targeted us, not used since.
    Unsolicited = 0,
    /// `Incomplete`.
    Pending = 1,
    /// Resolved because we asked, or used by our traffic.
    Confirmed = 2,
}

const EVICTION_ORDER: [Class; 3] = [Class::Unsolicited, Class::Pending, Class::Confirmed];

/// No slot: the end of a list.
const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node {
    ip: Ipv4Addr,
    state: State,
    class: Class,
    /// When the MAC was last set or the state confirmed by an ARP packet
    /// (Linux `neigh->updated`): the lock time runs from here. Confirming the
    /// same MAC again does not move it, so no-op updates cannot keep an
    /// entry locked.
    updated: Instant,
    /// Neighbors in the LRU list of `class` (towards least / most recent).
    prev: usize,
    next: usize,
}

/// One LRU list: `head` is the least recently used.
#[derive(Clone, Copy, Debug)]
struct List {
    head: usize,
    tail: usize,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// Upper bound of the size of one B-tree node of `BTreeSet<Ipv4Addr>`
/// (an internal node: 11 keys, 12 edges, parent link), for `memory_used`.
const BTREE_NODE_BYTES: usize = 160;

/// `t + d`, saturating instead of panicking on absurd durations.
fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// IPv4-to-Ethernet address resolution cache with per-address packet queues.
#[derive(Debug)]
pub struct NeighborCache {
    config: NeighborConfig,
    /// Address -> slot. Only looked up, never iterated, so its order cannot
    /// leak into anything the cache outputs.
    index: HashMap<Ipv4Addr, usize>,
    /// Entries; `None` for a free slot. Never longer than `max_entries`.
    slots: Vec<Option<Node>>,
    free: Vec<usize>,
    /// LRU lists, indexed by `Class`.
    lists: [List; 3],
    /// Addresses in `Incomplete` or `Probe`: the only ones with timers, so
    /// `poll` never walks the whole cache.
    // Ordered, so that a poll sends its requests in the same order every
    // run (a seeded simulation must replay exactly).
    active: BTreeSet<Ipv4Addr>,
    next_sweep: Option<Instant>,
    /// Sum of the charged `queued_bytes` of all pending entries.
    queued_bytes: usize,
    /// Sum of the `heap` of all pending entries.
    queue_heap: usize,
    /// Evicted pending entries with packets, for the next `poll` to report,
    /// in eviction order.
    evicted: Vec<(Ipv4Addr, usize)>,
    /// When the first of `evicted` was evicted.
    report_at: Option<Instant>,
    stats: NeighborStats,
}

impl NeighborCache {
    /// What each queued packet is charged on top of its length, against
    /// `max_queued_bytes` and `max_total_queued_bytes`: its slot in the queue
    /// and the allocator's bookkeeping, rounded up. With it, even empty
    /// packets fill the queue.
    pub const QUEUED_PACKET_OVERHEAD: usize = 64;

    /// An empty cache.
    pub fn new(config: NeighborConfig) -> Self {
        NeighborCache {
            config,
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List::EMPTY; 3],
            active: BTreeSet::new(),
            next_sweep: None,
            queued_bytes: 0,
            queue_heap: 0,
            evicted: Vec::new(),
            report_at: None,
            stats: NeighborStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    /// Number of entries in any state.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// What the cache counted so far.
    pub fn stats(&self) -> NeighborStats {
        self.stats
    }

    /// Bytes charged for the packets waiting for resolution, over all
    /// addresses: each packet's length plus
    /// [`QUEUED_PACKET_OVERHEAD`](Self::QUEUED_PACKET_OVERHEAD). Never more
    /// than `max_total_queued_bytes`.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// An estimate (on the high side) of the heap memory the cache holds:
    /// its tables, at their allocated capacity, and the queued packets, at
    /// their buffers' capacity or their charge, whichever is larger. Bounded
    /// by `max_entries` and `max_total_queued_bytes` (plus any spare capacity
    /// of the packets the caller enqueues), whatever the peers send.
    pub fn memory_used(&self) -> usize {
        let slots = self.slots.capacity() * size_of::<Option<Node>>();
        let free = self.free.capacity() * size_of::<usize>();
        // A hashbrown table holds capacity * 8/7 buckets (a power of two),
        // each with a control byte, plus one group of control bytes.
        let index = match self.index.capacity() {
            0 => 0,
            cap => {
                let buckets = (cap.saturating_mul(8) / 7).max(1).next_power_of_two();
                buckets * (size_of::<(Ipv4Addr, usize)>() + 1) + 16
            }
        };
        // B-tree nodes are at least half full (5 of 11 keys).
        let active = self.active.len().div_ceil(5) * BTREE_NODE_BYTES;
        let reports = self.evicted.capacity() * size_of::<(Ipv4Addr, usize)>();
        // The queues at the larger of their buffers and their charge (which
        // adds the allocator's bookkeeping that the buffers do not show).
        let queues = self.queue_heap.max(self.queued_bytes);
        slots + free + index + active + reports + queues
    }

    /// The state and address of `ip`, without side effects.
    pub fn state(&self, ip: Ipv4Addr) -> Option<(NeighborState, Option<MacAddr>)> {
        let node = self.node(*self.index.get(&ip)?)?;
        Some(match node.state {
            State::Incomplete { .. } => (NeighborState::Incomplete, None),
            State::Reachable { mac, .. } => (NeighborState::Reachable, Some(mac)),
            State::Probe { mac, .. } => (NeighborState::Probe, Some(mac)),
        })
    }

    /// Resolves `ip` for sending. A confirmed entry older than
    /// `reachable_time` is still used, and a re-confirmation probe starts.
    ///
    /// A hit is a use: the entry becomes the most recently used, and an
    /// unsolicited entry becomes confirmed (it now carries our traffic).
    pub fn lookup(&mut self, now: Instant, ip: Ipv4Addr) -> Lookup {
        let Some(&idx) = self.index.get(&ip) else {
            return Lookup::Unknown;
        };
        let Some(Some(node)) = self.slots.get_mut(idx) else {
            return Lookup::Unknown;
        };
        let mac = match node.state {
            State::Incomplete { .. } => return Lookup::Unknown,
            State::Probe { mac, .. } => mac,
            State::Reachable { mac, until } => {
                if now >= until {
                    node.state = State::Probe {
                        mac,
                        attempts: 0,
                        next_attempt: now,
                    };
                    self.active.insert(ip);
                }
                mac
            }
        };
        self.touch(idx, Class::Confirmed);
        Lookup::Found(mac)
    }

    /// Queues an IP packet until `ip` is resolved, starting resolution if
    /// needed (the request goes out on the next [`poll`](Self::poll)).
    ///
    /// RFC 1122 2.3.2.2: "The link layer SHOULD save (rather than discard) at
    /// least one (the latest) packet of each set of packets destined to the
    /// same unresolved IP address, and transmit the saved packet when the
    /// address has been resolved." The first packet for an address is
    /// therefore held whatever the per-address limits say; later packets are
    /// refused at those limits ([`QueueError::QueueFull`]). Unlike the RFC's
    /// "(the latest)" and Linux, which drops the oldest, the earliest packets
    /// are kept: they often open a connection, and the refusal is reported to
    /// the caller, which counts it. Every packet,
    /// the first included, is refused if it would take the total over
    /// `max_total_queued_bytes` ([`QueueError::TotalQueueFull`]): that bound
    /// is what keeps memory finite.
    ///
    /// A new address in a full cache evicts the least recently used entry:
    /// unsolicited first, then pending, then confirmed.
    pub fn enqueue(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        packet: Vec<u8>,
    ) -> Result<(), QueueError> {
        let idx = match self.index.get(&ip) {
            Some(&idx) => {
                match self.node(idx) {
                    Some(Node {
                        state: State::Incomplete { .. },
                        ..
                    }) => self.touch(idx, Class::Pending),
                    // Resolved meanwhile: the caller should have looked up
                    // first, but there is nothing to wait for.
                    _ => return Err(QueueError::QueueFull),
                }
                idx
            }
            None => {
                if self.index.len() >= self.config.max_entries {
                    self.evict_one(now, &EVICTION_ORDER);
                    if self.index.len() >= self.config.max_entries {
                        return Err(QueueError::CacheFull);
                    }
                }
                let state = State::Incomplete {
                    attempts: 0,
                    next_attempt: now,
                    queue: VecDeque::new(),
                    queued_bytes: 0,
                    heap: 0,
                };
                self.active.insert(ip);
                self.insert(ip, state, Class::Pending, now)
            }
        };
        let charge = packet.len().saturating_add(Self::QUEUED_PACKET_OVERHEAD);
        let Some(Some(node)) = self.slots.get_mut(idx) else {
            return Err(QueueError::QueueFull);
        };
        match &mut node.state {
            State::Incomplete {
                queue,
                queued_bytes,
                heap,
                ..
            } => {
                if !queue.is_empty()
                    && (queue.len() >= self.config.max_queued_packets
                        || queued_bytes.saturating_add(charge) > self.config.max_queued_bytes)
                {
                    return Err(QueueError::QueueFull);
                }
                if self.queued_bytes.saturating_add(charge) > self.config.max_total_queued_bytes {
                    self.stats.total_queue_refused += 1;
                    return Err(QueueError::TotalQueueFull);
                }
                let slots_before = queue.capacity();
                let buffer = packet.capacity();
                queue.push_back(packet);
                let grown = queue.capacity().saturating_sub(slots_before) * size_of::<Vec<u8>>();
                let held = grown + buffer;
                *queued_bytes += charge;
                *heap += held;
                self.queued_bytes += charge;
                self.queue_heap += held;
                Ok(())
            }
            State::Reachable { .. } | State::Probe { .. } => Err(QueueError::QueueFull),
        }
    }

    /// Records that `ip` is at `mac`, as an ARP packet from it says. Call it
    /// for the sender of every ARP packet received (the caller checks that
    /// the sender is on the link's prefix, and not 0.0.0.0: an RFC 5227
    /// probe).
    ///
    /// RFC 826: "If the pair <protocol type, sender protocol address> is
    /// already in my translation table, update the sender hardware address
    /// field of the entry with the new information in the packet and set
    /// Merge_flag to true. ?Am I the target protocol address? Yes: If the
    /// Merge_flag is false, add the triplet <protocol type, sender protocol
    /// address, sender hardware address> to the translation table." So a
    /// missing entry is added only when the packet was for us
    /// (`we_are_target`). Such an entry is *unsolicited*: we did not ask, and
    /// the sender may be forged. It is evicted before any other, may only
    /// evict another unsolicited entry, and there are at most
    /// `max_unsolicited_entries` of them; when none can be made the packet is
    /// simply not learned ([`NeighborStats::unsolicited_refused`]) — if we
    /// need the address, resolution will ask.
    ///
    /// The update is refused, and counted in
    /// [`NeighborStats::mac_changes_refused`], when it would change the MAC of
    /// a confirmed entry less than `lock_time` after that MAC was set (Linux
    /// `locktime`). A pending entry takes the first answer, which then holds
    /// for `lock_time` too: of two racing replies, a forged one arriving
    /// second cannot replace the first. `lock_time` (1 s) is shorter than
    /// RFC 5227's ANNOUNCE_INTERVAL (2 s), so a host that really moved is
    /// learned at the latest from its second announcement. A change that is
    /// accepted is logged with `log::warn!` and counted in
    /// [`NeighborStats::mac_changes`].
    ///
    /// Returns the packets that were waiting for this address.
    pub fn learn(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: MacAddr,
        we_are_target: bool,
    ) -> Option<VecDeque<Vec<u8>>> {
        let until = later(now, self.config.reachable_time);
        let Some(&idx) = self.index.get(&ip) else {
            if we_are_target {
                self.learn_unsolicited(now, ip, mac, until);
            }
            return None;
        };
        let Some(Some(node)) = self.slots.get_mut(idx) else {
            return None;
        };
        let (old, was_probe) = match node.state {
            State::Incomplete { .. } => {
                // The first answer wins.
                let reachable = State::Reachable { mac, until };
                let State::Incomplete {
                    queue,
                    queued_bytes,
                    heap,
                    ..
                } = std::mem::replace(&mut node.state, reachable)
                else {
                    return None;
                };
                node.updated = now;
                self.queued_bytes = self.queued_bytes.saturating_sub(queued_bytes);
                self.queue_heap = self.queue_heap.saturating_sub(heap);
                self.active.remove(&ip);
                // Resolved because we asked: it carries our traffic.
                self.touch(idx, Class::Confirmed);
                return Some(queue);
            }
            State::Reachable { mac: old, .. } => (old, false),
            State::Probe { mac: old, .. } => (old, true),
        };
        if old != mac {
            if now.saturating_duration_since(node.updated) < self.config.lock_time {
                self.stats.mac_changes_refused += 1;
                log::debug!("ARP: {ip} is at {old}; {mac} ignored within the lock time");
                return None;
            }
            log::warn!("ARP: {ip} moved from {old} to {mac}");
            self.stats.mac_changes += 1;
            node.updated = now;
        } else if was_probe {
            // Re-confirmed: a state change, like Linux's PROBE -> REACHABLE.
            node.updated = now;
        }
        node.state = State::Reachable { mac, until };
        if was_probe {
            self.active.remove(&ip);
        }
        None
    }

    /// Forgets `ip`, dropping anything queued for it. Returns the number of
    /// packets dropped.
    pub fn remove(&mut self, ip: Ipv4Addr) -> usize {
        let Some(&idx) = self.index.get(&ip) else {
            return 0;
        };
        match self.remove_slot(idx) {
            Some(Node {
                state: State::Incomplete { queue, .. },
                ..
            }) => queue.len(),
            _ => 0,
        }
    }

    /// Runs timers: reports pending entries evicted since the last poll,
    /// sends requests that are due, gives up on addresses that never
    /// answered, and sweeps out entries that expired without being used.
    pub fn poll(&mut self, now: Instant, mut action: impl FnMut(NeighborAction)) {
        self.report_at = None;
        for (target, dropped) in self.evicted.drain(..) {
            action(NeighborAction::Unreachable {
                target,
                dropped,
                packets: VecDeque::new(),
            });
        }
        let retry = self.config.retry_interval;
        let max_attempts = self.config.max_attempts;
        let mut gone: Vec<usize> = Vec::new();
        for ip in &self.active {
            let Some(&idx) = self.index.get(ip) else {
                continue;
            };
            let Some(Some(node)) = self.slots.get_mut(idx) else {
                continue;
            };
            match &mut node.state {
                State::Incomplete {
                    attempts,
                    next_attempt,
                    queue,
                    ..
                } => {
                    if now < *next_attempt {
                        continue;
                    }
                    if *attempts >= max_attempts {
                        // The charges (queued_bytes, heap) stay on the
                        // entry and are released by remove_slot below.
                        let packets = std::mem::take(queue);
                        action(NeighborAction::Unreachable {
                            target: *ip,
                            dropped: packets.len(),
                            packets,
                        });
                        gone.push(idx);
                    } else {
                        *attempts += 1;
                        *next_attempt = later(now, retry);
                        action(NeighborAction::SendRequest {
                            target: *ip,
                            dst: None,
                        });
                    }
                }
                State::Probe {
                    mac,
                    attempts,
                    next_attempt,
                } => {
                    if now < *next_attempt {
                        continue;
                    }
                    if *attempts >= max_attempts {
                        action(NeighborAction::Unreachable {
                            target: *ip,
                            dropped: 0,
                            packets: VecDeque::new(),
                        });
                        gone.push(idx);
                    } else {
                        *attempts += 1;
                        *next_attempt = later(now, retry);
                        action(NeighborAction::SendRequest {
                            target: *ip,
                            dst: Some(*mac),
                        });
                    }
                }
                State::Reachable { .. } => {}
            }
        }
        for idx in gone {
            self.remove_slot(idx);
        }
        if self.next_sweep.is_some_and(|t| now >= t) {
            self.next_sweep = None;
            let horizon = self.config.reachable_time;
            // An entry unused for a full reachable_time after it went stale
            // is garbage. This walk happens once per reachable_time, not per
            // packet.
            let expired: Vec<usize> = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(idx, slot)| match slot {
                    Some(Node {
                        state: State::Reachable { until, .. },
                        ..
                    }) if now >= later(*until, horizon) => Some(idx),
                    _ => None,
                })
                .collect();
            for idx in expired {
                self.remove_slot(idx);
            }
            if !self.is_empty() {
                self.schedule_sweep(now);
            }
        }
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let timers =
            self.active
                .iter()
                .filter_map(|ip| match self.node(*self.index.get(ip)?)?.state {
                    State::Incomplete { next_attempt, .. } | State::Probe { next_attempt, .. } => {
                        Some(next_attempt)
                    }
                    State::Reachable { .. } => None,
                });
        timers.chain(self.next_sweep).chain(self.report_at).min()
    }

    fn schedule_sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(later(now, self.config.reachable_time));
        }
    }

    /// Adds an unsolicited entry if the rules allow it (see `learn`).
    fn learn_unsolicited(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr, until: Instant) {
        let cap = self
            .config
            .max_unsolicited_entries
            .min(self.config.max_entries);
        let unsolicited = self.lists[Class::Unsolicited as usize].len;
        if (unsolicited >= cap || self.index.len() >= self.config.max_entries)
            && !self.evict_one(now, &[Class::Unsolicited])
        {
            self.stats.unsolicited_refused += 1;
            return;
        }
        if self.index.len() >= self.config.max_entries
            || self.lists[Class::Unsolicited as usize].len >= cap
        {
            self.stats.unsolicited_refused += 1;
            return;
        }
        self.insert(ip, State::Reachable { mac, until }, Class::Unsolicited, now);
        self.stats.unsolicited_learned += 1;
        self.schedule_sweep(now);
    }

    /// Evicts the least recently used entry of the first non-empty class of
    /// `classes`. Returns false if there was none.
    fn evict_one(&mut self, now: Instant, classes: &[Class]) -> bool {
        for &class in classes {
            let head = self.lists[class as usize].head;
            if head == NIL {
                continue;
            }
            let Some(node) = self.remove_slot(head) else {
                continue;
            };
            match class {
                Class::Unsolicited => self.stats.evicted_unsolicited += 1,
                Class::Pending => self.stats.evicted_pending += 1,
                Class::Confirmed => self.stats.evicted_confirmed += 1,
            }
            log::debug!("ARP: cache full, evicted {} ({class:?})", node.ip);
            let dropped = match &node.state {
                State::Incomplete { queue, .. } => queue.len(),
                _ => 0,
            };
            if dropped > 0 {
                self.stats.evicted_packets_dropped += dropped as u64;
                self.report_eviction(now, node.ip, dropped);
            }
            return true;
        }
        false
    }

    /// Remembers dropped packets for the next `poll`. The list is bounded by
    /// `max_entries` reports; beyond that the counts are added to the last
    /// one (the total stays exact, the address does not).
    fn report_eviction(&mut self, now: Instant, ip: Ipv4Addr, dropped: usize) {
        if self.evicted.len() < self.config.max_entries.max(1) {
            self.evicted.push((ip, dropped));
        } else if let Some(last) = self.evicted.last_mut() {
            last.1 = last.1.saturating_add(dropped);
        }
        self.report_at = Some(self.report_at.map_or(now, |t| t.min(now)));
    }

    fn node(&self, idx: usize) -> Option<&Node> {
        self.slots.get(idx)?.as_ref()
    }

    fn node_mut(&mut self, idx: usize) -> Option<&mut Node> {
        self.slots.get_mut(idx)?.as_mut()
    }

    /// Stores a new entry as the most recently used of `class`.
    fn insert(&mut self, ip: Ipv4Addr, state: State, class: Class, now: Instant) -> usize {
        let node = Node {
            ip,
            state,
            class,
            updated: now,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(idx) if idx < self.slots.len() => {
                self.slots[idx] = Some(node);
                idx
            }
            _ => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.index.insert(ip, idx);
        self.push_back(idx, class);
        idx
    }

    /// Removes an entry from every structure, releasing its queue's charge.
    fn remove_slot(&mut self, idx: usize) -> Option<Node> {
        self.unlink(idx);
        let node = self.slots.get_mut(idx)?.take()?;
        self.free.push(idx);
        self.index.remove(&node.ip);
        self.active.remove(&node.ip);
        if let State::Incomplete {
            queued_bytes, heap, ..
        } = node.state
        {
            self.queued_bytes = self.queued_bytes.saturating_sub(queued_bytes);
            self.queue_heap = self.queue_heap.saturating_sub(heap);
        }
        if self.index.is_empty() {
            // Every slot is free: start afresh (keeps the capacity).
            self.slots.clear();
            self.free.clear();
        }
        Some(node)
    }

    /// Makes `idx` the most recently used entry of `class`, moving it there
    /// from its current list.
    fn touch(&mut self, idx: usize, class: Class) {
        let Some(node) = self.node(idx) else {
            return;
        };
        if node.class == class && self.lists[class as usize].tail == idx {
            return;
        }
        self.unlink(idx);
        self.push_back(idx, class);
    }

    fn unlink(&mut self, idx: usize) {
        let Some(node) = self.node_mut(idx) else {
            return;
        };
        let (class, prev, next) = (node.class, node.prev, node.next);
        node.prev = NIL;
        node.next = NIL;
        let list = &mut self.lists[class as usize];
        if list.head != idx && prev == NIL {
            // Not linked.
            return;
        }
        list.len = list.len.saturating_sub(1);
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        if let Some(p) = self.node_mut(prev) {
            p.next = next;
        }
        if let Some(n) = self.node_mut(next) {
            n.prev = prev;
        }
    }

    fn push_back(&mut self, idx: usize, class: Class) {
        let tail = self.lists[class as usize].tail;
        let Some(node) = self.node_mut(idx) else {
            return;
        };
        node.class = class;
        node.prev = tail;
        node.next = NIL;
        match self.node_mut(tail) {
            Some(t) => t.next = idx,
            None => self.lists[class as usize].head = idx,
        }
        let list = &mut self.lists[class as usize];
        list.tail = idx;
        list.len += 1;
    }
}

#[cfg(test)]
mod tests;
