//! `libustack`: the ustack socket calls for C programs.
//!
//! Built as `libustack.so` (cdylib) and `libustack.a` (staticlib); the
//! declarations are in `capi/include/ustack.h`, generated from this file
//! by cbindgen (the test `header_is_current` fails when the committed
//! header is stale; `USTACK_BLESS=1 cargo test -p ustack-capi` rewrites
//! it).
//!
//! A program starts a stack from a [`UstackConfig`] (device, address,
//! gateway, host address, MTU, capture file) with [`ustack_start`], then
//! makes BSD-shaped calls on it: `ustack_socket`, `ustack_bind`,
//! `ustack_listen`, `ustack_accept`, `ustack_connect`, `ustack_send`,
//! `ustack_recv`, `ustack_sendto`, `ustack_recvfrom`, `ustack_shutdown`,
//! `ustack_close`, `ustack_getsockopt`, `ustack_setsockopt`,
//! `ustack_getsockname`, `ustack_getpeername`, `ustack_poll` and
//! `ustack_fcntl` (`F_GETFL`/`F_SETFL` with `O_NONBLOCK`). They take and
//! return what their libc namesakes do (`struct sockaddr_in`, `struct
//! pollfd`, option values as `int`, `struct timeval`, `struct linger`):
//! -1 with Linux's errno on failure. Descriptors are the stack's own
//! (small integers, not kernel descriptors): use them only with these
//! calls. `examples/c/echo.c` is a complete program.
//!
//! Safety: every `unsafe extern "C"` function here has its libc
//! namesake's contract (pointers valid for the lengths given), plus a
//! stack pointer that [`ustack_start`] returned and [`ustack_stop`] did
//! not free yet.

#![warn(missing_docs)]
#![allow(clippy::missing_safety_doc)]

pub mod conv;

use std::ffi::{CStr, c_char};
use std::io;
use std::time::Duration;

use libc::{c_int, c_uint, c_void, size_t, socklen_t, ssize_t};
use sockets_api::{
    Domain, PollFd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue, Stack, StackBuilder,
};

use conv::{ret, set_errno};

/// What [`ustack_start`] starts. Strings are NUL-terminated; NULL leaves a
/// field out.
#[repr(C)]
pub struct UstackConfig {
    /// TAP (or TUN, with `tun` set) device name, created if missing.
    pub device: *const c_char,
    /// Non-zero: `device` is a TUN device (bare IP packets, no ARP).
    pub tun: c_int,
    /// Our address and prefix, "10.0.0.2/24" (required).
    pub addr: *const c_char,
    /// Default gateway, "10.0.0.1" (optional).
    pub gateway: *const c_char,
    /// Address and prefix given to the kernel's side of the device
    /// (optional).
    pub host_addr: *const c_char,
    /// Link MTU (0: the device's).
    pub mtu: c_uint,
    /// A pcapng file recording every frame (optional).
    pub pcap: *const c_char,
}

/// A running stack (opaque to C).
pub struct Ustack {
    stack: Stack,
}

/// A string field, or EINVAL when it is not UTF-8 or does not parse.
unsafe fn field<T: std::str::FromStr>(p: *const c_char) -> Result<Option<T>, c_int> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes NUL-terminated strings.
    let s = unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| libc::EINVAL)?;
    s.parse().map(Some).map_err(|_| libc::EINVAL)
}

/// A builder for `cfg` (shared with the LD_PRELOAD shim's environment).
///
/// # Safety
/// The strings in `cfg` are NULL or NUL-terminated.
pub unsafe fn builder(cfg: &UstackConfig) -> Result<StackBuilder, c_int> {
    // SAFETY: forwarded.
    let device: String = unsafe { field(cfg.device) }?.ok_or(libc::EINVAL)?;
    let mut b = if cfg.tun != 0 {
        StackBuilder::tun(device)
    } else {
        StackBuilder::tap(device)
    };
    // SAFETY (each field): forwarded.
    b = b.addr(unsafe { field(cfg.addr) }?.ok_or(libc::EINVAL)?);
    if let Some(gw) = unsafe { field(cfg.gateway) }? {
        b = b.gateway(gw);
    }
    if let Some(h) = unsafe { field(cfg.host_addr) }? {
        b = b.host_addr(h);
    }
    if cfg.mtu != 0 {
        b = b.mtu(cfg.mtu as usize);
    }
    if let Some(p) = unsafe { field::<String>(cfg.pcap) }? {
        b = b.pcap(p);
    }
    Ok(b)
}

/// Starts a stack; NULL with errno set on failure (EINVAL for a bad
/// configuration, the device's error otherwise). Free it with
/// [`ustack_stop`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_start(cfg: *const UstackConfig) -> *mut Ustack {
    if cfg.is_null() {
        set_errno(libc::EFAULT);
        return std::ptr::null_mut();
    }
    // SAFETY: cfg is valid by contract.
    let b = match unsafe { builder(&*cfg) } {
        Ok(b) => b,
        Err(e) => {
            set_errno(e);
            return std::ptr::null_mut();
        }
    };
    match b.start() {
        Ok(stack) => Box::into_raw(Box::new(Ustack { stack })),
        Err(e) => {
            set_errno(conv::errno_of(&e));
            std::ptr::null_mut()
        }
    }
}

/// Stops a stack (open connections are closed gracefully: queued data is
/// still delivered, for up to 10 s) and frees it. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_stop(s: *mut Ustack) {
    if !s.is_null() {
        // SAFETY: s came from ustack_start and is freed once.
        let s = unsafe { Box::from_raw(s) };
        s.stack.stop();
    }
}

/// Writes the stack's MAC address into `mac` (6 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_mac(s: *const Ustack, mac: *mut u8) -> c_int {
    ret((|| {
        let bytes = stack(s)?.mac().0;
        if mac.is_null() {
            return Err(err(libc::EFAULT));
        }
        // SAFETY: mac has 6 writable bytes (contract).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), mac, 6) };
        Ok(0)
    })()) as c_int
}

fn stack<'a>(s: *const Ustack) -> io::Result<&'a Stack> {
    if s.is_null() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    // SAFETY: a pointer ustack_start returned (contract).
    Ok(unsafe { &(*s).stack })
}

fn err(e: c_int) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// socket(2): `AF_INET` with `SOCK_STREAM` or `SOCK_DGRAM` (and
/// `IPPROTO_ICMP` for a ping socket), `SOCK_NONBLOCK`/`SOCK_CLOEXEC` or'ed
/// into the type.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_socket(
    s: *const Ustack,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> c_int {
    ret((|| {
        let st = stack(s)?;
        if domain != libc::AF_INET {
            return Err(err(libc::EAFNOSUPPORT));
        }
        let (t, icmp) = conv::socket_type(ty, protocol).map_err(err)?;
        let proto = if icmp {
            Protocol::Icmp
        } else {
            Protocol::Default
        };
        let flags = ty & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        st.socket_flags(Domain::Inet, t, proto, flags)
    })()) as c_int
}

/// bind(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_bind(
    s: *const Ustack,
    fd: c_int,
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> c_int {
    // SAFETY: addr has len bytes (contract).
    let a = unsafe { conv::read_sockaddr(addr, len) };
    ret((|| stack(s)?.bind(fd, a.map_err(err)?).map(|()| 0))()) as c_int
}

/// listen(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_listen(s: *const Ustack, fd: c_int, backlog: c_int) -> c_int {
    ret((|| {
        stack(s)?.listen(fd, backlog.max(0) as usize).map(|()| 0)
    })()) as c_int
}

/// accept(2); `addr`/`len` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_accept(
    s: *const Ustack,
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    ret((|| {
        let (nfd, peer) = stack(s)?.accept(fd)?;
        // SAFETY: contract.
        unsafe { conv::write_sockaddr(peer, addr, len) };
        Ok(nfd)
    })()) as c_int
}

/// connect(2) (`AF_UNSPEC` dissolves a datagram association).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_connect(
    s: *const Ustack,
    fd: c_int,
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> c_int {
    // SAFETY: contract.
    let (fam, a) = unsafe {
        (
            conv::sockaddr_family(addr, len),
            conv::read_sockaddr(addr, len),
        )
    };
    ret((|| {
        let st = stack(s)?;
        if fam == Some(libc::AF_UNSPEC) {
            return st.disconnect(fd).map(|()| 0);
        }
        st.connect(fd, a.map_err(err)?).map(|()| 0)
    })()) as c_int
}

unsafe fn slice<'a>(buf: *const c_void, len: size_t) -> io::Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(err(libc::EFAULT));
    }
    // SAFETY: contract.
    Ok(unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) })
}

unsafe fn slice_mut<'a>(buf: *mut c_void, len: size_t) -> io::Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(err(libc::EFAULT));
    }
    // SAFETY: contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

/// send(2) (`MSG_DONTWAIT`, `MSG_NOSIGNAL`, `MSG_OOB`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_send(
    s: *const Ustack,
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: contract.
    ret((|| {
        stack(s)?
            .send_flags(fd, unsafe { slice(buf, len) }?, flags)
            .map(|n| n as i64)
    })()) as ssize_t
}

/// recv(2) (`MSG_DONTWAIT`, `MSG_PEEK`, `MSG_TRUNC`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_recv(
    s: *const Ustack,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: contract.
    ret((|| {
        stack(s)?
            .recv_flags(fd, unsafe { slice_mut(buf, len) }?, flags)
            .map(|n| n as i64)
    })()) as ssize_t
}

/// sendto(2); a NULL `addr` is send(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_sendto(
    s: *const Ustack,
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: socklen_t,
) -> ssize_t {
    ret((|| {
        let st = stack(s)?;
        // SAFETY: contract.
        let data = unsafe { slice(buf, len) }?;
        if addr.is_null() {
            return st.send_flags(fd, data, flags).map(|n| n as i64);
        }
        // SAFETY: contract.
        let to = unsafe { conv::read_sockaddr(addr, alen) }.map_err(err)?;
        let bufs = [io::IoSlice::new(data)];
        st.sendmsg(fd, &bufs, Some(to), flags).map(|n| n as i64)
    })()) as ssize_t
}

/// recvfrom(2); `addr`/`alen` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_recvfrom(
    s: *const Ustack,
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    ret((|| {
        // SAFETY: contract.
        let data = unsafe { slice_mut(buf, len) }?;
        let (n, from) = stack(s)?.recvfrom_flags(fd, data, flags)?;
        // SAFETY: contract.
        unsafe { conv::write_sockaddr(from, addr, alen) };
        Ok(n as i64)
    })()) as ssize_t
}

/// shutdown(2) (`SHUT_RD`, `SHUT_WR`, `SHUT_RDWR`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_shutdown(s: *const Ustack, fd: c_int, how: c_int) -> c_int {
    ret((|| {
        let how = match how {
            libc::SHUT_RD => Shutdown::Read,
            libc::SHUT_WR => Shutdown::Write,
            libc::SHUT_RDWR => Shutdown::Both,
            _ => return Err(err(libc::EINVAL)),
        };
        stack(s)?.shutdown(fd, how).map(|()| 0)
    })()) as c_int
}

/// close(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_close(s: *const Ustack, fd: c_int) -> c_int {
    ret((|| stack(s)?.close(fd).map(|()| 0))()) as c_int
}

/// setsockopt(2): the `SOL_SOCKET`, `IPPROTO_TCP` and `IPPROTO_IP` options
/// ustack has (ENOPROTOOPT for the others).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_setsockopt(
    s: *const Ustack,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    ret((|| {
        let st = stack(s)?;
        let n = conv::opt_name(level, name).ok_or_else(|| err(libc::ENOPROTOOPT))?;
        // SAFETY: contract.
        let opt = unsafe { conv::read_opt(n, val, len) }.map_err(err)?;
        st.setsockopt(fd, opt).map(|()| 0)
    })()) as c_int
}

/// getsockopt(2), including `SO_ERROR`, `SO_TYPE` and `SO_ACCEPTCONN`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_getsockopt(
    s: *const Ustack,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    ret((|| {
        let st = stack(s)?;
        let n = conv::opt_name(level, name).ok_or_else(|| err(libc::ENOPROTOOPT))?;
        let v = st.getsockopt(fd, n)?;
        // SAFETY: contract.
        unsafe { conv::write_opt(&v, val, len) }.map_err(err)?;
        Ok(0)
    })()) as c_int
}

/// getsockname(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_getsockname(
    s: *const Ustack,
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    ret((|| {
        let a = stack(s)?.getsockname(fd)?;
        // SAFETY: contract.
        unsafe { conv::write_sockaddr(a, addr, len) };
        Ok(0)
    })()) as c_int
}

/// getpeername(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_getpeername(
    s: *const Ustack,
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    ret((|| {
        let a = stack(s)?.getpeername(fd)?;
        // SAFETY: contract.
        unsafe { conv::write_sockaddr(a, addr, len) };
        Ok(0)
    })()) as c_int
}

/// poll(2) over the stack's descriptors (`timeout` in ms, -1: no limit).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_poll(
    s: *const Ustack,
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: c_int,
) -> c_int {
    ret((|| {
        let st = stack(s)?;
        if nfds > 0 && fds.is_null() {
            return Err(err(libc::EFAULT));
        }
        let c: &mut [libc::pollfd] = if nfds == 0 {
            &mut []
        } else {
            // SAFETY: contract.
            unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
        };
        let mut p: Vec<PollFd> = c.iter().map(|f| PollFd::new(f.fd, f.events)).collect();
        let t = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
        let n = st.poll(&mut p, t)?;
        for (c, p) in c.iter_mut().zip(&p) {
            c.revents = p.revents;
        }
        Ok(n as i64)
    })()) as c_int
}

/// fcntl(2): `F_GETFL` (`O_RDWR`, with `O_NONBLOCK` when set) and
/// `F_SETFL` (`O_NONBLOCK`); EINVAL for other commands.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ustack_fcntl(
    s: *const Ustack,
    fd: c_int,
    cmd: c_int,
    arg: c_int,
) -> c_int {
    ret((|| {
        let st = stack(s)?;
        match cmd {
            libc::F_GETFL => {
                let nb = matches!(
                    st.getsockopt(fd, SockOptName::NonBlocking)?,
                    SockOptValue::Opt(SockOpt::NonBlocking(true))
                );
                Ok(i64::from(
                    libc::O_RDWR | if nb { libc::O_NONBLOCK } else { 0 },
                ))
            }
            libc::F_SETFL => st
                .set_nonblocking(fd, arg & libc::O_NONBLOCK != 0)
                .map(|()| 0),
            _ => Err(err(libc::EINVAL)),
        }
    })()) as c_int
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno() -> c_int {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn sin(a: &str) -> libc::sockaddr_in {
        let a: std::net::SocketAddrV4 = a.parse().unwrap();
        // SAFETY: sockaddr_in is plain old data.
        let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        s.sin_family = libc::AF_INET as libc::sa_family_t;
        s.sin_port = a.port().to_be();
        s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
        s
    }

    const SIN_LEN: socklen_t = size_of::<libc::sockaddr_in>() as socklen_t;

    /// Two stacks on an in-memory link, driven through the C calls.
    #[test]
    fn the_c_calls_carry_a_connection_and_report_linux_errnos() {
        let (a, b) = StackBuilder::memory_pair(
            StackBuilder::memory().addr("10.0.0.1/24".parse().unwrap()),
            StackBuilder::memory().addr("10.0.0.2/24".parse().unwrap()),
        )
        .unwrap();
        let (a, b) = (Ustack { stack: a }, Ustack { stack: b });
        let (pa, pb): (*const Ustack, *const Ustack) = (&a, &b);
        // SAFETY (every call below): the stacks live for the whole test,
        // and the pointers and lengths describe local variables.
        unsafe {
            assert_eq!(ustack_socket(pa, libc::AF_INET6, libc::SOCK_STREAM, 0), -1);
            assert_eq!(errno(), libc::EAFNOSUPPORT);

            let l = ustack_socket(pa, libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(l >= 0);
            let one: c_int = 1;
            let any = sin("0.0.0.0:9000");
            assert_eq!(
                ustack_setsockopt(
                    pa,
                    l,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&raw const one).cast(),
                    4
                ),
                0
            );
            assert_eq!(
                ustack_setsockopt(
                    pa,
                    l,
                    libc::IPPROTO_TCP,
                    libc::TCP_FASTOPEN,
                    (&raw const one).cast(),
                    4
                ),
                -1
            );
            assert_eq!(errno(), libc::ENOPROTOOPT);
            assert_eq!(ustack_bind(pa, l, (&raw const any).cast(), SIN_LEN), 0);
            assert_eq!(ustack_listen(pa, l, 8), 0);
            let fl = ustack_fcntl(pa, l, libc::F_GETFL, 0);
            assert_eq!(fl & libc::O_NONBLOCK, 0);
            assert_eq!(ustack_fcntl(pa, l, libc::F_SETFL, fl | libc::O_NONBLOCK), 0);
            assert_ne!(ustack_fcntl(pa, l, libc::F_GETFL, 0) & libc::O_NONBLOCK, 0);
            assert_eq!(
                ustack_accept(pa, l, std::ptr::null_mut(), std::ptr::null_mut()),
                -1
            );
            assert_eq!(errno(), libc::EAGAIN);

            let c = ustack_socket(pb, libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_TCP);
            let to = sin("10.0.0.1:9000");
            assert_eq!(ustack_connect(pb, c, (&raw const to).cast(), SIN_LEN), 0);
            let mut pfd = libc::pollfd {
                fd: l,
                events: libc::POLLIN,
                revents: 0,
            };
            assert_eq!(ustack_poll(pa, &mut pfd, 1, -1), 1);
            assert_ne!(pfd.revents & libc::POLLIN, 0);
            let mut peer = sin("0.0.0.0:0");
            let mut len = SIN_LEN;
            let s = ustack_accept(pa, l, (&raw mut peer).cast(), &mut len);
            assert!(s >= 0);
            assert_eq!(len, SIN_LEN);
            assert_eq!(u32::from_be(peer.sin_addr.s_addr), 0x0a00_0002);

            let msg = b"hello over the C calls";
            assert_eq!(
                ustack_send(pb, c, msg.as_ptr().cast(), msg.len(), 0),
                msg.len() as ssize_t
            );
            assert_eq!(ustack_shutdown(pb, c, libc::SHUT_WR), 0);
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                let n = ustack_recv(pa, s, buf.as_mut_ptr().cast(), buf.len(), 0);
                assert!(n >= 0, "recv: errno {}", errno());
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n as usize]);
            }
            assert_eq!(got, msg);

            let mut name = sin("0.0.0.0:0");
            let mut len = SIN_LEN;
            assert_eq!(
                ustack_getpeername(pb, c, (&raw mut name).cast(), &mut len),
                0
            );
            assert_eq!(u16::from_be(name.sin_port), 9000);
            let mut soerr: c_int = -1;
            let mut len: socklen_t = 4;
            assert_eq!(
                ustack_getsockopt(
                    pb,
                    c,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&raw mut soerr).cast(),
                    &mut len
                ),
                0
            );
            assert_eq!(soerr, 0);

            // UDP: sendto and recvfrom with the sender's address.
            let u = ustack_socket(pa, libc::AF_INET, libc::SOCK_DGRAM, 0);
            let ua = sin("0.0.0.0:7000");
            assert_eq!(ustack_bind(pa, u, (&raw const ua).cast(), SIN_LEN), 0);
            let v = ustack_socket(pb, libc::AF_INET, libc::SOCK_DGRAM, 0);
            let dst = sin("10.0.0.1:7000");
            assert_eq!(
                ustack_sendto(
                    pb,
                    v,
                    b"dgram".as_ptr().cast(),
                    5,
                    0,
                    (&raw const dst).cast(),
                    SIN_LEN
                ),
                5
            );
            let mut from = sin("0.0.0.0:0");
            let mut len = SIN_LEN;
            let n = ustack_recvfrom(
                pa,
                u,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut len,
            );
            assert_eq!(&buf[..n as usize], b"dgram");
            assert_eq!(u32::from_be(from.sin_addr.s_addr), 0x0a00_0002);

            for (p, fd) in [(pa, s), (pa, l), (pb, c), (pa, u), (pb, v)] {
                assert_eq!(ustack_close(p, fd), 0);
            }
            assert_eq!(ustack_close(pa, s), -1);
            assert_eq!(errno(), libc::EBADF);
        }
    }
}
