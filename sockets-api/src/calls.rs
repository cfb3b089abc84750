//! The BSD-shaped socket calls.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use stack::SocketError;
use tcp::State;

use crate::Stack;
use crate::options::{apply_tcp_config, apply_udp_options};
use crate::runtime::{Core, Entry, SockState, SockType};
use crate::types::{Domain, Fd, Protocol, Shutdown, Type};

pub(crate) fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

pub(crate) fn ebadf() -> io::Error {
    errno(libc::EBADF)
}

/// The reply to a ping socket's receive.
pub(crate) use stack::EchoReply;

impl Stack {
    /// Locks the core, failing with ENETDOWN once the stack has stopped.
    pub(crate) fn lock(&self) -> io::Result<MutexGuard<'_, Core>> {
        let core = self.shared().lock();
        if core.stopped {
            return Err(errno(libc::ENETDOWN));
        }
        Ok(core)
    }

    /// Sleeps on `fd`'s condition variable until notified or `deadline`.
    /// Returns the re-acquired lock, or EAGAIN (Linux's answer to an
    /// expired SO_RCVTIMEO/SO_SNDTIMEO) when the deadline passed.
    pub(crate) fn wait<'a>(
        &self,
        mut core: MutexGuard<'a, Core>,
        fd: Fd,
        deadline: Option<Instant>,
    ) -> io::Result<MutexGuard<'a, Core>> {
        let entry = core.entry_mut(fd).ok_or_else(ebadf)?;
        let cond = entry.cond.clone();
        entry.waiters += 1;
        let mut core = match deadline {
            None => cond.wait(core).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    if let Some(e) = core.entry_mut(fd) {
                        e.waiters -= 1;
                    }
                    return Err(errno(libc::EAGAIN));
                }
                cond.wait_timeout(core, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        if let Some(e) = core.entry_any_mut(fd) {
            e.waiters = e.waiters.saturating_sub(1);
        }
        if core.stopped {
            return Err(errno(libc::ENETDOWN));
        }
        Ok(core)
    }

    /// The one blocking loop of the socket calls: runs `attempt` under the
    /// lock until it answers (`Some`), sleeping on `fd`'s condition
    /// variable in between. When the call may not wait (non-blocking) or
    /// `deadline` passed (SO_RCVTIMEO/SO_SNDTIMEO), `attempt` gets one last
    /// try with `last` set, to return what it has (a partial send, data
    /// below SO_RCVLOWAT, EINPROGRESS); `None` then means EAGAIN.
    pub(crate) fn block_on<T>(
        &self,
        mut core: MutexGuard<'_, Core>,
        fd: Fd,
        nonblocking: bool,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(&mut Core, bool) -> io::Result<Option<T>>,
    ) -> io::Result<T> {
        loop {
            if let Some(v) = attempt(&mut core, false)? {
                return Ok(v);
            }
            if nonblocking {
                return attempt(&mut core, true)?.ok_or_else(|| errno(libc::EAGAIN));
            }
            match self.wait(core, fd, deadline) {
                Ok(c) => core = c,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    let mut core = self.lock()?;
                    return attempt(&mut core, true)?.ok_or(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// socket(2).
    ///
    /// The BSD calls, as a C program would make them (two stacks joined by
    /// an in-memory link):
    ///
    /// ```
    /// use sockets_api::{Domain, Protocol, Shutdown, StackBuilder, Type};
    /// # fn main() -> std::io::Result<()> {
    /// let (server, client) = StackBuilder::memory_pair(
    ///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
    ///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    /// )?;
    /// let lfd = server.socket(Domain::Inet, Type::Stream, Protocol::Default)?;
    /// server.bind(lfd, "0.0.0.0:9000".parse().unwrap())?;
    /// server.listen(lfd, 16)?;
    ///
    /// let cfd = client.socket(Domain::Inet, Type::Stream, Protocol::Default)?;
    /// client.connect(cfd, "10.0.0.1:9000".parse().unwrap())?;
    /// let (afd, peer) = server.accept(lfd)?;
    /// assert_eq!(peer.ip(), &std::net::Ipv4Addr::new(10, 0, 0, 2));
    ///
    /// client.send(cfd, b"request")?;
    /// client.shutdown(cfd, Shutdown::Write)?;
    /// let mut buf = [0u8; 16];
    /// let n = server.recv(afd, &mut buf)?;
    /// assert_eq!(&buf[..n], b"request");
    /// assert_eq!(server.recv(afd, &mut buf)?, 0); // the client's FIN
    /// server.close(afd)?;
    /// client.close(cfd)?;
    /// // A closed descriptor is EBADF, as on Linux.
    /// assert_eq!(client.close(cfd).unwrap_err().raw_os_error(), Some(libc::EBADF));
    /// # Ok(()) }
    /// ```
    pub fn socket(&self, domain: Domain, ty: Type, protocol: Protocol) -> io::Result<Fd> {
        self.socket_flags(domain, ty, protocol, 0)
    }

    /// socket(2) with `SOCK_NONBLOCK` (the socket starts non-blocking) and
    /// `SOCK_CLOEXEC` (accepted; ustack descriptors are not inherited by
    /// exec anyway) or'ed into the type, as Linux takes them. Other flags
    /// fail with EINVAL.
    pub fn socket_flags(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Protocol,
        flags: i32,
    ) -> io::Result<Fd> {
        let Domain::Inet = domain;
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(errno(libc::EINVAL));
        }
        let mut core = self.lock()?;
        if core.closing.is_some() {
            return Err(errno(libc::ENETDOWN));
        }
        let mut entry = match (ty, protocol) {
            (Type::Stream, Protocol::Default) => Entry::new(SockType::Stream, SockState::Fresh),
            (Type::Dgram, Protocol::Default) => Entry::new(SockType::Dgram, SockState::Fresh),
            (Type::Dgram, Protocol::Icmp) => {
                let h = core.iface.icmp_open(None).map_err(io::Error::from)?;
                Entry::new(SockType::Icmp, SockState::Icmp(h))
            }
            (Type::Stream, Protocol::Icmp) => return Err(errno(libc::EPROTONOSUPPORT)),
        };
        entry.opts.nonblocking = flags & libc::SOCK_NONBLOCK != 0;
        Ok(core.insert(entry))
    }

    /// dup(2): a second descriptor for the same socket (options, O_NONBLOCK
    /// and state are shared); the socket closes with its last descriptor.
    pub fn dup(&self, fd: Fd) -> io::Result<Fd> {
        self.lock()?.dup(fd).ok_or_else(ebadf)
    }

    /// bind(2). Port 0 picks a free ephemeral port; the address must be
    /// 0.0.0.0, ours or a loopback address (EADDRNOTAVAIL otherwise). A TCP
    /// port is in use (EADDRINUSE) while another socket is bound to it, or
    /// a connection still uses it (in TIME-WAIT, or finishing after
    /// close()), unless SO_REUSEADDR/SO_REUSEPORT allow it as Linux's
    /// rules do.
    pub fn bind(&self, fd: Fd, addr: SocketAddrV4) -> io::Result<()> {
        let mut core = self.lock()?;
        let ours = core.iface.cidr().addr();
        if !addr.ip().is_unspecified() && *addr.ip() != ours && !addr.ip().is_loopback() {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.ty, e.state) {
            (SockType::Stream, SockState::Fresh) => {
                if e.bound.is_some() {
                    return Err(errno(libc::EINVAL));
                }
                let (reuse, reuseport) = (e.opts.reuseaddr, e.opts.reuseport);
                let port = match addr.port() {
                    0 => pick_port(&mut core)?,
                    p => p,
                };
                if core.tcp_port_taken(port, reuse, reuseport) {
                    return Err(errno(libc::EADDRINUSE));
                }
                let e = core.entry_mut(fd).ok_or_else(ebadf)?;
                e.bound = Some(SocketAddrV4::new(*addr.ip(), port));
                e.explicit_bind = true;
                Ok(())
            }
            (SockType::Dgram, SockState::Fresh) => {
                let opts = e.opts.clone();
                let h = core
                    .iface
                    .udp_bind_with(addr, opts.reuseaddr || opts.reuseport)
                    .map_err(io::Error::from)?;
                if let Some(s) = core.iface.udp_socket_mut(h) {
                    apply_udp_options(s, &opts);
                }
                core.set_state(fd, SockState::Udp(h));
                Ok(())
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// listen(2). An unbound socket listens on an ephemeral port.
    pub fn listen(&self, fd: Fd, backlog: usize) -> io::Result<()> {
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        if e.ty != SockType::Stream {
            return Err(errno(libc::EOPNOTSUPP));
        }
        match e.state {
            // Linux accepts listen() again on a listening socket.
            SockState::Listening(_) => Ok(()),
            SockState::Fresh => {
                let opts = e.opts.clone();
                let local = match e.bound {
                    Some(b) => b,
                    None => {
                        let port = pick_port(&mut core)?;
                        let b = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
                        core.entry_mut(fd).ok_or_else(ebadf)?.bound = Some(b);
                        b
                    }
                };
                let lh = core
                    .iface
                    .tcp_listen_with(local, backlog.max(1), opts.reuseport)
                    .map_err(io::Error::from)?;
                if let Some(l) = core.iface.tcp_listener_mut(lh) {
                    apply_tcp_config(l.config_mut(), &opts);
                    l.set_defer_accept(opts.defer_accept);
                }
                core.set_state(fd, SockState::Listening(lh));
                Ok(())
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// accept(2): the next established connection and its peer's address.
    /// EINVAL when the socket does not listen (or stopped listening:
    /// shutdown(SHUT_RD) on a listener wakes every blocked accept with it),
    /// EOPNOTSUPP on a datagram socket.
    pub fn accept(&self, fd: Fd) -> io::Result<(Fd, SocketAddrV4)> {
        self.accept4(fd, 0)
    }

    /// accept4(2): accept with `SOCK_NONBLOCK` (the new socket starts
    /// non-blocking; plain accept never inherits O_NONBLOCK, as on Linux)
    /// and `SOCK_CLOEXEC` (accepted).
    pub fn accept4(&self, fd: Fd, flags: i32) -> io::Result<(Fd, SocketAddrV4)> {
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(errno(libc::EINVAL));
        }
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let deadline = e.opts.rcvtimeo.map(|t| Instant::now() + t);
        let nonblocking = e.opts.nonblocking;
        self.block_on(core, fd, nonblocking, deadline, |core, _| {
            // Looked at on every try: a shutdown may have stopped the
            // listener meanwhile.
            let e = core.entry(fd).ok_or_else(ebadf)?;
            if e.ty != SockType::Stream {
                return Err(errno(libc::EOPNOTSUPP));
            }
            let SockState::Listening(lh) = e.state else {
                return Err(errno(libc::EINVAL));
            };
            let inherited = e.opts.clone();
            let h = match core.iface.tcp_accept(lh) {
                Ok(h) => h,
                Err(SocketError::WouldBlock) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let peer = core.iface.tcp(h).map(|c| c.remote()).ok_or_else(ebadf)?;
            let mut entry = Entry::new(SockType::Stream, SockState::Stream(h));
            entry.opts = inherited;
            entry.opts.nonblocking = flags & libc::SOCK_NONBLOCK != 0;
            entry.opts.defer_accept = None;
            entry.bound = core.iface.tcp(h).map(|c| c.local());
            Ok(Some((core.insert(entry), peer)))
        })
    }

    /// connect(2). Non-blocking sockets return EINPROGRESS; poll for
    /// POLLOUT and read SO_ERROR. Blocking connects wait for the handshake
    /// (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH when the neighbour never
    /// answers ARP...), up to SO_SNDTIMEO (then EINPROGRESS, as Linux).
    ///
    /// Calling it again follows Linux's __inet_stream_connect: EALREADY
    /// while the handshake runs (a blocking call waits for it), success
    /// once it completed, the pending error (or ECONNABORTED when it was
    /// already read) once it failed, after which the socket is unconnected
    /// and the next call starts a fresh attempt; EISCONN when connected.
    pub fn connect(&self, fd: Fd, addr: SocketAddrV4) -> io::Result<()> {
        self.connect_until(fd, addr, None)
    }

    /// connect with an overall deadline (for `TcpStream::connect_timeout`):
    /// ETIMEDOUT when it passes.
    pub(crate) fn connect_until(
        &self,
        fd: Fd,
        addr: SocketAddrV4,
        limit: Option<Instant>,
    ) -> io::Result<()> {
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.ty, e.state) {
            (SockType::Dgram, _) => {
                if !e.opts.broadcast && core.is_broadcast(*addr.ip()) {
                    return Err(errno(libc::EACCES));
                }
                drop(core);
                let h = self.udp_handle(fd)?;
                self.lock()?
                    .iface
                    .udp_connect(h, addr)
                    .map_err(io::Error::from)
            }
            (SockType::Icmp, _) => Err(errno(libc::EOPNOTSUPP)),
            (SockType::Stream, SockState::Fresh) => {
                let opts = e.opts.clone();
                let local = e.bound;
                if core.closing.is_some() {
                    return Err(errno(libc::ENETDOWN));
                }
                // tcp_v4_connect: no TCP to a broadcast address.
                if core.is_broadcast(*addr.ip()) {
                    return Err(errno(libc::ENETUNREACH));
                }
                let now = Instant::now();
                let mut cfg = core.iface.tcp_config().clone();
                apply_tcp_config(&mut cfg, &opts);
                let h = core
                    .iface
                    .tcp_connect_with(now, addr, local, cfg)
                    .map_err(io::Error::from)?;
                // Charge the new connection now (its SYN is scheduled).
                core.iface.tcp_with(h, |_| ());
                let local = core.iface.tcp(h).map(|c| c.local());
                if let Some(en) = core.entry_mut(fd) {
                    en.bound = local;
                    en.connecting = true;
                    en.conn_error_seen = false;
                }
                core.set_state(fd, SockState::Stream(h));
                self.shared().kick(&core);
                if opts.nonblocking {
                    return Err(errno(libc::EINPROGRESS));
                }
                self.wait_connected(core, fd, h, limit, opts.sndtimeo, Err(libc::EINPROGRESS))
            }
            (SockType::Stream, SockState::Stream(h)) => {
                if !e.connecting {
                    return Err(errno(libc::EISCONN));
                }
                let (nonblocking, sndtimeo) = (e.opts.nonblocking, e.opts.sndtimeo);
                let handshaking = core
                    .iface
                    .tcp(h)
                    .is_some_and(|c| matches!(c.state(), State::SynSent | State::SynReceived));
                if handshaking && nonblocking {
                    return Err(errno(libc::EALREADY));
                }
                self.wait_connected(core, fd, h, limit, sndtimeo, Err(libc::EALREADY))
            }
            (SockType::Stream, _) => Err(errno(libc::EISCONN)),
        }
    }

    /// Waits for a connecting stream's handshake to end. `on_timeout` is
    /// the answer when SO_SNDTIMEO passes first (the socket stays
    /// connecting); `limit` (connect_timeout) turns into ETIMEDOUT.
    fn wait_connected(
        &self,
        core: MutexGuard<'_, Core>,
        fd: Fd,
        h: stack::TcpHandle,
        limit: Option<Instant>,
        sndtimeo: Option<Duration>,
        on_timeout: Result<(), i32>,
    ) -> io::Result<()> {
        let deadline = limit.or_else(|| sndtimeo.map(|t| Instant::now() + t));
        self.block_on(core, fd, false, deadline, |core, last| {
            let state = core.iface.tcp(h).map_or(State::Closed, |c| c.state());
            match state {
                State::SynSent | State::SynReceived if !last => Ok(None),
                // The time is up; the socket stays connecting.
                State::SynSent | State::SynReceived => match (limit, on_timeout) {
                    (Some(_), _) => Err(errno(libc::ETIMEDOUT)),
                    (None, Ok(())) => Ok(Some(())),
                    (None, Err(code)) => Err(errno(code)),
                },
                State::Closed => {
                    // sock_error: the pending error (or ECONNABORTED when it
                    // was read already); the socket is unconnected again.
                    let err = core.take_error(fd).unwrap_or(libc::ECONNABORTED);
                    release_stream(core, fd, h);
                    self.shared().kick(core);
                    Err(errno(err))
                }
                _ => {
                    if let Some(e) = core.entry_mut(fd) {
                        e.connecting = false;
                    }
                    Ok(Some(()))
                }
            }
        })
    }

    /// connect(2) with AF_UNSPEC: dissolves a datagram socket's
    /// association (it then receives from anyone again); on a stream it
    /// aborts the connection or stops listening (tcp_disconnect) and the
    /// socket can connect or listen again.
    pub fn disconnect(&self, fd: Fd) -> io::Result<()> {
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let now = Instant::now();
        match e.state {
            SockState::Udp(h) => core.iface.udp_disconnect(h).map_err(io::Error::from)?,
            SockState::Stream(h) => {
                core.iface.tcp_abort(now, h);
                release_stream(&mut core, fd, h);
            }
            SockState::Listening(lh) => {
                core.iface.tcp_close_listener(now, lh);
                unlisten(&mut core, fd);
            }
            _ => {}
        }
        core.notify_fd(fd);
        self.shared().kick(&core);
        Ok(())
    }

    /// sockatmark(3) (SIOCATMARK): true when the next byte to read is the
    /// last octet of the urgent data the peer sent. A read stops there, so
    /// an application reading up to the mark can tell where urgent data
    /// ends; `poll` reports POLLPRI while urgent data is unread.
    pub fn sockatmark(&self, fd: Fd) -> io::Result<bool> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match e.state {
            SockState::Stream(h) => Ok(core.iface.tcp(h).is_some_and(|c| c.at_mark())),
            _ if e.ty == SockType::Stream => Ok(false),
            _ => Err(errno(libc::ENOTTY)),
        }
    }

    /// shutdown(2). On a listener, SHUT_RD (or SHUT_RDWR) stops listening:
    /// every thread blocked in accept wakes and fails with EINVAL, queued
    /// connections are reset, and the socket may listen again (SHUT_WR alone
    /// does nothing), as on Linux. A connected datagram socket records the
    /// shutdown (reads then return 0 once empty). ENOTCONN on a socket that
    /// is not connected.
    pub fn shutdown(&self, fd: Fd, how: Shutdown) -> io::Result<()> {
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let (read, write) = match how {
            Shutdown::Read => (true, false),
            Shutdown::Write => (false, true),
            Shutdown::Both => (true, true),
        };
        match e.state {
            SockState::Stream(h) => {
                core.iface
                    .tcp_shutdown(h, read, write)
                    .map_err(io::Error::from)?;
            }
            SockState::Listening(lh) => {
                if read {
                    core.iface.tcp_close_listener(Instant::now(), lh);
                    unlisten(&mut core, fd);
                    self.shared().kick(&core);
                }
                return Ok(());
            }
            SockState::Udp(h)
                if core
                    .iface
                    .udp_socket(h)
                    .is_some_and(|s| s.peer_addr().is_some()) => {}
            _ => return Err(errno(libc::ENOTCONN)),
        }
        if let Some(en) = core.entry_mut(fd) {
            en.shut_rd |= read;
            en.shut_wr |= write;
            core.notify_fd(fd);
        }
        self.shared().kick(&core);
        Ok(())
    }

    /// close(2). Graceful by default (queued data is delivered, then FIN);
    /// SO_LINGER 0 resets; SO_LINGER t > 0 waits up to t for delivery.
    pub fn close(&self, fd: Fd) -> io::Result<()> {
        let mut core = self.shared().lock();
        if core.refs(fd) > 1 {
            // Other descriptors still name the socket: only this one goes.
            core.remove(fd);
            return Ok(());
        }
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        let linger = e.opts.linger;
        let state = e.state;
        if let (Some(t), SockState::Stream(h)) = (linger, state)
            && !t.is_zero()
        {
            // Linger: keep the descriptor (closing) until the data is
            // acknowledged or the time is up.
            e.closing = true;
            core.iface.tcp_with(h, |c| c.shutdown_write());
            self.shared().kick(&core);
            let deadline = Instant::now() + t;
            loop {
                let done = core.iface.tcp(h).is_none_or(|c| {
                    c.send_queued() == 0
                        && matches!(c.state(), State::FinWait2 | State::TimeWait | State::Closed)
                });
                if done || core.stopped || Instant::now() >= deadline {
                    break;
                }
                let cond = core.entry_any_mut(fd).map(|e| {
                    e.waiters += 1;
                    e.cond.clone()
                });
                let Some(cond) = cond else { break };
                core = cond
                    .wait_timeout(core, deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                if let Some(e) = core.entry_any_mut(fd) {
                    e.waiters = e.waiters.saturating_sub(1);
                }
            }
        }
        close_locked(&mut core, fd, true);
        self.shared().kick(&core);
        Ok(())
    }

    /// getsockname(2).
    pub fn getsockname(&self, fd: Fd) -> io::Result<SocketAddrV4> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        Ok(match e.state {
            SockState::Stream(h) => core.iface.tcp(h).map_or(any, |c| c.local()),
            SockState::Listening(lh) => core.iface.tcp_listener(lh).map_or(any, |l| l.local_addr()),
            SockState::Udp(h) => core.iface.udp_socket(h).map_or(any, |s| {
                // A connected socket bound to 0.0.0.0 has its source address
                // chosen by the route to its peer (ip4_datagram_connect).
                let local = s.local_addr();
                match s.peer_addr() {
                    Some(peer) if local.ip().is_unspecified() => {
                        let ip = if peer.ip().is_loopback() {
                            Ipv4Addr::LOCALHOST
                        } else {
                            core.iface.cidr().addr()
                        };
                        SocketAddrV4::new(ip, local.port())
                    }
                    _ => local,
                }
            }),
            _ => e.bound.unwrap_or(any),
        })
    }

    /// getpeername(2).
    pub fn getpeername(&self, fd: Fd) -> io::Result<SocketAddrV4> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match e.state {
            // inet_getname: not while the SYN is out, nor once the
            // connection is over (CLOSE; TIME-WAIT belongs to the stack).
            SockState::Stream(h) => core
                .iface
                .tcp(h)
                .filter(|c| !matches!(c.state(), State::SynSent | State::Closed | State::TimeWait))
                .map(|c| c.remote())
                .ok_or_else(|| errno(libc::ENOTCONN)),
            SockState::Udp(h) => core
                .iface
                .udp_socket(h)
                .and_then(|s| s.peer_addr())
                .ok_or_else(|| errno(libc::ENOTCONN)),
            _ => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Sends an ICMP echo request from a ping socket
    /// (`socket(Inet, Dgram, Icmp)`).
    pub fn ping_send(&self, fd: Fd, dst: Ipv4Addr, seq: u16, payload: &[u8]) -> io::Result<()> {
        let mut core = self.lock()?;
        let SockState::Icmp(h) = core.entry(fd).ok_or_else(ebadf)?.state else {
            return Err(errno(libc::EOPNOTSUPP));
        };
        let now = Instant::now();
        let Core { iface, tx, .. } = &mut *core;
        iface
            .icmp_send_echo(now, h, dst, seq, payload, tx)
            .map_err(io::Error::from)?;
        self.shared().kick(&core);
        Ok(())
    }

    /// Receives the next echo reply on a ping socket (blocking unless
    /// non-blocking; SO_RCVTIMEO applies).
    pub fn ping_recv(&self, fd: Fd) -> io::Result<EchoReply> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let deadline = e.opts.rcvtimeo.map(|t| Instant::now() + t);
        let nonblocking = e.opts.nonblocking;
        self.block_on(core, fd, nonblocking, deadline, |core, _| {
            let SockState::Icmp(h) = core.entry(fd).ok_or_else(ebadf)?.state else {
                return Err(errno(libc::EOPNOTSUPP));
            };
            Ok(core.iface.icmp_socket(h).and_then(|s| s.recv()))
        })
    }
}

impl Core {
    /// The socket's pending error (SO_ERROR), without clearing it.
    pub(crate) fn pending_error(&self, fd: Fd) -> Option<i32> {
        let e = self.entry(fd)?;
        if e.error.is_some() {
            return e.error;
        }
        match e.state {
            SockState::Stream(h) if !e.conn_error_seen => self
                .iface
                .tcp(h)
                .and_then(|c| c.error())
                .map(|err| SocketError::from(err).errno()),
            SockState::Udp(h) => self
                .iface
                .udp_socket(h)
                .and_then(|s| s.pending_error())
                .map(|err| err.errno()),
            _ => None,
        }
    }

    /// Reports the pending error once: reading SO_ERROR, or a call that
    /// fails with it, clears it (Linux's sock_error).
    pub(crate) fn take_error(&mut self, fd: Fd) -> Option<i32> {
        let pending = self.pending_error(fd)?;
        let e = self.entry_mut(fd)?;
        if e.error.take().is_some() {
            return Some(pending);
        }
        match e.state {
            SockState::Stream(_) => e.conn_error_seen = true,
            SockState::Udp(h) => {
                if let Some(s) = self.iface.udp_socket_mut(h) {
                    s.take_error();
                }
            }
            _ => {}
        }
        Some(pending)
    }

    /// True for the limited broadcast address and our subnet's.
    pub(crate) fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast() || self.iface.cidr().broadcast() == Some(ip)
    }
}

/// Lets go of a stream's connection after a failed connect (or a
/// disconnect): the socket is unconnected again and keeps only an
/// address bind() chose.
fn release_stream(core: &mut Core, fd: Fd, h: stack::TcpHandle) {
    core.iface.tcp_close(Instant::now(), h);
    core.set_state(fd, SockState::Fresh);
    if let Some(e) = core.entry_mut(fd) {
        e.connecting = false;
        e.conn_error_seen = false;
        e.shut_rd = false;
        e.shut_wr = false;
        if !e.explicit_bind {
            e.bound = None;
        }
    }
}

/// A listener stopped listening (shutdown or disconnect): the socket is
/// unconnected, bound only if bind() chose its address; blocked accepts
/// wake and fail with EINVAL.
fn unlisten(core: &mut Core, fd: Fd) {
    core.set_state(fd, SockState::Fresh);
    if let Some(e) = core.entry_mut(fd) {
        if !e.explicit_bind {
            e.bound = None;
        }
        if e.waiters > 0 {
            e.cond.notify_all();
        }
        core.notify_fd(fd);
    }
}

/// A free port for bind(port 0) / listen without bind, from the RFC 6056
/// ephemeral range, not used by another bound socket.
fn pick_port(core: &mut Core) -> io::Result<u16> {
    for _ in 0..16_384 {
        core.port_seed ^= core.port_seed << 13;
        core.port_seed ^= core.port_seed >> 7;
        core.port_seed ^= core.port_seed << 17;
        let port = 49_152 + (core.port_seed % 16_384) as u16;
        if !core.tcp_port_taken(port, false, false) {
            return Ok(port);
        }
    }
    Err(errno(libc::EADDRNOTAVAIL))
}

/// Closes `fd` under the lock. `graceful`: FIN after queued data (or a
/// reset if SO_LINGER is 0); otherwise (stack shutdown) the same but
/// without lingering.
pub(crate) fn close_locked(core: &mut Core, fd: Fd, graceful: bool) {
    let Some(e) = core.remove(fd) else { return };
    let now = Instant::now();
    match e.state {
        SockState::Stream(h) => {
            if graceful && e.opts.linger == Some(Duration::ZERO) {
                core.iface.tcp_abort(now, h);
            }
            core.iface.tcp_close(now, h);
        }
        SockState::Listening(lh) => core.iface.tcp_close_listener(now, lh),
        SockState::Udp(h) => core.iface.udp_close(h),
        SockState::Icmp(h) => core.iface.icmp_close(h),
        SockState::Fresh => {}
    }
}
