//! Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation):
//! on every ACK that delivers data, how fast the path delivered the data
//! acknowledged, for model-based congestion control ([`crate::cc::Bbr`]).
//!
//! The connection counts what has been delivered (cumulatively ACKed or
//! SACKed) and when. Every transmission, first or retransmission, takes a
//! snapshot of those counters (draft 3.2, which covers retransmissions as
//! Linux's tcp_rate_skb_sent does); when data is delivered, the snapshot of
//! the most recently sent packet among those the ACK newly delivered gives
//! the sample: the data delivered since that packet left, over the longer
//! of its send interval and its ACK interval.
//!
//! Each delivered octet is looked at once, by the ACK that first delivers
//! it: the connection passes the stretches newly SACKed and, at a
//! cumulative ACK, the stretches of [old SND.UNA, SND.UNA) that were not
//! SACKed before (`RateEstimator::on_delivered`). A packet SACKed long
//! ago is therefore not sampled again when the cumulative ACK passes it
//! (Linux's tcp_rate.c clears the snapshot of a SACKed buffer for the same
//! reason), and cannot move C.first_sent_time back to its old send time.
//!
//! Snapshots are kept in a ring in sequence order, looked up by binary
//! search. New data leaves at SND.NXT, above everything; a retransmission
//! replaces the part of the snapshots its range covers with a fresh one
//! (splitting the snapshot around it: at most two more entries), so a
//! hole-filling ACK samples the retransmission, not the first transmission
//! (after a timeout, from before it). Data sent in the same instant with
//! the same counters shares one snapshot (a super segment, or a burst sent
//! in one poll), so a window of data takes a few entries per ACK that
//! clocked it out. The ring holds at most [`MAX_SNAPSHOTS`] (32 bytes each,
//! 128 KiB at most, allocated as the flight grows and freed when idle under
//! memory pressure or at the end); when full, new data extends the newest
//! entry and a retransmission keeps the older snapshot, which only makes
//! the samples of those bytes cover a longer interval (lower, never
//! higher), and each such merge is counted (`rate_snapshot_merges`). Once
//! grown to the flight's size the ring is reused: no allocation per
//! packet. A separate ring from RACK's records (`rack.rs`), keyed the same
//! way, so the two evolve independently.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::SeqNum;

/// Most snapshots kept per connection (bounded memory: 32 bytes each, 128
/// KiB in all). A window takes about one entry per ACK that clocked data
/// out, so this holds a flight of 8 MiB (the largest autotuned send buffer)
/// clocked out by ACKs of every two full segments (about 2,900 entries);
/// with ACKs of every segment, 5,800 would be needed, and the oldest
/// entries merge (`rate_snapshot_merges`), as they do for a 4 MiB flight
/// sent in bursts under 1 KiB.
pub const MAX_SNAPSHOTS: usize = 4096;

/// Times are microseconds since the connection's epoch, wrapping (about 71
/// minutes; every comparison is between times seconds apart).
type Micros = u32;

/// `a` is later than `b` (wrapping microseconds).
fn after(a: Micros, b: Micros) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The connection's delivery counters when some data was sent (the
/// draft's per-packet state P.delivered, P.delivered_time,
/// P.first_sent_time, P.is_app_limited, P.sent_time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Snapshot {
    start: SeqNum,
    end: SeqNum,
    /// P.sent_time.
    sent: Micros,
    /// P.delivered: C.delivered when it was sent.
    delivered: u64,
    /// P.delivered_time.
    delivered_at: Micros,
    /// P.first_sent_time.
    first_sent: Micros,
    /// P.is_app_limited.
    app_limited: bool,
    /// Sent by a retransmission: its ACK could be the original's, so it
    /// times no RTT (Karn's rule).
    retransmitted: bool,
}

impl Snapshot {
    /// Sent after `other`: Linux's order (tcp_rate_skb_delivered, with
    /// tcp_skb_sent_after breaking ties): the higher delivered count, then
    /// the later send time, then the higher end sequence number. Send
    /// times alone would do (the count only grows with time) but for
    /// sends in the same microsecond.
    fn sent_after(&self, other: &Snapshot) -> bool {
        if self.delivered != other.delivered {
            return self.delivered > other.delivered;
        }
        if self.sent != other.sent {
            return after(self.sent, other.sent);
        }
        self.end > other.end
    }
}

/// One delivery-rate sample, produced for each ACK that delivers data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes per second delivered over `interval`; `None` when the ACK gave
    /// no valid sample (no snapshot for what it delivered, or an interval
    /// shorter than the minimum RTT: "rate samples ... shorter than
    /// min_rtt ... are likely to be inaccurate", as ACK compression makes
    /// them).
    pub delivery_rate: Option<u64>,
    /// rs.interval: max(send interval, ACK interval).
    pub interval: Duration,
    /// rs.delivered: bytes delivered over the interval.
    pub delivered: u64,
    /// rs.prior_delivered: C.delivered when the sampled packet was sent
    /// (BBR counts round trips with it).
    pub prior_delivered: u64,
    /// C.delivered after this ACK: everything delivered so far.
    pub total_delivered: u64,
    /// The RTT of the most recently sent packet newly delivered that was
    /// never retransmitted (Karn's rule: the ACK of a retransmitted one
    /// may be the original's, and give an RTT shorter than the path's).
    pub rtt: Option<Duration>,
    /// The sampled packet was sent while the application, not the network,
    /// limited sending: the rate may be below what the path can do.
    pub is_app_limited: bool,
    /// Bytes this ACK newly delivered (cumulatively ACKed plus SACKed).
    pub acked_sacked: u64,
    /// Sequence space this ACK newly marked lost.
    pub newly_lost: u64,
    /// Bytes in flight (RFC 6675 pipe) before the ACK: after it, plus what
    /// it delivered and marked lost.
    pub prior_in_flight: u64,
    /// Bytes in flight after the ACK.
    pub in_flight: u64,
}

/// The delivery-rate estimator of one connection: the draft's connection
/// state (C.delivered, C.delivered_time, C.first_sent_time,
/// C.app_limited) and the per-transmission snapshots.
#[derive(Clone, Debug)]
pub(crate) struct RateEstimator {
    epoch: Instant,
    /// C.delivered: bytes delivered so far.
    delivered: u64,
    /// C.delivered_time.
    delivered_at: Micros,
    /// C.first_sent_time.
    first_sent: Micros,
    /// C.app_limited: the delivered count at which the current
    /// application-limited period ends; 0 when not application-limited.
    app_limited: u64,
    /// Snapshots of data not yet cumulatively acknowledged, in sequence
    /// order, disjoint.
    snaps: VecDeque<Snapshot>,
    /// The sample under construction for the ACK being processed: the most
    /// recently sent snapshot it newly delivered.
    best: Option<Snapshot>,
    /// The send time of the most recently sent snapshot the ACK newly
    /// delivered that was not a retransmission, for the RTT.
    timed: Option<Micros>,
    /// Transmissions whose snapshot was merged into another (or, for a
    /// retransmission, not taken) because the ring was full.
    merges: u64,
    /// Tests: the snapshot each ACK sampled (range, taken by a
    /// retransmission).
    #[cfg(test)]
    pub(crate) sampled: Vec<(SeqNum, SeqNum, bool)>,
}

impl RateEstimator {
    /// Fresh state; times count from `epoch`.
    pub(crate) fn new(epoch: Instant) -> Self {
        RateEstimator {
            epoch,
            delivered: 0,
            delivered_at: 0,
            first_sent: 0,
            app_limited: 0,
            snaps: VecDeque::new(),
            best: None,
            timed: None,
            merges: 0,
            #[cfg(test)]
            sampled: Vec::new(),
        }
    }

    fn micros(&self, now: Instant) -> Micros {
        now.saturating_duration_since(self.epoch).as_micros() as Micros
    }

    /// Heap bytes held.
    pub(crate) fn memory_used(&self) -> usize {
        self.snaps.capacity() * std::mem::size_of::<Snapshot>()
    }

    /// Frees the ring when nothing is outstanding (memory pressure, or
    /// the connection is done).
    pub(crate) fn release_if_idle(&mut self) {
        if self.snaps.is_empty() {
            self.snaps = VecDeque::new();
        }
    }

    /// Transmissions whose snapshot was merged because the ring was full.
    pub(crate) fn merges(&self) -> u64 {
        self.merges
    }

    /// Snapshots held.
    #[cfg(test)]
    pub(crate) fn snapshots(&self) -> usize {
        self.snaps.len()
    }

    /// True while an application-limited period lasts.
    #[cfg(test)]
    pub(crate) fn is_app_limited(&self) -> bool {
        self.app_limited != 0
    }

    /// The snapshot of [start, end) sent at `now` (draft 3.2,
    /// SendPacket's "P.first_sent_time = C.first_sent_time ...").
    fn snapshot(&self, now: Instant, start: SeqNum, end: SeqNum, retransmitted: bool) -> Snapshot {
        Snapshot {
            start,
            end,
            sent: self.micros(now),
            delivered: self.delivered,
            delivered_at: self.delivered_at,
            first_sent: self.first_sent,
            app_limited: self.app_limited != 0,
            retransmitted,
        }
    }

    /// New data [start, end) left at `now`; `idle`: nothing was in flight
    /// before it. Draft 3.2: "If there are no packets in flight yet, then
    /// we can start the delivery rate interval at the current time, since
    /// we know that any ACKs after now indicate that the network was able
    /// to deliver those packets completely in the sampling interval
    /// between now and the next ACK."
    pub(crate) fn on_send(&mut self, now: Instant, start: SeqNum, end: SeqNum, idle: bool) {
        if end <= start {
            return;
        }
        if idle {
            let at = self.micros(now);
            self.first_sent = at;
            self.delivered_at = at;
        }
        let snap = self.snapshot(now, start, end, false);
        let full = self.snaps.len() >= MAX_SNAPSHOTS;
        if let Some(last) = self.snaps.back_mut() {
            // New data lies above everything in the ring (SND.NXT only
            // grows).
            debug_assert!(last.end <= start);
            if full {
                last.end = end;
                self.merges += 1;
                return;
            }
            let same = Snapshot {
                start,
                end,
                ..*last
            } == snap;
            if last.end == start && same {
                last.end = end;
                return;
            }
        }
        self.snaps.push_back(snap);
    }

    /// A retransmission of [start, end) left at `now` (Linux takes the
    /// snapshot on every transmission, tcp_rate_skb_sent from
    /// __tcp_transmit_skb): its snapshot replaces what the ring held for
    /// those octets. Something is outstanding, so the interval is not
    /// restarted. Costs a binary search plus moving the entries between
    /// the range and the nearer end of the ring (retransmissions are
    /// mostly near SND.UNA, the front).
    pub(crate) fn on_retransmit(&mut self, now: Instant, start: SeqNum, end: SeqNum) {
        if end <= start {
            return;
        }
        let snap = self.snapshot(now, start, end, true);
        // The entries [i, j) overlap [start, end).
        let i = self.snaps.partition_point(|s| s.end <= start);
        let j = self.snaps.partition_point(|s| s.start < end).max(i);
        let left = (i < j && self.snaps[i].start < start).then(|| Snapshot {
            end: start,
            ..self.snaps[i]
        });
        let right = (i < j && self.snaps[j - 1].end > end).then(|| Snapshot {
            start: end,
            ..self.snaps[j - 1]
        });
        let pieces = [left, Some(snap), right];
        let needed = pieces.iter().flatten().count();
        if self.snaps.len() - (j - i) + needed > MAX_SNAPSHOTS {
            // No room for the split: the octets keep their older
            // snapshot (a longer interval, a lower rate).
            self.merges += 1;
            return;
        }
        // Reuse the overlapped entries' slots, then insert or remove the
        // difference (at most two inserted).
        let mut k = i;
        for p in pieces.into_iter().flatten() {
            if k < j {
                self.snaps[k] = p;
            } else {
                self.snaps.insert(k, p);
            }
            k += 1;
        }
        if k < j {
            self.snaps.drain(k..j);
        }
    }

    /// Starts processing an ACK: no snapshot chosen yet.
    pub(crate) fn begin_ack(&mut self) {
        self.best = None;
        self.timed = None;
    }

    /// The ACK being processed newly delivered [a, b) (SACKed it, or
    /// cumulatively acknowledged it without its having been SACKed
    /// before). Draft 3.3 (UpdateRateSample) for every snapshot
    /// overlapping it: the sample follows the most recently sent packet
    /// delivered, and C.first_sent_time moves to its send time. Costs a
    /// binary search plus the snapshots overlapping [a, b): those wholly
    /// inside are never looked at again (their octets are delivered), so
    /// over a connection's life each entry is visited a bounded number of
    /// times plus once per newly delivered stretch.
    pub(crate) fn on_delivered(&mut self, a: SeqNum, b: SeqNum) {
        if b <= a {
            return;
        }
        let mut i = self.snaps.partition_point(|s| s.end <= a);
        while let Some(&p) = self.snaps.get(i)
            && p.start < b
        {
            if self.best.is_none_or(|best| p.sent_after(&best)) {
                self.best = Some(p);
                self.first_sent = p.sent;
            }
            if !p.retransmitted && self.timed.is_none_or(|t| after(p.sent, t)) {
                self.timed = Some(p.sent);
            }
            i += 1;
        }
    }

    /// The ACK moved SND.UNA to `una`, and delivered `delivered` bytes in
    /// all (cumulatively ACKed and not SACKed before, plus newly SACKed),
    /// whose stretches [`on_delivered`](Self::on_delivered) was told of.
    pub(crate) fn on_ack(&mut self, now: Instant, una: SeqNum, delivered: u64) {
        #[cfg(test)]
        if let Some(b) = self.best {
            self.sampled.push((b.start, b.end, b.retransmitted));
        }
        // Snapshots wholly below SND.UNA are done with.
        while let Some(front) = self.snaps.front_mut() {
            if front.end <= una {
                self.snaps.pop_front();
            } else {
                front.start = front.start.max(una);
                break;
            }
        }
        self.delivered += delivered;
        self.delivered_at = self.micros(now);
        // Draft 3.3: "if (C.app_limited and C.delivered > C.app_limited)
        // C.app_limited = 0".
        if self.app_limited != 0 && self.delivered > self.app_limited {
            self.app_limited = 0;
        }
    }

    /// Draft 3.3 (GenerateRateSample) after [`on_ack`](Self::on_ack):
    /// the sample, valid if some snapshot was found and the interval is
    /// at least `min_rtt`.
    pub(crate) fn sample(&self, now: Instant, min_rtt: Option<Duration>) -> RateSample {
        let mut rs = RateSample {
            total_delivered: self.delivered,
            ..RateSample::default()
        };
        let Some(p) = self.best else {
            return rs;
        };
        let us = |d: Micros| Duration::from_micros(u64::from(d));
        rs.prior_delivered = p.delivered;
        rs.delivered = self.delivered.saturating_sub(p.delivered);
        rs.is_app_limited = p.app_limited;
        rs.rtt = self.timed.map(|t| us(self.micros(now).wrapping_sub(t)));
        // "Use the longer of the send_elapsed and ack_elapsed intervals".
        let send_elapsed = us(p.sent.wrapping_sub(p.first_sent));
        let ack_elapsed = us(self.delivered_at.wrapping_sub(p.delivered_at));
        rs.interval = send_elapsed.max(ack_elapsed);
        if rs.interval.is_zero() || min_rtt.is_some_and(|m| rs.interval < m) {
            return rs;
        }
        rs.delivery_rate =
            Some((u128::from(rs.delivered) * 1_000_000 / rs.interval.as_micros().max(1)) as u64);
        rs
    }

    /// Draft 3.4: the application (not cwnd, not the peer's window, not
    /// lost data waiting for retransmission) limits sending: samples
    /// until what is in flight now is delivered are application-limited.
    /// "C.app_limited = (C.delivered + C.pipe) ? : 1".
    pub(crate) fn mark_app_limited(&mut self, pipe: usize) {
        self.app_limited = (self.delivered + pipe as u64).max(1);
    }
}

impl crate::conn::Connection {
    /// After an ACK that delivered data (`delivered` bytes in all, whose
    /// stretches were passed to [`RateEstimator::on_delivered`] as the ACK
    /// was taken; `lost` sequence space newly marked lost): the rate
    /// sample, handed to the congestion control.
    pub(crate) fn rate_on_ack(&mut self, now: Instant, delivered: u64, lost: u64) {
        self.rate.on_ack(now, self.snd.una, delivered);
        let mut rs = self.rate.sample(now, self.rtt.min_rtt());
        rs.acked_sacked = delivered;
        rs.newly_lost = lost;
        rs.in_flight = self.pipe() as u64;
        rs.prior_in_flight = rs.in_flight + delivered + lost;
        self.cc.ctrl.on_rate_sample(now, &rs);
    }

    /// Draft 3.4 (CheckIfApplicationLimited), after a transmission
    /// attempt: less than a segment waits to be sent, the window is not
    /// full, and no lost data waits for retransmission.
    pub(crate) fn rate_check_app_limited(&mut self) {
        if !self.cc.ready || !self.state.is_synchronized() {
            return;
        }
        let unsent = self.data_end().since(self.snd.nxt);
        let pipe = self.pipe();
        if unsent < self.snd.smss
            && pipe < self.cc.ctrl.cwnd()
            && self
                .recovery
                .scoreboard
                .next_lost(self.snd.una, self.snd.smss)
                .is_none()
        {
            self.rate.mark_app_limited(pipe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sack::Scoreboard;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A sender as the connection drives the estimator: the scoreboard
    /// says what each ACK newly delivers.
    struct Flow {
        t0: Instant,
        r: RateEstimator,
        sb: Scoreboard,
        una: SeqNum,
        nxt: SeqNum,
    }

    impl Flow {
        fn new() -> Self {
            let t0 = Instant::now();
            Flow {
                t0,
                r: RateEstimator::new(t0),
                sb: Scoreboard::new(SeqNum(0)),
                una: SeqNum(0),
                nxt: SeqNum(0),
            }
        }

        fn at(&self, n: u64) -> Instant {
            self.t0 + ms(n)
        }

        /// New data of `len` bytes at `t` ms.
        fn send(&mut self, t: u64, len: usize) {
            let now = self.at(t);
            let idle = self.nxt == self.una;
            self.r.on_send(now, self.nxt, self.nxt + len, idle);
            self.nxt += len;
        }

        /// A retransmission of [a, b) at `t` ms.
        fn resend(&mut self, t: u64, a: u32, b: u32) {
            self.r.on_retransmit(self.at(t), SeqNum(a), SeqNum(b));
        }

        /// An ACK at `t` ms of everything below `ack`, SACKing `sacks`,
        /// taken as `process_ack` takes it.
        fn ack(&mut self, t: u64, ack: u32, sacks: &[(u32, u32)]) -> RateSample {
            let now = self.at(t);
            let ack = SeqNum(ack);
            let (una_before, sacked_before) = (self.una, self.sb.sacked_bytes());
            self.r.begin_ack();
            let r = &mut self.r;
            for &(a, b) in sacks {
                self.sb.add_blocks_noting(
                    self.una.max(ack),
                    self.nxt,
                    &[(SeqNum(a), SeqNum(b))],
                    |a, b| r.on_delivered(a, b),
                );
            }
            if ack > self.una {
                self.sb
                    .for_each_unsacked(self.una, ack, |a, b| r.on_delivered(a, b));
                self.una = ack;
                self.sb.on_cumulative_ack(ack);
            }
            let delivered =
                (self.una.since(una_before) + self.sb.sacked_bytes()).saturating_sub(sacked_before);
            self.r.on_ack(now, self.una, delivered as u64);
            self.r.sample(now, None)
        }
    }

    #[test]
    fn a_steady_flow_samples_its_rate() {
        let mut f = Flow::new();
        // 10 kB every 10 ms, each ACKed 100 ms later: 1 MB/s.
        let mut last = None;
        for i in 0..40u64 {
            if i >= 10 {
                let ack = f.una + 10_000;
                let rs = f.ack(10 * i, ack.0, &[]);
                last = Some(rs);
            }
            if i < 30 {
                f.send(10 * i, 10_000);
            }
        }
        let rs = last.unwrap();
        let rate = rs.delivery_rate.expect("valid");
        assert!((950_000..=1_100_000).contains(&rate), "{rate} {rs:?}");
        assert_eq!(rs.rtt, Some(ms(100)));
        assert!(!rs.is_app_limited);
        assert_eq!(f.r.snapshots(), 0);
        assert_eq!(f.r.merges(), 0);
    }

    #[test]
    fn sacked_data_counts_and_the_newest_packet_is_sampled() {
        let mut f = Flow::new();
        f.send(0, 1000);
        f.send(1, 1000);
        f.send(2, 1000);
        // The first segment is lost; the third is SACKed.
        let rs = f.ack(50, 0, &[(2000, 3000)]);
        assert_eq!(rs.total_delivered, 1000);
        assert_eq!(rs.rtt, Some(ms(48)));
        assert_eq!(rs.delivered, 1000);
        assert!(rs.delivery_rate.is_some());
    }

    #[test]
    fn short_intervals_give_no_sample() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        r.on_send(t0, SeqNum(0), SeqNum(1000), true);
        r.begin_ack();
        r.on_delivered(SeqNum(0), SeqNum(1000));
        r.on_ack(t0 + ms(5), SeqNum(1000), 1000);
        assert_eq!(r.sample(t0 + ms(5), Some(ms(10))).delivery_rate, None);
        assert!(r.sample(t0 + ms(5), Some(ms(5))).delivery_rate.is_some());
    }

    #[test]
    fn app_limited_marks_until_the_flight_is_delivered() {
        let mut f = Flow::new();
        f.send(0, 1000);
        f.r.mark_app_limited(1000);
        f.send(1, 1000);
        assert!(!f.ack(10, 1000, &[]).is_app_limited);
        assert!(f.r.is_app_limited(), "C.delivered 1000 is not past 1000");
        assert!(f.ack(11, 2000, &[]).is_app_limited);
        assert!(!f.r.is_app_limited());
    }

    /// Point 1 and 2 together: the ACK filling a hole samples the
    /// retransmission that filled it, not the run SACKed above it, and
    /// leaves C.first_sent_time at the retransmission's send time.
    #[test]
    fn a_hole_filling_ack_samples_the_retransmission() {
        let mut f = Flow::new();
        for t in 0..4 {
            f.send(t, 1000);
        }
        // [0, 1000) is lost; the rest is SACKed at 50 ms.
        let rs = f.ack(50, 0, &[(1000, 4000)]);
        assert_eq!(rs.rtt, Some(ms(47)), "the newest SACKed: sent at 3 ms");
        assert_eq!(rs.prior_delivered, 0);
        // The hole is retransmitted at 55 ms, new data follows at 56.
        f.resend(55, 0, 1000);
        f.send(56, 1000);
        assert_eq!(f.r.snapshots(), 5);
        let rs = f.ack(105, 4000, &[]);
        assert_eq!(rs.total_delivered, 4000);
        // Sampled from the retransmission: sent at 55 ms with 3000
        // delivered (the SACKed run's snapshots were 47 ms older, with
        // nothing delivered).
        assert_eq!(rs.prior_delivered, 3000);
        assert_eq!(rs.delivered, 1000);
        // "max(send_elapsed, ack_elapsed)": 55 - 3 ms and 105 - 50 ms.
        assert_eq!(rs.interval, ms(55));
        assert_eq!(rs.delivery_rate, Some(1000 * 1000 / 55));
        // Karn: the retransmission times no RTT, and nothing else was
        // newly delivered.
        assert_eq!(rs.rtt, None);
        assert_eq!(f.r.first_sent, f.r.micros(f.at(55)), "not moved back");
        // The segment sent at 56 ms samples a send phase from 55 ms.
        let rs = f.ack(110, 5000, &[]);
        assert_eq!(rs.prior_delivered, 3000);
        assert_eq!(rs.rtt, Some(ms(54)));
        assert_eq!(rs.interval, ms(60), "ack phase 110 - 50 ms");
        f.send(111, 1000);
        f.send(112, 1000);
        let rs = f.ack(140, 7000, &[]);
        // Nothing was in flight at 111 ms: both phases restart there (send
        // phase 112 - 111 ms, ACK phase 140 - 111 ms).
        assert_eq!((rs.interval, rs.prior_delivered), (ms(29), 5000));
        assert_eq!(f.r.snapshots(), 0);
    }

    /// Point 2: after a timeout, the retransmission's ACK samples from
    /// the retransmission, not from before the timeout.
    #[test]
    fn a_retransmission_after_a_timeout_samples_from_the_retransmission() {
        let mut f = Flow::new();
        f.send(0, 1000);
        f.send(1, 1000);
        f.send(2, 1000);
        // The RTO fires at 300 ms; all three are sent again in turn.
        f.resend(300, 0, 1000);
        let rs = f.ack(350, 1000, &[]);
        assert_eq!(rs.prior_delivered, 0);
        assert_eq!(rs.rtt, None, "Karn's rule");
        // The snapshot is the retransmission's: its send phase runs from
        // the first send (0 ms) to 300 ms, its ACK phase from the start.
        assert_eq!(rs.interval, ms(350));
        f.resend(351, 1000, 2000);
        f.resend(351, 2000, 3000);
        let rs = f.ack(400, 3000, &[]);
        assert_eq!(rs.prior_delivered, 1000, "C.delivered at 351 ms");
        // Send phase 351 - 300 ms (C.first_sent_time moved to the first
        // retransmission's send time at 350), ACK phase 400 - 350 ms.
        assert_eq!(rs.interval, ms(51));
        assert_eq!(rs.delivery_rate, Some(2000 * 1000 / 51));
        // Without fresh snapshots the sample would span from 1 or 2 ms.
        assert_eq!(f.r.snapshots(), 0);
    }

    /// Point 1: a range SACKed earlier and later cumulatively
    /// acknowledged is not sampled again; what the cumulative ACK newly
    /// delivers is.
    #[test]
    fn sacked_ranges_are_sampled_once() {
        let mut f = Flow::new();
        f.send(0, 1000);
        f.send(1, 1000);
        f.send(2, 1000);
        f.send(3, 1000);
        let rs = f.ack(50, 0, &[(2000, 4000)]);
        assert_eq!(rs.prior_delivered, 0);
        assert_eq!(rs.rtt, Some(ms(47)));
        // Reordering: [0, 2000) arrives late; its ACK covers the SACKed
        // run too but newly delivers only [0, 2000), sent at 1 ms at the
        // latest.
        let rs = f.ack(60, 4000, &[]);
        assert_eq!(rs.rtt, Some(ms(59)), "not the SACKed segment from 3 ms");
        assert_eq!(rs.delivered, 4000);
        assert_eq!(f.r.first_sent, f.r.micros(f.at(1)));
        // An ACK whose cumulative part was all SACKed before delivers
        // nothing new: no sample at all.
        f.send(61, 1000);
        f.send(62, 1000);
        let rs = f.ack(90, 4000, &[(5000, 6000)]);
        assert_eq!(rs.rtt, Some(ms(28)));
        let rs = f.ack(91, 4000, &[(5000, 6000)]);
        assert_eq!((rs.delivery_rate, rs.rtt), (None, None), "a repeated SACK");
        let rs = f.ack(95, 6000, &[]);
        assert_eq!(rs.rtt, Some(ms(34)), "the unSACKed one, sent at 61 ms");
        // A super segment partly SACKed keeps sampling its other parts.
        f.send(100, 3000);
        assert!(f.ack(150, 6000, &[(7000, 8000)]).rtt.is_some());
        let rs = f.ack(160, 9000, &[]);
        assert_eq!(rs.rtt, Some(ms(60)));
        assert_eq!(f.r.snapshots(), 0);
    }

    /// A retransmission inside a snapshot splits it: at most two more
    /// entries, whatever it covers.
    #[test]
    fn retransmissions_split_snapshots() {
        let mut f = Flow::new();
        f.send(0, 10_000); // one super segment
        f.send(1, 1000);
        f.send(2, 1000);
        assert_eq!(f.r.snapshots(), 3);
        f.resend(10, 3000, 4000);
        assert_eq!(f.r.snapshots(), 5, "left, retransmission, right");
        // Over the end of one snapshot and the start of the next.
        f.resend(11, 9500, 10_500);
        assert_eq!(f.r.snapshots(), 6);
        // Over several entries: they are replaced by one.
        f.resend(12, 0, 12_000);
        assert_eq!(f.r.snapshots(), 1);
        let s: Vec<_> = f.r.snaps.iter().map(|s| (s.start.0, s.end.0)).collect();
        assert_eq!(s, [(0, 12_000)]);
        // Sequence order holds throughout.
        f.resend(13, 5000, 6000);
        f.resend(14, 2000, 3000);
        let s: Vec<_> = f.r.snaps.iter().map(|s| (s.start.0, s.end.0)).collect();
        assert_eq!(
            s,
            [
                (0, 2000),
                (2000, 3000),
                (3000, 5000),
                (5000, 6000),
                (6000, 12_000)
            ]
        );
        let rs = f.ack(60, 12_000, &[]);
        assert_eq!(rs.prior_delivered, 0);
        assert_eq!(rs.total_delivered, 12_000);
        assert_eq!(f.r.snapshots(), 0);
    }

    /// Point 3: the bound holds, merges when full are counted, and the
    /// memory stays what the entries take.
    #[test]
    fn the_ring_is_bounded_and_merges_are_counted() {
        assert_eq!(std::mem::size_of::<Snapshot>(), 32);
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        let mut seq = SeqNum(0);
        let n = MAX_SNAPSHOTS as u64 + 100;
        for i in 0..n {
            r.on_send(t0 + Duration::from_micros(i), seq, seq + 1000, i == 0);
            seq += 1000;
        }
        assert_eq!(r.snapshots(), MAX_SNAPSHOTS);
        assert_eq!(r.merges(), 100);
        assert!(r.memory_used() <= 2 * MAX_SNAPSHOTS * 32);
        // A retransmission that would split an entry finds no room: the
        // octets keep their snapshot, and the merge is counted.
        r.on_retransmit(t0 + ms(10), SeqNum(500), SeqNum(700));
        assert_eq!((r.snapshots(), r.merges()), (MAX_SNAPSHOTS, 101));
        // One covering an entry exactly replaces it, full or not.
        r.on_retransmit(t0 + ms(10), SeqNum(0), SeqNum(1000));
        assert_eq!((r.snapshots(), r.merges()), (MAX_SNAPSHOTS, 101));
        // The newest entry absorbed the last 100 sends.
        let last = r.snaps.back().unwrap();
        assert_eq!(last.end.since(last.start), 101 * 1000);
        r.begin_ack();
        r.on_delivered(SeqNum(0), seq);
        r.on_ack(t0 + ms(100), seq, seq.since(SeqNum(0)) as u64);
        let rs = r.sample(t0 + ms(100), None);
        // The absorbing entry was sent first among the last 101.
        assert_eq!(rs.prior_delivered, 0);
        assert_eq!(r.snapshots(), 0);
        r.release_if_idle();
        assert_eq!(r.memory_used(), 0);
    }

    /// A 4 MiB flight sent in bursts of two segments, each clocked out by
    /// its own ACK, fits without merging.
    #[test]
    fn a_four_mib_flight_fits() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        let mut seq = SeqNum(0);
        let mut i = 0u64;
        while seq.since(SeqNum(0)) < 4 << 20 {
            // Each burst follows an ACK (a new C.delivered).
            r.begin_ack();
            r.on_ack(t0 + Duration::from_micros(i), SeqNum(0), 1);
            r.on_send(t0 + Duration::from_micros(i), seq, seq + 2 * 1448, i == 0);
            seq += 2 * 1448;
            i += 1;
        }
        assert_eq!(r.merges(), 0);
        assert!(r.snapshots() < MAX_SNAPSHOTS / 2, "{}", r.snapshots());
    }
}
