//! The sender's SACK scoreboard and the RFC 6675 loss-recovery routines
//! (IsLost, SetPipe, NextSeg) built on it.
//!
//! Ranges are absolute sequence numbers inside (SND.UNA, SND.MAX]. Because an
//! unSACKed octet's IsLost() depends only on the SACKed data above it, IsLost
//! is the same for every octet of a hole, so "lost" is tracked as a single
//! boundary: every unSACKed octet below `lost_end` is lost.
//!
//! Without SACK (the peer did not permit it), duplicate ACKs are counted as
//! "virtually SACKed" bytes, as Linux's Reno emulation does, so the same
//! pipe-based recovery runs NewReno (RFC 6582) for such peers.
//!
//! # Cost under a malicious receiver
//!
//! A receiver chooses the SACK blocks, so it can SACK every other byte of a
//! flight (the CVE-2019-11477/11478 class of attacks). The scoreboard holds
//! at most [`MAX_RANGES`] ranges and every method the connection calls per
//! ACK or per segment sent costs O(log n), or amortized O(log n) where each
//! stored range or log entry is merged, removed or examined a bounded number
//! of times over its life:
//!
//! * the ranges live in an `IntervalSet`, an AVL tree whose nodes carry
//!   the bytes of their subtree, so that "bytes SACKed in [a, b)" (SetPipe)
//!   is two descents;
//! * retransmissions found lost are another `IntervalSet`, with the number
//!   of its bytes that are also SACKed kept up to date as either set
//!   changes, so SetPipe never walks it;
//! * retransmissions are whole segments (RFC 6675 NextSeg: "one segment of
//!   up to SMSS octets starting with S2"), SACKed bytes inside included, so
//!   one-byte holes cannot make the sender send one-byte segments.

use std::collections::VecDeque;

use crate::SeqNum;

/// RFC 6675 DupThresh.
pub const DUP_THRESH: usize = 3;

/// Most ranges tracked; information beyond this is dropped (the sender only
/// loses precision, never correctness: unknown means unSACKed). Large,
/// because a slow-start overshoot into a drop-tail queue leaves hundreds of
/// holes.
pub const MAX_RANGES: usize = 1024;

/// Most retransmissions remembered for lost-retransmission detection.
const MAX_RETRANSMITTED: usize = 4096;

/// Most separate stretches of lost retransmissions tracked; beyond it a lost
/// retransmission is not noticed (it stays in the pipe until the timer).
const MAX_AGAIN: usize = MAX_RANGES;

/// Sender-side SACK state of one connection.
#[derive(Clone, Debug)]
pub struct Scoreboard {
    /// The SACKed ranges: disjoint, not touching, at most [`MAX_RANGES`].
    sacked: IntervalSet,
    /// Unsacked octets below this are lost (RFC 6675 IsLost).
    lost_end: SeqNum,
    /// RFC 6675 HighRxt: end of the highest retransmission in this episode.
    high_rxt: SeqNum,
    /// RFC 6675 RescueRxt: a rescue retransmission was sent in this episode.
    rescue_done: bool,
    /// Non-SACK peers: bytes presumed delivered, one MSS per duplicate ACK.
    reno_sacked: usize,
    /// The highest SND.MAX (RFC 6675 HighData) this scoreboard was told of,
    /// by [`add_blocks`](Self::add_blocks), [`on_rto`](Self::on_rto) and
    /// [`on_retransmit`](Self::on_retransmit): where retransmissions end.
    snd_max: SeqNum,
    /// Retransmissions of this episode, in sending order: (start, end,
    /// SND.NXT when sent, transmit time in the caller's microseconds). Used
    /// to notice lost retransmissions.
    retransmitted: VecDeque<(SeqNum, SeqNum, SeqNum, u32)>,
    /// The newest logged retransmission the cumulative ACK covered last
    /// (transmit time, end), for RACK.
    acked_rxt: Option<(u32, SeqNum)>,
    /// Retransmitted octets found lost, to be sent again before anything
    /// else; their unSACKed bytes are not in the pipe until they are. Every
    /// stretch starts with an unSACKed octet at or above SND.UNA, and all
    /// lie below HighRxt.
    again: IntervalSet,
    /// Octets both in `again` and SACKed.
    again_sacked: usize,
}

impl Scoreboard {
    /// An empty scoreboard for a connection at `snd_una`.
    pub fn new(snd_una: SeqNum) -> Self {
        Scoreboard {
            sacked: IntervalSet::new(),
            lost_end: snd_una,
            high_rxt: snd_una,
            rescue_done: false,
            reno_sacked: 0,
            snd_max: snd_una,
            retransmitted: VecDeque::new(),
            acked_rxt: None,
            again: IntervalSet::new(),
            again_sacked: 0,
        }
    }

    /// Forgets all SACK information (after reneging is suspected).
    pub fn clear(&mut self, snd_una: SeqNum) {
        *self = Scoreboard::new(snd_una);
    }

    /// Heap bytes held (the scoreboard's own size not included).
    pub fn memory_used(&self) -> usize {
        self.sacked.memory_used()
            + self.again.memory_used()
            + self.retransmitted.capacity() * std::mem::size_of::<(SeqNum, SeqNum, SeqNum, u32)>()
    }

    /// Bytes currently SACKed (or presumed delivered, for non-SACK peers).
    pub fn sacked_bytes(&self) -> usize {
        self.sacked.bytes() + self.reno_sacked
    }

    /// The SACKed ranges, in order (`.len()` is
    /// [`range_count`](Self::range_count)).
    pub fn ranges(&self) -> Ranges<'_> {
        self.sacked.iter()
    }

    /// How many SACKed ranges are tracked (at most [`MAX_RANGES`]).
    pub fn range_count(&self) -> usize {
        self.sacked.len()
    }

    /// True when any octet is known to be SACKed.
    pub fn has_sacks(&self) -> bool {
        !self.sacked.is_empty()
    }

    /// Highest SACKed octet + 1, if any.
    pub fn highest_sacked(&self) -> Option<SeqNum> {
        self.sacked.last().map(|r| r.1)
    }

    /// The cumulative ACK advanced to `snd_una`: ranges below it go (RFC
    /// 6675 Update(): "each octet that is cumulatively ACKed or SACKed
    /// should be marked accordingly in the scoreboard").
    pub fn on_cumulative_ack(&mut self, snd_una: SeqNum) {
        // Lost retransmissions first, while the SACKed bytes they hold are
        // still known.
        if let Some((s, _)) = self.again.first()
            && s < snd_una
        {
            self.again_remove(s, snd_una);
        }
        if let Some((l, _)) = self.sacked.first()
            && l < snd_una
        {
            self.sacked.remove(l, snd_una, usize::MAX, |_, _| {});
        }
        // An ACK into the middle of a SACKed range leaves that range
        // starting at SND.UNA, maybe under a lost retransmission's start.
        self.trim_again_at(snd_una);
        self.lost_end = self.lost_end.max(snd_una);
        self.high_rxt = self.high_rxt.max(snd_una);
        self.snd_max = self.snd_max.max(snd_una);
        while let Some(&(_, e, _, at)) = self.retransmitted.front()
            && e <= snd_una
        {
            self.acked_rxt = Some((at, e));
            self.retransmitted.pop_front();
        }
        // Nothing left to track (typically the end of a recovery): large
        // allocations left by an episode with many holes go back.
        if self.sacked.is_empty() {
            self.sacked.clear();
        }
        if self.again.is_empty() {
            self.again.clear();
        }
        if self.retransmitted.is_empty() && self.retransmitted.capacity() > 64 {
            self.retransmitted = VecDeque::new();
        }
    }

    /// Records SACK blocks from an ACK. Blocks not inside (snd_una, snd_max]
    /// are ignored: below SND.UNA they are D-SACKs (RFC 2883), above SND.MAX
    /// they are bogus. Returns the number of newly SACKed bytes.
    ///
    /// Each block costs O(log n) plus O(log n) per range it merges (each
    /// range is merged away once).
    pub fn add_blocks(
        &mut self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
    ) -> usize {
        self.add_blocks_noting(snd_una, snd_max, blocks, |_, _| {})
    }

    /// [`add_blocks`](Self::add_blocks), calling `newly(a, b)` for each
    /// stretch [a, b) the blocks newly SACKed, in order within a block (for
    /// the delivery-rate estimator, which samples only what an ACK newly
    /// delivered). No extra cost: the stretches are the gaps the insertion
    /// fills anyway.
    pub fn add_blocks_noting(
        &mut self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
        mut newly: impl FnMut(SeqNum, SeqNum),
    ) -> usize {
        self.snd_max = self.snd_max.max(snd_max);
        let mut added = 0;
        for &(l, r) in blocks {
            if l >= r || l < snd_una || r > snd_max || r.since(l) > snd_max.since(snd_una) {
                continue;
            }
            added += self.insert(l, r, &mut newly);
        }
        added
    }

    /// Calls `f(a, b)` for each stretch [a, b) of [from, to) not SACKed, in
    /// order: O(log n) per stretch. (Before a cumulative ACK to `to`, these
    /// are what it newly delivers; the ranges between them are removed by
    /// [`on_cumulative_ack`](Self::on_cumulative_ack) right after, so the
    /// walk costs what the removal does.)
    pub fn for_each_unsacked(&self, from: SeqNum, to: SeqNum, mut f: impl FnMut(SeqNum, SeqNum)) {
        let mut pos = from;
        while pos < to {
            let a = self.sacked.first_uncovered(pos);
            if a >= to {
                break;
            }
            let b = self.sacked.first_from(a).map_or(to, |(s, _)| s.min(to));
            f(a, b);
            pos = b;
        }
    }

    fn insert(&mut self, l: SeqNum, r: SeqNum, newly: &mut impl FnMut(SeqNum, SeqNum)) -> usize {
        let again = &self.again;
        let mut overlap = 0;
        // Every newly SACKed gap may lie under lost retransmissions.
        let Some((lo, hi, added)) = self.sacked.add(l, r, MAX_RANGES, |a, b| {
            overlap += again.measure(a, b);
            newly(a, b);
        }) else {
            return 0;
        };
        self.again_sacked += overlap;
        self.trim_again(lo, hi);
        added
    }

    /// Adds [a, b) to the lost retransmissions (`a` unSACKed).
    fn again_add(&mut self, a: SeqNum, b: SeqNum) -> bool {
        let sacked = &self.sacked;
        let mut overlap = 0;
        let added = self
            .again
            .add(a, b, MAX_AGAIN, |x, y| overlap += sacked.measure(x, y))
            .is_some();
        self.again_sacked += overlap;
        added
    }

    /// Removes [a, b) from the lost retransmissions.
    fn again_remove(&mut self, a: SeqNum, b: SeqNum) {
        let sacked = &self.sacked;
        let mut overlap = 0;
        self.again
            .remove(a, b, MAX_AGAIN, |x, y| overlap += sacked.measure(x, y));
        self.again_sacked -= overlap;
    }

    /// Restores "every lost-retransmission stretch starts unSACKed" for the
    /// SACKed range [lo, hi): stretches starting inside it lose their
    /// SACKed head (and go, if that was all of them). Amortized O(log n):
    /// all but the last stretch visited are removed.
    fn trim_again(&mut self, lo: SeqNum, hi: SeqNum) {
        while let Some((s, e)) = self.again.first_from(lo)
            && s < hi
        {
            step();
            self.again_remove(s, e.min(hi));
        }
    }

    /// [`trim_again`](Self::trim_again) for the range holding `seq`, if any.
    fn trim_again_at(&mut self, seq: SeqNum) {
        if let Some((lo, hi)) = self.sacked.containing(seq) {
            self.trim_again(lo, hi);
        }
    }

    /// Bytes SACKed inside [a, b), in O(log n).
    fn sacked_in(&self, a: SeqNum, b: SeqNum) -> usize {
        self.sacked.measure(a, b)
    }

    /// Bytes not SACKed inside [a, b), in O(log n).
    pub(crate) fn unsacked_in(&self, a: SeqNum, b: SeqNum) -> usize {
        b.since(a) - self.sacked_in(a, b)
    }

    /// Where the outstanding data ends, as far as the scoreboard knows: no
    /// retransmission reaches past it. (The lost boundary is included for
    /// NewReno, whose scoreboard hears of SND.MAX only through it.)
    fn data_end(&self) -> SeqNum {
        self.snd_max.max(self.lost_end).max(self.high_rxt)
    }

    /// One segment from `start`: `mss` bytes, or fewer at the end of the
    /// outstanding data, whatever is SACKed inside (re-sending SACKed bytes
    /// is harmless; stopping at every SACK edge would let a receiver that
    /// SACKs every other byte get one-byte segments).
    fn segment_from(&self, start: SeqNum, mss: usize) -> (SeqNum, usize) {
        (start, self.data_end().since(start).clamp(1, mss.max(1)))
    }

    /// RFC 6675 IsLost, applied to the scoreboard: "The routine returns true
    /// when either DupThresh discontiguous SACKed sequences have arrived
    /// above 'SeqNum' or more than (DupThresh - 1) * SMSS bytes with sequence
    /// numbers greater than 'SeqNum' have been SACKed." Moves `lost_end` up
    /// to the start of the highest SACKed range for which that holds. Looks
    /// at most at the DupThresh highest ranges.
    pub fn update_lost(&mut self, mss: usize) {
        let mut bytes = 0;
        let mut range = self.sacked.last();
        for count in 1..=DUP_THRESH {
            let Some((l, r)) = range else {
                return;
            };
            bytes += r.since(l);
            if count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                self.lost_end = self.lost_end.max(l);
                return;
            }
            range = self.sacked.before(l);
        }
    }

    /// True when `seq` is unSACKed and deemed lost.
    pub fn is_lost(&self, seq: SeqNum) -> bool {
        seq < self.lost_end && self.sacked.containing(seq).is_none()
    }

    /// Declares the first `len` bytes from `snd_una` lost (NewReno: the
    /// segment at the cumulative ACK point, after three duplicate ACKs or a
    /// partial ACK).
    pub fn mark_lost_through(&mut self, end: SeqNum) {
        self.lost_end = self.lost_end.max(end);
    }

    /// After a retransmission timeout: every unSACKed octet outstanding is
    /// lost, and retransmission starts again from SND.UNA (RFC 6675 5.1),
    /// skipping what the peer has SACKed.
    pub fn on_rto(&mut self, snd_una: SeqNum, snd_max: SeqNum) {
        self.lost_end = snd_max;
        self.snd_max = self.snd_max.max(snd_max);
        self.start_episode(snd_una);
        self.reno_sacked = 0;
    }

    /// A retransmission timeout turned out spurious (RFC 3522): the
    /// outstanding data is no longer all lost; loss detection starts over
    /// from `snd_una`.
    pub fn undo_rto(&mut self, snd_una: SeqNum) {
        self.lost_end = snd_una;
        self.start_episode(snd_una);
    }

    /// A new recovery episode starts at `snd_una`.
    pub fn start_episode(&mut self, snd_una: SeqNum) {
        self.high_rxt = snd_una;
        self.rescue_done = false;
        self.retransmitted.clear();
        self.again.clear();
        self.again_sacked = 0;
    }

    /// Lost retransmissions (the idea of Linux's tcp_mark_lost_retrans, and
    /// of RACK, RFC 8985): a retransmission is lost when data sent after it
    /// has been SACKed while it is still unacknowledged. RFC 6675 alone
    /// would wait for the retransmission timer. Returns how many were found.
    ///
    /// Amortized O(log n): each logged retransmission is examined once.
    pub fn detect_lost_retransmissions(&mut self, snd_una: SeqNum) -> usize {
        let Some(highest) = self.highest_sacked() else {
            return 0;
        };
        let mut found = 0;
        while let Some(&(s, e, marker, _)) = self.retransmitted.front() {
            step();
            if e <= snd_una {
                self.retransmitted.pop_front();
                continue;
            }
            // Markers only grow: once one is not yet overtaken, none after
            // it is either.
            if highest <= marker {
                break;
            }
            self.retransmitted.pop_front();
            // Its first unSACKed octet, if any is left.
            let start = self.sacked.first_uncovered(s.max(snd_una));
            if start < e && self.again_add(start, e) {
                found += 1;
            }
        }
        found
    }

    /// Lost retransmissions by a caller's rule (RACK, RFC 8985 6.2: "For
    /// each segment, Segment, not acknowledged yet: If
    /// RACK_sent_after(RACK.xmit_ts, RACK.end_seq, Segment.xmit_ts,
    /// Segment.end_seq)" and its time is up, it is lost). `lost(at, end)`
    /// is asked about the logged retransmissions in sending order, the
    /// delivered ones skipped, until it answers false (the rest were sent
    /// later still). Returns how many were found lost.
    ///
    /// Amortized O(log n): each logged retransmission leaves the log once.
    pub fn detect_lost_retransmissions_by(
        &mut self,
        snd_una: SeqNum,
        mut lost: impl FnMut(u32, SeqNum) -> bool,
    ) -> usize {
        let mut found = 0;
        while let Some(&(s, e, _, at)) = self.retransmitted.front() {
            step();
            let start = self.sacked.first_uncovered(s.max(snd_una));
            if e <= snd_una || start >= e {
                // Delivered (or acknowledged): nothing to find.
                self.retransmitted.pop_front();
                continue;
            }
            if !lost(at, e) {
                break;
            }
            self.retransmitted.pop_front();
            if self.again_add(start, e) {
                found += 1;
            }
        }
        found
    }

    /// The newest retransmission the last cumulative ACK covered (its
    /// transmit time and end), once.
    pub fn take_acked_retransmission(&mut self) -> Option<(u32, SeqNum)> {
        self.acked_rxt.take()
    }

    /// The newest of the latest few logged retransmissions lying wholly in
    /// the SACKed range [l, r), if any (transmit time, end): what a new SACK
    /// block delivered, for RACK. Looks at no more than 16 entries.
    pub fn retransmission_in(&self, l: SeqNum, r: SeqNum) -> Option<(u32, SeqNum)> {
        self.retransmitted
            .iter()
            .rev()
            .take(16)
            .find(|&&(s, e, _, _)| s >= l && e <= r)
            .map(|&(_, e, _, at)| (at, e))
    }

    /// The next lost retransmission to send again: one segment (`mss`
    /// bytes, fewer only at the end of the outstanding data) from its first
    /// unSACKed, unacknowledged octet. `snd_una` must be the last value
    /// given to [`on_cumulative_ack`](Self::on_cumulative_ack).
    pub fn peek_again(&self, snd_una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
        let (start, end) = self.again.first()?;
        let start = if start < snd_una {
            // Only if on_cumulative_ack was not told of SND.UNA.
            self.sacked.first_uncovered(snd_una)
        } else {
            start
        };
        (start < end).then(|| self.segment_from(start, mss))
    }

    /// [`peek_again`](Self::peek_again), as a test helper name.
    #[cfg(test)]
    fn next_again(&self, snd_una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
        self.peek_again(snd_una, mss)
    }

    /// Counts a duplicate ACK from a non-SACK peer as one MSS delivered.
    pub fn add_reno_dupack(&mut self, mss: usize, flight: usize) {
        self.reno_sacked = (self.reno_sacked + mss).min(flight.saturating_sub(mss));
    }

    /// Forgets presumed deliveries (a cumulative ACK explained them).
    pub fn reset_reno(&mut self) {
        self.reno_sacked = 0;
    }

    /// RFC 6675 SetPipe: "After initializing pipe to zero, the following
    /// steps are taken for each octet 'S1' in the sequence space between
    /// HighACK and HighData that has not been SACKed: (a) If IsLost (S1)
    /// returns false: Pipe is incremented by 1 octet. [...] (b) If S1 <=
    /// HighRxt: Pipe is incremented by 1 octet." Retransmissions found lost
    /// count as not retransmitted, and a non-SACK peer's presumed
    /// deliveries are taken off. O(log n): the octets are counted by range
    /// sums, not visited.
    pub fn pipe(&self, snd_una: SeqNum, snd_max: SeqNum) -> usize {
        let lost_end = self.lost_end.max(snd_una).min(snd_max);
        let rxt_end = self.high_rxt.max(snd_una).min(snd_max);
        // (a): unSACKed octets at or above the lost boundary.
        let not_lost = self.unsacked_in(lost_end, snd_max);
        // (b): unSACKed octets below HighRxt.
        let retransmitted = self.unsacked_in(snd_una, rxt_end);
        // Retransmissions known lost are not in the network any more.
        let lost_again = self.again.bytes() - self.again_sacked;
        (not_lost + retransmitted)
            .saturating_sub(self.reno_sacked)
            .saturating_sub(lost_again)
    }

    /// RFC 6675 NextSeg rule (1): "If there exists a smallest unSACKed
    /// sequence number 'S2' that meets the following three criteria for
    /// determining loss, the sequence range of one segment of up to SMSS
    /// octets starting with S2 MUST be returned. (1.a) S2 is greater than
    /// HighRxt. (1.b) S2 is less than the highest octet covered by any
    /// received SACK. (1.c) IsLost (S2) returns true." The segment is `mss`
    /// bytes (fewer only at the end of the outstanding data), SACKed bytes
    /// inside it included.
    pub fn next_lost(&self, snd_una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
        let start = self.sacked.first_uncovered(self.high_rxt.max(snd_una));
        // (1.c) with (1.b): every lost octet is below a SACKed one (or the
        // whole flight is lost after a timeout).
        if start >= self.lost_end {
            return None;
        }
        Some(self.segment_from(start, mss))
    }

    /// RFC 6675 NextSeg rule (4), the rescue retransmission: "one segment of
    /// upto SMSS octets that MUST include the highest outstanding unSACKed
    /// sequence number", once per episode, when nothing else may be sent.
    /// Keeps a lost tail from waiting for the timer. The segment starts an
    /// MSS below that octet (not below SND.UNA or HighRxt) and is `mss`
    /// bytes long, fewer only at `snd_max`.
    pub fn peek_rescue(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: usize,
    ) -> Option<(SeqNum, usize)> {
        if self.rescue_done {
            return None;
        }
        // Just past the highest unSACKed byte below snd_max (ranges never
        // touch: the byte below a range is unSACKed).
        let end = match self.sacked.containing(snd_max - 1) {
            Some((l, _)) => l,
            None => snd_max,
        };
        if end <= snd_una || end <= self.high_rxt {
            return None;
        }
        let from = (end - mss).max(snd_una).max(self.high_rxt);
        let start = self.sacked.first_uncovered(from);
        Some((start, snd_max.since(start).clamp(1, mss.max(1))))
    }

    /// The segment of up to `mss` octets that ends with the highest unSACKed
    /// octet below `snd_max` (the first SACKed range reaching `snd_max`
    /// left out): what a tail loss probe sent in fast recovery repeats, so
    /// that it repairs the highest hole, if that is what is missing, while
    /// it asks for an ACK. `None` when nothing is outstanding.
    pub fn highest_unsacked(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: usize,
    ) -> Option<(SeqNum, usize)> {
        if snd_max <= snd_una {
            return None;
        }
        let end = match self.sacked.containing(snd_max - 1) {
            Some((l, _)) => l,
            None => snd_max,
        };
        if end <= snd_una {
            return None;
        }
        let start = self.sacked.first_uncovered((end - mss.max(1)).max(snd_una));
        (start < end).then(|| (start, end.since(start)))
    }

    /// Records that the rescue retransmission of this episode was sent.
    pub fn mark_rescued(&mut self) {
        self.rescue_done = true;
    }

    /// Records a retransmission of [start, start+len), sent when SND.NXT
    /// was `snd_nxt`. Amortized O(log n).
    pub fn on_retransmit(&mut self, start: SeqNum, len: usize, snd_nxt: SeqNum) {
        self.on_retransmit_at(start, len, snd_nxt, 0, true);
    }

    /// [`on_retransmit`](Self::on_retransmit) with the transmit time `at`
    /// (microseconds on the caller's clock, wrapping), for
    /// [`detect_lost_retransmissions_by`](Self::detect_lost_retransmissions_by).
    /// `next_seg`: a NextSeg rule (1) retransmission, which moves HighRxt;
    /// a rescue retransmission or a probe does not (RFC 6675 4: for rule
    /// (4), "HighRxt MUST NOT be updated"), but is logged like any other.
    pub fn on_retransmit_at(
        &mut self,
        start: SeqNum,
        len: usize,
        snd_nxt: SeqNum,
        at: u32,
        next_seg: bool,
    ) {
        let end = start + len;
        // RFC 6675 HighRxt: "The highest sequence number which has been
        // retransmitted during the current loss recovery phase."
        if next_seg {
            self.high_rxt = self.high_rxt.max(end);
        }
        self.snd_max = self.snd_max.max(snd_nxt);
        // Octets sent again leave the lost-retransmission set.
        if !self.again.is_empty() {
            self.again_remove(start, end);
            self.trim_again_at(end);
        }
        if self.retransmitted.len() >= MAX_RETRANSMITTED {
            self.retransmitted.pop_front();
        }
        self.retransmitted.push_back((start, end, snd_nxt, at));
    }

    /// RFC 6675 HighRxt.
    pub fn high_rxt(&self) -> SeqNum {
        self.high_rxt
    }

    /// The lost boundary.
    pub fn lost_end(&self) -> SeqNum {
        self.lost_end
    }
}

mod interval;
#[cfg(test)]
mod tests;

pub use interval::Ranges;
use interval::{IntervalSet, step};
