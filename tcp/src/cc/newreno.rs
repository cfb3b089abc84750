//! NewReno: RFC 5681 slow start and congestion avoidance, with the window
//! response of RFC 6582 fast recovery (the recovery itself, including
//! partial acknowledgments, is run by the connection).

use std::time::{Duration, Instant};

use super::{CongestionControl, initial_window};

/// The NewReno window.
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew.
    acked_in_ca: usize,
}

impl NewReno {
    /// A window for a connection whose MSS is not known yet.
    pub fn new() -> Self {
        NewReno {
            mss: 536,
            cwnd: initial_window(536),
            // RFC 5681 3.1: "The initial value of ssthresh SHOULD be set
            // arbitrarily high".
            ssthresh: usize::MAX,
            acked_in_ca: 0,
        }
    }
}

impl Default for NewReno {
    fn default() -> Self {
        Self::new()
    }
}

impl CongestionControl for NewReno {
    fn clone_box(&self) -> Option<Box<dyn CongestionControl>> {
        Some(Box::new(self.clone()))
    }

    fn name(&self) -> &'static str {
        "newreno"
    }

    fn init(&mut self, mss: usize) {
        self.mss = mss.max(1);
        self.cwnd = initial_window(self.mss);
    }

    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, _rtt: Option<Duration>, cwnd_limited: bool) {
        if !cwnd_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 3.1 slow start with RFC 3465 appropriate byte
            // counting: cwnd += min (N, L*SMSS), the connection having
            // applied the limit L to `acked`.
            self.cwnd += acked;
        } else {
            // RFC 5681 3.1 congestion avoidance, byte counting: once a
            // whole cwnd of bytes has been acknowledged, cwnd += SMSS.
            self.acked_in_ca += acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }

    fn on_loss(&mut self, _now: Instant, flight: usize) {
        // RFC 5681 eq. (4): ssthresh = max (FlightSize / 2, 2*SMSS); RFC 6675
        // recovery then runs with cwnd = ssthresh (no window inflation; the
        // pipe estimate accounts for segments that left the network).
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 3.2 step 3: set cwnd to ssthresh ("deflate").
        self.cwnd = self.ssthresh.max(2 * self.mss);
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acked_in_ca = 0;
    }

    fn on_idle_restart(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.mss));
    }

    fn set_loss_window(&mut self) {
        self.cwnd = self.mss;
    }

    fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        let scale = |w: usize| (w as u128 * mss as u128 / self.mss as u128) as usize;
        self.cwnd = scale(self.cwnd).max(mss);
        if self.ssthresh != usize::MAX {
            self.ssthresh = scale(self.ssthresh).max(2 * mss);
        }
        self.acked_in_ca = scale(self.acked_in_ca);
        self.mss = mss;
    }

    fn exit_slow_start(&mut self, _now: Instant) {
        self.ssthresh = self.cwnd;
        self.acked_in_ca = 0;
    }
}
