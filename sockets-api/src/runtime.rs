//! The threaded runtime: one stack thread owns the device and runs the
//! protocol; application threads call into the shared state under one short
//! lock and sleep on per-socket condition variables.
//!
//! The stack thread reads a batch of frames *without* the lock, processes
//! them (and whatever the applications queued) *with* it, and writes the
//! resulting frames *without* it again, so system calls never extend the
//! critical section. It tells the applications, under the lock, when it is
//! about to sleep; an application call that queued work writes the wake-up
//! eventfd only then, so a busy stack costs no wake-up system calls.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stack::device::{Device, FrameBatch};
use stack::runtime::Waker;
use stack::sys::Epoll;
use stack::{Event, IcmpHandle, Interface, ListenerHandle, TcpHandle, UdpHandle};

use crate::types::Fd;

/// Frames read per batch before processing.
const RX_BATCH: usize = 64;

/// What a descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SockType {
    Stream,
    Dgram,
    Icmp,
}

/// What a descriptor refers to in the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SockState {
    /// Created, maybe bound, neither listening nor connected.
    Fresh,
    Listening(ListenerHandle),
    Stream(TcpHandle),
    Udp(UdpHandle),
    Icmp(IcmpHandle),
}

/// Per-socket options.
#[derive(Clone, Debug, Default)]
pub(crate) struct Opts {
    pub reuseaddr: bool,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub keepalive: bool,
    pub linger: Option<Duration>,
    pub nodelay: bool,
    pub nonblocking: bool,
    pub congestion: Option<tcp::cc::Algorithm>,
    pub ttl: Option<u8>,
}

/// One open descriptor.
pub(crate) struct Entry {
    pub ty: SockType,
    pub state: SockState,
    /// Address given to bind() before listen/connect (TCP).
    pub bound: Option<SocketAddrV4>,
    pub opts: Opts,
    /// Threads blocked in calls on this socket wait here.
    pub cond: Arc<Condvar>,
    pub waiters: usize,
    /// poll() calls watching this socket.
    pub pollers: Vec<Arc<Condvar>>,
    /// SO_ERROR: an error to report (a failed non-blocking connect).
    pub error: Option<i32>,
    /// ECONNRESET was reported once; later sends get EPIPE, reads EOF.
    pub reset_reported: bool,
    /// close() is lingering on it: every other call sees EBADF.
    pub closing: bool,
}

impl Entry {
    pub(crate) fn new(ty: SockType, state: SockState) -> Entry {
        Entry {
            ty,
            state,
            bound: None,
            opts: Opts::default(),
            cond: Arc::new(Condvar::new()),
            waiters: 0,
            pollers: Vec::new(),
            error: None,
            reset_reported: false,
            closing: false,
        }
    }

    /// Wakes whoever waits on this socket.
    pub(crate) fn notify(&self) {
        if self.waiters > 0 {
            self.cond.notify_all();
        }
        for p in &self.pollers {
            p.notify_all();
        }
    }
}

/// Key of the handle-to-descriptor map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HandleKey {
    Tcp(u64),
    Listener(u64),
    Udp(u64),
    Icmp(u64),
}

impl HandleKey {
    pub(crate) fn of(state: SockState) -> Option<HandleKey> {
        match state {
            SockState::Fresh => None,
            SockState::Listening(h) => Some(HandleKey::Listener(h.to_bits())),
            SockState::Stream(h) => Some(HandleKey::Tcp(h.to_bits())),
            SockState::Udp(h) => Some(HandleKey::Udp(h.to_bits())),
            SockState::Icmp(h) => Some(HandleKey::Icmp(h.to_bits())),
        }
    }
}

/// Everything behind the lock.
pub(crate) struct Core {
    pub iface: Interface,
    /// Frames produced under the lock, sent by the stack thread.
    pub tx: FrameBatch,
    fds: Vec<Option<Entry>>,
    handles: HashMap<HandleKey, Fd>,
    events: Vec<Event>,
    /// Shutting down: no new sockets; the thread exits once delivered.
    pub closing: Option<Instant>,
    /// The stack thread ended (device failure or shutdown).
    pub stopped: bool,
    /// Tiny generator for ephemeral ports chosen at bind().
    pub port_seed: u64,
}

/// Lowest descriptor number handed out (0-2 look like stdio to people).
const FIRST_FD: Fd = 3;

impl Core {
    pub(crate) fn new(iface: Interface, seed: u64) -> Core {
        Core {
            iface,
            tx: FrameBatch::new(),
            fds: Vec::new(),
            handles: HashMap::new(),
            events: Vec::new(),
            closing: None,
            stopped: false,
            port_seed: seed | 1,
        }
    }

    /// Installs an entry at the lowest free descriptor.
    pub(crate) fn insert(&mut self, entry: Entry) -> Fd {
        let key = HandleKey::of(entry.state);
        let idx = match self.fds.iter().position(Option::is_none) {
            Some(i) => {
                self.fds[i] = Some(entry);
                i
            }
            None => {
                self.fds.push(Some(entry));
                self.fds.len() - 1
            }
        };
        let fd = idx as Fd + FIRST_FD;
        if let Some(k) = key {
            self.handles.insert(k, fd);
        }
        fd
    }

    fn index(fd: Fd) -> Option<usize> {
        (fd >= FIRST_FD).then(|| (fd - FIRST_FD) as usize)
    }

    /// The entry behind `fd`, unless it is closed or closing.
    pub(crate) fn entry(&self, fd: Fd) -> Option<&Entry> {
        let e = self.fds.get(Self::index(fd)?)?.as_ref()?;
        (!e.closing).then_some(e)
    }

    /// Mutable access to the entry behind `fd`.
    pub(crate) fn entry_mut(&mut self, fd: Fd) -> Option<&mut Entry> {
        let e = self.fds.get_mut(Self::index(fd)?)?.as_mut()?;
        (!e.closing).then_some(e)
    }

    /// The entry even while it lingers in close().
    pub(crate) fn entry_any_mut(&mut self, fd: Fd) -> Option<&mut Entry> {
        self.fds.get_mut(Self::index(fd)?)?.as_mut()
    }

    /// Records a state change of `fd` (for event routing).
    pub(crate) fn set_state(&mut self, fd: Fd, state: SockState) {
        let Some(idx) = Self::index(fd) else { return };
        let Some(Some(e)) = self.fds.get_mut(idx) else {
            return;
        };
        let old = std::mem::replace(&mut e.state, state);
        if let Some(k) = HandleKey::of(old) {
            self.handles.remove(&k);
        }
        if let Some(k) = HandleKey::of(state) {
            self.handles.insert(k, fd);
        }
    }

    /// Removes `fd`, waking its waiters (who then see EBADF).
    pub(crate) fn remove(&mut self, fd: Fd) -> Option<Entry> {
        let idx = Self::index(fd)?;
        let e = self.fds.get_mut(idx)?.take()?;
        if let Some(k) = HandleKey::of(e.state) {
            self.handles.remove(&k);
        }
        e.notify();
        if e.waiters > 0 {
            e.cond.notify_all();
        }
        Some(e)
    }

    /// All open descriptors.
    pub(crate) fn open_fds(&self) -> Vec<Fd> {
        self.fds
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_some())
            .map(|(i, _)| i as Fd + FIRST_FD)
            .collect()
    }

    /// True when another open descriptor is bound or listening on TCP
    /// `port` in a way that conflicts with a new binding of it.
    pub(crate) fn tcp_port_taken(&self, port: u16, reuseaddr: bool) -> bool {
        self.fds.iter().flatten().any(|e| {
            if e.ty != SockType::Stream || e.closing {
                return false;
            }
            let Some(b) = e.bound else { return false };
            if b.port() != port {
                return false;
            }
            // SO_REUSEADDR (Linux): allowed beside sockets that also set it,
            // unless one of them listens.
            !(reuseaddr && e.opts.reuseaddr && !matches!(e.state, SockState::Listening(_)))
        })
    }

    /// Routes the interface's events to the sockets' waiters.
    pub(crate) fn dispatch_events(&mut self) {
        if !self.iface.has_events() {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        self.iface.take_events(&mut events);
        for ev in &events {
            let key = match *ev {
                Event::Tcp(h) => HandleKey::Tcp(h.to_bits()),
                Event::Listener(h) => HandleKey::Listener(h.to_bits()),
                Event::Udp(h) => HandleKey::Udp(h.to_bits()),
                Event::Icmp(h) => HandleKey::Icmp(h.to_bits()),
            };
            if let Some(&fd) = self.handles.get(&key)
                && let Some(e) = self.entry_any_mut(fd)
            {
                e.notify();
            }
        }
        self.events = events;
    }
}

/// State shared between the stack thread and the application threads.
pub(crate) struct Shared {
    pub core: Mutex<Core>,
    pub waker: Waker,
    /// The stack thread is (about to be) asleep in epoll: wake it.
    pub sleeping: AtomicBool,
    /// Applications queued work since the stack thread last looked.
    pub app_work: AtomicBool,
}

impl Shared {
    /// Locks the core (a panic in another thread does not poison the stack
    /// for the others: the data stays consistent between calls).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After an application call: if it queued work, make sure the stack
    /// thread will do it (an eventfd write only if it sleeps).
    pub(crate) fn kick(&self, core: &Core) {
        if core.iface.needs_poll() || !core.tx.is_empty() || core.closing.is_some() {
            self.app_work.store(true, Ordering::Release);
            if self.sleeping.swap(false, Ordering::AcqRel) {
                self.waker.wake();
            }
        }
    }
}

/// Frames read from the device, stored back to back in one buffer.
struct RxBatch {
    data: Vec<u8>,
    frame_cap: usize,
    /// Length of each frame, and whether the device vouched for its TCP
    /// checksum ([`Device::rx_checksum_trusted`]).
    lens: Vec<(usize, bool)>,
}

impl RxBatch {
    fn new(frame_cap: usize) -> Self {
        RxBatch {
            data: vec![0u8; frame_cap * RX_BATCH],
            frame_cap,
            lens: Vec::with_capacity(RX_BATCH),
        }
    }

    fn slot(&mut self) -> &mut [u8] {
        let i = self.lens.len();
        &mut self.data[i * self.frame_cap..(i + 1) * self.frame_cap]
    }

    fn frames(&self) -> impl Iterator<Item = (&[u8], bool)> {
        self.lens.iter().enumerate().map(|(i, &(n, trusted))| {
            (
                &self.data[i * self.frame_cap..i * self.frame_cap + n],
                trusted,
            )
        })
    }
}

/// Event-loop settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoopOptions {
    pub busy_poll: Duration,
    pub shutdown_linger: Duration,
}

/// The stack thread.
pub(crate) fn run(shared: Arc<Shared>, mut dev: Box<dyn Device + Send>, opts: LoopOptions) {
    if let Err(e) = run_inner(&shared, &mut dev, opts) {
        log::error!("ustack: stack thread stopped: {e}");
    }
    let _ = dev.flush();
    let mut core = shared.lock();
    core.stopped = true;
    // Wake everyone: their calls fail now instead of waiting forever.
    for fd in core.open_fds() {
        if let Some(e) = core.entry_any_mut(fd) {
            e.cond.notify_all();
            for p in &e.pollers {
                p.notify_all();
            }
        }
    }
}

fn run_inner(
    shared: &Shared,
    dev: &mut Box<dyn Device + Send>,
    opts: LoopOptions,
) -> std::io::Result<()> {
    const TOKEN_DEVICE: u64 = 0;
    const TOKEN_WAKER: u64 = 1;
    let mut epoll = Epoll::new()?;
    if let Some(fd) = dev.raw_fd() {
        epoll.add_readable(fd, TOKEN_DEVICE)?;
    }
    epoll.add_readable(shared.waker_fd(), TOKEN_WAKER)?;
    let mut rx = RxBatch::new(dev.max_frame_len());
    let mut out = FrameBatch::new();
    let mut spin_until: Option<Instant> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        rx.lens.clear();
        while rx.lens.len() < RX_BATCH {
            match dev.recv(now, rx.slot())? {
                Some(n) => rx.lens.push((n, dev.rx_checksum_trusted())),
                None => break,
            }
        }
        let app_work = shared.app_work.swap(false, Ordering::AcqRel);
        let due = deadline.is_some_and(|d| d <= now);
        if rx.lens.is_empty() && !app_work && !due && spin_until.is_some_and(|t| now < t) {
            // Busy-poll without touching the lock.
            std::hint::spin_loop();
            continue;
        }
        let sleep;
        let exit;
        {
            let mut guard = shared.lock();
            let core = &mut *guard;
            for (frame, trusted) in rx.frames() {
                core.iface
                    .receive_frame_from(now, frame, trusted, &mut core.tx);
            }
            core.iface.poll(now, &mut core.tx);
            core.dispatch_events();
            std::mem::swap(&mut core.tx, &mut out);
            exit = core
                .closing
                .is_some_and(|t| core.iface.tcp_all_delivered() || now >= t + opts.shutdown_linger);
            deadline = [core.iface.poll_at(), dev.poll_at()]
                .into_iter()
                .flatten()
                .min();
            if !rx.lens.is_empty() {
                spin_until = Some(now + opts.busy_poll);
            }
            let busy = rx.lens.len() == RX_BATCH
                || deadline.is_some_and(|d| d <= Instant::now())
                || !out.is_empty();
            sleep = !busy && spin_until.is_none_or(|t| Instant::now() >= t);
            if sleep {
                // Published under the lock: an application call after this
                // sees it and writes the eventfd; one before it was already
                // reflected in `deadline`.
                shared.sleeping.store(true, Ordering::Release);
            }
        }
        if let Err(e) = out.flush_to(now, &mut **dev) {
            log::debug!("device transmit failed: {e}");
        }
        if exit {
            return Ok(());
        }
        if !sleep {
            continue;
        }
        spin_until = None;
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        epoll.wait(timeout, |token| {
            if token == TOKEN_WAKER {
                shared.waker_drain();
            }
        })?;
        shared.sleeping.store(false, Ordering::Release);
        if shared.waker.is_stopped() {
            return Ok(());
        }
    }
}

impl Shared {
    fn waker_fd(&self) -> std::os::fd::RawFd {
        self.waker.raw_fd()
    }

    fn waker_drain(&self) {
        self.waker.drain();
    }
}
