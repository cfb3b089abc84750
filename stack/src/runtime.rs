//! The event loop: one thread owns the interface and the device, sleeps in
//! epoll on the device descriptor and a wake-up eventfd, and wakes for the
//! earliest protocol deadline.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

    /// Resets the wake-up descriptor after the loop woke.
    pub fn drain(&self) {
        self.fd.drain();
    }

    /// The descriptor an event loop waits on.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// How the event loop behaves.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// After a round that did work, keep checking the device for this long
    /// before sleeping in epoll. Waking a sleeping thread costs tens of
    /// microseconds on virtual machines; a short busy-poll (like Linux's
    /// `net.core.busy_poll`) removes that from request/response latency at
    /// the price of that much CPU after each burst. Zero disables it.
    pub busy_poll: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            busy_poll: Duration::from_micros(50),
        }
    }
}

/// Runs `iface` on `dev` until `waker` is stopped or the device fails.
///
/// `app` runs once per iteration, after received frames are processed and
/// before the interface transmits: programs use it to drive their services,
/// so their replies leave in the same frames as the acknowledgments.
pub fn run<D: Device>(
    iface: &mut Interface,
    dev: &mut D,
    waker: &Waker,
    app: impl FnMut(&mut Interface, Instant, &mut D),
) -> io::Result<()> {
    run_with(iface, dev, waker, RunOptions::default(), app)
}

/// [`run`] with explicit options.
pub fn run_with<D: Device>(
    iface: &mut Interface,
    dev: &mut D,
    waker: &Waker,
    options: RunOptions,
    mut app: impl FnMut(&mut Interface, Instant, &mut D),
) -> io::Result<()> {
    let mut epoll = Epoll::new()?;
    if let Some(fd) = dev.raw_fd() {
        epoll.add_readable(fd, TOKEN_DEVICE)?;
    }
    epoll.add_readable(waker.raw_fd(), TOKEN_WAKER)?;
    let mut buf = vec![0u8; dev.max_frame_len()];
    iface.set_segmentation_offload(dev.segmentation_offload());
    let mut spin_until: Option<Instant> = None;
    while !waker.is_stopped() {
        let now = Instant::now();
        let mut received = 0;
        while received < RX_BATCH {
            match dev.recv(now, &mut buf)? {
                Some(n) => {
                    let trusted = dev.rx_checksum_trusted();
                    iface.receive_frame_from(now, &buf[..n], trusted, dev);
                    received += 1;
                }
                None => break,
            }
        }
        app(iface, now, dev);
        iface.poll(now, dev);
        if received > 0 {
            spin_until = Some(now + options.busy_poll);
        }
        let deadline = [iface.poll_at(), dev.poll_at()].into_iter().flatten().min();
        let after = Instant::now();
        if received == RX_BATCH || deadline.is_some_and(|d| d <= after) {
            // More frames may be waiting, or work is due: go round again.
            continue;
        }
        if spin_until.is_some_and(|t| after < t) {
            // Busy-poll: look at the device again without sleeping.
            std::hint::spin_loop();
            continue;
        }
        spin_until = None;
        let timeout = deadline.map(|t| t.saturating_duration_since(after));
        epoll.wait(timeout, |token| {
            if token == TOKEN_WAKER {
                waker.drain();
            }
        })?;
    }
    dev.flush()
}
