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

mod data;
mod real;
mod table;
mod wait;

use table::*;
use wait::*;

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

/// The caller's iovec array, checked as readv/writev do (EINVAL beyond
/// UIO_MAXIOV).
unsafe fn iov_array<'a>(iov: *const libc::iovec, n: c_int) -> io::Result<&'a [libc::iovec]> {
    if !(0..=libc::UIO_MAXIOV).contains(&n) {
        return Err(err(libc::EINVAL));
    }
    if n == 0 {
        return Ok(&[]);
    }
    // SAFETY: the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(iov, n as usize) })
}

unsafe fn iovecs<'a>(iov: *const libc::iovec, n: c_int) -> io::Result<Vec<IoSlice<'a>>> {
    // SAFETY: the caller's contract; each iovec describes the caller's memory.
    unsafe { iov_array(iov, n) }?
        .iter()
        .map(|i| unsafe { buf(i.iov_base, i.iov_len) }.map(IoSlice::new))
        .collect()
}

unsafe fn iovecs_mut<'a>(iov: *const libc::iovec, n: c_int) -> io::Result<Vec<IoSliceMut<'a>>> {
    // SAFETY: the caller's contract; each iovec describes the caller's memory.
    unsafe { iov_array(iov, n) }?
        .iter()
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
