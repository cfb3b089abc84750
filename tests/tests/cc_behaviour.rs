//! Measured congestion-control behaviour in the simulator (deterministic:
//! fixed seeds, virtual time). `cargo run --release -p tests --bin
//! cc-report` prints the full table.
//!
//! Bottleneck: 100 Mbit/s, 20 ms RTT, a drop-tail queue of one
//! bandwidth-delay product; random loss on the data direction.

use std::time::Duration;

use sim::sim::experiments::{Bottleneck, fairness, loss_throughput};
use tcp::cc::Algorithm;

const WARMUP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(15);

#[test]
fn newreno_with_sack_reaches_the_bounds() {
    let net = Bottleneck::default();
    let clean = loss_throughput(1, Algorithm::NewReno, net, 0.0, WARMUP, MEASURE);
    eprintln!("newreno 0%: {:.2} Mbit/s", clean.goodput / 1e6);
    assert!(
        clean.goodput >= 0.9 * net.bps as f64,
        "at least 90% of the link without loss: {:.2} Mbit/s",
        clean.goodput / 1e6
    );
    for p in [0.001, 0.01] {
        let r = loss_throughput(1, Algorithm::NewReno, net, p, WARMUP, MEASURE);
        eprintln!(
            "newreno {:.1}%: {:.2} Mbit/s = {:.0}% of the Mathis bound {:.2} Mbit/s; {}",
            p * 100.0,
            r.goodput / 1e6,
            100.0 * r.goodput / r.mathis,
            r.mathis / 1e6,
            r.stats
        );
        assert!(r.stats.sack, "SACK in use");
        assert!(
            r.goodput >= 0.7 * r.mathis,
            "loss {p}: {:.2} Mbit/s is below 70% of the bound {:.2}",
            r.goodput / 1e6,
            r.mathis / 1e6
        );
    }
}

#[test]
fn cubic_fills_the_link_and_stays_near_the_bound() {
    let net = Bottleneck::default();
    let clean = loss_throughput(1, Algorithm::Cubic, net, 0.0, WARMUP, MEASURE);
    assert!(
        clean.goodput >= 0.9 * net.bps as f64,
        "{:.2} Mbit/s",
        clean.goodput / 1e6
    );
    for p in [0.001, 0.01] {
        let r = loss_throughput(1, Algorithm::Cubic, net, p, WARMUP, MEASURE);
        eprintln!(
            "cubic {:.1}%: {:.2} Mbit/s = {:.0}% of the bound",
            p * 100.0,
            r.goodput / 1e6,
            100.0 * r.goodput / r.mathis
        );
        assert!(r.goodput >= 0.7 * r.mathis);
    }
}

#[test]
fn recovery_at_one_percent_loss_is_sack_driven() {
    let net = Bottleneck::default();
    for algo in [Algorithm::NewReno, Algorithm::Cubic] {
        let r = loss_throughput(2, algo, net, 0.01, WARMUP, MEASURE);
        let s = &r.stats;
        eprintln!(
            "{}: {} fast retransmissions, {} after timeouts ({:.1}%)",
            algo.name(),
            s.retrans_fast,
            s.retrans_rto,
            100.0 * r.rto_share()
        );
        assert!(s.retrans_fast > 50, "enough losses to judge: {s}");
        assert!(
            r.rto_share() < 0.10,
            "{}: {:.1}% of retransmissions by timer",
            algo.name(),
            100.0 * r.rto_share()
        );
    }
}

#[test]
fn two_flows_share_the_bottleneck_fairly_for_60_seconds() {
    let net = Bottleneck::default();
    for algo in [Algorithm::NewReno, Algorithm::Cubic] {
        let (j, x) = fairness(
            2,
            algo,
            net,
            Duration::from_secs(10),
            Duration::from_secs(60),
        );
        eprintln!(
            "{}: Jain's index {:.3} ({:.1} and {:.1} Mbit/s)",
            algo.name(),
            j,
            x[0] / 1e6,
            x[1] / 1e6
        );
        assert!(j >= 0.9, "{}: Jain's index {j:.3}", algo.name());
        assert!(
            x[0] + x[1] >= 0.85 * net.bps as f64,
            "together they fill the link"
        );
    }
}
