//! The neighbor cache's public types: its configuration, the answers of
//! its calls, the actions it asks of its owner, and its counters.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use ethernet::MacAddr;

#[cfg(doc)]
use super::NeighborCache;

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
