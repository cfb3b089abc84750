//! A seeded fault injector: loss, duplication, reordering, corruption, delay,
//! jitter and a rate limit, applied independently to each direction. See
//! [`FaultDevice`] for the semantics.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::{Device, FrameSink};

/// Bytes each direction's rate limiter lets wait for serialization before it
/// tail-drops (1 MiB, about a thousand full-size frames).
pub const RATE_QUEUE_BYTES: usize = 1 << 20;

/// Bytes each direction may hold in total (delay line included). Only a very
/// large bandwidth-delay product reaches it; what does not fit is dropped
/// and counted in [`DirectionStats::overflow`], so memory stays bounded.
pub const MAX_HELD_BYTES: usize = 64 << 20;

/// Frames `recv` reads from the inner device per call, at most, before it
/// hands one to the stack.
const RX_PULL: usize = 64;

/// Spare buffers kept per direction for reuse.
const POOL_LIMIT: usize = 1024;

/// Largest `delay + jitter` accepted (keeps `Instant` arithmetic in range).
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// Extra time a reordered frame waits, beyond `2 * delay`, for another frame
/// to overtake it.
const REORDER_GRACE: Duration = Duration::from_millis(1);

/// Offset of the first byte after the Ethernet II header.
const ETHERNET_HEADER_LEN: usize = 14;

/// Stream selectors mixed into the seed, one per direction.
const OUTBOUND_STREAM: u64 = 0x6f75_7462_6f75_6e64; // "outbound"
const INBOUND_STREAM: u64 = 0x696e_626f_756e_6421; // "inbound!"

/// Which faults to inject, the same in both directions.
///
/// Probabilities apply to each frame independently and must lie in `[0, 1]`;
/// check a configuration built from user input with
/// [`validate`](Self::validate). The default injects nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub dup: f64,
    /// Probability that a frame is held back behind the next one.
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay added to every frame.
    pub delay: Duration,
    /// Upper bound of a uniform random delay added to `delay`.
    pub jitter: Duration,
    /// Link rate in bits per second; `None` for unlimited.
    pub rate_bps: Option<u64>,
    /// Seed of the random generators.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            seed: 0,
        }
    }
}

impl FaultConfig {
    /// True when the configuration injects nothing: the device then passes
    /// frames through untouched, at no cost.
    pub fn is_noop(&self) -> bool {
        self.loss == 0.0
            && self.dup == 0.0
            && self.reorder == 0.0
            && self.corrupt == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.rate_bps.is_none()
    }

    /// Checks that every probability is a number in `[0, 1]`, that the rate
    /// is positive and that `delay + jitter` is at most an hour. The error is
    /// one line, fit for a command-line message.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "{name} probability must be a number from 0 to 1, got {p}"
                ));
            }
        }
        if self.rate_bps == Some(0) {
            return Err("rate must be at least 1 bit per second".to_string());
        }
        if self.delay.saturating_add(self.jitter) > MAX_DELAY {
            return Err(format!(
                "delay plus jitter must be at most {} s, got {:?}",
                MAX_DELAY.as_secs(),
                self.delay.saturating_add(self.jitter)
            ));
        }
        Ok(())
    }

    /// True when frames are never held for time (no delay, jitter or rate).
    fn immediate(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.rate_bps.is_none()
    }
}

impl fmt::Display for FaultConfig {
    /// A short summary such as `loss 10%, delay 20ms+-5ms, seed 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            return write!(f, "no faults");
        }
        let mut sep = "";
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if p != 0.0 {
                write!(f, "{sep}{name} {}%", p * 100.0)?;
                sep = ", ";
            }
        }
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            write!(f, "{sep}delay {:?}", self.delay)?;
            if !self.jitter.is_zero() {
                write!(f, "+-{:?}", self.jitter)?;
            }
            sep = ", ";
        }
        if let Some(rate) = self.rate_bps {
            write!(f, "{sep}rate {rate} bit/s")?;
        }
        write!(f, ", seed {}", self.seed)
    }
}

/// What the injector did to the frames of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames that entered the fault pipeline.
    pub frames: u64,
    /// Frames dropped by the `loss` probability.
    pub lost: u64,
    /// Extra copies made by the `dup` probability.
    pub duplicated: u64,
    /// Frames that another frame actually overtook.
    pub reordered: u64,
    /// Frames with one bit flipped.
    pub corrupted: u64,
    /// Frames released later than they arrived (delay, jitter, rate).
    pub delayed: u64,
    /// Frames tail-dropped because the rate limiter's queue was full.
    pub rate_dropped: u64,
    /// Frames dropped because the direction held [`MAX_HELD_BYTES`].
    pub overflow: u64,
    /// Held outbound frames the inner device refused when they came due.
    pub send_errors: u64,
}

impl fmt::Display for DirectionStats {
    /// `N frames` followed by the non-zero counters, e.g.
    /// `1000 frames (lost 98, duplicated 3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} frames", self.frames)?;
        let mut sep = " (";
        for (name, n) in [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("reordered", self.reordered),
            ("corrupted", self.corrupted),
            ("delayed", self.delayed),
            ("rate-dropped", self.rate_dropped),
            ("overflow", self.overflow),
            ("send errors", self.send_errors),
        ] {
            if n != 0 {
                write!(f, "{sep}{name} {n}")?;
                sep = ", ";
            }
        }
        if sep == " (" { Ok(()) } else { write!(f, ")") }
    }
}

/// Counters of a [`FaultDevice`], one set per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames the stack sent.
    pub outbound: DirectionStats,
    /// Frames the stack received.
    pub inbound: DirectionStats,
}

impl fmt::Display for FaultStats {
    /// One line: `faults: out <stats>; in <stats>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "faults: out {}; in {}", self.outbound, self.inbound)
    }
}

/// A device wrapper that injects seeded faults in both directions.
///
/// The kernels ustack runs on have no netem, so every impairment its tests
/// need comes from this wrapper. It wraps another device, usually
/// `FaultDevice<PcapDevice<TapDevice>>` so that the capture shows what
/// actually crossed the wire (faults included), and treats the two
/// directions as two independent links:
///
/// - *outbound*: frames the stack hands to [`FrameSink::send`], on their way
///   to the inner device;
/// - *inbound*: frames read from the inner device, on their way to the stack
///   through [`Device::recv`].
///
/// # What happens to one frame
///
/// Each direction runs every frame through the same stages, in this order:
///
/// 1. **loss**: with probability `loss` the frame is dropped.
/// 2. **corruption**: with probability `corrupt` one random bit of one random
///    byte at offset 14 or later (after the Ethernet header) is flipped, so
///    the frame still reaches the stack and exercises checksum validation.
///    Frames shorter than 15 bytes get the bit flipped anywhere.
/// 3. **duplication**: with probability `dup` a copy of the frame follows the
///    original (both go through the later stages; the copy right behind).
/// 4. **reordering**: with probability `reorder` the frame is held back until
///    the next frame of the same direction has gone ahead of it, then it
///    follows that frame. A frame that no other frame overtakes within
///    `2 * delay + 1 ms` is released anyway at that deadline (its wait then
///    replaces the delay of stage 6), so nothing is ever stuck. The frame
///    that overtakes is never held back itself.
/// 5. **rate limit** (`rate_bps`): frames are serialized one after the other,
///    like on a link of that speed: a frame is done at
///    `max(now, end of the previous frame) + len * 8 / rate`. The backlog
///    waiting for serialization is bounded ([`RATE_QUEUE_BYTES`]); a frame
///    that would overflow it is tail-dropped.
/// 6. **delay**: the frame is released `delay` plus a uniform random
///    `0..=jitter` after it was serialized (or arrived, without a rate
///    limit). Frames never overtake each other here: a release time is
///    raised to the previous frame's if needed, so only stage 4 reorders.
///
/// Besides the rate limiter's queue, each direction holds at most
/// [`MAX_HELD_BYTES`] (a safety net against a huge bandwidth-delay product);
/// what does not fit is dropped and counted. Every dropped or altered frame
/// is counted in [`stats`](Self::stats).
///
/// # Time
///
/// The wrapper is sans-IO like the rest of the stack: it never reads the
/// clock. Every decision uses the `now` passed to `send`, `recv` or
/// [`FaultDevice::flush_due`]. Frames held for later are handed on by the
/// first such call whose `now` is at or past their release time, and
/// [`Device::poll_at`] reports the earliest release time so the event loop
/// wakes up for it. Because the event loop calls `recv` on every iteration,
/// and `recv` first sends the outbound frames that are due, delayed outbound
/// frames leave on time without any extra call.
///
/// `recv` reads up to 64 frames from the inner device per call, stamping
/// each with that call's `now`, and returns the oldest frame that is due. It
/// stops reading as soon as a due frame is waiting, so the backlog is left
/// in the inner device (whose descriptor then stays readable) rather than
/// growing here; it may therefore return `Ok(None)` while the inner device
/// still has frames, which the next call reads.
///
/// # Determinism
///
/// All randomness comes from [`FaultConfig::seed`]: each direction has its
/// own generator derived from it, so the inbound pattern does not depend on
/// how much the stack sends. The same seed and the same sequence of calls
/// (with the same `now` values) give the same faults.
///
/// # Cost
///
/// With a configuration that injects nothing ([`FaultConfig::is_noop`]),
/// `send` and `recv` go straight to the inner device: no copy, no
/// allocation. Otherwise a frame is copied only when it has to be held
/// (delay, rate, reordering, duplicate) or altered (corruption), into
/// buffers taken from a pool, so the steady state does not allocate.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// use stack::device::{FaultConfig, FaultDevice, memory_pair};
/// use stack::{Device, FrameSink};
///
/// let (a, mut b) = memory_pair(1500).unwrap();
/// let config = FaultConfig {
///     delay: Duration::from_millis(10),
///     seed: 1,
///     ..FaultConfig::default()
/// };
/// config.validate().unwrap();
/// let mut a = FaultDevice::new(a, config);
/// let t0 = Instant::now();
/// a.send(t0, &[0u8; 60]).unwrap();
/// let mut buf = [0u8; 1514];
/// assert_eq!(b.recv(t0, &mut buf).unwrap(), None); // still on the wire
/// assert_eq!(a.poll_at(), Some(t0 + Duration::from_millis(10)));
/// a.flush_due(t0 + Duration::from_millis(10)).unwrap(); // or any send/recv
/// assert_eq!(b.recv(t0, &mut buf).unwrap(), Some(60));
/// println!("{}", a.stats()); // faults: out 1 frames (delayed 1); in 0 frames
/// ```
pub struct FaultDevice<D> {
    inner: D,
    config: FaultConfig,
    noop: bool,
    outbound: Lane,
    inbound: Lane,
    stats: FaultStats,
    /// The latest `now` seen, for [`Device::flush`], which has none.
    last_now: Option<Instant>,
}

impl<D: Device> FaultDevice<D> {
    /// Wraps `inner`, injecting the faults of `config`.
    ///
    /// # Panics
    ///
    /// If `config` does not pass [`FaultConfig::validate`]; check user
    /// input with it first.
    pub fn new(inner: D, config: FaultConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid fault configuration: {e}");
        }
        FaultDevice {
            inner,
            noop: config.is_noop(),
            outbound: Lane::new(config.seed ^ OUTBOUND_STREAM),
            inbound: Lane::new(config.seed ^ INBOUND_STREAM),
            config,
            stats: FaultStats::default(),
            last_now: None,
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The faults being injected.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// What has been done so far.
    pub fn stats(&self) -> &FaultStats {
        &self.stats
    }

    /// Sends to the inner device every held outbound frame whose release
    /// time is at or before `now`, oldest first.
    ///
    /// `send` and `recv` do this themselves on entry, so an event loop that
    /// calls `recv` on each iteration never needs to. A frame the inner
    /// device refuses is lost (and counted in
    /// [`DirectionStats::send_errors`]); the others are still sent, and the
    /// first error is returned.
    pub fn flush_due(&mut self, now: Instant) -> io::Result<()> {
        self.last_now = Some(now);
        if self.noop {
            return Ok(());
        }
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        out.expire_reordered(now, &self.config, stats);
        let mut first_error = None;
        while let Some(frame) = out.pop_due(now) {
            let result = self.inner.send(now, &frame);
            out.recycle(frame);
            if let Err(e) = result {
                stats.send_errors += 1;
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// [`flush_due`](Self::flush_due) for the entry of `send` and `recv`:
    /// an error concerns an earlier frame, already counted, so it is logged
    /// rather than returned (it must not end the event loop, nor be blamed
    /// on the frame being sent).
    fn flush_due_logged(&mut self, now: Instant) {
        if let Err(e) = self.flush_due(now) {
            log::debug!("fault: delayed frame not sent: {e}");
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for FaultDevice<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultDevice")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("stats", &self.stats)
            .field("held_outbound", &self.outbound.held_frames())
            .field("held_inbound", &self.inbound.held_frames())
            .finish_non_exhaustive()
    }
}

impl<D: Device> FrameSink for FaultDevice<D> {
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        if self.noop {
            return self.inner.send(now, frame);
        }
        self.flush_due_logged(now);
        let out = &mut self.outbound;
        let stats = &mut self.stats.outbound;
        stats.frames += 1;
        let Some(verdict) = out.decide(&self.config, stats, frame.len()) else {
            return Ok(());
        };
        if out.is_idle() && !verdict.hold && self.config.immediate() {
            // Nothing to wait for: straight to the device, copying only to
            // corrupt.
            if verdict.dup {
                stats.duplicated += 1;
            }
            let sends = if verdict.dup { 2 } else { 1 };
            return match verdict.corrupt {
                None => (0..sends).try_for_each(|_| self.inner.send(now, frame)),
                Some(flip) => {
                    let mut copy = out.buffer(frame);
                    flip.apply(&mut copy);
                    let result = (0..sends).try_for_each(|_| self.inner.send(now, &copy));
                    out.recycle(copy);
                    result
                }
            };
        }
        let mut held = out.buffer(frame);
        if let Some(flip) = verdict.corrupt {
            flip.apply(&mut held);
        }
        out.enter(now, &self.config, stats, held, verdict);
        // With no delay, what was just queued (the frame, or a reordered one
        // it released) is due already.
        self.flush_due_logged(now);
        Ok(())
    }
}

impl<D: Device> Device for FaultDevice<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.noop {
            return self.inner.recv(now, buf);
        }
        self.flush_due_logged(now);
        let lane = &mut self.inbound;
        let stats = &mut self.stats.inbound;
        lane.expire_reordered(now, &self.config, stats);
        // Read what the inner device has, unless a due frame is already
        // waiting: then it goes first, and the inner device keeps the rest
        // (so the queue cannot grow faster than the stack reads).
        let mut pulled = 0;
        while pulled < RX_PULL && !lane.head_due(now) {
            let Some(n) = self.inner.recv(now, buf)? else {
                break;
            };
            pulled += 1;
            stats.frames += 1;
            let Some(verdict) = lane.decide(&self.config, stats, n) else {
                continue;
            };
            let frame = &mut buf[..n];
            if let Some(flip) = verdict.corrupt {
                flip.apply(frame);
            }
            if lane.is_idle() && !verdict.hold && self.config.immediate() {
                // Nothing queued ahead and nothing to wait for: hand the
                // frame over in place; a duplicate waits for the next call.
                if verdict.dup {
                    stats.duplicated += 1;
                    let copy = lane.buffer(frame);
                    lane.push(now, stats, copy, Duration::ZERO, None);
                }
                return Ok(Some(n));
            }
            let held = lane.buffer(frame);
            lane.enter(now, &self.config, stats, held, verdict);
        }
        Ok(lane.pop_due(now).map(|frame| {
            let n = frame.len().min(buf.len());
            buf[..n].copy_from_slice(&frame[..n]);
            lane.recycle(frame);
            n
        }))
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn poll_at(&self) -> Option<Instant> {
        [
            self.inner.poll_at(),
            self.outbound.next_event(),
            self.inbound.next_event(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }

    /// Sends every held outbound frame now, whatever its release time (the
    /// reordered one last), then flushes the inner device.
    ///
    /// The event loop calls this once, when it stops: frames still on the
    /// simulated wire would otherwise be lost. Held inbound frames stay
    /// held; `recv` delivers them when due.
    fn flush(&mut self) -> io::Result<()> {
        let mut first_error = None;
        if let Some(now) = self.last_now {
            let out = &mut self.outbound;
            let stats = &mut self.stats.outbound;
            // The held-back frame (and its copy) goes last: nothing
            // overtook it, so this is not counted as a reordering.
            if let Some(held) = out.reordered.take() {
                let copy = held.dup.then(|| out.buffer(&held.frame));
                stats.duplicated += u64::from(copy.is_some());
                for frame in [Some(held.frame), copy].into_iter().flatten() {
                    out.held_bytes += frame.len();
                    out.queue.push_back(Held {
                        frame,
                        release: now,
                    });
                }
            }
            while let Some(Held { frame, .. }) = out.queue.pop_front() {
                out.held_bytes -= frame.len();
                let result = self.inner.send(now, &frame);
                out.recycle(frame);
                if let Err(e) = result {
                    stats.send_errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let inner = self.inner.flush();
        match first_error {
            Some(e) => Err(e),
            None => inner,
        }
    }
}

/// One bit to flip: byte offset and bit mask.
#[derive(Debug, Clone, Copy)]
struct BitFlip {
    offset: usize,
    mask: u8,
}

impl BitFlip {
    fn apply(self, frame: &mut [u8]) {
        if let Some(byte) = frame.get_mut(self.offset) {
            *byte ^= self.mask;
        }
    }
}

/// The random decisions about one frame that was not lost.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    corrupt: Option<BitFlip>,
    dup: bool,
    /// Hold the frame back until the next one has gone ahead.
    hold: bool,
}

/// A frame waiting in a lane's queue.
#[derive(Debug)]
struct Held {
    frame: Vec<u8>,
    release: Instant,
}

/// A frame held back for reordering.
#[derive(Debug)]
struct Reordered {
    frame: Vec<u8>,
    dup: bool,
    /// When it is released if no frame has overtaken it.
    deadline: Instant,
}

/// The fault pipeline of one direction.
#[derive(Debug)]
struct Lane {
    rng: SmallRng,
    /// Frames with their release times, in delivery order (non-decreasing
    /// release times).
    queue: VecDeque<Held>,
    /// Bytes in `queue`.
    held_bytes: usize,
    reordered: Option<Reordered>,
    /// When the rate limiter finishes serializing what it has accepted.
    next_free: Option<Instant>,
    /// Release time of the frame queued last (keeps FIFO order).
    last_release: Option<Instant>,
    /// Spare buffers.
    pool: Vec<Vec<u8>>,
}

impl Lane {
    fn new(seed: u64) -> Self {
        Lane {
            rng: SmallRng::seed_from_u64(seed),
            queue: VecDeque::new(),
            held_bytes: 0,
            reordered: None,
            next_free: None,
            last_release: None,
            pool: Vec::new(),
        }
    }

    /// Frames waiting, the held-back one included.
    fn held_frames(&self) -> usize {
        self.queue.len() + usize::from(self.reordered.is_some())
    }

    /// Nothing queued and nothing held back.
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.reordered.is_none()
    }

    fn head_due(&self, now: Instant) -> bool {
        self.queue.front().is_some_and(|h| h.release <= now)
    }

    /// When this lane next has a frame to release.
    fn next_event(&self) -> Option<Instant> {
        let head = self.queue.front().map(|h| h.release);
        let reordered = self.reordered.as_ref().map(|r| r.deadline);
        head.into_iter().chain(reordered).min()
    }

    /// A pooled buffer holding a copy of `frame`.
    fn buffer(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        buf
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT {
            self.pool.push(buf);
        }
    }

    /// Draws the fate of a frame of `len` bytes; `None` if it is lost.
    fn decide(
        &mut self,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        len: usize,
    ) -> Option<Verdict> {
        if config.loss > 0.0 && self.rng.random_bool(config.loss) {
            stats.lost += 1;
            return None;
        }
        let mut corrupt = None;
        if config.corrupt > 0.0 && len > 0 && self.rng.random_bool(config.corrupt) {
            let first = if len > ETHERNET_HEADER_LEN {
                ETHERNET_HEADER_LEN
            } else {
                0
            };
            corrupt = Some(BitFlip {
                offset: self.rng.random_range(first..len),
                mask: 1 << self.rng.random_range(0..8u32),
            });
            stats.corrupted += 1;
        }
        let dup = config.dup > 0.0 && self.rng.random_bool(config.dup);
        // The frame that releases a held-back one is never held itself.
        let hold = config.reorder > 0.0
            && self.reordered.is_none()
            && self.rng.random_bool(config.reorder);
        Some(Verdict { corrupt, dup, hold })
    }

    /// Takes a frame that survived `decide` into the lane at `now`.
    fn enter(
        &mut self,
        now: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        verdict: Verdict,
    ) {
        if verdict.hold {
            let deadline = now + config.delay * 2 + REORDER_GRACE;
            self.reordered = Some(Reordered {
                frame,
                dup: verdict.dup,
                deadline,
            });
            return;
        }
        self.admit(now, config, stats, frame, verdict.dup, true);
        if let Some(held) = self.reordered.take() {
            stats.reordered += 1;
            self.admit(now, config, stats, held.frame, held.dup, true);
        }
    }

    /// Releases a held-back frame whose deadline has passed, as if it had
    /// been serialized at its deadline (its wait replaces the delay).
    fn expire_reordered(&mut self, now: Instant, config: &FaultConfig, stats: &mut DirectionStats) {
        if self.reordered.as_ref().is_some_and(|r| r.deadline <= now)
            && let Some(held) = self.reordered.take()
        {
            self.admit(held.deadline, config, stats, held.frame, held.dup, false);
        }
    }

    /// Queues `frame` (and its copy if `dup`), arrived at `at`, through the
    /// rate limiter and, if `with_delay`, the delay line.
    fn admit(
        &mut self,
        at: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        dup: bool,
        with_delay: bool,
    ) {
        let mut delay = Duration::ZERO;
        if with_delay {
            delay = config.delay;
            if !config.jitter.is_zero() {
                let jitter = u64::try_from(config.jitter.as_nanos()).unwrap_or(u64::MAX);
                delay += Duration::from_nanos(self.rng.random_range(0..=jitter));
            }
        }
        let copy = dup.then(|| {
            stats.duplicated += 1;
            self.buffer(&frame)
        });
        self.push(at, stats, frame, delay, config.rate_bps);
        if let Some(copy) = copy {
            self.push(at, stats, copy, delay, config.rate_bps);
        }
    }

    /// Queues one frame: serialization at `rate_bps`, then `delay`, never
    /// ahead of the frame queued before it.
    fn push(
        &mut self,
        at: Instant,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        delay: Duration,
        rate_bps: Option<u64>,
    ) {
        let len = frame.len();
        if self.held_bytes + len > MAX_HELD_BYTES {
            stats.overflow += 1;
            self.recycle(frame);
            return;
        }
        let mut ready = at;
        if let Some(rate) = rate_bps {
            let start = self.next_free.map_or(at, |t| t.max(at));
            if bytes_at_rate(start - at, rate) + len > RATE_QUEUE_BYTES {
                stats.rate_dropped += 1;
                self.recycle(frame);
                return;
            }
            ready = start + serialization_time(len, rate);
            self.next_free = Some(ready);
        }
        let mut release = ready + delay;
        if let Some(last) = self.last_release {
            release = release.max(last);
        }
        if release > at {
            stats.delayed += 1;
        }
        self.last_release = Some(release);
        self.held_bytes += len;
        self.queue.push_back(Held { frame, release });
    }

    /// The oldest frame, if its release time has come.
    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.head_due(now) {
            return None;
        }
        let held = self.queue.pop_front()?;
        self.held_bytes -= held.frame.len();
        Some(held.frame)
    }
}

/// Time to put `len` bytes on a link of `rate` bit/s, rounded up to the
/// nanosecond.
fn serialization_time(len: usize, rate: u64) -> Duration {
    let nanos = (len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate.max(1)));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Bytes a link of `rate` bit/s sends in `d` (rounded down).
fn bytes_at_rate(d: Duration, rate: u64) -> usize {
    let bytes = d.as_nanos() * u128::from(rate) / 8_000_000_000;
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner device that records what is sent and serves queued frames.
    #[derive(Debug, Default)]
    struct FakeDevice {
        sent: Vec<(Instant, Vec<u8>)>,
        inbox: VecDeque<Vec<u8>>,
        refuse_sends: bool,
        flushed: bool,
    }

    impl FrameSink for FakeDevice {
        fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
            if self.refuse_sends {
                return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
            }
            self.sent.push((now, frame.to_vec()));
            Ok(())
        }
    }

    impl Device for FakeDevice {
        fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
            Ok(self.inbox.pop_front().map(|f| {
                buf[..f.len()].copy_from_slice(&f);
                f.len()
            }))
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn poll_at(&self) -> Option<Instant> {
            None
        }
        fn raw_fd(&self) -> Option<RawFd> {
            Some(42)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushed = true;
            Ok(())
        }
    }

    const MS: Duration = Duration::from_millis(1);

    /// A distinct 100-byte frame for each `i`.
    fn frame(i: u32) -> Vec<u8> {
        let mut f = vec![0u8; 100];
        f[..14].fill(0xee);
        f[14..18].copy_from_slice(&i.to_be_bytes());
        f
    }

    fn id(f: &[u8]) -> u32 {
        u32::from_be_bytes(f[14..18].try_into().unwrap())
    }

    fn device(config: FaultConfig) -> FaultDevice<FakeDevice> {
        FaultDevice::new(FakeDevice::default(), config)
    }

    /// Everything `recv` delivers at `now`.
    fn drain(dev: &mut FaultDevice<FakeDevice>, now: Instant) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::new();
        while let Some(n) = dev.recv(now, &mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
        out
    }

    fn sent_ids(dev: &FaultDevice<FakeDevice>) -> Vec<u32> {
        dev.inner().sent.iter().map(|(_, f)| id(f)).collect()
    }

    #[test]
    fn noop_passes_through() {
        let config = FaultConfig::default();
        assert!(config.is_noop());
        assert_eq!(config.validate(), Ok(()));
        let mut dev = device(config);
        let now = Instant::now();
        for i in 0..10 {
            dev.send(now, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(100 + i));
        }
        assert_eq!(sent_ids(&dev), (0..10).collect::<Vec<_>>());
        let got: Vec<u32> = drain(&mut dev, now).iter().map(|f| id(f)).collect();
        assert_eq!(got, (100..110).collect::<Vec<_>>());
        assert_eq!(dev.poll_at(), None);
        assert_eq!(dev.raw_fd(), Some(42));
        assert_eq!(dev.mtu(), 1500);
        // The pipeline was never entered: no buffer was ever taken.
        assert!(dev.outbound.pool.is_empty() && dev.inbound.pool.is_empty());
        assert_eq!(*dev.stats(), FaultStats::default());
        dev.flush().unwrap();
        assert!(dev.inner().flushed);
    }

    #[test]
    fn validate_rejects_bad_values() {
        for (p, ok) in [
            (0.0, true),
            (1.0, true),
            (0.5, true),
            (-0.1, false),
            (1.01, false),
        ] {
            let c = FaultConfig {
                reorder: p,
                ..FaultConfig::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "{p}");
        }
        let nan = FaultConfig {
            loss: f64::NAN,
            ..FaultConfig::default()
        };
        let msg = nan.validate().unwrap_err();
        assert!(msg.contains("loss") && !msg.contains('\n'), "{msg}");
        let zero_rate = FaultConfig {
            rate_bps: Some(0),
            ..FaultConfig::default()
        };
        assert!(zero_rate.validate().is_err());
        let huge = FaultConfig {
            delay: Duration::MAX,
            ..FaultConfig::default()
        };
        assert!(huge.validate().is_err());
    }

    #[test]
    #[should_panic(expected = "invalid fault configuration")]
    fn new_panics_on_invalid_config() {
        let _ = device(FaultConfig {
            dup: 2.0,
            ..FaultConfig::default()
        });
    }

    #[test]
    fn loss_rate_close_to_configured_both_ways() {
        let mut dev = device(FaultConfig {
            loss: 0.1,
            seed: 1,
            ..FaultConfig::default()
        });
        let now = Instant::now();
        let n = 10_000;
        for i in 0..n {
            dev.send(now, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(i));
        }
        let received = drain(&mut dev, now).len();
        let sent = dev.inner().sent.len();
        for (delivered, stats) in [
            (sent, dev.stats().outbound),
            (received, dev.stats().inbound),
        ] {
            let rate = stats.lost as f64 / f64::from(n);
            assert!((0.08..=0.12).contains(&rate), "loss rate {rate}");
            assert_eq!(delivered as u64 + stats.lost, u64::from(n));
            assert_eq!(stats.frames, u64::from(n));
        }
        // Survivors keep their order.
        let ids = sent_ids(&dev);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn duplication_delivers_copies() {
        let mut dev = device(FaultConfig {
            dup: 1.0,
            ..FaultConfig::default()
        });
        let now = Instant::now();
        for i in 0..5 {
            dev.send(now, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(i));
        }
        assert_eq!(sent_ids(&dev), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        let got: Vec<u32> = drain(&mut dev, now).iter().map(|f| id(f)).collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(dev.stats().outbound.duplicated, 5);
        assert_eq!(dev.stats().inbound.duplicated, 5);

        // Some but not all with p = 0.5, copies right behind the original.
        let mut dev = device(FaultConfig {
            dup: 0.5,
            seed: 3,
            ..FaultConfig::default()
        });
        for i in 0..1000 {
            dev.inner_mut().inbox.push_back(frame(i));
        }
        let got: Vec<u32> = drain(&mut dev, now).iter().map(|f| id(f)).collect();
        let dups = dev.stats().inbound.duplicated;
        assert!((400..=600).contains(&dups), "{dups}");
        assert_eq!(got.len() as u64, 1000 + dups);
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
    }

    fn bit_differences(a: &[u8], b: &[u8]) -> Vec<(usize, u32)> {
        a.iter()
            .zip(b)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (i, (x ^ y).count_ones()))
            .collect()
    }

    #[test]
    fn corruption_flips_one_bit_after_the_header() {
        let mut dev = device(FaultConfig {
            corrupt: 1.0,
            seed: 9,
            ..FaultConfig::default()
        });
        let now = Instant::now();
        for i in 0..200 {
            dev.send(now, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(i));
        }
        let received = drain(&mut dev, now);
        let sent: Vec<Vec<u8>> = dev.inner().sent.iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(sent.len(), 200);
        assert_eq!(received.len(), 200);
        let mut offsets = std::collections::HashSet::new();
        for (i, got) in sent.iter().chain(&received).enumerate() {
            let orig = frame(i as u32 % 200);
            assert_eq!(got.len(), orig.len());
            let diff = bit_differences(&orig, got);
            assert_eq!(diff.len(), 1, "{diff:?}");
            assert_eq!(diff[0].1, 1);
            assert!(diff[0].0 >= 14);
            offsets.insert(diff[0].0);
        }
        assert!(offsets.len() > 20, "offsets should vary");
        assert_eq!(dev.stats().outbound.corrupted, 200);
        assert_eq!(dev.stats().inbound.corrupted, 200);

        // Short frames: anywhere, still exactly one bit.
        for len in [1usize, 10, 14] {
            let short = vec![0x5a; len];
            dev.send(now, &short).unwrap();
            let got = &dev.inner().sent.last().unwrap().1;
            let diff = bit_differences(&short, got);
            assert_eq!(diff.len(), 1);
            assert_eq!(diff[0].1, 1);
        }
        // An empty frame cannot be corrupted; it passes.
        dev.send(now, &[]).unwrap();
        assert!(dev.inner().sent.last().unwrap().1.is_empty());
    }

    #[test]
    fn reordering_swaps_but_loses_nothing() {
        // Always: every frame is overtaken by the next one.
        let mut dev = device(FaultConfig {
            reorder: 1.0,
            ..FaultConfig::default()
        });
        let now = Instant::now();
        for i in 0..6 {
            dev.send(now, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(i));
        }
        assert_eq!(sent_ids(&dev), [1, 0, 3, 2, 5, 4]);
        let got: Vec<u32> = drain(&mut dev, now).iter().map(|f| id(f)).collect();
        assert_eq!(got, [1, 0, 3, 2, 5, 4]);
        assert_eq!(dev.stats().outbound.reordered, 3);
        assert_eq!(dev.stats().inbound.reordered, 3);

        // Sometimes, with delay and jitter: all frames arrive, some late.
        let mut dev = device(FaultConfig {
            reorder: 0.2,
            delay: 5 * MS,
            jitter: 2 * MS,
            seed: 11,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let mut t = t0;
        let mut got = Vec::new();
        for i in 0..1000 {
            t += Duration::from_micros(100);
            dev.send(t, &frame(i)).unwrap();
            dev.inner_mut().inbox.push_back(frame(i));
            got.extend(drain(&mut dev, t).iter().map(|f| id(f)));
        }
        let end = t + Duration::from_secs(1);
        dev.flush_due(end).unwrap();
        got.extend(drain(&mut dev, end).iter().map(|f| id(f)));
        assert_eq!(dev.poll_at(), None);
        for ids in [sent_ids(&dev), got] {
            assert_eq!(ids.len(), 1000);
            assert!(ids.windows(2).any(|w| w[0] > w[1]), "some out of order");
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        }
        let r = dev.stats().outbound.reordered;
        assert!((100..=250).contains(&r), "{r}");
    }

    #[test]
    fn lone_reordered_frame_is_released_by_its_deadline() {
        let delay = 10 * MS;
        let mut dev = device(FaultConfig {
            reorder: 1.0,
            delay,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let deadline = t0 + 2 * delay + REORDER_GRACE;
        dev.send(t0, &frame(7)).unwrap();
        dev.inner_mut().inbox.push_back(frame(8));
        assert!(drain(&mut dev, t0).is_empty());
        assert_eq!(dev.poll_at(), Some(deadline));
        let before = deadline - Duration::from_nanos(1);
        assert!(drain(&mut dev, before).is_empty());
        assert!(dev.inner().sent.is_empty());
        let got = drain(&mut dev, deadline);
        assert_eq!(got.iter().map(|f| id(f)).collect::<Vec<_>>(), [8]);
        assert_eq!(sent_ids(&dev), [7]);
        assert_eq!(dev.inner().sent[0].0, deadline);
        assert_eq!(dev.poll_at(), None);
        // Nobody overtook them.
        assert_eq!(dev.stats().outbound.reordered, 0);
    }

    #[test]
    fn delay_holds_frames_until_release() {
        let delay = 10 * MS;
        let mut dev = device(FaultConfig {
            delay,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        dev.send(t0, &frame(1)).unwrap();
        dev.send(t0 + MS, &frame(2)).unwrap();
        dev.inner_mut().inbox.push_back(frame(3));
        assert!(drain(&mut dev, t0 + MS).is_empty());
        assert!(dev.inner().sent.is_empty());
        assert_eq!(dev.poll_at(), Some(t0 + delay));

        // Just before: nothing. At the release time: the first frame only.
        dev.flush_due(t0 + delay - Duration::from_nanos(1)).unwrap();
        assert!(dev.inner().sent.is_empty());
        let got = drain(&mut dev, t0 + delay);
        assert_eq!(sent_ids(&dev), [1]);
        assert!(got.is_empty());
        assert_eq!(dev.poll_at(), Some(t0 + MS + delay));

        // The inbound frame arrived at t0 + 1 ms, so it is due with frame 2.
        let got = drain(&mut dev, t0 + MS + delay);
        assert_eq!(got.iter().map(|f| id(f)).collect::<Vec<_>>(), [3]);
        assert_eq!(sent_ids(&dev), [1, 2]);
        assert_eq!(dev.inner().sent[1].0, t0 + MS + delay);
        assert_eq!(dev.poll_at(), None);
        assert_eq!(dev.stats().outbound.delayed, 2);
        assert_eq!(dev.stats().inbound.delayed, 1);
    }

    #[test]
    fn jitter_keeps_fifo_order() {
        let (delay, jitter) = (5 * MS, 5 * MS);
        let mut dev = device(FaultConfig {
            delay,
            jitter,
            seed: 5,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        // 400 frames within 4 ms: none is due before the last is sent.
        let sent_at = |i: u32| t0 + Duration::from_micros(10 * u64::from(i));
        for i in 0..400 {
            dev.send(sent_at(i), &frame(i)).unwrap();
        }
        assert!(dev.inner().sent.is_empty());
        let releases: Vec<Instant> = dev.outbound.queue.iter().map(|h| h.release).collect();
        assert_eq!(releases.len(), 400);
        assert!(releases.windows(2).all(|w| w[0] <= w[1]));
        for (i, r) in releases.iter().enumerate() {
            let t = sent_at(i as u32);
            assert!(*r >= t + delay && *r <= t + delay + jitter);
        }
        let distinct: std::collections::HashSet<_> = releases.iter().collect();
        assert!(distinct.len() > 10, "{}", distinct.len());
        // Delivered at their release times, in order.
        while let Some(next) = dev.poll_at() {
            dev.flush_due(next).unwrap();
        }
        assert_eq!(sent_ids(&dev), (0..400).collect::<Vec<_>>());
        let times: Vec<Instant> = dev.inner().sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, releases);
    }

    #[test]
    fn rate_limit_spaces_releases() {
        // 8 Mbit/s: a 1000-byte frame takes exactly 1 ms.
        let mut dev = device(FaultConfig {
            rate_bps: Some(8_000_000),
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let big = vec![0u8; 1000];
        for _ in 0..3 {
            dev.send(t0, &big).unwrap();
            dev.inner_mut().inbox.push_back(big.clone());
        }
        assert!(drain(&mut dev, t0).is_empty());
        assert!(dev.inner().sent.is_empty());
        for k in 1..=3u32 {
            let due = t0 + k * MS;
            assert_eq!(dev.poll_at(), Some(due));
            assert_eq!(drain(&mut dev, due).len(), 1);
            assert_eq!(dev.inner().sent.len(), k as usize);
            assert_eq!(dev.inner().sent[k as usize - 1].0, due);
        }
        assert_eq!(dev.poll_at(), None);

        // An idle link starts serializing at `now`, not at the last release.
        let t1 = t0 + 100 * MS;
        dev.send(t1, &big).unwrap();
        assert_eq!(dev.poll_at(), Some(t1 + MS));
        // Rate and delay add up: serialization, then propagation.
        let mut dev = device(FaultConfig {
            rate_bps: Some(8_000_000),
            delay: 5 * MS,
            ..FaultConfig::default()
        });
        dev.send(t0, &big).unwrap();
        dev.send(t0, &big).unwrap();
        let releases: Vec<Instant> = dev.outbound.queue.iter().map(|h| h.release).collect();
        assert_eq!(releases, [t0 + 6 * MS, t0 + 7 * MS]);
        // Serialization times round up to the nanosecond.
        assert_eq!(serialization_time(1500, 12_000_000), MS);
        assert_eq!(
            serialization_time(1, 3),
            Duration::from_nanos(2_666_666_667)
        );
    }

    #[test]
    fn rate_limit_tail_drops_when_queue_is_full() {
        let mut dev = device(FaultConfig {
            rate_bps: Some(8_000_000),
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        let big = vec![0u8; 1000];
        for _ in 0..1100 {
            dev.send(t0, &big).unwrap();
        }
        // 1 MiB of backlog holds 1048 frames of 1000 bytes.
        let accepted = RATE_QUEUE_BYTES / 1000;
        assert_eq!(dev.stats().outbound.rate_dropped, 1100 - accepted as u64);
        assert_eq!(dev.outbound.queue.len(), accepted);
        // Once some have drained, there is room again.
        dev.flush_due(t0 + 10 * MS).unwrap();
        assert_eq!(dev.inner().sent.len(), 10);
        for _ in 0..15 {
            dev.send(t0 + 10 * MS, &big).unwrap();
        }
        assert_eq!(
            dev.stats().outbound.rate_dropped,
            1100 - accepted as u64 + 5
        );
        // Inbound frames are limited the same way: all arrive at t0 (`recv`
        // reads at most RX_PULL per call, so call it until the inner device
        // is empty).
        let mut dev = device(FaultConfig {
            rate_bps: Some(8_000_000),
            ..FaultConfig::default()
        });
        let mut buf = vec![0u8; 2048];
        for _ in 0..1100 {
            dev.inner_mut().inbox.push_back(big.clone());
        }
        while !dev.inner().inbox.is_empty() {
            assert_eq!(dev.recv(t0, &mut buf).unwrap(), None);
        }
        assert_eq!(dev.inbound.queue.len(), accepted);
        assert_eq!(dev.stats().inbound.rate_dropped, 1100 - accepted as u64);
        let mut t = t0;
        let mut got = 0;
        while let Some(next) = dev.poll_at() {
            assert_eq!(next, t0 + (got as u32 + 1) * MS);
            t = t.max(next);
            got += drain(&mut dev, t).len();
        }
        assert_eq!(got, accepted);
    }

    /// What came out of a device, with times relative to the start.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        sent: Vec<(Duration, Vec<u8>)>,
        received: Vec<(Duration, Vec<u8>)>,
        stats: FaultStats,
    }

    /// Steps of 200 us that `run` simulates, then waits for the rest.
    const STEPS: u32 = 3000;

    /// Sends `outbound` and receives `inbound` frames, one of each per step
    /// of 200 us until there are no more, through a device with `config`.
    fn run(config: FaultConfig, outbound: u32, inbound: u32) -> Outcome {
        let mut dev = device(config);
        let t0 = Instant::now();
        let mut received = Vec::new();
        let end = t0 + Duration::from_secs(10);
        for i in 0..=STEPS {
            let t = t0 + Duration::from_micros(200 * u64::from(i));
            if i < outbound {
                dev.send(t, &frame(i)).unwrap();
            }
            if i < inbound {
                dev.inner_mut().inbox.push_back(frame(i));
            }
            let t = if i == STEPS { end } else { t };
            received.extend(drain(&mut dev, t).into_iter().map(|f| (t - t0, f)));
        }
        assert_eq!(dev.poll_at(), None);
        let sent = dev
            .inner()
            .sent
            .iter()
            .map(|(t, f)| (*t - t0, f.clone()))
            .collect();
        Outcome {
            sent,
            received,
            stats: *dev.stats(),
        }
    }

    fn everything(seed: u64) -> FaultConfig {
        FaultConfig {
            loss: 0.1,
            dup: 0.05,
            reorder: 0.1,
            corrupt: 0.05,
            delay: 2 * MS,
            jitter: MS,
            rate_bps: Some(100_000_000),
            seed,
        }
    }

    #[test]
    fn same_seed_same_faults_different_seed_different_faults() {
        let a = run(everything(42), 2000, 2000);
        let b = run(everything(42), 2000, 2000);
        assert_eq!(a, b);
        let c = run(everything(43), 2000, 2000);
        assert_ne!(a.stats, c.stats);
        assert_ne!(a.sent, c.sent);
        assert_ne!(a.received, c.received);
        // Every kind of fault happened.
        for s in [a.stats.outbound, a.stats.inbound] {
            assert!(s.lost > 0 && s.duplicated > 0 && s.reordered > 0);
            assert!(s.corrupted > 0 && s.delayed > 0);
        }
    }

    #[test]
    fn inbound_faults_do_not_depend_on_outbound_traffic() {
        let quiet = run(everything(7), 0, 1000);
        let busy = run(everything(7), 3000, 1000);
        assert!(quiet.received == busy.received);
        assert_eq!(quiet.stats.inbound, busy.stats.inbound);
        // One seed, two directions, two different patterns.
        let lossy = run(
            FaultConfig {
                loss: 0.3,
                seed: 7,
                ..FaultConfig::default()
            },
            1000,
            1000,
        );
        let ids = |frames: &[(Duration, Vec<u8>)]| -> Vec<u32> {
            frames.iter().map(|(_, f)| id(f)).collect()
        };
        assert_ne!(ids(&lossy.sent), ids(&lossy.received));
    }

    #[test]
    fn flush_sends_everything_held() {
        let mut dev = device(FaultConfig {
            delay: Duration::from_secs(1),
            reorder: 1.0,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        for i in 0..3 {
            dev.send(t0, &frame(i)).unwrap();
        }
        assert!(dev.inner().sent.is_empty());
        dev.flush().unwrap();
        assert_eq!(sent_ids(&dev), [1, 0, 2]);
        assert!(dev.inner().flushed);
        assert!(format!("{dev:?}").contains("held_outbound: 0"));

        // A held-back duplicated frame leaves with its copy.
        let mut dev = device(FaultConfig {
            reorder: 1.0,
            dup: 1.0,
            ..FaultConfig::default()
        });
        dev.send(t0, &frame(9)).unwrap();
        assert!(format!("{dev:?}").contains("held_outbound: 1"));
        dev.flush().unwrap();
        assert_eq!(sent_ids(&dev), [9, 9]);
        assert_eq!(dev.stats().outbound.duplicated, 1);
        assert_eq!(dev.poll_at(), None);
        assert_eq!(dev.outbound.held_bytes, 0);
    }

    #[test]
    fn refused_delayed_frames_are_counted_not_fatal() {
        let mut dev = device(FaultConfig {
            delay: MS,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        dev.send(t0, &frame(1)).unwrap();
        dev.inner_mut().refuse_sends = true;
        // `recv` must not fail because an outbound frame was refused.
        assert!(drain(&mut dev, t0 + MS).is_empty());
        assert_eq!(dev.stats().outbound.send_errors, 1);
        dev.send(t0 + MS, &frame(2)).unwrap();
        assert!(dev.flush_due(t0 + 2 * MS).is_err());
        assert_eq!(dev.stats().outbound.send_errors, 2);
    }

    #[test]
    fn buffers_are_reused() {
        let mut dev = device(FaultConfig {
            delay: MS,
            ..FaultConfig::default()
        });
        let t0 = Instant::now();
        for round in 0..100u32 {
            let t = t0 + round * MS;
            dev.send(t, &frame(round)).unwrap();
            dev.inner_mut().inbox.push_back(frame(round));
            drain(&mut dev, t);
        }
        // One frame in flight per direction at a time: one or two buffers.
        assert!(dev.outbound.pool.len() + dev.outbound.queue.len() <= 2);
        assert!(dev.inbound.pool.len() + dev.inbound.queue.len() <= 2);
    }

    #[test]
    fn summaries_are_short() {
        let stats = FaultStats {
            outbound: DirectionStats {
                frames: 100,
                lost: 9,
                duplicated: 2,
                ..DirectionStats::default()
            },
            inbound: DirectionStats {
                frames: 50,
                ..DirectionStats::default()
            },
        };
        assert_eq!(
            stats.to_string(),
            "faults: out 100 frames (lost 9, duplicated 2); in 50 frames"
        );
        assert_eq!(FaultConfig::default().to_string(), "no faults");
        let c = FaultConfig {
            loss: 0.1,
            delay: 20 * MS,
            jitter: 5 * MS,
            rate_bps: Some(1_000_000),
            seed: 7,
            ..FaultConfig::default()
        };
        assert_eq!(
            c.to_string(),
            "loss 10%, delay 20ms+-5ms, rate 1000000 bit/s, seed 7"
        );
    }
}
