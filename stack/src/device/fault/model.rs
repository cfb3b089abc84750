//! The impairment model shared by the fault injector ([`FaultDevice`]) and
//! the deterministic simulator's links: the random fate of each frame and
//! the one definition of reordering.
//!
//! # The model
//!
//! Each direction of a link has its own [`FaultDice`], seeded, and draws for
//! every frame, in this order:
//!
//! 1. **loss**: with probability `loss` the frame is dropped (nothing else
//!    is drawn for it).
//! 2. **corruption**: with probability `corrupt` one random bit of one random
//!    byte at offset 14 or later (after the Ethernet header; anywhere in
//!    the packet on an IP link) is flipped. Frames of 14 bytes or less get
//!    the bit flipped anywhere.
//! 3. **duplication**: with probability `dup` an identical copy follows the
//!    frame (right behind it, with the same fate from here on).
//! 4. **reordering**: with probability `reorder` the frame is *held back*
//!    until the next frame of the same direction has gone ahead of it; it
//!    then follows that frame, with a delay of its own, but never ahead of
//!    it. A frame that no other frame overtakes before its deadline,
//!    `2 * delay + 1 ms` after it was held, is released at the deadline
//!    anyway (that wait replaces its delay), so nothing is ever stuck. At
//!    most one frame is held at a time: the frame that overtakes is never
//!    held back itself. A frame counts as reordered only when another frame
//!    actually overtook it.
//!
//! After that comes the delay line: each frame is released `delay` plus a
//! uniform random `0..=jitter` after it entered, but never before a frame
//! that entered earlier (jitter alone never reorders: only step 4 does).
//!
//! What happens before these stages (the fault injector's rate limiter, the
//! simulator's drop-tail bottleneck queue) is up to each user.
//!
//! [`FaultDevice`]: super::FaultDevice

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Extra time a reordered frame waits, beyond `2 * delay`, for another frame
/// to overtake it.
pub const REORDER_GRACE: Duration = Duration::from_millis(1);

/// Offset of the first byte after the Ethernet II header.
const ETHERNET_HEADER_LEN: usize = 14;

/// The per-frame probabilities of a direction, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultOdds {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub dup: f64,
    /// Probability that a frame is held back behind the next one.
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped.
    pub corrupt: f64,
}

/// One bit to flip: byte offset and bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitFlip {
    /// The byte.
    pub offset: usize,
    /// The bit in it (one bit set).
    pub mask: u8,
}

impl BitFlip {
    /// Flips the bit in `frame` (nothing if the frame is shorter).
    pub fn apply(self, frame: &mut [u8]) {
        if let Some(byte) = frame.get_mut(self.offset) {
            *byte ^= self.mask;
        }
    }
}

/// The random decisions about one frame that was not lost (the default:
/// nothing done to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The bit to flip, if the frame is corrupted.
    pub corrupt: Option<BitFlip>,
    /// A copy follows the frame.
    pub dup: bool,
    /// Hold the frame back until the next one has gone ahead
    /// ([`FaultDice::hold`]).
    pub hold: bool,
}

/// A frame held back for reordering.
#[derive(Debug)]
pub struct Reordered<F> {
    /// The frame (whatever the user keeps of it).
    pub frame: F,
    /// A copy follows it.
    pub dup: bool,
    /// When it is released if no frame has overtaken it.
    pub deadline: Instant,
}

/// The seeded decisions of one direction, and the frame it holds back for
/// reordering (see the [module documentation](self) for the model).
#[derive(Debug)]
pub struct FaultDice<F> {
    rng: SmallRng,
    held: Option<Reordered<F>>,
}

impl<F> FaultDice<F> {
    /// Decisions drawn from a generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        FaultDice {
            rng: SmallRng::seed_from_u64(seed),
            held: None,
        }
    }

    /// Draws the fate of a frame of `len` bytes; `None` if it is lost.
    /// `hold` is never set while a frame is held already.
    pub fn decide(&mut self, odds: &FaultOdds, len: usize) -> Option<Verdict> {
        self.decide_after(odds, len, ETHERNET_HEADER_LEN)
    }

    /// [`decide`](Self::decide) for frames whose link header is
    /// `link_len` bytes (0 on an IP link, whose bit flips may then hit any
    /// byte of the IP packet).
    pub fn decide_after(
        &mut self,
        odds: &FaultOdds,
        len: usize,
        link_len: usize,
    ) -> Option<Verdict> {
        let may_hold = self.held.is_none();
        self.decide_piece(odds, len, link_len, may_hold)
    }

    /// [`decide_after`](Self::decide_after) for one wire-sized piece of a
    /// frame that is cut before any of its pieces enters the lane (a TCP
    /// super segment, see [`FaultDevice`](super::FaultDevice)): the pieces'
    /// fates are drawn first, so whether this one may be held back is
    /// told (`may_hold`: no frame is held, nor an earlier piece still
    /// waiting for another to overtake it).
    pub fn decide_piece(
        &mut self,
        odds: &FaultOdds,
        len: usize,
        link_len: usize,
        may_hold: bool,
    ) -> Option<Verdict> {
        if odds.loss > 0.0 && self.rng.random_bool(odds.loss) {
            return None;
        }
        let mut corrupt = None;
        if odds.corrupt > 0.0 && len > 0 && self.rng.random_bool(odds.corrupt) {
            let first = if len > link_len { link_len } else { 0 };
            corrupt = Some(BitFlip {
                offset: self.rng.random_range(first..len),
                mask: 1 << self.rng.random_range(0..8u32),
            });
        }
        let dup = odds.dup > 0.0 && self.rng.random_bool(odds.dup);
        // The frame that releases a held-back one is never held itself.
        let hold = odds.reorder > 0.0 && may_hold && self.rng.random_bool(odds.reorder);
        Some(Verdict { corrupt, dup, hold })
    }

    /// The delay of a frame that is not released by a reordering deadline:
    /// `delay` plus a uniform random `0..=jitter`.
    pub fn delay(&mut self, delay: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return delay;
        }
        let jitter = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        delay + Duration::from_nanos(self.rng.random_range(0..=jitter))
    }

    /// Holds `frame` back (its verdict said [`hold`](Verdict::hold)), from
    /// `now`, on a direction whose fixed delay is `delay`.
    pub fn hold(&mut self, now: Instant, delay: Duration, frame: F, dup: bool) {
        debug_assert!(self.held.is_none(), "one frame held at a time");
        self.held = Some(Reordered {
            frame,
            dup,
            deadline: now + delay * 2 + REORDER_GRACE,
        });
    }

    /// The held-back frame, taken out because another frame went ahead of
    /// it (a reordering) or because the direction is being flushed.
    pub fn take_held(&mut self) -> Option<Reordered<F>> {
        self.held.take()
    }

    /// The held-back frame, taken out if its deadline is at or before
    /// `now` (no frame overtook it: not a reordering).
    pub fn take_expired(&mut self, now: Instant) -> Option<Reordered<F>> {
        if self.held.as_ref().is_some_and(|r| r.deadline <= now) {
            self.held.take()
        } else {
            None
        }
    }

    /// The frame held back, if any.
    pub fn held(&self) -> Option<&Reordered<F>> {
        self.held.as_ref()
    }
}
