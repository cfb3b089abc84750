//! poll(2) over many descriptors, with Linux's readiness semantics.

use std::io;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use tcp::State;

use crate::Stack;
use crate::runtime::{Core, SockState, SockType};
use crate::types::{Fd, FdSet, PollFd, events::*};

/// The readiness of `fd` now, as Linux's tcp_poll/udp_poll compute it.
pub(crate) fn readiness(core: &Core, fd: Fd) -> i16 {
    let Some(e) = core.entry(fd) else {
        return POLLNVAL;
    };
    let mut r = 0;
    if core.pending_error(fd).is_some() {
        r |= POLLERR;
    }
    match e.state {
        // An unconnected stream socket is writable and hung up, as on Linux.
        SockState::Fresh if e.ty == SockType::Stream => r | POLLOUT | POLLHUP,
        SockState::Fresh => r | POLLOUT,
        SockState::Listening(lh) => {
            if core.iface.tcp_listener(lh).is_some_and(|l| l.pending() > 0) {
                r |= POLLIN;
            }
            r
        }
        SockState::Stream(h) => {
            let Some(c) = core.iface.tcp(h) else {
                return r | POLLHUP;
            };
            let state = c.state();
            // A connection that ended (reset, refused, timed out, or both
            // FINs done) is shut both ways (tcp_done: SHUTDOWN_MASK).
            let over = state == State::Closed;
            let rd_shut = over || c.peer_closed() || e.shut_rd;
            let wr_shut = over
                || e.shut_wr
                || matches!(
                    state,
                    State::FinWait1
                        | State::FinWait2
                        | State::Closing
                        | State::LastAck
                        | State::TimeWait
                );
            if over || (rd_shut && wr_shut) {
                r |= POLLHUP;
            }
            if rd_shut {
                r |= POLLIN | POLLRDHUP;
            }
            if matches!(state, State::SynSent | State::SynReceived) {
                return r;
            }
            if c.recv_queued() >= e.opts.rcvlowat || (c.recv_queued() > 0 && c.urgent_pending()) {
                r |= POLLIN;
            }
            if c.urgent_pending() {
                r |= POLLPRI;
            }
            // Writable: room in the send buffer, or the write side is shut
            // (a write then fails at once).
            if wr_shut || c.can_send() {
                r |= POLLOUT;
            }
            r
        }
        SockState::Udp(h) => {
            r |= POLLOUT;
            if e.shut_rd {
                r |= POLLIN | POLLRDHUP;
            }
            if e.shut_rd && e.shut_wr {
                r |= POLLHUP;
            }
            if core.iface.udp_socket(h).is_some_and(|s| s.can_recv()) {
                r |= POLLIN;
            }
            r
        }
        SockState::Icmp(h) => {
            r |= POLLOUT;
            // A shared borrow cannot pop replies; peek through the socket.
            if core.iface_icmp_readable(h) {
                r |= POLLIN;
            }
            r
        }
    }
}

impl Core {
    fn iface_icmp_readable(&self, h: stack::IcmpHandle) -> bool {
        self.iface.icmp_readable(h)
    }
}

impl Stack {
    /// poll(2): waits until one of `fds` is ready for its events (POLLERR,
    /// POLLHUP and POLLNVAL are always reported), or `timeout` passes
    /// (`None`: no limit; zero: just look). Returns how many entries have
    /// non-zero `revents`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sockets_api::{PollFd, StackBuilder, TcpListener, TcpStream, events::*};
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Write;
    /// let (server, client) = StackBuilder::memory_pair(
    ///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
    ///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
    /// )?;
    /// let listener = TcpListener::bind(&server, "0.0.0.0:80")?;
    /// let mut fds = [PollFd::new(listener.as_fd(), POLLIN)];
    /// // Nothing to accept yet: a zero timeout just looks.
    /// assert_eq!(server.poll(&mut fds, Some(Duration::ZERO))?, 0);
    ///
    /// let mut stream = TcpStream::connect(&client, "10.0.0.1:80")?;
    /// assert_eq!(server.poll(&mut fds, Some(Duration::from_secs(5)))?, 1);
    /// assert!(fds[0].revents & POLLIN != 0);
    /// let (conn, _) = listener.accept()?;
    ///
    /// stream.write_all(b"x")?;
    /// let mut fds = [PollFd::new(conn.as_fd(), POLLIN | POLLOUT)];
    /// server.poll(&mut fds, None)?;
    /// assert!(fds[0].revents & POLLOUT != 0);
    /// # Ok(()) }
    /// ```
    pub fn poll(&self, fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut core = self.lock()?;
        let mut waiter: Option<Arc<Condvar>> = None;
        loop {
            let mut ready = 0;
            for p in fds.iter_mut() {
                let r = readiness(&core, p.fd);
                p.revents = r & (p.events | POLLERR | POLLHUP | POLLNVAL);
                if p.revents != 0 {
                    ready += 1;
                }
            }
            if ready > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                break Ok(ready);
            }
            if core.stopped {
                break Err(crate::calls::errno(libc::ENETDOWN));
            }
            // Register on every socket, sleep, look again.
            let w = waiter
                .get_or_insert_with(|| Arc::new(Condvar::new()))
                .clone();
            for p in fds.iter() {
                if let Some(e) = core.entry_any_mut(p.fd) {
                    e.pollers.push(w.clone());
                }
            }
            core = match deadline {
                None => w.wait(core).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    w.wait_timeout(core, d.saturating_duration_since(Instant::now()))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            for p in fds.iter() {
                if let Some(e) = core.entry_any_mut(p.fd) {
                    e.pollers.retain(|x| !Arc::ptr_eq(x, &w));
                }
            }
        }
    }
}

impl Stack {
    /// select(2) over [`FdSet`]s: waits until a descriptor of `read` is
    /// readable (POLLIN, or hung up or failed), one of `write` writable
    /// (POLLOUT, or failed) or one of `except` has urgent data (POLLPRI),
    /// or `timeout` passes. On return each set holds only its ready
    /// descriptors; the result is their total count. EBADF when a set names
    /// a descriptor that is not open.
    pub fn select(
        &self,
        read: &mut FdSet,
        write: &mut FdSet,
        except: &mut FdSet,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let all: std::collections::BTreeSet<Fd> = read
            .iter()
            .chain(write.iter())
            .chain(except.iter())
            .collect();
        let mut fds: Vec<PollFd> = Vec::with_capacity(all.len());
        for fd in all {
            let mut events = 0;
            if read.contains(fd) {
                events |= POLLIN;
            }
            if write.contains(fd) {
                events |= POLLOUT;
            }
            if except.contains(fd) {
                events |= POLLPRI;
            }
            fds.push(PollFd::new(fd, events));
        }
        self.poll(&mut fds, timeout)?;
        if fds.iter().any(|p| p.revents & POLLNVAL != 0) {
            return Err(crate::calls::errno(libc::EBADF));
        }
        let mut count = 0;
        for p in &fds {
            // fs/select.c: POLLIN_SET includes HUP and ERR, POLLOUT_SET
            // includes ERR, POLLEX_SET is PRI.
            let keep = |set: &mut FdSet, ready: bool, count: &mut usize| {
                if set.contains(p.fd) {
                    if ready {
                        *count += 1;
                    } else {
                        set.remove(p.fd);
                    }
                }
            };
            let r = p.revents;
            keep(read, r & (POLLIN | POLLHUP | POLLERR) != 0, &mut count);
            keep(write, r & (POLLOUT | POLLERR) != 0, &mut count);
            keep(except, r & POLLPRI != 0, &mut count);
        }
        Ok(count)
    }
}
