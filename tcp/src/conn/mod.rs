//! The TCP connection (transmission control block) and its state machine
//! (RFC 9293 section 3.3.2): input in `input.rs`, output in `output.rs`,
//! timers in `timers.rs`, loss recovery in `recovery.rs`, opening in
//! `open.rs`, application calls in `app.rs`, resources in `resources.rs`,
//! the groups of connection state in `state.rs`; the connection itself,
//! its accessors and the helpers shared by input and output here.

mod app;
mod input;
mod open;
mod output;
mod pacing;
mod recovery;
mod resources;
mod state;
mod timers;

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Instant;

use crate::buffer::MemoryPressure;
use crate::config::TcpConfig;
use crate::rtt::RttEstimator;
use crate::segment::{TcpOptions, TcpRepr};
use crate::seq::SeqNum;
use crate::stats::TcpStats;
use recovery::LossRecovery;
use state::{Congestion, RecvState, SendState, TsState};
use timers::{Probes, Timer, TimerTable};

pub use app::QUICKACK_SEGMENTS;
pub use input::Input;
pub use pacing::{
    GRANULARITY as PACING_GRANULARITY, HORIZON as PACING_HORIZON, INITIAL_QUANTUM_SEGMENTS,
};

/// The connection states of RFC 9293 section 3.3.2.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum State {
    /// No connection.
    #[default]
    Closed,
    /// Waiting for a connection request (listeners only).
    Listen,
    /// SYN sent, waiting for the peer's SYN.
    SynSent,
    /// SYN received and SYN sent, waiting for the ACK of ours.
    SynReceived,
    /// Open; data flows both ways.
    Established,
    /// We closed; our FIN is not acknowledged yet.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both closed; waiting 2*MSL for stray segments.
    TimeWait,
}

impl State {
    /// True in the states where both sides have exchanged SYNs (RFC 9293
    /// "synchronized states").
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// The uppercase RFC name.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a connection ended abnormally, or why a call on it failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TcpError {
    /// The peer answered our SYN with a reset (ECONNREFUSED).
    Refused,
    /// The peer reset the connection (ECONNRESET).
    Reset,
    /// Retransmissions, keep-alives or the user timeout gave up (ETIMEDOUT).
    TimedOut,
    /// The stack is out of memory for it (ENOBUFS).
    NoMemory,
    /// ICMP: the network is unreachable or administratively prohibited
    /// (ENETUNREACH).
    NetUnreachable,
    /// ICMP: the host is unreachable or administratively prohibited
    /// (EHOSTUNREACH).
    HostUnreachable,
    /// ICMP protocol unreachable (ENOPROTOOPT, as Linux reports it).
    ProtocolUnavailable,
    /// Nothing can be done without waiting (EAGAIN).
    WouldBlock,
    /// The write side is closed (EPIPE).
    Closed,
    /// The connection is not established yet or any more (ENOTCONN).
    NotConnected,
    /// The peer reset the connection after it had sent its FIN (a reset in
    /// CLOSE-WAIT): Linux's `tcp_reset` reports EPIPE there, not
    /// ECONNRESET (`case TCP_CLOSE_WAIT: err = EPIPE;`), since the
    /// application has read the end of the stream and can only have been
    /// writing.
    ResetAfterFin,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::Refused => "connection refused",
            TcpError::Reset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
            TcpError::NoMemory => "no buffer space available",
            TcpError::NetUnreachable => "network is unreachable",
            TcpError::HostUnreachable => "no route to host",
            TcpError::ProtocolUnavailable => "protocol not available",
            TcpError::WouldBlock => "operation would block",
            TcpError::Closed => "broken pipe",
            TcpError::NotConnected => "not connected",
            TcpError::ResetAfterFin => "broken pipe (reset after the peer's FIN)",
        })
    }
}

impl std::error::Error for TcpError {}

/// Defensive events since the stack last looked
/// ([`Connection::take_alarms`]), for its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alarms {
    /// ACKs not sent in answer to unacceptable segments (RFC 5961 7).
    pub acks_throttled: u32,
    /// Segments whose data was dropped because the memory budget did not
    /// allow the receive buffer to grow.
    pub data_dropped_no_memory: u32,
    /// Out-of-order segments dropped: too many ranges or the connection's
    /// out-of-order store full.
    pub out_of_order_dropped: u32,
    /// Out-of-order bytes released under memory exhaustion.
    pub out_of_order_pruned: u32,
    /// Reset because data arrived after the application closed
    /// (RFC 1122 4.2.2.13).
    pub reset_on_data_after_close: u32,
    /// Orphaned connection given up after `orphan_retries` timeouts or
    /// zero-window probes.
    pub orphan_gave_up: u32,
    /// The user timeout ended a connection stalled on a zero window.
    pub persist_timed_out: u32,
}

impl Alarms {
    /// True when nothing happened.
    pub fn is_empty(&self) -> bool {
        *self == Alarms::default()
    }
}

/// One TCP connection.
pub struct Connection {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) state: State,
    pub(crate) cfg: TcpConfig,

    /// The send side: sequence space, window, buffer, FIN.
    pub(crate) snd: SendState,
    /// The receive side: sequence space, buffer, FIN, ACK generation.
    pub(crate) rcv: RecvState,
    /// Timestamps (RFC 7323): our clock and the peer's TS.Recent for PAWS.
    pub(crate) ts: TsState,
    /// SACK (RFC 2018) is in use.
    pub(crate) sack_ok: bool,
    /// Loss recovery: the SACK scoreboard, fast recovery with PRR, tail
    /// loss probes.
    pub(crate) recovery: LossRecovery,
    /// Congestion control: the algorithm, HyStart++, cwnd-limited tracking.
    pub(crate) cc: Congestion,
    /// The round-trip time estimate and the RTO (RFC 6298).
    pub(crate) rtt: RttEstimator,
    /// The segment being timed for an RTT sample (its end, when it went).
    pub(crate) timed: Option<(SeqNum, Instant)>,

    /// The deadlines of the connection's timers.
    pub(crate) timers: TimerTable,
    /// Pacing: when the next data segment may leave.
    pub(crate) pacing: pacing::Pacer,
    /// Zero-window and keep-alive probing.
    pub(crate) probe: Probes,
    /// TCP_USER_TIMEOUT as the application set it (zero: the stack's
    /// default applies).
    pub(crate) user_timeout_set: std::time::Duration,
    /// The stack's user timeout when the connection was made.
    pub(crate) default_user_timeout: std::time::Duration,
    /// When a segment was last sent.
    pub(crate) last_sent_at: Instant,
    /// When an acceptable segment last arrived.
    pub(crate) last_rcvd_at: Instant,

    // Abnormal end and control.
    /// A reset to send (the connection is closed or closing).
    pub(crate) pending_rst: Option<TcpRepr>,
    pub(crate) error: Option<TcpError>,
    pub(crate) app_closed: bool,
    /// Opened by a listener (SYN-ACK retries use `synack_retries`).
    pub(crate) passive: bool,
    /// The latest soft error an ICMP message reported (RFC 1122 4.2.3.9:
    /// not fatal, but reported instead of ETIMEDOUT if the connection then
    /// times out, as Linux does).
    pub(crate) soft_error: Option<TcpError>,
    /// When the last ACK answering an unacceptable segment went out (RFC
    /// 5961 7 throttling).
    pub(crate) last_oow_ack: Option<Instant>,
    /// The memory state the stack set.
    pub(crate) mem: MemoryPressure,
    pub(crate) alarms: Alarms,

    pub(crate) stats: TcpStats,
    /// Samples [`TcpStats::delivery_rate`].
    pub(crate) delivery: crate::stats::DeliveryRate,
    /// Delivery-rate samples for the congestion control.
    pub(crate) rate: crate::rate::RateEstimator,
    /// Scratch for SACK block generation.
    pub(crate) sack_scratch: Vec<(usize, usize)>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd.una)
            .field("snd_nxt", &self.snd.nxt)
            .field("snd_wnd", &self.snd.wnd)
            .field("rcv_nxt", &self.rcv.nxt)
            .field("recovery", &self.recovery.phase)
            .field("lost_end", &self.recovery.scoreboard.lost_end())
            .field("high_rxt", &self.recovery.scoreboard.high_rxt())
            .field("sack_ranges", &self.recovery.scoreboard.ranges().len())
            .field("sacked", &self.recovery.scoreboard.sacked_bytes())
            .field("pipe", &self.pipe())
            .field("cwnd", &self.cc.ctrl.cwnd())
            .field("rtx_at", &self.timers.get(Timer::Retransmit))
            .field("hystart", &self.cc.hystart.phase())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Local address.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// Remote address.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// True once the connection is established (or further along).
    pub fn is_established(&self) -> bool {
        self.state.is_synchronized()
    }

    /// True when the connection is finished and can be removed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none()
    }

    /// SND.UNA: the oldest sequence number not yet acknowledged.
    pub fn snd_una(&self) -> SeqNum {
        self.snd.una
    }

    /// SND.NXT: the next sequence number to send.
    pub fn snd_nxt(&self) -> SeqNum {
        self.snd.nxt
    }

    /// RCV.NXT: the next sequence number expected from the peer.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv.nxt
    }

    /// How many times the SYN (or SYN-ACK) was retransmitted.
    pub fn handshake_retries(&self) -> u32 {
        self.snd.syn_retries
    }

    /// True when `seq` lies in SND.UNA..SND.NXT: data we sent that is not
    /// acknowledged yet (RFC 5927's check of ICMP errors).
    pub fn seq_in_flight(&self, seq: SeqNum) -> bool {
        seq.in_range(self.snd.una, self.snd.nxt)
    }

    /// Sends a window update if the window offered can now grow enough to
    /// be worth one (after memory pressure eased).
    pub fn request_window_update(&mut self) {
        if self.state.is_synchronized() && self.state != State::TimeWait {
            self.after_read();
        }
    }

    /// The configuration in effect (with per-socket changes).
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// A statistics snapshot.
    pub fn stats(&self) -> TcpStats {
        let mut s = self.stats.clone();
        s.state = self.state;
        s.cwnd = self.cc.ctrl.cwnd();
        s.ssthresh = self.cc.ctrl.ssthresh();
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.min_rtt = self.rtt.min_rtt();
        s.rto = self.rtt.rto();
        s.mss = self.snd.smss;
        s.in_flight = self.pipe();
        s.snd_wnd = self.snd.wnd;
        s.rcv_wnd = self.rcv.adv.since(self.rcv.nxt);
        s.sacked_bytes = self.recovery.scoreboard.sacked_bytes();
        s.send_buffer = self.snd.buf.capacity();
        s.recv_buffer = self.cfg.recv_buffer;
        s.delivery_rate = self.delivery.rate();
        s.rate_snapshot_merges = self.rate.merges();
        s.pacing_rate = self.pacing_rate().unwrap_or(0);
        s.bbr = self.cc.ctrl.bbr_state();
        s
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something to
    /// send right now (an ACK, a reset, a probe, data or a FIN).
    pub fn wants_transmit(&self) -> bool {
        self.pending_rst.is_some() || self.rcv.ack_now || self.probe.send_now || self.has_sendable()
    }

    /// When this connection next needs [`poll_transmit`](Self::poll_transmit):
    /// now if it has something to send, the pacing release time if what it
    /// has to send is paced data, else its earliest timer.
    pub fn poll_at(&self) -> Option<Instant> {
        if let Some(release) = self.pacing_wait() {
            return [Some(release), self.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
        }
        if self.wants_transmit() {
            return Some(self.last_rcvd_at.min(self.last_sent_at));
        }
        self.poll_timeout()
    }

    // --- helpers shared by input and output ------------------------------

    pub(crate) fn set_state(&mut self, state: State) {
        log::trace!(
            "{} -> {}: {} -> {}",
            self.local,
            self.remote,
            self.state,
            state
        );
        self.state = state;
        self.stats.state = state;
    }

    /// Closes the connection, recording `error` (None for a normal end). A
    /// timeout reports the soft error ICMP told of, if any.
    pub(crate) fn enter_closed(&mut self, error: Option<TcpError>) {
        let error = match error {
            Some(TcpError::TimedOut) => self.soft_error.or(error),
            e => e,
        };
        if error.is_some() && self.error.is_none() {
            self.error = error;
        }
        self.set_state(State::Closed);
        // Nothing queued can be sent any more: let it go now, not when the
        // application gets round to closing (Linux purges the write queue
        // in tcp_done). Received data stays readable.
        let queued = self.snd.buf.len();
        self.snd.buf.consume(queued);
        self.snd.buf.release_if_empty();
        self.recovery.scoreboard.clear(self.snd.una);
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::Tlp);
        self.timers.stop(Timer::Reorder);
        self.recovery.rack.clear(self.snd.una);
        self.timers.stop(Timer::Persist);
        self.timers.stop(Timer::DelayedAck);
        self.timers.stop(Timer::KeepAlive);
        self.timers.stop(Timer::Close);
        self.probe.persist_since = None;
        self.rcv.ack_now = false;
    }

    pub(crate) fn make_rst(&self, seq: SeqNum) -> TcpRepr {
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: SeqNum(0),
            flags: crate::Flags(crate::Flags::RST),
            window: 0,
            options: TcpOptions::default(),
            urgent: 0,
        }
    }

    /// True once our FIN has been acknowledged.
    pub(crate) fn fin_acked(&self) -> bool {
        self.snd.fin_seq.is_some_and(|f| self.snd.una > f)
    }

    /// Sequence number of the first byte in the send buffer.
    pub(crate) fn send_buf_seq(&self) -> SeqNum {
        // SND.UNA is ISS until our SYN is acknowledged; the SYN takes no
        // byte of the buffer. (Not `una.max(iss + 1)`: sequence numbers
        // compare modulo 2^32, so past 2 GiB sent that picked ISS + 1.)
        let start = if self.snd.una == self.snd.iss {
            self.snd.iss + 1
        } else {
            self.snd.una
        };
        // Once the FIN is acknowledged SND.UNA is one past the data.
        match self.snd.fin_seq {
            Some(f) if start > f => f,
            _ => start,
        }
    }

    /// Sequence number just past the last byte of queued data.
    pub(crate) fn data_end(&self) -> SeqNum {
        self.send_buf_seq() + self.snd.buf.len()
    }

    /// Our timestamp clock (RFC 7323 5.4: 1 ms per tick, random offset).
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.ts.epoch).as_millis() as u32;
        ms.wrapping_add(self.ts.offset)
    }

    /// Bytes in flight (RFC 6675 pipe).
    pub(crate) fn pipe(&self) -> usize {
        self.recovery.scoreboard.pipe(self.snd.una, self.snd.nxt)
    }

    /// The receive window we can offer: free space (under memory pressure,
    /// only what the buffer may grow to) minus the rounding slack.
    pub(crate) fn advertisable_window(&self) -> usize {
        let slack = 1 << self.cfg.window_scale.min(14);
        let free = self.rcv.buf.window_allowed().saturating_sub(slack);
        if self.rcv.read_shut {
            self.cfg.recv_buffer
        } else {
            free
        }
    }

    /// True when [`poll_transmit`](Self::poll_transmit) would send
    /// something now (the same decision, without side effects).
    fn has_sendable(&self) -> bool {
        if self.snd.syn_pending && matches!(self.state, State::SynSent | State::SynReceived) {
            return true;
        }
        self.plan().0.is_some()
    }

    /// The most one ACK may add to cwnd in slow start: RFC 3465's L*SMSS.
    ///
    /// RFC 3465 2.3 recommends L = 2: an ACK covering more than two
    /// segments (a stretch ACK) adds only two, so that a sender does not
    /// answer it with a burst much larger than the ones the ACK clock
    /// paces. With segmentation offload that reasoning turns around: the
    /// sender's bursts are super segments of up to `burst` bytes already,
    /// and a receiver that takes them whole (the kernel reading a TAP
    /// device, or any receiver with GRO) acknowledges each with a single
    /// ACK. Counting that ACK as two segments would make slow start grow
    /// by 2 segments per super segment instead of doubling per round trip
    /// (a 45-segment super segment stands for 22 delayed ACKs). So L is
    /// the number of segments in a super segment, still never below 2.
    pub(crate) fn slow_start_limit(&self) -> usize {
        let mss = self.snd.smss.max(1);
        (2 * mss).max(self.snd.burst / mss * mss)
    }

    /// Nagle's algorithm (RFC 1122 4.2.3.4) with sender-side silly window
    /// avoidance (RFC 9293 3.8.6.2.1): a short segment goes out only if
    /// nothing is in flight (or TCP_NODELAY is set) and it empties the
    /// buffer.
    pub(crate) fn nagle_allows(&self, unsent: usize) -> bool {
        if unsent >= self.snd.smss {
            return true;
        }
        let all_acked = self.snd.nxt == self.snd.una;
        (self.cfg.nodelay || all_acked) || self.snd.fin_queued
    }

    /// RFC 5961 7 ("ACK throttling"): ACKs answering unacceptable segments
    /// (out of window, failing PAWS, acknowledging unsent data) and
    /// challenge ACKs share one allowance per connection: one per
    /// `invalid_ack_interval`, as Linux's `tcp_invalid_ratelimit`. Returns
    /// whether one may be sent now (and counts the ones suppressed).
    pub(crate) fn take_oow_token(&mut self, now: Instant) -> bool {
        if self
            .last_oow_ack
            .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.invalid_ack_interval)
        {
            self.alarms.acks_throttled += 1;
            return false;
        }
        self.last_oow_ack = Some(now);
        true
    }

    /// Schedules an ACK for an unacceptable segment, throttled unless the
    /// segment carried data (Linux's `tcp_oow_rate_limited` exempts those:
    /// they cannot be part of an ACK loop, and the ACK's D-SACK matters).
    pub(crate) fn ack_unacceptable(&mut self, now: Instant, payload_len: usize) {
        if payload_len > 0 || self.take_oow_token(now) {
            self.rcv.ack_now = true;
        }
    }
}

#[cfg(test)]
mod tests;
