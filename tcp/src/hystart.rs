//! HyStart++ (RFC 9406): leaves slow start when the RTT starts to grow
//! (queueing delay) instead of when the queue overflows, avoiding the burst
//! of losses a doubling window causes at a drop-tail bottleneck.
//!
//! Rounds are delimited by sequence numbers: a round ends when the segment
//! that was the newest when it began is acknowledged. In slow start, the
//! minimum RTT of each round is compared with the previous round's; a rise
//! of at least `clamp(lastRoundMinRTT / 8, 4 ms, 16 ms)` (with at least
//! `N_RTT_SAMPLE` samples) moves the connection to Conservative Slow Start
//! (CSS), where cwnd grows at a quarter of the rate. If the RTT falls back
//! below the baseline, the exit was spurious and slow start resumes; after
//! `CSS_ROUNDS` rounds in CSS, congestion avoidance begins.

use std::time::Duration;

use crate::SeqNum;

const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406: cwnd grows by acked / CSS_GROWTH_DIVISOR in CSS.
pub const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

/// Where slow start stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative slow start after an RTT rise, for a few rounds.
    Conservative,
    /// HyStart++ is done (congestion avoidance, or a loss ended slow start).
    Done,
}

/// HyStart++ state of one connection.
#[derive(Clone, Debug)]
pub struct HyStart {
    phase: Phase,
    window_end: Option<SeqNum>,
    last_round_min: Option<Duration>,
    current_round_min: Option<Duration>,
    samples: u32,
    css_baseline: Option<Duration>,
    css_rounds: u32,
}

impl Default for HyStart {
    fn default() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            window_end: None,
            last_round_min: None,
            current_round_min: None,
            samples: 0,
            css_baseline: None,
            css_rounds: 0,
        }
    }
}

/// What the connection should do with the window after an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Grow as usual.
    Normal,
    /// Grow at 1 / CSS_GROWTH_DIVISOR of the usual rate.
    Conservative,
    /// Enter congestion avoidance now (ssthresh = cwnd).
    ExitSlowStart,
}

impl HyStart {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Slow start ended for another reason (a loss): HyStart++ stops.
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// An ACK acknowledged up to `ack` while cwnd < ssthresh; `rtt` is an RTT
    /// sample from it, if any, and `snd_nxt` the next sequence number to be
    /// sent (the end of the round that starts if this ACK ends one).
    pub fn on_ack(&mut self, ack: SeqNum, rtt: Option<Duration>, snd_nxt: SeqNum) -> Verdict {
        if self.phase == Phase::Done {
            return Verdict::Normal;
        }
        let round_over = self.window_end.is_none_or(|end| ack >= end);
        if round_over {
            // RFC 9406 4.2: "At the start of each round during standard slow
            // start and CSS: lastRoundMinRTT = currentRoundMinRTT ...".
            self.window_end = Some(snd_nxt);
            if self.phase == Phase::Conservative {
                self.css_rounds += 1;
                if self.css_rounds >= CSS_ROUNDS {
                    self.phase = Phase::Done;
                    return Verdict::ExitSlowStart;
                }
            }
            self.last_round_min = self.current_round_min;
            self.current_round_min = None;
            self.samples = 0;
        }
        if let Some(r) = rtt {
            self.current_round_min = Some(self.current_round_min.map_or(r, |m| m.min(r)));
            self.samples += 1;
        }
        match self.phase {
            Phase::SlowStart => {
                if self.samples >= N_RTT_SAMPLE
                    && let (Some(last), Some(current)) =
                        (self.last_round_min, self.current_round_min)
                {
                    let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                    if current >= last + thresh {
                        self.phase = Phase::Conservative;
                        self.css_baseline = Some(current);
                        self.css_rounds = 0;
                        return Verdict::Conservative;
                    }
                }
                Verdict::Normal
            }
            Phase::Conservative => {
                // "If currentRoundMinRTT < cssBaselineMinRtt ... the exit was
                // spurious: resume slow start."
                if self.samples >= N_RTT_SAMPLE
                    && let (Some(current), Some(base)) = (self.current_round_min, self.css_baseline)
                    && current < base
                {
                    self.phase = Phase::SlowStart;
                    self.css_baseline = None;
                    return Verdict::Normal;
                }
                Verdict::Conservative
            }
            Phase::Done => Verdict::Normal,
        }
    }
}

#[cfg(test)]
mod tests;
