//! The real libc functions, found with `dlsym(RTLD_NEXT)` on first use
//! and cached in an atomic.

use libc::{c_int, c_ulong, c_void, size_t, socklen_t, ssize_t};

macro_rules! real {
    ($($f:ident = $sym:literal : fn($($a:ty),*) -> $r:ty;)*) => {$(
        pub(crate) fn $f() -> unsafe extern "C" fn($($a),*) -> $r {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static P: AtomicUsize = AtomicUsize::new(0);
            let mut p = P.load(Ordering::Relaxed);
            if p == 0 {
                // SAFETY: a NUL-terminated symbol name.
                p = unsafe { libc::dlsym(libc::RTLD_NEXT, concat!($sym, "\0").as_ptr().cast()) }
                    as usize;
                if p == 0 {
                    let msg = concat!("ustack-preload: libc has no ", $sym, "\n");
                    // SAFETY: writing a static message to stderr, then
                    // stopping: nothing else can be done.
                    unsafe {
                        libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
                        libc::abort();
                    }
                }
                P.store(p, Ordering::Relaxed);
            }
            // SAFETY: the symbol has this C signature.
            unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($a),*) -> $r>(p) }
        }
    )*};
}

real! {
    socket = "socket": fn(c_int, c_int, c_int) -> c_int;
    bind = "bind": fn(c_int, *const libc::sockaddr, socklen_t) -> c_int;
    listen = "listen": fn(c_int, c_int) -> c_int;
    accept = "accept": fn(c_int, *mut libc::sockaddr, *mut socklen_t) -> c_int;
    accept4 = "accept4": fn(c_int, *mut libc::sockaddr, *mut socklen_t, c_int) -> c_int;
    connect = "connect": fn(c_int, *const libc::sockaddr, socklen_t) -> c_int;
    read = "read": fn(c_int, *mut c_void, size_t) -> ssize_t;
    read_chk = "__read_chk": fn(c_int, *mut c_void, size_t, size_t) -> ssize_t;
    write = "write": fn(c_int, *const c_void, size_t) -> ssize_t;
    readv = "readv": fn(c_int, *const libc::iovec, c_int) -> ssize_t;
    writev = "writev": fn(c_int, *const libc::iovec, c_int) -> ssize_t;
    send = "send": fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
    sendto = "sendto": fn(c_int, *const c_void, size_t, c_int, *const libc::sockaddr, socklen_t) -> ssize_t;
    recv = "recv": fn(c_int, *mut c_void, size_t, c_int) -> ssize_t;
    recv_chk = "__recv_chk": fn(c_int, *mut c_void, size_t, size_t, c_int) -> ssize_t;
    recvfrom = "recvfrom": fn(c_int, *mut c_void, size_t, c_int, *mut libc::sockaddr, *mut socklen_t) -> ssize_t;
    recvfrom_chk = "__recvfrom_chk": fn(c_int, *mut c_void, size_t, size_t, c_int, *mut libc::sockaddr, *mut socklen_t) -> ssize_t;
    sendmsg = "sendmsg": fn(c_int, *const libc::msghdr, c_int) -> ssize_t;
    recvmsg = "recvmsg": fn(c_int, *mut libc::msghdr, c_int) -> ssize_t;
    sendmmsg = "sendmmsg": fn(c_int, *mut libc::mmsghdr, libc::c_uint, c_int) -> c_int;
    recvmmsg = "recvmmsg": fn(c_int, *mut libc::mmsghdr, libc::c_uint, c_int, *mut libc::timespec) -> c_int;
    sendfile = "sendfile": fn(c_int, c_int, *mut libc::off_t, size_t) -> ssize_t;
    sendfile64 = "sendfile64": fn(c_int, c_int, *mut libc::off64_t, size_t) -> ssize_t;
    shutdown = "shutdown": fn(c_int, c_int) -> c_int;
    close = "close": fn(c_int) -> c_int;
    dup = "dup": fn(c_int) -> c_int;
    dup2 = "dup2": fn(c_int, c_int) -> c_int;
    dup3 = "dup3": fn(c_int, c_int, c_int) -> c_int;
    fork = "fork": fn() -> libc::pid_t;
    fcntl = "fcntl": fn(c_int, c_int, c_ulong) -> c_int;
    fcntl64 = "fcntl64": fn(c_int, c_int, c_ulong) -> c_int;
    ioctl = "ioctl": fn(c_int, c_ulong, *mut c_void) -> c_int;
    setsockopt = "setsockopt": fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
    getsockopt = "getsockopt": fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;
    getsockname = "getsockname": fn(c_int, *mut libc::sockaddr, *mut socklen_t) -> c_int;
    getpeername = "getpeername": fn(c_int, *mut libc::sockaddr, *mut socklen_t) -> c_int;
    poll = "poll": fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;
    ppoll = "ppoll": fn(*mut libc::pollfd, libc::nfds_t, *const libc::timespec, *const libc::sigset_t) -> c_int;
    select = "select": fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *mut libc::timeval) -> c_int;
    pselect = "pselect": fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *const libc::timespec, *const libc::sigset_t) -> c_int;
    epoll_ctl = "epoll_ctl": fn(c_int, c_int, c_int, *mut libc::epoll_event) -> c_int;
    epoll_wait = "epoll_wait": fn(c_int, *mut libc::epoll_event, c_int, c_int) -> c_int;
    epoll_pwait = "epoll_pwait": fn(c_int, *mut libc::epoll_event, c_int, c_int, *const libc::sigset_t) -> c_int;
}
