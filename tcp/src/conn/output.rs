//! Segment transmission: the SYN and SYN-ACK, new data under the peer's
//! window and the congestion window (Nagle, SWS avoidance), loss recovery
//! retransmissions (RFC 6675 NextSeg), zero-window and keep-alive probes,
//! ACKs and window updates. The timers that trigger some of these are in
//! `timers.rs`.

use std::time::Instant;

use super::recovery::Recovery;
use super::timers::Timer;
use super::{Connection, State};
use crate::segment::{Flags, TcpOptions, TcpRepr};
use crate::seq::SeqNum;

/// What to send next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Retransmit lost data (RFC 6675 NextSeg rule 1).
    Retransmit { seq: SeqNum, len: usize },
    /// The rescue retransmission (rule 4).
    Rescue { seq: SeqNum, len: usize },
    /// A retransmission found lost, sent again (before rule 1: it holds
    /// back the cumulative ACK).
    Again { seq: SeqNum, len: usize },
    /// A tail loss probe in fast recovery: the highest segment not SACKed
    /// sent again (RFC 8985 7.3 "the highest-sequence segment").
    Probe { seq: SeqNum, len: usize },
    /// New data (rule 2), possibly with the FIN, in segments of `mss`
    /// bytes (`len` may span several: a super segment).
    New { len: usize, fin: bool, mss: usize },
}

/// Why sending stopped.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Blocked {
    /// The congestion window is (nearly) full.
    pub cwnd: bool,
    /// The peer's window is zero.
    pub zero_window: bool,
    /// TCP_CORK holds a partial segment.
    pub corked: bool,
}

/// tcp(7) on TCP_CORK: "there is a 200 millisecond ceiling on the time for
/// which output is corked by TCP_CORK. If this ceiling is reached, then
/// queued data is automatically transmitted."
pub(crate) const CORK_CEILING: std::time::Duration = std::time::Duration::from_millis(200);

/// Full segments of new data a tail loss probe may carry (see `plan`): two,
/// which a receiver acknowledges at once rather than after its delayed-ACK
/// timeout.
pub(crate) const TLP_NEW_SEGMENTS: usize = 2;

/// A segment to emit: header plus which bytes of the send buffer it carries.
struct Out {
    repr: TcpRepr,
    offset: usize,
    len: usize,
    /// Payload bytes per segment on the wire (`len` may be a multiple).
    mss: usize,
}

impl Connection {
    /// Sends whatever is due: runs expired timers, then emits segments
    /// through `emit` (header, payload in up to two slices; returns false if
    /// the segment could not be handed to IP). `path_mtu` is the current MTU
    /// towards the peer (link MTU or a smaller learned path MTU).
    pub fn poll_transmit<F>(&mut self, now: Instant, path_mtu: usize, mut emit: F)
    where
        F: FnMut(&TcpRepr, &[u8], &[u8]) -> bool,
    {
        self.poll_transmit_burst(now, path_mtu, 0, |seg, a, b, _| emit(seg, a, b));
    }

    /// [`poll_transmit`](Self::poll_transmit) for a device with
    /// segmentation offload: new data may leave in super segments of up to
    /// `burst` bytes (whole segments, within cwnd and the peer's window),
    /// which the device cuts into segments of the size `emit` is given as
    /// its last argument. Retransmissions, probes and control segments stay
    /// single segments. `burst` 0 means no super segments.
    pub fn poll_transmit_burst<F>(
        &mut self,
        now: Instant,
        path_mtu: usize,
        burst: usize,
        mut emit: F,
    ) where
        F: FnMut(&TcpRepr, &[u8], &[u8], usize) -> bool,
    {
        self.snd.burst = burst;
        self.snd.path_mtu = path_mtu;
        if self.cc.ready {
            let before = self.snd.smss;
            self.update_smss(path_mtu);
            if self.snd.smss != before {
                // The congestion window follows the sender MSS.
                self.cc.ctrl.set_mss(self.snd.smss);
            }
        }
        self.handle_timeout(now);
        self.restart_after_idle(now);
        if let Some(rst) = self.pending_rst.take() {
            self.stats.segments_sent += 1;
            emit(&rst, &[], &[], 0);
        }
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent => {
                if self.snd.syn_pending {
                    let syn = self.syn_segment(now, false);
                    self.sent(now, &syn);
                    emit(&syn, &[], &[], 0);
                }
                return;
            }
            State::SynReceived => {
                if self.snd.syn_pending || self.rcv.ack_now {
                    let synack = self.syn_segment(now, true);
                    self.sent(now, &synack);
                    emit(&synack, &[], &[], 0);
                }
                return;
            }
            _ => {}
        }
        let mut carried_ack = false;
        // Bounded: a single poll never emits more than a window's worth.
        for _ in 0..4096 {
            let idle = self.snd.nxt == self.snd.una;
            let Some(out) = self.next_segment(now) else {
                break;
            };
            carried_ack = true;
            self.sent(now, &out.repr);
            if out.len > 0 {
                self.pacing_sent(now, out.len, idle);
            }
            let (a, b) = self.snd.buf.slices(out.offset, out.len);
            emit(&out.repr, a, b, out.mss);
        }
        self.rate_check_app_limited();
        if self.probe.send_now {
            // Zero-window or keep-alive probe: an old sequence number and no
            // data, which the peer answers with an ACK carrying its window.
            self.probe.send_now = false;
            let probe = self.control(now, self.snd.una - 1, Flags::ACK);
            self.sent(now, &probe);
            emit(&probe, &[], &[], 0);
            carried_ack = true;
        }
        if self.rcv.ack_now && !carried_ack {
            let ack = self.control(now, self.snd.nxt, Flags::ACK);
            self.sent(now, &ack);
            emit(&ack, &[], &[], 0);
        }
    }

    /// Bookkeeping for every segment sent.
    fn sent(&mut self, now: Instant, repr: &TcpRepr) {
        self.stats.segments_sent += 1;
        self.last_sent_at = now;
        if repr.flags.ack() {
            self.rcv.last_ack_sent = repr.ack;
            self.rcv.ack_now = false;
            self.timers.stop(Timer::DelayedAck);
            self.rcv.unacked_bytes = 0;
            self.rcv.dsack = None;
        }
        if repr.flags.syn() {
            self.snd.syn_pending = false;
            self.snd.nxt = self.snd.nxt.max(self.snd.iss + 1);
            if !self.timers.is_set(Timer::Retransmit) {
                self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            }
            if self.snd.syn_retries == 0 && self.timed.is_none() {
                self.timed = Some((self.snd.iss + 1, now));
            }
        }
    }

    /// The sender MSS: the peer's MSS limited by the path MTU, minus the
    /// timestamp option carried by every segment.
    pub(crate) fn update_smss(&mut self, path_mtu: usize) {
        let mtu_mss = path_mtu.saturating_sub(40);
        let options = if self.ts.peer.is_some() { 12 } else { 0 };
        // Our MSS bounds what we send too: Linux clamps the peer's MSS to
        // TCP_MAXSEG (`user_mss`, tcp_parse_options: "if (opt_rx->user_mss
        // && opt_rx->user_mss < in_mss) in_mss = opt_rx->user_mss"). Left
        // at the link's MTU - 40 it is no bound beyond the path MTU's.
        self.snd.smss = self
            .snd
            .peer_mss
            .min(mtu_mss)
            .min(self.cfg.mss as usize)
            .saturating_sub(options)
            .max(64);
    }

    fn syn_segment(&mut self, now: Instant, synack: bool) -> TcpRepr {
        let mut options = TcpOptions {
            mss: Some(self.cfg.mss),
            ..TcpOptions::default()
        };
        if synack {
            // RFC 7323: options in a SYN-ACK only if the SYN carried them.
            if self.rcv.wscale > 0 || self.snd.wscale > 0 {
                options.window_scale = Some(self.rcv.wscale);
            }
            options.sack_permitted = self.sack_ok;
            options.timestamps = self.ts.peer.map(|ts| (self.ts_now(now), ts.recent));
        } else {
            if self.cfg.window_scale > 0 {
                options.window_scale = Some(self.cfg.window_scale.min(14));
            }
            options.sack_permitted = self.cfg.sack;
            if self.cfg.timestamps {
                options.timestamps = Some((self.ts_now(now), 0));
            }
        }
        // RFC 7323 2.2: the window field of a SYN is never scaled.
        let window = self.advertisable_window().min(65_535);
        let mut flags = Flags::SYN;
        let mut ack = SeqNum(0);
        if synack {
            flags |= Flags::ACK;
            ack = self.rcv.nxt;
            self.rcv.adv = self.rcv.nxt + window;
        }
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.snd.iss,
            ack,
            flags: Flags(flags),
            window: window as u16,
            options,
            urgent: 0,
        }
    }

    /// A segment without data (ACK, probe) at `seq`.
    fn control(&mut self, now: Instant, seq: SeqNum, flags: u8) -> TcpRepr {
        let mut repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: self.rcv.nxt,
            flags: Flags(flags),
            window: 0,
            options: TcpOptions::default(),
            urgent: 0,
        };
        self.fill_ack_fields(now, &mut repr);
        repr
    }

    /// Window, timestamps, SACK blocks and the urgent pointer of an
    /// ACK-carrying segment.
    fn fill_ack_fields(&mut self, now: Instant, repr: &mut TcpRepr) {
        repr.window = self.window_field();
        // RFC 9293 3.8.5: while urgent data is outstanding every segment
        // says where it ends; a pointer beyond 65,535 octets cannot be
        // expressed, and 65,535 stands for "further on" (as on Linux) until
        // a later segment can name the exact end.
        if let Some(up) = self.snd.up
            && repr.seq < up
        {
            repr.flags = Flags(repr.flags.0 | Flags::URG);
            repr.urgent = up.since(repr.seq).min(0xffff) as u16;
        }
        if let Some(ts) = self.ts.peer {
            repr.options.timestamps = Some((self.ts_now(now), ts.recent));
        }
        if self.sack_ok {
            self.fill_sack_blocks(&mut repr.options);
        }
    }

    /// RFC 2018 4 / RFC 2883: a D-SACK block first if a duplicate arrived,
    /// then the out-of-order ranges, most recent first; 3 blocks fit next to
    /// the timestamp option, 4 without it.
    fn fill_sack_blocks(&mut self, options: &mut TcpOptions) {
        let max = if options.timestamps.is_some() { 3 } else { 4 };
        if let Some((l, r)) = self.rcv.dsack {
            options.push_sack(l, r);
        }
        if self.rcv.buf.assembler().is_empty() {
            return;
        }
        let mut ranges = std::mem::take(&mut self.sack_scratch);
        let room = max - options.sack_count as usize;
        self.rcv.buf.assembler().by_recency(&mut ranges, room);
        for &(start, end) in &ranges {
            if options.sack_count as usize >= max {
                break;
            }
            options.push_sack(self.rcv.nxt + start, self.rcv.nxt + end);
        }
        self.sack_scratch = ranges;
    }

    /// The window to advertise, scaled for the header. RFC 9293 3.8.6.2.2
    /// (receiver SWS avoidance): the right edge only moves when it can move
    /// by min(buffer/2, MSS); RFC 7323 2.4: it never moves left. The edge
    /// advertised is recorded exactly and never exceeds the space the
    /// receive buffer really has.
    fn window_field(&mut self) -> u16 {
        let free = self.advertisable_window();
        let current = self.rcv.adv.since(self.rcv.nxt);
        let step = (self.cfg.recv_buffer / 2).min(self.cfg.mss as usize);
        let wnd = if free >= current + step {
            free
        } else {
            current
        };
        let shift = self.rcv.wscale;
        let unit = 1usize << shift;
        let mut field = wnd >> shift;
        if field << shift < current {
            // Keeping the old edge needs rounding up...
            field = current.div_ceil(unit);
        }
        // ...but never past the space really there (the buffer holds one
        // scaling unit of slack beyond what is offered).
        field = field.min(self.rcv.buf.window() >> shift).min(65_535);
        // That cap can put the field's edge up to one unit left of the
        // edge already offered (rounding up to keep it ate the slack). The
        // peer may send up to the old edge, and the buffer still has room
        // for it: keep accepting up to there (RFC 9293 3.8.6: do not
        // shrink), or with a zero window every segment of the peer's, its
        // ACKs included, is unacceptable and both sides stall.
        let edge = self.rcv.nxt + (field << shift);
        if edge >= self.rcv.adv || current > self.rcv.buf.window() {
            self.rcv.adv = edge;
        }
        field as u16
    }

    /// Decides what to send next without changing anything, so that
    /// [`poll_at`](Connection::poll_at) and transmission always agree.
    /// RFC 6675 NextSeg: (1) lost data, (2) new data, (4) the rescue
    /// retransmission.
    pub(crate) fn plan(&self) -> (Option<Plan>, Blocked) {
        let mut blocked = Blocked::default();
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) || self.error.is_some()
        {
            return (None, blocked);
        }
        // Segments carrying SACK blocks have less room for data (Linux's
        // tcp_current_mss does the same): the frame must still fit the MTU.
        let mss = self.snd.smss.saturating_sub(self.sack_overhead()).max(1);
        let cwnd = self.cc.ctrl.cwnd();
        let pipe = self.pipe();
        // What may be sent now: in fast recovery, PRR's sndcnt (RFC 6937)
        // unless the algorithm sets the recovery window itself; otherwise
        // the room cwnd leaves above the pipe.
        let room = if matches!(self.recovery.phase, Some(Recovery::Fast { .. }))
            && !self.cc.ctrl.owns_recovery_window()
        {
            self.recovery.prr.sndcnt
        } else {
            cwnd.saturating_sub(pipe)
        };
        // A tail loss probe (RFC 8985 7.3): new data if the peer's window
        // allows (whatever cwnd says), else the last segment sent again.
        //
        // Unlike RFC 8985 ("transmit that new segment"), the probe carries
        // up to two full segments of new data when there are that many. A
        // receiver may delay its ACK of one in-order segment (RFC 9293
        // 3.8.6.3; Linux by at least 40 ms, TCP_DELACK_MIN) but SHOULD
        // acknowledge every second full-sized one at once (RFC 5681 4.2).
        // The probe's most common cause is a lost ACK at the end of a
        // flight: then the probe's data is in order, and a lone segment
        // left the sender idle for the delayed ACK (issue 21: 15 of 22 lost
        // ACKs cost 40 ms each, three quarters of a 32 MiB transfer's time
        // under 1% loss). If data was lost instead, the probe arrives out
        // of order and is acknowledged at once either way.
        if self.recovery.tlp_due || self.recovery.tlp_follow {
            let unsent = self.data_end().since(self.snd.nxt);
            let wnd_room = (self.snd.una + self.snd.wnd).since(self.snd.nxt);
            // Both segments in one super segment where the device cuts
            // them (not in urgent mode, see below), else one at a time.
            let most = if !self.recovery.tlp_follow
                && self.snd.burst >= TLP_NEW_SEGMENTS * mss
                && self.snd.up.is_none()
            {
                TLP_NEW_SEGMENTS * mss
            } else {
                mss
            };
            let len = unsent.min(most).min(wnd_room);
            if len > 0 {
                let fin = self.snd.fin_queued
                    && !self.snd.fin_sent
                    && self.snd.nxt + len == self.data_end();
                return (Some(Plan::New { len, fin, mss }), blocked);
            }
        }
        if self.recovery.tlp_due {
            // In fast recovery (where only this crate probes, see
            // `arm_pto`), the highest segment not SACKed: the last one if
            // the peer's final ACK was lost, else the highest hole.
            if matches!(self.recovery.phase, Some(Recovery::Fast { .. }))
                && let Some((seq, len)) =
                    self.recovery
                        .scoreboard
                        .highest_unsacked(self.snd.una, self.snd.nxt, mss)
            {
                return (Some(Plan::Probe { seq, len }), blocked);
            }
            let outstanding = self.snd.nxt.since(self.snd.una);
            if outstanding > 0 {
                let len = outstanding.min(mss);
                return (
                    Some(Plan::Retransmit {
                        seq: self.snd.nxt - len,
                        len,
                    }),
                    blocked,
                );
            }
        }
        // Rule 1: retransmit lost data (fast recovery, after a timeout, or
        // the first retransmission on entering recovery, which RFC 6675 5
        // step 4.2 sends whatever the pipe). Retransmissions found lost go
        // first: they hold back the cumulative ACK.
        if self.recovery.retransmit_now || self.recovery.phase.is_some() && room >= mss {
            if let Some((seq, len)) = self.recovery.scoreboard.peek_again(self.snd.una, mss) {
                return (Some(Plan::Again { seq, len }), blocked);
            }
            if let Some((seq, len)) = self.recovery.scoreboard.next_lost(self.snd.una, mss) {
                return (Some(Plan::Retransmit { seq, len }), blocked);
            }
        }
        // Rule 2: new data, within the peer's window and cwnd.
        let unsent = self.data_end().since(self.snd.nxt);
        let fin_unsent = self.snd.fin_queued && !self.snd.fin_sent;
        if unsent == 0 && !fin_unsent {
            return (self.plan_rescue(mss, room), blocked);
        }
        let wnd_room = (self.snd.una + self.snd.wnd).since(self.snd.nxt);
        let cwnd_room = room;
        // No super segments while urgent data is outstanding: the device
        // would copy the urgent pointer into every segment it cuts, where
        // it would point too far (Linux does not use TSO in urgent mode).
        let most = if self.snd.burst > mss && self.snd.up.is_none() {
            self.pacing_super_segment(self.snd.burst / mss * mss, mss)
        } else {
            mss
        };
        let mut len = unsent.min(most).min(wnd_room);
        // TCP_CORK (Linux TCP_NAGLE_CORK in tcp_nagle_check): no partial
        // segment while corked, NODELAY or not; a FIN or the 200 ms
        // ceiling lets it go.
        let cork_holds = self.cfg.cork && !self.snd.cork_expired && !fin_unsent;
        if cork_holds && len == unsent && len % mss != 0 {
            if len < mss {
                blocked.corked = true;
                return (None, blocked);
            }
            len = len / mss * mss;
        }
        if len > mss {
            // A super segment: whole segments that cwnd and the peer's
            // window allow; only the end of the data may be a short one.
            let fit = cwnd_room / mss * mss;
            if len > fit {
                len = fit.max(mss);
            } else if len < unsent {
                len = len / mss * mss;
            }
        }
        if len > cwnd_room {
            // RFC 5681: never more than cwnd in flight; a partial segment is
            // not sent just to fill the last bytes of cwnd.
            blocked.cwnd = true;
            return (self.plan_rescue(mss, room), blocked);
        }
        if unsent > 0 && len == 0 {
            // Zero window: the persist timer probes it (RFC 9293 3.8.6.1).
            blocked.zero_window = true;
            return (None, blocked);
        }
        let in_flight = self.snd.nxt > self.snd.una;
        // Sender SWS avoidance (RFC 9293 3.8.6.2.1): a segment cut short by
        // the peer's window goes out only if it is at least half the
        // largest window the peer offered, or nothing is in flight.
        if len < mss && len < unsent && in_flight && len < self.snd.max_wnd / 2 {
            return (None, blocked);
        }
        if len > 0 && len == unsent && len < mss && !self.nagle_allows(unsent) {
            return (None, blocked);
        }
        let fin = fin_unsent && self.snd.nxt + len == self.data_end();
        if len == 0 && !fin {
            return (None, blocked);
        }
        blocked.cwnd = cwnd_room < len + 2 * mss;
        (Some(Plan::New { len, fin, mss }), blocked)
    }

    /// Option bytes the SACK blocks of our next ACK will take (a D-SACK
    /// block first, then out-of-order ranges; 3 fit beside timestamps).
    fn sack_overhead(&self) -> usize {
        if !self.sack_ok {
            return 0;
        }
        let max = if self.ts.peer.is_some() { 3 } else { 4 };
        let blocks = (self.rcv.dsack.is_some() as usize + self.rcv.buf.assembler().len()).min(max);
        if blocks == 0 { 0 } else { 4 + 8 * blocks }
    }

    fn plan_rescue(&self, mss: usize, room: usize) -> Option<Plan> {
        if !matches!(self.recovery.phase, Some(Recovery::Fast { .. })) || room < mss {
            return None;
        }
        let (seq, len) = self
            .recovery
            .scoreboard
            .peek_rescue(self.snd.una, self.snd.nxt, mss)?;
        Some(Plan::Rescue { seq, len })
    }

    /// Builds the next segment to send, if any.
    fn next_segment(&mut self, now: Instant) -> Option<Out> {
        let (plan, blocked) = self.plan();
        self.cc.cwnd_limited = blocked.cwnd;
        if blocked.corked && !self.timers.is_set(Timer::Cork) && !self.snd.cork_expired {
            self.timers.set(Timer::Cork, now + CORK_CEILING);
        }
        if blocked.zero_window
            && self.snd.nxt == self.snd.una
            && !self.timers.is_set(Timer::Persist)
        {
            self.timers
                .set(Timer::Persist, now + self.persist_interval());
            self.probe.persist_since.get_or_insert(now);
        }
        if let Some(p) = &plan
            && self.pacing_holds(now, p)
        {
            // Paced: the segment waits for its release time (poll_at
            // reports it); flags asking for it stay set.
            self.stats.pacing_waits += 1;
            return None;
        }
        let Some(plan) = plan else {
            self.recovery.retransmit_now = false;
            self.recovery.tlp_due = false;
            self.recovery.tlp_follow = false;
            return None;
        };
        if self.recovery.tlp_follow {
            // The probe's second segment: its episode ends after it.
            self.recovery.tlp_follow = false;
            if let Plan::New { len, fin, .. } = plan {
                self.recovery.tlp_end = Some(self.snd.nxt + len + usize::from(fin));
            }
        } else if self.recovery.tlp_due {
            self.recovery.tlp_due = false;
            // One segment of new data where two were allowed: the second
            // follows (see `plan`).
            self.recovery.tlp_follow = matches!(plan, Plan::New { len, fin: false, mss }
                if len == mss && self.data_end().since(self.snd.nxt + len) > 0);
            self.stats.tail_loss_probes += 1;
            let first = self.recovery.tlp_end.is_none();
            self.recovery.tlp_sent = if first { 1 } else { self.recovery.tlp_sent + 1 };
            // RFC 8985 7.4.2: "TLP.end_seq = SND.NXT" once the probe is
            // sent (set now: sending arms the probe timer, which an open
            // episode keeps off).
            self.recovery.tlp_end = Some(match plan {
                Plan::New { len, fin, .. } => self.snd.nxt + len + usize::from(fin),
                _ => self.snd.nxt,
            });
            // RFC 8985 7.4.2: "TLP.is_retrans = TRUE" for a retransmission
            // (outside fast recovery only: see `tlp_on_ack`).
            // A second probe of new data leaves the first's mark.
            self.recovery.tlp_retrans = match plan {
                Plan::Retransmit { seq, len } if self.recovery.phase.is_none() => {
                    Some((seq, seq + len))
                }
                _ if first => None,
                _ => self.recovery.tlp_retrans,
            };
            // RFC 8985 7.3: "arm the RTO timer" once the probe is sent.
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        if matches!(self.recovery.phase, Some(Recovery::Fast { .. })) {
            // RFC 6937 3: "On any data transmission or retransmission:
            // prr_out += (data sent)".
            let len = match plan {
                Plan::Retransmit { len, .. }
                | Plan::Again { len, .. }
                | Plan::Rescue { len, .. }
                | Plan::Probe { len, .. } => len,
                Plan::New { len, .. } => len,
            };
            self.recovery.prr.out += len;
            self.recovery.prr.sndcnt = self.recovery.prr.sndcnt.saturating_sub(len);
        }
        match plan {
            Plan::Retransmit { seq, len } => {
                self.recovery.retransmit_now = false;
                Some(self.retransmission(now, seq, len, true))
            }
            Plan::Again { seq, len } => {
                self.recovery.retransmit_now = false;
                Some(self.retransmission(now, seq, len, false))
            }
            Plan::Rescue { seq, len } => {
                self.recovery.scoreboard.mark_rescued();
                Some(self.retransmission(now, seq, len, false))
            }
            Plan::Probe { seq, len } => Some(self.retransmission(now, seq, len, false)),
            Plan::New { len, fin, mss } => {
                self.recovery.retransmit_now = false;
                let seq = self.snd.nxt;
                let mut flags = Flags::ACK;
                if fin {
                    flags |= Flags::FIN;
                    self.snd.fin_sent = true;
                    self.snd.fin_seq = Some(seq + len);
                }
                if len > 0 && seq + len == self.data_end() {
                    flags |= Flags::PSH;
                }
                let offset = seq.since(self.send_buf_seq());
                self.snd.nxt = seq + len + fin as usize;
                if seq + len >= self.data_end() {
                    // Nothing held back by TCP_CORK any more.
                    self.timers.stop(Timer::Cork);
                    self.snd.cork_expired = false;
                }
                self.stats.bytes_sent += len as u64;
                if len > 0 {
                    self.snd.last_data_sent_at = Some(now);
                }
                if self.timed.is_none() && len > 0 {
                    self.timed = Some((seq + len, now));
                }
                self.recovery
                    .rack
                    .on_send(now, seq, seq + len + fin as usize);
                self.rate
                    .on_send(now, seq, seq + len + fin as usize, seq == self.snd.una);
                self.arm_rtx(now);
                let mut repr = self.control(now, seq, flags);
                repr.flags = Flags(flags | (repr.flags.0 & Flags::URG));
                Some(Out {
                    repr,
                    offset,
                    len,
                    mss,
                })
            }
        }
    }

    /// A retransmission of sequence space [seq, seq+len), which may cover
    /// the FIN. `next_seg`: chosen by RFC 6675 NextSeg rule (1) (lost
    /// data), so HighRxt moves past it; a rescue retransmission (rule 4:
    /// "HighRxt MUST NOT be updated") or a tail loss probe at the top of
    /// the flight leaves HighRxt where it is, else every hole below it
    /// that RACK finds lost later would be out of rule (1)'s reach ("S2 is
    /// greater than HighRxt") until the retransmission timer.
    fn retransmission(&mut self, now: Instant, seq: SeqNum, len: usize, next_seg: bool) -> Out {
        // HighRxt and the retransmission log belong to a recovery episode; a
        // tail loss probe outside recovery leaves them alone (it would
        // otherwise make SetPipe count the whole flight twice).
        if self.recovery.phase.is_some() || self.recovery.retransmit_now {
            let at = self.recovery.rack.micros(now);
            self.recovery
                .scoreboard
                .on_retransmit_at(seq, len, self.snd.nxt, at, next_seg);
        } else if seq + len >= self.snd.nxt {
            // A tail loss probe sending the last segment again.
            self.recovery.rack.on_probe_retransmit(now, seq, seq + len);
        }
        // Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-
        // estimation 3.2): retransmissions take a fresh snapshot too.
        self.rate.on_retransmit(now, seq, seq + len);
        let data_end = self.data_end();
        let data_len = (seq + len).min(data_end).since(seq);
        let mut flags = Flags::ACK;
        if self.snd.fin_sent && seq + len > data_end {
            flags |= Flags::FIN;
        }
        // Karn's rule: a timed segment that is retransmitted gives no sample.
        if let Some((end, _)) = self.timed
            && seq < end
        {
            self.timed = None;
        }
        self.stats.bytes_retransmitted += data_len as u64;
        match self.recovery.phase {
            Some(Recovery::Timeout { .. }) => self.stats.retrans_rto += 1,
            _ => self.stats.retrans_fast += 1,
        }
        self.arm_rtx(now);
        let offset = seq.since(self.send_buf_seq());
        let mut repr = self.control(now, seq, flags);
        repr.flags = Flags(flags | (repr.flags.0 & Flags::URG));
        Out {
            repr,
            offset,
            len: data_len,
            mss: data_len,
        }
    }

    /// RFC 5681 4.1: "a TCP SHOULD set cwnd to no more than RW before
    /// beginning transmission if the TCP has not sent data in an interval
    /// exceeding the retransmission timeout" (RW = min(IW, cwnd)).
    fn restart_after_idle(&mut self, now: Instant) {
        if !self.cc.ready || self.snd.nxt != self.snd.una {
            return;
        }
        let Some(last) = self.snd.last_data_sent_at else {
            return;
        };
        if self.data_end() > self.snd.nxt && now.saturating_duration_since(last) > self.rtt.rto() {
            self.cc.ctrl.on_idle_restart();
            self.snd.last_data_sent_at = Some(now);
        }
    }
}
