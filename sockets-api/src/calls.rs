//! The BSD-shaped socket calls.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use stack::SocketError;
use tcp::{Keepalive, State};

use crate::Stack;
use crate::runtime::{Core, Entry, SockState, SockType};
use crate::types::{Domain, Fd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue, Type};

pub(crate) fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

fn ebadf() -> io::Error {
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
        let Domain::Inet = domain;
        let mut core = self.lock()?;
        if core.closing.is_some() {
            return Err(errno(libc::ENETDOWN));
        }
        let entry = match (ty, protocol) {
            (Type::Stream, Protocol::Default) => Entry::new(SockType::Stream, SockState::Fresh),
            (Type::Dgram, Protocol::Default) => Entry::new(SockType::Dgram, SockState::Fresh),
            (Type::Dgram, Protocol::Icmp) => {
                let h = core.iface.icmp_open(None).map_err(io::Error::from)?;
                Entry::new(SockType::Icmp, SockState::Icmp(h))
            }
            (Type::Stream, Protocol::Icmp) => return Err(errno(libc::EPROTONOSUPPORT)),
        };
        Ok(core.insert(entry))
    }

    /// bind(2). Port 0 picks a free ephemeral port; the address must be
    /// 0.0.0.0 or ours (EADDRNOTAVAIL otherwise).
    pub fn bind(&self, fd: Fd, addr: SocketAddrV4) -> io::Result<()> {
        let mut core = self.lock()?;
        let ours = core.iface.cidr().addr();
        if !addr.ip().is_unspecified() && *addr.ip() != ours {
            return Err(errno(libc::EADDRNOTAVAIL));
        }
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.ty, e.state) {
            (SockType::Stream, SockState::Fresh) => {
                if e.bound.is_some() {
                    return Err(errno(libc::EINVAL));
                }
                let reuse = e.opts.reuseaddr;
                let port = match addr.port() {
                    0 => pick_port(&mut core)?,
                    p => p,
                };
                if core.tcp_port_taken(port, reuse) {
                    return Err(errno(libc::EADDRINUSE));
                }
                core.entry_mut(fd).ok_or_else(ebadf)?.bound =
                    Some(SocketAddrV4::new(*addr.ip(), port));
                Ok(())
            }
            (SockType::Dgram, SockState::Fresh) => {
                let (rcvbuf, ttl) = (e.opts.rcvbuf, e.opts.ttl);
                let h = core.iface.udp_bind(addr).map_err(io::Error::from)?;
                if let Some(s) = core.iface.udp_socket_mut(h) {
                    if let Some(b) = rcvbuf {
                        s.set_recv_buffer_size(b);
                    }
                    s.set_ttl(ttl);
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
                    .tcp_listen(local, backlog.max(1))
                    .map_err(io::Error::from)?;
                if let Some(l) = core.iface.tcp_listener_mut(lh) {
                    let cfg = l.config_mut();
                    apply_tcp_config(cfg, &opts);
                }
                core.set_state(fd, SockState::Listening(lh));
                Ok(())
            }
            _ => Err(errno(libc::EINVAL)),
        }
    }

    /// accept(2): the next established connection and its peer's address.
    pub fn accept(&self, fd: Fd) -> io::Result<(Fd, SocketAddrV4)> {
        let mut core = self.lock()?;
        let deadline = {
            let e = core.entry(fd).ok_or_else(ebadf)?;
            e.opts.rcvtimeo.map(|t| Instant::now() + t)
        };
        loop {
            let e = core.entry(fd).ok_or_else(ebadf)?;
            let SockState::Listening(lh) = e.state else {
                return Err(errno(libc::EINVAL));
            };
            let nonblocking = e.opts.nonblocking;
            let inherited = e.opts.clone();
            match core.iface.tcp_accept(lh) {
                Ok(h) => {
                    let peer = core.iface.tcp(h).map(|c| c.remote()).ok_or_else(ebadf)?;
                    let mut entry = Entry::new(SockType::Stream, SockState::Stream(h));
                    entry.opts = inherited;
                    // O_NONBLOCK is not inherited by accept() on Linux.
                    entry.opts.nonblocking = false;
                    entry.bound = core.iface.tcp(h).map(|c| c.local());
                    let new_fd = core.insert(entry);
                    return Ok((new_fd, peer));
                }
                Err(SocketError::WouldBlock) if nonblocking => return Err(errno(libc::EAGAIN)),
                Err(SocketError::WouldBlock) => core = self.wait(core, fd, deadline)?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// connect(2). Non-blocking sockets return EINPROGRESS; poll for
    /// POLLOUT and read SO_ERROR. Blocking connects wait for the handshake
    /// (ECONNREFUSED, ETIMEDOUT...), up to SO_SNDTIMEO (then EINPROGRESS,
    /// as Linux).
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
                let h = match e.state {
                    SockState::Udp(h) => h,
                    _ => {
                        drop(core);
                        self.bind(fd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
                        core = self.lock()?;
                        match core.entry(fd).ok_or_else(ebadf)?.state {
                            SockState::Udp(h) => h,
                            _ => return Err(errno(libc::EINVAL)),
                        }
                    }
                };
                core.iface.udp_connect(h, addr).map_err(io::Error::from)
            }
            (SockType::Icmp, _) => Err(errno(libc::EOPNOTSUPP)),
            (SockType::Stream, SockState::Fresh) => {
                let opts = e.opts.clone();
                let local = e.bound;
                if core.closing.is_some() {
                    return Err(errno(libc::ENETDOWN));
                }
                let now = Instant::now();
                let h = core
                    .iface
                    .tcp_connect(now, addr, local)
                    .map_err(io::Error::from)?;
                if let Some(c) = core.iface.tcp_mut(h) {
                    apply_conn_options(c, &opts, now);
                }
                let local = core.iface.tcp(h).map(|c| c.local());
                if let Some(en) = core.entry_mut(fd) {
                    en.bound = local;
                }
                core.set_state(fd, SockState::Stream(h));
                self.shared().kick(&core);
                if opts.nonblocking {
                    return Err(errno(libc::EINPROGRESS));
                }
                let deadline = match (limit, opts.sndtimeo) {
                    (Some(l), _) => Some(l),
                    (None, Some(t)) => Some(now + t),
                    (None, None) => None,
                };
                loop {
                    let c = core.iface.tcp(h).ok_or_else(ebadf)?;
                    if let Some(err) = c.error() {
                        return Err(SocketError::from(err).into());
                    }
                    if c.is_established() {
                        return Ok(());
                    }
                    if c.state() == State::Closed {
                        return Err(errno(libc::ECONNREFUSED));
                    }
                    core = match self.wait(core, fd, deadline) {
                        Ok(c) => c,
                        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                            return Err(if limit.is_some() {
                                errno(libc::ETIMEDOUT)
                            } else {
                                errno(libc::EINPROGRESS)
                            });
                        }
                        Err(e) => return Err(e),
                    };
                }
            }
            (SockType::Stream, SockState::Stream(h)) => {
                let c = core.iface.tcp(h).ok_or_else(ebadf)?;
                if c.is_established() {
                    Err(errno(libc::EISCONN))
                } else if c.error().is_some() || c.state() == State::Closed {
                    Err(errno(libc::ECONNABORTED))
                } else {
                    Err(errno(libc::EALREADY))
                }
            }
            (SockType::Stream, _) => Err(errno(libc::EISCONN)),
        }
    }

    /// send(2). On a blocking stream it returns once every byte is queued
    /// (as Linux does), or with what was queued when SO_SNDTIMEO expires.
    pub fn send(&self, fd: Fd, buf: &[u8]) -> io::Result<usize> {
        self.send_flags(fd, buf, 0)
    }

    /// send(2) with flags: `MSG_OOB` sends the bytes as TCP urgent data
    /// (the urgent pointer then points past them, RFC 9293 3.8.5),
    /// `MSG_DONTWAIT` makes this call non-blocking, `MSG_NOSIGNAL` is
    /// accepted (ustack never raises signals). Other flags fail with
    /// EOPNOTSUPP.
    pub fn send_flags(&self, fd: Fd, buf: &[u8], flags: i32) -> io::Result<usize> {
        let known = libc::MSG_OOB | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        if flags & !known != 0 {
            return Err(errno(libc::EOPNOTSUPP));
        }
        let urgent = flags & libc::MSG_OOB != 0;
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        if urgent && e.ty != SockType::Stream {
            return Err(errno(libc::EOPNOTSUPP));
        }
        match e.state {
            SockState::Stream(h) => {
                let deadline = e.opts.sndtimeo.map(|t| Instant::now() + t);
                let nonblocking = e.opts.nonblocking || flags & libc::MSG_DONTWAIT != 0;
                let mut sent = 0;
                loop {
                    match core.iface.tcp_send(h, &buf[sent..]) {
                        Ok(n) => {
                            sent += n;
                            if urgent && (sent == buf.len() || nonblocking) {
                                core.iface.tcp_mark_urgent(h);
                            }
                            self.shared().kick(&core);
                            if sent == buf.len() || nonblocking {
                                return Ok(sent);
                            }
                        }
                        Err(SocketError::WouldBlock) => {
                            if nonblocking {
                                if urgent && sent > 0 {
                                    core.iface.tcp_mark_urgent(h);
                                }
                                return if sent > 0 {
                                    Ok(sent)
                                } else {
                                    Err(errno(libc::EAGAIN))
                                };
                            }
                            self.shared().kick(&core);
                            core = match self.wait(core, fd, deadline) {
                                Ok(c) => c,
                                Err(e) if sent > 0 && e.raw_os_error() == Some(libc::EAGAIN) => {
                                    return Ok(sent);
                                }
                                Err(e) => return Err(e),
                            };
                        }
                        Err(e) => {
                            if sent > 0 {
                                return Ok(sent);
                            }
                            return Err(stream_error(&mut core, fd, e, true));
                        }
                    }
                }
            }
            SockState::Udp(_) | SockState::Fresh if e.ty == SockType::Dgram => {
                drop(core);
                self.sendto_inner(fd, buf, None)
            }
            SockState::Fresh => Err(errno(libc::ENOTCONN)),
            SockState::Listening(_) => Err(errno(libc::ENOTCONN)),
            _ => Err(errno(libc::EOPNOTSUPP)),
        }
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

    /// recv(2). `Ok(0)` is end of stream on a stream socket.
    pub fn recv(&self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match e.state {
            SockState::Stream(h) => {
                let deadline = e.opts.rcvtimeo.map(|t| Instant::now() + t);
                let nonblocking = e.opts.nonblocking;
                let mut core = core;
                loop {
                    match core.iface.tcp_recv(h, buf) {
                        Ok(n) => {
                            self.shared().kick(&core);
                            return Ok(n);
                        }
                        Err(SocketError::WouldBlock) if nonblocking => {
                            return Err(errno(libc::EAGAIN));
                        }
                        Err(SocketError::WouldBlock) => core = self.wait(core, fd, deadline)?,
                        Err(SocketError::ConnectionReset)
                            if core.entry(fd).is_some_and(|e| e.reset_reported) =>
                        {
                            return Ok(0);
                        }
                        Err(e) => return Err(stream_error(&mut core, fd, e, false)),
                    }
                }
            }
            SockState::Udp(_) | SockState::Fresh if e.ty == SockType::Dgram => {
                drop(core);
                self.recvfrom(fd, buf).map(|(n, _)| n)
            }
            SockState::Fresh | SockState::Listening(_) => Err(errno(libc::ENOTCONN)),
            _ => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    /// sendto(2) for UDP sockets (an unbound socket gets an ephemeral port).
    pub fn sendto(&self, fd: Fd, buf: &[u8], addr: SocketAddrV4) -> io::Result<usize> {
        self.sendto_inner(fd, buf, Some(addr))
    }

    fn udp_handle(&self, fd: Fd) -> io::Result<stack::UdpHandle> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.ty, e.state) {
            (SockType::Dgram, SockState::Udp(h)) => Ok(h),
            (SockType::Dgram, SockState::Fresh) => {
                drop(core);
                self.bind(fd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
                match self.lock()?.entry(fd).ok_or_else(ebadf)?.state {
                    SockState::Udp(h) => Ok(h),
                    _ => Err(errno(libc::EINVAL)),
                }
            }
            _ => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    fn sendto_inner(&self, fd: Fd, buf: &[u8], addr: Option<SocketAddrV4>) -> io::Result<usize> {
        let h = self.udp_handle(fd)?;
        let mut core = self.lock()?;
        let now = Instant::now();
        let Core { iface, tx, .. } = &mut *core;
        let n = iface
            .udp_send_to(now, h, buf, addr, tx)
            .map_err(io::Error::from)?;
        self.shared().kick(&core);
        Ok(n)
    }

    /// recvfrom(2) for UDP sockets: one datagram (truncated to `buf`, as
    /// Linux does) and its sender.
    pub fn recvfrom(&self, fd: Fd, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let h = self.udp_handle(fd)?;
        let mut core = self.lock()?;
        let (deadline, nonblocking) = {
            let e = core.entry(fd).ok_or_else(ebadf)?;
            (
                e.opts.rcvtimeo.map(|t| Instant::now() + t),
                e.opts.nonblocking,
            )
        };
        loop {
            match core.iface.udp_recv_from(h, buf) {
                Ok((n, from)) => return Ok((n.min(buf.len()), from)),
                Err(SocketError::WouldBlock) if nonblocking => return Err(errno(libc::EAGAIN)),
                Err(SocketError::WouldBlock) => core = self.wait(core, fd, deadline)?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// shutdown(2).
    pub fn shutdown(&self, fd: Fd, how: Shutdown) -> io::Result<()> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let SockState::Stream(h) = e.state else {
            return Err(errno(libc::ENOTCONN));
        };
        let (read, write) = match how {
            Shutdown::Read => (true, false),
            Shutdown::Write => (false, true),
            Shutdown::Both => (true, true),
        };
        let mut core = core;
        core.iface
            .tcp_shutdown(h, read, write)
            .map_err(io::Error::from)?;
        if let Some(en) = core.entry(fd) {
            en.notify();
        }
        self.shared().kick(&core);
        Ok(())
    }

    /// close(2). Graceful by default (queued data is delivered, then FIN);
    /// SO_LINGER 0 resets; SO_LINGER t > 0 waits up to t for delivery.
    pub fn close(&self, fd: Fd) -> io::Result<()> {
        let mut core = self.shared().lock();
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        let linger = e.opts.linger;
        let state = e.state;
        if let (Some(t), SockState::Stream(h)) = (linger, state)
            && !t.is_zero()
        {
            // Linger: keep the descriptor (closing) until the data is
            // acknowledged or the time is up.
            e.closing = true;
            if let Some(c) = core.iface.tcp_mut(h) {
                c.shutdown_write();
            }
            core.iface.tcp_touch_public(h);
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
            SockState::Udp(h) => core.iface.udp_socket(h).map_or(any, |s| s.local_addr()),
            _ => e.bound.unwrap_or(any),
        })
    }

    /// getpeername(2).
    pub fn getpeername(&self, fd: Fd) -> io::Result<SocketAddrV4> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match e.state {
            SockState::Stream(h) => core
                .iface
                .tcp(h)
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

    /// setsockopt(2) (and fcntl O_NONBLOCK).
    pub fn setsockopt(&self, fd: Fd, opt: SockOpt) -> io::Result<()> {
        let mut core = self.lock()?;
        let now = Instant::now();
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        match &opt {
            SockOpt::ReuseAddr(v) => e.opts.reuseaddr = *v,
            SockOpt::RcvBuf(v) => e.opts.rcvbuf = Some((*v).max(2048)),
            SockOpt::SndBuf(v) => e.opts.sndbuf = Some((*v).max(2048)),
            SockOpt::RcvTimeo(v) => e.opts.rcvtimeo = v.filter(|d| !d.is_zero()),
            SockOpt::SndTimeo(v) => e.opts.sndtimeo = v.filter(|d| !d.is_zero()),
            SockOpt::KeepAlive(v) => e.opts.keepalive = *v,
            SockOpt::Linger(v) => e.opts.linger = *v,
            SockOpt::NoDelay(v) => e.opts.nodelay = *v,
            SockOpt::NonBlocking(v) => e.opts.nonblocking = *v,
            SockOpt::Congestion(a) => e.opts.congestion = Some(*a),
            SockOpt::Ttl(t) => {
                if *t == 0 {
                    return Err(errno(libc::EINVAL));
                }
                e.opts.ttl = Some(*t)
            }
            SockOpt::OobInline(on) => {
                if !on {
                    return Err(errno(libc::EINVAL));
                }
            }
        }
        let opts = e.opts.clone();
        match e.state {
            SockState::Stream(h) => {
                if let Some(c) = core.iface.tcp_mut(h) {
                    match opt {
                        SockOpt::Congestion(_) if c.is_established() => {
                            // Like Linux, a running connection may switch;
                            // the new algorithm starts from the current
                            // window's initial state.
                            apply_conn_options(c, &opts, now);
                        }
                        _ => apply_conn_options(c, &opts, now),
                    }
                }
                core.iface.tcp_touch_public(h);
                self.shared().kick(&core);
            }
            SockState::Listening(lh) => {
                if let Some(l) = core.iface.tcp_listener_mut(lh) {
                    apply_tcp_config(l.config_mut(), &opts);
                }
            }
            SockState::Udp(h) => {
                if let Some(s) = core.iface.udp_socket_mut(h) {
                    if let Some(b) = opts.rcvbuf {
                        s.set_recv_buffer_size(b);
                    }
                    s.set_ttl(opts.ttl);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// getsockopt(2).
    pub fn getsockopt(&self, fd: Fd, name: SockOptName) -> io::Result<SockOptValue> {
        let mut core = self.lock()?;
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        let o = &e.opts;
        let state = e.state;
        let opt = |v| Ok(SockOptValue::Opt(v));
        match name {
            SockOptName::ReuseAddr => opt(SockOpt::ReuseAddr(o.reuseaddr)),
            SockOptName::RcvTimeo => opt(SockOpt::RcvTimeo(o.rcvtimeo)),
            SockOptName::SndTimeo => opt(SockOpt::SndTimeo(o.sndtimeo)),
            SockOptName::KeepAlive => opt(SockOpt::KeepAlive(o.keepalive)),
            SockOptName::Linger => opt(SockOpt::Linger(o.linger)),
            SockOptName::NoDelay => opt(SockOpt::NoDelay(o.nodelay)),
            SockOptName::NonBlocking => opt(SockOpt::NonBlocking(o.nonblocking)),
            SockOptName::Ttl => opt(SockOpt::Ttl(o.ttl.unwrap_or(64))),
            SockOptName::OobInline => opt(SockOpt::OobInline(true)),
            SockOptName::Congestion => {
                let algo = match state {
                    SockState::Stream(h) => core.iface.tcp(h).map(|c| c.config().congestion),
                    _ => None,
                };
                let default = core.iface.tcp_config().congestion;
                let e = core.entry(fd).ok_or_else(ebadf)?;
                opt(SockOpt::Congestion(
                    algo.or(e.opts.congestion).unwrap_or(default),
                ))
            }
            SockOptName::RcvBuf => {
                let v = match state {
                    SockState::Stream(h) => core.iface.tcp(h).map(|c| c.config().recv_buffer),
                    SockState::Udp(h) => core.iface.udp_socket(h).map(|s| s.recv_buffer_size()),
                    _ => None,
                };
                let default = core.iface.tcp_config().recv_buffer;
                let e = core.entry(fd).ok_or_else(ebadf)?;
                opt(SockOpt::RcvBuf(v.or(e.opts.rcvbuf).unwrap_or(default)))
            }
            SockOptName::SndBuf => {
                let v = match state {
                    SockState::Stream(h) => core.iface.tcp(h).map(|c| c.config().send_buffer),
                    _ => None,
                };
                let default = core.iface.tcp_config().send_buffer;
                let e = core.entry(fd).ok_or_else(ebadf)?;
                opt(SockOpt::SndBuf(v.or(e.opts.sndbuf).unwrap_or(default)))
            }
            SockOptName::Error => {
                let pending = e.error.take();
                let from_conn = match state {
                    SockState::Stream(h) => core
                        .iface
                        .tcp(h)
                        .and_then(|c| c.error())
                        .map(|err| SocketError::from(err).errno()),
                    SockState::Udp(h) => core
                        .iface
                        .udp_socket(h)
                        .and_then(|s| s.pending_error())
                        .map(|err| err.errno()),
                    _ => None,
                };
                Ok(SockOptValue::Error(pending.or(from_conn)))
            }
            SockOptName::TcpInfo => match state {
                SockState::Stream(h) => core
                    .iface
                    .tcp(h)
                    .map(|c| SockOptValue::TcpInfo(Box::new(c.stats())))
                    .ok_or_else(|| errno(libc::ENOTCONN)),
                _ => Err(errno(libc::ENOPROTOOPT)),
            },
        }
    }

    /// Sets or clears O_NONBLOCK.
    pub fn set_nonblocking(&self, fd: Fd, on: bool) -> io::Result<()> {
        self.setsockopt(fd, SockOpt::NonBlocking(on))
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
        let mut core = self.lock()?;
        let (deadline, nonblocking) = {
            let e = core.entry(fd).ok_or_else(ebadf)?;
            (
                e.opts.rcvtimeo.map(|t| Instant::now() + t),
                e.opts.nonblocking,
            )
        };
        loop {
            let SockState::Icmp(h) = core.entry(fd).ok_or_else(ebadf)?.state else {
                return Err(errno(libc::EOPNOTSUPP));
            };
            if let Some(r) = core.iface.icmp_socket(h).and_then(|s| s.recv()) {
                return Ok(r);
            }
            if nonblocking {
                return Err(errno(libc::EAGAIN));
            }
            core = self.wait(core, fd, deadline)?;
        }
    }
}

/// Maps a connection error to the errno Linux gives: ECONNRESET once, then
/// EPIPE for writes (and end of stream for reads).
fn stream_error(core: &mut Core, fd: Fd, e: SocketError, write: bool) -> io::Error {
    if e == SocketError::ConnectionReset
        && let Some(en) = core.entry_mut(fd)
    {
        if en.reset_reported && write {
            return errno(libc::EPIPE);
        }
        en.reset_reported = true;
    }
    e.into()
}

/// Per-socket options that belong in the TCP configuration a listener
/// hands to its accepted connections.
fn apply_tcp_config(cfg: &mut tcp::TcpConfig, opts: &crate::runtime::Opts) {
    if let Some(b) = opts.rcvbuf {
        cfg.recv_buffer = b;
    }
    if let Some(b) = opts.sndbuf {
        cfg.send_buffer = b;
    }
    cfg.nodelay = opts.nodelay;
    cfg.keepalive = opts.keepalive.then(Keepalive::default);
    if let Some(a) = opts.congestion {
        cfg.congestion = a;
    }
}

/// Applies socket options to a live connection.
fn apply_conn_options(c: &mut tcp::Connection, opts: &crate::runtime::Opts, now: Instant) {
    if let Some(b) = opts.rcvbuf
        && b != c.config().recv_buffer
    {
        c.set_recv_buffer(b);
    }
    if let Some(b) = opts.sndbuf
        && b != c.config().send_buffer
    {
        c.set_send_buffer(b);
    }
    if c.config().nodelay != opts.nodelay {
        c.set_nodelay(opts.nodelay);
    }
    let ka = opts.keepalive.then(Keepalive::default);
    if c.config().keepalive != ka {
        c.set_keepalive(now, ka);
    }
    if let Some(a) = opts.congestion
        && a != c.config().congestion
    {
        c.set_congestion_control(a);
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
        if !core.tcp_port_taken(port, false) {
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
