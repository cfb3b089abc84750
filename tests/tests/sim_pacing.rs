//! Pacing against a bottleneck with a small queue (deterministic: fixed
//! seeds, virtual time): the same transfer with and without pacing, and
//! the drops at the bottleneck's queue.
//!
//! Without pacing, each bunch of ACKs releases a burst at the sender's
//! link speed, and a queue of a few segments overflows long before the
//! window reaches the path's capacity; paced (twice cwnd/srtt in slow
//! start, 1.2 times after), the same segments arrive spread over the round
//! trip.

use std::net::SocketAddrV4;
use std::time::Duration;

use sim::sim::{LinkConfig, Sim, TcpSink, TcpSource, host_config};
use tcp::TcpConfig;

/// 20 Mbit/s, 40 ms round trip (a BDP of 100 KB), a drop-tail queue of
/// 15 KB (about ten segments); ACKs come back bunched.
const BPS: u64 = 20_000_000;
const RTT: Duration = Duration::from_millis(40);
const QUEUE: usize = 15_000;
const BYTES: u64 = 4 << 20;
const ACK_JITTER: Duration = Duration::from_millis(15);

struct Run {
    queue_drops: u64,
    retransmitted: u64,
    elapsed: Duration,
    pacing_waits: u64,
}

fn transfer(seed: u64, pacing: bool) -> Run {
    let mut sim = Sim::new(seed);
    let tcp = TcpConfig {
        pacing,
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..TcpConfig::default()
    };
    let mut ca = host_config(1);
    ca.tcp = tcp.clone();
    let mut cb = host_config(2);
    cb.tcp = tcp;
    let a = sim.add_host(ca);
    let b = sim.add_host(cb);
    let data = LinkConfig::bottleneck(BPS, RTT, QUEUE);
    // ACKs bunched on their way back (up to 15 ms of delay that never
    // reorders, as on aggregating links): each bunch releases a burst.
    let acks = LinkConfig::bottleneck(BPS, RTT, QUEUE).with_jitter(ACK_JITTER);
    let link = sim.add_link_asym(a, b, data, acks);
    let sink = TcpSink::listen(sim.iface(b), 5001, 4, false).expect("listen");
    let sink = sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 5001);
    let now = sim.now();
    let src = TcpSource::connect(sim.iface(a), now, dst, BYTES).expect("connect");
    let src = sim.add_app(a, src);
    let start = sim.now();
    let done = sim.run_until(
        |s| s.app::<TcpSink>(sink).total() >= BYTES,
        Duration::from_secs(60),
    );
    assert!(done, "transfer finished (pacing {pacing})");
    let elapsed = sim.now() - start;
    let handle = sim.app::<TcpSource>(src).handle();
    let stats = sim.iface(a).tcp(handle).expect("connection").stats();
    Run {
        queue_drops: sim.tx_stats(link, a).queue_drops,
        retransmitted: stats.bytes_retransmitted,
        elapsed,
        pacing_waits: stats.pacing_waits,
    }
}

#[test]
fn pacing_cuts_queue_drops_at_a_small_bottleneck_queue() {
    for seed in [1, 2, 3] {
        let burst = transfer(seed, false);
        let paced = transfer(seed, true);
        eprintln!(
            "seed {seed}: unpaced {} drops, {} bytes retransmitted, {:?}; paced {} drops, {} bytes retransmitted, {:?} ({} waits)",
            burst.queue_drops,
            burst.retransmitted,
            burst.elapsed,
            paced.queue_drops,
            paced.retransmitted,
            paced.elapsed,
            paced.pacing_waits,
        );
        assert_eq!(burst.pacing_waits, 0, "no pacing when off");
        assert!(paced.pacing_waits > 0, "pacing held segments");
        assert!(
            burst.queue_drops > 0,
            "the unpaced flow overflows the queue"
        );
        assert!(
            paced.queue_drops * 2 <= burst.queue_drops,
            "pacing at least halves the drops: {} against {}",
            paced.queue_drops,
            burst.queue_drops
        );
        assert!(paced.retransmitted < burst.retransmitted);
        assert!(
            paced.elapsed <= burst.elapsed,
            "and the transfer is no slower: {:?} against {:?}",
            paced.elapsed,
            burst.elapsed
        );
    }
}
