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

mod slots;
mod types;

use slots::{Class, EVICTION_ORDER, List, NIL, Node, State};
pub use types::{Lookup, NeighborAction, NeighborConfig, NeighborState, NeighborStats, QueueError};

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
}

#[cfg(test)]
mod tests;
