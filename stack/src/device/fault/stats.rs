//! What the fault injector did: [`FaultStats`].

use std::fmt;

#[cfg(doc)]
use super::{FaultDevice, MAX_HELD_BYTES, RATE_QUEUE_BYTES};

/// What the injector did to the frames of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames that entered the fault pipeline.
    pub frames: u64,
    /// Frames dropped by the `loss` probability; for a received TCP super
    /// segment, each of its wire-sized segments that was (so `lost` may
    /// exceed `loss` times `frames`).
    pub lost: u64,
    /// Extra copies made by the `dup` probability (of a whole frame, or of
    /// a wire-sized segment cut out of a super segment).
    pub duplicated: u64,
    /// Frames that another frame actually overtook.
    pub reordered: u64,
    /// Frames with one bit flipped (for a received TCP super segment, each
    /// of its wire-sized segments that was).
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
