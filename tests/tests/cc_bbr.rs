//! BBR against CUBIC in the simulator (deterministic: fixed seeds, virtual
//! time): random loss is not congestion to BBR. `cargo run --release -p
//! tests --bin cc-report` prints the full table.

use std::time::Duration;

use sim::sim::experiments::{Bottleneck, path_run};
use tcp::cc::Algorithm;

const WARMUP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(15);

#[test]
fn bbr_keeps_the_link_under_one_percent_loss_both_ways() {
    // 100 Mbit/s, 20 ms, a drop-tail queue of one BDP; 1% random loss on
    // the data and on the ACKs.
    let net = Bottleneck::default();
    let bbr = path_run(1, Algorithm::Bbr, net, 0.01, 0.01, WARMUP, MEASURE);
    let cubic = path_run(1, Algorithm::Cubic, net, 0.01, 0.01, WARMUP, MEASURE);
    eprintln!(
        "1% loss both ways: bbr {:.1} Mbit/s ({}), cubic {:.1} Mbit/s",
        bbr.goodput / 1e6,
        bbr.stats,
        cubic.goodput / 1e6
    );
    assert!(
        bbr.stats.fast_recoveries > 10,
        "losses happened: {}",
        bbr.stats
    );
    assert!(
        bbr.goodput >= 3.0 * cubic.goodput,
        "bbr {:.1} Mbit/s against cubic {:.1}",
        bbr.goodput / 1e6,
        cubic.goodput / 1e6
    );
    assert!(
        bbr.goodput >= 0.5 * net.bps as f64,
        "bbr {:.1} Mbit/s of {}",
        bbr.goodput / 1e6,
        net.bps / 1_000_000
    );
}

#[test]
fn bbr_fills_a_clean_link_and_keeps_the_queue_short() {
    // A deep buffer (4 BDP): CUBIC fills it, BBR's window stops at
    // 2 BDP (without pacing; with pacing at gain 1 the queue would be
    // near empty).
    let base = Bottleneck::default();
    let net = Bottleneck {
        queue: 4 * base.queue,
        ..base
    };
    let bbr = path_run(2, Algorithm::Bbr, net, 0.0, 0.0, WARMUP, MEASURE);
    let cubic = path_run(2, Algorithm::Cubic, net, 0.0, 0.0, WARMUP, MEASURE);
    eprintln!(
        "clean, 4 BDP buffer: bbr {:.1} Mbit/s srtt {:?}; cubic {:.1} Mbit/s srtt {:?}",
        bbr.goodput / 1e6,
        bbr.mean_srtt,
        cubic.goodput / 1e6,
        cubic.mean_srtt
    );
    assert!(
        bbr.goodput >= 0.9 * net.bps as f64,
        "{:.1} Mbit/s",
        bbr.goodput / 1e6
    );
    assert!(
        bbr.mean_srtt <= net.rtt * 3,
        "bbr's queue: srtt {:?} for a base RTT of {:?}",
        bbr.mean_srtt,
        net.rtt
    );
    assert!(
        bbr.mean_srtt < cubic.mean_srtt * 3 / 4,
        "bbr {:?} cubic {:?}",
        bbr.mean_srtt,
        cubic.mean_srtt
    );
}
