//! poll(2) over many descriptors, with Linux's readiness semantics.

use std::io;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use tcp::State;

use crate::Stack;
use crate::runtime::{Core, SockState, SockType};
use crate::types::{Fd, PollFd, events::*};

/// The readiness of `fd` now.
fn readiness(core: &Core, fd: Fd) -> i16 {
    let Some(e) = core.entry(fd) else {
        return POLLNVAL;
    };
    let mut r = 0;
    if e.error.is_some() {
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
            if let Some(_err) = c.error() {
                // A failed or reset connection: everything fires (Linux:
                // EPOLLERR | EPOLLHUP | EPOLLIN | EPOLLOUT in state CLOSE).
                return r | POLLERR | POLLHUP | POLLIN | POLLOUT;
            }
            match c.state() {
                State::SynSent | State::SynReceived => r,
                State::Closed => r | POLLIN | POLLOUT | POLLHUP,
                _ => {
                    if c.can_recv() {
                        r |= POLLIN;
                    }
                    if c.urgent_pending() {
                        r |= POLLPRI;
                    }
                    if c.peer_closed() {
                        r |= POLLRDHUP | POLLIN;
                    }
                    // Writable: room in the send buffer, or the write side is
                    // shut (a write then fails at once).
                    if c.can_send() {
                        r |= POLLOUT;
                    }
                    // Both directions done.
                    if c.peer_closed()
                        && matches!(c.state(), State::LastAck | State::TimeWait | State::Closing)
                    {
                        r |= POLLHUP;
                    }
                    r
                }
            }
        }
        SockState::Udp(h) => {
            r |= POLLOUT;
            if let Some(s) = core.iface.udp_socket(h) {
                if s.can_recv() {
                    r |= POLLIN;
                }
                if s.pending_error().is_some() {
                    r |= POLLERR;
                }
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
