//! An epoll-shaped readiness interface: interest is registered once, and a
//! wait costs what the ready sockets cost, not what the registered ones do.
//!
//! The state lives in the [`Core`], behind the stack's lock. Every socket
//! entry lists the pollers watching it (usually none or one). Whatever
//! wakes the socket's blocked callers (an interface event, a local
//! shutdown, close or listen change, the stack stopping) also pushes the
//! descriptor onto each watching poller's ready list, once (a flag in the
//! registration deduplicates), and wakes the poller's waiter. A wait then
//! computes the readiness of the listed descriptors only, reports those
//! that match their interest, keeps the level-triggered ones listed while
//! they stay ready and drops the rest.
//!
//! The one place a poller learns that it has work is
//! [`PollerState::push`]: it writes the poller's kernel eventfd when the
//! ready list stops being empty (once: a flag remembers the descriptor is
//! signalled), and a wait that leaves the list empty drains it, so an outer
//! epoll sees the descriptor readable exactly while the poller may have
//! something to report. The eventfd is written only once the descriptor
//! was handed out ([`Poller::as_raw_fd`]): a poller used through
//! [`Poller::wait`] alone sleeps on its condition variable and costs no
//! system call per wake-up besides the futex.
//!
//! The stack thread notifies the waiters' condition variables after it
//! has released the lock, so that a woken event loop does not block on the
//! lock at once.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use stack::sys::EventFd;

use crate::Stack;
use crate::calls::{ebadf, errno};
use crate::poll::readiness;
use crate::runtime::Core;
use crate::types::{Fd, events::*};

/// What a registration waits for: a set of poll(2) events, and whether it
/// is edge-triggered. POLLERR and POLLHUP are always reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    events: i16,
    edge: bool,
}

impl Interest {
    /// Data to read, a connection to accept, or end of stream (POLLIN).
    pub const READABLE: Interest = Interest {
        events: POLLIN | POLLRDHUP,
        edge: false,
    };
    /// Room to write (POLLOUT).
    pub const WRITABLE: Interest = Interest {
        events: POLLOUT,
        edge: false,
    };
    /// Urgent data (POLLPRI).
    pub const PRIORITY: Interest = Interest {
        events: POLLPRI,
        edge: false,
    };

    /// Any set of poll(2) event bits.
    pub const fn from_events(events: i16) -> Interest {
        Interest {
            events,
            edge: false,
        }
    }

    /// The same interest, edge-triggered (EPOLLET): a descriptor is
    /// reported once per readiness change the stack signals, not for as
    /// long as it stays ready.
    pub const fn edge(self) -> Interest {
        Interest {
            events: self.events,
            edge: true,
        }
    }

    /// The poll(2) event bits.
    pub const fn events(self) -> i16 {
        self.events
    }

    /// True when edge-triggered.
    pub const fn is_edge(self) -> bool {
        self.edge
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest {
            events: self.events | rhs.events,
            edge: self.edge || rhs.edge,
        }
    }
}

/// One readiness report: the registration's token and the poll(2) events
/// that hold (within its interest, plus POLLERR and POLLHUP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollEvent {
    /// The token given to [`Poller::register`].
    pub token: u64,
    /// The events that hold, as poll(2) `revents`.
    pub revents: i16,
}

impl PollEvent {
    /// Data, a connection or end of stream to read.
    pub fn is_readable(&self) -> bool {
        self.revents & (POLLIN | POLLRDHUP) != 0
    }
    /// Room to write.
    pub fn is_writable(&self) -> bool {
        self.revents & POLLOUT != 0
    }
    /// A pending error.
    pub fn is_error(&self) -> bool {
        self.revents & POLLERR != 0
    }
    /// Hung up: shut both ways, or the connection is over.
    pub fn is_hangup(&self) -> bool {
        self.revents & POLLHUP != 0
    }
}

/// A descriptor's registration with one poller.
struct Reg {
    token: u64,
    interest: Interest,
    /// On the ready list (at most once).
    queued: bool,
    /// Changes at each registration, so that a ready-list entry left over
    /// from an earlier registration of the same descriptor is skipped.
    generation: u32,
}

/// One poller's state, in the core.
pub(crate) struct PollerState {
    cond: Arc<Condvar>,
    regs: HashMap<Fd, Reg>,
    ready: VecDeque<(Fd, u32)>,
    /// Threads in `wait` (notify only when someone waits).
    waiting: usize,
    /// `Poller::wake` was called and no wait has returned since.
    woken: bool,
    next_gen: u32,
    /// The readiness descriptor ([`Poller::as_raw_fd`]).
    signal: Arc<EventFd>,
    /// `signal` was written and not drained since.
    signalled: bool,
    /// A wait left descriptors listed (level-triggered ones still ready),
    /// so `signal` stayed readable: the next push writes it again, which
    /// an edge-triggered outer epoll (mio) sees as a new edge. Without
    /// it, once the application drained such a socket, new data would
    /// find the descriptor still listed and signalled, and an
    /// edge-triggered watcher would never hear of it. Only for a poller
    /// whose descriptor was handed out (`exposed`): a poller used through
    /// `wait` alone costs no extra write.
    rearm: bool,
    /// [`Poller::as_raw_fd`] or [`Poller::as_fd`] was called.
    exposed: Arc<AtomicBool>,
    /// The stack stopped: `signal` stays readable.
    down: bool,
    /// A notification of `cond` is deferred ([`Pollers::defer`]).
    notify_deferred: bool,
}

impl PollerState {
    /// Lists `fd` (once) and wakes the waiter. The single point where a
    /// poller learns of work: it makes the readiness descriptor readable.
    fn push(&mut self, fd: Fd) {
        if self.list(fd) {
            self.cond.notify_all();
        }
    }

    /// Lists `fd` (once) and makes the readiness descriptor readable. True
    /// when a thread waits and must be notified.
    fn list(&mut self, fd: Fd) -> bool {
        let Some(reg) = self.regs.get_mut(&fd) else {
            return false;
        };
        if reg.queued {
            if self.rearm {
                self.rearm = false;
                self.signal.notify();
            }
            return false;
        }
        reg.queued = true;
        self.ready.push_back((fd, reg.generation));
        self.raise();
        self.waiting > 0
    }

    /// Makes the readiness descriptor readable (one write per transition),
    /// once it was handed out: until then nobody can watch it, and
    /// [`Poller::expose`] raises it for what is listed by then.
    fn raise(&mut self) {
        if !self.exposed.load(Ordering::Relaxed) {
            return;
        }
        if !self.signalled || self.rearm {
            self.signalled = true;
            self.rearm = false;
            self.signal.notify();
        }
    }

    /// Nothing is listed any more: the readiness descriptor stops being
    /// readable.
    fn settle(&mut self) {
        self.rearm =
            self.signalled && !self.ready.is_empty() && self.exposed.load(Ordering::Relaxed);
        if self.signalled && self.ready.is_empty() && !self.woken && !self.down {
            self.signalled = false;
            self.signal.drain();
        }
    }

    /// Wakes the waiter, and an outer epoll through the descriptor.
    fn wake_all(&mut self) {
        self.raise();
        if self.waiting > 0 {
            self.cond.notify_all();
        }
    }
}

/// The pollers of a core (a slab) and the hooks the rest of the crate
/// calls.
#[derive(Default)]
pub(crate) struct Pollers {
    slots: Vec<Option<PollerState>>,
    free: Vec<usize>,
    /// Set by the stack thread while it holds the lock: waiters to notify
    /// go to `deferred`, notified once the lock is released.
    pub(crate) defer: bool,
    /// The condition variables of the pollers to notify, each once (its
    /// poller's `notify_deferred` flag).
    deferred: Vec<(usize, Arc<Condvar>)>,
}

impl Pollers {
    /// Lists `fd` on poller `id` (readiness may have changed).
    pub(crate) fn push(&mut self, id: usize, fd: Fd) {
        let Some(Some(p)) = self.slots.get_mut(id) else {
            return;
        };
        if !p.list(fd) {
            return;
        }
        if !self.defer {
            p.cond.notify_all();
        } else if !p.notify_deferred {
            p.notify_deferred = true;
            self.deferred.push((id, p.cond.clone()));
        }
    }

    /// Moves the deferred notifications into `out` (the caller notifies
    /// them after releasing the lock) and stops deferring.
    pub(crate) fn take_deferred(&mut self, out: &mut Vec<Arc<Condvar>>) {
        self.defer = false;
        for (id, cond) in self.deferred.drain(..) {
            if let Some(Some(p)) = self.slots.get_mut(id) {
                p.notify_deferred = false;
            }
            out.push(cond);
        }
    }

    /// Forgets `fd`'s registration with poller `id` (its descriptor is
    /// closed).
    pub(crate) fn forget(&mut self, id: usize, fd: Fd) {
        if let Some(Some(p)) = self.slots.get_mut(id) {
            p.regs.remove(&fd);
        }
    }

    /// Wakes every waiting poller, and makes every readiness descriptor
    /// readable (the stack stopped: their next wait fails).
    pub(crate) fn wake_all(&mut self) {
        for p in self.slots.iter_mut().flatten() {
            p.down = true;
            p.wake_all();
        }
    }

    fn get(&mut self, id: usize) -> io::Result<&mut PollerState> {
        self.slots
            .get_mut(id)
            .and_then(Option::as_mut)
            .ok_or_else(ebadf)
    }
}

/// A poller's registration as the socket entry records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    pub poller: usize,
    pub fd: Fd,
}

/// An epoll-style readiness queue over a [`Stack`]'s descriptors.
///
/// Register a descriptor once with a token and an [`Interest`]; each
/// [`wait`](Poller::wait) then returns the tokens of the descriptors that
/// are ready, at a cost proportional to the ready ones (the stack lists a
/// descriptor when its readiness may have changed), however many are
/// registered. Level-triggered by default: a descriptor is reported again
/// at each wait while it stays ready; [`Interest::edge`] reports it once
/// per change. Closing a descriptor removes its registration; once the
/// stack has stopped, a wait fails with ENETDOWN.
///
/// # The readiness descriptor
///
/// A poller also owns a kernel eventfd, [`as_raw_fd`](Poller::as_raw_fd)
/// (and [`AsFd`]), so that an event loop built on the kernel's epoll, mio
/// or poll(2) can wait on ustack sockets and kernel descriptors together:
///
/// 1. register the ustack sockets with the poller, and the poller's
///    descriptor, for readability, with the outer loop (level-triggered or
///    edge-triggered: both work);
/// 2. when the outer loop reports it readable, call
///    [`wait`](Poller::wait) with a zero timeout and handle what it
///    returns; never read the descriptor yourself.
///
/// The descriptor is readable while the poller's ready list is not empty:
/// it becomes readable when the stack lists a registered descriptor whose
/// readiness may have changed (or on [`wake`](Poller::wake), or when the
/// stack stops), and a wait that leaves the list empty makes it unreadable
/// again. A level-triggered registration that is still ready stays listed,
/// so the descriptor stays readable until the socket is drained; an
/// edge-triggered one is reported once per change. For an edge-triggered
/// outer loop (mio registers descriptors edge-triggered), a readiness
/// change after a wait that left descriptors listed writes the descriptor
/// again, which is a new edge: draining a socket and waiting on the outer
/// loop never misses its next data. The descriptor may be
/// readable with nothing to report (a zero-timeout wait then returns 0 and
/// clears it); once the stack has stopped it stays readable and a wait
/// fails with ENETDOWN.
///
/// ```
/// use std::io::Write;
/// use std::time::Duration;
/// use sockets_api::{Interest, PollEvent, Poller, StackBuilder, TcpListener, TcpStream};
/// # fn main() -> std::io::Result<()> {
/// let (server, client) = StackBuilder::memory_pair(
///     StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
///     StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
/// )?;
/// let listener = TcpListener::bind(&server, "0.0.0.0:80")?;
/// let poller = Poller::new(&server)?;
/// poller.register(listener.as_fd(), 1, Interest::READABLE)?;
/// let mut events = [PollEvent::default(); 16];
/// assert_eq!(poller.wait(&mut events, Some(Duration::ZERO))?, 0);
///
/// let mut stream = TcpStream::connect(&client, "10.0.0.1:80")?;
/// assert_eq!(poller.wait(&mut events, None)?, 1);
/// assert_eq!(events[0].token, 1);
/// let (conn, _) = listener.accept()?;
/// poller.register(conn.as_fd(), 2, Interest::READABLE)?;
/// stream.write_all(b"x")?;
/// let n = poller.wait(&mut events, None)?;
/// assert!(events[..n].iter().any(|e| e.token == 2 && e.is_readable()));
/// # Ok(()) }
/// ```
pub struct Poller {
    stack: Stack,
    id: usize,
    signal: Arc<EventFd>,
    /// The descriptor was handed out (see `PollerState::rearm`).
    exposed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("id", &self.id).finish()
    }
}

impl Poller {
    /// A poller with no registrations (ENETDOWN once the stack stopped).
    pub fn new(stack: &Stack) -> io::Result<Poller> {
        let signal = Arc::new(EventFd::new()?);
        let exposed = Arc::new(AtomicBool::new(false));
        let mut core = stack.lock()?;
        let state = PollerState {
            cond: Arc::new(Condvar::new()),
            regs: HashMap::new(),
            ready: VecDeque::new(),
            waiting: 0,
            woken: false,
            next_gen: 0,
            signal: signal.clone(),
            signalled: false,
            rearm: false,
            exposed: exposed.clone(),
            down: false,
            notify_deferred: false,
        };
        let pollers = &mut core.pollers;
        let id = match pollers.free.pop() {
            Some(i) => {
                pollers.slots[i] = Some(state);
                i
            }
            None => {
                pollers.slots.push(Some(state));
                pollers.slots.len() - 1
            }
        };
        Ok(Poller {
            stack: stack.clone(),
            id,
            signal,
            exposed,
        })
    }

    /// Watches `fd` for `interest`, reporting it with `token` (EPOLL_CTL_ADD).
    /// EEXIST when `fd` is registered already, EBADF when it is not open.
    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        let mut core = self.stack.lock()?;
        let core = &mut *core;
        core.entry(fd).ok_or_else(ebadf)?;
        if core.pollers.get(self.id)?.regs.contains_key(&fd) {
            return Err(errno(libc::EEXIST));
        }
        if let Some(e) = core.entry_mut(fd) {
            e.watches.push(Watch {
                poller: self.id,
                fd,
            });
        }
        let p = core.pollers.get(self.id)?;
        p.next_gen = p.next_gen.wrapping_add(1);
        let reg = Reg {
            token,
            interest,
            queued: false,
            generation: p.next_gen,
        };
        p.regs.insert(fd, reg);
        // Look at it at the next wait: it may be ready already.
        p.push(fd);
        Ok(())
    }

    /// Changes `fd`'s token and interest (EPOLL_CTL_MOD); ENOENT when it is
    /// not registered.
    pub fn modify(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        let mut core = self.stack.lock()?;
        let p = core.pollers.get(self.id)?;
        let reg = p.regs.get_mut(&fd).ok_or_else(|| errno(libc::ENOENT))?;
        reg.token = token;
        reg.interest = interest;
        p.push(fd);
        Ok(())
    }

    /// Stops watching `fd` (EPOLL_CTL_DEL); ENOENT when it is not
    /// registered.
    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        let mut core = self.stack.lock()?;
        let p = core.pollers.get(self.id)?;
        if p.regs.remove(&fd).is_none() {
            return Err(errno(libc::ENOENT));
        }
        let id = self.id;
        if let Some(e) = core.entry_any_mut(fd) {
            e.watches.retain(|w| !(w.poller == id && w.fd == fd));
        }
        Ok(())
    }

    /// Waits until a registered descriptor is ready, [`wake`](Poller::wake)
    /// is called, or `timeout` passes (`None`: no limit; zero: just look).
    /// Fills the start of `events` and returns how many it filled (0 on
    /// timeout or wake-up). ENETDOWN once the stack has stopped.
    pub fn wait(&self, events: &mut [PollEvent], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut guard = self.stack.shared().lock();
        loop {
            let core = &mut *guard;
            let n = collect(core, self.id, events)?;
            let p = core.pollers.get(self.id)?;
            let woken = std::mem::take(&mut p.woken);
            p.settle();
            if n > 0 || woken {
                return Ok(n);
            }
            if core.stopped {
                return Err(errno(libc::ENETDOWN));
            }
            if events.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(0);
            }
            let cond = p.cond.clone();
            p.waiting += 1;
            guard = match deadline {
                None => cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    cond.wait_timeout(guard, d.saturating_duration_since(Instant::now()))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            if let Ok(p) = guard.pollers.get(self.id) {
                p.waiting -= 1;
            }
        }
    }

    /// Makes a wait in another thread return now (with 0 events if none is
    /// ready), or the next wait if none is in progress; the readiness
    /// descriptor is readable until then.
    pub fn wake(&self) {
        let mut core = self.stack.shared().lock();
        if let Ok(p) = core.pollers.get(self.id) {
            p.woken = true;
            p.wake_all();
        }
    }

    /// The readiness descriptor is handed out: from now on the eventfd
    /// follows the ready list, starting with what is listed already.
    fn expose(&self) {
        if self.exposed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut core = self.stack.shared().lock();
        if let Ok(p) = core.pollers.get(self.id)
            && (!p.ready.is_empty() || p.woken || p.down)
        {
            p.raise();
        }
    }

    /// Registered descriptors.
    pub fn len(&self) -> usize {
        let mut core = self.stack.shared().lock();
        core.pollers.get(self.id).map_or(0, |p| p.regs.len())
    }

    /// True with no registration.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AsRawFd for Poller {
    /// The readiness descriptor: readable while the poller may have events
    /// (see [the protocol](Poller#the-readiness-descriptor)). Owned by the
    /// poller: valid until it is dropped.
    fn as_raw_fd(&self) -> RawFd {
        self.expose();
        self.signal.as_raw_fd()
    }
}

impl AsFd for Poller {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.expose();
        self.signal.as_fd()
    }
}

/// One pass over the ready list as it was on entry: reports what matches,
/// lists the level-triggered ones again while they stay ready.
fn collect(core: &mut Core, id: usize, events: &mut [PollEvent]) -> io::Result<usize> {
    let mut n = 0;
    let listed = core.pollers.get(id)?.ready.len();
    for _ in 0..listed {
        if n == events.len() {
            break;
        }
        let p = core.pollers.get(id)?;
        let Some((fd, generation)) = p.ready.pop_front() else {
            break;
        };
        let Some(reg) = p.regs.get_mut(&fd).filter(|r| r.generation == generation) else {
            continue;
        };
        reg.queued = false;
        let (token, interest) = (reg.token, reg.interest);
        let r = readiness(core, fd) & (interest.events | POLLERR | POLLHUP);
        if r == 0 {
            continue;
        }
        events[n] = PollEvent { token, revents: r };
        n += 1;
        if !interest.edge {
            core.pollers.get(id)?.push(fd);
        }
    }
    Ok(n)
}

impl Drop for Poller {
    fn drop(&mut self) {
        let mut guard = self.stack.shared().lock();
        let core = &mut *guard;
        let Some(Some(p)) = core.pollers.slots.get_mut(self.id).map(Option::take) else {
            return;
        };
        core.pollers.free.push(self.id);
        for fd in p.regs.keys() {
            if let Some(e) = core.entry_any_mut(*fd) {
                e.watches.retain(|w| w.poller != self.id);
            }
        }
    }
}
