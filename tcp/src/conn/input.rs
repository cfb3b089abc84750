//! Segment arrival (RFC 9293 section 3.10.7), with the RFC 5961 protections
//! against blind reset, SYN and data injection, PAWS (RFC 7323), SACK
//! processing and acknowledgments; the congestion response to them and
//! loss detection are in `recovery.rs`.

use std::time::{Duration, Instant};

use super::recovery::Recovery;
use super::timers::Timer;
use super::{Connection, State, TcpError};
use crate::segment::TcpRepr;
use crate::seq::SeqNum;

/// What the stack must do after a segment was handled.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    /// Handled; call `poll_transmit` for any response.
    Done,
    /// A SYN that may open a new incarnation of a connection in TIME-WAIT
    /// (RFC 9293 3.10.7.4, RFC 6191): close this connection and hand the
    /// SYN to the listener.
    Reincarnate,
}

/// RFC 7323 5.5: a TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

impl Connection {
    /// Handles a segment addressed to this connection.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) -> Input {
        match self.state {
            State::Closed | State::Listen => return Input::Done,
            State::SynSent => {
                self.input_syn_sent(now, seg, payload);
                self.last_rcvd_at = now;
                return Input::Done;
            }
            _ => {}
        }
        if self.state == State::TimeWait {
            return self.input_time_wait(now, seg, payload.len());
        }
        // In SYN-RECEIVED, a segment carrying the peer's SYN again is either
        // a retransmitted SYN (our SYN-ACK was lost: send it again) or, in a
        // simultaneous open, the peer's SYN-ACK (RFC 9293 figure 8 step 5):
        // its SYN is old news, trim it and process the rest.
        // RFC 7323 2.2: "The window field in a SYN (i.e., a <SYN> or
        // <SYN,ACK>) segment itself is never scaled."
        let window_shift = if seg.flags.syn() { 0 } else { self.snd.wscale };
        let trimmed;
        let seg = if self.state == State::SynReceived && seg.flags.syn() && seg.seq == self.rcv.irs
        {
            if !seg.flags.ack() {
                self.snd.syn_pending = true;
                return Input::Done;
            }
            let mut t = *seg;
            t.flags = crate::Flags(t.flags.0 & !crate::Flags::SYN);
            t.seq += 1;
            trimmed = t;
            &trimmed
        } else {
            seg
        };
        // RFC 9293 3.10.7.4: "If the RCV.WND is zero, no segments will be
        // acceptable, but special allowance should be made to accept valid
        // ACKs, URGs, and RSTs." A segment at RCV.NXT whose text (or FIN)
        // meets a closed window still delivers its ACK and window fields;
        // the text is dropped and answered with an ACK repeating the zero
        // window (the peer retransmits it once the window opens).
        // A bare FIN needs no buffer space: it is taken even into a closed
        // window (as Linux does), so the application learns of the end of
        // the stream without first reading what it has.
        let textless;
        let (seg, payload) = if self.rcv.adv == self.rcv.nxt
            && seg.seq == self.rcv.nxt
            && !seg.flags.syn()
            && !seg.flags.rst()
            && !payload.is_empty()
        {
            let mut t = *seg;
            t.flags = crate::Flags(t.flags.0 & !crate::Flags::FIN);
            textless = t;
            self.rcv.ack_now = true;
            (&textless, &[][..])
        } else {
            (seg, payload)
        };
        if !self.check_acceptable(now, seg, payload.len()) {
            return Input::Done;
        }
        self.last_rcvd_at = now;
        self.stats.segments_received += 1;
        if let Some(k) = self.cfg.keepalive {
            self.timers.set(Timer::KeepAlive, now + k.idle);
            self.probe.keepalive_sent = 0;
        }
        // Second: the RST bit (RFC 5961 section 3.2: only an exact match
        // resets; any other in-window RST gets a challenge ACK).
        if seg.flags.rst() {
            if seg.seq == self.rcv.nxt {
                self.input_reset();
            } else {
                self.challenge_ack(now);
            }
            return Input::Done;
        }
        // Fourth: the SYN bit. RFC 5961 section 4.2: challenge ACK,
        // whatever the sequence number.
        if seg.flags.syn() {
            self.challenge_ack(now);
            return Input::Done;
        }
        // Fifth: the ACK field. "if the ACK bit is off, drop the segment".
        if !seg.flags.ack() {
            return Input::Done;
        }
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED ...
            // If the segment acknowledgment is not acceptable, form a reset
            // segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if seg.ack > self.snd.una && seg.ack <= self.snd.nxt {
                self.snd
                    .first_window(seg.seq, (seg.window as usize) << window_shift);
                self.syn_acknowledged(now, seg.ack);
            } else {
                self.pending_rst = Some(self.make_rst(seg.ack));
                return Input::Done;
            }
        }
        // RFC 9293: "If the ACK acknowledges something not yet sent (SEG.ACK
        // > SND.NXT), then send an ACK, drop the segment, and return."
        if seg.ack > self.snd.nxt {
            if self.take_oow_token(now) {
                self.rcv.ack_now = true;
            }
            return Input::Done;
        }
        // RFC 5961 5.2: an ACK older than SND.UNA - MAX.SND.WND is blind
        // data injection: challenge ACK and drop.
        let oldest = self.snd.una - self.snd.max_wnd.max(1);
        if seg.ack < oldest {
            self.challenge_ack(now);
            return Input::Done;
        }
        self.process_ack(now, seg, payload.len(), window_shift);
        let fin_acked = self.fin_acked();
        match self.state {
            State::FinWait1 if fin_acked => {
                self.set_state(State::FinWait2);
                if self.app_closed {
                    self.timers
                        .set(Timer::Close, now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if fin_acked => self.enter_time_wait(now),
            State::LastAck if fin_acked => {
                self.enter_closed(None);
                return Input::Done;
            }
            _ => {}
        }
        // Sixth: the URG bit. "If the URG bit is set, RCV.UP <-
        // max(RCV.UP,SEG.UP), and signal the user that the remote side has
        // urgent data if the urgent pointer (RCV.UP) is in advance of the
        // data consumed." (SEG.UP is relative to SEG.SEQ, and points past
        // the urgent data, MUST-31.)
        if seg.flags.has(crate::Flags::URG)
            && seg.urgent > 0
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            self.note_urgent(seg.seq + usize::from(seg.urgent));
        }
        // RFC 1122 4.2.2.13: "if new data is received after CLOSE is
        // called, its TCP SHOULD send a RST to show that data was lost"
        // (RFC 2525 2.17; Linux: TCPAbortOnData). Only FIN-WAIT states can
        // still receive new data once we closed.
        if (self.app_closed || self.rcv.read_shut)
            && matches!(self.state, State::FinWait1 | State::FinWait2)
            && seg.seq + payload.len() > self.rcv.nxt
            && !payload.is_empty()
        {
            log::debug!(
                "{} -> {}: data after close, resetting",
                self.local,
                self.remote
            );
            self.alarms.reset_on_data_after_close += 1;
            self.pending_rst = Some(self.make_rst(seg.ack));
            self.enter_closed(None);
            return Input::Done;
        }
        // Seventh: the segment text.
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    self.receive_data(now, seg.seq, payload)
                }
                // The peer already sent its FIN: "this should not occur...
                // ignore the segment text".
                _ => {}
            }
        }
        // Eighth: the FIN bit (it may be ahead of missing data; it takes
        // effect when RCV.NXT reaches it).
        if seg.flags.fin() && self.rcv.remote_fin.is_none() {
            self.rcv.remote_fin = Some(seg.seq + payload.len());
        }
        self.check_remote_fin(now);
        Input::Done
    }

    /// TIME-WAIT (RFC 9293 3.10.7.4, RFC 1337, RFC 6191), by the same rules
    /// as the compact record that replaces a connection the application
    /// let go of ([`crate::TimeWait`]).
    fn input_time_wait(&mut self, now: Instant, seg: &TcpRepr, payload_len: usize) -> Input {
        use crate::timewait::{Decision, decide};
        let mut recent = self.ts.peer.map(|t| (t.recent, t.recent_at));
        let decision = decide(&mut recent, self.rcv.nxt, now, seg, payload_len);
        if let (Some(ts), Some((r, at))) = (self.ts.peer.as_mut(), recent) {
            ts.recent = r;
            ts.recent_at = at;
        }
        match decision {
            Decision::Ignore => {}
            Decision::Reincarnate => return Input::Reincarnate,
            Decision::AckAndRestart => {
                self.rcv.ack_now = true;
                self.timers.set(Timer::Close, now + 2 * self.cfg.msl);
            }
            Decision::ThrottledAck => {
                if self.take_oow_token(now) {
                    self.rcv.ack_now = true;
                }
            }
        }
        Input::Done
    }

    /// SYN-SENT processing (RFC 9293 3.10.7.3).
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        // "If the ACK bit is set: If SEG.ACK =< ISS or SEG.ACK > SND.NXT,
        // send a reset (unless the RST bit is set, if so drop the segment
        // and return) <SEQ=SEG.ACK><CTL=RST>".
        if seg.flags.ack() && (seg.ack <= self.snd.iss || seg.ack > self.snd.nxt) {
            if !seg.flags.rst() {
                self.pending_rst = Some(self.make_rst(seg.ack));
            }
            return;
        }
        if seg.flags.rst() {
            // "If the ACK was acceptable, then signal to the user 'error:
            // connection reset', drop the segment, enter CLOSED state".
            if seg.flags.ack() {
                self.enter_closed(Some(TcpError::Refused));
            }
            return;
        }
        if !seg.flags.syn() {
            return;
        }
        self.rcv.irs = seg.seq;
        self.rcv.nxt = seg.seq + 1;
        self.rcv.last_ack_sent = self.rcv.nxt;
        // The receive window starts where our SYN put it: RCV.NXT plus the
        // (unscaled) window that SYN offered. Until now the edge had no
        // meaning; left as it was, it sits at an arbitrary distance from
        // RCV.NXT, and for half of all IRS values the window's edges would
        // compare backwards across the sequence space.
        self.rcv.adv = self.rcv.nxt + self.advertisable_window().min(65_535);
        self.negotiate(now, &seg.options);
        // RFC 7323 2.2: the window in a SYN segment is never scaled.
        self.snd.first_window(seg.seq, seg.window as usize);
        if seg.flags.ack() {
            self.syn_acknowledged(now, seg.ack);
            self.rcv.ack_now = true;
            // "...continue processing at the sixth step below where the URG
            // bit is checked": text and a FIN in the SYN-ACK count.
            if !payload.is_empty() {
                self.receive_data(now, seg.seq + 1, payload);
            }
            if seg.flags.has(crate::Flags::URG) && seg.urgent > 0 {
                self.note_urgent(seg.seq + 1 + usize::from(seg.urgent));
            }
            if seg.flags.fin() {
                self.rcv.remote_fin = Some(seg.seq + 1 + payload.len());
                self.check_remote_fin(now);
            }
        } else {
            // Simultaneous open: "enter SYN-RECEIVED, form a SYN,ACK
            // segment <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it".
            self.snd.wl2 = self.snd.iss;
            self.set_state(State::SynReceived);
            self.snd.syn_pending = true;
        }
    }

    /// RFC 9293 3.10.7.4 first check, with PAWS (RFC 7323 5.3) before it.
    fn check_acceptable(&mut self, now: Instant, seg: &TcpRepr, payload_len: usize) -> bool {
        if let Some(ts) = self.ts.peer {
            match seg.options.timestamps {
                // RFC 7323 3.2 says a non-RST segment without timestamps
                // SHOULD be dropped once they are on; like Linux, ustack
                // takes it (middleboxes strip options, and dropping would
                // stall such a path) and counts it. PAWS cannot check it.
                None if !seg.flags.rst() => self.stats.timestamps_missing += 1,
                Some((val, _)) if !seg.flags.rst() => {
                    // PAWS R1: SEG.TSval < TS.Recent and TS.Recent valid.
                    let older = (val.wrapping_sub(ts.recent) as i32) < 0;
                    if older && now.saturating_duration_since(ts.recent_at) < PAWS_IDLE {
                        self.stats.paws_drops += 1;
                        self.ack_unacceptable(now, payload_len);
                        return false;
                    }
                }
                _ => {}
            }
        }
        let seg_len = seg.seq_len(payload_len);
        let wnd = self.rcv.adv.since(self.rcv.nxt);
        let seq = seg.seq;
        let in_window = |s: SeqNum| s.in_range(self.rcv.nxt, self.rcv.nxt + wnd);
        // The four cases of the acceptability test.
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == self.rcv.nxt,
            (0, _) => in_window(seq),
            // A bare FIN at RCV.NXT takes no buffer space.
            (1, 0) => seq == self.rcv.nxt && seg.flags.fin() && payload_len == 0,
            (_, 0) => false,
            (len, _) => in_window(seq) || in_window(seq + len - 1),
        };
        if !acceptable {
            // "If an incoming segment is not acceptable, an acknowledgment
            // should be sent in reply (unless the RST bit is set...)". A
            // duplicate of data already received is reported as a D-SACK
            // (RFC 2883).
            if seg.flags.syn() {
                // RFC 5961 4.2: a SYN gets a (rate-limited) challenge ACK
                // "irrespective of the sequence number".
                self.challenge_ack(now);
            } else if !seg.flags.rst() {
                self.ack_unacceptable(now, payload_len);
                if payload_len > 0 && seq + payload_len <= self.rcv.nxt && self.sack_ok {
                    self.rcv.dsack = Some((seq, seq + payload_len));
                }
            }
            return false;
        }
        // RFC 7323 4.3: update TS.Recent when SEG.TSval >= TS.Recent and
        // SEG.SEQ <= Last.ACK.sent.
        if let (Some(ts), Some((val, _))) = (self.ts.peer.as_mut(), seg.options.timestamps)
            && (val.wrapping_sub(ts.recent) as i32) >= 0
            && seq <= self.rcv.last_ack_sent
        {
            ts.recent = val;
            ts.recent_at = now;
        }
        true
    }

    /// An acceptable RST with SEG.SEQ == RCV.NXT.
    fn input_reset(&mut self) {
        match self.state {
            // RFC 9293: a passively opened connection "returns to LISTEN"
            // (the stack removes it, quietly); an actively opened one was
            // refused.
            State::SynReceived => {
                let error = (!self.app_closed && !self.passive).then_some(TcpError::Refused);
                self.enter_closed(error);
            }
            // Linux tcp_reset: "case TCP_CLOSE_WAIT: err = EPIPE;" -- the
            // peer had closed its side, so the application learns of the
            // reset as a broken pipe; elsewhere ECONNRESET.
            State::CloseWait => self.enter_closed(Some(TcpError::ResetAfterFin)),
            State::Established | State::FinWait1 | State::FinWait2 => {
                self.enter_closed(Some(TcpError::Reset));
            }
            _ => self.enter_closed(None),
        }
    }

    fn challenge_ack(&mut self, now: Instant) {
        if self.take_oow_token(now) {
            self.stats.challenge_acks += 1;
            self.rcv.ack_now = true;
        }
    }

    /// The ACK field of an acceptable segment (RFC 9293 fifth check):
    /// window update, SACK, cumulative acknowledgment, RTT, congestion
    /// window and loss recovery.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr, payload_len: usize, window_shift: u8) {
        let ack = seg.ack;
        let cwnd_limited = self.cc.cwnd_limited;
        // For PRR's DeliveredData: the change in SND.UNA plus the change in
        // SACKed (or, without SACK, presumed delivered) bytes.
        let (una_before, sacked_before) = (self.snd.una, self.recovery.scoreboard.sacked_bytes());
        let lost_before = self.recovery.scoreboard.lost_end();
        // Outside recovery: the window's growth this ACK earned, applied
        // after loss detection (see `grow_window`).
        let mut growth = None;
        let high_rxt = if self.recovery.phase.is_some() {
            self.recovery.scoreboard.high_rxt()
        } else {
            self.snd.una
        };
        // Window update: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        // SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND, set SND.WL1 <-
        // SEG.SEQ, and set SND.WL2 <- SEG.ACK."
        let mut window_changed = false;
        if self.snd.wl1 < seg.seq || (self.snd.wl1 == seg.seq && self.snd.wl2 <= ack) {
            let wnd = (seg.window as usize) << window_shift;
            window_changed = wnd != self.snd.wnd;
            self.snd.wnd = wnd;
            self.snd.max_wnd = self.snd.max_wnd.max(wnd);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = ack;
            if wnd > 0 {
                self.timers.stop(Timer::Persist);
                self.probe.persist_backoff = 0;
                self.probe.persist_since = None;
            }
        }
        // The delivery-rate sample looks at what this ACK newly delivers
        // (the stretches are passed as the scoreboard learns of them).
        self.rate.begin_ack();
        let mut newly_sacked = 0;
        // Ranges this ACK newly SACKed, for RACK (at most one per block).
        let mut rack_sacked = [(SeqNum(0), SeqNum(0), false); crate::MAX_SACK_BLOCKS];
        let mut rack_n = 0;
        let mut dsack = false;
        let mut dsack_block = None;
        if self.sack_ok && seg.options.sack_count > 0 {
            let blocks = seg.options.sack();
            // RFC 2883: a first block below the cumulative ACK, or inside the
            // second block, reports a duplicate.
            let (l, r) = blocks[0];
            if r <= ack || blocks.get(1).is_some_and(|&(l2, r2)| l >= l2 && r <= r2) {
                self.stats.dsacks_received += 1;
                dsack = true;
                dsack_block = Some((l, r));
            }
            for &block in blocks {
                let rate = &mut self.rate;
                let added = self.recovery.scoreboard.add_blocks_noting(
                    self.snd.una.max(ack),
                    self.snd.nxt,
                    &[block],
                    |a, b| rate.on_delivered(a, b),
                );
                if added > 0 && rack_n < rack_sacked.len() {
                    // Wholly new, or grown (a hole inside it filled).
                    rack_sacked[rack_n] = (block.0, block.1, added == block.1.since(block.0));
                    rack_n += 1;
                }
                newly_sacked += added;
            }
            self.stats.sacked_total += newly_sacked as u64;
        }
        // RFC 8985 7.4: did a probe alone repair a loss? (Before the ACK
        // is taken: it ends the episode, so the probe timer below may be
        // armed again.)
        let pure_dupack = ack == self.snd.una
            && seg.options.sack_count == 0
            && payload_len == 0
            && !seg.flags.syn()
            && !seg.flags.fin()
            && !window_changed;
        self.tlp_on_ack(now, ack, dsack_block, pure_dupack);
        if ack > self.snd.una {
            let acked = ack.since(self.snd.una);
            if self.snd.up.is_some_and(|up| ack >= up) {
                self.snd.up = None; // the urgent data is acknowledged
            }
            let data_acked = ack.min(self.data_end()).since(self.send_buf_seq());
            self.snd.buf.consume(data_acked);
            self.stats.bytes_acked += data_acked as u64;
            let rtt_sample = self.sample_rtt(now, seg);
            // Newly delivered by the cumulative ACK: what was not SACKed
            // before (SACKed octets were delivered, and sampled, then).
            let rate = &mut self.rate;
            self.recovery
                .scoreboard
                .for_each_unsacked(self.snd.una, ack, |a, b| rate.on_delivered(a, b));
            self.snd.una = ack;
            self.recovery.scoreboard.on_cumulative_ack(ack);
            self.check_spurious_rto(seg.options.timestamps.map(|t| t.1));
            self.recovery.dupacks = 0;
            self.recovery.rto_without_progress = 0;
            let outstanding = self.snd.nxt > self.snd.una;
            self.snd.progress_at = outstanding.then_some(now);
            if self.recovery.phase.is_none() {
                // Grown once this ACK's losses are known (below).
                growth = Some((ack, acked, rtt_sample));
            }
            self.on_ack_of_new_data(now, ack, acked);
            // RFC 6298 5.2: "When all outstanding data has been acknowledged,
            // turn off the retransmission timer." 5.3: "When an ACK is
            // received that acknowledges new data, restart the
            // retransmission timer".
            self.timers
                .set_or_stop(Timer::Retransmit, outstanding.then(|| now + self.rtt.rto()));
            self.arm_pto(now);
        } else if ack == self.snd.una
            && self.snd.nxt > self.snd.una
            && payload_len == 0
            && !seg.flags.syn()
            && !seg.flags.fin()
            && (!window_changed || newly_sacked > 0)
            // RFC 6675 2: with SACK, only an ACK that SACKs new data counts
            // (a duplicated ACK on the wire must not trigger recovery).
            && (!self.sack_ok || newly_sacked > 0)
        {
            self.on_duplicate_ack();
        }
        let echo = seg.options.timestamps.map(|t| (t.1, self.ts.offset));
        self.recovery
            .rack
            .set_echo(echo.filter(|_| self.ts.peer.is_some()));
        self.rack_on_ack(now, una_before, high_rxt, &rack_sacked[..rack_n], dsack);
        self.detect_loss(now, una_before);
        if let Some((ack, acked, rtt_sample)) = growth {
            self.grow_window(now, ack, acked, rtt_sample, cwnd_limited);
        }
        if self.snd.una > una_before || newly_sacked > 0 {
            let delivered = self.stats.bytes_acked + self.recovery.scoreboard.sacked_bytes() as u64;
            let interval = self.rtt.srtt().unwrap_or_default();
            self.delivery.on_delivered(now, delivered, interval);
        }
        // RFC 6937's DeliveredData; the delivery-rate sample (and with it
        // the congestion control's model) comes first, so that PRR works
        // towards the window the algorithm just chose.
        let delivered = (self.snd.una.since(una_before) + self.recovery.scoreboard.sacked_bytes())
            .saturating_sub(sacked_before);
        if delivered > 0 {
            // What this ACK newly marked lost: the unSACKed octets the
            // lost boundary moved over.
            let sb = &self.recovery.scoreboard;
            let lost = sb.unsacked_in(
                lost_before.max(self.snd.una),
                sb.lost_end().max(self.snd.una),
            );
            self.rate_on_ack(now, delivered as u64, lost as u64);
        }
        if matches!(self.recovery.phase, Some(Recovery::Fast { .. })) {
            self.prr_on_ack(delivered);
        }
        self.autotune_send_buffer();
    }

    /// RTT sampling: the timed segment (Karn's rule: it is forgotten when
    /// retransmitted), or, when none is being timed, the echoed timestamp
    /// (RFC 7323 4.1 RTTM), which stays unambiguous across retransmissions.
    /// Returns this ACK's RTT sample for HyStart++: the precise one, or the
    /// timestamp echo (millisecond resolution) when no segment was timed.
    fn sample_rtt(&mut self, now: Instant, seg: &TcpRepr) -> Option<Duration> {
        if let Some((end, at)) = self.timed
            && seg.ack >= end
        {
            let r = now.saturating_duration_since(at);
            self.rtt.sample(r);
            self.timed = None;
            return Some(r);
        }
        let echo = match (self.ts.peer, seg.options.timestamps) {
            (Some(_), Some((_, ecr))) if ecr != 0 => {
                let ms = self.ts_now(now).wrapping_sub(ecr) as i32;
                (ms >= 0).then(|| Duration::from_millis(ms as u64))
            }
            _ => None,
        };
        if self.timed.is_none()
            && let Some(r) = echo
            && r > Duration::ZERO
        {
            self.rtt.sample(r);
        }
        echo
    }

    /// The segment text (RFC 9293 seventh check): in-order data is
    /// appended, out-of-order data kept in the window (bounded), duplicates
    /// reported with D-SACK; ACKs are delayed for in-order data (every
    /// second full segment at the latest) and immediate otherwise.
    fn receive_data(&mut self, now: Instant, seg_seq: SeqNum, payload: &[u8]) {
        let mut seq = seg_seq;
        let mut data = payload;
        if seq < self.rcv.nxt {
            let skip = self.rcv.nxt.since(seq);
            if skip >= data.len() {
                return;
            }
            if self.sack_ok {
                self.rcv.dsack = Some((seq, self.rcv.nxt));
            }
            data = &data[skip..];
            seq = self.rcv.nxt;
        }
        // Text beyond the right edge we offered is trimmed (RFC 9293
        // 3.10.7.4: only the part inside the window is processed): a peer
        // can make us hold no more than we advertised.
        let offset = seq.since(self.rcv.nxt);
        let room = self.rcv.buf.window().min(self.rcv.adv.since(self.rcv.nxt));
        if offset >= room {
            self.rcv.ack_now = true;
            return;
        }
        let data = &data[..data.len().min(room - offset)];
        self.measure_rcv_mss(data.len());
        let advanced = match self.rcv.buf.insert(offset, data) {
            Ok(n) => n,
            Err(crate::buffer::InsertError::NoMemory) => {
                // The memory budget refused: drop (the sender retransmits).
                self.alarms.data_dropped_no_memory += 1;
                return;
            }
            Err(_) => {
                // Too many separate holes, or the out-of-order store is
                // full: drop; the sender will retransmit.
                self.alarms.out_of_order_dropped += 1;
                self.rcv.ack_now = true;
                return;
            }
        };
        self.rcv.nxt += advanced;
        self.stats.bytes_received += advanced as u64;
        if self.rcv.read_shut {
            let n = self.rcv.buf.readable();
            self.rcv.buf.consume(n);
        }
        if offset > 0 {
            // RFC 5681 4.2: "A TCP receiver SHOULD send an immediate
            // duplicate ACK when an out-of-order segment arrives."
            self.stats.out_of_order += 1;
            self.rcv.ack_now = true;
        } else if advanced > data.len() || !self.rcv.buf.assembler().is_empty() {
            // "...SHOULD send an immediate ACK when the incoming segment
            // fills in all or part of a gap in the sequence space."
            self.rcv.ack_now = true;
        } else {
            // RFC 5681 4.2 / RFC 1122 4.2.3.2: delay, but "an ACK SHOULD be
            // generated for at least every second full-sized segment": as
            // on Linux, once more than one segment's worth (by the
            // estimate of the peer's MSS) is unacknowledged. A segment the
            // device coalesced (TAP receive offload) counts as the
            // segments it was on the wire.
            self.rcv.unacked_bytes += data.len();
            if self.rcv.quick_acks > 0 {
                // TCP_QUICKACK: this one is acknowledged at once.
                self.rcv.quick_acks -= 1;
                self.rcv.ack_now = true;
            } else if self.rcv.unacked_bytes > self.rcv.mss {
                self.rcv.ack_now = true;
            } else if !self.timers.is_set(Timer::DelayedAck) {
                self.timers
                    .set(Timer::DelayedAck, now + self.cfg.delayed_ack);
            }
        }
    }

    /// Estimates the peer's segment size from a segment of `len` bytes, as
    /// Linux's `tcp_measure_rcv_mss`: a larger segment raises the estimate
    /// (up to our MSS: a coalesced receive-offload segment is larger than
    /// any on the wire); two smaller ones of the same size in a row (not
    /// below the RFC 9293 default of 536, so a short write's remnant does
    /// not count) lower it.
    fn measure_rcv_mss(&mut self, len: usize) {
        let ours = self.cfg.mss as usize;
        if len >= self.rcv.mss {
            self.rcv.mss = len.min(ours);
        } else if len >= 536 {
            if len == self.rcv.last_seg_size {
                self.rcv.mss = len;
            }
            self.rcv.last_seg_size = len;
        }
    }

    /// The peer's urgent pointer says urgent data ends before `up`.
    pub(crate) fn note_urgent(&mut self, up: SeqNum) {
        if self.rcv.up.is_none_or(|r| up > r) && up > self.rcv.nxt - self.rcv.buf.readable() {
            self.rcv.up = Some(up);
            self.stats.urgent_received += 1;
        }
    }

    /// Consumes the peer's FIN once all data before it has arrived.
    fn check_remote_fin(&mut self, now: Instant) {
        let Some(fin) = self.rcv.remote_fin else {
            return;
        };
        if self.rcv.read_eof || fin != self.rcv.nxt {
            return;
        }
        self.rcv.nxt += 1;
        self.rcv.read_eof = true;
        self.rcv.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    self.set_state(State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    pub(crate) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::Persist);
        self.timers.stop(Timer::KeepAlive);
        self.timers.stop(Timer::DelayedAck);
        self.timers.set(Timer::Close, now + 2 * self.cfg.msl);
    }

    /// Our SYN (or SYN-ACK) is acknowledged by `ack`: ESTABLISHED, or
    /// FIN-WAIT-1 when the application shut down its write side while
    /// connecting.
    fn syn_acknowledged(&mut self, now: Instant, ack: SeqNum) {
        if let Some((end, at)) = self.timed.take()
            && ack >= end
        {
            self.rtt.sample(now.saturating_duration_since(at));
        }
        self.snd.una = ack;
        self.snd.wl2 = ack;
        self.timers.stop(Timer::Retransmit);
        let syn_lost = std::mem::take(&mut self.snd.syn_retries) > 0;
        self.recovery.scoreboard.clear(self.snd.una);
        self.set_state(State::Established);
        self.on_established(now, syn_lost);
        if self.snd.fin_queued {
            // A shutdown(SHUT_WR) before the handshake completed queued the
            // FIN (RFC 9293 3.10.4: "queue for processing after entering
            // ESTABLISHED state"): data, then the FIN; now we are closing.
            self.set_state(State::FinWait1);
        }
    }

    /// Set-up that needs the negotiated options: sender MSS (limited by the
    /// path MTU before the congestion window is sized from it), initial
    /// window, keep-alive. `syn_lost`: our SYN or SYN-ACK was
    /// retransmitted.
    pub(crate) fn on_established(&mut self, now: Instant, syn_lost: bool) {
        self.update_smss(self.snd.path_mtu);
        self.cc.ctrl.init(self.snd.smss);
        if syn_lost {
            // RFC 5681 3.1: one segment; RFC 6298 5.7: a 3 s RTO unless an
            // RTT was measured since.
            self.cc.ctrl.set_loss_window();
            self.rtt.fall_back_after_syn_loss();
        }
        self.cc.ready = true;
        self.stats.cwnd = self.cc.ctrl.cwnd();
        if let Some(k) = self.cfg.keepalive {
            self.timers.set(Timer::KeepAlive, now + k.idle);
        }
    }
}
