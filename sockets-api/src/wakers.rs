//! Task wakers kept in the sockets, for async I/O.
//!
//! Each socket keeps the [`Waker`]s of the tasks waiting on it, one list
//! per direction: [`Direction::Read`] (data to read, a datagram, a
//! connection to accept) and [`Direction::Write`] (room to write, a
//! connect that completes). They are woken, and forgotten, from the same
//! single place that wakes blocked calls and pollers
//! ([`Core::notify_fd`](crate::runtime::Core::notify_fd) and the event
//! routing of the stack thread): whenever the readiness of the socket may
//! have changed, the tasks waiting on *that* socket are woken, and no
//! other. Nothing polls and no timer retries: a future that finds its
//! operation would block registers its waker and tries once more (so a
//! change between the failed try and the registration is not lost), then
//! returns `Pending` until the stack wakes it. When the stack stops (asked
//! to, device failure or panic) every waker of every socket is woken, and
//! the retried operation fails with ENETDOWN.
//!
//! A task that polls again with the same waker (checked with
//! [`Waker::will_wake`]) is listed once, so a list holds at most one entry
//! per task waiting on the socket in that direction, and it is emptied at
//! each wake-up: the tasks re-register when they are polled and still
//! have to wait. Usually there is one (tokio's own registration keeps one
//! waker per direction for its `poll_*` methods); several tasks may wait
//! on one socket at once (several `recv_from` on a shared `UdpSocket`)
//! and all are woken. The lists only grow with the application's own
//! tasks, never with what peers send.
//!
//! Wakers are woken under the stack's lock (the one readiness path runs
//! under it): a waker schedules its task, as every executor's does; one
//! that polled the task inline would deadlock.

use std::io;
use std::task::Waker;

use crate::Stack;
use crate::calls::ebadf;
use crate::types::Fd;

/// Which way a task waits on a socket.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable: data, a datagram, a connection to accept, end of stream.
    Read,
    /// Writable: room in the send buffer, the handshake of a connect done.
    Write,
}

/// The wakers of the tasks waiting on one socket.
#[derive(Debug, Default)]
pub(crate) struct TaskWakers {
    read: Vec<Waker>,
    write: Vec<Waker>,
}

impl TaskWakers {
    /// Lists `waker` for `dir`, unless the same task is listed already.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    fn register(&mut self, dir: Direction, waker: &Waker) {
        let list = match dir {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        };
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// True when no task waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }

    /// Wakes, and forgets, every waiting task (the socket's readiness may
    /// have changed, it was closed, or the stack stopped).
    pub(crate) fn wake_all(&mut self) {
        for w in self.read.drain(..).chain(self.write.drain(..)) {
            w.wake();
        }
    }
}

// Used by the async front ends (feature `tokio`).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl Stack {
    /// Registers the current task's waker on `fd` for `dir`. ENETDOWN once
    /// the stack has stopped, EBADF when `fd` is not open.
    pub(crate) fn register_waker(&self, fd: Fd, dir: Direction, waker: &Waker) -> io::Result<()> {
        let mut core = self.lock()?;
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        e.wakers.register(dir, waker);
        Ok(())
    }

    /// The readiness loop of every async operation: runs `op` (a
    /// non-blocking call); when it would block, registers `waker` for
    /// `dir` and runs it once more, so that a readiness change between the
    /// two is not lost; `Pending` when it still would block. The stack
    /// wakes the task when the socket's readiness may have changed.
    pub(crate) fn poll_op<T>(
        &self,
        fd: Fd,
        dir: Direction,
        waker: &Waker,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> std::task::Poll<io::Result<T>> {
        use std::task::Poll;
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        if let Err(e) = self.register_waker(fd, dir, waker) {
            return Poll::Ready(Err(e));
        }
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            r => Poll::Ready(r),
        }
    }
}
