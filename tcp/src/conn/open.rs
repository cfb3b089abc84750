//! Opening a connection: the active open (RFC 9293 3.10.1), the passive
//! open from a listener's SYN or from a SYN cookie, and the options the
//! peer's SYN negotiates.

use std::net::SocketAddrV4;
use std::time::Instant;

use super::recovery::{LossRecovery, Prr};
use super::state::{Congestion, RecvSpace, RecvState, SendState, Timestamps, TsState};
use super::timers::{Probes, TimerTable};
use super::{Alarms, Connection, State};
use crate::buffer::{MemoryPressure, RecvBuffer, SendBuffer};
use crate::config::TcpConfig;
use crate::rtt::RttEstimator;
use crate::sack::Scoreboard;
use crate::segment::{TcpOptions, TcpRepr};
use crate::seq::SeqNum;
use crate::stats::TcpStats;

impl Connection {
    /// A connection about to send its SYN (SYN-SENT) or, `passive`, its
    /// SYN-ACK (SYN-RECEIVED, opened by a listener).
    #[allow(clippy::too_many_arguments)]
    fn blank(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNum,
        ts_offset: u32,
        epoch: Instant,
        now: Instant,
        passive: bool,
    ) -> Connection {
        let state = if passive {
            State::SynReceived
        } else {
            State::SynSent
        };
        let mut stats = TcpStats {
            state,
            ..TcpStats::default()
        };
        // The algorithm's randomness comes from the stack's (the ISS and
        // timestamp offset are random, RFC 6528 / RFC 7323 7.1).
        let cc = cfg
            .congestion
            .build_seeded(u64::from(iss.0) << 32 | u64::from(ts_offset));
        stats.congestion = cc.name();
        let mut cfg = cfg.clone();
        if cfg.user_timeout.is_zero() {
            // Zero means "the default" (as TCP_USER_TIMEOUT 0 on Linux).
            cfg.user_timeout = TcpConfig::default().user_timeout;
        }
        let cfg = &cfg;
        Connection {
            local,
            remote,
            state,
            cfg: cfg.clone(),
            sack_ok: false,
            user_timeout_set: std::time::Duration::ZERO,
            default_user_timeout: cfg.user_timeout,
            timers: TimerTable::default(),
            pacing: Default::default(),
            pending_rst: None,
            last_sent_at: now,
            last_rcvd_at: now,
            rtt: RttEstimator::new(cfg.min_rto, cfg.max_rto),
            timed: None,
            error: None,
            app_closed: false,
            passive,
            soft_error: None,
            last_oow_ack: None,
            mem: MemoryPressure::Normal,
            alarms: Alarms::default(),
            stats,
            delivery: Default::default(),
            rate: crate::rate::RateEstimator::new(epoch),
            sack_scratch: Vec::new(),
            snd: SendState {
                iss,
                una: iss,
                nxt: iss,
                wnd: 0,
                max_wnd: 0,
                wl1: SeqNum(0),
                wl2: iss,
                wscale: 0,
                peer_mss: 536,
                smss: 536,
                path_mtu: cfg.mss as usize + 40,
                burst: 0,
                buf: SendBuffer::new(cfg.send_buffer),
                up: None,
                nospace: false,
                fin_queued: false,
                fin_sent: false,
                fin_seq: None,
                syn_pending: true,
                syn_retries: 0,
                last_data_sent_at: None,
                progress_at: None,
                cork_expired: false,
            },
            rcv: RecvState {
                irs: SeqNum(0),
                nxt: SeqNum(0),
                adv: SeqNum(0),
                wscale: 0,
                // Slack of one window-scale unit lets a rounded-up window edge
                // never exceed the space really there (RFC 7323 2.4).
                buf: RecvBuffer::new(cfg.recv_buffer + (1 << cfg.window_scale.min(14))),
                remote_fin: None,
                up: None,
                read_eof: false,
                read_shut: false,
                // Linux's tcp_initialize_rcv_mss: the RFC 9293 default until
                // segments show more.
                mss: 536.min(cfg.mss as usize),
                last_seg_size: 0,
                ack_now: false,
                unacked_bytes: 0,
                dsack: None,
                last_ack_sent: SeqNum(0),
                quick_acks: 0,
                space: RecvSpace {
                    at: None,
                    seq: SeqNum(0),
                    copied: crate::cc::initial_window(usize::from(cfg.mss)),
                },
            },
            ts: TsState {
                peer: None,
                offset: ts_offset,
                epoch,
            },
            recovery: LossRecovery {
                scoreboard: Scoreboard::new(iss),
                phase: None,
                prr: Prr::default(),
                dupacks: 0,
                retransmit_now: false,
                rto_without_progress: 0,
                tlp_due: false,
                tlp_follow: false,
                tlp_end: None,
                tlp_sent: 0,
                tlp_retrans: None,
                rack: crate::rack::Rack::new(epoch, iss),
                undo: None,
            },
            cc: Congestion {
                ctrl: cc,
                ready: false,
                hystart: crate::hystart::HyStart::default(),
                cwnd_limited: false,
            },
            probe: Probes {
                send_now: false,
                persist_backoff: 0,
                persist_since: None,
                keepalive_sent: 0,
            },
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
        Self::blank(cfg, local, remote, iss, ts_offset, epoch, now, false)
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
        let mut c = Self::blank(cfg, local, remote, iss, ts_offset, epoch, now, true);
        // RFC 9293 3.10.7.2: "Set RCV.NXT to SEG.SEQ+1, IRS is set to
        // SEG.SEQ".
        c.rcv.irs = syn.seq;
        c.rcv.nxt = syn.seq + 1;
        // Nothing offered yet: the SYN-ACK sets the first edge.
        c.rcv.adv = c.rcv.nxt;
        c.negotiate(now, &syn.options);
        // The window in a SYN is never scaled (RFC 7323 2.2).
        c.snd.first_window(syn.seq, syn.window as usize);
        c.snd.wl2 = iss;
        c.rcv.ack_now = false;
        c
    }

    /// Passive open from a SYN cookie: the final `ack` of a handshake whose
    /// SYN-ACK (ISS = SEG.ACK - 1) was sent by
    /// [`cookie_syn_ack`](crate::syncookie::cookie_syn_ack) without keeping
    /// state, and what [`check_ack`](crate::syncookie::check_ack) restored
    /// of the SYN. Returns a connection in SYN-RECEIVED as it would be after
    /// sending that SYN-ACK; the stack then hands it `ack` with
    /// [`handle_segment`](Self::handle_segment), which establishes it and
    /// takes any data the ACK carries.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_cookie(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        ts_offset: u32,
        epoch: Instant,
        now: Instant,
        ack: &TcpRepr,
        syn: crate::syncookie::CookieSyn,
    ) -> Connection {
        let iss = ack.ack - 1;
        let mut c = Self::blank(cfg, local, remote, iss, ts_offset, epoch, now, true);
        c.rcv.irs = ack.seq - 1;
        c.rcv.nxt = ack.seq;
        c.rcv.last_ack_sent = ack.seq;
        // The SYN-ACK offered this edge.
        c.rcv.adv = c.rcv.nxt + crate::syncookie::cookie_window(cfg) as usize;
        c.snd.nxt = iss + 1;
        c.snd.syn_pending = false;
        c.snd.peer_mss = syn.mss as usize;
        // The timestamp to echo is the ACK's: the SYN's is long gone.
        let tsval = ack.options.timestamps.filter(|_| syn.timestamps);
        c.apply_options(now, syn.window_scale, syn.sack, tsval.map(|(val, _)| val));
        c.snd.wl1 = c.rcv.irs;
        c.snd.wl2 = iss;
        c
    }

    /// Applies the options of the peer's SYN (or SYN-ACK).
    pub(crate) fn negotiate(&mut self, now: Instant, opts: &TcpOptions) {
        // RFC 9293 3.7.1: without an MSS option, assume 536.
        self.snd.peer_mss = opts.mss.map_or(536, |m| m.max(64) as usize);
        let tsval = opts.timestamps.map(|(val, _)| val);
        self.apply_options(now, opts.window_scale, opts.sack_permitted, tsval);
    }

    /// Takes the options the peer's SYN offered, as far as our
    /// configuration allows them: its window scale shift, SACK permitted,
    /// and its timestamp (the first TS.Recent).
    fn apply_options(
        &mut self,
        now: Instant,
        window_scale: Option<u8>,
        sack: bool,
        tsval: Option<u32>,
    ) {
        // RFC 7323 2.2: scaling applies only if both sides sent the option;
        // a shift above 14 is treated as 14.
        if let (Some(peer), true) = (window_scale, self.cfg.window_scale > 0) {
            self.snd.wscale = peer.min(14);
            self.rcv.wscale = self.cfg.window_scale.min(14);
        } else {
            self.snd.wscale = 0;
            self.rcv.wscale = 0;
        }
        self.sack_ok = self.cfg.sack && sack;
        self.ts.peer = tsval
            .filter(|_| self.cfg.timestamps)
            .map(|recent| Timestamps {
                recent,
                recent_at: now,
            });
        self.stats.sack = self.sack_ok;
        self.stats.timestamps = self.ts.peer.is_some();
        self.stats.window_scale = (self.rcv.wscale > 0 || self.snd.wscale > 0)
            .then_some((self.rcv.wscale, self.snd.wscale));
    }
}
