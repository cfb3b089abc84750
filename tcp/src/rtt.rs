//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use std::time::Duration;

/// SRTT, RTTVAR and RTO per RFC 6298.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// Smallest RTT seen (for statistics and congestion control).
    min_rtt: Option<Duration>,
    backoff: u32,
}

/// RFC 6298 2.1: "Until a round-trip time (RTT) measurement has been made
/// ... the sender SHOULD set RTO <- 1 second".
pub const INITIAL_RTO: Duration = Duration::from_secs(1);
/// RFC 6298 5.7: the RTO once data flows after a SYN was retransmitted.
pub const SYN_LOSS_RTO: Duration = Duration::from_secs(3);
/// Clock granularity G in RFC 6298 2.3 (our clock is finer; use 1 ms).
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttEstimator {
    /// A fresh estimator with the given RTO bounds.
    pub fn new(min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: INITIAL_RTO.clamp(min_rto, max_rto),
            min_rto,
            max_rto,
            min_rtt: None,
            backoff: 0,
        }
    }

    /// Feeds one RTT measurement (Karn's rule is the caller's: never from a
    /// retransmitted segment unless timestamps disambiguate it).
    pub fn sample(&mut self, r: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        match self.srtt {
            None => {
                // RFC 6298 2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // RFC 6298 2.3: RTTVAR <- (1 - 1/4) * RTTVAR + 1/4 * |SRTT - R'|,
                // SRTT <- (1 - 1/8) * SRTT + 1/8 * R'.
                let delta = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
        // RTO <- SRTT + max (G, K*RTTVAR), K = 4; clamped to [min, max].
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + GRANULARITY.max(self.rttvar * 4)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    /// RFC 6298 5.5: "The host MUST set RTO <- RTO * 2 ('back off the
    /// timer')", up to the maximum.
    pub fn back_off(&mut self) {
        self.backoff += 1;
        self.rto = (self.rto * 2).min(self.max_rto);
    }

    /// RFC 6298 5.7: "If the timer expires awaiting the ACK of a SYN segment
    /// and the TCP implementation is using an RTO less than 3 seconds, the
    /// RTO MUST be re-initialized to 3 seconds when data transmission
    /// begins (i.e., after the three-way handshake completes)." Applies only
    /// while no RTT was measured (a sample replaces it).
    pub fn fall_back_after_syn_loss(&mut self) {
        if self.srtt.is_none() {
            self.rto = SYN_LOSS_RTO.clamp(self.min_rto, self.max_rto);
            self.backoff = 0;
        }
    }

    /// Current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// Smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// Smallest RTT measured.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Consecutive back-offs since the last sample.
    pub fn backoffs(&self) -> u32 {
        self.backoff
    }
}

#[cfg(test)]
mod tests;
