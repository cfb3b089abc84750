//! The link model: what happens to a frame in one direction of a link.
//!
//! A frame entering a direction goes through, in order:
//!
//! 1. **the queue** (only with `bandwidth_bps`): frames are serialised FIFO,
//!    each departing at `max(now, previous departure) + len * 8 / bandwidth`.
//!    A frame that finds the link busy is tail-dropped when the bytes not yet
//!    serialised (including the frame on the wire) plus its own length exceed
//!    `queue_limit_bytes`; a frame that finds the link idle is always taken.
//!    This is a drop-tail bottleneck like a router's output port.
//! 2. **the wire**: with probability `loss` the frame is lost (it still used
//!    its share of bandwidth, like a frame damaged on the wire); with
//!    probability `dup` a second copy is made; each copy is corrupted with
//!    probability `corrupt` (one random bit flipped after the 14-byte
//!    Ethernet header).
//! 3. **propagation**: each copy arrives at `departure + latency + jitter`,
//!    jitter uniform in `0..=jitter`. Jitter alone never reorders: a copy
//!    never arrives before one that entered earlier. With probability
//!    `reorder` a copy instead gets an extra delay, uniform in 0.5 to 2 times
//!    `max(latency, 1 ms)`, and is exempt from the ordering rule, so frames
//!    sent after it overtake it.
//!
//! Lengths are Ethernet frames as the stack emits them (header and payload;
//! no preamble, FCS or inter-frame gap).

use std::collections::VecDeque;
use std::ops::AddAssign;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Impairments and capacity of one direction of a link.
///
/// The [`Default`] is a clean 1 ms link with unlimited bandwidth. Build
/// variants with the constructors and the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use sim::sim::LinkConfig;
///
/// let wan = LinkConfig::bottleneck(10_000_000, Duration::from_millis(40), 64 * 1024)
///     .with_loss(0.001)
///     .with_jitter(Duration::from_micros(500));
/// assert_eq!(wan.latency, Duration::from_millis(20));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay, uniform in `0..=jitter`, that never reorders frames.
    pub jitter: Duration,
    /// Serialisation rate in bits per second; `None` for instantaneous.
    pub bandwidth_bps: Option<u64>,
    /// Bytes the queue holds before it drops at the tail; `None` for
    /// unlimited. Only meaningful with `bandwidth_bps`.
    pub queue_limit_bytes: Option<usize>,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub dup: f64,
    /// Probability that a frame is delayed past later frames.
    pub reorder: f64,
    /// Probability that one bit of a frame (after the Ethernet header) flips.
    pub corrupt: f64,
    /// The link carries a sender's TCP super segments whole, as a veth
    /// between two stacks with segmentation and receive offload does: the
    /// receiver takes 64 KiB at once and acknowledges it with one ACK. When
    /// false (the default), the sender's NIC cuts them into wire segments.
    pub gso: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            bandwidth_bps: None,
            queue_limit_bytes: None,
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            gso: false,
        }
    }
}

impl LinkConfig {
    /// A perfect link: no delay, no loss, unlimited bandwidth.
    pub fn ideal() -> Self {
        LinkConfig {
            latency: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The default link (1 ms) with `latency` instead.
    pub fn with_latency_of(latency: Duration) -> Self {
        Self::default().with_latency(latency)
    }

    /// The default link losing each frame with probability `p`.
    pub fn lossy(p: f64) -> Self {
        Self::default().with_loss(p)
    }

    /// A link that loses everything (a cable pulled out, a partition).
    pub fn cut() -> Self {
        Self::lossy(1.0)
    }

    /// A bottleneck: `bps` bits per second, a drop-tail queue of
    /// `queue_bytes`, and latency `rtt / 2` (so a link with this
    /// configuration both ways has round-trip propagation delay `rtt`).
    pub fn bottleneck(bps: u64, rtt: Duration, queue_bytes: usize) -> Self {
        LinkConfig {
            latency: rtt / 2,
            bandwidth_bps: Some(bps),
            queue_limit_bytes: Some(queue_bytes),
            ..Self::default()
        }
    }

    /// This configuration with one-way latency `d`.
    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// This configuration with jitter up to `d`.
    pub fn with_jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// This configuration with bandwidth `bps` bits per second.
    pub fn with_bandwidth(mut self, bps: u64) -> Self {
        self.bandwidth_bps = Some(bps);
        self
    }

    /// This configuration with a queue of `bytes`.
    pub fn with_queue_limit(mut self, bytes: usize) -> Self {
        self.queue_limit_bytes = Some(bytes);
        self
    }

    /// This configuration with loss probability `p`.
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// This configuration with duplication probability `p`.
    pub fn with_dup(mut self, p: f64) -> Self {
        self.dup = p;
        self
    }

    /// This configuration with reordering probability `p`.
    pub fn with_reorder(mut self, p: f64) -> Self {
        self.reorder = p;
        self
    }

    /// This configuration with corruption probability `p`.
    pub fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// This configuration carrying super segments whole (see
    /// [`gso`](Self::gso)).
    pub fn with_gso(mut self) -> Self {
        self.gso = true;
        self
    }

    /// Panics with a clear message when a field is out of range.
    pub(crate) fn validate(&self) {
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            assert!(
                (0.0..=1.0).contains(&p),
                "LinkConfig.{name} = {p} is not a probability in 0.0..=1.0"
            );
        }
        assert!(
            self.bandwidth_bps != Some(0),
            "LinkConfig.bandwidth_bps must be positive (use None for unlimited)"
        );
    }
}

/// What happened to the frames of one link direction (or the sum over
/// several directions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkStats {
    /// Frames that entered.
    pub sent: u64,
    /// Bytes that entered.
    pub bytes_sent: u64,
    /// Frames handed to the far end (duplicates count twice).
    pub delivered: u64,
    /// Bytes handed to the far end.
    pub bytes_delivered: u64,
    /// Frames lost on the wire (`loss`).
    pub lost: u64,
    /// Extra copies made (`dup`).
    pub duplicated: u64,
    /// Copies with a flipped bit (`corrupt`).
    pub corrupted: u64,
    /// Copies delayed past later frames (`reorder`).
    pub reordered: u64,
    /// Frames dropped at the tail of a full queue.
    pub queue_drops: u64,
    /// The most bytes ever waiting in the queue (including the frame being
    /// serialised). For a sum of directions, the largest of them.
    pub max_queue_bytes: u64,
}

impl LinkStats {
    /// What happened since `earlier` (a snapshot of the same counters):
    /// each counter minus its earlier value; `max_queue_bytes` stays the
    /// all-time high.
    pub fn since(&self, earlier: &LinkStats) -> LinkStats {
        LinkStats {
            sent: self.sent - earlier.sent,
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            delivered: self.delivered - earlier.delivered,
            bytes_delivered: self.bytes_delivered - earlier.bytes_delivered,
            lost: self.lost - earlier.lost,
            duplicated: self.duplicated - earlier.duplicated,
            corrupted: self.corrupted - earlier.corrupted,
            reordered: self.reordered - earlier.reordered,
            queue_drops: self.queue_drops - earlier.queue_drops,
            max_queue_bytes: self.max_queue_bytes,
        }
    }
}

impl AddAssign for LinkStats {
    fn add_assign(&mut self, o: LinkStats) {
        self.sent += o.sent;
        self.bytes_sent += o.bytes_sent;
        self.delivered += o.delivered;
        self.bytes_delivered += o.bytes_delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.corrupted += o.corrupted;
        self.reordered += o.reordered;
        self.queue_drops += o.queue_drops;
        self.max_queue_bytes = self.max_queue_bytes.max(o.max_queue_bytes);
    }
}

/// One copy of a frame that survived the trip: when it arrives, and which
/// bit to flip, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arrival {
    pub at: Instant,
    pub flip_bit: Option<usize>,
}

/// What became of a frame: zero, one or two arrivals.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Arrivals {
    copies: [Option<Arrival>; 2],
}

impl Arrivals {
    pub fn iter(&self) -> impl Iterator<Item = Arrival> + '_ {
        self.copies.iter().flatten().copied()
    }
}

/// One direction of a link: its configuration, random stream, queue and
/// counters.
pub(crate) struct Direction {
    cfg: LinkConfig,
    rng: SmallRng,
    pub stats: LinkStats,
    /// Departure time and length of every frame not yet fully serialised,
    /// oldest first.
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
    /// When the last queued frame finishes serialising.
    busy_until: Option<Instant>,
    /// Arrival of the latest in-order copy (jitter never goes below it).
    last_arrival: Option<Instant>,
}

impl Direction {
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        cfg.validate();
        Direction {
            cfg,
            rng: SmallRng::seed_from_u64(seed),
            stats: LinkStats::default(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            busy_until: None,
            last_arrival: None,
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Replaces the configuration. Frames already queued or in flight keep
    /// their schedule.
    pub fn set_config(&mut self, cfg: LinkConfig) {
        cfg.validate();
        self.cfg = cfg;
    }

    /// Bytes waiting to be serialised at `now`.
    pub fn queued_bytes(&mut self, now: Instant) -> usize {
        self.drain_backlog(now);
        self.backlog_bytes
    }

    fn drain_backlog(&mut self, now: Instant) {
        while let Some(&(departure, len)) = self.backlog.front() {
            if departure > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= len;
        }
    }

    /// Serialisation time of `len` bytes at `bps`, rounded up to the
    /// nanosecond.
    fn serialisation(len: usize, bps: u64) -> Duration {
        let nanos = (len as u128 * 8 * 1_000_000_000).div_ceil(bps as u128);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p)
    }

    /// A frame of `len` bytes enters at `now`: decides its fate.
    pub fn enter(&mut self, now: Instant, len: usize) -> Arrivals {
        self.stats.sent += 1;
        self.stats.bytes_sent += len as u64;
        let mut departure = now;
        if let Some(bps) = self.cfg.bandwidth_bps {
            self.drain_backlog(now);
            if let Some(limit) = self.cfg.queue_limit_bytes
                && !self.backlog.is_empty()
                && self.backlog_bytes + len > limit
            {
                self.stats.queue_drops += 1;
                return Arrivals::default();
            }
            let start = self.busy_until.map_or(now, |b| b.max(now));
            departure = start + Self::serialisation(len, bps);
            self.busy_until = Some(departure);
            self.backlog.push_back((departure, len));
            self.backlog_bytes += len;
            self.stats.max_queue_bytes = self.stats.max_queue_bytes.max(self.backlog_bytes as u64);
        }
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return Arrivals::default();
        }
        let mut out = Arrivals::default();
        let copies = if self.chance(self.cfg.dup) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for slot in out.copies.iter_mut().take(copies) {
            *slot = Some(self.propagate(departure, len));
        }
        out
    }

    /// Corruption and delay of one copy that left at `departure`.
    fn propagate(&mut self, departure: Instant, len: usize) -> Arrival {
        const HEADER_BITS: usize = 14 * 8;
        let flip_bit = if len * 8 > HEADER_BITS && self.chance(self.cfg.corrupt) {
            self.stats.corrupted += 1;
            Some(self.rng.random_range(HEADER_BITS..len * 8))
        } else {
            None
        };
        let mut at = departure + self.cfg.latency;
        if !self.cfg.jitter.is_zero() {
            let max = u64::try_from(self.cfg.jitter.as_nanos()).unwrap_or(u64::MAX);
            at += Duration::from_nanos(self.rng.random_range(0..=max));
        }
        if self.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            let base = self.cfg.latency.max(Duration::from_millis(1));
            let base = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX / 4);
            at += Duration::from_nanos(self.rng.random_range(base / 2..=base * 2));
        } else {
            if let Some(last) = self.last_arrival {
                at = at.max(last);
            }
            self.last_arrival = Some(at);
        }
        Arrival { at, flip_bit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(d: &mut Direction, now: Instant, len: usize) -> Vec<Arrival> {
        d.enter(now, len).iter().collect()
    }

    #[test]
    fn clean_link_is_latency_only() {
        let t0 = Instant::now();
        let mut d = Direction::new(LinkConfig::default(), 1);
        let a = arrivals(&mut d, t0, 100);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].at, t0 + Duration::from_millis(1));
        assert_eq!(a[0].flip_bit, None);
    }

    #[test]
    fn serialises_fifo_and_drops_at_the_tail() {
        let t0 = Instant::now();
        // 8 Mbit/s: 1000 bytes take 1 ms.
        let cfg = LinkConfig::bottleneck(8_000_000, Duration::ZERO, 2500);
        let mut d = Direction::new(cfg, 1);
        let ms = Duration::from_millis(1);
        assert_eq!(arrivals(&mut d, t0, 1000)[0].at, t0 + ms);
        assert_eq!(arrivals(&mut d, t0, 1000)[0].at, t0 + 2 * ms);
        // 2000 queued + 1000 > 2500: dropped.
        assert!(arrivals(&mut d, t0, 1000).is_empty());
        assert_eq!(d.stats.queue_drops, 1);
        // Half a millisecond later the first frame is still on the wire.
        assert!(arrivals(&mut d, t0 + ms / 2, 1000).is_empty());
        // Once it has left, there is room again.
        let a = arrivals(&mut d, t0 + ms, 1000);
        assert_eq!(a[0].at, t0 + 3 * ms);
        assert_eq!(d.stats.queue_drops, 2);
        assert_eq!(d.stats.max_queue_bytes, 2000);
        // An idle link takes any frame.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(arrivals(&mut d, later, 9000).len(), 1);
    }

    #[test]
    fn jitter_keeps_order_and_reorder_breaks_it() {
        let t0 = Instant::now();
        let cfg = LinkConfig::default().with_jitter(Duration::from_millis(5));
        let mut d = Direction::new(cfg, 3);
        let mut last = t0;
        for i in 0..1000u32 {
            let a = arrivals(&mut d, t0 + Duration::from_micros(i.into()), 60);
            assert!(a[0].at >= last);
            last = a[0].at;
        }
        let cfg = LinkConfig::default().with_reorder(0.5);
        let mut d = Direction::new(cfg, 3);
        let times: Vec<Instant> = (0..100u32)
            .map(|i| arrivals(&mut d, t0 + Duration::from_micros(i.into()), 60)[0].at)
            .collect();
        assert!(times.windows(2).any(|w| w[1] < w[0]));
        assert!(d.stats.reordered > 20);
    }

    #[test]
    fn corruption_spares_the_ethernet_header() {
        let t0 = Instant::now();
        let mut d = Direction::new(LinkConfig::default().with_corrupt(1.0), 9);
        for _ in 0..1000 {
            let bit = arrivals(&mut d, t0, 20)[0].flip_bit.expect("corrupted");
            assert!((112..160).contains(&bit));
        }
        // Nothing to corrupt in a bare header.
        assert_eq!(arrivals(&mut d, t0, 14)[0].flip_bit, None);
    }

    #[test]
    #[should_panic(expected = "LinkConfig.loss = 1.5")]
    fn bad_probability_is_refused() {
        Direction::new(LinkConfig::lossy(1.5), 0);
    }
}
