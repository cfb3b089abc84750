//! Congestion control (RFC 5681 and relatives): how much data may be in
//! flight. The connection detects loss and runs recovery (RFC 6675); the
//! algorithm only decides the window's response, so algorithms are small and
//! interchangeable.

mod bbr;
mod cubic;
mod newreno;

pub use bbr::{Bbr, BbrMode, BbrState};
pub use cubic::Cubic;
pub use newreno::NewReno;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::rate::RateSample;

/// A congestion control algorithm for one connection. Windows are in bytes.
pub trait CongestionControl: Send + fmt::Debug {
    /// The algorithm's name ("newreno", "cubic").
    fn name(&self) -> &'static str;

    /// Sets the sender MSS and the initial window (RFC 6928: 10 segments,
    /// the min(10*MSS, max(2*MSS, 14600)) form).
    fn init(&mut self, mss: usize);

    /// The congestion window.
    fn cwnd(&self) -> usize;

    /// The slow start threshold.
    fn ssthresh(&self) -> usize;

    /// `acked` bytes were newly acknowledged outside fast recovery. `rtt` is
    /// the smoothed RTT if known; `cwnd_limited` tells whether the sender was
    /// using its whole window (a window that is not being used must not
    /// grow: RFC 7661).
    ///
    /// In slow start the connection has already applied RFC 3465's limit
    /// to `acked` (at most L*SMSS per ACK; see
    /// `Connection::slow_start_limit`), so slow start adds it whole.
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>, cwnd_limited: bool);

    /// Loss detected by duplicate ACKs or SACK: entering fast recovery with
    /// `flight` bytes outstanding. Sets ssthresh and cwnd.
    fn on_loss(&mut self, now: Instant, flight: usize);

    /// Fast recovery ended (the recovery point was acknowledged).
    fn on_recovery_end(&mut self, now: Instant);

    /// The retransmission timer expired with `flight` bytes outstanding:
    /// RFC 5681 3.1: ssthresh = max(FlightSize / 2, 2*SMSS), cwnd = 1 SMSS.
    fn on_rto(&mut self, now: Instant, flight: usize);

    /// The connection was idle for longer than an RTO (RFC 5681 4.1): the
    /// window restarts at min(initial window, cwnd).
    fn on_idle_restart(&mut self);

    /// The SYN or SYN-ACK had to be retransmitted: RFC 5681 3.1, "the
    /// initial window used by a sender after a correctly transmitted SYN
    /// MUST be one segment consisting of at most SMSS bytes" (the loss
    /// window). Called right after [`init`](Self::init).
    fn set_loss_window(&mut self);

    /// The sender MSS changed (the path MTU moved): windows keep their size
    /// in segments, as they are defined in SMSS units (RFC 5681).
    fn set_mss(&mut self, mss: usize);

    /// Leaves slow start without a loss (HyStart++ decided the path is
    /// full): ssthresh becomes cwnd, congestion avoidance begins.
    fn exit_slow_start(&mut self, now: Instant);

    /// The sending rate the algorithm asks for, in bytes per second, when
    /// the connection paces its segments. `None` (the default) lets the
    /// connection derive a rate from cwnd and the smoothed RTT, as Linux
    /// does for window-based algorithms.
    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    /// How many congestion windows of data the send buffer may grow to
    /// hold (Linux's `sndbuf_expand`): room for the window in flight, the
    /// data SACKed behind a hole while the hole is repaired, and the
    /// window's growth in the meantime. Linux uses 2 for window-based
    /// algorithms ("Cubic needs 1.7 factor, rounded to 2") and 3 for BBR,
    /// whose window may grow during recovery.
    fn send_buffer_factor(&self) -> usize {
        2
    }

    /// True for an algorithm whose window already says how much may be in
    /// flight during fast recovery (BBR: packet conservation for a round,
    /// then growth towards its model), so that PRR (RFC 6937) does not
    /// apply on top: Linux likewise hands such an algorithm the whole
    /// decision (`tcp_cong_control` calls its `cong_control` and never
    /// `tcp_cwnd_reduction`). PRR's slow-start reduction bound lets the
    /// flight grow by one segment per ACK, and with a peer that ACKs large
    /// offloaded segments that held BBR's probes flat through the almost
    /// continuous recovery of a lossy path.
    fn owns_recovery_window(&self) -> bool {
        false
    }

    /// True for an algorithm that does not work without pacing (BBR: its
    /// model sends at a rate, and its cwnd is only a cap on what is in
    /// flight). Pacing then applies whatever `TcpConfig::pacing` says, as
    /// Linux's BBR turns on internal pacing when no fq qdisc paces for it
    /// (`sk_pacing_status = SK_PACING_NEEDED`).
    fn needs_pacing(&self) -> bool {
        false
    }
    /// A delivery-rate sample ([`crate::rate`]), after each ACK that
    /// delivered data and after [`on_ack`](Self::on_ack) /
    /// [`on_loss`](Self::on_loss) for that ACK. Window-based algorithms
    /// ignore it (the default).
    fn on_rate_sample(&mut self, _now: Instant, _rs: &RateSample) {}

    /// The model of a model-based algorithm, for `ss` (None for window
    /// algorithms).
    fn bbr_state(&self) -> Option<BbrState> {
        None
    }

    /// A copy of the state, to restore after a spurious retransmission
    /// timeout (RFC 4015); `None` if the algorithm cannot be copied.
    fn clone_box(&self) -> Option<Box<dyn CongestionControl>> {
        None
    }
}

/// The algorithms available, for configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Algorithm {
    /// RFC 5681 + RFC 6582.
    NewReno,
    /// RFC 9438 (the default, as in Linux).
    #[default]
    Cubic,
    /// BBR (v1, as Linux's tcp_bbr.c): a model of the path's bottleneck
    /// bandwidth and round-trip time, not a window that loss halves.
    Bbr,
}

impl Algorithm {
    /// A fresh instance of the algorithm.
    pub fn build(self) -> Box<dyn CongestionControl> {
        self.build_seeded(0)
    }

    /// A fresh instance; `seed` feeds the algorithm's randomness (BBR's
    /// starting phase of the gain cycle), so that runs are reproducible.
    pub fn build_seeded(self, seed: u64) -> Box<dyn CongestionControl> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::new()),
            Algorithm::Cubic => Box::new(Cubic::new()),
            Algorithm::Bbr => Box::new(Bbr::new(seed)),
        }
    }

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
            Algorithm::Bbr => "bbr",
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "newreno" | "reno" => Ok(Algorithm::NewReno),
            "cubic" => Ok(Algorithm::Cubic),
            "bbr" => Ok(Algorithm::Bbr),
            _ => Err(format!(
                "unknown congestion control '{s}': expected newreno, cubic or bbr"
            )),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 6928: IW = min (10*MSS, max (2*MSS, 14600)).
pub fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14_600))
}

#[cfg(test)]
mod tests;
