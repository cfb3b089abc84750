//! `libustack_preload.so`: runs unmodified programs' IPv4 sockets over
//! ustack.
//!
//! ```text
//! USTACK_TAP=tap0 USTACK_ADDR=10.0.6.2/24 USTACK_HOST_ADDR=10.0.6.1/24 \
//!     LD_PRELOAD=target/release/libustack_preload.so curl http://10.0.6.1:8000/
//! ```
//!
//! # Configuration (environment)
//!
//! - `USTACK_TAP` or `USTACK_TUN`: the device (created if missing). Without
//!   either, the shim passes every call to libc untouched.
//! - `USTACK_ADDR` (required), `USTACK_GATEWAY`, `USTACK_HOST_ADDR`,
//!   `USTACK_MTU`, `USTACK_MAC`, `USTACK_PCAP` (a pcapng of every frame):
//!   as the `ustack` CLI's flags.
//! - `USTACK_LOG`: `off`, `error`, `warn` (default: one line on stderr for
//!   each call the shim cannot serve), `info` (also the stack's start).
//! - `USTACK_IPV6`: `kernel` (default: IPv6 sockets are the kernel's) or
//!   `fail` (socket(AF_INET6) fails with EAFNOSUPPORT).
//!
//! # What it takes over
//!
//! The first `socket(AF_INET, SOCK_STREAM | SOCK_DGRAM)` starts one stack
//! for the process; from then on every such socket is a ustack socket.
//! Everything else (files, pipes, Unix and IPv6 sockets, raw and ICMP
//! sockets, descriptors the program had already) goes to libc untouched:
//! each interposed call looks the descriptor up in an array of atomics
//! and calls the real function (found with `dlsym(RTLD_NEXT)`) when it is
//! not a ustack socket.
//!
//! # Real kernel descriptors
//!
//! Each ustack socket has a [`Poller`] watching it alone; the number the
//! program sees is a duplicate of that poller's kernel eventfd, so it is
//! unique, never collides with the program's files, and is readable
//! whenever the socket's readiness may have changed. `poll`, `ppoll`,
//! `select` and `pselect` compute the true readiness of the ustack
//! sockets (which makes their eventfds unreadable again while nothing is
//! ready), then wait in the kernel on the program's kernel descriptors and
//! those eventfds together. `epoll_ctl` registers the eventfd in the
//! program's epoll with a tagged token and `epoll_wait` translates what
//! the kernel reports into the socket's events and the program's token
//! (level or edge triggered, `EPOLLONESHOT`). A token whose upper 32 bits
//! equal [`EPOLL_TAG`]'s is therefore reserved.
//!
//! # Exit
//!
//! At exit (`atexit`) the stack is stopped: connections are closed
//! gracefully and their queued data is still sent, for up to 3 s.
//!
//! # fork
//!
//! The child drops the stack (its thread does not exist there): in the
//! child every call on a ustack descriptor fails with ENETDOWN, except
//! `close`, and new `AF_INET` sockets fail with ENETDOWN too (a line on
//! stderr says so). The parent keeps its stack. A child that execs starts
//! afresh, with its own stack on its first socket if the environment
//! still names a device (two processes cannot share one TAP device).
//!
//! # Limits
//!
//! Descriptors up to 65535. Name resolution is libc's own (`getaddrinfo`
//! answers literal addresses and `/etc/hosts` without a socket; libc's DNS
//! resolver uses kernel sockets, as libc's internal calls are not
//! interposed). Ancillary data (`sendmsg`/`recvmsg` control messages) is
//! refused with EOPNOTSUPP. Blocking calls are not interrupted by signals.
//! Poll interest is per socket: a socket waited for in two ways at once
//! (two threads, or poll and epoll) is woken for the latest one.
//!
//! Safety: every exported function has its libc namesake's contract.

#![allow(clippy::missing_safety_doc)]

mod real;

use std::collections::BTreeMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use capi::conv::{self, set_errno};
use libc::{c_int, c_ulong, c_void, size_t, socklen_t, ssize_t};
use sockets_api::{
    Domain, Fd, Interest, Ioctl, PollEvent, Poller, Protocol, Shutdown, SockOpt, SockOptName,
    SockOptValue, Stack, StackBuilder, Type,
};

/// The upper 32 bits of the epoll token the shim gives a ustack socket's
/// eventfd in the program's epoll (the lower 32 are the descriptor).
pub const EPOLL_TAG: u64 = 0x5553_5441_0000_0000;
const TAG_MASK: u64 = 0xffff_ffff_0000_0000;

/// Descriptors the shim can track (an array of atomics, 64 KiB).
const MAX_FD: usize = 1 << 16;
const K_SOCK: u8 = 1;
const K_INTERNAL: u8 = 2;
static KIND: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];
static SOCKS: Mutex<BTreeMap<c_int, Arc<USock>>> = Mutex::new(BTreeMap::new());
static EPOLL: Mutex<BTreeMap<(c_int, c_int), EpReg>> = Mutex::new(BTreeMap::new());
static EPOLL_REGS: AtomicUsize = AtomicUsize::new(0);
static FORKED: AtomicBool = AtomicBool::new(false);
static STACK: OnceLock<Result<Stack, c_int>> = OnceLock::new();

// --- logging ----------------------------------------------------------------

const L_OFF: u8 = 0;
const L_ERROR: u8 = 1;
const L_WARN: u8 = 2;
const L_INFO: u8 = 3;
static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);

fn level() -> u8 {
    let l = LEVEL.load(Relaxed);
    if l != u8::MAX {
        return l;
    }
    let l = match std::env::var("USTACK_LOG").as_deref() {
        Ok("off") => L_OFF,
        Ok("error") => L_ERROR,
        Ok("info" | "debug" | "trace") => L_INFO,
        _ => L_WARN,
    };
    LEVEL.store(l, Relaxed);
    l
}

/// One line on stderr naming the call the shim could not serve.
fn warn(call: &str, what: std::fmt::Arguments<'_>) {
    if level() >= L_WARN {
        eprintln!("ustack-preload: {call}: {what}");
    }
}

// --- the socket table -------------------------------------------------------

/// A ustack socket behind a program's descriptor (shared by its dups).
struct USock {
    stack: Stack,
    fd: Fd,
    poller: Poller,
    /// The poller registration's current interest: poll bits, bit 16 set
    /// for edge-triggered; -1 before the first wait.
    interest: AtomicI32,
    /// Serialises interest changes with their readiness checks.
    check: Mutex<()>,
    /// A datagram socket.
    dgram: bool,
    /// A datagram a MSG_PEEK receive took from the stack (ustack's UDP
    /// queue cannot peek): the next receive returns it.
    peeked: Mutex<Option<(Vec<u8>, SocketAddrV4)>>,
}

impl USock {
    /// The socket's readiness within `events` (poll bits), leaving the
    /// eventfd unreadable when none holds (until the stack signals a
    /// change).
    fn check(&self, events: i16, edge: bool) -> i16 {
        let want = i32::from(events as u16) | if edge { 1 << 16 } else { 0 };
        let _g = self.check.lock().unwrap_or_else(|e| e.into_inner());
        if self.interest.swap(want, Relaxed) != want {
            let mut i = Interest::from_events(events);
            if edge {
                i = i.edge();
            }
            let _ = self.poller.modify(self.fd, 0, i);
        }
        let mut ev = [PollEvent::default(); 1];
        let held = if self.dgram && lock(&self.peeked).is_some() {
            events & libc::POLLIN
        } else {
            0
        };
        held | match self.poller.wait(&mut ev, Some(Duration::ZERO)) {
            Ok(1) => ev[0].revents,
            Ok(_) => 0,
            Err(_) => libc::POLLERR | libc::POLLHUP,
        }
    }

    /// A datagram receive: the peeked datagram first; MSG_PEEK keeps
    /// (or takes from the stack and keeps) the datagram for the next
    /// receive. (length reported, sender, truncated).
    fn recv_dgram(&self, b: &mut [u8], flags: c_int) -> io::Result<(usize, SocketAddrV4, bool)> {
        let peek = flags & libc::MSG_PEEK != 0;
        let mut held = lock(&self.peeked);
        if held.is_none() && peek {
            let mut tmp = vec![0u8; 65_536];
            let f = flags & !(libc::MSG_PEEK | libc::MSG_TRUNC);
            let (n, from) = self.stack.recvfrom_flags(self.fd, &mut tmp, f)?;
            tmp.truncate(n);
            *held = Some((tmp, from));
        }
        match held.as_ref() {
            Some((d, from)) => {
                let n = d.len().min(b.len());
                b[..n].copy_from_slice(&d[..n]);
                let from = *from;
                let full = d.len();
                if !peek {
                    *held = None;
                }
                let reported = if flags & libc::MSG_TRUNC != 0 {
                    full
                } else {
                    n
                };
                Ok((reported, from, full > b.len()))
            }
            None => {
                drop(held);
                self.stack
                    .recvfrom_flags(self.fd, b, flags)
                    .map(|(n, a)| (n, a, false))
            }
        }
    }

    /// recv/read on any socket: datagram sockets go through
    /// [`USock::recv_dgram`].
    fn recv_any(&self, b: &mut [u8], flags: c_int) -> io::Result<usize> {
        if self.dgram {
            return self.recv_dgram(b, flags).map(|r| r.0);
        }
        self.stack.recv_flags(self.fd, b, flags)
    }
}

impl Drop for USock {
    fn drop(&mut self) {
        // The poller closes its eventfd after this: let that close through.
        let p = self.poller.as_raw_fd();
        if (p as usize) < MAX_FD {
            KIND[p as usize].store(0, Relaxed);
        }
        let _ = self.stack.close(self.fd);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn kind(fd: c_int) -> u8 {
    if fd < 0 || fd as usize >= MAX_FD {
        return 0;
    }
    KIND[fd as usize].load(Relaxed)
}

fn ours(fd: c_int) -> bool {
    kind(fd) == K_SOCK
}

fn sock(fd: c_int) -> io::Result<Arc<USock>> {
    if FORKED.load(Relaxed) {
        return Err(err(libc::ENETDOWN));
    }
    lock(&SOCKS)
        .get(&fd)
        .cloned()
        .ok_or_else(|| err(libc::EBADF))
}

fn err(e: c_int) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// Gives a new ustack socket a kernel descriptor (a duplicate of its
/// poller's eventfd) and records it.
fn install(stack: &Stack, fd: Fd, cloexec: bool, dgram: bool) -> io::Result<c_int> {
    let poller = match Poller::new(stack) {
        Ok(p) => p,
        Err(e) => {
            let _ = stack.close(fd);
            return Err(e);
        }
    };
    let p = poller.as_raw_fd();
    let cmd = if cloexec {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: p is the poller's open eventfd.
    let n = unsafe { real::fcntl()(p, cmd, 0) };
    if n < 0 || n as usize >= MAX_FD || p as usize >= MAX_FD {
        let e = if n < 0 {
            io::Error::last_os_error()
        } else {
            // SAFETY: n is the descriptor just made.
            unsafe { real::close()(n) };
            err(libc::EMFILE)
        };
        let _ = stack.close(fd);
        return Err(e);
    }
    if let Err(e) = poller.register(fd, 0, Interest::READABLE) {
        // SAFETY: n is the descriptor just made.
        unsafe { real::close()(n) };
        let _ = stack.close(fd);
        return Err(e);
    }
    let s = Arc::new(USock {
        stack: stack.clone(),
        fd,
        poller,
        interest: AtomicI32::new(-1),
        check: Mutex::new(()),
        dgram,
        peeked: Mutex::new(None),
    });
    KIND[p as usize].store(K_INTERNAL, Relaxed);
    lock(&SOCKS).insert(n, s);
    KIND[n as usize].store(K_SOCK, Relaxed);
    Ok(n)
}

/// Another descriptor `n` for the socket behind `s` (dup).
fn alias(n: c_int, s: Arc<USock>) {
    if n >= 0 && (n as usize) < MAX_FD {
        lock(&SOCKS).insert(n, s);
        KIND[n as usize].store(K_SOCK, Relaxed);
    }
}

/// Forgets descriptor `fd` (before the kernel closes it): its epoll
/// registrations go first, while the number still names the eventfd.
fn forget(fd: c_int) -> Option<Arc<USock>> {
    KIND[fd as usize].store(0, Relaxed);
    if FORKED.load(Relaxed) {
        // A forked child touches none of the tables (another thread of
        // the parent may have held their locks at the fork).
        return None;
    }
    if EPOLL_REGS.load(Relaxed) > 0 {
        let mut ep = lock(&EPOLL);
        let keys: Vec<_> = ep.keys().filter(|k| k.1 == fd).copied().collect();
        for k in keys {
            ep.remove(&k);
            EPOLL_REGS.fetch_sub(1, Relaxed);
            // SAFETY: a plain epoll_ctl on descriptors we know.
            unsafe { real::epoll_ctl()(k.0, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        }
    }
    lock(&SOCKS).remove(&fd)
}

// --- starting the stack -----------------------------------------------------

fn configured() -> bool {
    static ON: AtomicU8 = AtomicU8::new(2);
    match ON.load(Relaxed) {
        0 => false,
        1 => true,
        _ => {
            let on = std::env::var_os("USTACK_TAP").is_some()
                || std::env::var_os("USTACK_TUN").is_some();
            ON.store(u8::from(on), Relaxed);
            on
        }
    }
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={v} does not parse")),
    }
}

fn builder_from_env() -> Result<StackBuilder, String> {
    let mut b = match (std::env::var("USTACK_TAP"), std::env::var("USTACK_TUN")) {
        (Ok(t), _) => StackBuilder::tap(t),
        (_, Ok(t)) => StackBuilder::tun(t),
        _ => return Err("neither USTACK_TAP nor USTACK_TUN is set".into()),
    };
    b = b.addr(env_parse("USTACK_ADDR")?.ok_or("USTACK_ADDR is required")?);
    if let Some(gw) = env_parse("USTACK_GATEWAY")? {
        b = b.gateway(gw);
    }
    if let Some(h) = env_parse("USTACK_HOST_ADDR")? {
        b = b.host_addr(h);
    }
    if let Some(m) = env_parse::<usize>("USTACK_MTU")? {
        b = b.mtu(m);
    }
    if let Some(mac) = env_parse("USTACK_MAC")? {
        b = b.mac(mac);
    }
    if let Ok(p) = std::env::var("USTACK_PCAP") {
        b = b.pcap(p);
    }
    Ok(b.shutdown_linger(Duration::from_secs(3)))
}

extern "C" fn stop_at_exit() {
    if FORKED.load(Relaxed) {
        return;
    }
    if let Some(Ok(s)) = STACK.get() {
        s.stop();
    }
}

thread_local! {
    /// This thread is starting the stack: the sockets it opens meanwhile
    /// (to configure the device's host address) are the kernel's.
    static STARTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn starting() -> bool {
    STARTING.with(|s| s.get())
}

/// The process's stack, started on first use.
fn the_stack() -> Result<&'static Stack, c_int> {
    let r = STACK.get_or_init(|| {
        STARTING.with(|s| s.set(true));
        let r = builder_from_env().map(StackBuilder::start);
        STARTING.with(|s| s.set(false));
        match r {
            Ok(Ok(s)) => {
                if level() >= L_INFO {
                    eprintln!("ustack-preload: stack {} ({}) started", s.addr(), s.mac());
                }
                // SAFETY: registers a plain extern "C" function.
                unsafe { libc::atexit(stop_at_exit) };
                Ok(s)
            }
            Ok(Err(e)) => {
                if level() >= L_ERROR {
                    eprintln!("ustack-preload: socket: cannot start the stack: {e}");
                }
                Err(conv::errno_of(&e))
            }
            Err(msg) => {
                if level() >= L_ERROR {
                    eprintln!("ustack-preload: socket: {msg}");
                }
                Err(libc::EINVAL)
            }
        }
    });
    r.as_ref().map_err(|e| *e)
}

// --- helpers ----------------------------------------------------------------

/// The C return convention for an io::Result.
fn cret<T: TryInto<i64>>(r: io::Result<T>) -> i64 {
    match r {
        Ok(v) => v.try_into().unwrap_or(i64::MAX),
        Err(e) => {
            set_errno(conv::errno_of(&e));
            -1
        }
    }
}

/// EPIPE from a write raises SIGPIPE, as the kernel does, unless the call
/// said MSG_NOSIGNAL.
fn sigpipe<T>(r: io::Result<T>, flags: c_int) -> io::Result<T> {
    if let Err(e) = &r
        && e.raw_os_error() == Some(libc::EPIPE)
        && flags & libc::MSG_NOSIGNAL == 0
    {
        // SAFETY: raising a signal in this thread.
        unsafe { libc::raise(libc::SIGPIPE) };
    }
    r
}

unsafe fn buf<'a>(p: *const c_void, n: size_t) -> io::Result<&'a [u8]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(err(libc::EFAULT));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), n) })
}

unsafe fn buf_mut<'a>(p: *mut c_void, n: size_t) -> io::Result<&'a mut [u8]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(err(libc::EFAULT));
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), n) })
}

unsafe fn iovecs<'a>(iov: *const libc::iovec, n: c_int) -> io::Result<Vec<IoSlice<'a>>> {
    if !(0..=libc::UIO_MAXIOV).contains(&n) {
        return Err(err(libc::EINVAL));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the caller's contract.
    let v = unsafe { std::slice::from_raw_parts(iov, n as usize) };
    // SAFETY: each iovec describes the caller's memory.
    v.iter()
        .map(|i| unsafe { buf(i.iov_base, i.iov_len) }.map(IoSlice::new))
        .collect()
}

unsafe fn iovecs_mut<'a>(iov: *const libc::iovec, n: c_int) -> io::Result<Vec<IoSliceMut<'a>>> {
    if !(0..=libc::UIO_MAXIOV).contains(&n) {
        return Err(err(libc::EINVAL));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the caller's contract.
    let v = unsafe { std::slice::from_raw_parts(iov, n as usize) };
    // SAFETY: each iovec describes the caller's memory.
    v.iter()
        .map(|i| unsafe { buf_mut(i.iov_base, i.iov_len) }.map(IoSliceMut::new))
        .collect()
}

/// Send flags ustack takes; MSG_MORE and MSG_EOR are hints it may ignore.
fn send_flags(call: &str, flags: c_int) -> io::Result<c_int> {
    let f = flags & !(libc::MSG_MORE | libc::MSG_EOR);
    if f & !(libc::MSG_OOB | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) != 0 {
        warn(call, format_args!("flags {flags:#x} not supported"));
        return Err(err(libc::EOPNOTSUPP));
    }
    Ok(f)
}

/// Receive flags: MSG_WAITALL is done here; MSG_NOSIGNAL and
/// MSG_CMSG_CLOEXEC mean nothing for a receive.
fn recv_flags(call: &str, flags: c_int) -> io::Result<(c_int, bool)> {
    let waitall = flags & libc::MSG_WAITALL != 0;
    let f = flags & !(libc::MSG_WAITALL | libc::MSG_NOSIGNAL | libc::MSG_CMSG_CLOEXEC);
    if f & !(libc::MSG_DONTWAIT | libc::MSG_PEEK | libc::MSG_TRUNC) != 0 {
        warn(call, format_args!("flags {flags:#x} not supported"));
        return Err(err(libc::EOPNOTSUPP));
    }
    Ok((f, waitall && f & (libc::MSG_DONTWAIT | libc::MSG_PEEK) == 0))
}

fn recv_into(s: &USock, b: &mut [u8], flags: c_int, waitall: bool) -> io::Result<usize> {
    let mut n = s.recv_any(b, flags)?;
    if !waitall || n == 0 || s.dgram {
        return Ok(n);
    }
    while n < b.len() {
        match s.stack.recv_flags(s.fd, &mut b[n..], flags) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(_) => break,
        }
    }
    Ok(n)
}

// --- socket, bind, listen, accept, connect ---------------------------------

/// socket(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let real = || unsafe { real::socket()(domain, ty, protocol) };
    if domain == libc::AF_INET6
        && configured()
        && std::env::var("USTACK_IPV6").as_deref() == Ok("fail")
    {
        warn(
            "socket",
            format_args!("AF_INET6 refused (USTACK_IPV6=fail): EAFNOSUPPORT"),
        );
        set_errno(libc::EAFNOSUPPORT);
        return -1;
    }
    if domain != libc::AF_INET || !configured() || starting() {
        return real();
    }
    let Ok((t, icmp)) = conv::socket_type(ty, protocol) else {
        return real();
    };
    if icmp {
        return real();
    }
    if FORKED.load(Relaxed) {
        warn(
            "socket",
            format_args!("AF_INET after fork: the child has no stack (ENETDOWN)"),
        );
        set_errno(libc::ENETDOWN);
        return -1;
    }
    let stack = match the_stack() {
        Ok(s) => s,
        Err(e) => {
            set_errno(e);
            return -1;
        }
    };
    let flags = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let r = stack
        .socket_flags(Domain::Inet, t, Protocol::Default, flags)
        .and_then(|fd| install(stack, fd, flags & libc::SOCK_CLOEXEC != 0, t == Type::Dgram));
    cret(r) as c_int
}

/// bind(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const libc::sockaddr, len: socklen_t) -> c_int {
    if !ours(fd) {
        return unsafe { real::bind()(fd, addr, len) };
    }
    // SAFETY: the caller's contract.
    let a = unsafe { conv::read_sockaddr(addr, len) };
    cret((|| {
        let s = sock(fd)?;
        s.stack.bind(s.fd, a.map_err(err)?).map(|()| 0)
    })()) as c_int
}

/// listen(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    if !ours(fd) {
        return unsafe { real::listen()(fd, backlog) };
    }
    cret((|| {
        let s = sock(fd)?;
        s.stack.listen(s.fd, backlog.max(1) as usize).map(|()| 0)
    })()) as c_int
}

fn do_accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> io::Result<c_int> {
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(err(libc::EINVAL));
    }
    let s = sock(fd)?;
    let (nfd, peer) = s.stack.accept4(s.fd, flags)?;
    let n = install(&s.stack, nfd, flags & libc::SOCK_CLOEXEC != 0, false)?;
    // SAFETY: the caller's contract.
    unsafe { conv::write_sockaddr(peer, addr, len) };
    Ok(n)
}

/// accept(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::accept()(fd, addr, len) };
    }
    cret(do_accept(fd, addr, len, 0)) as c_int
}

/// accept4(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::accept4()(fd, addr, len, flags) };
    }
    cret(do_accept(fd, addr, len, flags)) as c_int
}

/// connect(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const libc::sockaddr, len: socklen_t) -> c_int {
    if !ours(fd) {
        return unsafe { real::connect()(fd, addr, len) };
    }
    // SAFETY: the caller's contract.
    let (fam, a) = unsafe {
        (
            conv::sockaddr_family(addr, len),
            conv::read_sockaddr(addr, len),
        )
    };
    cret((|| {
        let s = sock(fd)?;
        if fam == Some(libc::AF_UNSPEC) {
            return s.stack.disconnect(s.fd).map(|()| 0);
        }
        s.stack.connect(s.fd, a.map_err(err)?).map(|()| 0)
    })()) as c_int
}

// --- data -------------------------------------------------------------------

/// read(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, b: *mut c_void, n: size_t) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::read()(fd, b, n) };
    }
    // SAFETY: the caller's contract.
    cret((|| {
        let s = sock(fd)?;
        // SAFETY: the caller's contract.
        s.recv_any(unsafe { buf_mut(b, n) }?, 0)
    })()) as ssize_t
}

/// __read_chk (read with _FORTIFY_SOURCE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __read_chk(fd: c_int, b: *mut c_void, n: size_t, blen: size_t) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::read_chk()(fd, b, n, blen) };
    }
    // SAFETY: forwarded.
    unsafe { read(fd, b, n.min(blen)) }
}

/// write(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, b: *const c_void, n: size_t) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::write()(fd, b, n) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(fd)?;
            // SAFETY: the caller's contract.
            s.stack.send(s.fd, unsafe { buf(b, n) }?)
        })(),
        0,
    )) as ssize_t
}

/// readv(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::readv()(fd, iov, cnt) };
    }
    cret((|| {
        let s = sock(fd)?;
        // SAFETY: the caller's contract.
        let mut v = unsafe { iovecs_mut(iov, cnt) }?;
        s.stack.readv(s.fd, &mut v)
    })()) as ssize_t
}

/// writev(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::writev()(fd, iov, cnt) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(fd)?;
            // SAFETY: the caller's contract.
            let v = unsafe { iovecs(iov, cnt) }?;
            s.stack.writev(s.fd, &v)
        })(),
        0,
    )) as ssize_t
}

/// send(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, b: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::send()(fd, b, n, flags) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(fd)?;
            let f = send_flags("send", flags)?;
            // SAFETY: the caller's contract.
            s.stack.send_flags(s.fd, unsafe { buf(b, n) }?, f)
        })(),
        flags,
    )) as ssize_t
}

/// sendto(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    b: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::sendto()(fd, b, n, flags, addr, alen) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(fd)?;
            let f = send_flags("sendto", flags)?;
            // SAFETY: the caller's contract.
            let data = unsafe { buf(b, n) }?;
            let to = if addr.is_null() {
                None
            } else {
                // SAFETY: the caller's contract.
                Some(unsafe { conv::read_sockaddr(addr, alen) }.map_err(err)?)
            };
            s.stack.sendmsg(s.fd, &[IoSlice::new(data)], to, f)
        })(),
        flags,
    )) as ssize_t
}

/// recv(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, b: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::recv()(fd, b, n, flags) };
    }
    cret((|| {
        let s = sock(fd)?;
        let (f, all) = recv_flags("recv", flags)?;
        // SAFETY: the caller's contract.
        recv_into(&s, unsafe { buf_mut(b, n) }?, f, all)
    })()) as ssize_t
}

/// __recv_chk (recv with _FORTIFY_SOURCE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    b: *mut c_void,
    n: size_t,
    blen: size_t,
    flags: c_int,
) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::recv_chk()(fd, b, n, blen, flags) };
    }
    // SAFETY: forwarded.
    unsafe { recv(fd, b, n.min(blen), flags) }
}

/// recvfrom(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    b: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::recvfrom()(fd, b, n, flags, addr, alen) };
    }
    cret((|| {
        let s = sock(fd)?;
        let (f, _) = recv_flags("recvfrom", flags)?;
        // SAFETY: the caller's contract.
        let data = unsafe { buf_mut(b, n) }?;
        let (len, from) = if s.dgram {
            let (len, from, _) = s.recv_dgram(data, f)?;
            (len, from)
        } else {
            s.stack.recvfrom_flags(s.fd, data, f)?
        };
        // SAFETY: the caller's contract.
        unsafe { conv::write_sockaddr(from, addr, alen) };
        Ok(len)
    })()) as ssize_t
}

/// __recvfrom_chk (recvfrom with _FORTIFY_SOURCE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    b: *mut c_void,
    n: size_t,
    blen: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::recvfrom_chk()(fd, b, n, blen, flags, addr, alen) };
    }
    // SAFETY: forwarded.
    unsafe { recvfrom(fd, b, n.min(blen), flags, addr, alen) }
}

/// sendmsg(2) for plain data (no ancillary data).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::sendmsg()(fd, msg, flags) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(fd)?;
            let f = send_flags("sendmsg", flags)?;
            if msg.is_null() {
                return Err(err(libc::EFAULT));
            }
            // SAFETY: the caller's contract.
            let m = unsafe { &*msg };
            if m.msg_controllen > 0 {
                warn("sendmsg", format_args!("ancillary data not supported"));
                return Err(err(libc::EOPNOTSUPP));
            }
            let to = if m.msg_name.is_null() {
                None
            } else {
                // SAFETY: the caller's contract.
                Some(
                    unsafe { conv::read_sockaddr(m.msg_name.cast(), m.msg_namelen) }
                        .map_err(err)?,
                )
            };
            // SAFETY: the caller's contract.
            let v = unsafe { iovecs(m.msg_iov, m.msg_iovlen as c_int) }?;
            s.stack.sendmsg(s.fd, &v, to, f)
        })(),
        flags,
    )) as ssize_t
}

/// recvmsg(2) for plain data (no ancillary data is ever returned).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    if !ours(fd) {
        return unsafe { real::recvmsg()(fd, msg, flags) };
    }
    cret((|| {
        let s = sock(fd)?;
        let (f, _) = recv_flags("recvmsg", flags)?;
        if msg.is_null() {
            return Err(err(libc::EFAULT));
        }
        // SAFETY: the caller's contract.
        let m = unsafe { &mut *msg };
        // SAFETY: the caller's contract.
        let mut v = unsafe { iovecs_mut(m.msg_iov, m.msg_iovlen as c_int) }?;
        let r = if s.dgram && (f & libc::MSG_PEEK != 0 || lock(&s.peeked).is_some()) {
            let cap: usize = v.iter().map(|b| b.len()).sum();
            let mut tmp = vec![0u8; cap];
            let (len, from, truncated) = s.recv_dgram(&mut tmp, f)?;
            let mut at = 0;
            for b in v.iter_mut() {
                let k = b.len().min(len.min(cap) - at);
                b[..k].copy_from_slice(&tmp[at..at + k]);
                at += k;
            }
            sockets_api::RecvMsg {
                len,
                addr: Some(from),
                truncated,
            }
        } else {
            s.stack.recvmsg(s.fd, &mut v, f)?
        };
        m.msg_controllen = 0;
        m.msg_flags = if r.truncated { libc::MSG_TRUNC } else { 0 };
        if !m.msg_name.is_null() {
            match r.addr {
                // SAFETY: the caller's contract.
                Some(a) => unsafe {
                    conv::write_sockaddr(a, m.msg_name.cast(), &mut m.msg_namelen)
                },
                None => m.msg_namelen = 0,
            }
        }
        Ok(r.len)
    })()) as ssize_t
}

/// sendmmsg(2): one sendmsg per message, as the kernel does; stops at the
/// first failure (reported only when nothing was sent).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: libc::c_uint,
    flags: c_int,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::sendmmsg()(fd, msgs, vlen, flags) };
    }
    if msgs.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    let mut sent = 0;
    for i in 0..vlen.min(libc::UIO_MAXIOV as libc::c_uint) as usize {
        // SAFETY: the caller's array of vlen messages.
        let m = unsafe { &mut *msgs.add(i) };
        // SAFETY: forwarded.
        let n = unsafe { sendmsg(fd, &m.msg_hdr, flags) };
        if n < 0 {
            return if sent > 0 { sent } else { -1 };
        }
        m.msg_len = n as libc::c_uint;
        sent += 1;
    }
    sent
}

/// recvmmsg(2): the first message as recvmsg would take it, the rest
/// only while more are queued (no timeout support: EINVAL with one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut libc::mmsghdr,
    vlen: libc::c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::recvmmsg()(fd, msgs, vlen, flags, timeout) };
    }
    if !timeout.is_null() {
        warn(
            "recvmmsg",
            format_args!("a timeout is not supported (EINVAL)"),
        );
        set_errno(libc::EINVAL);
        return -1;
    }
    if msgs.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    let mut got = 0;
    let mut f = flags & !libc::MSG_WAITFORONE;
    for i in 0..vlen.min(libc::UIO_MAXIOV as libc::c_uint) as usize {
        // SAFETY: the caller's array of vlen messages.
        let m = unsafe { &mut *msgs.add(i) };
        // SAFETY: forwarded.
        let n = unsafe { recvmsg(fd, &mut m.msg_hdr, f) };
        if n < 0 {
            return if got > 0 { got } else { -1 };
        }
        m.msg_len = n as libc::c_uint;
        got += 1;
        if flags & libc::MSG_WAITFORONE != 0 {
            f |= libc::MSG_DONTWAIT;
        }
    }
    got
}

/// sendfile(2) to a ustack socket: the file is read here and sent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile(
    out: c_int,
    input: c_int,
    offset: *mut libc::off_t,
    count: size_t,
) -> ssize_t {
    if !ours(out) {
        return unsafe { real::sendfile()(out, input, offset, count) };
    }
    cret(sigpipe(
        (|| {
            let s = sock(out)?;
            let mut chunk = vec![0u8; count.min(1 << 16)];
            let mut total = 0usize;
            while total < count {
                let want = (count - total).min(chunk.len());
                let n = if offset.is_null() {
                    // SAFETY: chunk has want bytes.
                    unsafe { real::read()(input, chunk.as_mut_ptr().cast(), want) }
                } else {
                    // SAFETY: chunk has want bytes; offset is the caller's.
                    unsafe { libc::pread(input, chunk.as_mut_ptr().cast(), want, *offset) }
                };
                if n < 0 {
                    if total > 0 {
                        break;
                    }
                    return Err(io::Error::last_os_error());
                }
                if n == 0 {
                    break;
                }
                let n = n as usize;
                let sent = match s.stack.send(s.fd, &chunk[..n]) {
                    Ok(k) => k,
                    Err(_) if total > 0 => 0,
                    Err(e) => return Err(e),
                };
                if offset.is_null() && sent < n {
                    // Give back what was read but not sent.
                    // SAFETY: seeking the caller's file.
                    unsafe {
                        libc::lseek(
                            input,
                            sent as libc::off_t - n as libc::off_t,
                            libc::SEEK_CUR,
                        )
                    };
                }
                if !offset.is_null() {
                    // SAFETY: the caller's offset.
                    unsafe { *offset += sent as libc::off_t };
                }
                total += sent;
                if sent < n {
                    break;
                }
            }
            Ok(total)
        })(),
        0,
    )) as ssize_t
}

/// sendfile64: glibc's name for sendfile with a 64-bit offset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    input: c_int,
    offset: *mut libc::off64_t,
    count: size_t,
) -> ssize_t {
    if !ours(out) {
        return unsafe { real::sendfile64()(out, input, offset, count) };
    }
    // SAFETY: off_t is off64_t on the 64-bit targets the shim supports.
    unsafe { sendfile(out, input, offset.cast(), count) }
}

// --- shutdown, close, dup ---------------------------------------------------

/// shutdown(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if !ours(fd) {
        return unsafe { real::shutdown()(fd, how) };
    }
    cret((|| {
        let s = sock(fd)?;
        let how = match how {
            libc::SHUT_RD => Shutdown::Read,
            libc::SHUT_WR => Shutdown::Write,
            libc::SHUT_RDWR => Shutdown::Both,
            _ => return Err(err(libc::EINVAL)),
        };
        s.stack.shutdown(s.fd, how).map(|()| 0)
    })()) as c_int
}

/// close(2). The socket closes with its last descriptor.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    match kind(fd) {
        K_SOCK => {
            let s = forget(fd);
            // SAFETY: fd is the program's (our eventfd duplicate).
            let r = unsafe { real::close()(fd) };
            drop(s);
            r
        }
        K_INTERNAL => {
            // A poller's own eventfd: the shim closes it with its socket.
            0
        }
        _ => {
            // Closing an epoll descriptor drops its ustack registrations.
            if EPOLL_REGS.load(Relaxed) > 0 && !FORKED.load(Relaxed) {
                let mut ep = lock(&EPOLL);
                let keys: Vec<_> = ep
                    .range((fd, c_int::MIN)..=(fd, c_int::MAX))
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    ep.remove(&k);
                    EPOLL_REGS.fetch_sub(1, Relaxed);
                }
            }
            unsafe { real::close()(fd) }
        }
    }
}

/// Makes `new` (which the kernel just made a duplicate of `old`) name
/// `old`'s socket; `new`'s previous socket, if any, was forgotten before.
fn after_dup(old: c_int, new: c_int) {
    if new < 0 {
        return;
    }
    let s = lock(&SOCKS).get(&old).cloned();
    if let Some(s) = s {
        alias(new, s);
    }
}

/// dup(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let n = unsafe { real::dup()(fd) };
    if ours(fd) && !FORKED.load(Relaxed) {
        after_dup(fd, n);
    }
    n
}

unsafe fn dup_onto(old: c_int, new: c_int, flags: c_int, three: bool) -> c_int {
    if kind(new) == K_INTERNAL {
        warn(
            "dup2",
            format_args!("descriptor {new} is ustack's own (EBUSY)"),
        );
        set_errno(libc::EBUSY);
        return -1;
    }
    if old == new && !three {
        return unsafe { real::dup2()(old, new) };
    }
    let prev = if ours(new) && old != new {
        forget(new)
    } else {
        None
    };
    let n = if three {
        unsafe { real::dup3()(old, new, flags) }
    } else {
        unsafe { real::dup2()(old, new) }
    };
    drop(prev);
    if ours(old) && !FORKED.load(Relaxed) {
        after_dup(old, n);
    }
    n
}

/// dup2(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    unsafe { dup_onto(old, new, 0, false) }
}

/// dup3(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    unsafe { dup_onto(old, new, flags, true) }
}

/// fork(2): the child drops the stack (see the crate docs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fork() -> libc::pid_t {
    let pid = unsafe { real::fork()() };
    if pid == 0 && STACK.get().is_some() {
        FORKED.store(true, Relaxed);
    }
    pid
}

// --- fcntl, ioctl, options, names --------------------------------------------

fn nonblocking(s: &USock) -> io::Result<bool> {
    Ok(matches!(
        s.stack.getsockopt(s.fd, SockOptName::NonBlocking)?,
        SockOptValue::Opt(SockOpt::NonBlocking(true))
    ))
}

unsafe fn do_fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if !ours(fd) {
        return unsafe { real::fcntl()(fd, cmd, arg) };
    }
    match cmd {
        libc::F_GETFL => cret((|| {
            let s = sock(fd)?;
            Ok(libc::O_RDWR
                | if nonblocking(&s)? {
                    libc::O_NONBLOCK
                } else {
                    0
                })
        })()) as c_int,
        libc::F_SETFL => cret((|| {
            let s = sock(fd)?;
            s.stack
                .set_nonblocking(s.fd, arg as c_int & libc::O_NONBLOCK != 0)
                .map(|()| 0)
        })()) as c_int,
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let n = unsafe { real::fcntl()(fd, cmd, arg) };
            if !FORKED.load(Relaxed) {
                after_dup(fd, n);
            }
            n
        }
        libc::F_GETFD | libc::F_SETFD => unsafe { real::fcntl()(fd, cmd, arg) },
        _ => {
            warn(
                "fcntl",
                format_args!("command {cmd} not supported on a ustack socket (EINVAL)"),
            );
            set_errno(libc::EINVAL);
            -1
        }
    }
}

/// fcntl(2): O_NONBLOCK through F_GETFL/F_SETFL, F_DUPFD(_CLOEXEC),
/// F_GETFD/F_SETFD. (Declared with one integer argument: on the
/// supported targets a variadic argument arrives where a fixed one does.)
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    unsafe { do_fcntl(fd, cmd, arg) }
}

/// fcntl64: glibc's name for fcntl under _FILE_OFFSET_BITS=64.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if !ours(fd) {
        return unsafe { real::fcntl64()(fd, cmd, arg) };
    }
    unsafe { do_fcntl(fd, cmd, arg) }
}

/// ioctl(2): FIONREAD, FIONBIO, SIOCOUTQ and SIOCATMARK on ustack sockets.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    if !ours(fd) {
        return unsafe { real::ioctl()(fd, req, arg) };
    }
    cret((|| {
        let s = sock(fd)?;
        let what = match req {
            libc::FIONREAD => Ioctl::FionRead,
            libc::TIOCOUTQ => Ioctl::SiocOutQ,
            0x8905 => Ioctl::SiocAtMark,
            libc::FIONBIO => {
                if arg.is_null() {
                    return Err(err(libc::EFAULT));
                }
                // SAFETY: FIONBIO takes an int pointer.
                Ioctl::FionBio(unsafe { *arg.cast::<c_int>() } != 0)
            }
            _ => {
                warn(
                    "ioctl",
                    format_args!("request {req:#x} not supported (ENOTTY)"),
                );
                return Err(err(libc::ENOTTY));
            }
        };
        let v = s.stack.ioctl(s.fd, what)?;
        if !matches!(what, Ioctl::FionBio(_)) {
            if arg.is_null() {
                return Err(err(libc::EFAULT));
            }
            // SAFETY: these requests take an int pointer.
            unsafe { *arg.cast::<c_int>() = v.min(c_int::MAX as usize) as c_int };
        }
        Ok(0)
    })()) as c_int
}

/// setsockopt(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::setsockopt()(fd, level, name, val, len) };
    }
    cret((|| {
        let s = sock(fd)?;
        let Some(n) = conv::opt_name(level, name) else {
            warn(
                "setsockopt",
                format_args!("option level {level} name {name} not supported (ENOPROTOOPT)"),
            );
            return Err(err(libc::ENOPROTOOPT));
        };
        // SAFETY: the caller's contract.
        let opt = unsafe { conv::read_opt(n, val, len) }.map_err(err)?;
        s.stack.setsockopt(s.fd, opt).map(|()| 0)
    })()) as c_int
}

/// getsockopt(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::getsockopt()(fd, level, name, val, len) };
    }
    cret((|| {
        let s = sock(fd)?;
        if (level, name) == (libc::SOL_SOCKET, libc::SO_DOMAIN)
            || (level, name) == (libc::SOL_SOCKET, libc::SO_PROTOCOL)
        {
            let ty = s.stack.getsockopt(s.fd, SockOptName::Type)?;
            let v = match (name, ty) {
                (libc::SO_DOMAIN, _) => libc::AF_INET,
                (_, SockOptValue::Type(Type::Stream)) => libc::IPPROTO_TCP,
                _ => libc::IPPROTO_UDP,
            };
            let sv = SockOptValue::Error(Some(v));
            // SAFETY: the caller's contract.
            return unsafe { conv::write_opt(&sv, val, len) }
                .map_err(err)
                .map(|()| 0);
        }
        let Some(n) = conv::opt_name(level, name) else {
            warn(
                "getsockopt",
                format_args!("option level {level} name {name} not supported (ENOPROTOOPT)"),
            );
            return Err(err(libc::ENOPROTOOPT));
        };
        let v = s.stack.getsockopt(s.fd, n)?;
        // SAFETY: the caller's contract.
        unsafe { conv::write_opt(&v, val, len) }.map_err(err)?;
        Ok(0)
    })()) as c_int
}

fn name_call(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    f: impl FnOnce(&USock) -> io::Result<SocketAddrV4>,
) -> c_int {
    cret((|| {
        let s = sock(fd)?;
        let a = f(&s)?;
        if addr.is_null() || len.is_null() {
            return Err(err(libc::EFAULT));
        }
        // SAFETY: the caller's contract.
        unsafe { conv::write_sockaddr(a, addr, len) };
        Ok(0)
    })()) as c_int
}

/// getsockname(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getsockname(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::getsockname()(fd, addr, len) };
    }
    name_call(fd, addr, len, |s| s.stack.getsockname(s.fd))
}

/// getpeername(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getpeername(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::getpeername()(fd, addr, len) };
    }
    name_call(fd, addr, len, |s| s.stack.getpeername(s.fd))
}

// --- poll, select -----------------------------------------------------------

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

fn to_timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// poll over a mix of ustack sockets and kernel descriptors: the sockets'
/// true readiness first (which leaves their eventfds unreadable when
/// nothing holds), then one kernel wait on the kernel descriptors and the
/// sockets' eventfds; again after an eventfd woke it.
unsafe fn poll_mixed(
    fds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let socks: Vec<Option<Arc<USock>>> = fds
        .iter()
        .map(|f| if ours(f.fd) { sock(f.fd).ok() } else { None })
        .collect();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut k: Vec<libc::pollfd> = fds.to_vec();
    loop {
        let mut ready = 0;
        for ((f, s), kf) in fds.iter_mut().zip(&socks).zip(k.iter_mut()) {
            kf.revents = 0;
            if let Some(s) = s {
                f.revents = s.check(f.events, false);
                kf.events = libc::POLLIN;
                ready += i32::from(f.revents != 0);
            } else if ours(f.fd) {
                // Forked child, or closed meanwhile.
                f.revents = libc::POLLNVAL;
                kf.fd = -1;
                ready += 1;
            }
        }
        let t = if ready > 0 {
            Some(Duration::ZERO)
        } else {
            remaining(deadline)
        };
        let ts = t.map(to_timespec);
        let tp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: k is a valid array.
        let n = unsafe { real::ppoll()(k.as_mut_ptr(), k.len() as libc::nfds_t, tp, sigmask) };
        if n < 0 {
            return if ready > 0 { ready } else { -1 };
        }
        let mut woke_sock = false;
        for ((f, s), kf) in fds.iter_mut().zip(&socks).zip(&k) {
            if s.is_some() {
                woke_sock |= kf.revents != 0;
            } else if kf.fd >= 0 && !ours(f.fd) {
                f.revents = kf.revents;
                ready += i32::from(kf.revents != 0);
            }
        }
        if ready > 0 {
            return ready;
        }
        if !woke_sock && deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
    }
}

unsafe fn poll_impl(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: Option<Duration>,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let slice: &mut [libc::pollfd] = if nfds == 0 || fds.is_null() {
        &mut []
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
    };
    // SAFETY: forwarded.
    unsafe { poll_mixed(slice, timeout, sigmask) }
}

fn any_ours(fds: *const libc::pollfd, nfds: libc::nfds_t) -> bool {
    if fds.is_null() {
        return false;
    }
    // SAFETY: the caller's contract.
    let s = unsafe { std::slice::from_raw_parts(fds, nfds as usize) };
    s.iter().any(|f| ours(f.fd))
}

/// poll(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    if !any_ours(fds, nfds) {
        return unsafe { real::poll()(fds, nfds, timeout) };
    }
    let t = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
    unsafe { poll_impl(fds, nfds, t, std::ptr::null()) }
}

/// __poll_chk (poll with _FORTIFY_SOURCE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: c_int,
    _len: size_t,
) -> c_int {
    unsafe { poll(fds, nfds, timeout) }
}

/// ppoll(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    ts: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    if !any_ours(fds, nfds) {
        return unsafe { real::ppoll()(fds, nfds, ts, sigmask) };
    }
    // SAFETY: the caller's contract.
    let t = unsafe { ts.as_ref() }.map(|t| {
        Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    });
    unsafe { poll_impl(fds, nfds, t, sigmask) }
}

/// __ppoll_chk (ppoll with _FORTIFY_SOURCE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    ts: *const libc::timespec,
    sigmask: *const libc::sigset_t,
    _len: size_t,
) -> c_int {
    unsafe { ppoll(fds, nfds, ts, sigmask) }
}

unsafe fn select_impl(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: Option<Duration>,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let n = nfds.clamp(0, libc::FD_SETSIZE as c_int);
    let mut fds = Vec::new();
    // SAFETY (FD_ISSET/FD_CLR/FD_SET): the sets are the caller's, fd < FD_SETSIZE.
    let isset = |set: *mut libc::fd_set, fd| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    for fd in 0..n {
        let mut ev = 0;
        if isset(r, fd) {
            ev |= libc::POLLIN;
        }
        if isset(w, fd) {
            ev |= libc::POLLOUT;
        }
        if isset(e, fd) {
            ev |= libc::POLLPRI;
        }
        if ev != 0 {
            fds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
    }
    // SAFETY: a valid array.
    let rc = unsafe { poll_mixed(&mut fds, timeout, sigmask) };
    if rc < 0 {
        return -1;
    }
    for set in [r, w, e] {
        if !set.is_null() {
            // SAFETY: the caller's set.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0;
    for f in &fds {
        if f.revents & libc::POLLNVAL != 0 {
            set_errno(libc::EBADF);
            return -1;
        }
        let rd = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
        let wr = libc::POLLOUT | libc::POLLERR;
        for (set, bits, want) in [
            (r, rd, libc::POLLIN),
            (w, wr, libc::POLLOUT),
            (e, libc::POLLPRI, libc::POLLPRI),
        ] {
            if !set.is_null() && f.events & want != 0 && f.revents & bits != 0 {
                // SAFETY: the caller's set.
                unsafe { libc::FD_SET(f.fd, set) };
                count += 1;
            }
        }
    }
    count
}

fn any_set(nfds: c_int, sets: [*mut libc::fd_set; 3]) -> bool {
    let n = nfds.clamp(0, libc::FD_SETSIZE as c_int);
    (0..n).any(|fd| {
        // SAFETY: the caller's sets, fd < FD_SETSIZE.
        ours(fd)
            && sets
                .iter()
                .any(|s| !s.is_null() && unsafe { libc::FD_ISSET(fd, *s) })
    })
}

/// select(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    if !any_set(nfds, [r, w, e]) {
        return unsafe { real::select()(nfds, r, w, e, tv) };
    }
    // SAFETY: the caller's contract.
    let t = unsafe { tv.as_ref() }.map(|t| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    });
    unsafe { select_impl(nfds, r, w, e, t, std::ptr::null()) }
}

/// pselect(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    if !any_set(nfds, [r, w, e]) {
        return unsafe { real::pselect()(nfds, r, w, e, ts, sigmask) };
    }
    // SAFETY: the caller's contract.
    let t = unsafe { ts.as_ref() }.map(|t| {
        Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    });
    unsafe { select_impl(nfds, r, w, e, t, sigmask) }
}

// --- epoll ------------------------------------------------------------------

/// A ustack socket's registration in one of the program's epolls.
struct EpReg {
    sock: Arc<USock>,
    events: u32,
    data: u64,
    /// EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD.
    disabled: bool,
}

/// epoll_ctl(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    if !ours(fd) {
        return unsafe { real::epoll_ctl()(epfd, op, fd, ev) };
    }
    cret((|| {
        let s = sock(fd)?;
        let mut ep = lock(&EPOLL);
        let key = (epfd, fd);
        let want = if op == libc::EPOLL_CTL_DEL {
            None
        } else {
            if ev.is_null() {
                return Err(err(libc::EFAULT));
            }
            // SAFETY: the caller's event (a packed struct: copied out).
            Some(unsafe { std::ptr::read_unaligned(ev) })
        };
        let mut kev = libc::epoll_event {
            events: 0,
            u64: EPOLL_TAG | fd as u32 as u64,
        };
        if let Some(w) = want {
            kev.events =
                libc::EPOLLIN as u32 | (w.events & (libc::EPOLLET | libc::EPOLLONESHOT) as u32);
        }
        match op {
            libc::EPOLL_CTL_ADD if ep.contains_key(&key) => return Err(err(libc::EEXIST)),
            libc::EPOLL_CTL_MOD | libc::EPOLL_CTL_DEL if !ep.contains_key(&key) => {
                return Err(err(libc::ENOENT));
            }
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD | libc::EPOLL_CTL_DEL => {}
            _ => return Err(err(libc::EINVAL)),
        }
        // SAFETY: kev is valid.
        if unsafe { real::epoll_ctl()(epfd, op, fd, &mut kev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        match want {
            None => {
                ep.remove(&key);
                EPOLL_REGS.fetch_sub(1, Relaxed);
            }
            Some(w) => {
                let reg = EpReg {
                    sock: s,
                    events: w.events,
                    data: w.u64,
                    disabled: false,
                };
                if ep.insert(key, reg).is_none() {
                    EPOLL_REGS.fetch_add(1, Relaxed);
                }
            }
        }
        Ok(0)
    })()) as c_int
}

/// What an epoll registration reports now, as epoll events (None: nothing).
fn epoll_ready(reg: &mut EpReg) -> Option<libc::epoll_event> {
    if reg.disabled {
        return None;
    }
    let edge = reg.events & libc::EPOLLET as u32 != 0;
    // poll(2) and epoll share the bit values of these events.
    let mask = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLPRI | libc::EPOLLRDHUP) as u32;
    let r = reg.sock.check((reg.events & mask) as i16, edge);
    let r = r as u16 as u32 & (reg.events & mask | (libc::EPOLLERR | libc::EPOLLHUP) as u32);
    if r == 0 {
        return None;
    }
    if reg.events & libc::EPOLLONESHOT as u32 != 0 {
        reg.disabled = true;
    }
    Some(libc::epoll_event {
        events: r,
        u64: reg.data,
    })
}

/// The kernel woke an EPOLLONESHOT registration for a change that left
/// the socket not ready: the kernel disarmed it, so it is armed again
/// (its eventfd was made unreadable by the check, so only a later change
/// fires it).
fn rearm(epfd: c_int, fd: c_int, reg: &EpReg) {
    if reg.events & libc::EPOLLONESHOT as u32 == 0 {
        return;
    }
    let mut kev = libc::epoll_event {
        events: libc::EPOLLIN as u32 | (reg.events & (libc::EPOLLET | libc::EPOLLONESHOT) as u32),
        u64: EPOLL_TAG | fd as u32 as u64,
    };
    // SAFETY: kev is valid; fd is registered in epfd.
    unsafe { real::epoll_ctl()(epfd, libc::EPOLL_CTL_MOD, fd, &mut kev) };
}

unsafe fn epoll_wait_impl(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    sigmask: *const libc::sigset_t,
) -> c_int {
    let deadline = (timeout >= 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    loop {
        let t = remaining(deadline).map_or(-1, |d| {
            d.as_millis().div_ceil(1).min(c_int::MAX as u128) as c_int
        });
        // SAFETY: the caller's contract.
        let n = unsafe { real::epoll_pwait()(epfd, events, max, t, sigmask) };
        if n <= 0 {
            return n;
        }
        let mut out = 0;
        {
            // A forked child has no stack: it drops the sockets' events
            // and takes no lock.
            let forked = FORKED.load(Relaxed);
            let mut guard = (!forked).then(|| lock(&EPOLL));
            for i in 0..n as usize {
                // SAFETY: the kernel filled n events (packed: copied).
                let ev = unsafe { std::ptr::read_unaligned(events.add(i)) };
                let tok = ev.u64;
                let translated = if tok & TAG_MASK == EPOLL_TAG {
                    let fd = (tok & 0xffff_ffff) as u32 as c_int;
                    match guard.as_mut().and_then(|ep| ep.get_mut(&(epfd, fd))) {
                        Some(reg) => {
                            let r = epoll_ready(reg);
                            if r.is_none() && !reg.disabled {
                                rearm(epfd, fd, reg);
                            }
                            r
                        }
                        None => None,
                    }
                } else {
                    Some(ev)
                };
                if let Some(e) = translated {
                    // SAFETY: out <= i < n <= max.
                    unsafe { std::ptr::write_unaligned(events.add(out), e) };
                    out += 1;
                }
            }
        }
        if out > 0 {
            return out as c_int;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
    }
}

/// epoll_wait(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if EPOLL_REGS.load(Relaxed) == 0 {
        return unsafe { real::epoll_wait()(epfd, events, max, timeout) };
    }
    unsafe { epoll_wait_impl(epfd, events, max, timeout, std::ptr::null()) }
}

/// epoll_pwait(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    sigmask: *const libc::sigset_t,
) -> c_int {
    if EPOLL_REGS.load(Relaxed) == 0 {
        return unsafe { real::epoll_pwait()(epfd, events, max, timeout, sigmask) };
    }
    unsafe { epoll_wait_impl(epfd, events, max, timeout, sigmask) }
}
