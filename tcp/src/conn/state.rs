//! The groups of connection state that have no module of their own: the
//! send side and the receive side (RFC 9293 3.3.1 sequence spaces with
//! their buffers), timestamps (RFC 7323) and congestion control.

use std::time::Instant;

use crate::buffer::{RecvBuffer, SendBuffer};
use crate::cc::CongestionControl;
use crate::seq::SeqNum;

/// The send sequence space (RFC 9293 3.3.1) and the send side. SND.NXT is
/// the highest sequence number sent plus one: retransmissions never rewind
/// it (they are tracked by the scoreboard instead).
pub(crate) struct SendState {
    /// ISS: our initial sequence number.
    pub(crate) iss: SeqNum,
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub(crate) una: SeqNum,
    /// SND.NXT: the next sequence number to send.
    pub(crate) nxt: SeqNum,
    /// SND.WND: the peer's window (scaled).
    pub(crate) wnd: usize,
    /// The largest window the peer offered (RFC 5961 5.2).
    pub(crate) max_wnd: usize,
    /// SND.WL1: the segment sequence number of the last window update.
    pub(crate) wl1: SeqNum,
    /// SND.WL2: the segment acknowledgment number of the last window update.
    pub(crate) wl2: SeqNum,
    /// The peer's window scale shift.
    pub(crate) wscale: u8,
    /// The MSS the peer announced.
    pub(crate) peer_mss: usize,
    /// SMSS: the sender MSS, the peer's limited by the path MTU seen at the
    /// last transmission, less the options every segment carries.
    pub(crate) smss: usize,
    /// The path MTU at the last transmission (the interface MTU until then):
    /// SMSS = min(peer MSS, path MTU - 40) minus options.
    pub(crate) path_mtu: usize,
    /// Largest super segment the device takes (0: none; see
    /// [`poll_transmit_burst`](Connection::poll_transmit_burst)).
    pub(crate) burst: usize,
    /// Data written by the application and not yet acknowledged.
    pub(crate) buf: SendBuffer,
    /// The application filled the send buffer since the last ACK (Linux's
    /// `SOCK_NOSPACE`): a candidate for growing it.
    pub(crate) nospace: bool,
    /// SND.UP: the sequence number following the last urgent octet the
    /// application sent, while that is unacknowledged (RFC 9293 3.8.5).
    pub(crate) up: Option<SeqNum>,
    /// The application will write no more: a FIN follows the data.
    pub(crate) fin_queued: bool,
    /// Set once a FIN has been sent.
    pub(crate) fin_sent: bool,
    /// Sequence number our FIN occupies, once sent.
    pub(crate) fin_seq: Option<SeqNum>,
    /// Our SYN (or SYN-ACK) is to be sent.
    pub(crate) syn_pending: bool,
    /// How many times the SYN (or SYN-ACK) was retransmitted.
    pub(crate) syn_retries: u32,
    /// When new data was last sent (RFC 5681 4.1 restart after idle).
    pub(crate) last_data_sent_at: Option<Instant>,
    /// When the oldest unacknowledged data was first outstanding (for the
    /// user timeout); reset whenever SND.UNA advances.
    pub(crate) progress_at: Option<Instant>,
    /// TCP_CORK's 200 ms ceiling passed: the held partial segment may go.
    pub(crate) cork_expired: bool,
}

impl SendState {
    /// Takes the peer's first window (from its SYN, or from the ACK that
    /// completes the handshake): SND.WND, MAX.SND.WND and SND.WL1.
    pub(crate) fn first_window(&mut self, seq: SeqNum, wnd: usize) {
        self.wnd = wnd;
        self.max_wnd = wnd;
        self.wl1 = seq;
    }
}

/// The receive sequence space (RFC 9293 3.3.1), the receive side, and
/// acknowledgment generation.
pub(crate) struct RecvState {
    /// IRS: the peer's initial sequence number.
    pub(crate) irs: SeqNum,
    /// RCV.NXT: the next sequence number expected.
    pub(crate) nxt: SeqNum,
    /// Right edge of the window last advertised; never moves left.
    pub(crate) adv: SeqNum,
    /// Our window scale shift.
    pub(crate) wscale: u8,
    /// Data received and not yet read (with the out-of-order store).
    pub(crate) buf: RecvBuffer,
    /// Sequence number of the peer's FIN, once seen (it may arrive out of
    /// order, before data that precedes it).
    pub(crate) remote_fin: Option<SeqNum>,
    /// RCV.UP: the sequence number following the urgent data the peer
    /// sent, while some of it is unread.
    pub(crate) up: Option<SeqNum>,
    /// The peer's FIN was consumed: reads return end of file when drained.
    pub(crate) read_eof: bool,
    /// The application shut down its read side.
    pub(crate) read_shut: bool,
    /// Our estimate of the peer's segment size (Linux's `rcv_mss`): it
    /// grows with larger segments and shrinks when two segments in a row
    /// are smaller.
    pub(crate) mss: usize,
    /// Size of the last segment below `rcv_mss` (to notice a smaller MSS).
    pub(crate) last_seg_size: usize,
    /// Send an ACK at once.
    pub(crate) ack_now: bool,
    /// Bytes received in order since our last ACK (RFC 5681 4.2: ACK at
    /// least every second full-sized segment).
    pub(crate) unacked_bytes: usize,
    /// A duplicate range to report as a D-SACK (RFC 2883).
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
    /// Last.ACK.sent (RFC 7323 4.3).
    pub(crate) last_ack_sent: SeqNum,
    /// TCP_QUICKACK: in-order segments still to be acknowledged at once.
    pub(crate) quick_acks: u32,
    /// Receive buffer autotuning's measurement (Linux's `rcvq_space`).
    pub(crate) space: RecvSpace,
}

/// What the application read over the current round trip, and the most it
/// read in one before (receive buffer autotuning).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvSpace {
    /// When the current measurement began (None: not yet).
    pub(crate) at: Option<std::time::Instant>,
    /// The application's read position then.
    pub(crate) seq: SeqNum,
    /// The most bytes read in one round trip so far (the initial window
    /// to start with).
    pub(crate) copied: usize,
}

/// Timestamp state (RFC 7323): our timestamp clock and, when the option is
/// in use, the peer's TS.Recent (PAWS).
pub(crate) struct TsState {
    /// TS.Recent and when it was set, when timestamps are in use.
    pub(crate) peer: Option<Timestamps>,
    /// Our timestamp clock's random offset.
    pub(crate) offset: u32,
    /// The stack's clock origin (our timestamp clock counts from it).
    pub(crate) epoch: Instant,
}

/// Timestamp state (RFC 7323).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamps {
    /// TS.Recent: the peer's timestamp to echo.
    pub recent: u32,
    /// When TS.Recent was set (PAWS: older than 24 days is invalid).
    pub recent_at: Instant,
}

/// Congestion control state: the algorithm (NewReno or CUBIC) with
/// HyStart++ (RFC 9406) watching slow start.
pub(crate) struct Congestion {
    /// The congestion control algorithm.
    pub(crate) ctrl: Box<dyn CongestionControl>,
    /// The algorithm was initialised with the negotiated MSS.
    pub(crate) ready: bool,
    /// HyStart++ (RFC 9406) for slow start.
    pub(crate) hystart: crate::hystart::HyStart,
    /// The last transmission attempt stopped because cwnd was full.
    pub(crate) cwnd_limited: bool,
}
