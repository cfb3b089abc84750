//! The neighbor cache: IPv4 address -> MAC address, with resolution state.
//!
//! States follow the spirit of Linux's neighbor unreachability detection:
//!
//! * `Incomplete`: a request is out; packets for the address wait in a
//!   bounded queue. After `max_attempts` unanswered requests the entry is
//!   removed and its packets are dropped (and reported, so they are counted).
//! * `Reachable`: confirmed by an ARP packet from the neighbor less than
//!   `reachable_time` ago.
//! * `Probe`: the confirmation is older than `reachable_time` and the entry was
//!   used. Traffic keeps flowing to the old address while unicast requests
//!   re-confirm it; if none is answered the entry is removed.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
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
    /// Packets held per unresolved address.
    pub max_queued_packets: usize,
    /// Bytes held per unresolved address.
    pub max_queued_bytes: usize,
    /// Entries in the whole cache.
    pub max_entries: usize,
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
    /// The per-address queue is at its packet or byte limit.
    QueueFull,
    /// The cache holds `max_entries` live entries.
    CacheFull,
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
    /// Resolution of `target` failed; `dropped` queued packets were discarded.
    Unreachable {
        /// The address that did not answer.
        target: Ipv4Addr,
        /// Packets that were waiting for it.
        dropped: usize,
    },
}

#[derive(Debug)]
enum State {
    Incomplete {
        attempts: u32,
        next_attempt: Instant,
        queue: VecDeque<Vec<u8>>,
        queued_bytes: usize,
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

/// IPv4-to-Ethernet address resolution cache with per-address packet queues.
#[derive(Debug)]
pub struct NeighborCache {
    config: NeighborConfig,
    entries: HashMap<Ipv4Addr, State>,
    /// Addresses in `Incomplete` or `Probe`: the only ones with timers, so
    /// `poll` never walks the whole cache.
    // Ordered, so that a poll sends its requests in the same order every
    // run (a seeded simulation must replay exactly).
    active: BTreeSet<Ipv4Addr>,
    next_sweep: Option<Instant>,
}

impl NeighborCache {
    /// An empty cache.
    pub fn new(config: NeighborConfig) -> Self {
        NeighborCache {
            config,
            entries: HashMap::new(),
            active: BTreeSet::new(),
            next_sweep: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    /// Number of entries in any state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The state and address of `ip`, without side effects.
    pub fn state(&self, ip: Ipv4Addr) -> Option<(NeighborState, Option<MacAddr>)> {
        self.entries.get(&ip).map(|s| match s {
            State::Incomplete { .. } => (NeighborState::Incomplete, None),
            State::Reachable { mac, .. } => (NeighborState::Reachable, Some(*mac)),
            State::Probe { mac, .. } => (NeighborState::Probe, Some(*mac)),
        })
    }

    /// Resolves `ip` for sending. A confirmed entry older than
    /// `reachable_time` is still used, and a re-confirmation probe starts.
    pub fn lookup(&mut self, now: Instant, ip: Ipv4Addr) -> Lookup {
        let Some(state) = self.entries.get_mut(&ip) else {
            return Lookup::Unknown;
        };
        match *state {
            State::Incomplete { .. } => Lookup::Unknown,
            State::Probe { mac, .. } => Lookup::Found(mac),
            State::Reachable { mac, until } => {
                if now >= until {
                    *state = State::Probe {
                        mac,
                        attempts: 0,
                        next_attempt: now,
                    };
                    self.active.insert(ip);
                }
                Lookup::Found(mac)
            }
        }
    }

    /// Queues an IP packet until `ip` is resolved, starting resolution if
    /// needed (the request goes out on the next [`poll`](Self::poll)).
    pub fn enqueue(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        packet: Vec<u8>,
    ) -> Result<(), QueueError> {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.config.max_entries {
            self.evict_one(now);
            if self.entries.len() >= self.config.max_entries {
                return Err(QueueError::CacheFull);
            }
        }
        let (max_packets, max_bytes) =
            (self.config.max_queued_packets, self.config.max_queued_bytes);
        let state = self.entries.entry(ip).or_insert_with(|| State::Incomplete {
            attempts: 0,
            next_attempt: now,
            queue: VecDeque::new(),
            queued_bytes: 0,
        });
        match state {
            State::Incomplete {
                queue,
                queued_bytes,
                ..
            } => {
                if queue.len() >= max_packets || *queued_bytes + packet.len() > max_bytes {
                    return Err(QueueError::QueueFull);
                }
                *queued_bytes += packet.len();
                queue.push_back(packet);
                self.active.insert(ip);
                Ok(())
            }
            // Resolved meanwhile: the caller should have looked up first, but
            // there is nothing to wait for.
            State::Reachable { .. } | State::Probe { .. } => Err(QueueError::QueueFull),
        }
    }

    /// Records that `ip` is at `mac`, as an ARP packet from it says.
    ///
    /// RFC 826: "If the pair <protocol type, sender protocol address> is
    /// already in my translation table, update the sender hardware address
    /// field of the entry with the new information in the packet". When the
    /// packet was for us (`we_are_target`), a missing entry is added.
    ///
    /// Returns the packets that were waiting for this address.
    pub fn learn(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: MacAddr,
        we_are_target: bool,
    ) -> Option<VecDeque<Vec<u8>>> {
        let reachable = State::Reachable {
            mac,
            until: now + self.config.reachable_time,
        };
        match self.entries.entry(ip) {
            Entry::Occupied(mut e) => {
                self.active.remove(&ip);
                match std::mem::replace(e.get_mut(), reachable) {
                    State::Incomplete { queue, .. } => Some(queue),
                    _ => None,
                }
            }
            Entry::Vacant(_) if we_are_target => {
                if self.entries.len() >= self.config.max_entries {
                    self.evict_one(now);
                }
                if self.entries.len() < self.config.max_entries {
                    self.entries.insert(ip, reachable);
                    self.schedule_sweep(now);
                }
                None
            }
            Entry::Vacant(_) => None,
        }
    }

    /// Forgets `ip`, dropping anything queued for it. Returns the number of
    /// packets dropped.
    pub fn remove(&mut self, ip: Ipv4Addr) -> usize {
        self.active.remove(&ip);
        match self.entries.remove(&ip) {
            Some(State::Incomplete { queue, .. }) => queue.len(),
            _ => 0,
        }
    }

    /// Runs timers: sends requests that are due, gives up on addresses that
    /// never answered, and sweeps out entries that expired without being used.
    pub fn poll(&mut self, now: Instant, mut action: impl FnMut(NeighborAction)) {
        let retry = self.config.retry_interval;
        let max_attempts = self.config.max_attempts;
        let mut gone: Vec<Ipv4Addr> = Vec::new();
        for ip in &self.active {
            let Some(state) = self.entries.get_mut(ip) else {
                continue;
            };
            match state {
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
                        action(NeighborAction::Unreachable {
                            target: *ip,
                            dropped: queue.len(),
                        });
                        gone.push(*ip);
                    } else {
                        *attempts += 1;
                        *next_attempt = now + retry;
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
                        });
                        gone.push(*ip);
                    } else {
                        *attempts += 1;
                        *next_attempt = now + retry;
                        action(NeighborAction::SendRequest {
                            target: *ip,
                            dst: Some(*mac),
                        });
                    }
                }
                State::Reachable { .. } => {}
            }
        }
        for ip in gone {
            self.active.remove(&ip);
            self.entries.remove(&ip);
        }
        if self.next_sweep.is_some_and(|t| now >= t) {
            self.next_sweep = None;
            let horizon = self.config.reachable_time;
            // An entry unused for a full reachable_time after it went stale
            // is garbage. This walk happens once per reachable_time, not per
            // packet.
            self.entries.retain(|_, s| match s {
                State::Reachable { until, .. } => now < *until + horizon,
                _ => true,
            });
            if !self.entries.is_empty() {
                self.schedule_sweep(now);
            }
        }
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let timers = self
            .active
            .iter()
            .filter_map(|ip| match self.entries.get(ip) {
                Some(State::Incomplete { next_attempt, .. })
                | Some(State::Probe { next_attempt, .. }) => Some(*next_attempt),
                _ => None,
            });
        timers.chain(self.next_sweep).min()
    }

    fn schedule_sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.reachable_time);
        }
    }

    /// Makes room by removing one expired confirmed entry, if any. Only called
    /// when the cache is full, which a host with a sane neighbor count never is.
    fn evict_one(&mut self, now: Instant) {
        let victim = self.entries.iter().find_map(|(ip, s)| match s {
            State::Reachable { until, .. } if now >= *until => Some(*ip),
            _ => None,
        });
        if let Some(ip) = victim {
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn actions(cache: &mut NeighborCache, now: Instant) -> Vec<NeighborAction> {
        let mut v = Vec::new();
        cache.poll(now, |a| v.push(a));
        v
    }

    #[test]
    fn queue_then_resolve_flushes_in_order() {
        let t0 = Instant::now();
        let mut c = NeighborCache::new(NeighborConfig::default());
        assert_eq!(c.lookup(t0, IP), Lookup::Unknown);
        c.enqueue(t0, IP, vec![1]).unwrap();
        c.enqueue(t0, IP, vec![2]).unwrap();
        assert_eq!(c.poll_at(), Some(t0));
        assert_eq!(
            actions(&mut c, t0),
            vec![NeighborAction::SendRequest {
                target: IP,
                dst: None
            }]
        );
        assert_eq!(c.state(IP), Some((NeighborState::Incomplete, None)));
        let flushed = c.learn(t0, IP, MAC, false).unwrap();
        assert_eq!(flushed, VecDeque::from(vec![vec![1], vec![2]]));
        assert_eq!(c.lookup(t0, IP), Lookup::Found(MAC));
    }

    #[test]
    fn retries_then_gives_up_and_reports_drops() {
        let t0 = Instant::now();
        let cfg = NeighborConfig::default();
        let mut c = NeighborCache::new(cfg.clone());
        c.enqueue(t0, IP, vec![0; 100]).unwrap();
        c.enqueue(t0, IP, vec![0; 100]).unwrap();
        let mut requests = 0;
        let mut now = t0;
        let mut dropped = None;
        for _ in 0..10 {
            for a in actions(&mut c, now) {
                match a {
                    NeighborAction::SendRequest { .. } => requests += 1,
                    NeighborAction::Unreachable { dropped: d, .. } => dropped = Some(d),
                }
            }
            now += cfg.retry_interval;
        }
        assert_eq!(requests, cfg.max_attempts);
        assert_eq!(dropped, Some(2));
        assert!(c.is_empty());
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn queue_is_bounded() {
        let t0 = Instant::now();
        let cfg = NeighborConfig {
            max_queued_packets: 3,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        for _ in 0..3 {
            c.enqueue(t0, IP, vec![0; 10]).unwrap();
        }
        assert_eq!(c.enqueue(t0, IP, vec![0; 10]), Err(QueueError::QueueFull));
        let cfg = NeighborConfig {
            max_queued_bytes: 1000,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        c.enqueue(t0, IP, vec![0; 600]).unwrap();
        assert_eq!(c.enqueue(t0, IP, vec![0; 600]), Err(QueueError::QueueFull));
    }

    #[test]
    fn stale_entry_is_probed_by_unicast_and_removed_without_answer() {
        let t0 = Instant::now();
        let cfg = NeighborConfig::default();
        let mut c = NeighborCache::new(cfg.clone());
        c.learn(t0, IP, MAC, true);
        assert_eq!(c.state(IP), Some((NeighborState::Reachable, Some(MAC))));
        let later = t0 + cfg.reachable_time;
        // Still used while stale, and a probe starts.
        assert_eq!(c.lookup(later, IP), Lookup::Found(MAC));
        assert_eq!(c.state(IP).unwrap().0, NeighborState::Probe);
        assert_eq!(
            actions(&mut c, later),
            vec![NeighborAction::SendRequest {
                target: IP,
                dst: Some(MAC)
            }]
        );
        // An answer re-confirms it.
        c.learn(later, IP, MAC, false);
        assert_eq!(c.state(IP).unwrap().0, NeighborState::Reachable);
        // Stale again, and this time nobody answers.
        let later = later + cfg.reachable_time;
        c.lookup(later, IP);
        let mut now = later;
        let mut unreachable = false;
        for _ in 0..=cfg.max_attempts {
            for a in actions(&mut c, now) {
                if let NeighborAction::Unreachable { dropped, .. } = a {
                    assert_eq!(dropped, 0);
                    unreachable = true;
                }
            }
            now += cfg.retry_interval;
        }
        assert!(unreachable);
        assert_eq!(c.lookup(now, IP), Lookup::Unknown);
    }

    #[test]
    fn merge_rule_only_adds_when_targeted() {
        let t0 = Instant::now();
        let mut c = NeighborCache::new(NeighborConfig::default());
        assert!(c.learn(t0, IP, MAC, false).is_none());
        assert!(c.state(IP).is_none());
        c.learn(t0, IP, MAC, true);
        let new_mac = MacAddr([2, 0, 0, 0, 0, 9]);
        c.learn(t0, IP, new_mac, false);
        assert_eq!(c.lookup(t0, IP), Lookup::Found(new_mac));
    }

    #[test]
    fn unused_entries_are_swept() {
        let t0 = Instant::now();
        let cfg = NeighborConfig::default();
        let mut c = NeighborCache::new(cfg.clone());
        c.learn(t0, IP, MAC, true);
        let sweep = c.poll_at().unwrap();
        assert_eq!(sweep, t0 + cfg.reachable_time);
        actions(&mut c, sweep);
        assert_eq!(c.len(), 1, "expired but within the grace period");
        let sweep = c.poll_at().unwrap();
        actions(&mut c, sweep);
        assert!(c.is_empty());
    }

    #[test]
    fn cache_size_is_bounded() {
        let t0 = Instant::now();
        let cfg = NeighborConfig {
            max_entries: 4,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        for i in 0..4 {
            c.enqueue(t0, Ipv4Addr::new(10, 0, 1, i), vec![0]).unwrap();
        }
        assert_eq!(
            c.enqueue(t0, Ipv4Addr::new(10, 0, 2, 1), vec![0]),
            Err(QueueError::CacheFull)
        );
    }
}
