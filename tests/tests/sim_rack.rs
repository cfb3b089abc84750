//! RACK-TLP (RFC 8985) between whole stacks in the simulated network,
//! against the duplicate-ACK detector (`TcpConfig::loss_detection`).

use std::net::SocketAddrV4;
use std::time::Duration;

use sim::sim::{HostId, LinkConfig, Sim, TcpSink, TcpSource, host_config, seed_from_env};
use tcp::{LossDetection, TcpStats};

/// A sends `bytes` to B over `link`, both with `detection`; A's statistics
/// once the transfer is done.
fn transfer(seed: u64, link: LinkConfig, detection: LossDetection, bytes: u64) -> TcpStats {
    let mut sim = Sim::new(seed_from_env(seed));
    let mut ca = host_config(1);
    ca.tcp.loss_detection = detection;
    let mut cb = host_config(2);
    cb.tcp.loss_detection = detection;
    let a: HostId = sim.add_host(ca);
    let b = sim.add_host(cb);
    sim.add_link(a, b, link);
    let sink = TcpSink::listen(sim.iface(b), 5001, 16, true).unwrap();
    sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 5001);
    let now = sim.now();
    let src = TcpSource::connect(sim.iface(a), now, dst, bytes).unwrap();
    let src = sim.add_app(a, src);
    let ok = sim.run_until(|s| s.app::<TcpSource>(src).done, Duration::from_secs(120));
    assert!(ok, "transfer did not finish");
    let h = sim.app::<TcpSource>(src).handle();
    sim.iface(a).tcp(h).expect("connection").stats()
}

/// Segments overtaken by the next one (5% of them, a link that reorders)
/// arrive well inside RACK's reordering window: nothing is taken for lost,
/// nothing is sent twice.
#[test]
fn reordering_is_not_taken_for_loss() {
    let link = LinkConfig::with_latency_of(Duration::from_millis(10)).with_reorder(0.05);
    let s = transfer(21, link, LossDetection::Rack, 4 << 20);
    assert_eq!(s.bytes_retransmitted, 0, "{s}");
    assert_eq!(s.fast_recoveries, 0, "{s}");
    assert_eq!(s.rto_count, 0, "{s}");
}

/// 2% random loss: RACK-TLP repairs every loss, first transmissions and
/// retransmissions alike, without a retransmission timeout, and sends no
/// more than the detector it replaces.
#[test]
fn random_loss_is_repaired_without_timeouts() {
    let link = LinkConfig::with_latency_of(Duration::from_millis(10)).with_loss(0.02);
    let rack = transfer(22, link.clone(), LossDetection::Rack, 4 << 20);
    let dupack = transfer(22, link, LossDetection::DupAck, 4 << 20);
    assert_eq!(rack.rto_count, 0, "{rack}");
    assert!(rack.fast_recoveries > 0, "{rack}");
    assert!(rack.rto_count <= dupack.rto_count, "{rack}\n{dupack}");
}
