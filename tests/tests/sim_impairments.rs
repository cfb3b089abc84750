//! The link model under load: loss, duplication and corruption rates,
//! bandwidth and drop-tail queues, and the real stack reassembling maximum
//! size UDP datagrams through loss, reordering and duplication.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use sim::sim::apps::{MAX_UDP_PAYLOAD, pattern_seq};
use sim::sim::{
    HostId, LinkConfig, LinkId, LinkStats, Sim, UdpSink, UdpSource, host_config, pattern, ping,
    seed_from_env,
};

const MS: Duration = Duration::from_millis(1);

/// Two hosts on a link with ARP resolved both ways.
fn pair(seed: u64, config: LinkConfig) -> (Sim, HostId, HostId, LinkId) {
    let mut sim = Sim::new(seed);
    let a = sim.add_host(host_config(1));
    let b = sim.add_host(host_config(2));
    let link = sim.add_link(a, b, LinkConfig::default());
    for _ in 0..100 {
        if ping(&mut sim, a, b, 1, b"warm", Duration::from_secs(5)).is_some() {
            break;
        }
    }
    sim.set_link_config(link, config);
    (sim, a, b, link)
}

/// Asserts `count` events out of `trials` is within 5 standard deviations
/// of probability `p`.
fn assert_rate(what: &str, count: u64, trials: u64, p: f64) {
    let expected = trials as f64 * p;
    let sd = (trials as f64 * p * (1.0 - p)).sqrt();
    let off = (count as f64 - expected).abs();
    eprintln!("{what}: {count} of {trials} (expected {expected:.0} +- {sd:.0})");
    assert!(
        off <= 5.0 * sd + 1.0,
        "{what}: {count} of {trials}, expected {expected:.0} +- {:.0}",
        5.0 * sd
    );
}

/// Sends `count` datagrams of `size` from `a` to a sink on `b`, one per
/// `interval`, and runs until they are all delivered or lost.
fn blast(
    sim: &mut Sim,
    a: HostId,
    b: HostId,
    count: u64,
    size: usize,
    interval: Duration,
) -> Vec<(Duration, Vec<u8>)> {
    let sink = UdpSink::bind(sim.iface(b), 9, true).expect("bind");
    let sink = sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 9);
    let source = UdpSource::new(sim.iface(a), dst, count, size, interval).expect("bind");
    let source = sim.add_app(a, source);
    let t0 = sim.now();
    sim.run_until(
        |sim| sim.app::<UdpSource>(source).left == 0 && sim.in_flight() == 0,
        Duration::from_secs(3600),
    );
    let received = std::mem::take(&mut sim.app::<UdpSink>(sink).received);
    let (sink_sock, source_sock) = (
        sim.app::<UdpSink>(sink).socket(),
        sim.app::<UdpSource>(source).socket(),
    );
    sim.remove_app(sink);
    sim.remove_app(source);
    sim.iface(b).udp_close(sink_sock);
    sim.iface(a).udp_close(source_sock);
    received.into_iter().map(|r| (r.at - t0, r.data)).collect()
}

#[test]
fn loss_rate_matches_configuration() {
    let (mut sim, a, b, link) = pair(seed_from_env(11), LinkConfig::lossy(0.1));
    let before = sim.tx_stats(link, a);
    let received = blast(&mut sim, a, b, 20_000, 100, 100 * Duration::from_micros(1));
    let stats = sim.tx_stats(link, a).since(&before);
    assert_eq!(stats.sent, 20_000);
    assert_rate("lost", stats.lost, stats.sent, 0.1);
    assert_eq!(stats.delivered + stats.lost, stats.sent);
    assert_eq!(received.len() as u64, stats.delivered);
    for (_, data) in &received {
        let seq = pattern_seq(data).expect("numbered");
        assert_eq!(data, &pattern(seq, 100));
    }
}

#[test]
fn duplicates_and_corruption_are_counted_and_caught() {
    let config = LinkConfig::default().with_dup(0.05).with_corrupt(0.05);
    let (mut sim, a, b, link) = pair(seed_from_env(12), config);
    let before = sim.iface_ref(b).counters().total_drops();
    let stats_before = sim.tx_stats(link, a);
    let received = blast(&mut sim, a, b, 20_000, 100, 100 * Duration::from_micros(1));
    let stats = sim.tx_stats(link, a).since(&stats_before);
    assert_eq!(stats.sent, 20_000);
    assert_rate("duplicated", stats.duplicated, stats.sent, 0.05);
    let copies = stats.sent + stats.duplicated;
    assert_rate("corrupted", stats.corrupted, copies, 0.05);
    assert_eq!(stats.delivered, copies);
    // A flipped bit always breaks a checksum (header or UDP), except in the
    // rare case where it zeroes a UDP checksum (which means "none").
    let dropped = sim.iface_ref(b).counters().total_drops() - before;
    assert!(dropped + 2 >= stats.corrupted && dropped <= stats.corrupted);
    assert_eq!(received.len() as u64 + dropped, copies);
    let intact = received
        .iter()
        .filter(|(_, d)| pattern_seq(d).is_some_and(|s| d == &pattern(s, 100)))
        .count() as u64;
    assert!(intact + (stats.corrupted - dropped) >= received.len() as u64);
    let mut seqs: Vec<u64> = received
        .iter()
        .filter_map(|(_, d)| pattern_seq(d))
        .collect();
    seqs.sort_unstable();
    let dups = seqs.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    assert!(dups > 0 && dups <= stats.duplicated);
}

#[test]
fn bottleneck_delivers_at_link_rate() {
    // 10 Mbit/s, 20 ms round trip, unlimited queue: 500 frames of 1042 bytes
    // sent at once leave one per 833.6 us.
    let config = LinkConfig::bottleneck(10_000_000, 20 * MS, usize::MAX);
    let (mut sim, a, b, link) = pair(seed_from_env(13), config);
    let received = blast(&mut sim, a, b, 500, 1000, Duration::ZERO);
    assert_eq!(received.len(), 500);
    let per_frame = Duration::from_nanos(833_600);
    for (i, (at, _)) in received.iter().enumerate() {
        assert_eq!(*at, per_frame * (i as u32 + 1) + 10 * MS, "frame {i}");
    }
    let span = received[499].0 - received[0].0;
    let rate = 499.0 * 1042.0 * 8.0 / span.as_secs_f64();
    eprintln!("delivery rate {rate:.0} bit/s");
    assert!((rate - 10e6).abs() < 1.0);
    assert_eq!(sim.tx_stats(link, a).max_queue_bytes, 500 * 1042);
}

#[test]
fn full_queue_drops_at_the_tail() {
    let config = LinkConfig::bottleneck(10_000_000, 20 * MS, 20_000);
    let (mut sim, a, b, link) = pair(seed_from_env(14), config);

    // A burst: 19 frames of 1042 bytes fit in 20,000 bytes.
    let before = sim.tx_stats(link, a);
    let received = blast(&mut sim, a, b, 500, 1000, Duration::ZERO);
    let stats = sim.tx_stats(link, a).since(&before);
    assert_eq!(received.len(), 19);
    assert_eq!(stats.queue_drops, 481);
    assert_eq!(stats.max_queue_bytes, 19 * 1042);

    // Twice the link rate for 2 s: the link stays busy at 10 Mbit/s and
    // about half is dropped.
    let before = sim.tx_stats(link, a);
    let received = blast(&mut sim, a, b, 5000, 1000, Duration::from_nanos(416_800));
    let drops = sim.tx_stats(link, a).since(&before).queue_drops;
    let span = received[received.len() - 1].0 - received[0].0;
    let rate = (received.len() - 1) as f64 * 1042.0 * 8.0 / span.as_secs_f64();
    eprintln!(
        "{} delivered, {drops} dropped, {rate:.0} bit/s",
        received.len()
    );
    assert!((rate - 10e6).abs() < 10e6 * 0.001, "{rate}");
    assert_eq!(received.len() as u64 + drops, 5000);
    assert!((2480..=2520).contains(&drops), "{drops}");
}

/// Sends `payload` from `a` to `b` until it arrives whole; returns the
/// number of attempts.
fn send_until_received(sim: &mut Sim, a: HostId, b: HostId, payload: &[u8]) -> u32 {
    let sink = UdpSink::bind(sim.iface(b), 9, true).expect("bind");
    let sink_sock = sink.socket();
    let sink = sim.add_app(b, sink);
    let sock = sim
        .iface(a)
        .udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .expect("bind");
    let dst = SocketAddrV4::new(sim.ip(b), 9);
    let mut attempts = 0;
    let mut got = None;
    while got.is_none() && attempts < 100 {
        attempts += 1;
        sim.with_host(a, |cx| {
            cx.iface
                .udp_send_to(cx.now, sock, payload, Some(dst), cx.tx)
        })
        .expect("send");
        got = sim.run_until_some(
            |sim| {
                let received = &mut sim.app::<UdpSink>(sink).received;
                (!received.is_empty()).then(|| received.remove(0))
            },
            Duration::from_millis(500),
        );
    }
    sim.remove_app(sink);
    sim.iface(b).udp_close(sink_sock);
    sim.iface(a).udp_close(sock);
    let got = got.unwrap_or_else(|| panic!("{} bytes never got through", payload.len()));
    assert_eq!(got.data.len(), payload.len());
    assert!(got.data == payload, "datagram altered on the way");
    attempts
}

#[test]
fn max_size_datagrams_cross_a_lossy_link() {
    let config = LinkConfig::lossy(0.01).with_bandwidth(100_000_000);
    let (mut sim, a, b, link) = pair(seed_from_env(15), config);
    let before = sim.tx_stats(link, a);
    let mut total = 0;
    for i in 0..20u64 {
        let attempts = send_until_received(&mut sim, a, b, &pattern(i, MAX_UDP_PAYLOAD));
        total += attempts;
    }
    let stats = sim.tx_stats(link, a).since(&before);
    eprintln!("20 datagrams of 65,507 bytes took {total} attempts; {stats:?}");
    // 45 fragments each: P(all arrive) = 0.99^45 = 0.64. An attempt only
    // fails when a fragment is lost.
    assert!(total - 20 <= stats.lost as u32);
    assert_rate("lost", stats.lost, stats.sent, 0.01);
    assert!(sim.iface_ref(b).counters().reassembled >= 20);
}

#[test]
fn max_size_datagrams_survive_reordering_and_duplication() {
    let config = LinkConfig::default()
        .with_bandwidth(100_000_000)
        .with_jitter(Duration::from_micros(200))
        .with_reorder(0.05)
        .with_dup(0.05);
    let (mut sim, a, b, link) = pair(seed_from_env(16), config);
    let before = sim.tx_stats(link, a);
    for i in 0..20u64 {
        let attempts = send_until_received(&mut sim, a, b, &pattern(i, MAX_UDP_PAYLOAD));
        assert_eq!(attempts, 1, "nothing is lost");
    }
    let stats: LinkStats = sim.tx_stats(link, a).since(&before);
    eprintln!("{stats:?}");
    assert!(stats.reordered > 10 && stats.duplicated > 10);
    assert_eq!(stats.lost + stats.queue_drops, 0);
}
