//! Pacing: spreading a connection's data segments over time at a rate
//! derived from cwnd and the smoothed RTT (or the one the congestion
//! control algorithm asks for), instead of sending a window's worth in one
//! burst whenever ACKs open it.
//!
//! The scheme follows Linux's internal TCP pacing (`tcp_update_pacing_rate`,
//! `tcp_pacing_check`, `tcp_update_skb_after_send`) in spirit:
//!
//! - The rate is cwnd (in bytes, or the flight if larger) / srtt, times 2
//!   while cwnd is below half of ssthresh (slow start must be able to
//!   double per round trip) and times 1.2 otherwise, and never above
//!   `max_pacing_rate` (SO_MAX_PACING_RATE). Unlike Linux, srtt is bounded
//!   by twice the minimum RTT (see `pacing_rate`). An algorithm that
//!   returns its own rate (`CongestionControl::pacing_rate`) is used as it
//!   is, under the same cap.
//! - A release time: a data segment (new data or a retransmission) leaves
//!   only when the clock has reached it, and each one moves it by its
//!   length over the rate. ACKs, SYNs, FIN-only segments, resets and probes
//!   are never held.
//! - A connection that wakes late (timers have a granularity) gets the time
//!   it missed back as credit, up to [`HORIZON`], so that the rate holds
//!   on average even when the stack thread cannot wake for each gap; and a
//!   segment may leave up to [`GRANULARITY`] before its release time, so
//!   fast flows go in quanta of that much time instead of waking the
//!   stack thread for every gap of a few microseconds.
//! - Starting from idle (nothing in flight), an initial quantum of
//!   [`INITIAL_QUANTUM_SEGMENTS`] segments goes unpaced, as Linux does for
//!   the first ten segments and fq for a new flow: short transfers are not
//!   slowed down.
//! - With segmentation offload the super segments are cut to about one
//!   millisecond of data at the current rate (Linux's TSO autosizing,
//!   `tcp_tso_autosize`: rate >> 10, at least two segments), so that a
//!   paced flow at a high rate keeps using offload.
//!
//! The connection keeps one release time and a byte count; deciding whether
//! a segment may leave costs one comparison, and
//! [`Connection::poll_at`] reports the release time so the stack's timer
//! heap wakes the connection for it.

use std::time::{Duration, Instant};

use super::Connection;
use super::output::Plan;

/// Segments that leave unpaced when a transfer starts from idle.
pub const INITIAL_QUANTUM_SEGMENTS: usize = 10;

/// The most lateness a connection gets back as credit: the stack thread's
/// wake-ups are not exact (an epoll timeout has the kernel's timer slack,
/// 50 us by default, on top of the scheduling delay), so a release time
/// missed by up to this much lets the segments due meanwhile go at once.
pub const HORIZON: Duration = Duration::from_micros(500);

/// How early a paced segment may leave: a release time less than this
/// far ahead does not hold it. The stack thread cannot sleep for less
/// than its wake-up latency (measured at 60-90 us past the timeout with
/// `epoll_pwait2` and the default 50 us timer slack), so waiting for a
/// 20 us gap would cost a wake-up per super segment and pace slower than
/// the rate; instead, fast flows go in quanta of this much time, and
/// slow flows (whose gaps are longer) are spaced exactly.
pub const GRANULARITY: Duration = Duration::from_micros(100);

/// The pacing state of a connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacer {
    /// When the next paced segment may leave (`None`: nothing paced yet).
    pub(crate) release: Option<Instant>,
    /// Bytes that may still leave unpaced (the initial quantum).
    pub(crate) quantum: usize,
}

impl Connection {
    /// True when pacing applies to this connection: `TcpConfig::pacing`,
    /// a rate cap set (SO_MAX_PACING_RATE, which turns Linux's internal
    /// pacing on as well), or an algorithm that needs it (BBR).
    pub(crate) fn pacing_enabled(&self) -> bool {
        self.cfg.pacing || self.cfg.max_pacing_rate.is_some() || self.cc.ctrl.needs_pacing()
    }

    /// The pacing rate in bytes per second, `None` when the connection does
    /// not pace (or has no RTT sample yet and no cap to go by).
    pub(crate) fn pacing_rate(&self) -> Option<u64> {
        if !self.pacing_enabled() {
            return None;
        }
        let cap = self.cfg.max_pacing_rate.unwrap_or(u64::MAX);
        let rate = self.cc.ctrl.pacing_rate().or_else(|| {
            let srtt = self.rtt.srtt()?;
            let cwnd = self.cc.ctrl.cwnd();
            let ssthresh = self.cc.ctrl.ssthresh();
            // Linux: "In Slow Start, set sk_pacing_rate to 200 % the
            // current rate. In Congestion Avoidance phase, set it to 120 %"
            // where slow start ends early, at half of ssthresh, since the
            // window is then approaching the point it overshot before.
            let percent: u128 = if cwnd < ssthresh / 2 { 200 } else { 120 };
            let window = cwnd.max(self.pipe()) as u128;
            // srtt takes millisecond timestamp echoes when no segment is
            // timed (after retransmissions, Karn's rule): on a 50 us path
            // each reads as 1 ms and srtt grows twentyfold, which would
            // pace a recovering flow far below its ACK clock. Twice the
            // minimum RTT (from the precise samples) bounds it.
            let rtt = match self.rtt.min_rtt() {
                Some(min) => srtt.min(min * 2),
                None => srtt,
            };
            let micros = rtt.as_micros().max(1);
            Some((window * percent * 10_000 / micros).min(u64::MAX as u128) as u64)
        });
        match rate {
            Some(r) => Some(r.min(cap).max(1)),
            None => (cap != u64::MAX).then_some(cap.max(1)),
        }
    }

    /// Linux's TSO autosizing: the largest super segment while pacing at
    /// the current rate, about a millisecond of data (rate >> 10), at least
    /// two segments, never more than `most`.
    pub(crate) fn pacing_super_segment(&self, most: usize, mss: usize) -> usize {
        let Some(rate) = self.pacing_rate() else {
            return most;
        };
        let bytes = (rate >> 10) as usize;
        let segs = (bytes / mss.max(1)).max(2);
        most.min(segs * mss)
    }

    /// True when `plan` carries data that pacing holds back at `now`.
    pub(crate) fn pacing_holds(&self, now: Instant, plan: &Plan) -> bool {
        is_paced(plan)
            && self.pacing_enabled()
            && self.pacing.release.is_some_and(|r| now + GRANULARITY < r)
            && self.pacing.quantum == 0
    }

    /// When the connection may send again, when the only thing it has to
    /// send is paced data (for [`poll_at`](Connection::poll_at)): the
    /// release time less [`GRANULARITY`].
    pub(crate) fn pacing_wait(&self) -> Option<Instant> {
        if !self.pacing_enabled() || self.pacing.quantum > 0 {
            return None;
        }
        let release = self.pacing.release?;
        if self.pending_rst.is_some() || self.rcv.ack_now || self.probe.send_now {
            return None;
        }
        let plan = self.plan().0?;
        is_paced(&plan).then(|| release.checked_sub(GRANULARITY).unwrap_or(release))
    }

    /// Bookkeeping after a paced segment of `len` bytes left at `now`;
    /// `idle` tells whether nothing was in flight before it.
    pub(crate) fn pacing_sent(&mut self, now: Instant, len: usize, idle: bool) {
        let Some(rate) = self.pacing_rate() else {
            return;
        };
        let p = &mut self.pacing;
        if idle && p.release.is_none_or(|r| r <= now) {
            p.quantum = INITIAL_QUANTUM_SEGMENTS * self.snd.smss;
        }
        if p.quantum >= len {
            p.quantum -= len;
            return;
        }
        p.quantum = 0;
        let gap = Duration::from_nanos((len as u128 * 1_000_000_000 / rate as u128) as u64);
        // Late by `now - release`: that much comes back as credit (up to
        // the horizon), as Linux's "take into account OS jitter".
        let base = match p.release {
            Some(r) if r > now => r,
            Some(r) => now.checked_sub((now - r).min(HORIZON)).unwrap_or(now),
            None => now,
        };
        p.release = Some(base + gap);
    }
}

/// Data segments are paced, new and retransmitted alike; a FIN-only
/// segment is not.
fn is_paced(plan: &Plan) -> bool {
    match *plan {
        Plan::New { len, .. } => len > 0,
        Plan::Retransmit { .. } | Plan::Again { .. } | Plan::Rescue { .. } | Plan::Probe { .. } => {
            true
        }
    }
}
