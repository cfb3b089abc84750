//! Per-connection statistics in the spirit of Linux TCP_INFO / `ss -ti`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::State;

/// A snapshot of one connection's state and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connection state.
    pub state: State,
    /// Congestion control algorithm.
    pub congestion: &'static str,
    /// Congestion window, bytes.
    pub cwnd: usize,
    /// Slow start threshold, bytes (usize::MAX: not set yet).
    pub ssthresh: usize,
    /// Smoothed RTT.
    pub srtt: Option<Duration>,
    /// RTT variation.
    pub rttvar: Duration,
    /// Smallest RTT seen.
    pub min_rtt: Option<Duration>,
    /// Retransmission timeout.
    pub rto: Duration,
    /// Sender MSS in use (payload bytes per segment).
    pub mss: usize,
    /// Bytes in flight (RFC 6675 pipe).
    pub in_flight: usize,
    /// Peer's receive window, bytes.
    pub snd_wnd: usize,
    /// Our receive window as last advertised, bytes.
    pub rcv_wnd: usize,
    /// Data bytes sent, first transmissions only.
    pub bytes_sent: u64,
    /// Data bytes retransmitted.
    pub bytes_retransmitted: u64,
    /// Data bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Delivery rate, bytes per second: what the peer acknowledged
    /// (cumulatively or by SACK) over the last sampling interval of at
    /// least one smoothed RTT (0 before the first interval ends). Like
    /// Linux's `tcpi_delivery_rate`, it includes application-limited
    /// periods, so an idle sender shows a low rate.
    pub delivery_rate: u64,
    /// The pacing rate in bytes per second (Linux's `tcpi_pacing_rate`);
    /// 0 when the connection does not pace.
    pub pacing_rate: u64,
    /// Times a data segment was held back by pacing (it waited for its
    /// release time).
    pub pacing_waits: u64,
    /// Data bytes received in order (delivered to the receive buffer).
    pub bytes_received: u64,
    /// Segments sent (all kinds).
    pub segments_sent: u64,
    /// Segments received and accepted.
    pub segments_received: u64,
    /// Retransmissions during fast recovery (SACK or duplicate-ACK driven).
    pub retrans_fast: u64,
    /// Retransmissions after a retransmission timeout.
    pub retrans_rto: u64,
    /// Retransmission timeouts.
    pub rto_count: u64,
    /// Fast recovery episodes.
    pub fast_recoveries: u64,
    /// Retransmissions found lost (data sent after them was SACKed first).
    pub lost_retransmissions: u64,
    /// Tail loss probes sent (RFC 8985 7).
    pub tail_loss_probes: u64,
    /// Losses the tail loss probe alone repaired (RFC 8985 7.4.1: its
    /// retransmission was acknowledged, with no D-SACK for it, by an ACK
    /// beyond it); each made congestion control respond once (7.4.2).
    pub tlp_repaired: u64,
    /// Retransmitted tail loss probes the peer reported as duplicates
    /// (D-SACK): the original had arrived, nothing was lost, and the window
    /// stays as it was (RFC 8985 7.4.1).
    pub tlp_unneeded: u64,
    /// Transmissions whose delivery-rate snapshot was merged into another
    /// because the estimator's ring ([`crate::rate::MAX_SNAPSHOTS`]
    /// entries) was full: their rate samples cover a longer interval than
    /// they should (lower rates, never higher). Zero unless a flight takes
    /// more than that many separately clocked bursts.
    pub rate_snapshot_merges: u64,
    /// Retransmission timeouts found spurious and undone (RFC 3522).
    pub spurious_rtos: u64,
    /// The send buffer's size now (SO_SNDBUF, or more once autotuning
    /// grew it; see `TcpConfig::send_buffer_max`).
    pub send_buffer: usize,
    /// Times send buffer autotuning grew the buffer.
    pub send_buffer_grown: u64,
    /// The receive buffer's size now (SO_RCVBUF, or more once
    /// autotuning grew it; see `TcpConfig::recv_buffer_max`).
    pub recv_buffer: usize,
    /// Times receive buffer autotuning grew the buffer.
    pub recv_buffer_grown: u64,
    /// Bytes currently SACKed.
    pub sacked_bytes: usize,
    /// Total bytes newly SACKed over the connection's life.
    pub sacked_total: u64,
    /// Duplicate SACK blocks (RFC 2883) received.
    pub dsacks_received: u64,
    /// Out-of-order segments received.
    pub out_of_order: u64,
    /// Zero-window probes sent.
    pub zero_window_probes: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Segments dropped by PAWS (RFC 7323).
    pub paws_drops: u64,
    /// Times the path MTU fell with data in flight, which was then
    /// retransmitted at the new size at once (RFC 1191 6.5).
    pub pmtu_retransmissions: u64,
    /// Segments that moved the urgent pointer forward (RFC 9293 3.8.5).
    pub urgent_received: u64,
    /// Segments without timestamps on a connection that uses them
    /// (accepted, as Linux does: middleboxes strip options).
    pub timestamps_missing: u64,
    /// SACK permitted on this connection.
    pub sack: bool,
    /// Timestamps on this connection.
    pub timestamps: bool,
    /// Window scale shifts (ours, peer's), if scaling is on.
    pub window_scale: Option<(u8, u8)>,
    /// The model of a model-based congestion control (BBR's mode, BtlBw,
    /// RTprop, pacing), None for window-based ones.
    pub bbr: Option<crate::cc::BbrState>,
}

impl fmt::Display for TcpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "{:?} {} cwnd:{} ssthresh:{} rtt:{:.3}/{:.3}ms rto:{:.0}ms mss:{} \
             sent:{} retrans:{} (fast {}, rto {}, probes {}) acked:{} rcvd:{} sacked:{} rcv_wnd:{}",
            self.state,
            self.congestion,
            self.cwnd,
            if self.ssthresh == usize::MAX {
                "-".to_string()
            } else {
                self.ssthresh.to_string()
            },
            self.srtt.map_or(0.0, ms),
            ms(self.rttvar),
            ms(self.rto),
            self.mss,
            self.bytes_sent,
            self.bytes_retransmitted,
            self.retrans_fast,
            self.retrans_rto,
            self.tail_loss_probes,
            self.bytes_acked,
            self.bytes_received,
            self.sacked_total,
            self.rcv_wnd,
        )
    }
}

/// The delivery-rate sampler behind [`TcpStats::delivery_rate`]: bytes
/// delivered (acknowledged cumulatively, or SACKed) over an interval of at
/// least one smoothed RTT, restarted when the interval ends. Two numbers
/// and a time per connection; one comparison per ACK.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeliveryRate {
    /// When the current interval began and what had been delivered then.
    start: Option<(Instant, u64)>,
    /// Bytes per second over the last finished interval.
    rate: u64,
}

/// Shortest sampling interval (when the RTT is tiny or unknown).
const MIN_RATE_INTERVAL: Duration = Duration::from_millis(1);

impl DeliveryRate {
    /// Called on each ACK that delivered data: `delivered` is the total
    /// delivered so far, `interval` the smoothed RTT.
    pub(crate) fn on_delivered(&mut self, now: Instant, delivered: u64, interval: Duration) {
        let Some((since, base)) = self.start else {
            self.start = Some((now, delivered));
            return;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < interval.max(MIN_RATE_INTERVAL) {
            return;
        }
        let bytes = delivered.saturating_sub(base);
        self.rate = (bytes as u128 * 1_000_000_000 / elapsed.as_nanos().max(1)) as u64;
        self.start = Some((now, delivered));
    }

    /// Bytes per second over the last finished interval.
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }
}

#[cfg(test)]
mod tests;
