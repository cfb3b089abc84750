//! BBR congestion control, version 1 (draft-cardwell-iccrg-bbr-congestion-
//! control-00, the behaviour of Linux's tcp_bbr.c): instead of a window that
//! every loss halves, a model of the path. BtlBw, the bottleneck bandwidth,
//! is the maximum delivery rate ([`crate::rate`]) over the last 10 round
//! trips; RTprop, the round-trip propagation time, the minimum RTT over the
//! last 10 seconds. The sender paces at a gain times BtlBw and keeps at
//! most `cwnd_gain` times the bandwidth-delay product in flight.
//!
//! Four modes: Startup doubles the sending rate every round (gain 2/ln 2)
//! until the bandwidth stops growing by 25% for 3 rounds; Drain empties the
//! queue Startup built; ProbeBW cycles the pacing gain (1.25, 0.75, then 1
//! for six rounds) to probe for more bandwidth and drain what the probe
//! queued; ProbeRTT, when RTprop has not been refreshed for 10 s, holds the
//! flight at 4 segments for 200 ms and a round trip so the queue empties
//! and the true RTprop shows.
//!
//! Random loss is not congestion here: a loss costs the lost packets from
//! cwnd and one round of packet conservation, not half the window. As in
//! Linux, the window also holds the data ACK aggregation delivers beyond
//! the model's rate (the largest excess of the last 5-10 rounds, at most
//! 100 ms of BtlBw): with batched ACKs, 2 BDP alone would leave the pipe
//! idle between batches. Not implemented from Linux: the long-term
//! bandwidth (policer) estimate.

use std::time::{Duration, Instant};

use super::{CongestionControl, initial_window};
use crate::rate::RateSample;

/// 2/ln(2): the smallest gain that doubles the delivery rate each round
/// (draft 4.3.2.1, "BBRHighGain").
const HIGH_GAIN: f64 = 2.885;
/// The inverse of the high gain: Drain empties in one round what Startup
/// queued in one.
const DRAIN_GAIN: f64 = 1.0 / HIGH_GAIN;
/// ProbeBW's cwnd gain: room for delayed and aggregated ACKs.
const CWND_GAIN: f64 = 2.0;
/// ProbeBW's pacing gain cycle (draft 4.3.4.3): probe, drain, cruise.
const PACING_GAINS: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// The BtlBw max filter's window, in round trips.
const BW_ROUNDS: u64 = 10;
/// The RTprop min filter's window (draft: "RTpropFilterLen").
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// ProbeRTT holds the flight low this long (and at least a round).
const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// Startup ends when the bandwidth grew less than 25% ...
const FULL_BW_GROWTH: f64 = 1.25;
/// ... for this many rounds in a row.
const FULL_BW_ROUNDS: u32 = 3;
/// The smallest cwnd, in segments (ProbeRTT's window).
const MIN_CWND_SEGMENTS: usize = 4;
/// ACK aggregation: the excess is the max over two windows of this many
/// rounds each.
const EXTRA_ACKED_ROUNDS: u32 = 5;
/// ... and never more than this much of BtlBw.
const EXTRA_ACKED_MAX: Duration = Duration::from_millis(100);
/// Pacing slightly below the estimate (Linux: 1%) keeps the bottleneck
/// queue from growing at gain 1.
const PACING_MARGIN: f64 = 0.99;

/// BBR's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BbrMode {
    /// Exponential search for the bottleneck bandwidth.
    Startup,
    /// Empties the queue Startup left.
    Drain,
    /// Steady state: gain cycling around the bandwidth estimate.
    ProbeBw,
    /// Flight held at 4 segments to measure the propagation delay.
    ProbeRtt,
}

impl BbrMode {
    /// Short name for `ss`.
    pub fn name(self) -> &'static str {
        match self {
            BbrMode::Startup => "startup",
            BbrMode::Drain => "drain",
            BbrMode::ProbeBw => "probe_bw",
            BbrMode::ProbeRtt => "probe_rtt",
        }
    }
}

/// What BBR believes about the path, for `ss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BbrState {
    /// The mode.
    pub mode: BbrMode,
    /// BtlBw, bytes per second.
    pub bw: u64,
    /// RTprop.
    pub min_rtt: Option<Duration>,
    /// The current pacing gain, in 1/1000.
    pub pacing_gain_milli: u32,
    /// The pacing rate, bytes per second.
    pub pacing_rate: u64,
}

/// The BtlBw filter: the maximum of per-round maxima over the last
/// [`BW_ROUNDS`] round trips with samples (exact, in a fixed array). As
/// Linux's windowed max, the window moves with updates only: while every
/// sample is application-limited (and lower), the estimate stays.
#[derive(Clone, Copy, Debug, Default)]
struct MaxFilter {
    /// (round, max bandwidth seen in that round), indexed by round modulo
    /// the window.
    slots: [(u64, u64); BW_ROUNDS as usize],
    /// The round of the latest update.
    last: u64,
}

impl MaxFilter {
    fn update(&mut self, round: u64, bw: u64) {
        let slot = &mut self.slots[(round % BW_ROUNDS) as usize];
        if slot.0 != round {
            *slot = (round, bw);
        } else {
            slot.1 = slot.1.max(bw);
        }
        self.last = self.last.max(round);
    }

    fn get(&self) -> u64 {
        self.slots
            .iter()
            .filter(|(r, _)| *r + BW_ROUNDS > self.last)
            .map(|&(_, bw)| bw)
            .max()
            .unwrap_or(0)
    }
}

/// Where fast recovery stands, as BBR sees it (Linux's prev_ca_state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    None,
    /// Entered; the next sample starts packet conservation.
    Entered,
    In,
}

/// BBR v1 state of one connection. Windows in bytes.
#[derive(Clone, Debug)]
pub struct Bbr {
    mss: usize,
    cwnd: usize,
    /// The window before recovery or ProbeRTT, restored after it.
    prior_cwnd: usize,
    mode: BbrMode,
    bw: MaxFilter,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Option<Instant>,
    /// Round trips counted by delivery (draft 4.1.1.3).
    round: u64,
    next_round_delivered: u64,
    round_start: bool,
    /// C.delivered at the latest sample.
    delivered: u64,
    full_bw: u64,
    full_bw_rounds: u32,
    full_bw_reached: bool,
    pacing_gain: f64,
    cwnd_gain: f64,
    cycle_idx: usize,
    cycle_stamp: Option<Instant>,
    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    /// Samples of packets sent before C.delivered reaches this are
    /// application-limited (ProbeRTT's low rate is not the path's).
    app_limited_until: u64,
    packet_conservation: bool,
    recovery: Recovery,
    /// Sending restarts after idle (no ProbeRTT on its first samples).
    idle_restart: bool,
    pacing_rate: u64,
    /// The smoothed RTT, for the initial pacing rate.
    srtt: Option<Duration>,
    /// xorshift64* state, seeded by the connection.
    rng: u64,
    /// ACK aggregation: the excess delivered in the two windows.
    extra_acked: [u64; 2],
    extra_acked_idx: usize,
    extra_acked_rounds: u32,
    /// Start of the current aggregation epoch, and what was delivered in it.
    ack_epoch: Option<Instant>,
    ack_epoch_acked: u64,
}

impl Bbr {
    /// Fresh state; `seed` picks the ProbeBW starting phase.
    pub fn new(seed: u64) -> Self {
        let mss = 536;
        let cwnd = initial_window(mss);
        let mut b = Bbr {
            mss,
            cwnd,
            prior_cwnd: 0,
            mode: BbrMode::Startup,
            bw: MaxFilter::default(),
            min_rtt: None,
            min_rtt_stamp: None,
            round: 0,
            next_round_delivered: 0,
            round_start: false,
            delivered: 0,
            full_bw: 0,
            full_bw_rounds: 0,
            full_bw_reached: false,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            cycle_idx: 0,
            cycle_stamp: None,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            app_limited_until: 0,
            packet_conservation: false,
            recovery: Recovery::None,
            idle_restart: false,
            pacing_rate: 0,
            srtt: None,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            extra_acked: [0; 2],
            extra_acked_idx: 0,
            extra_acked_rounds: 0,
            ack_epoch: None,
            ack_epoch_acked: 0,
        };
        b.init_pacing_rate();
        b
    }

    /// The mode.
    pub fn mode(&self) -> BbrMode {
        self.mode
    }

    /// BtlBw, bytes per second.
    pub fn max_bw(&self) -> u64 {
        self.bw.get()
    }

    /// RTprop.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The current pacing gain.
    pub fn pacing_gain(&self) -> f64 {
        self.pacing_gain
    }

    fn random(&mut self, n: u64) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn min_cwnd(&self) -> usize {
        MIN_CWND_SEGMENTS * self.mss
    }

    /// Draft 4.2.1: before any bandwidth sample, "nominal_bandwidth =
    /// InitialCwnd / (SRTT ? SRTT : 1ms)", paced at the high gain.
    fn init_pacing_rate(&mut self) {
        let rtt = self.srtt.unwrap_or(Duration::from_millis(1));
        let bw = self.cwnd as f64 / rtt.as_secs_f64().max(1e-6);
        self.pacing_rate = (HIGH_GAIN * bw) as u64;
    }

    /// BDP times `gain`: "BBRInflight(gain) = gain * BtlBw * RTprop" (the
    /// initial window while RTprop is unknown), plus the send quanta.
    fn inflight(&self, bw: u64, gain: f64) -> usize {
        let Some(rtt) = self.min_rtt else {
            return initial_window(self.mss);
        };
        let bdp = bw as f64 * rtt.as_secs_f64();
        self.quantization_budget((gain * bdp) as usize)
    }

    /// Draft 4.2.3.2: "cwnd += 3 * BBR.send_quantum" so that the data
    /// batched by offload and delayed ACKs still leaves room; a little more
    /// while probing so the probe really puts more in flight.
    fn quantization_budget(&self, cwnd: usize) -> usize {
        // Linux's TSO budget: about 1 ms of data at the pacing rate, at
        // least 2 segments, at most 64 KB.
        let quantum = ((self.pacing_rate / 1000) as usize).clamp(2 * self.mss, 65_536);
        let mut cwnd = cwnd + 3 * quantum;
        if self.mode == BbrMode::ProbeBw && self.cycle_idx == 0 {
            cwnd += 2 * self.mss;
        }
        cwnd
    }

    /// Linux's bbr_save_cwnd: the window to come back to.
    fn save_cwnd(&mut self) {
        self.prior_cwnd = if self.recovery == Recovery::None && self.mode != BbrMode::ProbeRtt {
            self.cwnd
        } else {
            self.prior_cwnd.max(self.cwnd)
        };
    }

    fn enter_startup(&mut self) {
        self.mode = BbrMode::Startup;
    }

    /// Draft 4.3.4.3: ProbeBW starts at a random phase, never the drain
    /// phase (0.75) that follows a probe: "BBR.cycle_index = BBRGainCycleLen
    /// - 1 - random_int_between(0, BBRGainCycleLen-2)", then advances.
    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = BbrMode::ProbeBw;
        let r = self.random(PACING_GAINS.len() as u64 - 1) as usize;
        self.cycle_idx = PACING_GAINS.len() - 1 - r;
        self.advance_cycle(now);
    }

    fn advance_cycle(&mut self, now: Instant) {
        self.cycle_idx = (self.cycle_idx + 1) % PACING_GAINS.len();
        self.cycle_stamp = Some(now);
    }

    /// Leaving ProbeRTT (or an idle restart in it): Startup if the pipe
    /// was never found full, ProbeBW otherwise.
    fn reset_mode(&mut self, now: Instant) {
        if self.full_bw_reached {
            self.enter_probe_bw(now);
        } else {
            self.enter_startup();
        }
    }

    /// Draft 4.1.1.3 and 4.1.1.5: round counting, and the BtlBw filter
    /// ("if (rs.delivery_rate >= BBR.BtlBw || ! rs.is_app_limited)").
    fn update_bw(&mut self, rs: &RateSample) {
        self.round_start = false;
        let Some(bw) = rs.delivery_rate else {
            return;
        };
        if rs.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = rs.total_delivered;
            self.round += 1;
            self.round_start = true;
            self.packet_conservation = false;
        }
        let app_limited = rs.is_app_limited || rs.prior_delivered < self.app_limited_until;
        if !app_limited || bw >= self.max_bw() {
            self.bw.update(self.round, bw);
        }
    }

    /// ACK aggregation (Linux's bbr_update_ack_aggregation): how much more
    /// this epoch of ACKs delivered than BtlBw explains.
    fn update_ack_aggregation(&mut self, now: Instant, rs: &RateSample) {
        if rs.acked_sacked == 0 || rs.delivery_rate.is_none() {
            return;
        }
        if self.round_start {
            self.extra_acked_rounds += 1;
            if self.extra_acked_rounds >= EXTRA_ACKED_ROUNDS {
                self.extra_acked_rounds = 0;
                self.extra_acked_idx ^= 1;
                self.extra_acked[self.extra_acked_idx] = 0;
            }
        }
        let epoch = *self.ack_epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch).as_secs_f64();
        let mut expected = (self.max_bw() as f64 * elapsed) as u64;
        // A new epoch when ACKs come no faster than the model's rate (or
        // after a very long one).
        if self.ack_epoch_acked <= expected || self.ack_epoch_acked > 1 << 30 {
            self.ack_epoch = Some(now);
            self.ack_epoch_acked = 0;
            expected = 0;
        }
        self.ack_epoch_acked += rs.acked_sacked;
        let extra = (self.ack_epoch_acked - expected).min(self.cwnd as u64);
        let slot = &mut self.extra_acked[self.extra_acked_idx];
        *slot = (*slot).max(extra);
    }

    /// The window's allowance for ACK aggregation, once the pipe is full.
    fn aggregation_cwnd(&self) -> usize {
        if !self.full_bw_reached {
            return 0;
        }
        let most = self.max_bw() as f64 * EXTRA_ACKED_MAX.as_secs_f64();
        (self.extra_acked[0].max(self.extra_acked[1]) as f64).min(most) as usize
    }

    /// Draft 4.3.4.4: is it time to move to the next gain?
    fn update_cycle_phase(&mut self, now: Instant, rs: &RateSample) {
        if self.mode != BbrMode::ProbeBw {
            return;
        }
        let full_length = self.cycle_stamp.is_none_or(|s| {
            now.saturating_duration_since(s) > self.min_rtt.unwrap_or(Duration::ZERO)
        });
        let gain = PACING_GAINS[self.cycle_idx];
        let inflight = rs.prior_in_flight as usize;
        let bw = self.max_bw();
        let next = if gain > 1.0 {
            // Probing: until the probe really raised the flight (or
            // losses say there is no room).
            full_length && (rs.newly_lost > 0 || inflight >= self.inflight(bw, gain))
        } else if gain < 1.0 {
            // Draining: until the queue is gone or a round has passed.
            full_length || inflight <= self.inflight(bw, 1.0)
        } else {
            full_length
        };
        if next {
            self.advance_cycle(now);
        }
    }

    /// Draft 4.3.2.2: Startup filled the pipe once the bandwidth grew by
    /// less than 25% in three rounds that were not application-limited.
    fn check_full_pipe(&mut self, rs: &RateSample) {
        if self.full_bw_reached || !self.round_start || rs.is_app_limited {
            return;
        }
        let bw = self.max_bw();
        if bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
            self.full_bw = bw;
            self.full_bw_rounds = 0;
            return;
        }
        self.full_bw_rounds += 1;
        self.full_bw_reached = self.full_bw_rounds >= FULL_BW_ROUNDS;
    }

    /// Draft 4.3.2.3 and 4.3.3: Startup -> Drain once the pipe is full;
    /// Drain -> ProbeBW once the flight is down to one BDP.
    fn check_drain(&mut self, now: Instant, rs: &RateSample) {
        if self.mode == BbrMode::Startup && self.full_bw_reached {
            self.mode = BbrMode::Drain;
        }
        if self.mode == BbrMode::Drain && rs.in_flight as usize <= self.inflight(self.max_bw(), 1.0)
        {
            self.enter_probe_bw(now);
        }
    }

    /// Draft 4.1.2.3 and 4.3.5: the RTprop filter, and ProbeRTT when it
    /// expired ("BBRProbeRTTDuration = 200 ms", at least a round trip).
    fn update_min_rtt(&mut self, now: Instant, rs: &RateSample) {
        let expired = self
            .min_rtt_stamp
            .is_some_and(|s| now.saturating_duration_since(s) > MIN_RTT_WINDOW);
        if let Some(rtt) = rs.rtt
            && (self.min_rtt.is_none_or(|m| rtt < m) || expired)
        {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = Some(now);
        }
        if expired && !self.idle_restart && self.mode != BbrMode::ProbeRtt {
            self.mode = BbrMode::ProbeRtt;
            self.save_cwnd();
            self.probe_rtt_done = None;
        }
        if self.mode == BbrMode::ProbeRtt {
            // What is sent now is limited by ProbeRTT, not the path.
            self.app_limited_until = rs.total_delivered + rs.in_flight.max(1);
            match self.probe_rtt_done {
                None if rs.in_flight as usize <= self.min_cwnd() => {
                    self.probe_rtt_done = Some(now + PROBE_RTT_DURATION);
                    self.probe_rtt_round_done = false;
                    self.next_round_delivered = rs.total_delivered;
                }
                None => {}
                Some(done) => {
                    if self.round_start {
                        self.probe_rtt_round_done = true;
                    }
                    if self.probe_rtt_round_done && now > done {
                        self.min_rtt_stamp = Some(now);
                        self.cwnd = self.cwnd.max(self.prior_cwnd);
                        self.reset_mode(now);
                    }
                }
            }
        }
        if rs.acked_sacked > 0 {
            self.idle_restart = false;
        }
    }

    fn update_gains(&mut self) {
        (self.pacing_gain, self.cwnd_gain) = match self.mode {
            BbrMode::Startup => (HIGH_GAIN, HIGH_GAIN),
            BbrMode::Drain => (DRAIN_GAIN, HIGH_GAIN),
            BbrMode::ProbeBw => (PACING_GAINS[self.cycle_idx], CWND_GAIN),
            BbrMode::ProbeRtt => (1.0, 1.0),
        };
    }

    /// Draft 4.2.1: "rate = pacing_gain * BBR.BtlBw"; until the pipe is
    /// full the rate never falls (a low early sample must not slow
    /// Startup).
    fn set_pacing_rate(&mut self) {
        let bw = self.max_bw();
        if bw == 0 {
            return;
        }
        let rate = (self.pacing_gain * bw as f64 * PACING_MARGIN) as u64;
        if self.full_bw_reached || rate > self.pacing_rate {
            self.pacing_rate = rate;
        }
    }

    /// Draft 4.2.3: cwnd towards cwnd_gain * BDP, by at most what was
    /// delivered; packet conservation in the first round of recovery.
    fn set_cwnd(&mut self, rs: &RateSample) {
        let acked = rs.acked_sacked as usize;
        let in_flight = rs.in_flight as usize;
        // Linux tcp_bbr.c: each lost packet leaves the window with it.
        let mut cwnd = self
            .cwnd
            .saturating_sub(rs.newly_lost as usize)
            .max(self.mss);
        match self.recovery {
            Recovery::Entered => {
                // Draft 4.2.3.4: "Upon entering Fast Recovery, set cwnd to
                // the number of packets still in flight (allowing at least
                // one for a fast retransmit)", and conserve packets for a
                // round.
                self.recovery = Recovery::In;
                self.packet_conservation = true;
                self.next_round_delivered = rs.total_delivered;
                cwnd = in_flight + acked.max(self.mss);
            }
            Recovery::In | Recovery::None => {}
        }
        if self.packet_conservation {
            // "cwnd = max(cwnd, packets_in_flight + packets_delivered)".
            self.cwnd = cwnd.max(in_flight + acked);
        } else {
            let target = self.inflight(self.max_bw(), self.cwnd_gain) + self.aggregation_cwnd();
            if self.full_bw_reached {
                cwnd = (cwnd + acked).min(target);
            } else if cwnd < target || (self.delivered as usize) < initial_window(self.mss) {
                cwnd += acked;
            }
            self.cwnd = cwnd.max(self.min_cwnd());
        }
        if self.mode == BbrMode::ProbeRtt {
            self.cwnd = self.cwnd.min(self.min_cwnd());
        }
    }
}

impl CongestionControl for Bbr {
    fn name(&self) -> &'static str {
        "bbr"
    }

    fn init(&mut self, mss: usize) {
        self.mss = mss.max(1);
        self.cwnd = initial_window(self.mss);
        self.init_pacing_rate();
    }

    fn cwnd(&self) -> usize {
        self.cwnd
    }

    /// Outside recovery, none: BBR has no slow start threshold (Linux
    /// keeps TCP_INFINITE_SSTHRESH). In fast recovery, the window BBR
    /// chose, which is what PRR converges to.
    ///
    /// RFC 6937 (PRR) 3: "ssthresh ... as computed by the congestion
    /// control algorithm" is the target of the reduction; PRR "determines
    /// how many segments ... to send" while "the congestion control
    /// algorithm ... determines the target". BBR's target is its model's
    /// cwnd, so there is no multiplicative decrease: with the pipe below
    /// it PRR's slow start reduction bound (PRR-SSRB) sends what was
    /// delivered plus a segment per ACK, which is BBR's packet
    /// conservation (draft 4.2.3.4).
    fn ssthresh(&self) -> usize {
        if matches!(self.recovery, Recovery::Entered | Recovery::In) {
            self.cwnd
        } else {
            usize::MAX
        }
    }

    fn on_ack(&mut self, _now: Instant, _acked: usize, rtt: Option<Duration>, _limited: bool) {
        // The window follows the model, in on_rate_sample.
        if self.srtt.is_none() && rtt.is_some() {
            self.srtt = rtt;
            if self.max_bw() == 0 {
                self.init_pacing_rate();
            }
        }
        self.srtt = rtt.or(self.srtt);
    }

    fn on_rate_sample(&mut self, now: Instant, rs: &RateSample) {
        self.delivered = rs.total_delivered;
        self.update_bw(rs);
        self.update_ack_aggregation(now, rs);
        self.update_cycle_phase(now, rs);
        self.check_full_pipe(rs);
        self.check_drain(now, rs);
        self.update_min_rtt(now, rs);
        self.update_gains();
        self.set_pacing_rate();
        if rs.acked_sacked > 0 {
            self.set_cwnd(rs);
        }
    }

    fn on_loss(&mut self, _now: Instant, flight: usize) {
        // Draft 4.2.3.4: "BBR.prior_cwnd = BBRSaveCwnd()"; the window
        // becomes the flight (packet conservation) with the next sample.
        self.save_cwnd();
        self.recovery = Recovery::Entered;
        self.cwnd = self.cwnd.min(flight.max(self.mss));
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // Draft 4.2.3.4: "Upon exiting loss recovery (RTO recovery or Fast
        // Recovery), either by repairing all losses or undoing recovery,
        // BBR restores the best-known cwnd value we had upon entering loss
        // recovery".
        self.recovery = Recovery::None;
        self.packet_conservation = false;
        self.cwnd = self.cwnd.max(self.prior_cwnd);
    }

    fn on_rto(&mut self, _now: Instant, _flight: usize) {
        // Draft 4.2.3.4: "Upon retransmission timeout, BBR ... sets cwnd
        // to 1 segment"; the model then grows it by what is delivered.
        // Linux treats the timeout as the end of a round and forgets the
        // full-bandwidth count.
        self.save_cwnd();
        self.recovery = Recovery::None;
        self.packet_conservation = false;
        self.round_start = true;
        self.full_bw = 0;
        self.cwnd = self.mss;
    }

    fn on_idle_restart(&mut self) {
        // RFC 5681 4.1 as for every algorithm; BBR paces at the estimated
        // bandwidth (gain 1) while ProbeBW resumes.
        self.cwnd = self.cwnd.min(initial_window(self.mss));
        self.idle_restart = true;
        if self.mode == BbrMode::ProbeBw {
            let bw = self.max_bw();
            if bw > 0 {
                self.pacing_rate = (bw as f64 * PACING_MARGIN) as u64;
            }
        }
    }

    fn set_loss_window(&mut self) {
        self.cwnd = self.mss;
    }

    fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        self.cwnd = self.cwnd / self.mss * mss;
        self.prior_cwnd = self.prior_cwnd / self.mss * mss;
        self.mss = mss;
    }

    fn exit_slow_start(&mut self, _now: Instant) {
        // HyStart++ does not apply: Startup ends on the model's full-pipe
        // test.
    }

    fn pacing_rate(&self) -> Option<u64> {
        Some(self.pacing_rate)
    }

    fn needs_pacing(&self) -> bool {
        true
    }

    fn send_buffer_factor(&self) -> usize {
        3
    }

    fn owns_recovery_window(&self) -> bool {
        true
    }
    fn bbr_state(&self) -> Option<super::BbrState> {
        Some(BbrState {
            mode: self.mode,
            bw: self.max_bw(),
            min_rtt: self.min_rtt,
            pacing_gain_milli: (self.pacing_gain * 1000.0).round() as u32,
            pacing_rate: self.pacing_rate,
        })
    }

    fn clone_box(&self) -> Option<Box<dyn CongestionControl>> {
        Some(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests;
