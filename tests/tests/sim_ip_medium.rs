//! The simulator on an IP link (bare IPv4 packets, as over TUN): no ARP,
//! and ping, fragments and TCP under impairment as on Ethernet.

use std::net::SocketAddrV4;
use std::time::Duration;

use sim::sim::{
    HostId, LinkConfig, LinkId, Sim, TcpSink, TcpSource, host_config, ping, seed_from_env,
};
use stack::{InterfaceConfig, Medium};

fn ip_host(n: u8, mtu: usize) -> InterfaceConfig {
    let mut c = host_config(n);
    c.medium = Medium::Ip;
    c.mtu = mtu;
    c
}

fn two_ip_hosts(seed: u64, mtu: usize, cfg: LinkConfig) -> (Sim, HostId, HostId, LinkId) {
    let mut sim = Sim::new(seed_from_env(seed));
    let a = sim.add_host(ip_host(1, mtu));
    let b = sim.add_host(ip_host(2, mtu));
    let link = sim.add_link(a, b, cfg);
    (sim, a, b, link)
}

#[test]
fn ping_and_fragments_cross_an_ip_link_without_arp() {
    let (mut sim, a, b, link) = two_ip_hosts(
        7,
        576,
        LinkConfig::with_latency_of(Duration::from_millis(2)),
    );
    let path = std::env::temp_dir().join(format!("ustack-sim-ip-{}.pcap", std::process::id()));
    sim.capture(link, &path).unwrap();
    let payload: Vec<u8> = (0..65_000u32).map(|i| (i * 31 % 251) as u8).collect();
    for (seq, len) in [(1, 0), (2, 56), (3, 548), (4, 8000), (5, 65_000)] {
        let rtt = ping(&mut sim, a, b, seq, &payload[..len], Duration::from_secs(5));
        assert!(rtt.is_some(), "ping of {len} bytes got no reply");
    }
    for h in [a, b] {
        let c = sim.iface(h).counters();
        assert_eq!(c.arp_requests_sent + c.arp_replies_sent, 0);
        assert_eq!(c.total_drops(), 0, "{c:?}");
    }
    assert!(sim.iface(b).counters().reassembled >= 2);
    // The link's capture holds raw IPv4 packets (LINKTYPE_RAW).
    sim.flush_captures();
    let pcap = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 101);
    assert_eq!(pcap[24 + 16], 0x45, "the first record is an IPv4 packet");
}

#[test]
fn tcp_arrives_byte_exact_over_an_impaired_ip_link() {
    let cfg = LinkConfig::lossy(0.02)
        .with_reorder(0.02)
        .with_dup(0.01)
        .with_corrupt(0.01);
    let (mut sim, a, b, _) = two_ip_hosts(11, 1500, cfg);
    let bytes = 2 << 20;
    let sink = TcpSink::listen(sim.iface(b), 5001, 16, true).unwrap();
    let sink = sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 5001);
    let now = sim.now();
    let src = TcpSource::connect(sim.iface(a), now, dst, bytes).unwrap();
    let src = sim.add_app(a, src);
    let done = sim.run_until(
        |s| s.app::<TcpSource>(src).done || s.app::<TcpSource>(src).error.is_some(),
        Duration::from_secs(600),
    );
    assert!(done, "transfer did not finish");
    assert_eq!(sim.app::<TcpSource>(src).error, None);
    sim.run_for(Duration::from_secs(5));
    let r = sim.app::<TcpSink>(sink).results[0].clone();
    assert_eq!(r.bytes, bytes);
    assert_eq!(r.mismatches, 0, "corrupted or misordered bytes");
    assert!(r.eof);
    assert_eq!(sim.iface(a).counters().arp_requests_sent, 0);
}
