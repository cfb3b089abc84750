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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stack::device::{Device, FrameBatch};
use stack::runtime::Waker;
use stack::sys::Epoll;
use stack::{Event, IcmpHandle, Interface, ListenerHandle, TcpHandle, UdpHandle};

use crate::poller::{Pollers, Watch};
use crate::types::Fd;
use crate::wakers::TaskWakers;

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
#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub reuseaddr: bool,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub keepalive: bool,
    /// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (`None`: the defaults).
    pub keep: (Option<Duration>, Option<Duration>, Option<u32>),
    pub linger: Option<Duration>,
    pub nodelay: bool,
    pub nonblocking: bool,
    pub congestion: Option<tcp::cc::Algorithm>,
    pub ttl: Option<u8>,
    pub reuseport: bool,
    pub broadcast: bool,
    /// TCP_USER_TIMEOUT; `None` is the stack's default.
    pub user_timeout: Option<Duration>,
    /// TCP_MAXSEG set by the user (clamps the MSS from the SYN on).
    pub maxseg: Option<u16>,
    pub cork: bool,
    pub quickack: bool,
    pub defer_accept: Option<Duration>,
    /// IP_TOS; `None` is 0.
    pub tos: Option<u8>,
    /// SO_RCVLOWAT (at least 1).
    pub rcvlowat: usize,
    /// SO_MAX_PACING_RATE in bytes per second; `None` (~0): no cap.
    pub max_pacing_rate: Option<u64>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            reuseaddr: false,
            rcvbuf: None,
            sndbuf: None,
            rcvtimeo: None,
            sndtimeo: None,
            keepalive: false,
            keep: (None, None, None),
            linger: None,
            nodelay: false,
            nonblocking: false,
            congestion: None,
            ttl: None,
            reuseport: false,
            broadcast: false,
            user_timeout: None,
            maxseg: None,
            cork: false,
            // Linux reads TCP_QUICKACK as 1 until delayed ACKs are on.
            quickack: true,
            defer_accept: None,
            tos: None,
            rcvlowat: 1,
            max_pacing_rate: None,
        }
    }
}

/// One socket (named by one or more descriptors).
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
    /// [`Poller`](crate::Poller) registrations of its descriptors.
    pub watches: Vec<Watch>,
    /// Async tasks waiting on it ([`crate::wakers`]).
    pub wakers: TaskWakers,
    /// Descriptors naming this socket.
    pub refs: usize,
    /// A pending error not owned by the connection (SO_ERROR).
    pub error: Option<i32>,
    /// The connection's error was reported once (by a call or by reading
    /// SO_ERROR): it is no longer pending (Linux clears sk_err when it
    /// reports it).
    pub conn_error_seen: bool,
    /// connect() started and has not reported its outcome yet
    /// (SS_CONNECTING).
    pub connecting: bool,
    /// bind() chose the address (kept over a failed connect, as Linux
    /// keeps an explicitly bound port).
    pub explicit_bind: bool,
    /// shutdown(SHUT_RD) / shutdown(SHUT_WR) was called.
    pub shut_rd: bool,
    pub shut_wr: bool,
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
            watches: Vec::new(),
            wakers: TaskWakers::default(),
            refs: 1,
            error: None,
            conn_error_seen: false,
            connecting: false,
            explicit_bind: false,
            shut_rd: false,
            shut_wr: false,
            closing: false,
        }
    }

    /// Wakes whoever waits on this socket in a blocking call, poll() or
    /// an async task; [`Core::notify_fd`] also tells the pollers.
    fn notify(&mut self) {
        if self.waiters > 0 {
            self.cond.notify_all();
        }
        for p in &self.pollers {
            p.notify_all();
        }
        if !self.wakers.is_empty() {
            self.wakers.wake_all();
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
    /// Descriptor table: each open descriptor names a socket slot
    /// (several do after [`dup`](crate::Stack::dup)).
    fds: Vec<Option<usize>>,
    /// The free entries of `fds`, smallest first: the lowest free
    /// descriptor in O(log n), as POSIX wants it, without a scan.
    free_fds: BinaryHeap<Reverse<usize>>,
    /// The sockets, by slot.
    socks: Vec<Option<Entry>>,
    free_socks: Vec<usize>,
    /// Interface handle to socket slot, for event routing.
    handles: HashMap<HandleKey, usize>,
    events: Vec<Event>,
    /// The [`Poller`](crate::Poller)s' state.
    pub pollers: Pollers,
    /// Shutting down: no new sockets; the thread exits once delivered.
    pub closing: Option<Instant>,
    /// The stack thread ended (device failure, panic or shutdown).
    pub stopped: bool,
    /// Why the stack thread ended, when it was not asked to
    /// ([`Stack::last_error`](crate::Stack::last_error)).
    pub last_error: Option<String>,
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
            free_fds: BinaryHeap::new(),
            socks: Vec::new(),
            free_socks: Vec::new(),
            handles: HashMap::new(),
            events: Vec::new(),
            pollers: Pollers::default(),
            closing: None,
            stopped: false,
            last_error: None,
            port_seed: seed | 1,
        }
    }

    /// The lowest free descriptor, pointing at socket `slot`.
    fn new_fd(&mut self, slot: usize) -> Fd {
        let idx = match self.free_fds.pop() {
            Some(Reverse(i)) => {
                self.fds[i] = Some(slot);
                i
            }
            None => {
                self.fds.push(Some(slot));
                self.fds.len() - 1
            }
        };
        idx as Fd + FIRST_FD
    }

    /// Installs a socket at the lowest free descriptor.
    pub(crate) fn insert(&mut self, mut entry: Entry) -> Fd {
        let key = HandleKey::of(entry.state);
        entry.refs = 1;
        let slot = match self.free_socks.pop() {
            Some(i) => {
                self.socks[i] = Some(entry);
                i
            }
            None => {
                self.socks.push(Some(entry));
                self.socks.len() - 1
            }
        };
        if let Some(k) = key {
            self.handles.insert(k, slot);
        }
        self.new_fd(slot)
    }

    /// dup(2): a second descriptor for the socket behind `fd`.
    pub(crate) fn dup(&mut self, fd: Fd) -> Option<Fd> {
        let slot = self.slot(fd)?;
        let e = self.socks.get_mut(slot)?.as_mut()?;
        if e.closing {
            return None;
        }
        e.refs += 1;
        Some(self.new_fd(slot))
    }

    fn slot(&self, fd: Fd) -> Option<usize> {
        let idx = (fd >= FIRST_FD).then(|| (fd - FIRST_FD) as usize)?;
        *self.fds.get(idx)?
    }

    /// Descriptors naming the same socket as `fd` (1 without dup).
    pub(crate) fn refs(&self, fd: Fd) -> usize {
        self.slot(fd)
            .and_then(|s| self.socks.get(s)?.as_ref())
            .map_or(0, |e| e.refs)
    }

    /// The entry behind `fd`, unless it is closed or closing.
    pub(crate) fn entry(&self, fd: Fd) -> Option<&Entry> {
        let e = self.socks.get(self.slot(fd)?)?.as_ref()?;
        (!e.closing).then_some(e)
    }

    /// Mutable access to the entry behind `fd`.
    pub(crate) fn entry_mut(&mut self, fd: Fd) -> Option<&mut Entry> {
        let slot = self.slot(fd)?;
        let e = self.socks.get_mut(slot)?.as_mut()?;
        (!e.closing).then_some(e)
    }

    /// The entry even while it lingers in close().
    pub(crate) fn entry_any_mut(&mut self, fd: Fd) -> Option<&mut Entry> {
        let slot = self.slot(fd)?;
        self.socks.get_mut(slot)?.as_mut()
    }

    /// Records a state change of `fd` (for event routing).
    pub(crate) fn set_state(&mut self, fd: Fd, state: SockState) {
        let Some(slot) = self.slot(fd) else { return };
        let Some(Some(e)) = self.socks.get_mut(slot) else {
            return;
        };
        let old = std::mem::replace(&mut e.state, state);
        if let Some(k) = HandleKey::of(old) {
            self.handles.remove(&k);
        }
        if let Some(k) = HandleKey::of(state) {
            self.handles.insert(k, slot);
        }
    }

    /// Removes the descriptor `fd`. Returns the socket when this was its
    /// last descriptor (its waiters are woken and then see EBADF), `None`
    /// when other descriptors still name it.
    pub(crate) fn remove(&mut self, fd: Fd) -> Option<Entry> {
        let slot = self.slot(fd)?;
        self.fds[(fd - FIRST_FD) as usize] = None;
        self.free_fds.push(Reverse((fd - FIRST_FD) as usize));
        let e = self.socks.get_mut(slot)?.as_mut()?;
        // The pollers forget registrations made through this descriptor.
        if !e.watches.is_empty() {
            let pollers = &mut self.pollers;
            e.watches.retain(|w| {
                if w.fd == fd {
                    pollers.forget(w.poller, fd);
                }
                w.fd != fd
            });
        }
        e.refs -= 1;
        if e.refs > 0 {
            return None;
        }
        let mut e = self.socks[slot].take()?;
        self.free_socks.push(slot);
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

    /// True when another socket is bound or listening on TCP `port` in a
    /// way that conflicts with a new binding of it by a socket with
    /// SO_REUSEADDR `reuseaddr` and SO_REUSEPORT `reuseport`, or (without
    /// SO_REUSEADDR) when a connection of the interface still uses the
    /// port, in TIME-WAIT or closing after close() (Linux's bind conflict
    /// rules, inet_csk_bind_conflict).
    pub(crate) fn tcp_port_taken(&self, port: u16, reuseaddr: bool, reuseport: bool) -> bool {
        let by_socket = self.socks.iter().flatten().any(|e| {
            if e.ty != SockType::Stream || e.closing {
                return false;
            }
            let Some(b) = e.bound else { return false };
            if b.port() != port {
                return false;
            }
            if reuseport && e.opts.reuseport {
                return false;
            }
            // SO_REUSEADDR: allowed beside sockets that also set it,
            // unless one of them listens.
            !(reuseaddr && e.opts.reuseaddr && !matches!(e.state, SockState::Listening(_)))
        });
        by_socket || self.iface.tcp_port_in_use(port, reuseaddr)
    }

    /// The readiness of `fd` may have changed: wakes its blocked callers
    /// and poll() calls, and lists it on the pollers watching it.
    pub(crate) fn notify_fd(&mut self, fd: Fd) {
        if let Some(slot) = self.slot(fd) {
            self.notify_slot(slot);
        }
    }

    fn notify_slot(&mut self, slot: usize) {
        let Some(Some(e)) = self.socks.get_mut(slot) else {
            return;
        };
        e.notify();
        for w in &e.watches {
            self.pollers.push(w.poller, w.fd);
        }
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
            if let Some(&slot) = self.handles.get(&key) {
                self.notify_slot(slot);
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

/// The stack thread. However it ends (shutdown, a device error, a panic
/// in the device or the protocol code), the core is marked stopped, the
/// cause recorded, and every blocked call and poller woken: they fail with
/// ENETDOWN instead of waiting forever.
pub(crate) fn run(shared: Arc<Shared>, mut dev: Box<dyn Device + Send>, opts: LoopOptions) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_inner(&shared, &mut dev, opts)
    }));
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("device failed: {e}")),
        Err(panic) => Some(format!(
            "stack thread panicked: {}",
            panic_message(panic.as_ref())
        )),
    };
    if let Some(e) = &error {
        log::error!("ustack: stack thread stopped: {e}");
    } else {
        // A device that panicked is not touched again.
        let _ = dev.flush();
    }
    stop_core(&shared, error);
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Marks the core stopped with `error` as the cause and wakes everyone.
fn stop_core(shared: &Shared, error: Option<String>) {
    let mut core = shared.lock();
    core.stopped = true;
    if core.last_error.is_none() {
        core.last_error = error;
    }
    // Wake everyone: their calls fail now instead of waiting forever.
    for fd in core.open_fds() {
        if let Some(e) = core.entry_any_mut(fd) {
            e.cond.notify_all();
            for p in &e.pollers {
                p.notify_all();
            }
            // Async tasks: their retried operation fails with ENETDOWN.
            e.wakers.wake_all();
        }
    }
    // A panic may have left notifications deferred: no longer.
    core.pollers.defer = false;
    core.pollers.wake_all();
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
    // A device with no descriptor to sleep on is looked at every
    // millisecond instead.
    let poll_interval = dev.raw_fd().is_none().then_some(Duration::from_millis(1));
    let mut rx = RxBatch::new(dev.max_frame_len());
    let mut out = FrameBatch::new();
    let mut wakes = Vec::new();
    let mut spin_until: Option<Instant> = None;
    let mut deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        rx.lens.clear();
        while rx.lens.len() < RX_BATCH {
            match dev.recv(now, rx.slot()) {
                Ok(Some(n)) => rx.lens.push((n, dev.rx_checksum_trusted())),
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
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
            core.pollers.defer = true;
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
            core.pollers.take_deferred(&mut wakes);
        }
        // After the unlock: a woken event loop finds the lock free.
        for cond in wakes.drain(..) {
            cond.notify_all();
        }
        if let Err(e) = out.flush_to(now, &mut **dev) {
            if device_gone(&e) {
                return Err(e);
            }
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
        let timeout = match (timeout, poll_interval) {
            (Some(t), Some(p)) => Some(t.min(p)),
            (t, p) => t.or(p),
        };
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

/// A transmit error that means the device is gone (its descriptor closed,
/// the interface removed: EBADFD from a TAP), as opposed to frames lost
/// for now (a full queue, a frame the device refuses, EIO from a TAP whose
/// interface is down until it is up again), which a wire would lose too.
fn device_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EBADFD | libc::ENODEV | libc::ENXIO | libc::EPIPE)
    )
}

impl crate::Stack {
    /// Why the stack stopped when it was not asked to: a device error
    /// (`device failed: ...`) or a panic in the stack thread (`stack thread
    /// panicked: ...`). `None` while it runs and after [`stop`](Self::stop).
    /// Once the stack has stopped every call, blocked or not, fails with
    /// ENETDOWN.
    pub fn last_error(&self) -> Option<String> {
        self.shared().lock().last_error.clone()
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
