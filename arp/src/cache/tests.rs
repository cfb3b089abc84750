//! Tests of the neighbor cache.

use super::*;

use std::cell::RefCell;
use std::sync::Once;

const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const OTHER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);
const OVERHEAD: usize = NeighborCache::QUEUED_PACKET_OVERHEAD;

// A logger that keeps, per test thread, what was logged at warn level.
struct Capture;

thread_local! {
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            WARNINGS.with(|w| w.borrow_mut().push(record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn take_warnings() -> Vec<String> {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Another logger may already be installed: then nothing is
        // captured and the caller's assertion says so.
        let _ = log::set_logger(&Capture);
        log::set_max_level(log::LevelFilter::Trace);
    });
    WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff))
}

fn mac(i: u32) -> MacAddr {
    let b = i.to_be_bytes();
    MacAddr([2, 0, b[0], b[1], b[2], b[3]])
}

fn actions(cache: &mut NeighborCache, now: Instant) -> Vec<NeighborAction> {
    let mut v = Vec::new();
    cache.poll(now, |a| v.push(a));
    v
}

/// Resolves `ip` the way the stack does: a queued packet, then the reply.
fn resolve(c: &mut NeighborCache, now: Instant, ip: Ipv4Addr, mac: MacAddr) {
    c.enqueue(now, ip, vec![0; 10]).unwrap();
    assert!(c.learn(now, ip, mac, false).is_some());
}

/// The internal structures agree with each other and with the limits.
fn check(c: &NeighborCache) {
    let cfg = c.config();
    assert!(c.len() <= cfg.max_entries);
    assert!(c.queued_bytes() <= cfg.max_total_queued_bytes);
    let mut linked = 0;
    for (i, list) in c.lists.iter().enumerate() {
        let mut prev = NIL;
        let mut at = list.head;
        let mut n = 0;
        while at != NIL {
            let node = c.node(at).expect("listed slot is live");
            assert_eq!(node.class as usize, i);
            assert_eq!(node.prev, prev);
            assert_eq!(c.index.get(&node.ip), Some(&at));
            prev = at;
            at = node.next;
            n += 1;
            assert!(n <= c.len(), "cycle in list {i}");
        }
        assert_eq!(list.tail, prev);
        assert_eq!(list.len, n);
        linked += n;
    }
    assert_eq!(linked, c.len());
    let cap = cfg.max_unsolicited_entries.min(cfg.max_entries);
    assert!(c.lists[Class::Unsolicited as usize].len <= cap);
    let (mut queued, mut heap, mut timers) = (0, 0, 0);
    for (ip, &idx) in &c.index {
        let node = c.node(idx).expect("indexed slot is live");
        assert_eq!(node.ip, *ip);
        match &node.state {
            State::Incomplete {
                queue,
                queued_bytes,
                heap: h,
                ..
            } => {
                assert_eq!(node.class, Class::Pending);
                assert_eq!(
                    *queued_bytes,
                    queue.iter().map(|p| p.len() + OVERHEAD).sum::<usize>()
                );
                queued += queued_bytes;
                heap += h;
                assert!(c.active.contains(ip));
                timers += 1;
            }
            State::Probe { .. } => {
                assert_ne!(node.class, Class::Pending);
                assert!(c.active.contains(ip));
                timers += 1;
            }
            State::Reachable { .. } => {
                assert_ne!(node.class, Class::Pending);
                assert!(!c.active.contains(ip));
            }
        }
    }
    assert_eq!(timers, c.active.len());
    assert_eq!(queued, c.queued_bytes);
    assert_eq!(heap, c.queue_heap);
    assert_eq!(
        c.slots.iter().filter(|s| s.is_some()).count() + c.free.len(),
        c.slots.len()
    );
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
    assert_eq!(c.queued_bytes(), 0);
    check(&c);
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
    assert_eq!(c.queued_bytes(), 0);
    check(&c);
}

#[test]
fn failed_resolution_hands_back_its_packets_at_three_seconds() {
    let t0 = Instant::now();
    let cfg = NeighborConfig::default();
    let mut c = NeighborCache::new(cfg);
    c.enqueue(t0, IP, vec![1; 10]).unwrap();
    c.enqueue(t0, IP, vec![2; 20]).unwrap();
    let mut now = t0;
    let mut requests = Vec::new();
    let mut given_up = None;
    while given_up.is_none() {
        for a in actions(&mut c, now) {
            match a {
                NeighborAction::SendRequest { .. } => requests.push(now - t0),
                NeighborAction::Unreachable {
                    dropped, packets, ..
                } => {
                    assert_eq!(dropped, 2);
                    assert_eq!(
                        packets.into_iter().collect::<Vec<_>>(),
                        vec![vec![1; 10], vec![2; 20]]
                    );
                    given_up = Some(now - t0);
                }
            }
        }
        if given_up.is_none() {
            now = c.poll_at().expect("a timer is running");
        }
    }
    let secs = Duration::from_secs;
    assert_eq!(requests, vec![secs(0), secs(1), secs(2)]);
    assert_eq!(given_up, Some(secs(3)), "Linux gives up after 3 x 1 s");
    assert_eq!(c.queued_bytes(), 0);
    assert_eq!(c.poll_at(), None);
    check(&c);
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
    check(&c);
}

#[test]
fn first_packet_is_always_queued() {
    // RFC 1122 2.3.2.2: at least one packet per unresolved address, even
    // when it is larger than the per-address limits.
    let t0 = Instant::now();
    let cfg = NeighborConfig {
        max_queued_packets: 0,
        max_queued_bytes: 10,
        ..NeighborConfig::default()
    };
    let mut c = NeighborCache::new(cfg);
    c.enqueue(t0, IP, vec![7; 1500]).unwrap();
    assert_eq!(c.enqueue(t0, IP, vec![8]), Err(QueueError::QueueFull));
    assert_eq!(c.queued_bytes(), 1500 + OVERHEAD);
    assert_eq!(c.learn(t0, IP, MAC, false).unwrap(), vec![vec![7; 1500]]);
    check(&c);
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
    check(&c);
}

#[test]
fn merge_rule_only_adds_when_targeted() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig::default());
    assert!(c.learn(t0, IP, MAC, false).is_none());
    assert!(c.state(IP).is_none());
    c.learn(t0, IP, MAC, true);
    // An existing entry is updated by any packet from the sender (once
    // the lock time is over).
    let t1 = t0 + c.config().lock_time;
    c.learn(t1, IP, OTHER_MAC, false);
    assert_eq!(c.lookup(t1, IP), Lookup::Found(OTHER_MAC));
    check(&c);
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
    check(&c);
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
    // A fifth address evicts the least recently used pending one, whose
    // packet is reported as dropped.
    c.enqueue(t0, Ipv4Addr::new(10, 0, 2, 1), vec![0]).unwrap();
    assert_eq!(c.len(), 4);
    assert!(c.state(Ipv4Addr::new(10, 0, 1, 0)).is_none());
    assert_eq!(c.stats().evicted_pending, 1);
    // With no room at all, nothing can be queued.
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 0,
        ..NeighborConfig::default()
    });
    assert_eq!(c.enqueue(t0, IP, vec![0]), Err(QueueError::CacheFull));
    c.learn(t0, IP, MAC, true);
    assert!(c.is_empty());
    assert_eq!(c.stats().unsolicited_refused, 1);
    check(&c);
}

#[test]
fn eviction_order_is_unsolicited_then_pending_then_confirmed() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 6,
        max_unsolicited_entries: 6,
        ..NeighborConfig::default()
    });
    // Inserted in the reverse of the eviction order, so that recency
    // alone would evict the confirmed entries first.
    resolve(&mut c, t0, ip(1), mac(1));
    resolve(&mut c, t0, ip(2), mac(2));
    c.enqueue(t0, ip(3), vec![3]).unwrap();
    c.enqueue(t0, ip(4), vec![4]).unwrap();
    c.learn(t0, ip(5), mac(5), true);
    c.learn(t0, ip(6), mac(6), true);
    assert_eq!(c.len(), 6);
    check(&c);
    let mut evicted = Vec::new();
    for i in 100..106 {
        // Each new address is resolved at once, so that it is a confirmed
        // entry more recent than 1 and 2 when their turn comes.
        resolve(&mut c, t0, ip(i), mac(i));
        check(&c);
        let gone: Vec<u32> = [1, 2, 3, 4, 5, 6]
            .into_iter()
            .filter(|&j| c.state(ip(j)).is_none() && !evicted.contains(&j))
            .collect();
        assert_eq!(gone.len(), 1, "one eviction per new entry");
        evicted.push(gone[0]);
    }
    assert_eq!(evicted, vec![5, 6, 3, 4, 1, 2]);
    let s = c.stats();
    assert_eq!(
        (
            s.evicted_unsolicited,
            s.evicted_pending,
            s.evicted_confirmed
        ),
        (2, 2, 2)
    );
    assert_eq!(s.evictions(), 6);
    assert_eq!(s.evicted_packets_dropped, 2);
}

#[test]
fn eviction_within_a_class_is_least_recently_used() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 3,
        ..NeighborConfig::default()
    });
    for i in 1..=3 {
        resolve(&mut c, t0, ip(i), mac(i));
    }
    // Use 1 then 2: 3 is now the least recently used, then 1.
    assert_eq!(c.lookup(t0, ip(1)), Lookup::Found(mac(1)));
    assert_eq!(c.lookup(t0, ip(2)), Lookup::Found(mac(2)));
    c.enqueue(t0, ip(4), vec![0]).unwrap();
    assert!(c.state(ip(3)).is_none());
    c.learn(t0, ip(4), mac(4), false);
    c.enqueue(t0, ip(5), vec![0]).unwrap();
    assert!(c.state(ip(1)).is_none());
    assert!(c.state(ip(2)).is_some());
    // Pending entries too: queueing to one makes it recent.
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 3,
        ..NeighborConfig::default()
    });
    for i in 1..=3 {
        c.enqueue(t0, ip(i), vec![0]).unwrap();
    }
    c.enqueue(t0, ip(1), vec![0]).unwrap();
    c.enqueue(t0, ip(4), vec![0]).unwrap();
    assert!(c.state(ip(2)).is_none());
    assert!(c.state(ip(1)).is_some());
    check(&c);
}

#[test]
fn lookup_makes_an_unsolicited_entry_confirmed() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 2,
        ..NeighborConfig::default()
    });
    c.learn(t0, ip(1), mac(1), true);
    c.enqueue(t0, ip(2), vec![0]).unwrap();
    // Our traffic uses the unsolicited entry: it is no longer the first
    // to go, the pending one is.
    assert_eq!(c.lookup(t0, ip(1)), Lookup::Found(mac(1)));
    c.enqueue(t0, ip(3), vec![0]).unwrap();
    assert!(c.state(ip(1)).is_some());
    assert!(c.state(ip(2)).is_none());
    assert_eq!(c.stats().evicted_pending, 1);
    check(&c);
}

#[test]
fn unsolicited_entries_only_evict_each_other_and_are_capped() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 4,
        max_unsolicited_entries: 2,
        ..NeighborConfig::default()
    });
    resolve(&mut c, t0, ip(1), mac(1));
    c.enqueue(t0, ip(2), vec![0]).unwrap();
    for i in 10..20 {
        c.learn(t0, ip(i), mac(i), true);
        check(&c);
    }
    // Capped at 2, the most recent ones; nothing else was touched.
    assert_eq!(c.len(), 4);
    assert!(c.state(ip(18)).is_some() && c.state(ip(19)).is_some());
    assert_eq!(
        c.state(ip(1)),
        Some((NeighborState::Reachable, Some(mac(1))))
    );
    assert_eq!(c.state(ip(2)), Some((NeighborState::Incomplete, None)));
    let s = c.stats();
    assert_eq!(s.unsolicited_learned, 10);
    assert_eq!(s.evicted_unsolicited, 8);
    assert_eq!(s.evicted_pending + s.evicted_confirmed, 0);
    // A cache full of entries we need refuses unsolicited ones.
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 2,
        ..NeighborConfig::default()
    });
    resolve(&mut c, t0, ip(1), mac(1));
    c.enqueue(t0, ip(2), vec![0]).unwrap();
    c.learn(t0, ip(3), mac(3), true);
    assert!(c.state(ip(3)).is_none());
    assert_eq!(c.stats().unsolicited_refused, 1);
    // A cap of 0 turns unsolicited learning off.
    let mut c = NeighborCache::new(NeighborConfig {
        max_unsolicited_entries: 0,
        ..NeighborConfig::default()
    });
    c.learn(t0, IP, MAC, true);
    assert!(c.is_empty());
    assert_eq!(c.stats().unsolicited_refused, 1);
    check(&c);
}

#[test]
fn evicted_pending_packets_are_reported_by_the_next_poll() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 1,
        ..NeighborConfig::default()
    });
    c.enqueue(t0, ip(1), vec![1]).unwrap();
    c.enqueue(t0, ip(1), vec![2]).unwrap();
    assert_eq!(
        actions(&mut c, t0),
        vec![NeighborAction::SendRequest {
            target: ip(1),
            dst: None
        }]
    );
    let t1 = t0 + Duration::from_millis(300);
    c.enqueue(t1, ip(2), vec![3]).unwrap();
    assert_eq!(c.stats().evicted_packets_dropped, 2);
    assert_eq!(c.queued_bytes(), 1 + OVERHEAD);
    // The report makes the poll due now.
    assert_eq!(c.poll_at(), Some(t1));
    assert_eq!(
        actions(&mut c, t1),
        vec![
            NeighborAction::Unreachable {
                target: ip(1),
                dropped: 2,
                packets: Default::default(),
            },
            NeighborAction::SendRequest {
                target: ip(2),
                dst: None
            },
        ]
    );
    assert_eq!(c.poll_at(), Some(t1 + c.config().retry_interval));
    // An evicted entry without packets is not reported.
    let mut c = NeighborCache::new(NeighborConfig {
        max_entries: 1,
        ..NeighborConfig::default()
    });
    resolve(&mut c, t0, ip(1), mac(1));
    c.enqueue(t0, ip(2), vec![0]).unwrap();
    assert_eq!(c.stats().evicted_confirmed, 1);
    assert_eq!(c.stats().evicted_packets_dropped, 0);
    assert!(
        !actions(&mut c, t0)
            .iter()
            .any(|a| matches!(a, NeighborAction::Unreachable { .. }))
    );
    check(&c);
}

#[test]
fn total_queue_cap_applies_across_addresses() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_total_queued_bytes: 3 * (100 + OVERHEAD),
        ..NeighborConfig::default()
    });
    c.enqueue(t0, ip(1), vec![0; 100]).unwrap();
    c.enqueue(t0, ip(1), vec![0; 100]).unwrap();
    c.enqueue(t0, ip(2), vec![0; 100]).unwrap();
    assert_eq!(c.queued_bytes(), 3 * (100 + OVERHEAD));
    assert_eq!(
        c.enqueue(t0, ip(3), vec![0; 100]),
        Err(QueueError::TotalQueueFull)
    );
    assert_eq!(
        c.enqueue(t0, ip(2), vec![]),
        Err(QueueError::TotalQueueFull)
    );
    assert_eq!(c.stats().total_queue_refused, 2);
    // The refused address still gets resolved (its entry exists), and
    // resolving another one frees room.
    assert_eq!(c.state(ip(3)), Some((NeighborState::Incomplete, None)));
    assert_eq!(c.learn(t0, ip(1), mac(1), false).unwrap().len(), 2);
    assert_eq!(c.queued_bytes(), 100 + OVERHEAD);
    c.enqueue(t0, ip(3), vec![0; 100]).unwrap();
    // And so does removing one.
    assert_eq!(c.remove(ip(2)), 1);
    assert_eq!(c.queued_bytes(), 100 + OVERHEAD);
    check(&c);
}

#[test]
fn zero_length_packets_are_charged_the_overhead() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig {
        max_queued_packets: usize::MAX,
        max_queued_bytes: usize::MAX,
        max_total_queued_bytes: 100 * OVERHEAD,
        ..NeighborConfig::default()
    });
    let mut accepted = 0;
    for i in 0..1000 {
        match c.enqueue(t0, ip(i % 7), Vec::new()) {
            Ok(()) => accepted += 1,
            Err(e) => assert_eq!(e, QueueError::TotalQueueFull),
        }
    }
    assert_eq!(accepted, 100);
    assert_eq!(c.queued_bytes(), 100 * OVERHEAD);
    assert_eq!(c.stats().total_queue_refused, 900);
    // The same per address.
    let mut c = NeighborCache::new(NeighborConfig {
        max_queued_packets: usize::MAX,
        max_queued_bytes: 10 * OVERHEAD,
        ..NeighborConfig::default()
    });
    let accepted = (0..1000)
        .filter(|_| c.enqueue(t0, IP, Vec::new()).is_ok())
        .count();
    assert_eq!(accepted, 10);
    check(&c);
}

#[test]
fn memory_used_counts_queues_and_entries() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig::default());
    assert_eq!(c.memory_used(), 0);
    c.enqueue(t0, IP, vec![0; 10_000]).unwrap();
    let with_packet = c.memory_used();
    assert!(with_packet >= 10_000 + size_of::<Node>());
    c.learn(t0, IP, MAC, false);
    assert!(c.memory_used() < with_packet - 10_000 + 1);
    assert!(c.memory_used() >= size_of::<Node>());
}

#[test]
fn lock_time_refuses_a_new_mac_then_accepts_it_with_a_warning() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig::default());
    take_warnings();
    resolve(&mut c, t0, IP, MAC);
    // A second MAC within the lock time is ignored.
    let t1 = t0 + Duration::from_millis(999);
    assert!(c.learn(t1, IP, OTHER_MAC, false).is_none());
    assert!(c.learn(t1, IP, OTHER_MAC, true).is_none());
    assert_eq!(c.lookup(t1, IP), Lookup::Found(MAC));
    assert_eq!(c.stats().mac_changes_refused, 2);
    assert_eq!(c.stats().mac_changes, 0);
    assert!(take_warnings().is_empty());
    // Confirming the same MAC does not extend the lock.
    c.learn(t1, IP, MAC, false);
    // After the lock time, the change is taken, logged and counted.
    let t2 = t0 + Duration::from_secs(1);
    c.learn(t2, IP, OTHER_MAC, false);
    assert_eq!(c.lookup(t2, IP), Lookup::Found(OTHER_MAC));
    assert_eq!(c.stats().mac_changes, 1);
    let warnings = take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&IP.to_string()));
    assert!(warnings[0].contains(&MAC.to_string()));
    assert!(warnings[0].contains(&OTHER_MAC.to_string()));
    // And it starts a new lock: flipping back at once is refused.
    c.learn(t2 + Duration::from_millis(1), IP, MAC, false);
    assert_eq!(
        c.state(IP),
        Some((NeighborState::Reachable, Some(OTHER_MAC)))
    );
    assert_eq!(c.stats().mac_changes_refused, 3);
    check(&c);
}

#[test]
fn first_answer_wins_for_the_lock_time() {
    let t0 = Instant::now();
    let mut c = NeighborCache::new(NeighborConfig::default());
    c.enqueue(t0, IP, vec![1]).unwrap();
    let t1 = t0 + Duration::from_millis(5);
    assert_eq!(c.learn(t1, IP, MAC, false).unwrap(), vec![vec![1]]);
    // A racing second answer (a forger's, or the victim's) is ignored.
    assert!(
        c.learn(t1 + Duration::from_millis(1), IP, OTHER_MAC, false)
            .is_none()
    );
    assert_eq!(c.state(IP), Some((NeighborState::Reachable, Some(MAC))));
    assert_eq!(c.stats().mac_changes_refused, 1);
    check(&c);
}

#[test]
fn probe_entry_is_locked_too() {
    let t0 = Instant::now();
    let cfg = NeighborConfig::default();
    let mut c = NeighborCache::new(cfg.clone());
    resolve(&mut c, t0, IP, MAC);
    let stale = t0 + cfg.reachable_time;
    c.lookup(stale, IP);
    assert_eq!(c.state(IP).unwrap().0, NeighborState::Probe);
    // Long after the last update: a new MAC is accepted, and re-confirms.
    c.learn(stale, IP, OTHER_MAC, false);
    assert_eq!(
        c.state(IP),
        Some((NeighborState::Reachable, Some(OTHER_MAC)))
    );
    assert_eq!(c.poll_at(), None);
    // Probing again right after a change: locked.
    let stale2 = stale + cfg.reachable_time;
    c.lookup(stale2, IP);
    c.learn(stale2, IP, OTHER_MAC, false);
    c.learn(stale2 + Duration::from_millis(10), IP, MAC, false);
    assert_eq!(
        c.state(IP),
        Some((NeighborState::Reachable, Some(OTHER_MAC)))
    );
    assert_eq!(c.stats().mac_changes, 1);
    assert_eq!(c.stats().mac_changes_refused, 1);
    check(&c);
}

#[test]
fn spoofed_request_flood_keeps_used_entries_and_bounds_memory() {
    let t0 = Instant::now();
    let cfg = NeighborConfig::default();
    let mut c = NeighborCache::new(cfg.clone());
    let gateway = Ipv4Addr::new(192, 168, 0, 1);
    let gw_mac = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    resolve(&mut c, t0, gateway, gw_mac);
    assert_eq!(c.lookup(t0, gateway), Lookup::Found(gw_mac));
    // A resolution in progress survives too.
    let pending = Ipv4Addr::new(192, 168, 0, 2);
    c.enqueue(t0, pending, vec![0; 100]).unwrap();
    let mut now = t0;
    let mut memory_mid = 0;
    for i in 0..100_000u32 {
        if i % 1000 == 0 {
            now += Duration::from_millis(1);
        }
        c.learn(now, ip(i), mac(i), true);
        assert!(c.len() <= cfg.max_entries);
        if i == 10_000 {
            memory_mid = c.memory_used();
        }
    }
    check(&c);
    assert_eq!(c.lookup(now, gateway), Lookup::Found(gw_mac));
    assert_eq!(c.state(pending), Some((NeighborState::Incomplete, None)));
    assert_eq!(c.len(), cfg.max_unsolicited_entries + 2);
    let s = c.stats();
    assert_eq!(s.evicted_pending + s.evicted_confirmed, 0);
    assert_eq!(s.unsolicited_learned, 100_000);
    assert_eq!(
        s.evicted_unsolicited,
        100_000 - cfg.max_unsolicited_entries as u64
    );
    // Memory stopped growing long ago, and is small.
    let memory = c.memory_used();
    assert!(memory <= memory_mid, "{memory} > {memory_mid}");
    assert!(memory < 256 * 1024, "{memory}");
    // The flood did not leave timers or reports behind.
    let acts = actions(&mut c, now);
    assert!(acts.iter().all(|a| matches!(
        a,
        NeighborAction::SendRequest { target, .. } if *target == pending
    )));
}

#[test]
fn flood_into_a_full_cache_evicts_nothing_we_use() {
    let t0 = Instant::now();
    let cfg = NeighborConfig {
        max_entries: 64,
        max_unsolicited_entries: 64,
        ..NeighborConfig::default()
    };
    let mut c = NeighborCache::new(cfg);
    for i in 0..64 {
        resolve(&mut c, t0, ip(1_000_000 + i), mac(i));
    }
    for i in 0..100_000 {
        c.learn(t0, ip(i), mac(i), true);
    }
    assert_eq!(c.len(), 64);
    assert_eq!(c.stats().unsolicited_refused, 100_000);
    assert_eq!(c.stats().evictions(), 0);
    check(&c);
}

#[test]
fn random_operations_keep_the_invariants() {
    // A deterministic mix of every operation against small limits. Every
    // packet accepted is accounted for: flushed, removed, reported as
    // dropped by `poll`, or still queued.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let t0 = Instant::now();
    let mut totals = NeighborStats::default();
    for max_entries in [0usize, 1, 2, 5, 16] {
        let cfg = NeighborConfig {
            max_entries,
            max_unsolicited_entries: max_entries / 2,
            max_queued_packets: 4,
            max_queued_bytes: 600,
            max_total_queued_bytes: 2000,
            reachable_time: Duration::from_millis(500),
            retry_interval: Duration::from_millis(100),
            lock_time: Duration::from_millis(50),
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(cfg);
        let mut now = t0;
        let (mut accepted, mut flushed, mut removed, mut reported) = (0, 0, 0, 0);
        for _ in 0..20_000 {
            now += Duration::from_millis(rand(20));
            let a = ip(rand(24) as u32);
            match rand(7) {
                0 => {
                    c.lookup(now, a);
                }
                1 | 2 => {
                    if c.enqueue(now, a, vec![0; rand(300) as usize]).is_ok() {
                        accepted += 1;
                    }
                }
                3 | 4 => {
                    let we_are_target = rand(2) == 0;
                    if let Some(q) = c.learn(now, a, mac(rand(3) as u32), we_are_target) {
                        flushed += q.len();
                    }
                }
                5 => removed += c.remove(a),
                _ => c.poll(now, |act| {
                    if let NeighborAction::Unreachable { dropped, .. } = act {
                        reported += dropped;
                    }
                }),
            }
            check(&c);
        }
        c.poll(now, |act| {
            if let NeighborAction::Unreachable { dropped, .. } = act {
                reported += dropped;
            }
        });
        let still_queued: usize = c
            .slots
            .iter()
            .flatten()
            .map(|n| match &n.state {
                State::Incomplete { queue, .. } => queue.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(accepted, flushed + removed + reported + still_queued);
        let s = c.stats();
        totals.evicted_unsolicited += s.evicted_unsolicited;
        totals.evicted_pending += s.evicted_pending;
        totals.evicted_confirmed += s.evicted_confirmed;
        totals.mac_changes += s.mac_changes;
        totals.mac_changes_refused += s.mac_changes_refused;
        totals.total_queue_refused += s.total_queue_refused;
        totals.unsolicited_refused += s.unsolicited_refused;
    }
    // The mix did reach every rule.
    assert!(totals.evicted_unsolicited > 0, "{totals:?}");
    assert!(totals.evicted_pending > 0, "{totals:?}");
    assert!(totals.evicted_confirmed > 0, "{totals:?}");
    assert!(totals.mac_changes > 0, "{totals:?}");
    assert!(totals.mac_changes_refused > 0, "{totals:?}");
    assert!(totals.total_queue_refused > 0, "{totals:?}");
    assert!(totals.unsolicited_refused > 0, "{totals:?}");
}

#[test]
fn absurd_configurations_do_not_panic() {
    let t0 = Instant::now();
    let configs = [
        NeighborConfig {
            reachable_time: Duration::MAX,
            retry_interval: Duration::MAX,
            lock_time: Duration::MAX,
            max_attempts: u32::MAX,
            max_queued_packets: usize::MAX,
            max_queued_bytes: usize::MAX,
            max_total_queued_bytes: usize::MAX,
            max_unsolicited_entries: usize::MAX,
            max_entries: 3,
        },
        NeighborConfig {
            reachable_time: Duration::ZERO,
            retry_interval: Duration::ZERO,
            lock_time: Duration::ZERO,
            max_attempts: 0,
            max_queued_packets: 0,
            max_queued_bytes: 0,
            max_total_queued_bytes: 0,
            max_unsolicited_entries: 0,
            max_entries: 0,
        },
    ];
    for cfg in configs {
        let mut c = NeighborCache::new(cfg);
        for i in 0..10 {
            let _ = c.enqueue(t0, ip(i), vec![0; 70_000]);
            c.learn(t0, ip(i + 5), mac(i), true);
            c.learn(t0, ip(i), mac(i + 1), false);
            c.lookup(t0, ip(i));
            c.poll(t0, |_| {});
            let _ = c.poll_at();
            check(&c);
        }
        let _ = c.memory_used();
    }
}
