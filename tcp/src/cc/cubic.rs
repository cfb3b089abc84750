//! CUBIC (RFC 9438): a window that grows as a cubic function of the time
//! since the last congestion event, centred on the window where loss last
//! happened, with a Reno-friendly region and fast convergence.

use std::time::{Duration, Instant};

use super::{CongestionControl, initial_window};

/// RFC 9438 4.5: C = 0.4.
const C: f64 = 0.4;
/// RFC 9438 4.6: beta_cubic = 0.7.
const BETA: f64 = 0.7;
/// RFC 9438 4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// The CUBIC window. Internally in segments (f64), exposed in bytes.
#[derive(Debug, Clone)]
pub struct Cubic {
    mss: usize,
    /// cwnd in segments.
    cwnd: f64,
    /// ssthresh in segments.
    ssthresh: f64,
    /// W_max: the window just before the last reduction.
    pub(super) w_max: f64,
    /// Start of the current congestion avoidance epoch.
    epoch: Option<Instant>,
    /// cwnd at the start of the epoch.
    cwnd_epoch: f64,
    /// K: time for the cubic function to reach W_max again, in seconds.
    k: f64,
    /// W_est: the Reno-friendly estimate.
    w_est: f64,
}

impl Cubic {
    /// A window for a connection whose MSS is not known yet.
    pub fn new() -> Self {
        let mss = 536;
        Cubic {
            mss,
            cwnd: initial_window(mss) as f64 / mss as f64,
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            epoch: None,
            cwnd_epoch: 0.0,
            k: 0.0,
            w_est: 0.0,
        }
    }

    /// W_cubic(t) = C*(t-K)^3 + W_max (RFC 9438 eq. 1), in segments.
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    /// The reduction shared by loss and timeout: fast convergence (RFC 9438
    /// 4.7), W_max, and ssthresh = beta_cubic times the window in use.
    fn reduce(&mut self) {
        self.epoch = None;
        // RFC 9438 4.7: "if cwnd < W_max and fast convergence enabled,
        // further reduce W_max: W_max = cwnd * (1 + beta_cubic) / 2".
        self.w_max = if self.cwnd < self.w_max {
            self.cwnd * (1.0 + BETA) / 2.0
        } else {
            self.cwnd
        };
        // RFC 9438 4.6: "ssthresh = flight_size * beta_cubic", where "some
        // implementations of CUBIC currently use cwnd instead of
        // flight_size ... [and] MUST use other measures to prevent cwnd
        // from growing when the volume of bytes in flight is smaller than
        // cwnd": as Linux's bictcp_recalc_ssthresh, cwnd, which `on_ack`
        // grows only while the sender is cwnd-limited. The flight a loss
        // is detected with undercounts the window in use when the receiver
        // acknowledges bursts whole (issue 21: the ACK that reveals the
        // hole also moves SND.UNA up to it): from it, CUBIC at 1% loss and
        // 10 ms sent 20-30% less.
        self.ssthresh = (self.cwnd * BETA).max(2.0);
    }
}

impl Default for Cubic {
    fn default() -> Self {
        Self::new()
    }
}

impl CongestionControl for Cubic {
    fn clone_box(&self) -> Option<Box<dyn CongestionControl>> {
        Some(Box::new(self.clone()))
    }

    fn name(&self) -> &'static str {
        "cubic"
    }

    fn init(&mut self, mss: usize) {
        self.mss = mss.max(1);
        self.cwnd = initial_window(self.mss) as f64 / self.mss as f64;
    }

    fn cwnd(&self) -> usize {
        (self.cwnd * self.mss as f64) as usize
    }

    fn ssthresh(&self) -> usize {
        if self.ssthresh.is_finite() {
            (self.ssthresh * self.mss as f64) as usize
        } else {
            usize::MAX
        }
    }

    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>, cwnd_limited: bool) {
        if !cwnd_limited {
            return;
        }
        let acked_segments = acked as f64 / self.mss as f64;
        if self.cwnd < self.ssthresh {
            // Slow start as in RFC 5681, with byte counting (the
            // connection applied RFC 3465's limit L to `acked`).
            self.cwnd += acked_segments;
            return;
        }
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                // RFC 9438 4.2: a new congestion avoidance epoch.
                self.epoch = Some(now);
                self.cwnd_epoch = self.cwnd;
                self.w_est = self.cwnd;
                // K = cubic_root((W_max - cwnd_epoch) / C)
                self.k = if self.w_max > self.cwnd {
                    ((self.w_max - self.cwnd_epoch) / C).cbrt()
                } else {
                    self.w_max = self.cwnd;
                    0.0
                };
                now
            }
        };
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        let rtt = rtt.map_or(0.1, |r| r.as_secs_f64());
        // RFC 9438 4.3: W_est += alpha_cubic * segments_acked / cwnd.
        self.w_est += ALPHA * acked_segments / self.cwnd;
        let cubic_now = self.w_cubic(t);
        if cubic_now < self.w_est {
            // Reno-friendly region: follow the Reno estimate.
            self.cwnd = self.w_est.max(self.cwnd);
        } else {
            // RFC 9438 4.4/4.5: aim for W_cubic(t + RTT), clamped to
            // [cwnd, 1.5*cwnd], growing by (target - cwnd)/cwnd per segment.
            let target = self.w_cubic(t + rtt).clamp(self.cwnd, 1.5 * self.cwnd);
            self.cwnd += (target - self.cwnd) / self.cwnd * acked_segments;
        }
    }

    fn on_loss(&mut self, _now: Instant, _flight: usize) {
        self.reduce();
        self.cwnd = self.ssthresh;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        self.cwnd = self.ssthresh.max(2.0);
    }

    fn on_rto(&mut self, _now: Instant, flight: usize) {
        // RFC 9438 4.8 follows RFC 5681 for the window after a timeout
        // (cwnd = 1 segment). For ssthresh it would use beta_cubic; ustack
        // halves the flight as RFC 5681 eq. (4) does, the more conservative
        // response to the severe congestion a timeout signals.
        let flight = flight as f64 / self.mss as f64;
        self.reduce();
        self.ssthresh = (flight / 2.0).max(2.0);
        self.cwnd = 1.0;
    }

    fn exit_slow_start(&mut self, _now: Instant) {
        // A new epoch starts with the next ACK; W_max is the current window
        // (RFC 9438 4.10 with HyStart++: "cwnd_prior = cwnd ... W_max = cwnd").
        self.ssthresh = self.cwnd;
        self.w_max = self.cwnd;
        self.epoch = None;
    }

    fn set_loss_window(&mut self) {
        self.cwnd = 1.0;
    }

    fn set_mss(&mut self, mss: usize) {
        // Windows are kept in segments already.
        self.mss = mss.max(1);
    }

    fn on_idle_restart(&mut self) {
        let iw = initial_window(self.mss) as f64 / self.mss as f64;
        self.cwnd = self.cwnd.min(iw);
        self.epoch = None;
    }
}
