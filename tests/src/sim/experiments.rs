//! Congestion-control experiments in the simulator: throughput against
//! random loss (next to the Mathis et al. bound), fairness between flows
//! sharing a bottleneck, and cwnd traces. Deterministic: a seed gives the
//! same figures on every machine.
//!
//! The network: host A sends to host B through a bottleneck link (by
//! default 100 Mbit/s, 20 ms RTT, a drop-tail queue of one
//! bandwidth-delay product); random loss hits the data direction.

use std::cell::RefCell;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Duration;

use tcp::cc::Algorithm;
use tcp::{LossDetection, TcpConfig};

use super::{HostCtx, HostId, LinkConfig, Sim, TcpSink, TcpSource, host_config};

/// The bottleneck of the experiments.
#[derive(Clone, Copy, Debug)]
pub struct Bottleneck {
    /// Link rate, bits per second.
    pub bps: u64,
    /// Round-trip propagation delay.
    pub rtt: Duration,
    /// Drop-tail queue, bytes.
    pub queue: usize,
}

impl Default for Bottleneck {
    /// 100 Mbit/s, 20 ms, one bandwidth-delay product of queue (250 KB).
    fn default() -> Self {
        let bps = 100_000_000;
        let rtt = Duration::from_millis(20);
        Bottleneck {
            bps,
            rtt,
            queue: (bps as f64 * rtt.as_secs_f64() / 8.0) as usize,
        }
    }
}

/// The Mathis et al. steady-state bound for Reno-style congestion control:
/// MSS / RTT * C / sqrt(p), C = sqrt(3/2) ~ 1.22; bits per second.
pub fn mathis_bound(mss: usize, rtt: Duration, p: f64) -> f64 {
    if p <= 0.0 {
        return f64::INFINITY;
    }
    mss as f64 * 8.0 / rtt.as_secs_f64() * 1.22 / p.sqrt()
}

/// Jain's fairness index of `x`: (sum x)^2 / (n * sum x^2), 1 is perfectly fair.
pub fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    if sq == 0.0 {
        0.0
    } else {
        sum * sum / (x.len() as f64 * sq)
    }
}

/// One throughput measurement.
#[derive(Clone, Debug)]
pub struct LossRun {
    /// Congestion control of the sender.
    pub algorithm: Algorithm,
    /// Random loss probability on the data direction.
    pub loss: f64,
    /// Goodput over the measurement window, bits per second.
    pub goodput: f64,
    /// The Mathis bound for this loss rate.
    pub mathis: f64,
    /// The sender's statistics at the end.
    pub stats: tcp::TcpStats,
}

impl LossRun {
    /// Fraction of retransmissions sent because the retransmission timer
    /// expired (the rest are SACK/duplicate-ACK driven).
    pub fn rto_share(&self) -> f64 {
        let total = self.stats.retrans_fast + self.stats.retrans_rto;
        if total == 0 {
            0.0
        } else {
            self.stats.retrans_rto as f64 / total as f64
        }
    }
}

fn tcp_config(algorithm: Algorithm, detection: LossDetection) -> TcpConfig {
    TcpConfig {
        congestion: algorithm,
        loss_detection: detection,
        // Large enough that the receive window never limits these flows.
        send_buffer: 8 << 20,
        recv_buffer: 8 << 20,
        ..TcpConfig::default()
    }
}

/// A sender A and a receiver B behind `net`, loss `p` on A -> B.
fn network(
    seed: u64,
    algorithm: Algorithm,
    detection: LossDetection,
    net: Bottleneck,
    p: f64,
) -> (Sim, HostId, HostId) {
    network_both_ways(seed, algorithm, detection, net, p, 0.0)
}

/// [`network`] with loss `p_ack` on B -> A (the ACKs) too.
fn network_both_ways(
    seed: u64,
    algorithm: Algorithm,
    detection: LossDetection,
    net: Bottleneck,
    p: f64,
    p_ack: f64,
) -> (Sim, HostId, HostId) {
    let mut sim = Sim::new(seed);
    let mut ca = host_config(1);
    ca.tcp = tcp_config(algorithm, detection);
    let mut cb = host_config(2);
    cb.tcp = tcp_config(algorithm, detection);
    let a = sim.add_host(ca);
    let b = sim.add_host(cb);
    let data = LinkConfig::bottleneck(net.bps, net.rtt, net.queue).with_loss(p);
    let acks = LinkConfig::bottleneck(net.bps, net.rtt, net.queue).with_loss(p_ack);
    sim.add_link_asym(a, b, data, acks);
    (sim, a, b)
}

/// Starts a sink on B and `flows` never-ending sources on A, flow `i`
/// starting `stagger * i` after the first.
fn start_flows(
    sim: &mut Sim,
    a: HostId,
    b: HostId,
    flows: usize,
    stagger: Duration,
) -> (super::AppId, Vec<super::AppId>) {
    let sink = TcpSink::listen(sim.iface(b), 5001, 16, false).expect("listen");
    let sink = sim.add_app(b, sink);
    let dst = SocketAddrV4::new(sim.ip(b), 5001);
    let mut sources = Vec::new();
    for i in 0..flows {
        if i > 0 {
            sim.run_for(stagger);
        }
        let now = sim.now();
        let src = TcpSource::connect(sim.iface(a), now, dst, u64::MAX).expect("connect");
        sources.push(sim.add_app(a, src));
    }
    (sink, sources)
}

/// Goodput of one flow with random loss `p`: `warmup` of simulated time,
/// then `measure` over which delivered bytes are counted.
pub fn loss_throughput(
    seed: u64,
    algorithm: Algorithm,
    net: Bottleneck,
    p: f64,
    warmup: Duration,
    measure: Duration,
) -> LossRun {
    loss_throughput_with(
        seed,
        algorithm,
        LossDetection::default(),
        net,
        p,
        warmup,
        measure,
    )
}

/// [`loss_throughput`] with the sender's loss detector chosen (RACK-TLP
/// or duplicate-ACK counting), to compare the two.
pub fn loss_throughput_with(
    seed: u64,
    algorithm: Algorithm,
    detection: LossDetection,
    net: Bottleneck,
    p: f64,
    warmup: Duration,
    measure: Duration,
) -> LossRun {
    let (mut sim, a, b) = network(seed, algorithm, detection, net, p);
    let (sink, sources) = start_flows(&mut sim, a, b, 1, Duration::ZERO);
    sim.run_for(warmup);
    let before = sim.app::<TcpSink>(sink).total();
    sim.run_for(measure);
    let after = sim.app::<TcpSink>(sink).total();
    let handle = sim.app::<TcpSource>(sources[0]).handle();
    let stats = sim.iface(a).tcp(handle).expect("connection").stats();
    LossRun {
        algorithm,
        loss: p,
        goodput: (after - before) as f64 * 8.0 / measure.as_secs_f64(),
        mathis: mathis_bound(stats.mss, net.rtt, p),
        stats,
    }
}

/// One flow's goodput and round-trip times with random loss both ways.
#[derive(Clone, Debug)]
pub struct PathRun {
    /// Goodput over the measurement window, bits per second.
    pub goodput: f64,
    /// The smoothed RTT averaged over the measurement window (sampled every
    /// 10 ms): the base RTT plus the queue the sender keeps.
    pub mean_srtt: Duration,
    /// The sender's statistics at the end.
    pub stats: tcp::TcpStats,
}

/// One flow through `net` with random loss `p_data` on the data and
/// `p_ack` on the ACKs: goodput, and the mean smoothed RTT (how much queue
/// the sender keeps), over `measure` after `warmup`.
pub fn path_run(
    seed: u64,
    algorithm: Algorithm,
    net: Bottleneck,
    p_data: f64,
    p_ack: f64,
    warmup: Duration,
    measure: Duration,
) -> PathRun {
    let (mut sim, a, b) = network_both_ways(
        seed,
        algorithm,
        LossDetection::default(),
        net,
        p_data,
        p_ack,
    );
    let (sink, sources) = start_flows(&mut sim, a, b, 1, Duration::ZERO);
    let handle = sim.app::<TcpSource>(sources[0]).handle();
    sim.run_for(warmup);
    let before = sim.app::<TcpSink>(sink).total();
    let rtts = Rc::new(RefCell::new((Duration::ZERO, 0u32)));
    let out = rtts.clone();
    let every = Duration::from_millis(10);
    let mut last: Option<std::time::Instant> = None;
    sim.add_app(a, move |cx: &mut HostCtx<'_>| {
        // Apps also run on every event: one sample per period.
        if last.is_none_or(|l| cx.now.saturating_duration_since(l) >= every) {
            last = Some(cx.now);
            if let Some(srtt) = cx.iface.tcp(handle).and_then(|c| c.stats().srtt) {
                let mut v = out.borrow_mut();
                v.0 += srtt;
                v.1 += 1;
            }
        }
        cx.wake_in(every);
    });
    sim.run_for(measure);
    let after = sim.app::<TcpSink>(sink).total();
    let stats = sim.iface(a).tcp(handle).expect("connection").stats();
    let (sum, n) = *rtts.borrow();
    PathRun {
        goodput: (after - before) as f64 * 8.0 / measure.as_secs_f64(),
        mean_srtt: sum / n.max(1),
        stats,
    }
}

/// Two flows share the bottleneck, the second starting 2 s after the
/// first; returns each flow's goodput over `measure` (after both have run
/// for `warmup`) and Jain's index of the two.
pub fn fairness(
    seed: u64,
    algorithm: Algorithm,
    net: Bottleneck,
    warmup: Duration,
    measure: Duration,
) -> (f64, [f64; 2]) {
    fairness_with(
        seed,
        algorithm,
        LossDetection::default(),
        net,
        warmup,
        measure,
    )
}

/// [`fairness`] with the senders' loss detector chosen.
pub fn fairness_with(
    seed: u64,
    algorithm: Algorithm,
    detection: LossDetection,
    net: Bottleneck,
    warmup: Duration,
    measure: Duration,
) -> (f64, [f64; 2]) {
    let (mut sim, a, b) = network(seed, algorithm, detection, net, 0.0);
    let (sink, _) = start_flows(&mut sim, a, b, 2, Duration::from_secs(2));
    sim.run_for(warmup);
    let per_flow = |sim: &mut Sim| -> [u64; 2] {
        let r = &sim.app::<TcpSink>(sink).results;
        [
            r.first().map_or(0, |c| c.bytes),
            r.get(1).map_or(0, |c| c.bytes),
        ]
    };
    let before = per_flow(&mut sim);
    sim.run_for(measure);
    let after = per_flow(&mut sim);
    let secs = measure.as_secs_f64();
    let x = [
        (after[0] - before[0]) as f64 * 8.0 / secs,
        (after[1] - before[1]) as f64 * 8.0 / secs,
    ];
    (jain(&x), x)
}

/// One sample of a cwnd trace.
#[derive(Clone, Copy, Debug)]
pub struct TraceSample {
    /// Simulated seconds since the flow started.
    pub t: f64,
    /// Congestion window, bytes.
    pub cwnd: usize,
    /// Slow start threshold, bytes (None until the first reduction).
    pub ssthresh: Option<usize>,
    /// Bytes in flight (RFC 6675 pipe).
    pub flight: usize,
}

/// Samples the sender's cwnd, ssthresh and flight every `every` for
/// `duration` of one flow with loss `p`.
pub fn cwnd_trace(
    seed: u64,
    algorithm: Algorithm,
    net: Bottleneck,
    p: f64,
    duration: Duration,
    every: Duration,
) -> Vec<TraceSample> {
    let (mut sim, a, b) = network(seed, algorithm, LossDetection::default(), net, p);
    let (_, sources) = start_flows(&mut sim, a, b, 1, Duration::ZERO);
    let handle = sim.app::<TcpSource>(sources[0]).handle();
    let samples = Rc::new(RefCell::new(Vec::new()));
    let out = samples.clone();
    let start = sim.now();
    sim.add_app(a, move |cx: &mut HostCtx<'_>| {
        if let Some(c) = cx.iface.tcp(handle) {
            let s = c.stats();
            let mut v = out.borrow_mut();
            let t = cx.now.saturating_duration_since(start).as_secs_f64();
            // Apps also run on every event: keep one sample per period.
            if v.last()
                .is_none_or(|l: &TraceSample| t - l.t >= every.as_secs_f64() * 0.999)
            {
                v.push(TraceSample {
                    t,
                    cwnd: s.cwnd,
                    ssthresh: (s.ssthresh != usize::MAX).then_some(s.ssthresh),
                    flight: s.in_flight,
                });
            }
        }
        cx.wake_in(every);
    });
    sim.run_for(duration);
    samples.take()
}
