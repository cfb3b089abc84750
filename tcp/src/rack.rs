//! RACK (RFC 8985 6): loss detection by time. A segment is lost once a
//! segment sent after it has been delivered (cumulatively acknowledged or
//! SACKed) and a reordering window has passed beyond one round trip since
//! it was sent.
//!
//! The transmit times of first transmissions are kept in a ring of records
//! in sending order, which is also sequence order (new data only ever
//! leaves at SND.NXT): (start, end, time sent). Segments sent in the same
//! instant share one record (a super segment, or a burst sent in one poll),
//! so a window of data is held in a few records; the ring never holds more
//! than [`MAX_RECORDS`] (beyond that the newest record grows, which only
//! makes RACK wait longer for its older bytes). Once the ring has grown to
//! the flight's size it is reused: no allocation per segment.
//!
//! Because the records are in time order, the segments RACK finds lost are
//! always a prefix of them, so loss is handed to the SACK scoreboard as a
//! boundary (every unSACKed octet below it is lost), found by binary
//! search: O(log n) per ACK. Retransmissions are logged by the scoreboard
//! with their transmit times, and the same rule applies to them
//! ([`crate::sack::Scoreboard::detect_lost_retransmissions_by`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::SeqNum;

/// Most transmission records kept per connection.
pub(crate) const MAX_RECORDS: usize = 4096;

/// RFC 8985 6.2: the reordering window grows by a quarter of the minimum
/// RTT for every round trip that saw a D-SACK, and falls back after this
/// many recoveries without one ("RACK.reo_wnd_persist = 16").
const REO_WND_PERSIST: u32 = 16;

/// Transmit times are microseconds since the connection's epoch, wrapping
/// (about 71 minutes; every comparison is between times seconds apart).
pub(crate) type Micros = u32;

/// True when `a` is later than `b`.
pub(crate) fn later(a: Micros, b: Micros) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// One or more segments of new data sent in the same instant.
#[derive(Clone, Copy, Debug)]
struct Record {
    start: SeqNum,
    end: SeqNum,
    at: Micros,
    /// Sent again by a tail loss probe (its delivery is ambiguous).
    retransmitted: bool,
}

/// The RACK state of one connection (RFC 8985 6.1 "per-connection state").
#[derive(Clone, Debug)]
pub(crate) struct Rack {
    epoch: Instant,
    /// First transmissions not yet cumulatively acknowledged, oldest first.
    sent: VecDeque<Record>,
    /// RACK.xmit_ts and RACK.end_seq: the most recently sent segment
    /// delivered so far.
    xmit: Option<(Micros, SeqNum)>,
    /// RACK.rtt: the RTT of that segment.
    rtt: Duration,
    /// RACK.fack: the highest sequence number delivered.
    fack: SeqNum,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.reo_wnd_mult.
    reo_wnd_mult: u32,
    /// RACK.reo_wnd_persist.
    reo_wnd_persist: u32,
    /// RACK.dsack_round.
    dsack_round: Option<SeqNum>,
    /// The ACK being processed: the timestamp it echoes and our timestamp
    /// clock's offset (RFC 8985 6.2 step 2 compares the echo with a
    /// retransmission's time).
    echo: Option<(u32, u32)>,
}

impl Rack {
    /// Fresh state; transmit times count from `epoch`.
    pub(crate) fn new(epoch: Instant, snd_una: SeqNum) -> Self {
        Rack {
            epoch,
            sent: VecDeque::new(),
            xmit: None,
            rtt: Duration::ZERO,
            fack: snd_una,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            echo: None,
        }
    }

    /// `now` as a transmit time.
    pub(crate) fn micros(&self, now: Instant) -> Micros {
        now.saturating_duration_since(self.epoch).as_micros() as Micros
    }

    fn instant(&self, at: Micros, now: Instant) -> Instant {
        // `at` is in the past of `now`, within the wrap period.
        let age = self.micros(now).wrapping_sub(at);
        now - Duration::from_micros(u64::from(age))
    }

    /// Heap bytes held.
    pub(crate) fn memory_used(&self) -> usize {
        self.sent.capacity() * std::mem::size_of::<Record>()
    }

    /// Number of transmission records held.
    #[cfg(test)]
    pub(crate) fn records(&self) -> usize {
        self.sent.len()
    }

    /// New data [start, end) left at `now`.
    pub(crate) fn on_send(&mut self, now: Instant, start: SeqNum, end: SeqNum) {
        if end <= start {
            return;
        }
        let at = self.micros(now);
        let full = self.sent.len() >= MAX_RECORDS;
        if let Some(last) = self.sent.back_mut()
            && last.end == start
            && (full || (!last.retransmitted && last.at == at))
        {
            last.end = end;
            last.at = at;
            return;
        }
        self.sent.push_back(Record {
            start,
            end,
            at,
            retransmitted: false,
        });
    }

    /// A tail loss probe sent [start, end) again, the last data sent: it
    /// becomes the newest record, marked retransmitted.
    pub(crate) fn on_probe_retransmit(&mut self, now: Instant, start: SeqNum, end: SeqNum) {
        while let Some(last) = self.sent.back_mut() {
            if last.start >= start {
                self.sent.pop_back();
            } else {
                last.end = last.end.min(start);
                break;
            }
        }
        self.sent.push_back(Record {
            start,
            end,
            at: self.micros(now),
            retransmitted: true,
        });
    }

    /// RFC 8985 6.2 step 2 for one delivered segment sent at `at` and ending
    /// at `end`: "If Segment.retransmitted is TRUE ... If rtt <
    /// RACK.min_RTT: Return" (the ACK is probably for the original);
    /// otherwise RACK.xmit_ts and RACK.end_seq follow the most recently
    /// sent delivered segment, and RACK.rtt is its RTT.
    fn advance(
        &mut self,
        now: Instant,
        at: Micros,
        end: SeqNum,
        retransmitted: bool,
        cumulative: bool,
        min_rtt: Option<Duration>,
    ) {
        let rtt = Duration::from_micros(u64::from(self.micros(now).wrapping_sub(at)));
        if retransmitted && min_rtt.is_none_or(|m| rtt < m) {
            return;
        }
        // "If ACK.ts_option.echo_reply < Segment.xmit_ts: Return": the
        // ACK answers the original transmission, not this one. Only for a
        // cumulative ACK: a SACK echoes an older timestamp anyway (RFC 7323
        // 4.3: an out-of-order segment does not update TS.Recent).
        if retransmitted
            && cumulative
            && let Some((ecr, offset)) = self.echo
        {
            let sent = self.instant(at, now).saturating_duration_since(self.epoch);
            let ts = (sent.as_millis() as u32).wrapping_add(offset);
            if ecr != 0 && (ecr.wrapping_sub(ts) as i32) < 0 {
                return;
            }
        }
        let newer = match self.xmit {
            None => true,
            Some((x, e)) => later(at, x) || (at == x && end > e),
        };
        if newer {
            self.xmit = Some((at, end));
            self.rtt = rtt;
        }
    }

    /// RFC 8985 6.2 step 3: "If Segment.end_seq > RACK.fack: RACK.fack =
    /// Segment.end_seq. Else if Segment.end_seq < RACK.fack AND
    /// Segment.retransmitted is FALSE: RACK.reordering_seen = TRUE".
    fn note_order(&mut self, end: SeqNum, retransmitted: bool) {
        if end > self.fack {
            self.fack = end;
        } else if end < self.fack && !retransmitted {
            self.reordering_seen = true;
        }
    }

    /// The range [l, r) was newly SACKed. `high_rxt`: unSACKed octets
    /// below it were retransmitted in this recovery episode, so a SACK
    /// ending there is ambiguous. Its newest octet, r - 1, counts: it was
    /// sent when the record holding it was. Only a `fresh` range (none of
    /// it SACKed before) can show reordering: a range that grew because a
    /// hole inside it was filled ends where older deliveries did.
    pub(crate) fn on_sacked(
        &mut self,
        now: Instant,
        l: SeqNum,
        r: SeqNum,
        fresh: bool,
        high_rxt: SeqNum,
        min_rtt: Option<Duration>,
    ) {
        let i = self.sent.partition_point(|rec| rec.end < r);
        let Some(rec) = self.sent.get(i).copied() else {
            return;
        };
        if rec.start >= r || r <= l {
            return;
        }
        let retransmitted = rec.retransmitted || r <= high_rxt;
        if fresh {
            self.note_order(r, retransmitted);
        }
        self.advance(now, rec.at, r, retransmitted, false, min_rtt);
    }

    /// A retransmission sent at `at`, ending at `end`, was delivered (by
    /// the cumulative ACK, or SACKed).
    pub(crate) fn on_retransmission_delivered(
        &mut self,
        now: Instant,
        at: Micros,
        end: SeqNum,
        cumulative: bool,
        min_rtt: Option<Duration>,
    ) {
        self.advance(now, at, end, true, cumulative, min_rtt);
    }

    /// The cumulative ACK advanced from `old_una` to `ack`: the records it
    /// covers go, and its newest octet, ack - 1, counts as delivered
    /// (ambiguous when it lies below `high_rxt`: retransmitted).
    pub(crate) fn on_cumulative_ack(
        &mut self,
        now: Instant,
        old_una: SeqNum,
        ack: SeqNum,
        high_rxt: SeqNum,
        min_rtt: Option<Duration>,
    ) {
        let mut newest = None;
        let mut first = true;
        while let Some(rec) = self.sent.front_mut() {
            if rec.start >= ack {
                break;
            }
            if first && rec.start <= old_una {
                // The segment at the old SND.UNA (a hole, or the ACK would
                // have covered it before) arrived: reordering if data above
                // it had been delivered first.
                let rxt = rec.retransmitted || old_una < high_rxt;
                first = false;
                let rec = *rec;
                self.note_order(old_una + 1, rxt);
                if rec.end > ack {
                    newest = Some((rec.at, ack, rec.retransmitted));
                    self.sent[0].start = ack;
                    break;
                }
                newest = Some((rec.at, rec.end, rec.retransmitted));
                self.sent.pop_front();
                continue;
            }
            first = false;
            if rec.end > ack {
                newest = Some((rec.at, ack, rec.retransmitted));
                rec.start = ack;
                break;
            }
            newest = Some((rec.at, rec.end, rec.retransmitted));
            self.sent.pop_front();
        }
        if let Some((at, end, rxt)) = newest {
            let retransmitted = rxt || end <= high_rxt;
            self.note_order(end, retransmitted);
            self.advance(now, at, end, retransmitted, true, min_rtt);
        }
        if self.dsack_round.is_some_and(|r| ack >= r) {
            self.dsack_round = None;
        }
    }

    /// Gives back the ring's memory when nothing is outstanding.
    pub(crate) fn release_if_idle(&mut self) {
        if self.sent.is_empty() {
            self.sent = VecDeque::new();
        }
    }

    /// The timestamp echoed by the ACK about to be processed, with our
    /// timestamp clock's offset (`None`: no timestamps).
    pub(crate) fn set_echo(&mut self, echo: Option<(u32, u32)>) {
        self.echo = echo;
    }

    /// An ACK carried a D-SACK (RFC 8985 6.2 step 4): the reordering window
    /// grows, once per round trip.
    pub(crate) fn on_dsack(&mut self, snd_nxt: SeqNum) {
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_nxt);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1).min(64);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// Fast or timeout recovery ended: after [`REO_WND_PERSIST`] of them
    /// without a D-SACK the window multiplier falls back to 1.
    pub(crate) fn on_recovery_end(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// True once reordering was seen on this connection.
    #[cfg(test)]
    pub(crate) fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// RFC 8985 6.2 step 4, RACK_update_reo_wnd: zero while no reordering
    /// was seen and the sender is in recovery or DupThresh segments are
    /// SACKed (RACK then acts as fast as duplicate-ACK counting); else
    /// "min(RACK.reo_wnd_mult * RACK.min_RTT / 4, SRTT)".
    pub(crate) fn reo_wnd(
        &self,
        in_recovery: bool,
        dupthresh_sacked: bool,
        min_rtt: Option<Duration>,
        srtt: Option<Duration>,
    ) -> Duration {
        if !self.reordering_seen && (in_recovery || dupthresh_sacked) {
            return Duration::ZERO;
        }
        let Some(min_rtt) = min_rtt else {
            return Duration::ZERO;
        };
        let w = min_rtt * self.reo_wnd_mult / 4;
        srtt.map_or(w, |s| w.min(s))
    }

    /// RFC 8985 6.2 step 5, RACK_detect_loss, over the first
    /// transmissions: every record sent before RACK.xmit_ts is lost once
    /// "Segment.xmit_ts + RACK.rtt + RACK.reo_wnd - Now() <= 0". Returns the
    /// end of the lost prefix (unSACKed octets below it are lost) and, if
    /// some of those records have not waited long enough yet, when the
    /// last of them will have (the RACK reordering timer: RFC 8985 6.3
    /// arms it for the largest remaining time).
    pub(crate) fn detect(
        &self,
        now: Instant,
        reo_wnd: Duration,
    ) -> (Option<SeqNum>, Option<Instant>) {
        let Some((xmit, end_seq)) = self.xmit else {
            return (None, None);
        };
        let wait = self.rtt + reo_wnd;
        let wait_us = wait.as_micros().min(u128::from(i32::MAX as u32)) as Micros;
        let now_us = self.micros(now);
        // RACK_sent_after(RACK.xmit_ts, RACK.end_seq, seg.xmit_ts,
        // seg.end_seq): records in time order, so a prefix.
        // A record sent in the same instant as RACK.xmit_ts is "before" up
        // to RACK.end_seq (the sequence number breaks the tie).
        let sent_before = |r: &Record| later(xmit, r.at) || (xmit == r.at && end_seq > r.start);
        let before = self.sent.partition_point(sent_before);
        // Both predicates hold for a prefix, so their conjunction does too.
        let expired = self
            .sent
            .partition_point(|r| sent_before(r) && !later(r.at.wrapping_add(wait_us), now_us));
        let boundary = expired
            .checked_sub(1)
            .map(|i| self.sent[i].end.min(end_seq));
        let timer = (expired < before).then(|| self.instant(self.sent[before - 1].at, now) + wait);
        (boundary, timer)
    }

    /// How long a retransmission sent at `at` must have waited, delivered
    /// or not, before RACK calls it lost; `None` if it was not sent before
    /// the most recently sent delivered segment (nothing says it is lost).
    pub(crate) fn retransmission_deadline(
        &self,
        now: Instant,
        at: Micros,
        reo_wnd: Duration,
    ) -> Option<Instant> {
        let (xmit, _) = self.xmit?;
        // Strictly later: within one instant a retransmission may have left
        // after new data of higher sequence numbers (the sequence number
        // does not order them).
        if !later(xmit, at) {
            return None;
        }
        Some(self.instant(at, now) + self.rtt + reo_wnd)
    }

    /// Forgets every record (the connection closed or the peer reneged).
    pub(crate) fn clear(&mut self, snd_una: SeqNum) {
        self.sent.clear();
        self.xmit = None;
        self.fack = self.fack.max(snd_una);
    }
}

#[cfg(test)]
mod tests;
