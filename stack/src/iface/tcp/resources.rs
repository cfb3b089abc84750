//! What TCP holds and how it is given back: compact TIME-WAIT records,
//! memory charged to the stack's budget (and the walk when it tightens),
//! ICMP errors about connections, and the bookkeeping a fuzzer checks.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Instant;

use ip::Ipv4Repr;
use tcp::MemoryPressure;

use super::{ListenerHandle, PortUse, TIME_WAIT_COST, TcpHandle};
use crate::counters::DropReason;
use crate::iface::Interface;
use crate::memory::Component;

impl Interface {
    /// Replaces an orphaned connection in TIME-WAIT by a compact record
    /// (or by nothing, when `max_time_wait` records exist already, as
    /// Linux does when `tcp_max_tw_buckets` is reached).
    pub(super) fn tcp_enter_time_wait(&mut self, now: Instant, h: TcpHandle) {
        let Some(record) = self
            .sockets
            .tcp
            .socks
            .get(h)
            .and_then(|s| s.conn.time_wait_record(now))
        else {
            return;
        };
        self.sockets.tcp.unlink(h);
        self.tcp_release(h);
        if self.sockets.tcp.time_wait.len() >= self.sockets.tcp.limits.max_time_wait {
            log::debug!("tcp: TIME-WAIT table full; closing without it");
            self.counters.defenses.time_wait_overflow += 1;
            return;
        }
        let key = (record.local(), record.remote());
        let at = record.expires();
        self.sockets
            .tcp
            .time_wait_timers
            .push(Reverse((at, key.0, key.1)));
        if self
            .sockets
            .tcp
            .time_wait
            .insert(key, (record, at))
            .is_none()
        {
            let reuse = self.sockets.tcp.time_wait[&key].0.reuse_addr();
            self.sockets.tcp.tw_port_add(key.0.port(), reuse);
            self.counters.defenses.time_wait_records += 1;
            self.mem_charge_time_wait();
        }
    }

    /// Forgets a TIME-WAIT record (a new incarnation took the 4-tuple).
    pub(super) fn tcp_forget_time_wait(&mut self, local: SocketAddrV4, remote: SocketAddrV4) {
        if let Some((record, _)) = self.sockets.tcp.time_wait.remove(&(local, remote)) {
            self.sockets
                .tcp
                .tw_port_remove(local.port(), record.reuse_addr());
            self.mem_charge_time_wait();
        }
    }

    /// Charges the TIME-WAIT records to the memory budget.
    pub(super) fn mem_charge_time_wait(&mut self) {
        let n = self.sockets.tcp.time_wait.len();
        self.counters.defenses.time_wait_now = n as u64;
        let changed = self.mem.set(Component::TimeWait, n * TIME_WAIT_COST);
        self.mem_state_changed(changed);
    }

    /// Charges a connection's memory to the budget, folds its defensive
    /// events into the counters, and notes it if memory holds it back.
    pub(super) fn tcp_recharge(&mut self, h: TcpHandle) {
        let state = self.mem.state();
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        sock.conn.set_memory_pressure(state);
        sock.conn.release_unneeded_buffers();
        let now_used = sock.conn.memory_used();
        let old = std::mem::replace(&mut sock.charged, now_used);
        if sock.conn.limited_by_memory() && !sock.mem_waiting {
            sock.mem_waiting = true;
            self.sockets.tcp.mem_waiters.push(h);
        }
        let alarms = sock.conn.take_alarms();
        if !alarms.is_empty() {
            let c = &mut self.counters;
            let d = &mut c.defenses;
            d.acks_throttled += u64::from(alarms.acks_throttled);
            d.resets_on_data_after_close += u64::from(alarms.reset_on_data_after_close);
            d.orphans_gave_up += u64::from(alarms.orphan_gave_up);
            d.persist_timeouts += u64::from(alarms.persist_timed_out);
            d.out_of_order_pruned_bytes += u64::from(alarms.out_of_order_pruned);
            c.drop_n(
                DropReason::TcpDataNoMemory,
                u64::from(alarms.data_dropped_no_memory),
            );
            c.drop_n(
                DropReason::TcpOutOfOrderFull,
                u64::from(alarms.out_of_order_dropped),
            );
        }
        if old != now_used {
            let changed = self.mem.recharge(Component::Tcp, old, now_used);
            self.mem_state_changed(changed);
        }
    }

    /// Reacts to a change of the memory state (`Some(previous)`): a walk
    /// over the connections applies a tighter state at once (freeing empty
    /// buffers and out-of-order data); when memory comes back, the
    /// connections it held back are woken.
    pub(in crate::iface) fn mem_state_changed(&mut self, previous: Option<MemoryPressure>) {
        let Some(previous) = previous else {
            return;
        };
        let rank = |p: MemoryPressure| match p {
            MemoryPressure::Normal => 0,
            MemoryPressure::Pressure => 1,
            MemoryPressure::Exhausted => 2,
        };
        if rank(self.mem.state()) > rank(previous) {
            self.sockets.tcp.reclaim_pending = true;
            return;
        }
        let state = self.mem.state();
        let waiters = std::mem::take(&mut self.sockets.tcp.mem_waiters);
        for &h in &waiters {
            if let Some(sock) = self.sockets.tcp.socks.get_mut(h) {
                sock.mem_waiting = false;
                sock.conn.set_memory_pressure(state);
                // The application may write again; the peer may send more
                // (a window update goes out).
                sock.conn.request_window_update();
                if !sock.orphan && !sock.event_pending && sock.embryonic_of.is_none() {
                    sock.event_pending = true;
                    self.events.push(crate::iface::Event::Tcp(h));
                }
            }
            self.tcp_touch(h);
        }
        let mut waiters = waiters;
        waiters.clear();
        if self.sockets.tcp.mem_waiters.is_empty() {
            self.sockets.tcp.mem_waiters = waiters;
        }
    }

    /// The walk [`mem_state_changed`](Self::mem_state_changed) asked for:
    /// every connection gets the new state (releasing what it may).
    pub(super) fn tcp_reclaim(&mut self) {
        self.sockets.tcp.reclaim_pending = false;
        let handles: Vec<TcpHandle> = self.sockets.tcp.socks.iter().map(|(h, _)| h).collect();
        log::debug!(
            "memory {:?}: reclaiming across {} connections",
            self.mem.state(),
            handles.len()
        );
        for h in handles {
            self.tcp_recharge(h);
        }
    }

    /// The connection an ICMP error quoting `orig` (our datagram) and
    /// `quoted` (the start of its TCP header) is about, if it is one of
    /// ours and the quoted sequence number is in flight (RFC 5927).
    pub(in crate::iface) fn tcp_quote_in_flight(
        &self,
        orig: &Ipv4Repr,
        quoted: &[u8],
    ) -> Option<TcpHandle> {
        let [s0, s1, d0, d1, q0, q1, q2, q3, ..] = *quoted else {
            return None;
        };
        let local = SocketAddrV4::new(orig.src, u16::from_be_bytes([s0, s1]));
        let remote = SocketAddrV4::new(orig.dst, u16::from_be_bytes([d0, d1]));
        let seq = tcp::SeqNum(u32::from_be_bytes([q0, q1, q2, q3]));
        let &h = self.sockets.tcp.by_tuple.get(&(local, remote))?;
        self.sockets
            .tcp
            .socks
            .get(h)
            .is_some_and(|s| s.conn.seq_in_flight(seq))
            .then_some(h)
    }

    /// ICMP Destination Unreachable about a segment of `h`'s.
    pub(in crate::iface) fn tcp_icmp_unreachable(&mut self, h: TcpHandle, code: u8) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h)
            && sock.conn.handle_icmp_unreachable(code)
        {
            self.tcp_after_change(None, h);
            self.tcp_touch(h);
        }
    }

    /// The path MTU of `h`'s destination fell to `mtu`: retransmit what is
    /// in flight at the new size now.
    pub(in crate::iface) fn tcp_path_mtu_reduced(
        &mut self,
        now: Instant,
        h: TcpHandle,
        mtu: usize,
    ) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h) {
            sock.conn.handle_path_mtu_reduced(now, mtu);
            self.tcp_touch(h);
        }
    }

    /// Checks TCP's bookkeeping on the interface (for fuzzing and tests):
    /// every connection's own invariants, the memory charged matching the
    /// connections, SYN-queue, orphan and TIME-WAIT counts matching what
    /// is held, and the limits respected.
    #[doc(hidden)]
    pub fn tcp_check_invariants(&self) -> Result<(), String> {
        let mut charged = 0;
        let mut orphans = 0;
        let mut embryonic: HashMap<ListenerHandle, usize> = HashMap::new();
        for (h, s) in self.sockets.tcp.socks.iter() {
            s.conn.check_invariants()?;
            charged += s.charged;
            if s.orphan {
                orphans += 1;
            }
            if let Some(lh) = s.embryonic_of {
                *embryonic.entry(lh).or_default() += 1;
            }
            if s.linked
                && self
                    .sockets
                    .tcp
                    .by_tuple
                    .get(&(s.conn.local(), s.conn.remote()))
                    != Some(&h)
            {
                return Err(format!("{h:?} linked but not in the table"));
            }
        }
        if charged != self.mem.part(Component::Tcp) {
            return Err(format!(
                "connections charged {charged}, budget says {}",
                self.mem.part(Component::Tcp)
            ));
        }
        if orphans != self.sockets.tcp.orphans {
            return Err(format!(
                "{orphans} orphans, counted {}",
                self.sockets.tcp.orphans
            ));
        }
        for (lh, l) in self.sockets.tcp.listeners.iter() {
            let n = embryonic.get(&lh).copied().unwrap_or(0);
            if n != l.syn_queue {
                return Err(format!("listener SYN queue {} holds {n}", l.syn_queue));
            }
            if l.syn_queue > l.backlog || l.accept_queue.len() > l.backlog {
                return Err("listener queue over its backlog".into());
            }
        }
        let mut tw_ports: HashMap<u16, PortUse> = HashMap::new();
        for ((local, _), (record, _)) in &self.sockets.tcp.time_wait {
            PortUse::add(&mut tw_ports, local.port(), record.reuse_addr());
        }
        if tw_ports != self.sockets.tcp.tw_ports {
            return Err("TIME-WAIT port counts do not match the records".into());
        }
        let mut ports: HashMap<u16, PortUse> = HashMap::new();
        for (_, s) in self.sockets.tcp.socks.iter().filter(|(_, s)| s.linked) {
            PortUse::add(
                &mut ports,
                s.conn.local().port(),
                s.conn.config().reuse_addr,
            );
        }
        if ports != self.sockets.tcp.ports {
            return Err("connection port counts do not match the table".into());
        }
        for (local, g) in &self.sockets.tcp.by_local {
            if g.members.is_empty() || g.members.len() > super::MAX_REUSEPORT_GROUP {
                return Err(format!("listener group {local} of {}", g.members.len()));
            }
            if g.members.len() > 1 && !g.reuseport {
                return Err(format!("{local} shared without SO_REUSEPORT"));
            }
        }
        let tw = self.sockets.tcp.time_wait.len();
        if tw > self.sockets.tcp.limits.max_time_wait {
            return Err(format!("{tw} TIME-WAIT records over the limit"));
        }
        if self.sockets.tcp.time_wait_timers.len() < tw {
            return Err("a TIME-WAIT record without a timer".into());
        }
        if self.mem.part(Component::TimeWait) != tw * TIME_WAIT_COST {
            return Err("TIME-WAIT memory not charged".into());
        }
        Ok(())
    }
}
