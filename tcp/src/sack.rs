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

use std::collections::VecDeque;

use crate::SeqNum;

/// RFC 6675 DupThresh.
pub const DUP_THRESH: usize = 3;

/// Sender-side SACK state of one connection.
#[derive(Clone, Debug)]
pub struct Scoreboard {
    sacked: Vec<(SeqNum, SeqNum)>,
    sacked_bytes: usize,
    /// Unsacked octets below this are lost (RFC 6675 IsLost).
    lost_end: SeqNum,
    /// RFC 6675 HighRxt: end of the highest retransmission in this episode.
    high_rxt: SeqNum,
    /// RFC 6675 RescueRxt: a rescue retransmission was sent in this episode.
    rescue_done: bool,
    /// Non-SACK peers: bytes presumed delivered, one MSS per duplicate ACK.
    reno_sacked: usize,
    /// Retransmissions of this episode, in sending order: (start, end,
    /// SND.NXT when sent). Used to notice lost retransmissions.
    retransmitted: VecDeque<(SeqNum, SeqNum, SeqNum)>,
    /// Retransmissions found lost, to be sent again before anything else.
    /// Their unSACKed bytes are not in the pipe until they are.
    again: VecDeque<(SeqNum, SeqNum)>,
}

/// Most ranges tracked; information beyond this is dropped (the sender only
/// loses precision, never correctness: unknown means unSACKed). Large,
/// because a slow-start overshoot into a drop-tail queue leaves hundreds of
/// holes.
const MAX_RANGES: usize = 1024;

impl Scoreboard {
    /// An empty scoreboard for a connection at `snd_una`.
    pub fn new(snd_una: SeqNum) -> Self {
        Scoreboard {
            sacked: Vec::new(),
            sacked_bytes: 0,
            lost_end: snd_una,
            high_rxt: snd_una,
            rescue_done: false,
            reno_sacked: 0,
            retransmitted: VecDeque::new(),
            again: VecDeque::new(),
        }
    }

    /// Forgets all SACK information (after reneging is suspected).
    pub fn clear(&mut self, snd_una: SeqNum) {
        *self = Scoreboard::new(snd_una);
    }

    /// Bytes currently SACKed (or presumed delivered, for non-SACK peers).
    pub fn sacked_bytes(&self) -> usize {
        self.sacked_bytes + self.reno_sacked
    }

    /// The SACKed ranges.
    pub fn ranges(&self) -> &[(SeqNum, SeqNum)] {
        &self.sacked
    }

    /// True when any octet is known to be SACKed.
    pub fn has_sacks(&self) -> bool {
        !self.sacked.is_empty()
    }

    /// Highest SACKed octet + 1, if any.
    pub fn highest_sacked(&self) -> Option<SeqNum> {
        self.sacked.last().map(|r| r.1)
    }

    /// The cumulative ACK advanced to `snd_una`: ranges below it go.
    pub fn on_cumulative_ack(&mut self, snd_una: SeqNum) {
        let mut removed = 0;
        self.sacked.retain_mut(|r| {
            if r.1 <= snd_una {
                removed += r.1.since(r.0);
                false
            } else {
                if r.0 < snd_una {
                    removed += snd_una.since(r.0);
                    r.0 = snd_una;
                }
                true
            }
        });
        self.sacked_bytes -= removed;
        self.lost_end = self.lost_end.max(snd_una);
        self.high_rxt = self.high_rxt.max(snd_una);
        while self.retransmitted.front().is_some_and(|r| r.1 <= snd_una) {
            self.retransmitted.pop_front();
        }
        while self.again.front().is_some_and(|r| r.1 <= snd_una) {
            self.again.pop_front();
        }
    }

    /// Records SACK blocks from an ACK. Blocks not inside (snd_una, snd_max]
    /// are ignored: below SND.UNA they are D-SACKs (RFC 2883), above SND.MAX
    /// they are bogus. Returns the number of newly SACKed bytes.
    pub fn add_blocks(
        &mut self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
    ) -> usize {
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
        let first = self.sacked.partition_point(|x| x.1 < l);
        let last = self.sacked.partition_point(|x| x.0 <= r);
        if first == last {
            if self.sacked.len() >= MAX_RANGES {
                return 0;
            }
            self.sacked.insert(first, (l, r));
            self.sacked_bytes += r.since(l);
            return r.since(l);
        }
        let lo = l.min(self.sacked[first].0);
        let hi = r.max(self.sacked[last - 1].1);
        let before: usize = self.sacked[first..last]
            .iter()
            .map(|x| x.1.since(x.0))
            .sum();
        self.sacked.drain(first + 1..last);
        self.sacked[first] = (lo, hi);
        let added = hi.since(lo) - before;
        self.sacked_bytes += added;
        added
    }

    /// Bytes SACKed inside [a, b).
    fn sacked_in(&self, a: SeqNum, b: SeqNum) -> usize {
        if a >= b {
            return 0;
        }
        self.sacked
            .iter()
            .map(|&(l, r)| {
                let lo = l.max(a);
                let hi = r.min(b);
                hi.since(lo)
            })
            .sum()
    }

    fn unsacked_in(&self, a: SeqNum, b: SeqNum) -> usize {
        b.since(a) - self.sacked_in(a, b)
    }

    /// RFC 6675 IsLost, applied to the scoreboard: "The routine returns true
    /// when either DupThresh discontiguous SACKed sequences have arrived
    /// above 'SeqNum' or more than (DupThresh - 1) * SMSS bytes with sequence
    /// numbers greater than 'SeqNum' have been SACKed." Moves `lost_end` up
    /// to the start of the highest SACKed range for which that holds.
    pub fn update_lost(&mut self, mss: usize) {
        let mut bytes = 0;
        for (count, &(l, r)) in self.sacked.iter().rev().enumerate() {
            bytes += r.since(l);
            if count + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                self.lost_end = self.lost_end.max(l);
                return;
            }
        }
    }

    /// True when `seq` is unSACKed and deemed lost.
    pub fn is_lost(&self, seq: SeqNum) -> bool {
        seq < self.lost_end && !self.sacked.iter().any(|&(l, r)| seq.in_range(l, r))
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
        self.start_episode(snd_una);
        self.reno_sacked = 0;
    }

    /// A new recovery episode starts at `snd_una`.
    pub fn start_episode(&mut self, snd_una: SeqNum) {
        self.high_rxt = snd_una;
        self.rescue_done = false;
        self.retransmitted.clear();
        self.again.clear();
    }

    /// Lost retransmissions (the idea of Linux's tcp_mark_lost_retrans, and
    /// of RACK, RFC 8985): a retransmission is lost when data sent after it
    /// has been SACKed while it is still unacknowledged. RFC 6675 alone
    /// would wait for the retransmission timer. Returns how many were found.
    pub fn detect_lost_retransmissions(&mut self, snd_una: SeqNum) -> usize {
        let Some(highest) = self.highest_sacked() else {
            return 0;
        };
        let mut found = 0;
        while let Some(&(s, e, marker)) = self.retransmitted.front() {
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
            let s = s.max(snd_una);
            if self.unsacked_in(s, e) > 0 {
                self.again.push_back((s, e));
                found += 1;
            }
        }
        found
    }

    /// The next lost retransmission to send again, trimmed to unSACKed,
    /// unacknowledged data and `mss` (ranges meanwhile SACKed are skipped).
    pub fn peek_again(&self, snd_una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
        for &(s, e) in &self.again {
            let mut start = s.max(snd_una);
            for &(l, r) in &self.sacked {
                if l <= start && start < r {
                    start = r;
                }
            }
            if start >= e {
                continue;
            }
            let mut end = e.min(start + mss);
            if let Some(&(l, _)) = self.sacked.iter().find(|&&(l, _)| l > start) {
                end = end.min(l);
            }
            return Some((start, end.since(start)));
        }
        None
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

    /// RFC 6675 SetPipe: octets believed in the network. Every unSACKed
    /// octet in [snd_una, snd_max) counts once if not lost, and once more if
    /// it was retransmitted (below HighRxt).
    pub fn pipe(&self, snd_una: SeqNum, snd_max: SeqNum) -> usize {
        let lost_end = self.lost_end.max(snd_una).min(snd_max);
        let rxt_end = self.high_rxt.max(snd_una).min(snd_max);
        let not_lost = self.unsacked_in(lost_end, snd_max);
        let retransmitted = self.unsacked_in(snd_una, rxt_end);
        // Retransmissions known lost are not in the network any more.
        let lost_again: usize = self
            .again
            .iter()
            .map(|&(s, e)| self.unsacked_in(s.max(snd_una), e.min(rxt_end)))
            .sum();
        (not_lost + retransmitted)
            .saturating_sub(self.reno_sacked)
            .saturating_sub(lost_again)
    }

    /// RFC 6675 NextSeg rule (1): the first unSACKed, lost octet at or above
    /// HighRxt, and how many bytes (up to `mss`) to retransmit from there
    /// without running into SACKed data.
    pub fn next_lost(&self, snd_una: SeqNum, mss: usize) -> Option<(SeqNum, usize)> {
        let mut start = self.high_rxt.max(snd_una);
        for &(l, r) in &self.sacked {
            if r <= start {
                continue;
            }
            if l <= start {
                start = r;
                continue;
            }
            // `start` is in the hole below [l, r).
            break;
        }
        if start >= self.lost_end {
            return None;
        }
        let mut end = (start + mss).min(self.lost_end);
        if let Some(&(l, _)) = self.sacked.iter().find(|&&(l, _)| l > start) {
            end = end.min(l);
        }
        Some((start, end.since(start)))
    }

    /// RFC 6675 NextSeg rule (4), the rescue retransmission: once per
    /// episode, the last MSS of unSACKed data below `snd_max`, when nothing
    /// else may be sent. Keeps a lost tail from waiting for the timer.
    pub fn peek_rescue(
        &self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        mss: usize,
    ) -> Option<(SeqNum, usize)> {
        if self.rescue_done {
            return None;
        }
        // The highest unSACKed byte below snd_max.
        let mut end = snd_max;
        for &(l, r) in self.sacked.iter().rev() {
            if r >= end && l < end {
                end = l;
            }
        }
        if end <= snd_una || end <= self.high_rxt {
            return None;
        }
        let start = (end - mss).max(snd_una).max(self.high_rxt);
        Some((start, end.since(start)))
    }

    /// Records that the rescue retransmission of this episode was sent.
    pub fn mark_rescued(&mut self) {
        self.rescue_done = true;
    }

    /// Records a retransmission of [start, start+len), sent when SND.NXT
    /// was `snd_nxt`.
    pub fn on_retransmit(&mut self, start: SeqNum, len: usize, snd_nxt: SeqNum) {
        self.high_rxt = self.high_rxt.max(start + len);
        let end = start + len;
        // A range sent again leaves the lost-retransmission queue; entries
        // wholly SACKed meanwhile are dropped on the way.
        while let Some(&(s, e)) = self.again.front() {
            if self.unsacked_in(s, e) == 0 {
                self.again.pop_front();
                continue;
            }
            if start >= s && start < e {
                if end >= e {
                    self.again.pop_front();
                } else {
                    self.again[0].0 = end;
                }
            }
            break;
        }
        if self.retransmitted.len() >= 4096 {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 100;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn blocks_merge_and_d_sacks_are_ignored() {
        let mut sb = Scoreboard::new(s(0));
        assert_eq!(sb.add_blocks(s(0), s(1000), &[(s(200), s(300))]), 100);
        assert_eq!(
            sb.add_blocks(s(0), s(1000), &[(s(300), s(400)), (s(250), s(350))]),
            100
        );
        assert_eq!(sb.ranges(), &[(s(200), s(400))]);
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
        assert_eq!(sb.ranges(), &[(s(300), s(400))]);
        assert_eq!(sb.sacked_bytes(), 100);
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
}
