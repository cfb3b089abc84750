//! Scheduling and timers: the ready list, the timer heap, TIME-WAIT
//! expiry, and what follows a change to a connection (accept queue,
//! events, release).

use std::cmp::Reverse;
use std::time::Instant;

use super::TcpHandle;
use crate::device::FrameSink;
use crate::iface::Interface;
use crate::memory::Component;

impl Interface {
    /// After input or timers changed a connection: an established
    /// connection moves from its listener's SYN queue to the accept queue
    /// (with TCP_DEFER_ACCEPT, once data arrived or the period passed),
    /// and the application gets an event. `now` is None where the caller
    /// has no clock (ICMP): a deferred connection then waits for its timer.
    pub(super) fn tcp_after_change(&mut self, now: Option<Instant>, h: TcpHandle) {
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        if let Some(lh) = sock.embryonic_of
            && sock.conn.is_established()
        {
            let defer = self
                .sockets
                .tcp
                .listeners
                .get(lh)
                .and_then(|l| l.defer_accept);
            let due = matches!((sock.defer_until, now), (Some(t), Some(n)) if n >= t);
            if let Some(d) = defer
                && !sock.conn.can_recv()
                && !due
            {
                // TCP_DEFER_ACCEPT: not yet; tcp_schedule wakes it at the
                // end of the period.
                if sock.defer_until.is_none()
                    && let Some(n) = now
                {
                    sock.defer_until = Some(n + d);
                }
                return;
            }
            sock.defer_until = None;
            sock.embryonic_of = None;
            if let Some(l) = self.sockets.tcp.listeners.get_mut(lh) {
                l.syn_queue = l.syn_queue.saturating_sub(1);
                l.accept_queue.push_back(h);
                self.events.push(crate::iface::Event::Listener(lh));
            }
        }
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h)
            && sock.embryonic_of.is_none()
            && !sock.orphan
            && !sock.event_pending
        {
            sock.event_pending = true;
            self.events.push(crate::iface::Event::Tcp(h));
        }
    }

    /// Frees a connection's slot (it is unlinked already) and its charge.
    pub(super) fn tcp_release(&mut self, h: TcpHandle) {
        let Some(sock) = self.sockets.tcp.socks.remove(h) else {
            return;
        };
        if let Some(lh) = sock.embryonic_of
            && let Some(l) = self.sockets.tcp.listeners.get_mut(lh)
        {
            l.syn_queue = l.syn_queue.saturating_sub(1);
        }
        if sock.orphan {
            self.sockets.tcp.orphans = self.sockets.tcp.orphans.saturating_sub(1);
            self.counters.defenses.orphans_now = self.sockets.tcp.orphans as u64;
        }
        if sock.charged > 0 {
            let changed = self.mem.recharge(Component::Tcp, sock.charged, 0);
            self.mem_state_changed(changed);
        }
    }

    /// Puts the connection on the timer heap or the ready list.
    pub(super) fn tcp_schedule(&mut self, now: Instant, h: TcpHandle) {
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        let at = match (sock.conn.poll_at(), sock.defer_until) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        match at {
            Some(t) if t <= now && !sock.queued => {
                sock.queued = true;
                self.sockets.tcp.ready.push(h);
            }
            Some(t) if t > now && sock.scheduled.is_none_or(|s| t < s) => {
                sock.scheduled = Some(t);
                self.sockets.tcp.timers.push(Reverse((t, h.to_bits())));
            }
            _ => {}
        }
    }

    /// Runs due TCP timers and transmissions the application asked for,
    /// expires TIME-WAIT records, and applies a new memory state.
    pub(in crate::iface) fn tcp_poll<S: FrameSink + ?Sized>(&mut self, now: Instant, tx: &mut S) {
        if self.sockets.tcp.reclaim_pending {
            self.tcp_reclaim();
        }
        let mut ready = std::mem::take(&mut self.sockets.tcp.servicing);
        std::mem::swap(&mut ready, &mut self.sockets.tcp.ready);
        for &h in &ready {
            if let Some(s) = self.sockets.tcp.socks.get_mut(h) {
                s.queued = false;
            }
        }
        for &h in &ready {
            self.tcp_service(now, h, tx);
        }
        ready.clear();
        self.sockets.tcp.servicing = ready;
        while let Some(&Reverse((t, bits))) = self.sockets.tcp.timers.peek() {
            if t > now {
                break;
            }
            self.sockets.tcp.timers.pop();
            let h = TcpHandle::from_bits(bits);
            let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
                continue;
            };
            if sock.scheduled != Some(t) {
                continue; // superseded by an earlier entry
            }
            sock.scheduled = None;
            self.tcp_service(now, h, tx);
        }
        let mut expired = false;
        while let Some(&Reverse((t, local, remote))) = self.sockets.tcp.time_wait_timers.peek() {
            if t > now {
                break;
            }
            self.sockets.tcp.time_wait_timers.pop();
            let Some((record, queued)) = self.sockets.tcp.time_wait.get_mut(&(local, remote))
            else {
                continue; // reincarnated
            };
            if *queued != t {
                continue; // left by an earlier record of this four-tuple
            }
            if record.expires() > t {
                // Restarted by a retransmitted FIN: wait again.
                *queued = record.expires();
                self.sockets
                    .tcp
                    .time_wait_timers
                    .push(Reverse((*queued, local, remote)));
                continue;
            }
            let reuse = record.reuse_addr();
            self.sockets.tcp.time_wait.remove(&(local, remote));
            self.sockets.tcp.tw_port_remove(local.port(), reuse);
            expired = true;
        }
        if expired {
            self.mem_charge_time_wait();
        }
    }

    /// Asks for a connection to be serviced on the next poll (after the
    /// application changed something).
    pub(super) fn tcp_touch(&mut self, h: TcpHandle) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h)
            && !sock.queued
        {
            sock.queued = true;
            self.sockets.tcp.ready.push(h);
        }
    }

    /// Marks a TCP event as consumed (the event list was drained).
    pub(in crate::iface) fn tcp_event_taken(&mut self, h: TcpHandle) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h) {
            sock.event_pending = false;
        }
    }

    /// True when TCP has work queued for the next poll (application calls
    /// asked for transmission).
    pub(in crate::iface) fn tcp_has_ready(&self) -> bool {
        !self.sockets.tcp.ready.is_empty()
    }
}
