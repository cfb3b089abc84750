//! The TCP connection (transmission control block) and its state machine
//! (RFC 9293 section 3.3.2): input in `input.rs`, output and timers in
//! `output.rs`, application calls and bookkeeping here.

mod input;
mod output;

use std::fmt;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::buffer::{RecvBuffer, SendBuffer};
use crate::cc::CongestionControl;
use crate::config::TcpConfig;
use crate::rtt::RttEstimator;
use crate::sack::Scoreboard;
use crate::segment::{TcpOptions, TcpRepr};
use crate::seq::SeqNum;
use crate::stats::TcpStats;

pub use input::Input;

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
    /// Nothing can be done without waiting (EAGAIN).
    WouldBlock,
    /// The write side is closed (EPIPE).
    Closed,
    /// The connection is not established yet or any more (ENOTCONN).
    NotConnected,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::Refused => "connection refused",
            TcpError::Reset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
            TcpError::WouldBlock => "operation would block",
            TcpError::Closed => "broken pipe",
            TcpError::NotConnected => "not connected",
        })
    }
}

impl std::error::Error for TcpError {}

/// Where loss recovery stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Recovery {
    /// RFC 6675 / RFC 6582 fast recovery until `point` is acknowledged.
    Fast { point: SeqNum },
    /// Retransmitting after a timeout until `point` is acknowledged.
    Timeout { point: SeqNum },
}

/// Proportional Rate Reduction (RFC 6937) for one fast recovery: how much
/// may be sent as ACKs report deliveries, so that the flight shrinks
/// smoothly to ssthresh across the recovery round trip instead of stopping
/// until the pipe drains to it (and then sending in a burst).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Prr {
    /// prr_delivered: bytes the peer reported delivered during recovery.
    pub delivered: usize,
    /// prr_out: bytes sent during recovery.
    pub out: usize,
    /// RecoverFS: the flight when recovery began.
    pub recover_fs: usize,
    /// sndcnt: what the latest ACK lets recovery send (less what went).
    pub sndcnt: usize,
}

/// Timestamp state (RFC 7323).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamps {
    /// TS.Recent: the peer's timestamp to echo.
    pub recent: u32,
    /// When TS.Recent was set (PAWS: older than 24 days is invalid).
    pub recent_at: Instant,
}

/// One TCP connection.
pub struct Connection {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) state: State,
    pub(crate) cfg: TcpConfig,
    pub(crate) epoch: Instant,

    // Send sequence space (RFC 9293 3.3.1). SND.NXT is the highest sequence
    // number sent plus one: retransmissions never rewind it (they are
    // tracked by the scoreboard instead).
    pub(crate) iss: SeqNum,
    pub(crate) snd_una: SeqNum,
    pub(crate) snd_nxt: SeqNum,
    pub(crate) snd_wnd: usize,
    pub(crate) max_snd_wnd: usize,
    pub(crate) snd_wl1: SeqNum,
    pub(crate) snd_wl2: SeqNum,
    pub(crate) snd_wscale: u8,
    pub(crate) peer_mss: usize,
    pub(crate) send_buf: SendBuffer,
    /// The application will write no more: a FIN follows the data.
    pub(crate) fin_queued: bool,
    /// Set once a FIN has been sent.
    pub(crate) fin_sent: bool,
    /// Sequence number our FIN occupies, once sent.
    pub(crate) fin_seq: Option<SeqNum>,

    // Receive sequence space.
    pub(crate) irs: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// Right edge of the window last advertised; never moves left.
    pub(crate) rcv_adv: SeqNum,
    pub(crate) rcv_wscale: u8,
    pub(crate) recv_buf: RecvBuffer,
    /// Sequence number of the peer's FIN, once seen (it may arrive out of
    /// order, before data that precedes it).
    pub(crate) remote_fin: Option<SeqNum>,
    /// The peer's FIN was consumed: reads return end of file when drained.
    pub(crate) read_eof: bool,
    /// The application shut down its read side.
    pub(crate) read_shut: bool,

    // Options in use.
    pub(crate) ts: Option<Timestamps>,
    pub(crate) sack_ok: bool,
    pub(crate) our_ts_offset: u32,

    // Acknowledgment generation.
    pub(crate) ack_now: bool,
    pub(crate) delack_at: Option<Instant>,
    pub(crate) unacked_segments: u32,
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
    /// Last.ACK.sent (RFC 7323 4.3).
    pub(crate) last_ack_sent: SeqNum,
    /// Largest payload received, our estimate of the peer's segment size.
    pub(crate) largest_rcvd: usize,
    /// Largest super segment the device takes (0: none; see
    /// [`poll_transmit_burst`](Connection::poll_transmit_burst)).
    pub(crate) burst: usize,
    /// Send a zero-window or keep-alive probe.
    pub(crate) probe_now: bool,
    pub(crate) syn_pending: bool,
    pub(crate) pending_rst: Option<TcpRepr>,

    // Timers.
    pub(crate) rtx_at: Option<Instant>,
    /// Tail loss probe timer (RFC 8985 7).
    pub(crate) pto_at: Option<Instant>,
    /// A probe is due (the PTO fired).
    pub(crate) tlp_due: bool,
    /// End of the probe episode: no new probe until SND.UNA passes it.
    pub(crate) tlp_end: Option<SeqNum>,
    pub(crate) persist_at: Option<Instant>,
    pub(crate) persist_backoff: u32,
    pub(crate) keepalive_at: Option<Instant>,
    pub(crate) keepalive_sent: u32,
    pub(crate) close_at: Option<Instant>,
    /// When the oldest unacknowledged data was first outstanding (for the
    /// user timeout); reset whenever SND.UNA advances.
    pub(crate) progress_at: Option<Instant>,
    pub(crate) syn_retries: u32,
    pub(crate) last_sent_at: Instant,
    pub(crate) last_rcvd_at: Instant,

    // RTT and congestion.
    pub(crate) rtt: RttEstimator,
    pub(crate) timed: Option<(SeqNum, Instant)>,
    pub(crate) cc: Box<dyn CongestionControl>,
    pub(crate) cc_ready: bool,
    pub(crate) hystart: crate::hystart::HyStart,
    pub(crate) scoreboard: Scoreboard,
    pub(crate) recovery: Option<Recovery>,
    pub(crate) prr: Prr,
    pub(crate) dupacks: u32,
    /// Retransmit the first lost segment at once (entering recovery).
    pub(crate) retransmit_now: bool,
    /// The last transmission attempt stopped because cwnd was full.
    pub(crate) cwnd_limited: bool,
    pub(crate) rto_without_progress: u32,
    /// Limited to the path MTU seen at the last transmission.
    pub(crate) smss: usize,

    // Abnormal end and control.
    pub(crate) error: Option<TcpError>,
    pub(crate) app_closed: bool,
    pub(crate) challenge_tokens: u32,
    pub(crate) challenge_refill: Instant,

    pub(crate) stats: TcpStats,
    /// Scratch for SACK block generation.
    pub(crate) sack_scratch: Vec<(usize, usize)>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("snd_wnd", &self.snd_wnd)
            .field("rcv_nxt", &self.rcv_nxt)
            .field("recovery", &self.recovery)
            .field("lost_end", &self.scoreboard.lost_end())
            .field("high_rxt", &self.scoreboard.high_rxt())
            .field("sack_ranges", &self.scoreboard.ranges().len())
            .field("sacked", &self.scoreboard.sacked_bytes())
            .field("pipe", &self.pipe())
            .field("cwnd", &self.cc.cwnd())
            .field("rtx_at", &self.rtx_at)
            .field("hystart", &self.hystart.phase())
            .finish_non_exhaustive()
    }
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    fn blank(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
        epoch: Instant,
        now: Instant,
        state: State,
    ) -> Connection {
        let mut stats = TcpStats {
            state,
            ..TcpStats::default()
        };
        let cc = cfg.congestion.build();
        stats.congestion = cc.name();
        Connection {
            local,
            remote,
            state,
            cfg: cfg.clone(),
            epoch,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            snd_wscale: 0,
            peer_mss: 536,
            send_buf: SendBuffer::new(cfg.send_buffer),
            fin_queued: false,
            fin_sent: false,
            fin_seq: None,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            rcv_wscale: 0,
            // Slack of one window-scale unit lets a rounded-up window edge
            // never exceed the space really there (RFC 7323 2.4).
            recv_buf: RecvBuffer::new(cfg.recv_buffer + (1 << cfg.window_scale.min(14))),
            remote_fin: None,
            read_eof: false,
            read_shut: false,
            ts: None,
            sack_ok: false,
            our_ts_offset: ts_offset,
            ack_now: false,
            delack_at: None,
            unacked_segments: 0,
            dsack: None,
            last_ack_sent: SeqNum(0),
            largest_rcvd: 0,
            burst: 0,
            probe_now: false,
            syn_pending: true,
            pending_rst: None,
            rtx_at: None,
            pto_at: None,
            tlp_due: false,
            tlp_end: None,
            persist_at: None,
            persist_backoff: 0,
            keepalive_at: None,
            keepalive_sent: 0,
            close_at: None,
            progress_at: None,
            syn_retries: 0,
            last_sent_at: now,
            last_rcvd_at: now,
            rtt: RttEstimator::new(cfg.min_rto, cfg.max_rto),
            timed: None,
            cc,
            cc_ready: false,
            hystart: crate::hystart::HyStart::default(),
            scoreboard: Scoreboard::new(iss),
            recovery: None,
            prr: Prr::default(),
            dupacks: 0,
            retransmit_now: false,
            cwnd_limited: false,
            rto_without_progress: 0,
            smss: 536,
            error: None,
            app_closed: false,
            challenge_tokens: cfg.challenge_ack_limit,
            challenge_refill: now,
            stats,
            sack_scratch: Vec::new(),
        }
    }

    /// Active open (RFC 9293 3.10.1): a connection in SYN-SENT; the SYN goes
    /// out on the next [`poll_transmit`](Self::poll_transmit). `iss` comes
    /// from the stack's [`IsnGenerator`](crate::IsnGenerator), `ts_offset`
    /// is a random timestamp offset, `epoch` the stack's clock origin.
    pub fn connect(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
        epoch: Instant,
        now: Instant,
    ) -> Connection {
        let mut c = Self::blank(
            cfg,
            local,
            remote,
            iss,
            ts_offset,
            epoch,
            now,
            State::SynSent,
        );
        c.snd_nxt = iss;
        c
    }

    /// Passive open: a listener received `syn` (already validated by the
    /// stack: SYN set, ACK and RST clear). Returns a connection in
    /// SYN-RECEIVED whose SYN-ACK goes out on the next poll.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
        epoch: Instant,
        now: Instant,
        syn: &TcpRepr,
    ) -> Connection {
        let mut c = Self::blank(
            cfg,
            local,
            remote,
            iss,
            ts_offset,
            epoch,
            now,
            State::SynReceived,
        );
        // RFC 9293 3.10.7.2: "Set RCV.NXT to SEG.SEQ+1, IRS is set to
        // SEG.SEQ".
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        // Nothing offered yet: the SYN-ACK sets the first edge.
        c.rcv_adv = c.rcv_nxt;
        c.negotiate(now, &syn.options);
        // The window in a SYN is never scaled (RFC 7323 2.2).
        c.snd_wnd = syn.window as usize;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c.snd_wl2 = iss;
        c.ack_now = false;
        c
    }

    /// Applies the options of the peer's SYN (or SYN-ACK).
    pub(crate) fn negotiate(&mut self, now: Instant, opts: &TcpOptions) {
        // RFC 9293 3.7.1: without an MSS option, assume 536.
        self.peer_mss = opts.mss.map_or(536, |m| m.max(64) as usize);
        // RFC 7323 2.2: scaling applies only if both sides sent the option;
        // a shift above 14 is treated as 14.
        if let (Some(peer), true) = (opts.window_scale, self.cfg.window_scale > 0) {
            self.snd_wscale = peer.min(14);
            self.rcv_wscale = self.cfg.window_scale.min(14);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok = self.cfg.sack && opts.sack_permitted;
        self.ts = match (self.cfg.timestamps, opts.timestamps) {
            (true, Some((val, _))) => Some(Timestamps {
                recent: val,
                recent_at: now,
            }),
            _ => None,
        };
        self.stats.sack = self.sack_ok;
        self.stats.timestamps = self.ts.is_some();
        self.stats.window_scale = (self.rcv_wscale > 0 || self.snd_wscale > 0)
            .then_some((self.rcv_wscale, self.snd_wscale));
    }

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

    // --- application calls -------------------------------------------------

    /// Queues `data` for sending; returns how much fit in the send buffer.
    /// Data written before the handshake completes is sent once it does.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed | State::Listen => return Err(TcpError::NotConnected),
            _ => return Err(TcpError::Closed),
        }
        if self.fin_queued {
            return Err(TcpError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.send_buf.write(data);
        if n == 0 {
            return Err(TcpError::WouldBlock);
        }
        Ok(n)
    }

    /// Room in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.fin_queued {
            0
        } else {
            self.send_buf.free()
        }
    }

    /// Bytes written but not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }

    /// Reads received data. `Ok(0)` means end of stream (the peer closed
    /// and everything was read); WouldBlock means nothing yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        if self.recv_buf.readable() == 0 {
            if let Some(e) = self.error {
                return Err(e);
            }
            if self.read_eof || self.read_shut {
                return Ok(0);
            }
            return match self.state {
                State::Closed | State::Listen => Err(TcpError::NotConnected),
                _ => Err(TcpError::WouldBlock),
            };
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.recv_buf.read(buf);
        self.after_read();
        Ok(n)
    }

    /// The readable bytes without consuming them (two slices, ring order).
    pub fn peek(&self) -> (&[u8], &[u8]) {
        self.recv_buf.peek()
    }

    /// Consumes `n` bytes after [`peek`](Self::peek).
    pub fn consume(&mut self, n: usize) {
        self.recv_buf.consume(n);
        self.after_read();
    }

    /// Bytes ready to read.
    pub fn recv_queued(&self) -> usize {
        self.recv_buf.readable()
    }

    /// True when a read would not block: data, end of stream or an error.
    pub fn can_recv(&self) -> bool {
        self.recv_buf.readable() > 0 || self.read_eof || self.read_shut || self.error.is_some()
    }

    /// True when a write would not block (or would fail at once).
    pub fn can_send(&self) -> bool {
        self.error.is_some()
            || self.fin_queued
            || matches!(self.state, State::Established | State::CloseWait)
                && self.send_buf.free() > 0
    }

    /// True once the peer's FIN has been consumed by the stream.
    pub fn peer_closed(&self) -> bool {
        self.read_eof
    }

    /// Opens the window again after the application read: RFC 9293
    /// 3.8.6.2.2 sends a window update when the window can grow by at least
    /// min(buffer/2, MSS) -- ustack waits for 2*MSS, like Linux, to halve the
    /// number of pure window updates.
    fn after_read(&mut self) {
        if !self.state.is_synchronized() || self.remote_fin.is_some() && self.read_eof {
            return;
        }
        let advertised = self.rcv_adv.since(self.rcv_nxt);
        let free = self.advertisable_window();
        let mss = self.cfg.mss as usize;
        if free >= advertised + (2 * mss).min(self.cfg.recv_buffer / 2)
            || (advertised < mss && free >= mss)
        {
            self.ack_now = true;
        }
    }

    /// Closes the write side: a FIN follows the queued data (RFC 9293
    /// 3.10.4 CLOSE / shutdown(SHUT_WR)). Reading stays possible.
    pub fn shutdown_write(&mut self) {
        match self.state {
            State::SynSent => {
                // "Delete the TCB ... and return": nothing was sent yet.
                self.state = State::Closed;
                self.stats.state = State::Closed;
            }
            State::SynReceived | State::Established => {
                self.fin_queued = true;
                if self.state == State::Established {
                    self.set_state(State::FinWait1);
                }
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// The application will not read any more (shutdown(SHUT_RD)): queued
    /// and future data is discarded, reads return end of stream.
    pub fn shutdown_read(&mut self) {
        self.read_shut = true;
        let n = self.recv_buf.readable();
        self.recv_buf.consume(n);
    }

    /// The application closed the socket: shuts the write side and lets the
    /// connection finish in the background (FIN-WAIT-2 limited by
    /// `fin_wait2_timeout`). If unread data is waiting, the connection is
    /// reset instead (RFC 2525 2.17, as Linux does).
    pub fn close(&mut self, now: Instant) {
        self.app_closed = true;
        if self.recv_buf.readable() > 0 && self.state.is_synchronized() {
            self.abort(now);
            return;
        }
        self.shutdown_write();
        if self.state == State::FinWait2 {
            self.close_at = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Aborts: a reset is sent if the peer knows about the connection
    /// (RFC 9293 3.10.5 ABORT), and the connection is closed.
    pub fn abort(&mut self, _now: Instant) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.pending_rst = Some(self.make_rst(self.snd_nxt));
        }
        self.enter_closed(None);
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&mut self, on: bool) {
        self.cfg.nodelay = on;
    }

    /// Sets or clears keep-alive.
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<crate::Keepalive>) {
        self.cfg.keepalive = keepalive;
        self.keepalive_sent = 0;
        self.keepalive_at = keepalive.map(|k| now + k.idle);
    }

    /// Sets the send buffer size.
    pub fn set_send_buffer(&mut self, bytes: usize) {
        self.cfg.send_buffer = bytes;
        self.send_buf.set_capacity(bytes);
    }

    /// Sets the receive buffer size (takes effect for the advertised window
    /// at once; the window scale was fixed at connection set-up).
    pub fn set_recv_buffer(&mut self, bytes: usize) {
        self.cfg.recv_buffer = bytes;
        self.recv_buf
            .set_capacity(bytes + (1 << self.cfg.window_scale.min(14)));
    }

    /// Replaces the congestion control algorithm (allowed before the
    /// connection is established).
    pub fn set_congestion_control(&mut self, algorithm: crate::cc::Algorithm) {
        self.cfg.congestion = algorithm;
        let mut cc = algorithm.build();
        if self.cc_ready {
            cc.init(self.smss);
        }
        self.cc = cc;
        self.stats.congestion = self.cc.name();
    }

    /// The configuration in effect (with per-socket changes).
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// A statistics snapshot.
    pub fn stats(&self) -> TcpStats {
        let mut s = self.stats.clone();
        s.state = self.state;
        s.cwnd = self.cc.cwnd();
        s.ssthresh = self.cc.ssthresh();
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.min_rtt = self.rtt.min_rtt();
        s.rto = self.rtt.rto();
        s.mss = self.smss;
        s.in_flight = self.pipe();
        s.snd_wnd = self.snd_wnd;
        s.rcv_wnd = self.rcv_adv.since(self.rcv_nxt);
        s.sacked_bytes = self.scoreboard.sacked_bytes();
        s
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something to
    /// send right now (an ACK, a reset, a probe, data or a FIN).
    pub fn wants_transmit(&self) -> bool {
        self.pending_rst.is_some() || self.ack_now || self.probe_now || self.has_sendable()
    }

    /// When this connection next needs [`poll_transmit`](Self::poll_transmit):
    /// now if it has something to send, else its earliest timer.
    pub fn poll_at(&self) -> Option<Instant> {
        if self.wants_transmit() {
            return Some(self.last_rcvd_at.min(self.last_sent_at));
        }
        let user_timeout = self
            .progress_at
            .filter(|_| self.snd_nxt > self.snd_una && self.state.is_synchronized())
            .map(|p| p + self.cfg.user_timeout);
        [
            self.rtx_at,
            self.pto_at,
            self.persist_at,
            self.delack_at,
            self.keepalive_at,
            self.close_at,
            user_timeout,
        ]
        .into_iter()
        .flatten()
        .min()
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

    /// Closes the connection, recording `error` (None for a normal end).
    pub(crate) fn enter_closed(&mut self, error: Option<TcpError>) {
        if error.is_some() && self.error.is_none() {
            self.error = error;
        }
        self.set_state(State::Closed);
        self.rtx_at = None;
        self.pto_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.keepalive_at = None;
        self.close_at = None;
        self.ack_now = false;
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
        }
    }

    /// True once our FIN has been acknowledged.
    pub(crate) fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una > f)
    }

    /// Sequence number of the first byte in the send buffer.
    pub(crate) fn send_buf_seq(&self) -> SeqNum {
        let start = self.snd_una.max(self.iss + 1);
        // Once the FIN is acknowledged SND.UNA is one past the data.
        match self.fin_seq {
            Some(f) if start > f => f,
            _ => start,
        }
    }

    /// Sequence number just past the last byte of queued data.
    pub(crate) fn data_end(&self) -> SeqNum {
        self.send_buf_seq() + self.send_buf.len()
    }

    /// Our timestamp clock (RFC 7323 5.4: 1 ms per tick, random offset).
    pub(crate) fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.our_ts_offset)
    }

    /// Bytes in flight (RFC 6675 pipe).
    pub(crate) fn pipe(&self) -> usize {
        self.scoreboard.pipe(self.snd_una, self.snd_nxt)
    }

    /// The receive window we can offer: free space minus the rounding slack.
    pub(crate) fn advertisable_window(&self) -> usize {
        let slack = 1 << self.cfg.window_scale.min(14);
        let free = self.recv_buf.window().saturating_sub(slack);
        if self.read_shut {
            self.cfg.recv_buffer
        } else {
            free
        }
    }

    /// True when [`poll_transmit`](Self::poll_transmit) would send
    /// something now (the same decision, without side effects).
    fn has_sendable(&self) -> bool {
        if self.syn_pending && matches!(self.state, State::SynSent | State::SynReceived) {
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
        let mss = self.smss.max(1);
        (2 * mss).max(self.burst / mss * mss)
    }

    /// Nagle's algorithm (RFC 1122 4.2.3.4) with sender-side silly window
    /// avoidance (RFC 9293 3.8.6.2.1): a short segment goes out only if
    /// nothing is in flight (or TCP_NODELAY is set) and it empties the
    /// buffer.
    pub(crate) fn nagle_allows(&self, unsent: usize) -> bool {
        if unsent >= self.smss {
            return true;
        }
        let all_acked = self.snd_nxt == self.snd_una;
        (self.cfg.nodelay || all_acked) || self.fin_queued
    }

    /// Challenge ACKs (RFC 5961) are rate limited per connection.
    pub(crate) fn take_challenge_token(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.challenge_refill) >= Duration::from_secs(1) {
            self.challenge_refill = now;
            self.challenge_tokens = self.cfg.challenge_ack_limit;
        }
        if self.challenge_tokens > 0 {
            self.challenge_tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
