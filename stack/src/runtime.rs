//! The event loop: one thread owns the interface and the device, sleeps in
//! epoll on the device descriptor and a wake-up eventfd, and wakes for the
//! earliest protocol deadline.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::device::Device;
use crate::iface::Interface;
use crate::sys::{Epoll, EventFd};

/// Frames read from the device before timers and applications get a turn.
const RX_BATCH: usize = 64;

const TOKEN_DEVICE: u64 = 0;
const TOKEN_WAKER: u64 = 1;

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

    pub(crate) fn drain(&self) {
        self.fd.drain();
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Runs `iface` on `dev` until `waker` is stopped or the device fails.
///
/// `app` runs once per iteration, after received frames are processed and
/// before timers: programs use it to drive their services.
pub fn run<D: Device>(
    iface: &mut Interface,
    dev: &mut D,
    waker: &Waker,
    mut app: impl FnMut(&mut Interface, Instant, &mut D),
) -> io::Result<()> {
    let mut epoll = Epoll::new()?;
    if let Some(fd) = dev.raw_fd() {
        epoll.add_readable(fd, TOKEN_DEVICE)?;
    }
    epoll.add_readable(waker.raw_fd(), TOKEN_WAKER)?;
    let mut buf = vec![0u8; 14 + 65_536];
    while !waker.is_stopped() {
        let now = Instant::now();
        let mut received = 0;
        while received < RX_BATCH {
            match dev.recv(now, &mut buf)? {
                Some(n) => {
                    iface.receive_frame(now, &buf[..n], dev);
                    received += 1;
                }
                None => break,
            }
        }
        app(iface, now, dev);
        iface.poll(now, dev);
        let timeout = if received == RX_BATCH {
            // More frames may be waiting: look again without sleeping.
            Some(std::time::Duration::ZERO)
        } else {
            [iface.poll_at(), dev.poll_at()]
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.saturating_duration_since(Instant::now()))
        };
        epoll.wait(timeout, |token| {
            if token == TOKEN_WAKER {
                waker.drain();
            }
        })?;
    }
    dev.flush()
}
