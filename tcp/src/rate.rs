//! Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation):
//! on every ACK that delivers data, how fast the path delivered the data
//! acknowledged, for model-based congestion control ([`crate::cc::Bbr`]).
//!
//! The connection counts what has been delivered (cumulatively ACKed or
//! SACKed) and when. Every transmission of new data takes a snapshot of
//! those counters; when the data is delivered, the snapshot of the most
//! recently sent packet delivered by the ACK gives the sample: the data
//! delivered since that packet left, over the longer of its send interval
//! and its ACK interval.
//!
//! Snapshots are kept in a ring in sending order, which is sequence order
//! (new data only leaves at SND.NXT). Data sent in the same instant with
//! the same counters shares one snapshot (a super segment, or a burst sent
//! in one poll), so a window of data takes a few entries; the ring never
//! holds more than [`MAX_SNAPSHOTS`] (beyond that the newest entry grows,
//! which only makes samples for its bytes cover a longer interval: lower,
//! never higher). Once grown to the flight's size the ring is reused: no
//! allocation per packet. A separate ring from RACK's records (`rack.rs`),
//! keyed the same way, so the two evolve independently.
//!
//! Retransmissions keep the snapshot of the original transmission. Their
//! samples then span from the original send: a longer interval and a lower
//! rate and a longer RTT than the path's, which a max filter of bandwidth
//! and a min filter of RTT both disregard.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::SeqNum;

/// Most snapshots kept per connection (bounded memory: 32 bytes each).
pub const MAX_SNAPSHOTS: usize = 1024;

/// Times are microseconds since the connection's epoch, wrapping (about 71
/// minutes; every comparison is between times seconds apart).
type Micros = u32;

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
    /// The RTT of the sampled packet (from its first transmission: never
    /// shorter than the path's).
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
    /// Snapshots of data not yet cumulatively acknowledged, oldest first.
    snaps: VecDeque<Snapshot>,
    /// The sample under construction for the ACK being processed: the most
    /// recently sent snapshot it delivered.
    best: Option<Snapshot>,
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
        let at = self.micros(now);
        if idle {
            self.first_sent = at;
            self.delivered_at = at;
        }
        let snap = Snapshot {
            start,
            end,
            sent: at,
            delivered: self.delivered,
            delivered_at: self.delivered_at,
            first_sent: self.first_sent,
            app_limited: self.app_limited != 0,
        };
        let full = self.snaps.len() >= MAX_SNAPSHOTS;
        if let Some(last) = self.snaps.back_mut()
            && last.end == start
            && (full
                || Snapshot {
                    start,
                    end,
                    ..*last
                } == snap)
        {
            last.end = end;
            return;
        }
        self.snaps.push_back(snap);
    }

    /// Draft 3.3 (UpdateRateSample) for the snapshot holding `last`, the
    /// last octet of a range the ACK delivered: the sample follows the
    /// most recently sent packet delivered, and C.first_sent_time moves to
    /// its send time.
    fn consider(&mut self, last: SeqNum) {
        let i = self.snaps.partition_point(|s| s.end <= last);
        let Some(&p) = self.snaps.get(i) else {
            return;
        };
        if p.start > last {
            return;
        }
        let newer = self.best.is_none_or(|b| {
            p.delivered > b.delivered || (p.delivered == b.delivered && p.end > b.end)
        });
        if newer {
            self.best = Some(p);
            self.first_sent = p.sent;
        }
    }

    /// The ACK cumulatively acknowledged [old_una, una) and newly SACKed
    /// `sacked` ranges; `delivered` bytes in all (what was SACKed before
    /// and is now cumulatively ACKed counts once).
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        old_una: SeqNum,
        una: SeqNum,
        sacked: &[(SeqNum, SeqNum, bool)],
        delivered: u64,
    ) {
        self.best = None;
        if una > old_una {
            self.consider(una - 1);
        }
        for &(_, r, _) in sacked {
            if r > old_una {
                self.consider(r - 1);
            }
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
        rs.rtt = Some(us(self.micros(now).wrapping_sub(p.sent)));
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
    /// After an ACK that delivered data (cumulatively from `old_una`, and
    /// the newly SACKed ranges `sacked`; `delivered` bytes in all, `lost`
    /// sequence space newly marked lost): the rate sample, handed to the
    /// congestion control.
    pub(crate) fn rate_on_ack(
        &mut self,
        now: Instant,
        old_una: SeqNum,
        sacked: &[(SeqNum, SeqNum, bool)],
        delivered: u64,
        lost: u64,
    ) {
        self.rate
            .on_ack(now, old_una, self.snd.una, sacked, delivered);
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_steady_flow_samples_its_rate() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        // 10 kB every 10 ms, each ACKed 100 ms later: 1 MB/s.
        let mut seq = SeqNum(1000);
        let mut una = SeqNum(1000);
        let mut last = None;
        for i in 0..40u64 {
            let now = t0 + ms(10 * i);
            if i >= 10 {
                r.on_ack(now, una, una + 10_000, &[], 10_000);
                una += 10_000;
                last = Some(r.sample(now, Some(ms(100))));
            }
            if i < 30 {
                r.on_send(now, seq, seq + 10_000, seq == una);
                seq += 10_000;
            }
        }
        let rs = last.unwrap();
        let rate = rs.delivery_rate.expect("valid");
        assert!((950_000..=1_100_000).contains(&rate), "{rate} {rs:?}");
        assert_eq!(rs.rtt, Some(ms(100)));
        assert!(!rs.is_app_limited);
        assert_eq!(r.snapshots(), 0);
    }

    #[test]
    fn sacked_data_counts_and_the_newest_packet_is_sampled() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        r.on_send(t0, SeqNum(0), SeqNum(1000), true);
        r.on_send(t0 + ms(1), SeqNum(1000), SeqNum(2000), false);
        r.on_send(t0 + ms(2), SeqNum(2000), SeqNum(3000), false);
        // The first segment is lost; the third is SACKed.
        let now = t0 + ms(50);
        r.on_ack(
            now,
            SeqNum(0),
            SeqNum(0),
            &[(SeqNum(2000), SeqNum(3000), true)],
            1000,
        );
        let rs = r.sample(now, None);
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
        r.on_ack(t0 + ms(5), SeqNum(0), SeqNum(1000), &[], 1000);
        assert_eq!(r.sample(t0 + ms(5), Some(ms(10))).delivery_rate, None);
        assert!(r.sample(t0 + ms(5), Some(ms(5))).delivery_rate.is_some());
    }

    #[test]
    fn app_limited_marks_until_the_flight_is_delivered() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        r.on_send(t0, SeqNum(0), SeqNum(1000), true);
        r.mark_app_limited(1000);
        r.on_send(t0 + ms(1), SeqNum(1000), SeqNum(2000), false);
        r.on_ack(t0 + ms(10), SeqNum(0), SeqNum(1000), &[], 1000);
        assert!(!r.sample(t0 + ms(10), None).is_app_limited);
        assert!(r.is_app_limited(), "C.delivered 1000 is not past 1000");
        r.on_ack(t0 + ms(11), SeqNum(1000), SeqNum(2000), &[], 1000);
        assert!(r.sample(t0 + ms(11), None).is_app_limited);
        assert!(!r.is_app_limited());
    }

    #[test]
    fn the_ring_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateEstimator::new(t0);
        let mut seq = SeqNum(0);
        for i in 0..(3 * MAX_SNAPSHOTS as u64) {
            r.on_send(t0 + Duration::from_micros(i), seq, seq + 100, i == 0);
            seq += 100;
        }
        assert_eq!(r.snapshots(), MAX_SNAPSHOTS);
        let now = t0 + ms(100);
        r.on_ack(now, SeqNum(0), seq, &[], seq.since(SeqNum(0)) as u64);
        assert_eq!(r.snapshots(), 0);
    }
}
