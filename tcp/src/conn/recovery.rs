//! Loss recovery and the congestion response to acknowledgments: fast
//! recovery (RFC 6675 with SACK, RFC 6582 NewReno without), Proportional
//! Rate Reduction (RFC 6937), slow start and congestion avoidance, and the
//! retransmission timeout (RFC 6298 5.4-5.7). Losses are detected by RACK
//! (RFC 8985, `crate::rack`) or, when configured or without SACK, by
//! RFC 6675 / RFC 5681 duplicate-ACK counting.

use std::time::{Duration, Instant};

use super::timers::Timer;
use super::{Connection, State, TcpError};
use crate::config::LossDetection;
use crate::rack::Rack;
use crate::sack::{DUP_THRESH, Scoreboard};
use crate::seq::SeqNum;

/// Where loss recovery stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Recovery {
    /// RFC 6675 / RFC 6582 fast recovery until `point` is acknowledged.
    Fast { point: SeqNum },
    /// Retransmitting after a timeout until `point` is acknowledged.
    Timeout { point: SeqNum },
}

/// Proportional Rate Reduction (RFC 6937) for one fast recovery: how much
/// may be sent as ACKs report deliveries, so that the flight shrinks
/// smoothly to ssthresh across the recovery round trip instead of stopping
/// until the pipe drains to it (and then sending in a burst).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prr {
    /// prr_delivered: bytes the peer reported delivered during recovery.
    pub delivered: usize,
    /// prr_out: bytes sent during recovery.
    pub out: usize,
    /// RecoverFS: the flight when recovery began.
    pub recover_fs: usize,
    /// sndcnt: what the latest ACK lets recovery send (less what went).
    pub sndcnt: usize,
}

/// Loss recovery state: the SACK scoreboard (RFC 6675), the recovery
/// phase, PRR (RFC 6937), duplicate ACKs and tail loss probes (RFC 8985).
pub(crate) struct LossRecovery {
    /// What the peer SACKed, what is lost and what was retransmitted.
    pub(crate) scoreboard: Scoreboard,
    /// The recovery under way, if any.
    pub(crate) phase: Option<Recovery>,
    /// Proportional Rate Reduction for the current fast recovery.
    pub(crate) prr: Prr,
    /// Duplicate ACKs in a row (RFC 5681 2).
    pub(crate) dupacks: u32,
    /// Retransmit the first lost segment at once (entering recovery).
    pub(crate) retransmit_now: bool,
    /// Retransmission timeouts since SND.UNA last advanced.
    pub(crate) rto_without_progress: u32,
    /// A probe is due (the PTO fired).
    pub(crate) tlp_due: bool,
    /// The probe's second segment of new data is due: without segmentation
    /// offload its [`TLP_NEW_SEGMENTS`](super::output::TLP_NEW_SEGMENTS)
    /// leave one at a time.
    pub(crate) tlp_follow: bool,
    /// TLP.end_seq (RFC 8985 7.4.2): SND.NXT when the probe went, the end
    /// of its episode (moved on by a second probe); at most
    /// `timers::MAX_PROBES` probes until the episode ends.
    pub(crate) tlp_end: Option<SeqNum>,
    /// Probes sent in the open episode (at most `timers::MAX_PROBES`).
    pub(crate) tlp_sent: u32,
    /// TLP.is_retrans, with what the probe retransmitted (to match a
    /// D-SACK against): `None` for a probe of new data, or one sent in fast
    /// recovery (where this crate probes too, see `arm_pto`: the recovery
    /// already made congestion control respond).
    pub(crate) tlp_retrans: Option<(SeqNum, SeqNum)>,
    /// RACK (RFC 8985 6): transmit times and the reordering window.
    pub(crate) rack: Rack,
    /// After a first retransmission timeout: the congestion state before
    /// it and the timestamp its retransmission carried, to undo it if it
    /// proves spurious (RFC 3522 detection, RFC 4015 response).
    pub(crate) undo: Option<(Box<dyn crate::cc::CongestionControl>, u32)>,
}

impl Connection {
    /// The congestion response to an ACK of new data (`acked` bytes, up to
    /// `ack`) in recovery: the end of fast recovery or a NewReno partial
    /// ACK (RFC 6582 3.2), growth after a timeout. Outside recovery, see
    /// [`grow_window`](Self::grow_window).
    pub(crate) fn on_ack_of_new_data(&mut self, now: Instant, ack: SeqNum, acked: usize) {
        match self.recovery.phase {
            Some(Recovery::Fast { point }) => {
                if ack >= point {
                    // RFC 6675 / RFC 6582: the recovery point is
                    // acknowledged; recovery ends.
                    self.recovery.phase = None;
                    self.recovery.scoreboard.reset_reno();
                    self.recovery.rack.on_recovery_end();
                    self.cc.ctrl.on_recovery_end(now);
                } else if !self.sack_ok {
                    // RFC 6582 3.2 step 5, partial ACK: the next
                    // unacknowledged segment is lost too; retransmit it
                    // and (for the first partial ACK) restart the timer.
                    self.recovery.scoreboard.reset_reno();
                    self.recovery
                        .scoreboard
                        .mark_lost_through(ack + self.snd.smss);
                    self.recovery.retransmit_now = true;
                    self.timers.set(Timer::Retransmit, now + self.rtt.rto());
                }
            }
            Some(Recovery::Timeout { point }) => {
                let acked = if self.cc.ctrl.cwnd() < self.cc.ctrl.ssthresh() {
                    acked.min(self.slow_start_limit())
                } else {
                    acked
                };
                self.cc.ctrl.on_ack(now, acked, self.rtt.srtt(), true);
                if ack >= point {
                    self.recovery.phase = None;
                    self.recovery.rack.on_recovery_end();
                }
            }
            None => {}
        }
    }

    /// Outside recovery, the window's growth for an ACK of new data
    /// (`acked` bytes, up to `ack`): slow start watched by HyStart++ (RFC
    /// 9406), or congestion avoidance. Called once the ACK's losses are
    /// known, and not for an ACK that starts a recovery: as in Linux
    /// (tcp_cong_control grows cwnd only outside a reduction), the ACK that
    /// reveals a loss does not first grow the window the reduction then
    /// starts from (with a receiver that acknowledges bursts whole, slow
    /// start could otherwise double it on that very ACK).
    pub(crate) fn grow_window(
        &mut self,
        now: Instant,
        ack: SeqNum,
        acked: usize,
        rtt_sample: Option<Duration>,
        cwnd_limited: bool,
    ) {
        if self.recovery.phase.is_some() {
            return;
        }
        if self.cc.ctrl.cwnd() < self.cc.ctrl.ssthresh() {
            // Slow start, watched by HyStart++ (RFC 9406).
            use crate::hystart::{CSS_GROWTH_DIVISOR, Verdict};
            let acked = acked.min(self.slow_start_limit());
            match self.cc.hystart.on_ack(ack, rtt_sample, self.snd.nxt) {
                Verdict::Normal => self
                    .cc
                    .ctrl
                    .on_ack(now, acked, self.rtt.srtt(), cwnd_limited),
                Verdict::Conservative => self.cc.ctrl.on_ack(
                    now,
                    acked.div_ceil(CSS_GROWTH_DIVISOR),
                    self.rtt.srtt(),
                    cwnd_limited,
                ),
                Verdict::ExitSlowStart => self.cc.ctrl.exit_slow_start(now),
            }
        } else {
            self.cc
                .ctrl
                .on_ack(now, acked, self.rtt.srtt(), cwnd_limited);
        }
    }

    /// RFC 5681 2: a duplicate acknowledgment (without SACK, it stands for
    /// a segment that left the network).
    pub(crate) fn on_duplicate_ack(&mut self) {
        self.recovery.dupacks += 1;
        if !self.sack_ok {
            let flight = self.snd.nxt.since(self.snd.una);
            self.recovery
                .scoreboard
                .add_reno_dupack(self.snd.smss, flight);
        }
    }

    /// RFC 6675 5 / RFC 5681 3.2: enter fast recovery when the first
    /// unacknowledged segment is deemed lost (SACK: IsLost(HighACK + 1);
    /// without SACK: the third duplicate ACK). `una_before`: SND.UNA before
    /// the ACK being processed (SND.UNA itself when a timer asks).
    pub(crate) fn detect_loss(&mut self, now: Instant, una_before: SeqNum) {
        if self.uses_rack() {
            self.rack_detect_loss(now);
        } else if self.sack_ok {
            self.recovery.scoreboard.update_lost(self.snd.smss);
            if self.recovery.phase.is_some() {
                let lost = self
                    .recovery
                    .scoreboard
                    .detect_lost_retransmissions(self.snd.una);
                self.stats.lost_retransmissions += lost as u64;
            }
        }
        if self.recovery.phase.is_some() || self.snd.nxt <= self.snd.una {
            return;
        }
        let lost = if self.uses_rack() {
            self.recovery.scoreboard.is_lost(self.snd.una)
        } else if self.sack_ok {
            self.recovery.scoreboard.is_lost(self.snd.una)
                || self.recovery.dupacks as usize >= DUP_THRESH
        } else {
            self.recovery.dupacks as usize >= DUP_THRESH
        };
        if !lost {
            return;
        }
        if !self.sack_ok || !self.recovery.scoreboard.is_lost(self.snd.una) {
            self.recovery
                .scoreboard
                .mark_lost_through(self.snd.una + self.snd.smss);
        }
        // FlightSize (RFC 5681 eq. (4), RFC 6937's RecoverFS) as the ACK
        // found it. A receiver that acknowledges a whole burst at once
        // (Linux coalescing a super segment, GRO) answers a loss with one
        // ACK that both moves SND.UNA up to the hole and SACKs the rest:
        // counted after it, the flight is only the hole and what lies
        // above it, far below the window in use, and NewReno's ssthresh
        // and PRR's pace followed it down. (CUBIC takes cwnd, as Linux's
        // tcp_init_cwnd_reduction does; see `Cubic::reduce`.)
        let flight = self.snd.nxt.since(una_before.min(self.snd.una));
        self.cc.ctrl.on_loss(now, flight);
        self.cc.hystart.finish();
        self.recovery.phase = Some(Recovery::Fast {
            point: self.snd.nxt,
        });
        // RFC 6937 3: "prr_delivered = 0; prr_out = 0; RecoverFS = snd.nxt -
        // snd.una". The fast retransmit itself goes regardless (RFC 6675).
        self.recovery.prr = Prr {
            recover_fs: flight,
            ..Default::default()
        };
        // RFC 8985 7.4.2: "When a connection ... enters fast recovery ...
        // TLP.end_seq = None" (the recovery's own response covers a loss
        // the probe revealed).
        self.timers.stop(Timer::Tlp);
        self.recovery.tlp_end = None;
        self.recovery.tlp_retrans = None;
        self.recovery.scoreboard.start_episode(self.snd.una);
        self.recovery.retransmit_now = true;
        self.stats.fast_recoveries += 1;
        log::debug!(
            "{} -> {}: fast recovery at {} (flight {}, cwnd now {})",
            self.local,
            self.remote,
            self.snd.una,
            flight,
            self.cc.ctrl.cwnd()
        );
    }

    /// RFC 8985 7.4, on every ACK while a probe episode is open: did the
    /// probe alone repair a loss? "If the only loss was the last segment",
    /// the probe's retransmission repairs it and no recovery starts, so
    /// without this check congestion control would never hear of the loss
    /// (7.4.1). `ack` is the ACK's cumulative point; `dsack` its D-SACK
    /// block, if any; `pure_dupack`: it acknowledges nothing new, SACKs
    /// nothing and carries neither data nor a window change.
    ///
    /// The order of the checks is RFC 8985 7.4.2's (step 2 of "Detecting
    /// recoveries accomplished by loss probes"), as Linux's
    /// `tcp_process_tlp_ack` also has it:
    /// - a probe of new data is acknowledged: the episode ends, nothing
    ///   was lost;
    /// - a D-SACK reports the probe's retransmission as a duplicate: "both
    ///   the original and the TLP retransmission were delivered", no loss,
    ///   no response (counted in `tlp_unneeded`);
    /// - the ACK goes beyond TLP.end_seq with no such D-SACK: the original
    ///   was lost and the probe repaired it. "The sender ... SHOULD invoke
    ///   a congestion control response equivalent to fast recovery" (7.4.2
    ///   "EnterRecovery(); ExitRecovery()"): `on_loss` then
    ///   `on_recovery_end`, through the `CongestionControl` trait (counted
    ///   in `tlp_repaired`);
    /// - a pure duplicate ACK: the probe arrived as a duplicate but the
    ///   peer did not say so; treated as no loss;
    /// - else (an ACK exactly at TLP.end_seq: the probe's or the
    ///   original's, which cannot be told apart yet) the episode stays
    ///   open until a later ACK or D-SACK settles it.
    pub(crate) fn tlp_on_ack(
        &mut self,
        now: Instant,
        ack: SeqNum,
        dsack: Option<(SeqNum, SeqNum)>,
        pure_dupack: bool,
    ) {
        let Some(end) = self.recovery.tlp_end else {
            return;
        };
        if ack < end {
            // A D-SACK for the probe settles it before the cumulative ACK
            // reaches its end too (the original then arrived before it).
            if let (Some((s, e)), Some((l, r))) = (self.recovery.tlp_retrans, dsack)
                && l < e
                && r > s
            {
                self.recovery.tlp_end = None;
                self.recovery.tlp_retrans = None;
                self.stats.tlp_unneeded += 1;
            }
            return;
        }
        let Some((s, e)) = self.recovery.tlp_retrans else {
            // "If not TLP.is_retrans: TLP.end_seq = None" (new data).
            self.recovery.tlp_end = None;
            return;
        };
        if dsack.is_some_and(|(l, r)| l < e && r > s) {
            self.recovery.tlp_end = None;
            self.recovery.tlp_retrans = None;
            self.stats.tlp_unneeded += 1;
        } else if ack > end {
            self.recovery.tlp_end = None;
            self.recovery.tlp_retrans = None;
            self.stats.tlp_repaired += 1;
            // ssthresh from the window in use when the loss happened:
            // FlightSize now counts little more than what was sent since
            // the repair (for a tail, about the probe alone) and would
            // collapse it to two segments; Linux's tcp_init_cwnd_reduction
            // likewise asks for ssthresh from cwnd.
            let window = self.cc.ctrl.cwnd();
            self.cc.ctrl.on_loss(now, window);
            self.cc.hystart.finish();
            self.cc.ctrl.on_recovery_end(now);
            log::debug!(
                "{} -> {}: the tail loss probe repaired a loss (RFC 8985 7.4); cwnd now {}",
                self.local,
                self.remote,
                self.cc.ctrl.cwnd()
            );
        } else if pure_dupack {
            self.recovery.tlp_end = None;
            self.recovery.tlp_retrans = None;
        }
    }

    /// RFC 3522 (Eifel detection): the first ACK of new data after a
    /// retransmission timeout echoes, in `ecr`, the timestamp of the segment
    /// it answers. Older than the retransmission's: the original arrived,
    /// the timeout was spurious, and (RFC 4015) the congestion state goes
    /// back to what it was, and with it sending of new data instead of
    /// retransmitting the whole flight. Called after the scoreboard heard
    /// of the ACK.
    pub(crate) fn check_spurious_rto(&mut self, ecr: Option<u32>) {
        if !matches!(self.recovery.phase, Some(Recovery::Timeout { .. })) {
            self.recovery.undo = None;
            return;
        }
        let Some((cc, ts)) = self.recovery.undo.take() else {
            return;
        };
        if ecr.is_some_and(|e| e != 0 && (e.wrapping_sub(ts) as i32) < 0) {
            self.cc.ctrl = cc;
            self.recovery.phase = None;
            self.recovery.scoreboard.undo_rto(self.snd.una);
            self.stats.spurious_rtos += 1;
            log::debug!(
                "{} -> {}: the retransmission timeout was spurious (RFC 3522); cwnd back to {}",
                self.local,
                self.remote,
                self.cc.ctrl.cwnd()
            );
        }
    }

    /// True when RACK detects losses: configured, and SACK in use (RFC 8985
    /// relies on SACK to learn what was delivered; without it the
    /// duplicate-ACK rules run).
    pub(crate) fn uses_rack(&self) -> bool {
        self.sack_ok && self.cfg.loss_detection == LossDetection::Rack
    }

    /// RFC 8985 6.2 steps 4 and 5 and 6.3: the reordering window, the
    /// first transmissions and the retransmissions RACK finds lost, and the
    /// reordering timer for those that have not waited long enough yet.
    fn rack_detect_loss(&mut self, now: Instant) {
        let mss = self.snd.smss.max(1);
        let dupthresh_sacked = self.recovery.scoreboard.sacked_bytes() > (DUP_THRESH - 1) * mss;
        let reo_wnd = self.recovery.rack.reo_wnd(
            self.recovery.phase.is_some(),
            dupthresh_sacked,
            self.rtt.min_rtt(),
            self.rtt.srtt(),
        );
        let (boundary, mut timer) = self.recovery.rack.detect(now, reo_wnd);
        if let Some(b) = boundary {
            self.recovery
                .scoreboard
                .mark_lost_through(b.min(self.snd.nxt));
        }
        if self.recovery.phase.is_some() {
            let rack = &self.recovery.rack;
            let found =
                self.recovery
                    .scoreboard
                    .detect_lost_retransmissions_by(self.snd.una, |at, _| {
                        match rack.retransmission_deadline(now, at, reo_wnd) {
                            Some(t) if t <= now => true,
                            Some(t) => {
                                timer = Some(timer.map_or(t, |x: Instant| x.max(t)));
                                false
                            }
                            None => false,
                        }
                    });
            self.stats.lost_retransmissions += found as u64;
        }
        self.timers.set_or_stop(Timer::Reorder, timer);
    }

    /// RACK's view of an ACK (RFC 8985 6.2 steps 1-3): the segments it
    /// newly delivered, by cumulative ACK (from `old_una`) and by the SACK
    /// ranges in `sacked` (each newly SACKed; true when wholly new, not
    /// an older range grown by a filled hole), and whether it carried a
    /// D-SACK. Octets below `high_rxt` were retransmitted in the recovery
    /// the ACK arrived in (their delivery is ambiguous).
    pub(crate) fn rack_on_ack(
        &mut self,
        now: Instant,
        old_una: SeqNum,
        high_rxt: SeqNum,
        sacked: &[(SeqNum, SeqNum, bool)],
        dsack: bool,
    ) {
        if !self.uses_rack() {
            return;
        }
        let min_rtt = self.rtt.min_rtt();
        let rack = &mut self.recovery.rack;
        if self.snd.una > old_una {
            rack.on_cumulative_ack(now, old_una, self.snd.una, high_rxt, min_rtt);
            if let Some((at, end)) = self.recovery.scoreboard.take_acked_retransmission() {
                rack.on_retransmission_delivered(now, at, end, true, min_rtt);
            }
        }
        for &(l, r, fresh) in sacked {
            rack.on_sacked(now, l, r, fresh, high_rxt, min_rtt);
            if let Some((at, end)) = self.recovery.scoreboard.retransmission_in(l, r) {
                rack.on_retransmission_delivered(now, at, end, false, min_rtt);
            }
        }
        if dsack {
            rack.on_dsack(self.snd.nxt);
        }
    }

    /// RFC 6937 3, on every ACK that starts or continues fast recovery:
    /// "prr_delivered += DeliveredData", then sndcnt. While the pipe is above
    /// ssthresh, sending follows deliveries in proportion ssthresh /
    /// RecoverFS; once it is below (heavy losses), the slow start reduction
    /// bound (PRR-SSRB) lets it grow back towards ssthresh by at most one
    /// segment more than was delivered.
    pub(crate) fn prr_on_ack(&mut self, delivered: usize) {
        let pipe = self.pipe();
        let ssthresh = self.cc.ctrl.ssthresh();
        let mss = self.snd.smss.max(1);
        let prr = &mut self.recovery.prr;
        prr.delivered += delivered;
        prr.sndcnt = if pipe > ssthresh {
            // "sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out"
            (prr.delivered.saturating_mul(ssthresh))
                .div_ceil(prr.recover_fs.max(1))
                .saturating_sub(prr.out)
        } else {
            // "limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS;
            //  sndcnt = MIN(ssthresh - pipe, limit)"
            let limit = prr.delivered.saturating_sub(prr.out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
    }

    /// The retransmission timer expired (RFC 6298 5.4-5.7).
    pub(crate) fn on_rto(&mut self, now: Instant) {
        match self.state {
            State::SynSent | State::SynReceived => {
                self.snd.syn_retries += 1;
                let limit = if self.passive {
                    self.cfg.synack_retries
                } else {
                    self.cfg.syn_retries
                };
                if self.snd.syn_retries > limit {
                    self.enter_closed(Some(TcpError::TimedOut));
                    return;
                }
                self.rtt.back_off();
                self.timed = None;
                self.snd.syn_pending = true;
                self.stats.rto_count += 1;
            }
            _ => {
                if self.snd.nxt == self.snd.una {
                    return;
                }
                // An orphan gets `orphan_retries` timeouts without progress
                // (Linux tcp_orphan_retries), not the user timeout's minutes.
                if self.app_closed && self.recovery.rto_without_progress >= self.cfg.orphan_retries
                {
                    self.alarms.orphan_gave_up += 1;
                    self.give_up("orphan after orphan_retries timeouts");
                    return;
                }
                // A second timeout with no progress after retransmitting the
                // holes suggests the peer reneged on its SACKs (RFC 2018 8):
                // forget them and retransmit everything.
                if self.recovery.rto_without_progress >= 1 {
                    self.recovery.scoreboard.clear(self.snd.una);
                }
                // RFC 3522 (Eifel): remember what the first timeout
                // changes, and the timestamp its retransmission carries.
                self.recovery.undo =
                    if self.recovery.rto_without_progress == 0 && self.ts.peer.is_some() {
                        self.cc.ctrl.clone_box().map(|cc| (cc, self.ts_now(now)))
                    } else {
                        None
                    };
                self.recovery.rto_without_progress += 1;
                self.timers.stop(Timer::Reorder);
                // RFC 8985 7.4.2: the probe episode ends with a timeout
                // ("suffers a retransmission timeout ... TLP.end_seq =
                // None"); the timeout's own response follows.
                self.recovery.tlp_end = None;
                self.recovery.tlp_retrans = None;
                let flight = self.snd.nxt.since(self.snd.una);
                self.cc.ctrl.on_rto(now, flight);
                self.cc.hystart.finish();
                self.recovery.scoreboard.on_rto(self.snd.una, self.snd.nxt);
                self.recovery.phase = Some(Recovery::Timeout {
                    point: self.snd.nxt,
                });
                self.recovery.dupacks = 0;
                self.rtt.back_off();
                self.timed = None;
                self.stats.rto_count += 1;
                log::debug!(
                    "{} -> {}: retransmission timeout #{} at {} (rto now {:?})",
                    self.local,
                    self.remote,
                    self.recovery.rto_without_progress,
                    self.snd.una,
                    self.rtt.rto()
                );
            }
        }
    }
}
