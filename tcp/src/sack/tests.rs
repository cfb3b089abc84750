//! Tests of the scoreboard and its interval sets.

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
fn newly_sacked_and_unsacked_stretches_are_reported() {
    let mut sb = Scoreboard::new(s(0));
    let mut seen = Vec::new();
    sb.add_blocks_noting(
        s(0),
        s(1000),
        &[(s(200), s(300)), (s(500), s(600))],
        |a, b| seen.push((a, b)),
    );
    assert_eq!(seen, [(s(200), s(300)), (s(500), s(600))]);
    // A block over both ranges reports only the gaps it fills.
    seen.clear();
    let added = sb.add_blocks_noting(s(0), s(1000), &[(s(100), s(700))], |a, b| seen.push((a, b)));
    assert_eq!(added, 400);
    assert_eq!(seen, [(s(100), s(200)), (s(300), s(500)), (s(600), s(700))]);
    // Nothing new, and a refused (bogus) block: nothing reported.
    seen.clear();
    sb.add_blocks_noting(
        s(0),
        s(1000),
        &[(s(150), s(650)), (s(900), s(1100))],
        |a, b| seen.push((a, b)),
    );
    assert!(seen.is_empty());
    sb.add_blocks(s(0), s(1000), &[(s(800), s(850))]);
    // The stretches of [from, to) not SACKed, clipped to it.
    let mut holes = Vec::new();
    sb.for_each_unsacked(s(0), s(1000), |a, b| holes.push((a, b)));
    assert_eq!(holes, [(s(0), s(100)), (s(700), s(800)), (s(850), s(1000))]);
    holes.clear();
    sb.for_each_unsacked(s(150), s(820), |a, b| holes.push((a, b)));
    assert_eq!(holes, [(s(700), s(800))]);
    holes.clear();
    sb.for_each_unsacked(s(720), s(730), |a, b| holes.push((a, b)));
    assert_eq!(holes, [(s(720), s(730))]);
    holes.clear();
    sb.for_each_unsacked(s(100), s(700), |a, b| holes.push((a, b)));
    assert!(holes.is_empty());
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

/// What a tail loss probe in fast recovery repeats: the segment ending
/// with the highest unSACKed octet, never starting inside a SACKed range.
#[test]
fn highest_unsacked_is_below_the_top_sacked_range() {
    let mut sb = Scoreboard::new(s(0));
    let mss = 150;
    // Nothing SACKed: the last segment sent.
    assert_eq!(sb.highest_unsacked(s(0), s(1000), mss), Some((s(850), 150)));
    sb.add_blocks(s(0), s(1000), &[(s(100), s(200)), (s(300), s(1000))]);
    // Below the range reaching SND.MAX, not inside the one under it.
    assert_eq!(sb.highest_unsacked(s(0), s(1000), mss), Some((s(200), 100)));
    // Nothing outstanding.
    assert_eq!(sb.highest_unsacked(s(1000), s(1000), mss), None);
    let mut all = Scoreboard::new(s(0));
    all.add_blocks(s(0), s(1000), &[(s(10), s(1000))]);
    assert_eq!(all.highest_unsacked(s(0), s(1000), mss), Some((s(0), 10)));
    assert_eq!(all.highest_unsacked(s(10), s(1000), mss), None);
}

use crate::test_rng::Rng;

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

    fn add_blocks(&mut self, una: SeqNum, snd_max: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> usize {
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
    let mut rng = Rng::new(seed);
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
    let mut rng = Rng::new(7);
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
    agree(&sb, &m, SeqNum(5), snd_max, MSS, &mut Rng::new(1));
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
    let mut rng = Rng::new(99);
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
