//! The application's side of a connection: sending (urgent data
//! included), receiving, shutting down, closing, and per-socket options.

use std::time::Instant;

use super::timers::Timer;
use super::{Connection, State, TcpError};

/// In-order segments acknowledged at once after TCP_QUICKACK is set
/// (Linux's `TCP_MAX_QUICKACKS`).
pub const QUICKACK_SEGMENTS: u32 = 16;
use crate::seq::SeqNum;

impl Connection {
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
        if self.snd.fin_queued {
            return Err(TcpError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.snd.buf.write(data);
        // The writer filled the buffer (whether it then waits for room or
        // retries): a candidate for growing it.
        if self.snd.buf.free() < self.snd.smss.max(1) {
            self.snd.nospace = true;
        }
        if n == 0 {
            return Err(TcpError::WouldBlock);
        }
        Ok(n)
    }

    /// Queues `data` as urgent data (send with MSG_OOB): like
    /// [`send`](Self::send), then the urgent pointer moves to the end of
    /// what was queued (RFC 9293 3.8.5: "the urgent pointer MUST point to
    /// the sequence number of the octet following the urgent data", MUST-31;
    /// urgent data of any length, MUST-30). Segments carry URG until the
    /// peer acknowledges that point.
    pub fn send_urgent(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        let n = self.send(data)?;
        self.mark_urgent();
        Ok(n)
    }

    /// Makes everything queued so far urgent data (the urgent pointer moves
    /// to the end of the send buffer).
    pub fn mark_urgent(&mut self) {
        if !self.snd.buf.is_empty() && !self.snd.fin_queued {
            self.snd.up = Some(self.data_end());
        }
    }

    /// True while urgent data the peer sent is not all read (RFC 9293
    /// MUST-32: the application is told asynchronously; the socket layer
    /// reports it as POLLPRI).
    pub fn urgent_pending(&self) -> bool {
        self.urgent_remaining() > 0
    }

    /// How much urgent data remains to be read: the bytes from the read
    /// position to the end of the urgent data (RFC 9293 MUST-33).
    pub fn urgent_remaining(&self) -> usize {
        self.rcv.up.map_or(0, |up| up.since(self.read_seq()))
    }

    /// True when the next byte to read is the last octet of urgent data,
    /// the "mark" of BSD sockets (`sockatmark`, SIOCATMARK): a read stops
    /// just before it, so an application that reads up to the mark can
    /// tell where the urgent data ends.
    pub fn at_mark(&self) -> bool {
        self.rcv
            .up
            .is_some_and(|up| self.urgent_pending() && self.read_seq() + 1 == up)
    }

    /// The sequence number of the next byte the application will read.
    pub(crate) fn read_seq(&self) -> SeqNum {
        self.rcv.nxt - self.rcv.buf.readable() - usize::from(self.rcv.read_eof)
    }

    /// Bytes a read may take now: all that is readable, except that a read
    /// stops at the urgent mark (as on Linux) unless it starts there.
    fn readable_to_mark(&self) -> usize {
        let readable = self.rcv.buf.readable();
        match self.rcv.up {
            Some(up) if self.urgent_pending() => {
                let to_mark = (up - 1).since(self.read_seq());
                if to_mark == 0 {
                    readable
                } else {
                    readable.min(to_mark)
                }
            }
            _ => readable,
        }
    }

    /// Room in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.snd.fin_queued {
            0
        } else {
            self.snd.buf.free()
        }
    }

    /// Bytes written but not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.snd.buf.len()
    }

    /// Reads received data. `Ok(0)` means end of stream (the peer closed
    /// and everything was read); WouldBlock means nothing yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        if self.rcv.buf.readable() == 0 {
            if let Some(e) = self.error {
                return Err(e);
            }
            if self.rcv.read_eof || self.rcv.read_shut {
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
        let limit = buf.len().min(self.readable_to_mark());
        let n = self.rcv.buf.read(&mut buf[..limit]);
        if self.rcv.up.is_some() && !self.urgent_pending() {
            self.rcv.up = None; // all urgent data read
        }
        self.after_read();
        Ok(n)
    }

    /// The readable bytes without consuming them (two slices, ring order),
    /// up to the urgent mark as [`recv`](Self::recv) reads them.
    pub fn peek(&self) -> (&[u8], &[u8]) {
        let (a, b) = self.rcv.buf.peek();
        let n = self.readable_to_mark();
        if n <= a.len() {
            (&a[..n], &[])
        } else {
            (a, &b[..n - a.len()])
        }
    }

    /// Consumes `n` bytes after [`peek`](Self::peek).
    pub fn consume(&mut self, n: usize) {
        self.rcv.buf.consume(n);
        if self.rcv.up.is_some() && !self.urgent_pending() {
            self.rcv.up = None;
        }
        self.after_read();
    }

    /// Bytes ready to read.
    pub fn recv_queued(&self) -> usize {
        self.rcv.buf.readable()
    }

    /// True when a read would not block: data, end of stream or an error.
    pub fn can_recv(&self) -> bool {
        self.rcv.buf.readable() > 0
            || self.rcv.read_eof
            || self.rcv.read_shut
            || self.error.is_some()
    }

    /// True when a write would not block (or would fail at once).
    pub fn can_send(&self) -> bool {
        self.error.is_some()
            || self.snd.fin_queued
            || matches!(self.state, State::Established | State::CloseWait)
                && self.snd.buf.free() > 0
    }

    /// True once the peer's FIN has been consumed by the stream.
    pub fn peer_closed(&self) -> bool {
        self.rcv.read_eof
    }

    /// Opens the window again after the application read: RFC 9293
    /// 3.8.6.2.2 sends a window update when the window can grow by at least
    /// min(buffer/2, MSS) -- ustack waits for 2*MSS, like Linux, to halve the
    /// number of pure window updates.
    pub(super) fn after_read(&mut self) {
        if !self.state.is_synchronized() || self.rcv.remote_fin.is_some() && self.rcv.read_eof {
            return;
        }
        self.autotune_recv_buffer();
        let advertised = self.rcv.adv.since(self.rcv.nxt);
        let free = self.advertisable_window();
        let mss = self.cfg.mss as usize;
        if free >= advertised + (2 * mss).min(self.cfg.recv_buffer / 2)
            || (advertised < mss && free >= mss)
        {
            self.rcv.ack_now = true;
        }
    }

    /// Closes the write side: a FIN follows the queued data (RFC 9293
    /// 3.10.4 CLOSE / shutdown(SHUT_WR)). Reading stays possible.
    pub fn shutdown_write(&mut self) {
        match self.state {
            // shutdown(SHUT_WR) while connecting: the data already
            // accepted and then a FIN go out once connected (RFC 9293
            // 3.10.4 for SYN-RECEIVED: "queue for processing after
            // entering ESTABLISHED state"). close() deletes the connection
            // instead (see `close`).
            State::SynSent | State::SynReceived | State::Established => {
                self.snd.fin_queued = true;
                if self.state == State::Established {
                    self.set_state(State::FinWait1);
                }
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// The application will not read any more (shutdown(SHUT_RD)): queued
    /// and future data is discarded, reads return end of stream.
    pub fn shutdown_read(&mut self) {
        self.rcv.read_shut = true;
        let n = self.rcv.buf.readable();
        self.rcv.buf.consume(n);
    }

    /// The application closed the socket: shuts the write side and lets the
    /// connection finish in the background (FIN-WAIT-2 limited by
    /// `fin_wait2_timeout`). If unread data is waiting, the connection is
    /// reset instead (RFC 2525 2.17, as Linux does).
    pub fn close(&mut self, now: Instant) {
        self.app_closed = true;
        if self.state == State::SynSent {
            // RFC 9293 3.10.4 SYN-SENT: "Delete the TCB and return
            // 'error: closing' responses to any queued SENDs".
            self.enter_closed(None);
            return;
        }
        if self.rcv.buf.readable() > 0 && self.state.is_synchronized() {
            self.abort(now);
            return;
        }
        self.shutdown_write();
        if self.state == State::FinWait2 {
            self.timers
                .set(Timer::Close, now + self.cfg.fin_wait2_timeout);
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
            self.pending_rst = Some(self.make_rst(self.snd.nxt));
        }
        self.enter_closed(None);
    }

    /// TCP_CORK: while `on`, only full-sized segments are sent (even with
    /// TCP_NODELAY), so that a header and a body written separately leave
    /// together. A partial segment held this way goes out when the socket
    /// is uncorked, when a FIN follows it, or after 200 ms at the latest
    /// (tcp(7): "there is a 200 millisecond ceiling on the time for which
    /// output is corked"; the ceiling is counted from when the partial
    /// segment was first held). Uncorking returns to the usual rules
    /// (Nagle unless TCP_NODELAY), under which what was queued goes out
    /// on the next poll: the stack is to be touched after this call.
    pub fn set_cork(&mut self, _now: Instant, on: bool) {
        self.cfg.cork = on;
        if !on {
            self.timers.stop(Timer::Cork);
            self.snd.cork_expired = false;
        }
    }

    /// True while TCP_CORK is set.
    pub fn cork(&self) -> bool {
        self.cfg.cork
    }

    /// TCP_QUICKACK. `on`: a delayed ACK that is pending goes out on the
    /// next poll, and the next [`QUICKACK_SEGMENTS`] in-order segments are
    /// acknowledged at once instead of by the delayed-ACK rules. `off`:
    /// delayed ACKs again. Like Linux, quick-ACK mode is not permanent
    /// (Linux leaves it as ACKs are sent and when it detects interactive
    /// traffic; applications set the option again after reads): here it
    /// lasts [`QUICKACK_SEGMENTS`] segments, Linux's `TCP_MAX_QUICKACKS`.
    pub fn set_quickack(&mut self, _now: Instant, on: bool) {
        if !on {
            self.rcv.quick_acks = 0;
            return;
        }
        self.rcv.quick_acks = QUICKACK_SEGMENTS;
        if self.state.is_synchronized()
            && (self.timers.is_set(Timer::DelayedAck) || self.rcv.unacked_bytes > 0)
            && self.state != State::TimeWait
        {
            // Linux __tcp_sock_set_quickack: "if an ACK is scheduled, send
            // it now" (ICSK_ACK_PUSHED, tcp_cleanup_rbuf).
            self.timers.stop(Timer::DelayedAck);
            self.rcv.ack_now = true;
        }
    }

    /// True while quick-ACK mode lasts (TCP_QUICKACK as getsockopt reads
    /// it).
    pub fn quickack(&self) -> bool {
        self.rcv.quick_acks > 0
    }

    /// TCP_USER_TIMEOUT for this connection: data unacknowledged (or a
    /// window closed on waiting data) this long ends the connection with
    /// ETIMEDOUT. Zero returns to the stack's default (as Linux, where 0
    /// means the system default behaviour).
    pub fn set_user_timeout(&mut self, timeout: std::time::Duration) {
        self.user_timeout_set = timeout;
        self.cfg.user_timeout = if timeout.is_zero() {
            self.default_user_timeout
        } else {
            timeout
        };
    }

    /// The user timeout set with [`set_user_timeout`](Self::set_user_timeout)
    /// (zero: none, the stack's default applies; the timeout in force is
    /// `config().user_timeout`).
    pub fn user_timeout(&self) -> std::time::Duration {
        self.user_timeout_set
    }

    /// The sender MSS (TCP_MAXSEG as getsockopt reads it): once the
    /// handshake is done, the payload bytes of a full-sized segment (the
    /// smaller of the peer's MSS, ours and the path MTU's, less the
    /// timestamp option; Linux's `mss_cache`); before, 536 (Linux's
    /// TCP_MSS_DEFAULT) or our MSS if smaller.
    pub fn mss(&self) -> usize {
        if self.cc.ready {
            self.snd.smss
        } else {
            536.min(self.cfg.mss as usize)
        }
    }

    /// Sets the IPv4 TOS byte of this connection's segments (IP_TOS).
    pub fn set_tos(&mut self, tos: u8) {
        self.cfg.tos = tos;
    }

    /// The IPv4 TOS byte of this connection's segments, ECN bits cleared
    /// (Linux keeps them for ECN on stream sockets; ustack sends them 0).
    pub fn tos(&self) -> u8 {
        self.cfg.tos & !0b11
    }

    /// SO_MAX_PACING_RATE: caps the pacing rate at `rate` bytes per second
    /// and turns pacing on (as on Linux); `None` removes the cap (pacing
    /// then follows [`TcpConfig::pacing`](crate::TcpConfig::pacing)).
    pub fn set_max_pacing_rate(&mut self, rate: Option<u64>) {
        self.cfg.max_pacing_rate = rate;
    }

    /// Sets the IPv4 TTL of this connection's segments (IP_TTL; `None`:
    /// the stack's default).
    pub fn set_ttl(&mut self, ttl: Option<u8>) {
        self.cfg.ttl = ttl;
    }

    /// The IPv4 TTL of this connection's segments, if the socket set one.
    pub fn ttl(&self) -> Option<u8> {
        self.cfg.ttl
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&mut self, on: bool) {
        self.cfg.nodelay = on;
    }

    /// Sets or clears keep-alive (SO_KEEPALIVE and its timing, Linux's
    /// rules): turning it on arms the timer `idle` from now; a new idle
    /// time on a connection already keeping alive counts from the last
    /// segment received (tcp_sock_set_keepidle_locked: "elapsed =
    /// keepalive_time_elapsed(tp)"), firing at once if that is past; a new
    /// interval or probe count applies from the next probe.
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<crate::Keepalive>) {
        let old = self.cfg.keepalive;
        self.cfg.keepalive = keepalive;
        match (old, keepalive) {
            (Some(o), Some(k)) if o.idle == k.idle => {}
            (Some(_), Some(k)) => {
                let at = (self.last_rcvd_at + k.idle).max(now);
                self.timers.set(Timer::KeepAlive, at);
            }
            (_, k) => {
                self.probe.keepalive_sent = 0;
                self.timers
                    .set_or_stop(Timer::KeepAlive, k.map(|k| now + k.idle));
            }
        }
    }

    /// Sets the send buffer size (SO_SNDBUF). As on Linux, a size the
    /// application chose is kept: the buffer no longer grows on its own.
    pub fn set_send_buffer(&mut self, bytes: usize) {
        self.cfg.send_buffer = bytes;
        self.cfg.send_buffer_max = bytes;
        self.snd.buf.set_capacity(bytes);
    }

    /// The send buffer's size now (what the application may have
    /// buffered): the configured size, or more once it grew with the
    /// window.
    pub fn send_buffer_size(&self) -> usize {
        self.snd.buf.capacity()
    }

    /// Sets the receive buffer size (takes effect for the advertised window
    /// at once; the window scale was fixed at connection set-up). As on
    /// Linux, a size the application chose is kept: the buffer no longer
    /// grows on its own.
    pub fn set_recv_buffer(&mut self, bytes: usize) {
        self.cfg.recv_buffer = bytes;
        self.cfg.recv_buffer_max = bytes;
        self.rcv
            .buf
            .set_capacity(bytes + (1 << self.cfg.window_scale.min(14)));
    }

    /// Replaces the congestion control algorithm (allowed before the
    /// connection is established).
    pub fn set_congestion_control(&mut self, algorithm: crate::cc::Algorithm) {
        self.cfg.congestion = algorithm;
        let mut cc =
            algorithm.build_seeded(u64::from(self.snd.iss.0) << 32 | u64::from(self.ts.offset));
        if self.cc.ready {
            cc.init(self.snd.smss);
        }
        self.cc.ctrl = cc;
        self.stats.congestion = self.cc.ctrl.name();
    }
}
