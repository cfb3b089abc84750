//! The public TCP socket calls of the interface.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use tcp::{Connection, MemoryPressure, TcpConfig};

use super::{
    ListenerHandle, MAX_REUSEPORT_GROUP, PortUse, TCP_MIN_MSS, TcpHandle, TcpLimits, TcpListener,
    TcpSocket,
};
use crate::error::SocketError;
use crate::iface::Interface;

impl Interface {
    /// The TCP configuration new connections and listeners start from.
    pub fn tcp_config(&self) -> &TcpConfig {
        &self.sockets.tcp.cfg
    }

    /// Changes the TCP configuration for sockets created from now on.
    pub fn set_tcp_config(&mut self, cfg: TcpConfig) {
        self.sockets.tcp.cfg = cfg;
    }

    /// Listens on `local` (address 0.0.0.0: any of ours) with `backlog`
    /// bounding both the SYN queue and the accept queue.
    pub fn tcp_listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenerHandle, SocketError> {
        self.tcp_listen_with(local, backlog, false)
    }

    /// [`tcp_listen`](Self::tcp_listen) with SO_REUSEPORT: listeners that
    /// all set it may share one local address and port (at most 256); each SYN goes to one of them, picked by a
    /// keyed hash of its 4-tuple (Linux's `reuseport_select_sock`). A
    /// listener without it, or a group it would overlap (wildcard and
    /// specific address on one port), makes the bind fail with EADDRINUSE.
    pub fn tcp_listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        reuseport: bool,
    ) -> Result<ListenerHandle, SocketError> {
        if !local.ip().is_unspecified() && !self.ip.is_local(*local.ip()) {
            return Err(SocketError::AddrNotAvailable);
        }
        let port = local.port();
        if port == 0 {
            return Err(SocketError::InvalidInput);
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        match self.sockets.tcp.by_local.get(&local) {
            Some(g) if !(g.reuseport && reuseport) => return Err(SocketError::AddrInUse),
            Some(g) if g.members.len() >= MAX_REUSEPORT_GROUP => {
                return Err(SocketError::NoBufferSpace);
            }
            Some(_) => {}
            None => {
                // A wildcard listener overlaps every address of its port (a
                // walk over the listeners, at listen time only).
                let overlap = if local.ip().is_unspecified() {
                    self.sockets.tcp.by_local.keys().any(|k| k.port() == port)
                } else {
                    self.sockets.tcp.by_local.contains_key(&any)
                };
                if overlap {
                    return Err(SocketError::AddrInUse);
                }
            }
        }
        let lh = self.sockets.tcp.listeners.insert(TcpListener {
            local,
            backlog: backlog.max(1),
            syn_queue: 0,
            accept_queue: VecDeque::new(),
            syn_fifo: VecDeque::new(),
            last_cookie: None,
            cfg: self.sockets.tcp.cfg.clone(),
            dropped_syns: 0,
            reuseport,
            defer_accept: None,
        });
        let group = self.sockets.tcp.by_local.entry(local).or_default();
        group.reuseport = reuseport;
        group.members.push(lh);
        Ok(lh)
    }

    /// The listener behind `lh`.
    pub fn tcp_listener(&self, lh: ListenerHandle) -> Option<&TcpListener> {
        self.sockets.tcp.listeners.get(lh)
    }

    /// Mutable access to a listener (backlog, inherited options).
    pub fn tcp_listener_mut(&mut self, lh: ListenerHandle) -> Option<&mut TcpListener> {
        self.sockets.tcp.listeners.get_mut(lh)
    }

    /// Takes an established connection from the accept queue.
    pub fn tcp_accept(&mut self, lh: ListenerHandle) -> Result<TcpHandle, SocketError> {
        let l = self
            .sockets
            .tcp
            .listeners
            .get_mut(lh)
            .ok_or(SocketError::BadHandle)?;
        l.accept_queue.pop_front().ok_or(SocketError::WouldBlock)
    }

    /// Stops listening; connections not yet accepted are reset (in a
    /// SO_REUSEPORT group too: Linux migrates them to another member only
    /// with `tcp_migrate_req`, off by default). The rest of its group
    /// keeps listening and takes all new connections.
    pub fn tcp_close_listener(&mut self, now: Instant, lh: ListenerHandle) {
        let Some(l) = self.sockets.tcp.listeners.remove(lh) else {
            return;
        };
        if let Some(g) = self.sockets.tcp.by_local.get_mut(&l.local) {
            g.members.retain(|&m| m != lh);
            if g.members.is_empty() {
                self.sockets.tcp.by_local.remove(&l.local);
            }
        }
        for h in l.accept_queue {
            self.tcp_abort(now, h);
            self.tcp_close(now, h);
        }
        // Embryonic connections point at the gone listener: abort them too
        // (its arrival list holds every one of them).
        for h in l.syn_fifo {
            if let Some(s) = self.sockets.tcp.socks.get_mut(h)
                && s.embryonic_of == Some(lh)
            {
                s.embryonic_of = None;
                s.orphan = true;
                s.conn.abort(now);
                self.sockets.tcp.orphans += 1;
                self.tcp_touch(h);
            }
        }
    }

    /// Opens a connection to `remote` from an ephemeral port (or from
    /// `local` if given). The SYN goes out on the next poll.
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
    ) -> Result<TcpHandle, SocketError> {
        let cfg = self.sockets.tcp.cfg.clone();
        self.tcp_connect_with(now, remote, local, cfg)
    }

    /// [`tcp_connect`](Self::tcp_connect) with the socket's options, so
    /// that they apply from the SYN on: buffers (and so the window scale
    /// offered), `mss` (TCP_MAXSEG: announced in the SYN and bounding the
    /// segments sent; never above the interface's; at least 88, Linux's
    /// TCP_MIN_MSS, else EINVAL), `tos`, `user_timeout` (zero: the stack's),
    /// `nodelay`, `keepalive`, `congestion`, `cork`.
    pub fn tcp_connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local: Option<SocketAddrV4>,
        config: TcpConfig,
    ) -> Result<TcpHandle, SocketError> {
        if config.mss < TCP_MIN_MSS {
            return Err(SocketError::InvalidInput);
        }
        if remote.port() == 0
            || remote.ip().is_unspecified()
            || self.ip.is_broadcast(*remote.ip())
            || remote.ip().is_multicast()
        {
            return Err(SocketError::InvalidInput);
        }
        if self.ip.routes.lookup(*remote.ip()).is_none() {
            return Err(SocketError::NetUnreachable);
        }
        // The bound address when there is one (ours, or a loopback address
        // towards a local peer), else the one the route gives.
        let src = match local {
            Some(l) if !l.ip().is_unspecified() => *l.ip(),
            _ => self.ip.source_for(*remote.ip()),
        };
        let local = match local {
            Some(l)
                if !l.ip().is_unspecified()
                    && (!self.ip.is_local(*l.ip())
                        || l.ip().is_loopback() && !self.ip.is_local(*remote.ip())) =>
            {
                return Err(SocketError::AddrNotAvailable);
            }
            Some(l) if l.port() != 0 => {
                let l = SocketAddrV4::new(src, l.port());
                if self.sockets.tcp.tuple_in_use(l, remote) {
                    return Err(SocketError::AddrInUse);
                }
                l
            }
            _ => {
                // RFC 6056 Algorithm 1 over ports free for this 4-tuple and
                // not bound by a listener.
                let table = &self.sockets.tcp;
                let port = ::udp::ephemeral_port(&mut self.rng, |p| {
                    let l = SocketAddrV4::new(src, p);
                    table.tuple_in_use(l, remote) || table.group_for(l).is_some()
                })
                .ok_or(SocketError::AddrNotAvailable)?;
                SocketAddrV4::new(src, port)
            }
        };
        if self.mem.state() == MemoryPressure::Exhausted {
            return Err(SocketError::NoBufferSpace);
        }
        let iss = self.sockets.tcp.isn.isn(now, local, remote);
        let ts_offset = self.sockets.tcp.isn.ts_offset(*local.ip(), *remote.ip());
        let (cfg, user_timeout) = self.sockets.tcp.effective_config(config);
        let mut conn = Connection::connect(
            &cfg,
            local,
            remote,
            iss,
            ts_offset,
            self.sockets.tcp.epoch,
            now,
        );
        conn.set_user_timeout(user_timeout);
        let h = self.sockets.tcp.socks.insert(TcpSocket::new(conn, None));
        self.sockets.tcp.link(h, local, remote);
        self.counters.tcp_active_opens += 1;
        self.tcp_touch(h);
        Ok(h)
    }

    /// The connection behind `h`.
    pub fn tcp(&self, h: TcpHandle) -> Option<&Connection> {
        self.sockets.tcp.socks.get(h).map(|s| &s.conn)
    }

    /// Runs `f` on the connection behind `h` (options, shutdown, consuming
    /// received data...) and then, whatever `f` did, charges what the
    /// change costs to the memory budget and schedules the connection for
    /// the next poll, so that anything the change lets it send goes out
    /// and its timers are rearmed. `None` (and `f` not run) when `h` is
    /// not a connection.
    pub fn tcp_with<R>(&mut self, h: TcpHandle, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let sock = self.sockets.tcp.socks.get_mut(h)?;
        let r = f(&mut sock.conn);
        self.tcp_recharge(h);
        self.tcp_touch(h);
        Some(r)
    }

    /// Writes into the connection's send buffer.
    pub fn tcp_send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, SocketError> {
        let state = self.mem.state();
        let sock = self
            .sockets
            .tcp
            .socks
            .get_mut(h)
            .ok_or(SocketError::BadHandle)?;
        sock.conn.set_memory_pressure(state);
        let result = sock.conn.send(data);
        self.tcp_recharge(h);
        let n = result?;
        self.tcp_touch(h);
        Ok(n)
    }

    /// Makes everything queued on the connection urgent data (the second
    /// half of send(MSG_OOB)).
    pub fn tcp_mark_urgent(&mut self, h: TcpHandle) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h) {
            sock.conn.mark_urgent();
            self.tcp_touch(h);
        }
    }

    /// Reads from the connection; `Ok(0)` is end of stream.
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, SocketError> {
        let sock = self
            .sockets
            .tcp
            .socks
            .get_mut(h)
            .ok_or(SocketError::BadHandle)?;
        let n = sock.conn.recv(buf)?;
        // A read may open the window: let the connection send an update.
        if sock.conn.wants_transmit() {
            self.tcp_touch(h);
        }
        Ok(n)
    }

    /// Shuts down the write side (FIN after queued data), the read side, or
    /// both.
    pub fn tcp_shutdown(
        &mut self,
        h: TcpHandle,
        read: bool,
        write: bool,
    ) -> Result<(), SocketError> {
        let sock = self
            .sockets
            .tcp
            .socks
            .get_mut(h)
            .ok_or(SocketError::BadHandle)?;
        if !sock.conn.is_established() && sock.conn.state() != tcp::State::SynSent {
            return Err(SocketError::NotConnected);
        }
        if read {
            sock.conn.shutdown_read();
        }
        if write {
            sock.conn.shutdown_write();
        }
        self.tcp_touch(h);
        Ok(())
    }

    /// Closes the application's handle: the connection finishes in the
    /// background (or is reset if unread data was pending) and its slot is
    /// freed once it is closed. `h` is invalid afterwards.
    pub fn tcp_close(&mut self, now: Instant, h: TcpHandle) {
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        if sock.orphan {
            return;
        }
        sock.orphan = true;
        sock.conn.close(now);
        self.sockets.tcp.orphans += 1;
        if sock.conn.is_closed() && !sock.linked {
            self.tcp_release(h);
            return;
        }
        // Linux's tcp_max_orphans: beyond the limit a closed connection is
        // reset instead of finishing in the background.
        if self.sockets.tcp.orphans > self.sockets.tcp.limits.max_orphans && !sock.conn.is_closed()
        {
            log::debug!("tcp: too many orphaned connections; resetting");
            self.counters.defenses.orphans_over_limit += 1;
            sock.conn.abort(now);
        }
        self.counters.defenses.orphans_now = self.sockets.tcp.orphans as u64;
        self.tcp_touch(h);
    }

    /// Aborts the connection with a reset. The handle stays valid until
    /// closed.
    pub fn tcp_abort(&mut self, now: Instant, h: TcpHandle) {
        if let Some(sock) = self.sockets.tcp.socks.get_mut(h) {
            sock.conn.abort(now);
            self.tcp_touch(h);
        }
    }

    /// True when no connection still has data of ours to deliver: every
    /// connection is closed, in TIME-WAIT or FIN-WAIT-2, never got to carry
    /// data (SYN states), or has had all its data acknowledged and its FIN
    /// sent. Walks all connections: for shutdown, not the data path.
    pub fn tcp_all_delivered(&self) -> bool {
        use tcp::State::*;
        self.sockets
            .tcp
            .socks
            .iter()
            .all(|(_, s)| match s.conn.state() {
                Closed | TimeWait | FinWait2 | Listen | SynSent | SynReceived => true,
                FinWait1 | Closing | LastAck => s.conn.send_queued() == 0,
                Established | CloseWait => false,
            })
    }

    /// Number of TCP connections held (any state, orphans included; not
    /// the compact TIME-WAIT records).
    pub fn tcp_connection_count(&self) -> usize {
        self.sockets.tcp.len()
    }

    /// True when a connection (in any state, orphans still closing
    /// included) or a TIME-WAIT record uses local port `port` in a way that
    /// conflicts with a new bind of it with SO_REUSEADDR `reuseaddr`:
    /// without it any use conflicts; with it, only uses by sockets that
    /// did not set it (Linux's `inet_csk_bind_conflict` sees the TIME-WAIT
    /// sockets in the bind bucket, with the flag of the socket they came
    /// from). O(1): per-port counts kept as connections and records come
    /// and go.
    pub fn tcp_port_in_use(&self, port: u16, reuseaddr: bool) -> bool {
        PortUse::conflicts(&self.sockets.tcp.ports, port, reuseaddr)
            || PortUse::conflicts(&self.sockets.tcp.tw_ports, port, reuseaddr)
    }

    /// Number of compact TIME-WAIT records held.
    pub fn tcp_time_wait_count(&self) -> usize {
        self.sockets.tcp.time_wait.len()
    }

    /// Number of orphaned connections (closed by the application, still
    /// finishing).
    pub fn tcp_orphan_count(&self) -> usize {
        self.sockets.tcp.orphans
    }

    /// Connections per state (compact TIME-WAIT records counted as
    /// TIME-WAIT). Walks all connections: for reports, not the data path.
    pub fn tcp_states(&self) -> Vec<(tcp::State, usize)> {
        let mut counts: Vec<(tcp::State, usize)> = Vec::new();
        let mut add = |st: tcp::State, n: usize| match counts.iter_mut().find(|(s, _)| *s == st) {
            Some((_, c)) => *c += n,
            None => counts.push((st, n)),
        };
        for (_, s) in self.sockets.tcp.socks.iter() {
            add(s.conn.state(), 1);
        }
        if !self.sockets.tcp.time_wait.is_empty() {
            add(tcp::State::TimeWait, self.sockets.tcp.time_wait.len());
        }
        counts
    }

    /// Listeners, connections and TIME-WAIT records.
    pub(in crate::iface) fn tcp_socket_count(&self) -> usize {
        let tcp = &self.sockets.tcp;
        tcp.listeners.len() + tcp.socks.len() + tcp.time_wait.len()
    }

    /// Appends a [`SocketInfo`](crate::iface::SocketInfo) per listener,
    /// connection and TIME-WAIT record.
    pub(in crate::iface) fn tcp_snapshot(&self, out: &mut Vec<crate::iface::SocketInfo>) {
        let tcp = &self.sockets.tcp;
        for (_, l) in tcp.listeners.iter() {
            out.push(crate::iface::SocketInfo {
                kind: crate::iface::SocketKind::Tcp,
                state: "LISTEN",
                tcp_state: Some(tcp::State::Listen),
                local: l.local_addr(),
                peer: None,
                recv_queue: l.pending(),
                send_queue: l.embryonic(),
                orphan: false,
                tcp: None,
            });
        }
        for (_, s) in tcp.socks.iter() {
            let conn = s.conn();
            let state = conn.state();
            out.push(crate::iface::SocketInfo {
                kind: crate::iface::SocketKind::Tcp,
                state: crate::iface::ss_state_name(state),
                tcp_state: Some(state),
                local: conn.local(),
                peer: Some(conn.remote()),
                recv_queue: conn.recv_queued(),
                send_queue: conn.send_queued(),
                orphan: s.orphan,
                tcp: Some(Box::new(conn.stats())),
            });
        }
        for (local, remote) in tcp.time_wait.keys() {
            out.push(crate::iface::SocketInfo {
                kind: crate::iface::SocketKind::Tcp,
                state: "TIME-WAIT",
                tcp_state: Some(tcp::State::TimeWait),
                local: *local,
                peer: Some(*remote),
                recv_queue: 0,
                send_queue: 0,
                orphan: true,
                tcp: None,
            });
        }
    }

    /// The limits in force.
    pub fn tcp_limits(&self) -> TcpLimits {
        self.sockets.tcp.limits
    }

    /// Changes the limits.
    pub fn set_tcp_limits(&mut self, limits: TcpLimits) {
        self.sockets.tcp.limits = limits;
    }
}
