//! Moving data: send/recv and their datagram, scatter/gather and message
//! forms, with Linux's rules for errors, end of stream and SO_RCVLOWAT.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::MutexGuard;
use std::time::Instant;

use stack::SocketError;
use tcp::State;

use crate::Stack;
use crate::calls::{ebadf, errno};
use crate::runtime::{Core, SockState, SockType};
use crate::types::{Fd, RecvMsg};

/// The send(2) flags ustack understands.
const SEND_FLAGS: i32 = libc::MSG_OOB | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
/// The recv(2) flags ustack understands.
const RECV_FLAGS: i32 =
    libc::MSG_DONTWAIT | libc::MSG_TRUNC | libc::MSG_PEEK | libc::MSG_WAITALL | libc::MSG_OOB;

/// Largest datagram gathered on the stack before falling back to the heap.
const GATHER_INLINE: usize = 2048;

impl Stack {
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
    ///
    /// As on Linux, a stream that is not connected (never connected,
    /// listening, reset after the peer's FIN, or shut for writing) fails
    /// with EPIPE once its pending error, if any, has been reported; a
    /// stream still connecting waits for the handshake (EAGAIN when
    /// non-blocking).
    pub fn send_flags(&self, fd: Fd, buf: &[u8], flags: i32) -> io::Result<usize> {
        if flags & !SEND_FLAGS != 0 {
            return Err(errno(libc::EOPNOTSUPP));
        }
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        if flags & libc::MSG_OOB != 0 && e.ty != SockType::Stream {
            return Err(errno(libc::EOPNOTSUPP));
        }
        match (e.ty, e.state) {
            (SockType::Stream, SockState::Stream(h)) => self.stream_send(core, fd, h, buf, flags),
            (SockType::Stream, _) => Err(errno(libc::EPIPE)),
            (SockType::Dgram, _) => {
                drop(core);
                self.sendto_inner(fd, buf, None)
            }
            (SockType::Icmp, _) => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    fn stream_send(
        &self,
        core: MutexGuard<'_, Core>,
        fd: Fd,
        h: stack::TcpHandle,
        buf: &[u8],
        flags: i32,
    ) -> io::Result<usize> {
        let urgent = flags & libc::MSG_OOB != 0;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let deadline = e.opts.sndtimeo.map(|t| Instant::now() + t);
        let nonblocking = e.opts.nonblocking || flags & libc::MSG_DONTWAIT != 0;
        let mut sent = 0;
        self.block_on(core, fd, nonblocking, deadline, |core, last| {
            if last {
                // Out of time (or not allowed to wait): what was queued.
                if urgent && sent > 0 {
                    core.iface.tcp_mark_urgent(h);
                }
                return Ok((sent > 0).then_some(sent));
            }
            let state = core.iface.tcp(h).map(|c| c.state());
            // Linux (sk_stream_wait_connect): data waits for the handshake.
            if matches!(state, Some(State::SynSent | State::SynReceived)) {
                return match core.take_error(fd) {
                    Some(err) => Err(errno(err)),
                    None => Ok(None),
                };
            }
            loop {
                match core.iface.tcp_send(h, &buf[sent..]) {
                    Ok(n) => {
                        sent += n;
                        if sent == buf.len() {
                            if urgent {
                                core.iface.tcp_mark_urgent(h);
                            }
                            self.shared().kick(core);
                            return Ok(Some(sent));
                        }
                    }
                    Err(SocketError::WouldBlock) => {
                        self.shared().kick(core);
                        return Ok(None);
                    }
                    Err(_) if sent > 0 => return Ok(Some(sent)),
                    // sk_stream_error: the pending error once, then EPIPE.
                    Err(e) => {
                        return Err(match core.take_error(fd) {
                            Some(err) => errno(err),
                            None if e == SocketError::NoBufferSpace => e.into(),
                            None => errno(libc::EPIPE),
                        });
                    }
                }
            }
        })
    }

    /// recv(2). `Ok(0)` is end of stream on a stream socket.
    pub fn recv(&self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(fd, buf, 0)
    }

    /// recv(2) with flags: `MSG_DONTWAIT` (non-blocking for this call),
    /// `MSG_PEEK` (look without consuming), `MSG_TRUNC` (datagrams:
    /// return the datagram's real length even when `buf` is shorter;
    /// streams: discard up to `buf.len()` bytes without copying them, as
    /// Linux does), `MSG_WAITALL` (streams: wait until `buf` is full,
    /// returning less only at end of stream, on an error, which then stays
    /// pending for the next call, or when SO_RCVTIMEO or `MSG_DONTWAIT`
    /// stops the wait; datagrams ignore it), `MSG_OOB` (streams: EINVAL,
    /// since urgent data is always in line, SO_OOBINLINE, as Linux answers
    /// with SO_OOBINLINE set; datagrams ignore it). Other flags fail with
    /// EOPNOTSUPP.
    ///
    /// A stream reports, in Linux's order: queued data (at least SO_RCVLOWAT
    /// bytes, or what there is at end of stream or timeout), end of stream
    /// after the peer's FIN, the pending error once, then end of stream
    /// (after a reset, or after shutdown(SHUT_RD)); a stream that was never
    /// connected fails with ENOTCONN.
    pub fn recv_flags(&self, fd: Fd, buf: &mut [u8], flags: i32) -> io::Result<usize> {
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.ty, e.state) {
            (SockType::Stream, SockState::Stream(h)) => self.stream_recv(core, fd, h, buf, flags),
            // tcp_recvmsg_locked: a listener is ENOTCONN before anything;
            // tcp_recv_urg answers EINVAL with SO_OOBINLINE.
            (SockType::Stream, SockState::Fresh) if flags & libc::MSG_OOB != 0 => {
                Err(errno(libc::EINVAL))
            }
            (SockType::Stream, _) => Err(errno(libc::ENOTCONN)),
            (SockType::Dgram, _) => {
                drop(core);
                self.recvfrom_flags(fd, buf, flags).map(|(n, _)| n)
            }
            (SockType::Icmp, _) => Err(errno(libc::EOPNOTSUPP)),
        }
    }

    fn stream_recv(
        &self,
        core: MutexGuard<'_, Core>,
        fd: Fd,
        h: stack::TcpHandle,
        buf: &mut [u8],
        flags: i32,
    ) -> io::Result<usize> {
        if flags & !RECV_FLAGS != 0 {
            return Err(errno(libc::EOPNOTSUPP));
        }
        if flags & libc::MSG_OOB != 0 {
            // tcp_recv_urg: "if (sock_flag(sk, SOCK_URGINLINE) ...) return
            // -EINVAL"; ustack keeps urgent data in line (RFC 6093).
            return Err(errno(libc::EINVAL));
        }
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let timeout = e.opts.rcvtimeo;
        let nonblocking = e.opts.nonblocking || flags & libc::MSG_DONTWAIT != 0;
        let waitall = flags & libc::MSG_WAITALL != 0;
        // sock_rcvlowat: MSG_WAITALL makes the whole buffer the target.
        let target = if waitall {
            buf.len().max(1)
        } else {
            e.opts.rcvlowat.clamp(1, buf.len().max(1))
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        if waitall && flags & libc::MSG_PEEK == 0 {
            return self.stream_recv_all(core, fd, h, buf, flags, nonblocking, deadline);
        }
        // On the last try (non-blocking, or SO_RCVTIMEO passed) what
        // arrived below SO_RCVLOWAT is still returned: tcp_recvmsg returns
        // what it copied.
        self.block_on(core, fd, nonblocking, deadline, |core, last| {
            let n = stream_recv_once(core, fd, h, buf, flags, target, last)?;
            if n.is_some() {
                self.shared().kick(core);
            }
            Ok(n)
        })
    }

    /// MSG_WAITALL: copies what arrives until `buf` is full, so a buffer
    /// larger than the receive window still fills. As tcp_recvmsg, it stops
    /// early at end of stream, when an error is pending (left for the next
    /// call once something was copied), or when the wait is cut short
    /// (SO_RCVTIMEO, MSG_DONTWAIT, a non-blocking socket).
    #[allow(clippy::too_many_arguments)]
    fn stream_recv_all(
        &self,
        core: MutexGuard<'_, Core>,
        fd: Fd,
        h: stack::TcpHandle,
        buf: &mut [u8],
        flags: i32,
        nonblocking: bool,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        let flags = flags & !libc::MSG_WAITALL;
        let mut copied = 0;
        self.block_on(core, fd, nonblocking, deadline, |core, last| {
            loop {
                if copied == buf.len() {
                    return Ok(Some(copied));
                }
                if copied > 0 && stream_finished(core, fd, h) {
                    return Ok(Some(copied));
                }
                match stream_recv_once(core, fd, h, &mut buf[copied..], flags, 1, last)? {
                    Some(0) => return Ok(Some(copied)),
                    Some(n) => {
                        copied += n;
                        // The window opened: let the stack tell the peer.
                        self.shared().kick(core);
                    }
                    None if last && copied > 0 => return Ok(Some(copied)),
                    None => return Ok(None),
                }
            }
        })
    }

    /// sendto(2) for UDP sockets (an unbound socket gets an ephemeral
    /// port); on a stream the address is ignored, as Linux does.
    pub fn sendto(&self, fd: Fd, buf: &[u8], addr: SocketAddrV4) -> io::Result<usize> {
        let ty = self.lock()?.entry(fd).ok_or_else(ebadf)?.ty;
        match ty {
            SockType::Stream => self.send(fd, buf),
            _ => self.sendto_inner(fd, buf, Some(addr)),
        }
    }

    pub(crate) fn sendto_inner(
        &self,
        fd: Fd,
        buf: &[u8],
        addr: Option<SocketAddrV4>,
    ) -> io::Result<usize> {
        let h = self.udp_handle(fd)?;
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let broadcast_ok = e.opts.broadcast;
        let dst = match addr {
            Some(a) => Some(a),
            None => core.iface.udp_socket(h).and_then(|s| s.peer_addr()),
        };
        // Linux (ip_route_output / udp_sendmsg): EACCES for a broadcast
        // destination unless SO_BROADCAST is set.
        if let Some(d) = dst
            && !broadcast_ok
            && core.is_broadcast(*d.ip())
        {
            return Err(errno(libc::EACCES));
        }
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
        self.recvfrom_flags(fd, buf, 0)
    }

    /// recvfrom(2) with flags (`MSG_DONTWAIT`, `MSG_TRUNC`: the length
    /// returned is the datagram's, not what fit). On a stream the address
    /// is the peer's.
    pub fn recvfrom_flags(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: i32,
    ) -> io::Result<(usize, SocketAddrV4)> {
        self.recv_datagram(fd, buf, flags)
            .map(|(n, from, _)| (n, from))
    }

    /// One datagram into `buf`: (length reported, sender, truncated).
    fn recv_datagram(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: i32,
    ) -> io::Result<(usize, SocketAddrV4, bool)> {
        // udp_recvmsg ignores MSG_WAITALL and MSG_OOB.
        if flags & !RECV_FLAGS != 0 {
            return Err(errno(libc::EOPNOTSUPP));
        }
        let ty = self.lock()?.entry(fd).ok_or_else(ebadf)?.ty;
        if ty == SockType::Stream {
            let n = self.recv_flags(fd, buf, flags)?;
            let peer = self
                .getpeername(fd)
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
            return Ok((n, peer, false));
        }
        let h = self.udp_handle(fd)?;
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let deadline = e.opts.rcvtimeo.map(|t| Instant::now() + t);
        let nonblocking = e.opts.nonblocking || flags & libc::MSG_DONTWAIT != 0;
        let peek = flags & libc::MSG_PEEK != 0;
        self.block_on(core, fd, nonblocking, deadline, |core, _| {
            let got = if peek {
                core.iface.udp_peek_from(h, buf)
            } else {
                core.iface.udp_recv_from(h, buf)
            };
            match got {
                Ok((n, from)) => {
                    let reported = if flags & libc::MSG_TRUNC != 0 {
                        n
                    } else {
                        n.min(buf.len())
                    };
                    Ok(Some((reported, from, n > buf.len())))
                }
                // udp_recvmsg after shutdown(SHUT_RD): end of data.
                Err(SocketError::WouldBlock) if core.entry(fd).is_some_and(|e| e.shut_rd) => Ok(
                    Some((0, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), false)),
                ),
                Err(SocketError::WouldBlock) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// writev(2): the buffers in order, as one send (one datagram on UDP).
    pub fn writev(&self, fd: Fd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.sendmsg(fd, bufs, None, 0)
    }

    /// readv(2): fills the buffers in order (one datagram on UDP).
    pub fn readv(&self, fd: Fd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.recvmsg(fd, bufs, 0).map(|m| m.len)
    }

    /// sendmsg(2) for plain data: the buffers gathered in order, to `addr`
    /// on an unconnected datagram socket, with send(2)'s flags.
    pub fn sendmsg(
        &self,
        fd: Fd,
        bufs: &[IoSlice<'_>],
        addr: Option<SocketAddrV4>,
        flags: i32,
    ) -> io::Result<usize> {
        let ty = self.lock()?.entry(fd).ok_or_else(ebadf)?.ty;
        if ty == SockType::Stream {
            // A stream takes the buffers one after the other; a short
            // write ends the call, as writev does.
            let mut total = 0;
            for b in bufs.iter().filter(|b| !b.is_empty()) {
                let n = match self.send_flags(fd, b, flags) {
                    Ok(n) => n,
                    Err(e) if total > 0 && e.raw_os_error() == Some(libc::EAGAIN) => break,
                    Err(e) if total > 0 && e.raw_os_error() == Some(libc::EPIPE) => break,
                    Err(e) => return Err(e),
                };
                total += n;
                if n < b.len() {
                    break;
                }
            }
            return Ok(total);
        }
        if flags & !(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) != 0 {
            return Err(errno(libc::EOPNOTSUPP));
        }
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let mut inline = [0u8; GATHER_INLINE];
        let mut heap = Vec::new();
        let datagram: &mut [u8] = if len <= GATHER_INLINE {
            &mut inline[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let mut at = 0;
        for b in bufs {
            datagram[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
        self.sendto_inner(fd, datagram, addr)
    }

    /// recvmsg(2) for plain data: scatters what one recv returns over the
    /// buffers; reports the sender and whether a datagram was truncated
    /// (MSG_TRUNC in msg_flags). `MSG_TRUNC` in `flags` makes the length
    /// the datagram's.
    pub fn recvmsg(&self, fd: Fd, bufs: &mut [IoSliceMut<'_>], flags: i32) -> io::Result<RecvMsg> {
        let cap: usize = bufs.iter().map(|b| b.len()).sum();
        let ty = self.lock()?.entry(fd).ok_or_else(ebadf)?.ty;
        if ty == SockType::Stream && flags & (libc::MSG_PEEK | libc::MSG_TRUNC) == 0 {
            return self.stream_readv(fd, bufs, flags);
        }
        let mut inline = [0u8; GATHER_INLINE];
        let mut heap = Vec::new();
        let tmp: &mut [u8] = if cap <= GATHER_INLINE {
            &mut inline[..cap]
        } else {
            heap.resize(cap, 0);
            &mut heap
        };
        let (n, from, truncated) = if ty == SockType::Stream {
            let n = self.recv_flags(fd, tmp, flags)?;
            (n, None, false)
        } else {
            let (n, from, t) = self.recv_datagram(fd, tmp, flags)?;
            (n, Some(from), t)
        };
        let mut left = &tmp[..n.min(cap)];
        for b in bufs.iter_mut() {
            if left.is_empty() {
                break;
            }
            let k = b.len().min(left.len());
            b[..k].copy_from_slice(&left[..k]);
            left = &left[k..];
        }
        Ok(RecvMsg {
            len: n,
            addr: from,
            truncated,
        })
    }

    /// readv on a stream, straight into the buffers (no bounce buffer): the
    /// first read waits as recv would, the next ones take only what is
    /// already queued, and stop before a read that would report end of
    /// stream or an error (that stays for the next call).
    fn stream_readv(&self, fd: Fd, bufs: &mut [IoSliceMut<'_>], flags: i32) -> io::Result<RecvMsg> {
        let mut total = 0;
        // MSG_WAITALL waits for every buffer to fill, not just the first.
        let waitall = flags & libc::MSG_WAITALL != 0;
        for b in bufs.iter_mut().filter(|b| !b.is_empty()) {
            if total > 0 && !waitall && self.ioctl(fd, crate::types::Ioctl::FionRead)? == 0 {
                break;
            }
            if total > 0 && waitall {
                let mut core = self.lock()?;
                let finished = match core.entry(fd).ok_or_else(ebadf)?.state {
                    SockState::Stream(h) => stream_finished(&mut core, fd, h),
                    _ => true,
                };
                if finished {
                    break;
                }
            }
            let more = if total == 0 || waitall {
                flags
            } else {
                flags | libc::MSG_DONTWAIT
            };
            let n = self.recv_flags(fd, b, more)?;
            total += n;
            if n < b.len() {
                break;
            }
        }
        Ok(RecvMsg {
            len: total,
            addr: None,
            truncated: false,
        })
    }

    /// The UDP handle behind `fd`, binding an unbound socket to an
    /// ephemeral port first.
    pub(crate) fn udp_handle(&self, fd: Fd) -> io::Result<stack::UdpHandle> {
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
}

/// Nothing is queued and nothing more will come for now: end of stream,
/// a pending error, shutdown(SHUT_RD) or a closed connection (a
/// MSG_WAITALL read that copied something returns it then).
fn stream_finished(core: &mut Core, fd: Fd, h: stack::TcpHandle) -> bool {
    let shut_rd = core.entry(fd).is_none_or(|e| e.shut_rd);
    let Some(c) = core.iface.tcp(h) else {
        return true;
    };
    c.recv_queued() == 0
        && (c.peer_closed()
            || shut_rd
            || c.state() == State::Closed
            || core.pending_error(fd).is_some())
}

/// One attempt at a stream read: `Some(n)` is the answer, `None` means
/// wait. `timed_out`: SO_RCVTIMEO passed, return whatever is queued.
fn stream_recv_once(
    core: &mut Core,
    fd: Fd,
    h: stack::TcpHandle,
    buf: &mut [u8],
    flags: i32,
    target: usize,
    timed_out: bool,
) -> io::Result<Option<usize>> {
    let shut_rd = core.entry(fd).ok_or_else(ebadf)?.shut_rd;
    let Some(c) = core.iface.tcp(h) else {
        return Err(errno(libc::ENOTCONN));
    };
    let queued = c.recv_queued();
    let state = c.state();
    let done = c.peer_closed() || shut_rd || state == State::Closed;
    if queued > 0 && (queued >= target || done || timed_out || c.urgent_pending()) {
        if buf.is_empty() {
            return Ok(Some(0));
        }
        if flags & libc::MSG_PEEK != 0 {
            let (a, b) = c.peek();
            let n = (a.len() + b.len()).min(buf.len());
            let k = a.len().min(n);
            buf[..k].copy_from_slice(&a[..k]);
            buf[k..n].copy_from_slice(&b[..n - k]);
            return Ok(Some(n));
        }
        if flags & libc::MSG_TRUNC != 0 {
            let (a, b) = c.peek();
            let n = (a.len() + b.len()).min(buf.len());
            core.iface.tcp_with(h, |c| c.consume(n));
            return Ok(Some(n));
        }
        return match core.iface.tcp_recv(h, buf) {
            Ok(n) => Ok(Some(n)),
            Err(SocketError::WouldBlock) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    if queued > 0 {
        return Ok(None); // below SO_RCVLOWAT
    }
    // tcp_recvmsg's order: SOCK_DONE (the peer's FIN), the pending error,
    // RCV_SHUTDOWN (our SHUT_RD, or a connection that ended), never
    // connected.
    if c.peer_closed() {
        return Ok(Some(0));
    }
    if let Some(err) = core.take_error(fd) {
        return Err(errno(err));
    }
    if shut_rd {
        return Ok(Some(0));
    }
    let c = core.iface.tcp(h).ok_or_else(|| errno(libc::ENOTCONN))?;
    match state {
        State::Closed if c.error().is_some() => Ok(Some(0)),
        State::Closed | State::Listen => Err(errno(libc::ENOTCONN)),
        _ => Ok(None),
    }
}
