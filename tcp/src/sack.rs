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
use std::fmt;

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
    /// SND.NXT when sent). Used to notice lost retransmissions.
    retransmitted: VecDeque<(SeqNum, SeqNum, SeqNum)>,
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
            + self.retransmitted.capacity() * std::mem::size_of::<(SeqNum, SeqNum, SeqNum)>()
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
        while self.retransmitted.front().is_some_and(|r| r.1 <= snd_una) {
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
        self.snd_max = self.snd_max.max(snd_max);
        let mut added = 0;
        for &(l, r) in blocks {
            if l >= r || l < snd_una || r > snd_max || r.since(l) > snd_max.since(snd_una) {
                continue;
            }
            added += self.insert(l, r);
        }
        added
    }

    fn insert(&mut self, l: SeqNum, r: SeqNum) -> usize {
        let again = &self.again;
        let mut overlap = 0;
        // Every newly SACKed gap may lie under lost retransmissions.
        let Some((lo, hi, added)) = self.sacked.add(l, r, MAX_RANGES, |a, b| {
            overlap += again.measure(a, b);
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

    fn unsacked_in(&self, a: SeqNum, b: SeqNum) -> usize {
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
        while let Some(&(s, e, marker)) = self.retransmitted.front() {
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

    /// Records that the rescue retransmission of this episode was sent.
    pub fn mark_rescued(&mut self) {
        self.rescue_done = true;
    }

    /// Records a retransmission of [start, start+len), sent when SND.NXT
    /// was `snd_nxt`. Amortized O(log n).
    pub fn on_retransmit(&mut self, start: SeqNum, len: usize, snd_nxt: SeqNum) {
        let end = start + len;
        // RFC 6675 HighRxt: "The highest sequence number which has been
        // retransmitted during the current loss recovery phase."
        self.high_rxt = self.high_rxt.max(end);
        self.snd_max = self.snd_max.max(snd_nxt);
        // Octets sent again leave the lost-retransmission set.
        if !self.again.is_empty() {
            self.again_remove(start, end);
            self.trim_again_at(end);
        }
        if self.retransmitted.len() >= MAX_RETRANSMITTED {
            self.retransmitted.pop_front();
        }
        self.retransmitted.push_back((start, end, snd_nxt));
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

/// Counts one step of work in tests (tree levels visited, entries
/// examined), to show the per-ACK bounds without timing anything.
#[cfg(test)]
fn step() {
    tests::STEPS.with(|s| s.set(s.get() + 1));
}

#[cfg(not(test))]
#[inline(always)]
fn step() {}

/// No node.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    start: SeqNum,
    end: SeqNum,
    left: u32,
    right: u32,
    /// Bytes of all intervals in this subtree (below 2^31: they lie in one
    /// window).
    sum: u32,
    height: u8,
}

/// A set of disjoint, non-touching intervals of sequence space: an AVL tree
/// keyed by interval start, its nodes in an arena, each carrying the bytes
/// of its subtree. Sequence numbers compare circularly, which orders them
/// correctly as long as all of them (and the query points) lie within 2^31
/// of each other, as everything inside one window does.
///
/// Lookups are O(log n); adding an interval costs O(log n) for each
/// interval it absorbs, removing a stretch O(log n) for each interval it
/// touches.
#[derive(Clone)]
struct IntervalSet {
    nodes: Vec<Node>,
    /// First unused arena slot; unused slots are chained by `left`.
    free: u32,
    root: u32,
    len: usize,
}

/// SACKed ranges in order, from [`Scoreboard::ranges`].
#[derive(Clone, Debug)]
pub struct Ranges<'a> {
    set: &'a IntervalSet,
    /// The nodes whose left subtree is done and which come next, nearest
    /// last.
    path: Vec<u32>,
    left: usize,
}

impl Ranges<'_> {
    fn descend_left(&mut self, mut i: u32) {
        while i != NIL {
            self.path.push(i);
            i = self.set.nodes[i as usize].left;
        }
    }
}

impl Iterator for Ranges<'_> {
    type Item = (SeqNum, SeqNum);

    fn next(&mut self) -> Option<(SeqNum, SeqNum)> {
        let i = self.path.pop()?;
        self.left -= 1;
        self.descend_left(self.set.nodes[i as usize].right);
        Some(self.set.interval(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Ranges<'_> {}

impl fmt::Debug for IntervalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl IntervalSet {
    fn new() -> Self {
        IntervalSet {
            nodes: Vec::new(),
            free: NIL,
            root: NIL,
            len: 0,
        }
    }

    /// Empties the set; a large arena is given back.
    fn clear(&mut self) {
        if self.nodes.capacity() > 64 {
            *self = IntervalSet::new();
            return;
        }
        self.nodes.clear();
        self.free = NIL;
        self.root = NIL;
        self.len = 0;
    }

    fn memory_used(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in all intervals.
    fn bytes(&self) -> usize {
        self.sum(self.root)
    }

    fn iter(&self) -> Ranges<'_> {
        let mut r = Ranges {
            set: self,
            path: Vec::new(),
            left: self.len,
        };
        r.descend_left(self.root);
        r
    }

    fn sum(&self, i: u32) -> usize {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].sum as usize
        }
    }

    fn height(&self, i: u32) -> u8 {
        if i == NIL {
            0
        } else {
            self.nodes[i as usize].height
        }
    }

    fn interval(&self, i: u32) -> (SeqNum, SeqNum) {
        let n = &self.nodes[i as usize];
        (n.start, n.end)
    }

    /// The interval with the greatest start that `pick` accepts, where
    /// `pick(start)` holds for a prefix of the intervals in order.
    fn last_where(&self, pick: impl Fn(SeqNum) -> bool) -> Option<(SeqNum, SeqNum)> {
        let mut best = NIL;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &self.nodes[i as usize];
            if pick(n.start) {
                best = i;
                i = n.right;
            } else {
                i = n.left;
            }
        }
        (best != NIL).then(|| self.interval(best))
    }

    /// The interval with the least start that `pick` accepts, where
    /// `pick(start)` holds for a suffix of the intervals in order.
    fn first_where(&self, pick: impl Fn(SeqNum) -> bool) -> Option<(SeqNum, SeqNum)> {
        let mut best = NIL;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &self.nodes[i as usize];
            if pick(n.start) {
                best = i;
                i = n.left;
            } else {
                i = n.right;
            }
        }
        (best != NIL).then(|| self.interval(best))
    }

    fn first(&self) -> Option<(SeqNum, SeqNum)> {
        self.first_where(|_| true)
    }

    fn last(&self) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|_| true)
    }

    /// The interval starting last before `seq`.
    fn before(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|s| s < seq)
    }

    /// The interval starting first at or after `seq`.
    fn first_from(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.first_where(|s| s >= seq)
    }

    /// The interval holding `seq`.
    fn containing(&self, seq: SeqNum) -> Option<(SeqNum, SeqNum)> {
        self.last_where(|s| s <= seq).filter(|r| seq < r.1)
    }

    /// The first sequence number at or after `seq` outside every interval
    /// (the end of the one holding `seq`: intervals never touch).
    fn first_uncovered(&self, seq: SeqNum) -> SeqNum {
        self.containing(seq).map_or(seq, |r| r.1)
    }

    /// Bytes of the intervals below `seq`.
    fn bytes_below(&self, seq: SeqNum) -> usize {
        let mut total = 0;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &self.nodes[i as usize];
            if seq <= n.start {
                i = n.left;
            } else {
                // The left subtree ends before this interval starts.
                total += self.sum(n.left) + seq.min(n.end).since(n.start);
                i = n.right;
            }
        }
        total
    }

    /// Bytes of the intervals inside [a, b).
    fn measure(&self, a: SeqNum, b: SeqNum) -> usize {
        if a >= b || self.is_empty() {
            return 0;
        }
        self.bytes_below(b) - self.bytes_below(a)
    }

    /// Adds [l, r), merging it with the intervals it overlaps or touches;
    /// `gap` is called for each newly covered stretch, in order. Returns the
    /// merged interval and the bytes newly covered, or `None` (and changes
    /// nothing) if [l, r) touches no interval and `cap` are held already.
    fn add(
        &mut self,
        l: SeqNum,
        r: SeqNum,
        cap: usize,
        mut gap: impl FnMut(SeqNum, SeqNum),
    ) -> Option<(SeqNum, SeqNum, usize)> {
        debug_assert!(l < r);
        // The first interval touching [l, r], which absorbs the others.
        let first = match self.last_where(|s| s <= l) {
            Some((s, e)) if e >= l => Some((s, e)),
            _ => self.first_where(|s| s > l).filter(|&(s, _)| s <= r),
        };
        let Some((s0, e0)) = first else {
            if self.len >= cap {
                return None;
            }
            gap(l, r);
            self.put(l, r);
            return Some((l, r, r.since(l)));
        };
        if s0 <= l && r <= e0 {
            // Nothing new (a repeated block).
            return Some((s0, e0, 0));
        }
        let lo = l.min(s0);
        let mut hi = r.max(e0);
        let mut added = 0;
        if lo < s0 {
            gap(lo, s0);
            added += s0.since(lo);
        }
        // Absorb, in order, every further interval starting in [s0, hi].
        let mut pos = e0;
        while let Some((s, e)) = self.first_where(|x| x > s0)
            && s <= hi
        {
            step();
            // Intervals never touch: there is a gap before this one.
            gap(pos, s);
            added += s.since(pos);
            pos = e;
            hi = hi.max(e);
            self.delete(s);
        }
        if pos < hi {
            gap(pos, hi);
            added += hi.since(pos);
        }
        if added > 0 {
            self.reshape((s0, e0), lo, hi);
        }
        Some((lo, hi, added))
    }

    /// Gives the interval [start, end) the bounds [lo, hi), which must not
    /// change its place in the order: the node stays, the byte sums on its
    /// path grow.
    fn reshape(&mut self, (start, end): (SeqNum, SeqNum), lo: SeqNum, hi: SeqNum) {
        let grown = (hi.since(lo) - end.since(start)) as u32;
        let mut i = self.root;
        while i != NIL {
            step();
            let n = &mut self.nodes[i as usize];
            n.sum += grown;
            if start == n.start {
                n.start = lo;
                n.end = hi;
                return;
            }
            i = if start < n.start { n.left } else { n.right };
        }
        debug_assert!(false, "no interval at {start}");
    }

    /// Removes [a, b); `removed` is called for each stretch that was
    /// covered, in order. An interval cut in two keeps only its left part
    /// if `cap` intervals are held already.
    fn remove(
        &mut self,
        a: SeqNum,
        b: SeqNum,
        cap: usize,
        mut removed: impl FnMut(SeqNum, SeqNum),
    ) {
        if a >= b {
            return;
        }
        let mut from = match self.containing(a) {
            Some((s, _)) => s,
            None => a,
        };
        while let Some((s, e)) = self.first_from(from)
            && s < b
        {
            step();
            self.delete(s);
            if s < a {
                self.put(s, a);
            }
            let cut_end = if e > b && self.len < cap {
                self.put(b, e);
                b
            } else {
                e
            };
            removed(s.max(a), cut_end);
            from = cut_end;
        }
    }

    /// Inserts [start, end), which overlaps nothing.
    fn put(&mut self, start: SeqNum, end: SeqNum) {
        let node = Node {
            start,
            end,
            left: NIL,
            right: NIL,
            sum: end.since(start) as u32,
            height: 1,
        };
        let i = if self.free == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.nodes[i as usize].left;
            self.nodes[i as usize] = node;
            i
        };
        self.root = self.insert_at(self.root, i);
        self.len += 1;
    }

    /// Deletes the interval starting at `start` (which exists).
    fn delete(&mut self, start: SeqNum) {
        let before = self.len;
        self.root = self.delete_at(self.root, start);
        debug_assert_eq!(self.len + 1, before, "no interval at {start}");
    }

    fn insert_at(&mut self, t: u32, i: u32) -> u32 {
        step();
        if t == NIL {
            return i;
        }
        if self.nodes[i as usize].start < self.nodes[t as usize].start {
            let l = self.insert_at(self.nodes[t as usize].left, i);
            self.nodes[t as usize].left = l;
        } else {
            let r = self.insert_at(self.nodes[t as usize].right, i);
            self.nodes[t as usize].right = r;
        }
        self.rebalance(t)
    }

    fn delete_at(&mut self, t: u32, start: SeqNum) -> u32 {
        step();
        if t == NIL {
            return NIL;
        }
        let n = self.nodes[t as usize];
        if start < n.start {
            let l = self.delete_at(n.left, start);
            self.nodes[t as usize].left = l;
        } else if start > n.start {
            let r = self.delete_at(n.right, start);
            self.nodes[t as usize].right = r;
        } else {
            self.nodes[t as usize].left = self.free;
            self.free = t;
            self.len -= 1;
            if n.left == NIL {
                return n.right;
            }
            if n.right == NIL {
                return n.left;
            }
            // The successor takes this node's place.
            let (right, m) = self.take_min(n.right);
            self.nodes[m as usize].left = n.left;
            self.nodes[m as usize].right = right;
            return self.rebalance(m);
        }
        self.rebalance(t)
    }

    /// Detaches the least node of subtree `t`: (new subtree, that node).
    fn take_min(&mut self, t: u32) -> (u32, u32) {
        step();
        let left = self.nodes[t as usize].left;
        if left == NIL {
            return (self.nodes[t as usize].right, t);
        }
        let (l, m) = self.take_min(left);
        self.nodes[t as usize].left = l;
        (self.rebalance(t), m)
    }

    /// Recomputes height and byte sum of `t` from its children.
    fn update(&mut self, t: u32) {
        let n = self.nodes[t as usize];
        let height = 1 + self.height(n.left).max(self.height(n.right));
        let sum = self.sum(n.left) + self.sum(n.right) + n.end.since(n.start);
        let n = &mut self.nodes[t as usize];
        n.height = height;
        n.sum = sum as u32;
    }

    fn rotate_right(&mut self, t: u32) -> u32 {
        let l = self.nodes[t as usize].left;
        self.nodes[t as usize].left = self.nodes[l as usize].right;
        self.nodes[l as usize].right = t;
        self.update(t);
        self.update(l);
        l
    }

    fn rotate_left(&mut self, t: u32) -> u32 {
        let r = self.nodes[t as usize].right;
        self.nodes[t as usize].right = self.nodes[r as usize].left;
        self.nodes[r as usize].left = t;
        self.update(t);
        self.update(r);
        r
    }

    /// Restores the AVL balance at `t` (children balanced, heights within
    /// two of each other) and its height and sum; returns the subtree root.
    fn rebalance(&mut self, t: u32) -> u32 {
        let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        let (hl, hr) = (self.height(l), self.height(r));
        if hl > hr + 1 {
            let ll = self.nodes[l as usize].left;
            let lr = self.nodes[l as usize].right;
            if self.height(ll) < self.height(lr) {
                let nl = self.rotate_left(l);
                self.nodes[t as usize].left = nl;
            }
            return self.rotate_right(t);
        }
        if hr > hl + 1 {
            let rl = self.nodes[r as usize].left;
            let rr = self.nodes[r as usize].right;
            if self.height(rr) < self.height(rl) {
                let nr = self.rotate_right(r);
                self.nodes[t as usize].right = nr;
            }
            return self.rotate_left(t);
        }
        self.update(t);
        t
    }
}

#[cfg(test)]
impl IntervalSet {
    /// Checks order, spacing, AVL balance, heights and sums; returns the
    /// tree height.
    fn check(&self) -> u8 {
        fn walk(set: &IntervalSet, i: u32, count: &mut usize) -> (u8, usize) {
            if i == NIL {
                return (0, 0);
            }
            let n = set.nodes[i as usize];
            assert!(n.start < n.end, "empty interval");
            let (hl, sl) = walk(set, n.left, count);
            let (hr, sr) = walk(set, n.right, count);
            *count += 1;
            assert!(hl.abs_diff(hr) <= 1, "unbalanced");
            assert_eq!(n.height, 1 + hl.max(hr), "height");
            let sum = sl + sr + n.end.since(n.start);
            assert_eq!(n.sum as usize, sum, "sum");
            (n.height, sum)
        }
        let mut count = 0;
        let (height, _) = walk(self, self.root, &mut count);
        assert_eq!(count, self.len);
        let v: Vec<_> = self.iter().collect();
        assert_eq!(v.len(), self.len);
        for w in v.windows(2) {
            assert!(w[0].1 < w[1].0, "intervals touch or overlap: {w:?}");
        }
        height
    }
}

#[cfg(test)]
impl Scoreboard {
    /// Checks the internal invariants.
    fn check(&self) {
        self.sacked.check();
        self.again.check();
        assert!(self.sacked.len() <= MAX_RANGES);
        let mut overlap = 0;
        for (s, e) in self.again.iter() {
            assert!(self.sacked.containing(s).is_none(), "again starts SACKed");
            assert!(e <= self.high_rxt, "again above HighRxt");
            overlap += self.sacked.measure(s, e);
        }
        assert_eq!(overlap, self.again_sacked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 100;

    thread_local! {
        /// Work counted by [`step`](super::step) on this thread.
        pub(super) static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn ranges(sb: &Scoreboard) -> Vec<(SeqNum, SeqNum)> {
        sb.ranges().collect()
    }

    #[test]
    fn blocks_merge_and_d_sacks_are_ignored() {
        let mut sb = Scoreboard::new(s(0));
        assert_eq!(sb.add_blocks(s(0), s(1000), &[(s(200), s(300))]), 100);
        assert_eq!(
            sb.add_blocks(s(0), s(1000), &[(s(300), s(400)), (s(250), s(350))]),
            100
        );
        assert_eq!(ranges(&sb), [(s(200), s(400))]);
        // D-SACK below SND.UNA, inverted and beyond-SND.MAX blocks: ignored.
        assert_eq!(
            sb.add_blocks(
                s(100),
                s(1000),
                &[(s(0), s(100)), (s(500), s(400)), (s(900), s(1100))]
            ),
            0
        );
        // A D-SACK inside an already SACKed range adds nothing.
        assert_eq!(sb.add_blocks(s(0), s(1000), &[(s(200), s(250))]), 0);
        sb.on_cumulative_ack(s(300));
        assert_eq!(ranges(&sb), [(s(300), s(400))]);
        assert_eq!(sb.sacked_bytes(), 100);
        assert_eq!(sb.ranges().len(), 1);
        assert_eq!(sb.range_count(), 1);
    }

    #[test]
    fn is_lost_after_three_segments_sacked_above() {
        let mut sb = Scoreboard::new(s(0));
        // Segment 0 lost; segments 1 and 2 SACKed: not yet lost (2*MSS bytes
        // is not "more than (DupThresh-1)*SMSS").
        sb.add_blocks(s(0), s(1000), &[(s(100), s(300))]);
        sb.update_lost(MSS);
        assert!(!sb.is_lost(s(0)));
        sb.add_blocks(s(0), s(1000), &[(s(300), s(350))]);
        sb.update_lost(MSS);
        assert!(sb.is_lost(s(0)));
        assert!(!sb.is_lost(s(150)), "SACKed bytes are never lost");
        assert_eq!(sb.lost_end(), s(100));
    }

    #[test]
    fn three_discontiguous_ranges_mark_lost() {
        let mut sb = Scoreboard::new(s(0));
        sb.add_blocks(
            s(0),
            s(1000),
            &[(s(100), s(110)), (s(200), s(210)), (s(300), s(310))],
        );
        sb.update_lost(MSS);
        assert!(sb.is_lost(s(0)));
        assert!(!sb.is_lost(s(150)), "only two ranges above the second hole");
    }

    #[test]
    fn pipe_and_next_seg() {
        let mut sb = Scoreboard::new(s(0));
        // 10 segments outstanding; 0 and 5 lost, others SACKed.
        sb.add_blocks(s(0), s(1000), &[(s(100), s(500)), (s(600), s(1000))]);
        sb.update_lost(MSS);
        assert_eq!(
            sb.pipe(s(0), s(1000)),
            0,
            "both holes lost, nothing retransmitted"
        );
        sb.start_episode(s(0));
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(0), 100)));
        sb.on_retransmit(s(0), 100, s(1000));
        assert_eq!(sb.pipe(s(0), s(1000)), 100);
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(500), 100)));
        sb.on_retransmit(s(500), 100, s(1000));
        assert_eq!(sb.pipe(s(0), s(1000)), 200);
        assert_eq!(sb.next_lost(s(0), MSS), None);
    }

    #[test]
    fn rto_marks_everything_lost_but_skips_sacked() {
        let mut sb = Scoreboard::new(s(0));
        sb.add_blocks(s(0), s(1000), &[(s(200), s(400))]);
        sb.on_rto(s(0), s(1000));
        assert_eq!(sb.pipe(s(0), s(1000)), 0);
        let mut sent = Vec::new();
        while let Some((seq, len)) = sb.next_lost(s(0), MSS) {
            sent.push((seq.0, len));
            sb.on_retransmit(seq, len, s(1000));
        }
        assert_eq!(
            sent,
            vec![
                (0, 100),
                (100, 100),
                (400, 100),
                (500, 100),
                (600, 100),
                (700, 100),
                (800, 100),
                (900, 100)
            ],
            "no go-back-N over the SACKed 200..400"
        );
    }

    #[test]
    fn reno_dupacks_shrink_pipe() {
        let mut sb = Scoreboard::new(s(0));
        sb.mark_lost_through(s(100));
        sb.start_episode(s(0));
        for _ in 0..3 {
            sb.add_reno_dupack(MSS, 1000);
        }
        // 1000 outstanding, first 100 lost, 300 presumed delivered.
        assert_eq!(sb.pipe(s(0), s(1000)), 600);
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(0), 100)));
    }

    #[test]
    fn a_lost_retransmission_is_noticed_and_sent_again() {
        let mut sb = Scoreboard::new(s(0));
        // Segment 0 lost, 1..4 SACKed: recovery retransmits 0 while SND.NXT
        // is 500.
        sb.add_blocks(s(0), s(500), &[(s(100), s(500))]);
        sb.update_lost(MSS);
        sb.start_episode(s(0));
        let (seq, len) = sb.next_lost(s(0), MSS).unwrap();
        sb.on_retransmit(seq, len, s(500));
        assert_eq!(sb.pipe(s(0), s(500)), 100);
        // New data 500..700 is sent and SACKed, yet 0 is still missing: the
        // retransmission was lost.
        sb.add_blocks(s(0), s(700), &[(s(100), s(700))]);
        assert_eq!(sb.detect_lost_retransmissions(s(0)), 1);
        assert_eq!(
            sb.pipe(s(0), s(700)),
            0,
            "the lost retransmission left the pipe"
        );
        assert_eq!(sb.next_again(s(0), MSS), Some((s(0), 100)));
        sb.on_retransmit(s(0), 100, s(700));
        assert_eq!(sb.next_again(s(0), MSS), None);
        assert_eq!(sb.pipe(s(0), s(700)), 100);
        // Data sent before the retransmission being SACKed proves nothing.
        assert_eq!(sb.detect_lost_retransmissions(s(0)), 0);
    }

    #[test]
    fn rescue_retransmits_the_tail_once() {
        let mut sb = Scoreboard::new(s(0));
        sb.add_blocks(s(0), s(1000), &[(s(100), s(200))]);
        sb.start_episode(s(0));
        let r = sb.peek_rescue(s(0), s(1000), MSS);
        assert_eq!(r, Some((s(900), 100)));
        sb.mark_rescued();
        assert_eq!(sb.peek_rescue(s(0), s(1000), MSS), None);
    }

    /// A small seeded PRNG (xorshift64*), so the random tests repeat.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// The obviously correct scoreboard: a flag per byte (SACKed, lost
    /// retransmission) from `base`, every question answered by looking at
    /// every byte. It spells out the intended semantics, including the
    /// `MAX_RANGES` cap and RFC 6675 NextSeg's whole segments.
    struct Model {
        base: SeqNum,
        sacked: Vec<bool>,
        again: Vec<bool>,
        lost_end: SeqNum,
        high_rxt: SeqNum,
        rescue_done: bool,
        reno: usize,
        snd_max: SeqNum,
        log: VecDeque<(SeqNum, SeqNum, SeqNum)>,
    }

    impl Model {
        fn new(una: SeqNum) -> Model {
            Model {
                base: una,
                sacked: Vec::new(),
                again: Vec::new(),
                lost_end: una,
                high_rxt: una,
                rescue_done: false,
                reno: 0,
                snd_max: una,
                log: VecDeque::new(),
            }
        }

        fn at(&self, flags: &[bool], x: SeqNum) -> bool {
            x >= self.base && flags.get(x.since(self.base)).copied().unwrap_or(false)
        }

        fn set(flags: &mut Vec<bool>, base: SeqNum, x: SeqNum, v: bool) {
            let i = x.since(base);
            if flags.len() <= i {
                flags.resize(i + 1, false);
            }
            flags[i] = v;
        }

        fn is_sacked(&self, x: SeqNum) -> bool {
            self.at(&self.sacked, x)
        }

        fn ranges(&self) -> Vec<(SeqNum, SeqNum)> {
            let mut v: Vec<(SeqNum, SeqNum)> = Vec::new();
            for (i, &b) in self.sacked.iter().enumerate() {
                let x = self.base + i;
                if !b {
                    continue;
                }
                match v.last_mut() {
                    Some(r) if r.1 == x => r.1 = x + 1,
                    _ => v.push((x, x + 1)),
                }
            }
            v
        }

        fn sacked_bytes(&self) -> usize {
            self.sacked.iter().filter(|&&b| b).count() + self.reno
        }

        fn add_blocks(
            &mut self,
            una: SeqNum,
            snd_max: SeqNum,
            blocks: &[(SeqNum, SeqNum)],
        ) -> usize {
            self.snd_max = self.snd_max.max(snd_max);
            let mut added = 0;
            for &(l, r) in blocks {
                if l >= r || l < una || r > snd_max {
                    continue;
                }
                // A block touching no range (no SACKed byte in [l-1, r])
                // makes a new one: dropped if MAX_RANGES are held.
                let mut touches = false;
                let mut x = l - 1;
                while x != r + 1 {
                    touches |= self.is_sacked(x);
                    x += 1;
                }
                if !touches && self.ranges().len() >= MAX_RANGES {
                    continue;
                }
                let mut x = l;
                while x != r {
                    if !self.is_sacked(x) {
                        added += 1;
                        Model::set(&mut self.sacked, self.base, x, true);
                    }
                    x += 1;
                }
            }
            added
        }

        fn on_cumulative_ack(&mut self, una: SeqNum) {
            // Bytes below SND.UNA are forgotten: the flags start there.
            let gone = una.since(self.base);
            for flags in [&mut self.sacked, &mut self.again] {
                flags.drain(..gone.min(flags.len()));
            }
            self.base = self.base.max(una);
            self.lost_end = self.lost_end.max(una);
            self.high_rxt = self.high_rxt.max(una);
            self.snd_max = self.snd_max.max(una);
            while self.log.front().is_some_and(|r| r.1 <= una) {
                self.log.pop_front();
            }
        }

        /// IsLost as defined: the start of any range with DupThresh ranges
        /// at or above it, or more than (DupThresh-1)*SMSS bytes SACKed at
        /// or above it.
        fn update_lost(&mut self, mss: usize) {
            let (mut count, mut bytes) = (0, 0);
            for &(l, r) in self.ranges().iter().rev() {
                // `count` ranges and `bytes` SACKed at or above `l`.
                count += 1;
                bytes += r.since(l);
                if count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                    self.lost_end = self.lost_end.max(l);
                }
            }
        }

        fn is_lost(&self, x: SeqNum) -> bool {
            x < self.lost_end && !self.is_sacked(x)
        }

        fn pipe(&self, una: SeqNum, snd_max: SeqNum) -> usize {
            let (mut pipe, mut lost_again) = (0, 0);
            let mut x = una;
            while x < snd_max {
                if !self.is_sacked(x) {
                    pipe += usize::from(!self.is_lost(x)) + usize::from(x < self.high_rxt);
                    lost_again += usize::from(self.at(&self.again, x) && x < self.high_rxt);
                }
                x += 1;
            }
            pipe.saturating_sub(self.reno).saturating_sub(lost_again)
        }

        fn first_unsacked(&self, mut x: SeqNum) -> SeqNum {
            while self.is_sacked(x) {
                x += 1;
            }
            x
        }

        fn data_end(&self) -> SeqNum {
            self.snd_max.max(self.lost_end).max(self.high_rxt)
        }

        /// NextSeg's whole segment from `start`.
        fn segment(&self, start: SeqNum, mss: usize) -> (SeqNum, usize) {
            (start, self.data_end().since(start).clamp(1, mss))
        }

        fn next_lost(&self, una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
            let start = self.first_unsacked(self.high_rxt.max(una));
            (start < self.lost_end).then(|| self.segment(start, mss))
        }

        fn peek_again(&self, una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
            let mut x = una;
            while x < self.high_rxt {
                if self.at(&self.again, x) && !self.is_sacked(x) {
                    return Some(self.segment(x, mss));
                }
                x += 1;
            }
            None
        }

        fn peek_rescue(&self, una: SeqNum, snd_max: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
            if self.rescue_done {
                return None;
            }
            let mut end = snd_max;
            while end > una && self.is_sacked(end - 1) {
                end = end - 1;
            }
            if end <= una || end <= self.high_rxt {
                return None;
            }
            let start = self.first_unsacked((end - mss).max(una).max(self.high_rxt));
            Some((start, snd_max.since(start).clamp(1, mss)))
        }

        fn detect(&mut self, una: SeqNum) -> usize {
            let Some(&(_, highest)) = self.ranges().last() else {
                return 0;
            };
            let mut found = 0;
            while let Some(&(s, e, marker)) = self.log.front() {
                if e <= una {
                    self.log.pop_front();
                    continue;
                }
                if highest <= marker {
                    break;
                }
                self.log.pop_front();
                let start = self.first_unsacked(s.max(una));
                if start < e {
                    found += 1;
                    let mut x = start;
                    while x != e {
                        Model::set(&mut self.again, self.base, x, true);
                        x += 1;
                    }
                }
            }
            found
        }

        fn on_retransmit(&mut self, start: SeqNum, len: usize, snd_nxt: SeqNum) {
            let end = start + len;
            self.high_rxt = self.high_rxt.max(end);
            self.snd_max = self.snd_max.max(snd_nxt);
            let mut x = start;
            while x != end {
                Model::set(&mut self.again, self.base, x, false);
                x += 1;
            }
            if self.log.len() >= MAX_RETRANSMITTED {
                self.log.pop_front();
            }
            self.log.push_back((start, end, snd_nxt));
        }

        fn start_episode(&mut self, una: SeqNum) {
            self.high_rxt = una;
            self.rescue_done = false;
            self.log.clear();
            self.again.clear();
        }

        fn on_rto(&mut self, una: SeqNum, snd_max: SeqNum) {
            self.lost_end = snd_max;
            self.snd_max = self.snd_max.max(snd_max);
            self.start_episode(una);
            self.reno = 0;
        }
    }

    /// Compares every observable of the scoreboard with the model.
    fn agree(sb: &Scoreboard, m: &Model, una: SeqNum, snd_max: SeqNum, mss: usize, rng: &mut Rng) {
        sb.check();
        let what = format!("una {una} snd_max {snd_max}");
        let want = m.ranges();
        assert_eq!(ranges(sb), want, "ranges, {what}");
        assert_eq!(sb.range_count(), want.len());
        assert_eq!(sb.sacked_bytes(), m.sacked_bytes(), "sacked_bytes, {what}");
        assert_eq!(sb.highest_sacked(), want.last().map(|r| r.1));
        assert_eq!(sb.lost_end(), m.lost_end, "lost_end, {what}");
        assert_eq!(sb.high_rxt(), m.high_rxt, "high_rxt, {what}");
        assert_eq!(sb.pipe(una, snd_max), m.pipe(una, snd_max), "pipe, {what}");
        assert_eq!(
            sb.next_lost(una, mss),
            m.next_lost(una, mss),
            "next_lost, {what}"
        );
        assert_eq!(
            sb.peek_again(una, mss),
            m.peek_again(una, mss),
            "peek_again, {what}"
        );
        assert_eq!(
            sb.peek_rescue(una, snd_max, mss),
            m.peek_rescue(una, snd_max, mss),
            "peek_rescue, {what}"
        );
        let flight = snd_max.since(una);
        for x in [
            una,
            una + rng.below(flight + 1),
            una + rng.below(flight + 1),
            sb.lost_end() - 1,
        ] {
            assert_eq!(sb.is_lost(x), m.is_lost(x), "is_lost({x}), {what}");
        }
    }

    /// Random operations, as a connection (or a hostile peer) would cause
    /// them, on the scoreboard and the model side by side.
    /// What a random run went through (to show the runs reach the cases
    /// that matter).
    #[derive(Default, Debug)]
    struct Coverage {
        full: usize,
        found_lost: usize,
        sent_again: usize,
        rescues: usize,
        wrapped: usize,
    }

    /// Hostile runs SACK mostly single odd bytes, filling the scoreboard.
    fn random_run(seed: u64, hostile: bool, ops: usize, cov: &mut Coverage) {
        let mut rng = Rng(seed);
        // Near the top of sequence space, so that most runs wrap.
        let mut una = SeqNum(u32::MAX - rng.below(6000) as u32);
        let mut snd_max = una + 2000 + rng.below(2000) + if hostile { 2500 } else { 0 };
        let mss = [1, 7, 100, 536][rng.below(4)];
        let mut sb = Scoreboard::new(una);
        let mut m = Model::new(una);
        for _ in 0..ops {
            let flight = snd_max.since(una);
            match rng.below(100) {
                0..40 => {
                    let mut blocks = Vec::new();
                    for _ in 0..if hostile { 4 } else { 1 + rng.below(4) } {
                        let l = if hostile && rng.chance(90) {
                            // An odd sequence number.
                            let l = una + 2 * rng.below(flight / 2);
                            l + usize::from(l.0 % 2 == 0)
                        } else {
                            una + rng.below(flight + 2) - usize::from(rng.chance(5))
                        };
                        let len = match rng.below(if hostile { 9 } else { 10 }) {
                            _ if hostile && rng.chance(97) => 1,
                            0..6 => 1,
                            6..9 => 1 + rng.below(2 * mss),
                            _ => 1 + rng.below(flight + 1),
                        };
                        blocks.push((l, l + len));
                    }
                    assert_eq!(
                        sb.add_blocks(una, snd_max, &blocks),
                        m.add_blocks(una, snd_max, &blocks),
                        "add_blocks {blocks:?}"
                    );
                }
                40..45 => {
                    let before = una;
                    una += rng.below(flight.min(2 * mss) + 1);
                    cov.wrapped += usize::from(una.0 < before.0);
                    sb.on_cumulative_ack(una);
                    m.on_cumulative_ack(una);
                }
                45..55 => {
                    sb.update_lost(mss);
                    m.update_lost(mss);
                }
                55..60 => {
                    let found = sb.detect_lost_retransmissions(una);
                    assert_eq!(found, m.detect(una));
                    cov.found_lost += found;
                }
                60..75 => {
                    // NextSeg as output.rs does it.
                    if let Some((seq, len)) = sb.peek_again(una, mss).or(sb.next_lost(una, mss)) {
                        cov.sent_again += usize::from(sb.peek_again(una, mss).is_some());
                        sb.on_retransmit(seq, len, snd_max);
                        m.on_retransmit(seq, len, snd_max);
                    } else if let Some((seq, len)) = sb.peek_rescue(una, snd_max, mss) {
                        sb.mark_rescued();
                        m.rescue_done = true;
                        cov.rescues += 1;
                        sb.on_retransmit(seq, len, snd_max);
                        m.on_retransmit(seq, len, snd_max);
                    }
                }
                75..82 if flight < 12_000 => snd_max += 1 + rng.below(2 * mss),
                82..84 => {
                    sb.on_rto(una, snd_max);
                    m.on_rto(una, snd_max);
                }
                84..87 => {
                    sb.start_episode(una);
                    m.start_episode(una);
                }
                87..89 => {
                    let end = (una + mss).min(snd_max);
                    sb.mark_lost_through(end);
                    m.lost_end = m.lost_end.max(end);
                }
                89..92 => {
                    sb.add_reno_dupack(mss, flight);
                    m.reno = (m.reno + mss).min(flight.saturating_sub(mss));
                }
                92..94 => {
                    sb.reset_reno();
                    m.reno = 0;
                }
                94 if !hostile => {
                    sb.clear(una);
                    m = Model::new(una);
                }
                _ => {}
            }
            agree(&sb, &m, una, snd_max, mss, &mut rng);
            cov.full += usize::from(sb.range_count() == MAX_RANGES);
        }
    }

    #[test]
    fn agrees_with_the_reference_model_on_random_operations() {
        let mut cov = Coverage::default();
        for seed in 1..=36u64 {
            let hostile = seed % 3 == 0;
            let ops = if hostile { 2500 } else { 1500 };
            random_run(
                seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                hostile,
                ops,
                &mut cov,
            );
        }
        println!("{cov:?}");
        assert!(cov.full > 0 && cov.found_lost > 0 && cov.sent_again > 0);
        assert!(cov.rescues > 0 && cov.wrapped > 0);
    }

    /// A receiver SACKs every other byte of a large flight, four one-byte
    /// blocks per ACK: the scoreboard keeps at most MAX_RANGES ranges,
    /// agrees with the model, and recovery still sends whole segments.
    #[test]
    fn every_other_byte_sacked_stays_bounded_and_retransmits_whole_segments() {
        const MSS: usize = 1448;
        let una = SeqNum(u32::MAX - 700_000);
        let snd_max = una + 1000 * MSS;
        let mut sb = Scoreboard::new(una);
        let mut m = Model::new(una);
        let mut rng = Rng(7);
        let mut next = una + 1;
        let mut acks = 0;
        while next < una + 40_000 {
            let blocks: Vec<_> = (0..4).map(|k| (next + 2 * k, next + 2 * k + 1)).collect();
            next += 8;
            let added = sb.add_blocks(una, snd_max, &blocks);
            assert_eq!(added, m.add_blocks(una, snd_max, &blocks));
            sb.update_lost(MSS);
            m.update_lost(MSS);
            assert!(sb.range_count() <= MAX_RANGES);
            acks += 1;
            if acks % 1000 == 0 {
                agree(&sb, &m, una, snd_max, MSS, &mut rng);
            }
        }
        assert_eq!(sb.range_count(), MAX_RANGES, "the rest was dropped");
        assert_eq!(sb.sacked_bytes(), MAX_RANGES);
        agree(&sb, &m, una, snd_max, MSS, &mut rng);
        // Everything below the third-highest range is lost: recovery walks
        // it in whole segments, SACKed bytes inside included.
        sb.start_episode(una);
        m.start_episode(una);
        let mut sent = 0;
        while let Some((seq, len)) = sb.next_lost(una, MSS) {
            assert_eq!(len, MSS, "a whole segment at {seq}");
            assert_eq!(Some((seq, len)), m.next_lost(una, MSS));
            sb.on_retransmit(seq, len, snd_max);
            m.on_retransmit(seq, len, snd_max);
            sent += 1;
        }
        assert_eq!(sent, sb.lost_end().since(una).div_ceil(MSS));
        agree(&sb, &m, una, snd_max, MSS, &mut rng);
        // The retransmissions are lost too (new data above them SACKed):
        // sent again as whole segments.
        // (The scoreboard is full: only a block merging with a range is
        // taken.)
        let snd_max = snd_max + MSS;
        let block = [(una + 2048, snd_max)];
        assert!(sb.add_blocks(una, snd_max, &block) > 0);
        m.add_blocks(una, snd_max, &block);
        assert_eq!(sb.detect_lost_retransmissions(una), sent);
        assert_eq!(m.detect(una), sent);
        agree(&sb, &m, una, snd_max, MSS, &mut rng);
        let (seq, len) = sb.peek_again(una, MSS).unwrap();
        assert_eq!((seq, len), (una, MSS));
        sb.on_retransmit(seq, len, snd_max);
        m.on_retransmit(seq, len, snd_max);
        assert_eq!(sb.peek_again(una, MSS), Some((una + MSS, MSS)));
        agree(&sb, &m, una, snd_max, MSS, &mut rng);
        // Once all is acknowledged the memory the attack took goes back.
        assert!(sb.memory_used() > 16 * 1024);
        sb.on_cumulative_ack(snd_max);
        assert_eq!((sb.range_count(), sb.peek_again(snd_max, MSS)), (0, None));
        assert!(sb.memory_used() < 4096, "{}", sb.memory_used());
    }

    /// RFC 6675 NextSeg returns "one segment of up to SMSS octets starting
    /// with S2": SACKed bytes inside the segment do not cut it short; only
    /// the end of the outstanding data does.
    #[test]
    fn retransmissions_are_whole_segments_but_stop_at_the_end_of_data() {
        let mut sb = Scoreboard::new(s(0));
        // One-byte SACKs at 10, 20, ..., 990.
        let blocks: Vec<_> = (1..100).map(|k| (s(10 * k), s(10 * k + 1))).collect();
        for b in blocks.chunks(4) {
            sb.add_blocks(s(0), s(1000), b);
        }
        sb.update_lost(MSS);
        assert_eq!(sb.lost_end(), s(970));
        sb.start_episode(s(0));
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(0), 100)));
        sb.on_retransmit(s(0), 100, s(1000));
        // 100 is SACKed: the next segment starts after it.
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(101), 100)));
        sb.on_retransmit(s(101), 100, s(1000));
        sb.on_retransmit(s(201), 769, s(1000));
        assert_eq!(sb.next_lost(s(0), MSS), None, "970.. is not lost");
        // A segment near the end of the data is cut there only.
        sb.mark_lost_through(s(995));
        assert_eq!(sb.next_lost(s(0), MSS), Some((s(971), 29)));
        // The rescue: the last MSS below the highest unSACKed byte, as
        // far as the end of the data.
        let mut sb = Scoreboard::new(s(0));
        sb.add_blocks(s(0), s(1000), &[(s(995), s(1000)), (s(905), s(906))]);
        sb.start_episode(s(0));
        assert_eq!(sb.peek_rescue(s(0), s(1000), MSS), Some((s(895), 100)));
        sb.on_retransmit(s(0), 990, s(1000));
        assert_eq!(
            sb.peek_rescue(s(0), s(1000), MSS),
            Some((s(990), 10)),
            "above HighRxt, to the end of the data"
        );
        // A lost retransmission is sent again from its first unSACKed byte
        // as a whole segment.
        let mut sb = Scoreboard::new(s(0));
        sb.add_blocks(s(0), s(1000), &[(s(300), s(1000))]);
        sb.update_lost(MSS);
        sb.start_episode(s(0));
        sb.on_retransmit(s(0), 100, s(1000));
        sb.add_blocks(
            s(0),
            s(1100),
            &[(s(0), s(5)), (s(10), s(11)), (s(1000), s(1100))],
        );
        assert_eq!(sb.detect_lost_retransmissions(s(0)), 1);
        assert_eq!(sb.peek_again(s(0), MSS), Some((s(5), 100)));
        sb.check();
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let una = SeqNum(u32::MAX - 150);
        let snd_max = una + 500;
        let mut sb = Scoreboard::new(una);
        // Ranges on both sides of 2^32 and one across it.
        let blocks = [
            (una + 100, una + 120),
            (SeqNum(u32::MAX - 10), SeqNum(20)),
            (SeqNum(100), SeqNum(101)),
            (SeqNum(200), SeqNum(300)),
        ];
        assert_eq!(sb.add_blocks(una, snd_max, &blocks), 20 + 31 + 1 + 100);
        assert_eq!(
            ranges(&sb),
            [
                (una + 100, una + 120),
                (SeqNum(u32::MAX - 10), SeqNum(20)),
                (SeqNum(100), SeqNum(101)),
                (SeqNum(200), SeqNum(300)),
            ]
        );
        assert_eq!(sb.highest_sacked(), Some(SeqNum(300)));
        sb.update_lost(MSS);
        assert_eq!(sb.lost_end(), SeqNum(u32::MAX - 10));
        assert!(sb.is_lost(una));
        assert!(sb.is_lost(SeqNum(u32::MAX - 11)));
        assert!(!sb.is_lost(SeqNum(u32::MAX)));
        assert!(!sb.is_lost(SeqNum(20)));
        // Lost: [una, una+100), [una+120, MAX-10); the rest of the
        // unSACKed is in flight.
        let unsacked_above = snd_max.since(SeqNum(u32::MAX - 10)) - 31 - 1 - 100;
        assert_eq!(sb.pipe(una, snd_max), unsacked_above);
        sb.start_episode(una);
        sb.on_retransmit(una, MSS, snd_max);
        assert_eq!(sb.next_lost(una, MSS), Some((una + 120, MSS)));
        sb.on_retransmit(una + 120, MSS, snd_max);
        // Retransmitted: [una, una+100), [una+120, MAX-10) and [20, 69);
        // the last is in flight twice (not lost, and retransmitted).
        assert_eq!(sb.high_rxt(), SeqNum(69));
        assert_eq!(sb.pipe(una, snd_max), unsacked_above + 100 + 20 + 49);
        // The cumulative ACK crosses 2^32 into the middle of a range.
        sb.on_cumulative_ack(SeqNum(5));
        assert_eq!(ranges(&sb)[0], (SeqNum(5), SeqNum(20)));
        assert_eq!(sb.sacked_bytes(), 15 + 1 + 100);
        assert_eq!(sb.next_lost(SeqNum(5), MSS), None);
        sb.check();
        let mut m = Model::new(una);
        m.add_blocks(una, snd_max, &blocks);
        m.update_lost(MSS);
        m.start_episode(una);
        m.on_retransmit(una, MSS, snd_max);
        m.on_retransmit(una + 120, MSS, snd_max);
        m.on_cumulative_ack(SeqNum(5));
        agree(&sb, &m, SeqNum(5), snd_max, MSS, &mut Rng(1));
    }

    fn steps() -> u64 {
        STEPS.with(|s| s.get())
    }

    /// The work of one ACK, counted: the calls input.rs and output.rs
    /// make.
    fn ack_steps(
        sb: &mut Scoreboard,
        una: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
    ) -> u64 {
        const MSS: usize = 1448;
        let before = steps();
        sb.add_blocks(una, snd_max, blocks);
        sb.update_lost(MSS);
        sb.detect_lost_retransmissions(una);
        sb.is_lost(una);
        sb.sacked_bytes();
        sb.highest_sacked();
        sb.pipe(una, snd_max);
        sb.peek_again(una, MSS);
        sb.next_lost(una, MSS);
        sb.peek_rescue(una, snd_max, MSS);
        steps() - before
    }

    /// The old worst case (1,024 one-byte ranges, 4,096 retransmissions
    /// all found lost) costs each ACK a bounded number of tree levels, not
    /// ranges x retransmissions.
    #[test]
    fn work_per_ack_is_logarithmic() {
        let una = SeqNum(u32::MAX - 100_000);
        let snd_max0 = una + 1_448_000;
        let mut sb = Scoreboard::new(una);
        for k in 0..MAX_RANGES - 1 {
            let b = una + (1 + 2 * k);
            sb.add_blocks(una, snd_max0, &[(b, b + 1)]);
        }
        sb.add_blocks(una, snd_max0, &[(snd_max0 - 1, snd_max0)]);
        sb.update_lost(1448);
        sb.start_episode(una);
        for k in 0..MAX_RETRANSMITTED {
            sb.on_retransmit(una + 2 * (k % (MAX_RANGES - 1)), 1, snd_max0);
        }
        let mut snd_max = snd_max0 + 1448;
        // All 4,096 are found lost at once: amortized, a few tree walks
        // each.
        let detect = ack_steps(&mut sb, una, snd_max, &[(snd_max0 - 1, snd_max0 + 1)]);
        sb.check();
        assert!(sb.retransmitted.is_empty());
        assert_eq!(sb.again.len(), MAX_RANGES - 1, "each one-byte hole");
        assert_eq!(sb.range_count(), MAX_RANGES);
        assert!(sb.pipe(una, snd_max) > 0);
        // Then ACKs that fill holes at the bottom (merging ranges, removing
        // lost stretches) and add one-byte ranges further up, keeping the
        // scoreboard full.
        let (mut hole, mut fresh) = (una, una + 4097);
        let mut worst = 0;
        let mut total = 0;
        for _ in 0..300 {
            let blocks = [
                (hole, hole + 1),
                (hole + 2, hole + 3),
                (fresh, fresh + 1),
                (fresh + 2, fresh + 3),
            ];
            hole += 4;
            fresh += 4;
            snd_max += 1;
            let n = ack_steps(&mut sb, una, snd_max, &blocks);
            worst = worst.max(n);
            total += n;
        }
        sb.check();
        let height = sb.sacked.check().max(sb.again.check()) as u64;
        // AVL: height <= 1.44 log2(n + 2).
        assert!(height <= 16, "height {height}");
        // Retransmissions (whole segments) take the lost ones off, each
        // stretch once.
        let stretches = sb.again.len() as u64;
        assert!(stretches > 300, "{stretches}");
        let before = steps();
        let mut sent = 0;
        while let Some((seq, len)) = sb.peek_again(una, 1448).or(sb.next_lost(una, 1448)) {
            sb.on_retransmit(seq, len, snd_max);
            sent += 1;
        }
        let per_retransmit = (steps() - before) / (sent + stretches);
        sb.check();
        println!(
            "steps: detection of 4096: {detect}, per ACK worst {worst} mean {}, \
             {per_retransmit} per retransmission or lost stretch (height {height})",
            total / 300
        );
        assert!(per_retransmit <= 8 * height, "{per_retransmit}");
        assert!(detect <= MAX_RETRANSMITTED as u64 * 12 * height, "{detect}");
        assert!(worst <= 80 * height, "{worst}");
        // The old scoreboard's SetPipe alone took 4096 x 1024 steps here.
        assert!(worst < 4096);
    }

    #[test]
    fn interval_set_keeps_its_shape() {
        let mut rng = Rng(99);
        let base = SeqNum(u32::MAX - 5000);
        let mut set = IntervalSet::new();
        let mut flags = vec![false; 10_000];
        for i in 0..20_000 {
            let a = rng.below(9_000);
            let b = a + 1 + rng.below(if i % 7 == 0 { 400 } else { 3 });
            if rng.chance(60) {
                let mut gaps = 0;
                let r = set.add(base + a, base + b, usize::MAX, |x, y| gaps += y.since(x));
                let (lo, hi, added) = r.unwrap();
                let fresh = flags[a..b].iter().filter(|&&f| !f).count();
                assert_eq!((added, gaps), (fresh, fresh));
                flags[a..b].iter_mut().for_each(|f| *f = true);
                assert!(lo <= base + a && hi >= base + b);
            } else {
                let mut gone = 0;
                set.remove(base + a, base + b, usize::MAX, |x, y| gone += y.since(x));
                let was = flags[a..b].iter().filter(|&&f| f).count();
                assert_eq!(gone, was);
                flags[a..b].iter_mut().for_each(|f| *f = false);
            }
            if i % 500 == 0 {
                set.check();
                let x = rng.below(10_000);
                let y = x + rng.below(10_000 - x);
                let want = flags[x..y].iter().filter(|&&f| f).count();
                assert_eq!(set.measure(base + x, base + y), want);
                assert_eq!(set.bytes(), flags.iter().filter(|&&f| f).count());
            }
        }
    }
}
