//! What a connection holds and how it gives it back: memory under the
//! stack's budget, the defensive events it reports, the compact TIME-WAIT
//! record that replaces it, ICMP errors about it, and the invariants a
//! fuzzer checks.

use std::time::Instant;

use super::recovery::Recovery;
use super::timers::Timer;
use super::{Alarms, Connection, State, TcpError};
use crate::buffer::{MIN_RING, MemoryPressure};

impl Connection {
    /// Sets how far the buffers may grow (from the stack's memory budget):
    /// under pressure they stop growing past a modest size and the window
    /// offered shrinks to match; when the budget is exhausted, out-of-order
    /// data is released first. Returns the bytes freed.
    pub fn set_memory_pressure(&mut self, pressure: MemoryPressure) -> usize {
        if pressure == self.mem {
            return 0;
        }
        self.mem = pressure;
        self.snd.buf.set_pressure(pressure);
        let pruned = self.rcv.buf.set_pressure(pressure);
        if pruned > 0 {
            self.alarms.out_of_order_pruned += pruned as u32;
        }
        pruned + self.release_unneeded_buffers()
    }

    /// Bytes of memory this connection holds: the control block, its
    /// buffers, out-of-order data and SACK state.
    pub fn memory_used(&self) -> usize {
        std::mem::size_of::<Connection>()
            + self.snd.buf.memory_used()
            + self.rcv.buf.memory_used()
            + self.recovery.scoreboard.memory_used()
            + self.recovery.rack.memory_used()
            + self.rate.memory_used()
            + self.sack_scratch.capacity() * std::mem::size_of::<(usize, usize)>()
    }

    /// Frees buffers the connection will not need: the send ring once no
    /// more data can be written and all was acknowledged, the receive ring
    /// once the peer's FIN was read (or reading was shut down), under
    /// memory pressure any empty ring, and always an empty ring of the
    /// smallest size ([`MIN_RING`]): an idle connection that exchanged a
    /// few bytes then holds no buffer at all (Linux frees its buffers as
    /// they are consumed), while a ring that grew larger is kept for the
    /// transfer that grew it. Returns the bytes freed.
    pub fn release_unneeded_buffers(&mut self) -> usize {
        let pressure = self.mem != MemoryPressure::Normal;
        let done = matches!(self.state, State::Closed | State::TimeWait);
        let mut freed = 0;
        let small = self.snd.buf.memory_used() <= MIN_RING;
        if pressure || done || small || self.snd.fin_queued {
            freed += self.snd.buf.release_if_empty();
        }
        let small = self.rcv.buf.memory_used() <= MIN_RING;
        if pressure || done || small || self.rcv.read_eof || self.rcv.read_shut {
            freed += self.rcv.buf.release_if_empty();
        }
        if pressure || done {
            let before = self.recovery.rack.memory_used();
            self.recovery.rack.release_if_idle();
            freed += before - self.recovery.rack.memory_used();
            let before = self.rate.memory_used();
            self.rate.release_if_idle();
            freed += before - self.rate.memory_used();
        }
        freed
    }

    /// Send buffer autotuning (Linux's `tcp_sndbuf_expand`, in payload
    /// bytes rather than Linux's per-packet memory charge): after an ACK,
    /// if the application found the buffer full, the congestion window is
    /// not (Linux: "If we filled the congestion window, do not expand")
    /// and memory is not short, the buffer grows to the algorithm's
    /// [`send_buffer_factor`](crate::cc::CongestionControl::send_buffer_factor)
    /// times cwnd (at least the initial window), up to
    /// `TcpConfig::send_buffer_max`. It never shrinks (the ring itself
    /// grows only with the data written and is freed when drained, see
    /// [`release_unneeded_buffers`](Self::release_unneeded_buffers)).
    ///
    /// Without it, a fast path with losses stalls on a full buffer: the
    /// data SACKed above a hole stays buffered until the hole is
    /// repaired, about two round trips, and on a 10 ms path at 1% loss
    /// a 1 MiB buffer held BBR to a third of what 4 MiB allowed (and 4
    /// MiB to three quarters of what 8 MiB allows, see
    /// `TcpConfig::send_buffer_max`).
    pub(crate) fn autotune_send_buffer(&mut self) {
        if !std::mem::take(&mut self.snd.nospace) {
            return;
        }
        let cap = self.snd.buf.capacity();
        let max = self.cfg.send_buffer_max;
        if max <= cap || self.mem != MemoryPressure::Normal {
            return;
        }
        let cwnd = self.cc.ctrl.cwnd();
        if self.pipe() >= cwnd {
            return;
        }
        let iw = crate::cc::initial_window(self.snd.smss);
        let want = cwnd
            .max(iw)
            .saturating_mul(self.cc.ctrl.send_buffer_factor())
            .min(max);
        if want > cap {
            self.snd.buf.set_capacity(want);
            self.stats.send_buffer_grown += 1;
        }
    }

    /// Receive buffer autotuning (Linux's `tcp_rcv_space_adjust`, "dynamic
    /// right-sizing"), after each read: once a round trip (the smoothed
    /// RTT) has passed since the measurement began, if the application
    /// read more in it than in any round trip before, the buffer (and the
    /// window offered) grows to twice that, "to cope with packet losses"
    /// (the data held behind a hole while it is repaired), plus 16
    /// segments, plus twice the increase over the previous round trip in
    /// proportion (a sender in slow start doubles each round trip, and the
    /// window offered now is for the next one). Bounded by
    /// `TcpConfig::recv_buffer_max` and by what the window scale can
    /// advertise; no growth under memory pressure or once the application
    /// set SO_RCVBUF. Time is that of the latest segment received (reads
    /// carry none, and a receiver that reads fast receives all the time).
    ///
    /// A peer cannot make the buffer grow without the application reading
    /// as fast: each size is earned by bytes read in one round trip.
    pub(crate) fn autotune_recv_buffer(&mut self) {
        let max = self
            .cfg
            .recv_buffer_max
            .min(usize::from(u16::MAX) << self.rcv.wscale);
        if max <= self.cfg.recv_buffer || self.mem != MemoryPressure::Normal || self.rcv.read_shut {
            return;
        }
        let now = self.last_rcvd_at;
        let read = self.read_seq();
        let Some(start) = self.rcv.space.at else {
            self.rcv.space.at = Some(now);
            self.rcv.space.seq = read;
            return;
        };
        let Some(rtt) = self.rtt.srtt() else {
            return;
        };
        if now.saturating_duration_since(start) < rtt {
            return;
        }
        let copied = read.since(self.rcv.space.seq);
        let before = self.rcv.space.copied.max(1);
        if copied > before {
            let mss = self.rcv.mss.max(usize::from(self.cfg.mss));
            let base = 2 * copied + 16 * mss;
            let grow = (base as u64 * (copied - before) as u64 / before as u64) as usize;
            let want = base.saturating_add(2 * grow).min(max);
            if want > self.cfg.recv_buffer {
                self.cfg.recv_buffer = want;
                let slack = 1 << self.cfg.window_scale.min(14);
                self.rcv.buf.set_capacity(want + slack);
                self.stats.recv_buffer_grown += 1;
            }
            self.rcv.space.copied = copied;
        }
        self.rcv.space.at = Some(now);
        self.rcv.space.seq = read;
    }

    /// True when memory pressure (not the socket's buffer sizes) holds the
    /// application back: the send buffer would take more, or the window
    /// offered is smaller, if the stack had memory.
    pub fn limited_by_memory(&self) -> bool {
        self.mem != MemoryPressure::Normal
            && (self.snd.buf.limited_by_memory()
                || self.rcv.buf.window_allowed() < self.rcv.buf.window())
    }

    /// Checks the connection's internal invariants (for fuzzing and
    /// tests): sequence variables in order, buffers within their bounds,
    /// SACK state inside the data in flight. Returns what is broken.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let fail = |what: String| Err(format!("{}: {what}", self.state));
        if self.snd.una > self.snd.nxt {
            return fail(format!(
                "SND.UNA {} > SND.NXT {}",
                self.snd.una, self.snd.nxt
            ));
        }
        if self.state != State::Closed && self.snd.una != self.snd.iss {
            let limit = self.data_end() + usize::from(self.snd.fin_sent);
            if self.snd.nxt > limit {
                return fail(format!("SND.NXT {} past the data {}", self.snd.nxt, limit));
            }
        }
        if self.state.is_synchronized() && self.rcv.nxt > self.rcv.adv + 1 {
            return fail(format!(
                "RCV.NXT {} past the window edge {}",
                self.rcv.nxt, self.rcv.adv
            ));
        }
        if self.rcv.buf.readable() > self.rcv.buf.capacity() {
            return fail("more readable than the buffer holds".into());
        }
        if self.snd.buf.len() > self.snd.buf.capacity() {
            return fail("send buffer over its capacity".into());
        }
        let recv_cap = self.rcv.buf.capacity();
        if self.rcv.buf.memory_used() > 2 * recv_cap + recv_cap / 8 + 3 * (64 << 10) {
            return fail(format!(
                "receive buffer holds {} for a capacity of {recv_cap}",
                self.rcv.buf.memory_used()
            ));
        }
        if self.snd.buf.memory_used() > self.snd.buf.capacity().max(4096) {
            return fail(format!(
                "send ring {} over the capacity {}",
                self.snd.buf.memory_used(),
                self.snd.buf.capacity()
            ));
        }
        if self.rcv.buf.assembler().len() > crate::Assembler::MAX_RANGES {
            return fail("too many out-of-order ranges".into());
        }
        let flight = self.snd.nxt.since(self.snd.una);
        if self.recovery.scoreboard.sacked_bytes() > flight {
            return fail(format!(
                "{} bytes SACKed of {flight} in flight",
                self.recovery.scoreboard.sacked_bytes()
            ));
        }
        if let Some(h) = self.recovery.scoreboard.highest_sacked()
            && flight > 0
            && h > self.snd.nxt
        {
            return fail(format!("SACK above SND.NXT: {h}"));
        }
        Ok(())
    }

    /// An ICMP Destination Unreachable (`code`, RFC 792) about a segment of
    /// this connection (the stack checked that it quotes a sequence number
    /// in flight, RFC 5927). RFC 1122 4.2.3.9: codes 0, 1 and 5 are soft
    /// errors, "TCP MUST NOT abort the connection"; protocol and port
    /// unreachable (2, 3) are hard errors that SHOULD abort; RFC 5461
    /// advises aborting on hard errors only while the connection is being
    /// established, as Linux does, and treats the administratively
    /// prohibited codes (9, 10, 13) the same way. Returns whether the
    /// connection was aborted.
    pub fn handle_icmp_unreachable(&mut self, code: u8) -> bool {
        let error = match code {
            0 | 6 | 9 | 11 => TcpError::NetUnreachable,
            2 => TcpError::ProtocolUnavailable,
            3 => TcpError::Refused,
            _ => TcpError::HostUnreachable,
        };
        let hard = matches!(code, 2 | 3 | 9 | 10 | 13);
        let establishing =
            self.state == State::SynSent || self.state == State::SynReceived && !self.passive;
        if hard && establishing {
            log::debug!(
                "{} -> {}: ICMP unreachable (code {code}) while connecting",
                self.local,
                self.remote
            );
            self.enter_closed(Some(error));
            return true;
        }
        self.soft_error = Some(error);
        false
    }

    /// The path MTU fell to `path_mtu` (ICMP Fragmentation Needed quoting a
    /// segment in flight, checked by the stack). RFC 1191 6.5: the segment
    /// that was too big is retransmitted at once at the new size, and as
    /// Linux's `tcp_simple_retransmit` does, so is everything else in
    /// flight (it was all sent at the old size): no timeout waits for it,
    /// and since nothing was lost to congestion the window is not reduced.
    pub fn handle_path_mtu_reduced(&mut self, now: Instant, path_mtu: usize) {
        self.snd.path_mtu = path_mtu;
        if !self.cc.ready {
            return;
        }
        let before = self.snd.smss;
        self.update_smss(path_mtu);
        if self.snd.smss >= before {
            return;
        }
        self.cc.ctrl.set_mss(self.snd.smss);
        if self.snd.nxt == self.snd.una || !self.state.is_synchronized() {
            return;
        }
        self.recovery.scoreboard.on_rto(self.snd.una, self.snd.nxt);
        if self.recovery.phase.is_none() {
            self.recovery.phase = Some(Recovery::Timeout {
                point: self.snd.nxt,
            });
        }
        self.recovery.retransmit_now = true;
        self.timed = None;
        self.stats.pmtu_retransmissions += 1;
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
    }

    /// Defensive events since the last call (for the stack's counters).
    pub fn take_alarms(&mut self) -> Alarms {
        std::mem::take(&mut self.alarms)
    }

    /// True once the application closed the connection (it is an orphan,
    /// finishing in the background).
    pub fn is_orphan(&self) -> bool {
        self.app_closed
    }

    /// The compact TIME-WAIT record that can replace this connection once
    /// it is in TIME-WAIT (the stack keeps that instead of the whole
    /// connection when the application has let go of it).
    pub fn time_wait_record(&self, now: Instant) -> Option<crate::TimeWait> {
        if self.state != State::TimeWait {
            return None;
        }
        let window = (self.rcv.adv.since(self.rcv.nxt) >> self.rcv.wscale).min(65_535) as u16;
        Some(crate::TimeWait {
            local: self.local,
            remote: self.remote,
            snd_nxt: self.snd.nxt,
            rcv_nxt: self.rcv.nxt,
            window,
            ts_recent: self.ts.peer.map(|t| (t.recent, t.recent_at)),
            ts_offset: self.ts.offset,
            epoch: self.ts.epoch,
            expires: self
                .timers
                .get(Timer::Close)
                .unwrap_or(now + 2 * self.cfg.msl),
            msl2: 2 * self.cfg.msl,
            oow_interval: self.cfg.invalid_ack_interval,
            last_oow_ack: None,
            tos: self.tos(),
            reuse_addr: self.cfg.reuse_addr,
        })
    }
}
