//! TIME-WAIT without a connection: a compact record of what RFC 9293's
//! TIME-WAIT state needs (the four-tuple, both sequence numbers, the window
//! last offered and the timestamp state), with no buffers, so that a busy
//! server's thousands of closed connections cost about a hundred bytes
//! each for their 2*MSL, as Linux's `tcp_timewait_sock` does.
//!
//! Segment arrival in TIME-WAIT (RFC 9293 3.10.7.4, RFC 1337, RFC 6191,
//! RFC 7323 5.3 PAWS, RFC 5961 7 ACK throttling):
//!
//! - an RST is ignored (RFC 1337: "TIME-WAIT Assassination Hazards";
//!   acting on it would let an old duplicate end the wait early);
//! - a SYN whose sequence number (or timestamp) is above the old
//!   incarnation's may open a new one (RFC 6191);
//! - the peer's FIN again (our ACK of it was lost) passes the PAWS check
//!   and the sequence check (it occupies RCV.NXT-1), is acknowledged, and
//!   restarts the 2*MSL timer: "Acknowledge it, and restart the 2 MSL
//!   timeout". Nothing else restarts it, so a stream of junk cannot keep
//!   the record alive;
//! - anything else is answered by an ACK, at most one per throttling
//!   interval.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use crate::segment::{Flags, TcpOptions, TcpRepr};
use crate::seq::SeqNum;

/// What to do with a segment that reached a TIME-WAIT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitInput {
    /// Nothing to send.
    Drop,
    /// Send this ACK.
    Ack(TcpRepr),
    /// A new SYN may open a new incarnation: forget the record and hand
    /// the SYN to the listener.
    Reincarnate,
}

/// RFC 7323 5.5: a TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// One connection in TIME-WAIT, without buffers.
#[derive(Clone, Debug)]
pub struct TimeWait {
    pub(crate) local: SocketAddrV4,
    pub(crate) remote: SocketAddrV4,
    pub(crate) snd_nxt: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// Window field of our last segment (already scaled).
    pub(crate) window: u16,
    /// TS.Recent and when it was set, if timestamps are in use.
    pub(crate) ts_recent: Option<(u32, Instant)>,
    pub(crate) ts_offset: u32,
    pub(crate) epoch: Instant,
    pub(crate) expires: Instant,
    pub(crate) msl2: Duration,
    pub(crate) oow_interval: Duration,
    pub(crate) last_oow_ack: Option<Instant>,
    /// The connection's IP_TOS, for the ACKs sent from the record (Linux
    /// keeps `tw_tos` for the same purpose).
    pub(crate) tos: u8,
    /// The socket's SO_REUSEADDR ([`TcpConfig::reuse_addr`](crate::TcpConfig::reuse_addr)).
    pub(crate) reuse_addr: bool,
}

impl TimeWait {
    /// The socket's SO_REUSEADDR: a bind with SO_REUSEADDR may share the
    /// record's port.
    pub fn reuse_addr(&self) -> bool {
        self.reuse_addr
    }

    /// Local address.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// Remote address.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// When the 2*MSL wait ends.
    pub fn expires(&self) -> Instant {
        self.expires
    }

    /// The IPv4 TOS byte of the segments sent for the record.
    pub fn tos(&self) -> u8 {
        self.tos
    }

    fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u32;
        ms.wrapping_add(self.ts_offset)
    }

    fn ack(&self, now: Instant) -> TcpRepr {
        let mut options = TcpOptions::default();
        if let Some((recent, _)) = self.ts_recent {
            options.timestamps = Some((self.ts_now(now), recent));
        }
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: Flags(Flags::ACK),
            window: self.window,
            options,
            urgent: 0,
        }
    }

    /// An ACK for an unacceptable segment, unless one went out less than
    /// the throttling interval ago (RFC 5961 7).
    fn throttled_ack(&mut self, now: Instant) -> TimeWaitInput {
        if self
            .last_oow_ack
            .is_some_and(|t| now.saturating_duration_since(t) < self.oow_interval)
        {
            return TimeWaitInput::Drop;
        }
        self.last_oow_ack = Some(now);
        TimeWaitInput::Ack(self.ack(now))
    }

    /// Handles a segment for this four-tuple.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
    ) -> TimeWaitInput {
        match decide(&mut self.ts_recent, self.rcv_nxt, now, seg, payload_len) {
            Decision::Ignore => TimeWaitInput::Drop,
            Decision::Reincarnate => TimeWaitInput::Reincarnate,
            Decision::AckAndRestart => {
                self.expires = now + self.msl2;
                TimeWaitInput::Ack(self.ack(now))
            }
            Decision::ThrottledAck => self.throttled_ack(now),
        }
    }
}

/// The TIME-WAIT rules, shared by the compact record and a connection
/// still held by its application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to do (an RST, RFC 1337).
    Ignore,
    /// A newer SYN: a new incarnation may begin (RFC 6191).
    Reincarnate,
    /// The peer's FIN again, acceptable and passing PAWS: acknowledge it
    /// and restart the 2*MSL timer.
    AckAndRestart,
    /// Anything else: an ACK, subject to throttling (RFC 5961 7).
    ThrottledAck,
}

/// Applies the TIME-WAIT rules to a segment; updates TS.Recent when the
/// peer's FIN is accepted again.
pub(crate) fn decide(
    ts_recent: &mut Option<(u32, Instant)>,
    rcv_nxt: SeqNum,
    now: Instant,
    seg: &TcpRepr,
    payload_len: usize,
) -> Decision {
    // RFC 1337: ignore RSTs in TIME-WAIT.
    if seg.flags.rst() {
        return Decision::Ignore;
    }
    if seg.flags.syn() && !seg.flags.ack() {
        // RFC 6191: a new incarnation if the SYN is newer.
        let newer = match (*ts_recent, seg.options.timestamps) {
            (Some((recent, _)), Some((val, _))) => (val.wrapping_sub(recent) as i32) > 0,
            _ => seg.seq > rcv_nxt,
        };
        return if newer {
            Decision::Reincarnate
        } else {
            Decision::ThrottledAck
        };
    }
    // PAWS (RFC 7323 5.3 R1): a timestamp older than TS.Recent marks an
    // old duplicate; RFC 7323 3.2: once timestamps are on, a segment
    // without them is dropped.
    let paws_ok = match (*ts_recent, seg.options.timestamps) {
        (Some((recent, at)), Some((val, _))) => {
            (val.wrapping_sub(recent) as i32) >= 0 || now.saturating_duration_since(at) >= PAWS_IDLE
        }
        (Some(_), None) => false,
        (None, _) => true,
    };
    // The peer's FIN again: it occupies RCV.NXT - 1.
    if paws_ok && seg.flags.fin() && seg.seq + payload_len + 1 == rcv_nxt {
        if let (Some((recent, at)), Some((val, _))) = (ts_recent.as_mut(), seg.options.timestamps) {
            *recent = val;
            *at = now;
        }
        return Decision::AckAndRestart;
    }
    Decision::ThrottledAck
}

#[cfg(test)]
mod tests;
