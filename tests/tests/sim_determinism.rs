//! Same seed, same run: counters, delivery times, ports and capture bytes
//! are identical; another seed changes them. Captures carry virtual times.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use sim::sim::apps::pattern_seq;
use sim::sim::{
    CapturePoint, HostId, LinkConfig, LinkStats, PCAP_EPOCH, Sim, UdpSink, UdpSource, host_config,
    ping, seed_from_env,
};

const MS: Duration = Duration::from_millis(1);

/// Everything observable about a run.
#[derive(Debug, PartialEq)]
struct Outcome {
    stats: Vec<LinkStats>,
    /// (receiving host, time since start, sequence number, length).
    received: Vec<(usize, Duration, u64, usize)>,
    ports: Vec<u16>,
    pcap: Vec<u8>,
    elapsed: Duration,
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ustack-sim-{}-{name}.pcap", std::process::id()))
}

/// Two hosts on a badly impaired cable and three on an impaired switch,
/// with traffic both ways and into the switch.
fn scenario(seed: u64, run: &str) -> Outcome {
    let mut sim = Sim::new(seed);
    let hosts: Vec<HostId> = (1..=5).map(|n| sim.add_host(host_config(n))).collect();
    let bad = LinkConfig::bottleneck(20_000_000, 10 * MS, 30_000)
        .with_jitter(MS)
        .with_loss(0.02)
        .with_dup(0.02)
        .with_reorder(0.02)
        .with_corrupt(0.01);
    let cable = sim.add_link(hosts[0], hosts[1], bad.clone());
    let switch = sim.add_switch(&hosts[2..], bad.with_loss(0.05));
    let path = temp_path(run);
    sim.capture(cable, &path).expect("capture");

    let mut sinks = Vec::new();
    let mut ports = Vec::new();
    let flows = [
        (0, 1, 2000, 1400),
        (1, 0, 300, 5000),
        (2, 4, 1000, 500),
        (3, 4, 1000, 700),
    ];
    for (from, to, count, size) in flows {
        let (from, to) = (hosts[from], hosts[to]);
        if !sinks.iter().any(|&(h, _)| h == to) {
            let sink = UdpSink::bind(sim.iface(to), 9, false).expect("bind");
            sinks.push((to, sim.add_app(to, sink)));
        }
        let dst = SocketAddrV4::new(sim.ip(to), 9);
        let source = UdpSource::new(sim.iface(from), dst, count, size, MS).expect("bind");
        let sock = source.socket();
        sim.add_app(from, source);
        let local = sim
            .iface_ref(from)
            .udp_socket(sock)
            .expect("open")
            .local_addr();
        ports.push(local.port());
    }
    sim.run_for(Duration::from_secs(5));
    sim.flush_captures();

    let mut received = Vec::new();
    for (host, app) in sinks {
        let start = sim.start();
        for r in &sim.app::<UdpSink>(app).received {
            // Corrupted payloads can get through when a flip zeroes the UDP
            // checksum; they are still part of the outcome.
            let seq = pattern_seq(&r.data).unwrap_or(u64::MAX);
            received.push((host.index(), r.at - start, seq, r.len));
        }
    }
    let stats = [cable, switch]
        .into_iter()
        .flat_map(|l| {
            let ends: Vec<HostId> = if l == cable {
                hosts[..2].to_vec()
            } else {
                hosts[2..].to_vec()
            };
            ends.into_iter()
                .flat_map(move |h| [(l, h, true), (l, h, false)])
        })
        .map(|(l, h, tx)| {
            if tx {
                sim.tx_stats(l, h)
            } else {
                sim.rx_stats(l, h)
            }
        })
        .collect();
    let elapsed = sim.elapsed();
    drop(sim);
    let pcap = std::fs::read(&path).expect("capture written");
    let _ = std::fs::remove_file(&path);
    Outcome {
        stats,
        received,
        ports,
        pcap,
        elapsed,
    }
}

#[test]
fn same_seed_gives_an_identical_run() {
    let seed = seed_from_env(21);
    let first = scenario(seed, "same-1");
    let second = scenario(seed, "same-2");
    assert!(first.received.len() > 1000);
    // Every impairment played a part.
    let mut total = LinkStats::default();
    for s in &first.stats {
        total += *s;
    }
    assert!(total.lost > 0 && total.reordered > 0 && total.duplicated > 0);
    assert!(total.queue_drops > 0 && total.corrupted > 0);
    assert_eq!(first.stats, second.stats);
    assert_eq!(first.received, second.received);
    assert_eq!(first.ports, second.ports);
    assert!(first.pcap == second.pcap, "captures differ");
    assert_eq!(first, second);
}

#[test]
fn another_seed_gives_another_run() {
    let seed = seed_from_env(21);
    let one = scenario(seed, "seed-a");
    let other = scenario(seed.wrapping_add(1), "seed-b");
    assert_ne!(one.stats, other.stats);
    assert_ne!(one.received, other.received);
    assert_ne!(
        one.ports, other.ports,
        "host seeds derive from the master seed"
    );
    assert!(one.pcap != other.pcap);
}

#[test]
fn host_seed_set_by_the_test_is_kept() {
    let port_of = |master: u64, host_seed: u64| {
        let mut sim = Sim::new(master);
        let mut config = host_config(1);
        config.seed = host_seed;
        let h = sim.add_host(config);
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let sock = sim.iface(h).udp_bind(any).expect("bind");
        sim.iface_ref(h)
            .udp_socket(sock)
            .expect("open")
            .local_addr()
            .port()
    };
    assert_eq!(port_of(1, 42), port_of(2, 42));
    assert_ne!(port_of(1, 0), port_of(2, 0));
    assert_eq!(port_of(1, 0), port_of(1, 0));
}

/// (seconds, microseconds, frame) of every record of a classic pcap.
fn records(pcap: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    assert_eq!(&pcap[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let mut out = Vec::new();
    let mut rest = &pcap[24..];
    while rest.len() >= 16 {
        let word = |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (secs, micros, len) = (word(0), word(4), word(8) as usize);
        out.push((secs, micros, rest[16..16 + len].to_vec()));
        rest = &rest[16 + len..];
    }
    out
}

#[test]
fn captures_carry_virtual_time() {
    for point in [CapturePoint::Delivery, CapturePoint::Send] {
        let mut sim = Sim::new(seed_from_env(22));
        let a = sim.add_host(host_config(1));
        let b = sim.add_host(host_config(2));
        let link = sim.add_link(a, b, LinkConfig::with_latency_of(10 * MS));
        let path = temp_path(&format!("{point:?}"));
        sim.capture_at(link, &path, point).expect("capture");
        assert_eq!(sim.capture_path(link), Some(path.as_path()));
        sim.run_for(Duration::from_secs(7));
        assert_eq!(
            ping(&mut sim, a, b, 1, b"ts", Duration::from_secs(1)),
            Some(40 * MS)
        );
        drop(sim);
        let recs = records(&std::fs::read(&path).expect("capture written"));
        let _ = std::fs::remove_file(&path);
        // ARP request, ARP reply, echo request, echo reply, 10 ms apart,
        // starting 7 s after the start (+10 ms when recorded on delivery).
        let first = if point == CapturePoint::Delivery {
            10_000
        } else {
            0
        };
        let times: Vec<(u32, u32)> = recs.iter().map(|r| (r.0, r.1)).collect();
        let secs = (PCAP_EPOCH.as_secs() + 7) as u32;
        let expected: Vec<(u32, u32)> = (0..4).map(|i| (secs, first + i * 10_000)).collect();
        assert_eq!(times, expected, "{point:?}");
        assert_eq!(recs[0].2[12..14], [0x08, 0x06], "ARP first");
        assert_eq!(recs[2].2[12..14], [0x08, 0x00], "then IPv4");
    }
}
