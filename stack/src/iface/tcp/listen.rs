//! Listeners: SYNs into the SYN queue or answered with SYN cookies (RFC
//! 4987), the eviction of stale half-open connections, and connections
//! made from a cookie's final ACK.

use std::net::SocketAddrV4;
use std::time::Instant;

use tcp::syncookie;
use tcp::{Connection, MemoryPressure, TcpRepr};

use super::output::emit_segment;
use super::{ListenerHandle, SynCookieMode, TcpSocket};
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::iface::Interface;

impl Interface {
    /// A segment for a listener (RFC 9293 3.10.7.2, LISTEN state), with SYN
    /// cookies (RFC 4987 3.6) for when the SYN queue is full.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tcp_listen_input<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
        payload: &[u8],
        tx: &mut S,
    ) {
        if seg.flags.rst() {
            // "An incoming RST segment could not be valid ... ignore it."
            return self.counters.drop(DropReason::TcpListenBadSegment);
        }
        if seg.flags.ack() {
            // The final ACK of a cookie handshake?
            let cookies_recent = self.sockets.tcp.listeners.get(lh).is_some_and(|l| {
                self.sockets.tcp.limits.syncookies == SynCookieMode::Always
                    || l.last_cookie.is_some_and(|t| {
                        now.saturating_duration_since(t)
                            < syncookie::PERIOD * (syncookie::MAX_AGE + 1)
                    })
            });
            if cookies_recent && !seg.flags.syn() {
                let ts_now = self.sockets.tcp.ts_now(now, local, remote);
                if let Some(syn) =
                    syncookie::check_ack(&self.sockets.tcp.cookies, now, local, remote, seg, ts_now)
                {
                    return self.tcp_cookie_accept(now, lh, local, remote, seg, payload, syn, tx);
                }
                self.counters.drop(DropReason::TcpCookieInvalid);
            } else {
                // "Any acknowledgment is bad if it arrives on a connection
                // still in the LISTEN state. An acceptable reset segment
                // should be formed for any arriving ACK-bearing segment."
                self.counters.drop(DropReason::TcpListenBadSegment);
            }
            return self.tcp_reset_for(now, local, remote, seg, payload.len(), tx);
        }
        if !seg.flags.syn() {
            return self.counters.drop(DropReason::TcpListenBadSegment);
        }
        // No route back: the SYN-ACK could not leave (Linux drops such SYNs
        // the same way), so keep nothing -- a spoofed flood from random
        // sources costs only this lookup.
        if self.ip.routes.lookup(*remote.ip()).is_none() {
            return self.counters.drop(DropReason::TcpSynNoRoute);
        }
        // The memory budget is spent: refuse with a reset rather than
        // holding more (the oldest half-open entry goes too).
        if self.mem.state() == MemoryPressure::Exhausted {
            self.tcp_evict_half_open(lh);
            self.counters.drop(DropReason::TcpSynNoMemory);
            return self.tcp_reset_for(now, local, remote, seg, payload.len(), tx);
        }
        let pressure = self.mem.state() != MemoryPressure::Normal;
        let mode = self.sockets.tcp.limits.syncookies;
        let ts_now = self.sockets.tcp.ts_now(now, local, remote);
        let Some(listener) = self.sockets.tcp.listeners.get_mut(lh) else {
            return;
        };
        // A full accept queue drops the SYN (the client retransmits), as
        // Linux does, cookies or not: accepting more would only fill it.
        if listener.accept_queue.len() >= listener.backlog {
            listener.dropped_syns += 1;
            return self.counters.drop(DropReason::TcpListenOverflow);
        }
        let syn_queue_full = listener.syn_queue >= listener.backlog;
        let want_cookie = match mode {
            SynCookieMode::Always => true,
            SynCookieMode::Auto => syn_queue_full || pressure,
            SynCookieMode::Off => false,
        };
        if want_cookie {
            listener.last_cookie = Some(now);
            let mss = seg.options.mss.unwrap_or(536);
            let iss = self
                .sockets
                .tcp
                .cookies
                .make(now, local, remote, seg.seq, mss);
            let synack = syncookie::cookie_syn_ack(&listener.cfg, seg, iss, ts_now);
            self.counters.defenses.syncookies_sent += 1;
            emit_segment(
                &mut self.ip,
                &mut self.counters,
                now,
                *local.ip(),
                *remote.ip(),
                &synack,
                &[],
                &[],
                (listener.cfg.tos, listener.cfg.ttl),
                None,
                tx,
            );
            return;
        }
        if syn_queue_full {
            // No cookies: a stale half-open entry (most likely a spoofed
            // source that will never answer) makes room; if there is none,
            // the SYN is dropped and its client retransmits.
            listener.dropped_syns += 1;
            if !self.tcp_evict_half_open(lh) {
                return self.counters.drop(DropReason::TcpListenOverflow);
            }
        }
        let Some(listener) = self.sockets.tcp.listeners.get_mut(lh) else {
            return;
        };
        listener.syn_queue += 1;
        let cfg = listener.cfg.clone();
        let (cfg, user_timeout) = self.sockets.tcp.effective_config(cfg);
        let iss = self.sockets.tcp.isn.isn(now, local, remote);
        let ts_offset = self.sockets.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let mut conn = Connection::accept(
            &cfg,
            local,
            remote,
            iss,
            ts_offset,
            self.sockets.tcp.epoch,
            now,
            seg,
        );
        conn.set_user_timeout(user_timeout);
        let h = self
            .sockets
            .tcp
            .socks
            .insert(TcpSocket::new(conn, Some(lh)));
        if let Some(l) = self.sockets.tcp.listeners.get_mut(lh) {
            l.syn_fifo.push_back(h);
            // Compact the arrival list when stale handles dominate it.
            if l.syn_fifo.len() > 2 * l.syn_queue + 16 {
                let socks = &self.sockets.tcp.socks;
                l.syn_fifo
                    .retain(|&x| socks.get(x).is_some_and(|s| s.embryonic_of == Some(lh)));
            }
        }
        self.sockets.tcp.link(h, local, remote);
        self.counters.tcp_passive_opens += 1;
        self.tcp_service(now, h, tx);
    }

    /// Drops the listener's oldest half-open connection if it already had
    /// to retransmit its SYN-ACK: a genuine client answers within a round
    /// trip, so an entry that old most likely belongs to a spoofed source.
    /// Younger entries are kept (the new SYN is dropped instead, and its
    /// client retransmits), so a burst of genuine clients does not evict
    /// itself. Returns whether one was evicted.
    pub(super) fn tcp_evict_half_open(&mut self, lh: ListenerHandle) -> bool {
        // Bounded: each entry is looked at once at most.
        let entries = self
            .sockets
            .tcp
            .listeners
            .get(lh)
            .map_or(0, |l| l.syn_fifo.len());
        for _ in 0..entries {
            let Some(l) = self.sockets.tcp.listeners.get_mut(lh) else {
                return false;
            };
            let Some(&h) = l.syn_fifo.front() else {
                return false;
            };
            let Some(sock) = self
                .sockets
                .tcp
                .socks
                .get(h)
                .filter(|s| s.embryonic_of == Some(lh))
            else {
                l.syn_fifo.pop_front(); // left the SYN queue already
                continue;
            };
            if sock.conn.is_established() {
                // Established, held by TCP_DEFER_ACCEPT: not half-open;
                // it stays on the list (to the back).
                l.syn_fifo.pop_front();
                l.syn_fifo.push_back(h);
                continue;
            }
            if sock.conn.handshake_retries() == 0 {
                return false;
            }
            l.syn_fifo.pop_front();
            log::debug!("tcp: evicting the oldest half-open connection");
            self.counters.defenses.half_open_evicted += 1;
            self.sockets.tcp.unlink(h);
            self.tcp_release(h);
            return true;
        }
        false
    }

    /// The final ACK of a SYN-cookie handshake was genuine: the connection
    /// is created now, established by that ACK (which may carry data).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tcp_cookie_accept<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        lh: ListenerHandle,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        ack: &TcpRepr,
        payload: &[u8],
        syn: syncookie::CookieSyn,
        tx: &mut S,
    ) {
        if self.mem.state() == MemoryPressure::Exhausted {
            self.counters.drop(DropReason::TcpSynNoMemory);
            return self.tcp_reset_for(now, local, remote, ack, payload.len(), tx);
        }
        let Some(listener) = self.sockets.tcp.listeners.get_mut(lh) else {
            return;
        };
        if listener.accept_queue.len() >= listener.backlog {
            // The client believes it is connected and will retransmit; by
            // then the application may have made room.
            return self.counters.drop(DropReason::TcpAcceptQueueFull);
        }
        listener.syn_queue += 1;
        let cfg = listener.cfg.clone();
        let (cfg, user_timeout) = self.sockets.tcp.effective_config(cfg);
        let ts_offset = self.sockets.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let mut conn = Connection::accept_cookie(
            &cfg,
            local,
            remote,
            ts_offset,
            self.sockets.tcp.epoch,
            now,
            ack,
            syn,
        );
        conn.set_user_timeout(user_timeout);
        conn.set_memory_pressure(self.mem.state());
        conn.handle_segment(now, ack, payload);
        let established = conn.is_established();
        let h = self
            .sockets
            .tcp
            .socks
            .insert(TcpSocket::new(conn, Some(lh)));
        self.sockets.tcp.link(h, local, remote);
        if !established {
            self.sockets.tcp.unlink(h);
            self.tcp_release(h);
            return self.counters.drop(DropReason::TcpCookieInvalid);
        }
        self.counters.tcp_passive_opens += 1;
        self.counters.defenses.syncookies_valid += 1;
        self.tcp_recharge(h);
        self.tcp_after_change(Some(now), h);
        // Held back by TCP_DEFER_ACCEPT: on the arrival list like every
        // connection counted in the SYN queue (closing the listener finds
        // it there).
        if self
            .sockets
            .tcp
            .socks
            .get(h)
            .is_some_and(|s| s.embryonic_of == Some(lh))
            && let Some(l) = self.sockets.tcp.listeners.get_mut(lh)
        {
            l.syn_fifo.push_back(h);
        }
        self.tcp_touch(h);
    }
}
