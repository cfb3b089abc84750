//! What the fault injector did: [`FaultStats`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(doc)]
use super::{FaultDevice, MAX_HELD_BYTES, RATE_QUEUE_BYTES};

/// What the injector did to the frames of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Frames that entered the fault pipeline (a TCP super segment counts
    /// once).
    pub frames: u64,
    /// Frames dropped by the `loss` probability; for a TCP super segment
    /// (received with offload, or sent whole), each of its wire-sized
    /// segments that was (so `lost` may exceed `loss` times `frames`).
    pub lost: u64,
    /// TCP payload bytes of what `lost` counts (of each lost frame, or
    /// wire-sized segment of a super segment): the data a TCP sender has
    /// to retransmit because of the injector.
    pub lost_payload: u64,
    /// Extra copies made by the `dup` probability (of a whole frame, or of
    /// a wire-sized segment cut out of a super segment).
    pub duplicated: u64,
    /// Frames that another frame actually overtook.
    pub reordered: u64,
    /// Frames with one bit flipped (for a TCP super segment, each of its
    /// wire-sized segments that was).
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
            ("lost payload bytes", self.lost_payload),
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

/// Counters in [`DirectionStats`].
const FIELDS: usize = 10;

impl DirectionStats {
    fn to_array(self) -> [u64; FIELDS] {
        [
            self.frames,
            self.lost,
            self.lost_payload,
            self.duplicated,
            self.reordered,
            self.corrupted,
            self.delayed,
            self.rate_dropped,
            self.overflow,
            self.send_errors,
        ]
    }

    fn from_array(a: [u64; FIELDS]) -> Self {
        let [
            frames,
            lost,
            lost_payload,
            duplicated,
            reordered,
            corrupted,
            delayed,
            rate_dropped,
            overflow,
            send_errors,
        ] = a;
        DirectionStats {
            frames,
            lost,
            lost_payload,
            duplicated,
            reordered,
            corrupted,
            delayed,
            rate_dropped,
            overflow,
            send_errors,
        }
    }
}

/// The counters of a [`FaultDevice`] as another thread sees them (a status
/// report while the device is inside a running stack): cloned from
/// [`FaultDevice::stats_handle`], updated by the device with relaxed atomic
/// stores at the start of every `send`, `send_segmented` and `recv` (so a
/// snapshot may miss what the latest call did) and at `flush`. Each counter
/// is exact; a snapshot taken during an update may mix two consecutive
/// states of different counters.
#[derive(Clone, Debug, Default)]
pub struct FaultStatsHandle(Arc<[AtomicU64; 2 * FIELDS]>);

impl FaultStatsHandle {
    /// The counters as last published.
    pub fn snapshot(&self) -> FaultStats {
        let read = |base: usize| {
            DirectionStats::from_array(std::array::from_fn(|i| {
                self.0[base + i].load(Ordering::Relaxed)
            }))
        };
        FaultStats {
            outbound: read(0),
            inbound: read(FIELDS),
        }
    }

    /// Publishes `stats`.
    pub(super) fn publish(&self, stats: &FaultStats) {
        let out = stats.outbound.to_array();
        let inb = stats.inbound.to_array();
        for (slot, v) in self.0.iter().zip(out.into_iter().chain(inb)) {
            slot.store(v, Ordering::Relaxed);
        }
    }
}
