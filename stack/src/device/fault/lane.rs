//! The fault pipeline of one direction: the shared decisions
//! ([`FaultDice`]), then the rate limiter and the delay line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::model::{FaultDice, FaultOdds, Reordered, Verdict};
use super::{DirectionStats, FaultConfig, MAX_HELD_BYTES, RATE_QUEUE_BYTES};

/// Spare buffers kept per direction for reuse.
const POOL_LIMIT: usize = 1024;

/// A frame waiting in a lane's queue.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) frame: Vec<u8>,
    pub(super) release: Instant,
    /// The payload size of the wire segments `frame` stands for, if it is
    /// an outbound TCP super segment passed on whole (to be handed to
    /// [`FrameSink::send_segmented`](crate::FrameSink::send_segmented));
    /// 0 for a frame that is one segment on the wire.
    pub(super) mss: usize,
}

/// How a TCP super segment is cut into the segments it stands for on the
/// wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WirePieces {
    /// Bytes of headers (link, IP, TCP) each piece carries.
    pub(super) hdr: usize,
    /// Payload bytes of each piece but the last.
    pub(super) mss: usize,
    /// Payload bytes of the whole super segment.
    pub(super) payload: usize,
    /// Number of pieces.
    pub(super) pieces: usize,
}

impl WirePieces {
    /// Payload bytes of piece `i`.
    pub(super) fn piece_payload(&self, i: usize) -> usize {
        self.payload.saturating_sub(i * self.mss).min(self.mss)
    }

    /// Bytes the pieces occupy on the wire, every piece's headers
    /// included: what the rate limiter charges for the whole super segment.
    pub(super) fn wire_len(&self) -> usize {
        self.payload + self.pieces * self.hdr
    }
}

/// The fault pipeline of one direction.
#[derive(Debug)]
pub(super) struct Lane {
    /// The random decisions, and the frame held back for reordering.
    dice: FaultDice<Vec<u8>>,
    /// Frames with their release times, in delivery order (non-decreasing
    /// release times).
    pub(super) queue: VecDeque<Held>,
    /// Bytes in `queue`.
    pub(super) held_bytes: usize,
    /// When the rate limiter finishes serializing what it has accepted.
    next_free: Option<Instant>,
    /// Release time of the frame queued last (keeps FIFO order).
    last_release: Option<Instant>,
    /// Spare buffers.
    pub(super) pool: Vec<Vec<u8>>,
    /// The fate of each piece of the latest super segment
    /// ([`decide_pieces`](Self::decide_pieces)): `None` when lost.
    pub(super) piece_fate: Vec<Option<Verdict>>,
    /// Scratch space for cutting a super segment.
    pub(super) scratch: Vec<u8>,
}

impl Lane {
    pub(super) fn new(seed: u64) -> Self {
        Lane {
            dice: FaultDice::new(seed),
            queue: VecDeque::new(),
            held_bytes: 0,
            next_free: None,
            last_release: None,
            pool: Vec::new(),
            piece_fate: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Frames waiting, the held-back one included.
    pub(super) fn held_frames(&self) -> usize {
        self.queue.len() + usize::from(self.dice.held().is_some())
    }

    /// Nothing queued and nothing held back.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.dice.held().is_none()
    }

    /// A frame is held back for reordering: the next one to enter
    /// releases it.
    pub(super) fn holds_back(&self) -> bool {
        self.dice.held().is_some()
    }

    pub(super) fn head_due(&self, now: Instant) -> bool {
        self.queue.front().is_some_and(|h| h.release <= now)
    }

    /// When this lane next has a frame to release.
    pub(super) fn next_event(&self) -> Option<Instant> {
        let head = self.queue.front().map(|h| h.release);
        let reordered = self.dice.held().map(|r| r.deadline);
        head.into_iter().chain(reordered).min()
    }

    /// The frame held back for reordering, taken out (to be flushed).
    pub(super) fn take_reordered(&mut self) -> Option<Reordered<Vec<u8>>> {
        self.dice.take_held()
    }

    /// A pooled buffer holding a copy of `frame`.
    pub(super) fn buffer(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        buf
    }

    pub(super) fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_LIMIT {
            self.pool.push(buf);
        }
    }

    /// Draws the fate of a frame of `len` bytes behind a link header of
    /// `link_len`; `None` if it is lost.
    pub(super) fn decide(
        &mut self,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        len: usize,
        link_len: usize,
    ) -> Option<Verdict> {
        self.decide_with(&config.odds(), stats, len, link_len)
    }

    /// [`decide`](Self::decide) with these odds.
    pub(super) fn decide_with(
        &mut self,
        odds: &FaultOdds,
        stats: &mut DirectionStats,
        len: usize,
        link_len: usize,
    ) -> Option<Verdict> {
        let Some(verdict) = self.dice.decide_after(odds, len, link_len) else {
            stats.lost += 1;
            return None;
        };
        stats.corrupted += u64::from(verdict.corrupt.is_some());
        Some(verdict)
    }

    /// Draws the fate of each wire-sized segment of a super segment cut
    /// as `cut` says, in order, into [`piece_fate`](Self::piece_fate)
    /// (reused: no allocation in the steady state), counting each loss and
    /// corruption. A piece may be held back for reordering only if no frame
    /// is held when it enters the lane (the frame held before, or an
    /// earlier piece not yet overtaken by a later one). Returns how many
    /// were lost, and whether any fault at all was drawn (if not, the super
    /// segment may go on whole).
    pub(super) fn decide_pieces(
        &mut self,
        odds: &FaultOdds,
        stats: &mut DirectionStats,
        link_len: usize,
        cut: WirePieces,
    ) -> (usize, bool) {
        self.piece_fate.clear();
        let mut lost = 0;
        let mut lost_payload = 0;
        let mut touched = false;
        let mut holding = self.dice.held().is_some();
        for i in 0..cut.pieces {
            let len = cut.hdr + cut.piece_payload(i);
            let fate = self.dice.decide_piece(odds, len, link_len, !holding);
            match fate {
                None => {
                    lost += 1;
                    lost_payload += cut.piece_payload(i) as u64;
                }
                Some(v) => {
                    stats.corrupted += u64::from(v.corrupt.is_some());
                    touched |= v != Verdict::default();
                    // A piece that is not held back releases the one that is.
                    holding = v.hold;
                }
            }
            self.piece_fate.push(fate);
        }
        stats.lost += lost as u64;
        stats.lost_payload += lost_payload;
        (lost, touched || lost > 0)
    }

    /// Takes a frame that survived `decide` into the lane at `now`.
    pub(super) fn enter(
        &mut self,
        now: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        verdict: Verdict,
    ) {
        if verdict.hold {
            self.dice.hold(now, config.delay, frame, verdict.dup);
            return;
        }
        let len = frame.len();
        self.enter_whole(now, config, stats, frame, 0, len, verdict.dup);
    }

    /// Takes into the lane at `now` a frame that is not held back: a TCP
    /// super segment of `mss`-byte pieces none of which met a fault, with
    /// `wire` bytes on the wire (see [`WirePieces::wire_len`]), or with `mss`
    /// 0 one frame of `wire` bytes (duplicated if `dup`). It releases the
    /// frame held back for reordering, right behind it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn enter_whole(
        &mut self,
        now: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        mss: usize,
        wire: usize,
        dup: bool,
    ) {
        self.admit(now, config, stats, frame, (mss, wire), dup, true);
        if let Some(held) = self.dice.take_held() {
            stats.reordered += 1;
            let len = held.frame.len();
            self.admit(now, config, stats, held.frame, (0, len), held.dup, true);
        }
    }

    /// Releases a held-back frame whose deadline has passed, as if it had
    /// been serialized at its deadline (its wait replaces the delay).
    pub(super) fn expire_reordered(
        &mut self,
        now: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
    ) {
        if let Some(held) = self.dice.take_expired(now) {
            let len = held.frame.len();
            self.admit(
                held.deadline,
                config,
                stats,
                held.frame,
                (0, len),
                held.dup,
                false,
            );
        }
    }

    /// Queues `frame` (and its copy if `dup`), arrived at `at`, through the
    /// rate limiter and, if `with_delay`, the delay line. `shape` is the
    /// frame's `(mss, wire length)`, as [`push`](Self::push) takes them.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        at: Instant,
        config: &FaultConfig,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        shape: (usize, usize),
        dup: bool,
        with_delay: bool,
    ) {
        let delay = if with_delay {
            self.dice.delay(config.delay, config.jitter)
        } else {
            Duration::ZERO
        };
        let copy = dup.then(|| {
            stats.duplicated += 1;
            self.buffer(&frame)
        });
        self.push(at, stats, frame, shape, delay, config.rate_bps);
        if let Some(copy) = copy {
            self.push(at, stats, copy, shape, delay, config.rate_bps);
        }
    }

    /// Queues one frame: serialization at `rate_bps`, then `delay`, never
    /// ahead of the frame queued before it. `(mss, wire)`: the payload size
    /// of the segments the frame stands for if it is a super segment to be
    /// sent whole (0 otherwise), and the bytes it takes on the wire (its
    /// length, or for a super segment every piece's headers included),
    /// which the rate limiter charges.
    pub(super) fn push(
        &mut self,
        at: Instant,
        stats: &mut DirectionStats,
        frame: Vec<u8>,
        (mss, wire): (usize, usize),
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
            if bytes_at_rate(start - at, rate) + wire > RATE_QUEUE_BYTES {
                stats.rate_dropped += 1;
                self.recycle(frame);
                return;
            }
            ready = start + serialization_time(wire, rate);
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
        self.queue.push_back(Held {
            frame,
            release,
            mss,
        });
    }

    /// The oldest frame, if its release time has come.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Held> {
        if !self.head_due(now) {
            return None;
        }
        let held = self.queue.pop_front()?;
        self.held_bytes -= held.frame.len();
        Some(held)
    }
}

/// Time to put `len` bytes on a link of `rate` bit/s, rounded up to the
/// nanosecond.
pub(super) fn serialization_time(len: usize, rate: u64) -> Duration {
    let nanos = (len as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate.max(1)));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Bytes a link of `rate` bit/s sends in `d` (rounded down).
pub(super) fn bytes_at_rate(d: Duration, rate: u64) -> usize {
    let bytes = d.as_nanos() * u128::from(rate) / 8_000_000_000;
    usize::try_from(bytes).unwrap_or(usize::MAX)
}
