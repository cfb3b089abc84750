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
//! 2. **the wire**, from its departure: the fault injector's model
//!    ([`stack::device::fault::model`], one [`FaultDice`] per direction),
//!    with `latency` as its delay. Loss (the frame still used its share of
//!    bandwidth, like a frame damaged on the wire), corruption (one bit after
//!    the 14-byte Ethernet header; a duplicate is an identical copy),
//!    duplication, then reordering: with probability `reorder` the frame is
//!    held back until the next frame of the direction has gone ahead of it,
//!    and follows it; if none does within `2 * latency + 1 ms`, it arrives
//!    at that deadline. Each frame arrives `latency` plus a uniform
//!    `0..=jitter` after its departure, never before a frame that departed
//!    earlier: jitter alone never reorders.
//!
//! Lengths are Ethernet frames as the stack emits them (header and payload;
//! no preamble, FCS or inter-frame gap).

use std::collections::VecDeque;
use std::ops::AddAssign;
use std::time::{Duration, Instant};

use stack::device::fault::model::{BitFlip, FaultDice, FaultOdds};

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
    /// Probability that a frame is held back until the next one has gone
    /// ahead of it (see the [module documentation](self)).
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
    /// Copies with a flipped bit (`corrupt`; the duplicate of a corrupted
    /// frame is an identical copy, counted too).
    pub corrupted: u64,
    /// Frames another frame overtook (`reorder`; a held-back frame that
    /// nothing overtook before its deadline is not counted).
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

/// One copy of a frame that survived the trip: when it arrives, and what it
/// carries.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub at: Instant,
    pub frame: Carried,
}

/// What an [`Arrival`] carries.
#[derive(Debug)]
pub(crate) enum Carried {
    /// The frame that just entered, with this bit flipped, if any.
    Entering(Option<BitFlip>),
    /// A frame held back for reordering, released now (already corrupted if
    /// it was to be).
    Held(Vec<u8>),
}

/// One direction of a link: its configuration, fault decisions, queue and
/// counters.
pub(crate) struct Direction {
    cfg: LinkConfig,
    dice: FaultDice<Vec<u8>>,
    /// The link header bit flips leave alone (14 on Ethernet, 0 on IP).
    link_len: usize,
    pub stats: LinkStats,
    /// Departure time and length of every frame not yet fully serialised,
    /// oldest first.
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
    /// When the last queued frame finishes serialising.
    busy_until: Option<Instant>,
    /// Arrival of the latest copy (jitter never goes below it).
    last_arrival: Option<Instant>,
}

impl Direction {
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        cfg.validate();
        Direction {
            cfg,
            dice: FaultDice::new(seed),
            link_len: 14,
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

    /// Replaces the configuration. Frames already queued, in flight or held
    /// back keep their schedule.
    pub fn set_config(&mut self, cfg: LinkConfig) {
        cfg.validate();
        self.cfg = cfg;
    }

    /// The length of the link header of the frames carried (what bit flips
    /// leave alone): 14 on Ethernet (the default), 0 on an IP link.
    pub fn set_link_len(&mut self, link_len: usize) {
        self.link_len = link_len;
    }

    /// Bytes waiting to be serialised at `now`.
    pub fn queued_bytes(&mut self, now: Instant) -> usize {
        self.drain_backlog(now);
        self.backlog_bytes
    }

    /// Frames held back for reordering (0 or 1).
    pub fn held_frames(&self) -> usize {
        usize::from(self.dice.held().is_some())
    }

    /// When the frame held back for reordering arrives if nothing overtakes
    /// it.
    pub fn deadline(&self) -> Option<Instant> {
        self.dice.held().map(|r| r.deadline)
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

    fn odds(&self) -> FaultOdds {
        FaultOdds {
            loss: self.cfg.loss,
            dup: self.cfg.dup,
            reorder: self.cfg.reorder,
            corrupt: self.cfg.corrupt,
        }
    }

    /// When a frame that left at `departure` and waits `delay` arrives:
    /// never before the previous one.
    fn arrive(&mut self, departure: Instant, delay: Duration) -> Instant {
        let mut at = departure + delay;
        if let Some(last) = self.last_arrival {
            at = at.max(last);
        }
        self.last_arrival = Some(at);
        at
    }

    /// `frame` and its copy if `dup`, arriving at `at`.
    fn push(
        &mut self,
        out: &mut Vec<Arrival>,
        at: Instant,
        dup: bool,
        frame: impl Fn() -> Carried,
    ) {
        out.push(Arrival { at, frame: frame() });
        if dup {
            self.stats.duplicated += 1;
            out.push(Arrival { at, frame: frame() });
        }
    }

    /// A frame enters at `now`: decides its fate, appending to `out` what
    /// arrives because of it (it, its copy, and a held-back frame it
    /// overtook).
    pub fn enter(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Arrival>) {
        // A held-back frame whose deadline has passed is not overtaken.
        self.expire(now, out);
        let len = frame.len();
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
                return;
            }
            let start = self.busy_until.map_or(now, |b| b.max(now));
            departure = start + Self::serialisation(len, bps);
            self.busy_until = Some(departure);
            self.backlog.push_back((departure, len));
            self.backlog_bytes += len;
            self.stats.max_queue_bytes = self.stats.max_queue_bytes.max(self.backlog_bytes as u64);
        }
        let Some(verdict) = self.dice.decide_after(&self.odds(), len, self.link_len) else {
            self.stats.lost += 1;
            return;
        };
        if verdict.corrupt.is_some() {
            // Counted per copy: a duplicate of a corrupted frame is too.
            self.stats.corrupted += 1 + u64::from(verdict.dup);
        }
        if verdict.hold {
            let mut held = frame.to_vec();
            if let Some(flip) = verdict.corrupt {
                flip.apply(&mut held);
            }
            self.dice
                .hold(departure, self.cfg.latency, held, verdict.dup);
            return;
        }
        let delay = self.dice.delay(self.cfg.latency, self.cfg.jitter);
        let at = self.arrive(departure, delay);
        self.push(out, at, verdict.dup, || Carried::Entering(verdict.corrupt));
        if let Some(held) = self.dice.take_held() {
            self.stats.reordered += 1;
            let delay = self.dice.delay(self.cfg.latency, self.cfg.jitter);
            let at = self.arrive(departure, delay);
            self.push(out, at, held.dup, || Carried::Held(held.frame.clone()));
        }
    }

    /// Releases the held-back frame if its deadline is at or before `now`
    /// (nothing overtook it): it arrives at the deadline.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Arrival>) {
        if let Some(held) = self.dice.take_expired(now) {
            let at = self.arrive(held.deadline, Duration::ZERO);
            self.push(out, at, held.dup, || Carried::Held(held.frame.clone()));
        }
    }
}

#[cfg(test)]
mod tests;
