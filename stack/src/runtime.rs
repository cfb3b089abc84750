//! What an event loop needs from the stack crate: a [`Waker`] that other
//! threads (and signal handlers) use to wake it or stop it. The loop itself
//! is the socket library's (`sockets-api`'s runtime): one thread owns the
//! interface and the device, sleeps in epoll on the device descriptor and
//! the waker, and wakes for the earliest protocol deadline.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::EventFd;

/// Wakes the event loop from another thread or a signal handler, and asks it
/// to stop.
#[derive(Debug)]
pub struct Waker {
    fd: EventFd,
    stop: AtomicBool,
}

impl Waker {
    /// A new waker.
    pub fn new() -> io::Result<Waker> {
        Ok(Waker {
            fd: EventFd::new()?,
            stop: AtomicBool::new(false),
        })
    }

    /// Makes the loop run an iteration soon. Async-signal-safe.
    pub fn wake(&self) {
        self.fd.notify();
    }

    /// Asks the loop to return. Async-signal-safe.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.fd.notify();
    }

    /// True once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Resets the wake-up descriptor after the loop woke.
    pub fn drain(&self) {
        self.fd.drain();
    }

    /// The descriptor an event loop waits on.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
