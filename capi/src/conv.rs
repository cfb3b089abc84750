//! Conversions between the C ABI (sockaddr_in, option numbers and values,
//! errno) and the sockets-api types. Shared by `libustack` and the
//! LD_PRELOAD shim.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use libc::{c_int, c_void, socklen_t};
use sockets_api::{Algorithm, SockOpt, SockOptName, SockOptValue, Type};

/// Sets the calling thread's errno.
pub fn set_errno(e: c_int) {
    // SAFETY: __errno_location always returns the calling thread's errno.
    unsafe { *libc::__errno_location() = e };
}

/// The errno an `io::Error` carries (EIO when it carries none).
pub fn errno_of(e: &io::Error) -> c_int {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Maps a result to the C convention: the value, or -1 with errno set.
pub fn ret<T: Into<i64>>(r: io::Result<T>) -> i64 {
    match r {
        Ok(v) => v.into(),
        Err(e) => {
            set_errno(errno_of(&e));
            -1
        }
    }
}

/// Reads an IPv4 socket address: EFAULT on a null pointer, EINVAL when
/// `len` is short, EAFNOSUPPORT for another family.
///
/// # Safety
/// `addr` is null or points to `len` readable bytes.
pub unsafe fn read_sockaddr(
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> Result<SocketAddrV4, c_int> {
    if addr.is_null() {
        return Err(libc::EFAULT);
    }
    if (len as usize) < size_of::<libc::sockaddr_in>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller vouches for len bytes, which cover a sockaddr_in.
    let sin = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
    if c_int::from(sin.sin_family) != libc::AF_INET {
        return Err(libc::EAFNOSUPPORT);
    }
    Ok(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
}

/// The family of a socket address (AF_UNSPEC for connect's "dissolve").
///
/// # Safety
/// `addr` is null or points to at least `len` readable bytes.
pub unsafe fn sockaddr_family(addr: *const libc::sockaddr, len: socklen_t) -> Option<c_int> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: sa_family is the first field, within len.
    Some(c_int::from(unsafe {
        std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>())
    }))
}

/// Writes `a` as a sockaddr_in into `addr` (truncated to `*len`, as the
/// kernel does) and sets `*len` to the full size. Null `addr` writes
/// nothing.
///
/// # Safety
/// `addr` is null, or `len` is valid and `addr` has `*len` writable bytes.
pub unsafe fn write_sockaddr(a: SocketAddrV4, addr: *mut libc::sockaddr, len: *mut socklen_t) {
    if addr.is_null() || len.is_null() {
        return;
    }
    // SAFETY: sockaddr_in is plain old data.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = a.port().to_be();
    sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    let full = size_of::<libc::sockaddr_in>();
    // SAFETY: the caller vouches for *len writable bytes at addr.
    unsafe {
        let n = full.min(*len as usize);
        std::ptr::copy_nonoverlapping((&raw const sin).cast::<u8>(), addr.cast::<u8>(), n);
        *len = full as socklen_t;
    }
}

/// The sockets-api type of a C socket type (flags masked off) and
/// protocol: `Some((type, icmp))`, or the errno Linux gives.
pub fn socket_type(ty: c_int, protocol: c_int) -> Result<(Type, bool), c_int> {
    let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    match (base, protocol) {
        (libc::SOCK_STREAM, 0 | libc::IPPROTO_TCP) => Ok((Type::Stream, false)),
        (libc::SOCK_DGRAM, 0 | libc::IPPROTO_UDP) => Ok((Type::Dgram, false)),
        (libc::SOCK_DGRAM, libc::IPPROTO_ICMP) => Ok((Type::Dgram, true)),
        (libc::SOCK_STREAM | libc::SOCK_DGRAM, _) => Err(libc::EPROTONOSUPPORT),
        _ => Err(libc::ESOCKTNOSUPPORT),
    }
}

/// The option a (level, name) pair names, or None when ustack has no such
/// option (the caller answers ENOPROTOOPT).
pub fn opt_name(level: c_int, name: c_int) -> Option<SockOptName> {
    Some(match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => SockOptName::ReuseAddr,
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => SockOptName::ReusePort,
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => SockOptName::KeepAlive,
        (libc::SOL_SOCKET, libc::SO_BROADCAST) => SockOptName::Broadcast,
        (libc::SOL_SOCKET, libc::SO_OOBINLINE) => SockOptName::OobInline,
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => SockOptName::RcvBuf,
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => SockOptName::SndBuf,
        (libc::SOL_SOCKET, libc::SO_RCVLOWAT) => SockOptName::RcvLowat,
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => SockOptName::RcvTimeo,
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => SockOptName::SndTimeo,
        (libc::SOL_SOCKET, libc::SO_LINGER) => SockOptName::Linger,
        (libc::SOL_SOCKET, libc::SO_ERROR) => SockOptName::Error,
        (libc::SOL_SOCKET, libc::SO_TYPE) => SockOptName::Type,
        (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => SockOptName::AcceptConn,
        (libc::SOL_SOCKET, libc::SO_MAX_PACING_RATE) => SockOptName::MaxPacingRate,
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => SockOptName::NoDelay,
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => SockOptName::MaxSeg,
        (libc::IPPROTO_TCP, libc::TCP_CORK) => SockOptName::Cork,
        (libc::IPPROTO_TCP, libc::TCP_QUICKACK) => SockOptName::QuickAck,
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => SockOptName::UserTimeout,
        (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) => SockOptName::DeferAccept,
        (libc::IPPROTO_TCP, libc::TCP_CONGESTION) => SockOptName::Congestion,
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => SockOptName::KeepIdle,
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => SockOptName::KeepIntvl,
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => SockOptName::KeepCnt,
        (libc::IPPROTO_IP, libc::IP_TTL) => SockOptName::Ttl,
        (libc::IPPROTO_IP, libc::IP_TOS) => SockOptName::Tos,
        _ => return None,
    })
}

/// Reads a C int option value (EINVAL when shorter than an int).
///
/// # Safety
/// `val` points to `len` readable bytes.
unsafe fn int_val(val: *const c_void, len: socklen_t) -> Result<c_int, c_int> {
    if val.is_null() {
        return Err(libc::EFAULT);
    }
    if (len as usize) < size_of::<c_int>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: len covers an int.
    Ok(unsafe { std::ptr::read_unaligned(val.cast::<c_int>()) })
}

/// Reads a C struct timeval (None for zero: no timeout).
///
/// # Safety
/// `val` points to `len` readable bytes.
unsafe fn timeval_val(val: *const c_void, len: socklen_t) -> Result<Option<Duration>, c_int> {
    if val.is_null() {
        return Err(libc::EFAULT);
    }
    if (len as usize) < size_of::<libc::timeval>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: len covers a timeval.
    let tv = unsafe { std::ptr::read_unaligned(val.cast::<libc::timeval>()) };
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(libc::EDOM);
    }
    let d = Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64);
    Ok((!d.is_zero()).then_some(d))
}

/// The option setsockopt(level, name, val, len) sets.
///
/// # Safety
/// `val` points to `len` readable bytes.
pub unsafe fn read_opt(
    name: SockOptName,
    val: *const c_void,
    len: socklen_t,
) -> Result<SockOpt, c_int> {
    // SAFETY (all reads below): the caller vouches for len bytes at val.
    let int = || unsafe { int_val(val, len) };
    let uint = || int().map(|v| v.max(0) as usize);
    Ok(match name {
        SockOptName::ReuseAddr => SockOpt::ReuseAddr(int()? != 0),
        SockOptName::ReusePort => SockOpt::ReusePort(int()? != 0),
        SockOptName::KeepAlive => SockOpt::KeepAlive(int()? != 0),
        SockOptName::Broadcast => SockOpt::Broadcast(int()? != 0),
        SockOptName::OobInline => SockOpt::OobInline(int()? != 0),
        SockOptName::NoDelay => SockOpt::NoDelay(int()? != 0),
        SockOptName::Cork => SockOpt::Cork(int()? != 0),
        SockOptName::QuickAck => SockOpt::QuickAck(int()? != 0),
        SockOptName::RcvBuf => SockOpt::RcvBuf(uint()?),
        SockOptName::SndBuf => SockOpt::SndBuf(uint()?),
        SockOptName::RcvLowat => SockOpt::RcvLowat(uint()?),
        SockOptName::MaxSeg => SockOpt::MaxSeg(u16::try_from(int()?).map_err(|_| libc::EINVAL)?),
        SockOptName::Ttl => SockOpt::Ttl(u8::try_from(int()?).map_err(|_| libc::EINVAL)?),
        SockOptName::Tos => SockOpt::Tos(int()? as u8),
        SockOptName::UserTimeout => SockOpt::UserTimeout(Duration::from_millis(uint()? as u64)),
        SockOptName::DeferAccept => SockOpt::DeferAccept(Duration::from_secs(uint()? as u64)),
        SockOptName::KeepIdle => SockOpt::KeepIdle(Duration::from_secs(uint()? as u64)),
        SockOptName::KeepIntvl => SockOpt::KeepIntvl(Duration::from_secs(uint()? as u64)),
        SockOptName::KeepCnt => SockOpt::KeepCnt(u32::try_from(int()?).map_err(|_| libc::EINVAL)?),
        SockOptName::RcvTimeo => SockOpt::RcvTimeo(unsafe { timeval_val(val, len) }?),
        SockOptName::SndTimeo => SockOpt::SndTimeo(unsafe { timeval_val(val, len) }?),
        SockOptName::MaxPacingRate => {
            // sk_setsockopt: a 64-bit value when at least 8 bytes are
            // given, else a 32-bit one whose ~0 also means no cap.
            if val.is_null() {
                return Err(libc::EFAULT);
            }
            if len as usize >= size_of::<u64>() {
                // SAFETY: len covers a u64.
                SockOpt::MaxPacingRate(unsafe { std::ptr::read_unaligned(val.cast::<u64>()) })
            } else {
                let v = int()? as u32;
                SockOpt::MaxPacingRate(if v == u32::MAX {
                    u64::MAX
                } else {
                    u64::from(v)
                })
            }
        }
        SockOptName::Linger => {
            if val.is_null() {
                return Err(libc::EFAULT);
            }
            if (len as usize) < size_of::<libc::linger>() {
                return Err(libc::EINVAL);
            }
            // SAFETY: len covers a struct linger.
            let l = unsafe { std::ptr::read_unaligned(val.cast::<libc::linger>()) };
            SockOpt::Linger((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0) as u64)))
        }
        SockOptName::Congestion => {
            if val.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: len bytes are readable.
            let bytes = unsafe { std::slice::from_raw_parts(val.cast::<u8>(), len as usize) };
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            let name = std::str::from_utf8(&bytes[..end]).map_err(|_| libc::ENOENT)?;
            SockOpt::Congestion(name.parse::<Algorithm>().map_err(|_| libc::ENOENT)?)
        }
        // Read-only options.
        SockOptName::Error
        | SockOptName::Type
        | SockOptName::AcceptConn
        | SockOptName::TcpInfo
        | SockOptName::NonBlocking => return Err(libc::ENOPROTOOPT),
    })
}

/// Writes `bytes` as getsockopt does: truncated to `*len`, `*len` set to
/// what was written.
///
/// # Safety
/// `len` is valid and `val` has `*len` writable bytes.
unsafe fn put(bytes: &[u8], val: *mut c_void, len: *mut socklen_t) -> Result<(), c_int> {
    if val.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller vouches for *len bytes.
    unsafe {
        let n = bytes.len().min(*len as usize);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), val.cast::<u8>(), n);
        *len = n as socklen_t;
    }
    Ok(())
}

/// Writes a getsockopt answer in its C shape (int, timeval, linger, or a
/// congestion control name).
///
/// # Safety
/// `len` is valid and `val` has `*len` writable bytes.
pub unsafe fn write_opt(
    v: &SockOptValue,
    val: *mut c_void,
    len: *mut socklen_t,
) -> Result<(), c_int> {
    let int =
        |i: i64| (i.clamp(i64::from(c_int::MIN), i64::from(c_int::MAX)) as c_int).to_ne_bytes();
    let tv = |d: Option<Duration>| {
        let d = d.unwrap_or_default();
        let t = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: timeval is plain old data.
        unsafe {
            std::slice::from_raw_parts((&raw const t).cast::<u8>(), size_of::<libc::timeval>())
                .to_vec()
        }
    };
    let bytes: Vec<u8> = match v {
        SockOptValue::Error(e) => int(i64::from(e.unwrap_or(0))).to_vec(),
        SockOptValue::Type(Type::Stream) => int(i64::from(libc::SOCK_STREAM)).to_vec(),
        SockOptValue::Type(Type::Dgram) => int(i64::from(libc::SOCK_DGRAM)).to_vec(),
        SockOptValue::AcceptConn(b) => int(i64::from(*b)).to_vec(),
        SockOptValue::TcpInfo(_) => return Err(libc::ENOPROTOOPT),
        SockOptValue::Opt(o) => match o {
            SockOpt::ReuseAddr(b)
            | SockOpt::ReusePort(b)
            | SockOpt::KeepAlive(b)
            | SockOpt::Broadcast(b)
            | SockOpt::OobInline(b)
            | SockOpt::NoDelay(b)
            | SockOpt::Cork(b)
            | SockOpt::QuickAck(b)
            | SockOpt::NonBlocking(b) => int(i64::from(*b)).to_vec(),
            SockOpt::RcvBuf(n) | SockOpt::SndBuf(n) | SockOpt::RcvLowat(n) => {
                int(*n as i64).to_vec()
            }
            SockOpt::MaxSeg(m) => int(i64::from(*m)).to_vec(),
            SockOpt::Ttl(t) | SockOpt::Tos(t) => int(i64::from(*t)).to_vec(),
            SockOpt::UserTimeout(d) => int(d.as_millis() as i64).to_vec(),
            SockOpt::DeferAccept(d) | SockOpt::KeepIdle(d) | SockOpt::KeepIntvl(d) => {
                int(d.as_secs() as i64).to_vec()
            }
            SockOpt::KeepCnt(n) => int(i64::from(*n)).to_vec(),
            SockOpt::MaxPacingRate(r) => {
                // sk_getsockopt: 64 bits if the buffer holds them, else
                // 32 bits saturated at ~0U.
                // SAFETY: the caller vouches that a non-null `len` is valid.
                if !len.is_null() && unsafe { *len } as usize >= size_of::<u64>() {
                    r.to_ne_bytes().to_vec()
                } else {
                    ((*r).min(u64::from(u32::MAX)) as u32)
                        .to_ne_bytes()
                        .to_vec()
                }
            }
            SockOpt::RcvTimeo(d) | SockOpt::SndTimeo(d) => tv(*d),
            SockOpt::Linger(l) => {
                let li = libc::linger {
                    l_onoff: c_int::from(l.is_some()),
                    l_linger: l.map_or(0, |d| d.as_secs() as c_int),
                };
                // SAFETY: linger is plain old data.
                unsafe {
                    std::slice::from_raw_parts(
                        (&raw const li).cast::<u8>(),
                        size_of::<libc::linger>(),
                    )
                    .to_vec()
                }
            }
            SockOpt::Congestion(a) => {
                let mut b = a.name().as_bytes().to_vec();
                b.push(0);
                b
            }
        },
    };
    // SAFETY: forwarded from the caller.
    unsafe { put(&bytes, val, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        let a: SocketAddrV4 = "10.1.2.3:8080".parse().unwrap();
        // SAFETY: zeroed sockaddr_in is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_in>() as socklen_t;
        let p = (&raw mut sin).cast::<libc::sockaddr>();
        // SAFETY: p and len describe sin.
        unsafe { write_sockaddr(a, p, &mut len) };
        // SAFETY: p points to sin.
        assert_eq!(
            unsafe { (*p.cast::<libc::sockaddr_in>()).sin_port },
            8080u16.to_be()
        );
        // SAFETY: as above.
        assert_eq!(unsafe { read_sockaddr(p, len) }, Ok(a));
        // SAFETY: as above.
        assert_eq!(unsafe { read_sockaddr(p, 4) }, Err(libc::EINVAL));
        // SAFETY: p points to sin.
        unsafe {
            (*p.cast::<libc::sockaddr_in>()).sin_family = libc::AF_INET6 as libc::sa_family_t
        };
        // SAFETY: as above.
        assert_eq!(unsafe { read_sockaddr(p, len) }, Err(libc::EAFNOSUPPORT));
    }

    #[test]
    fn option_values_round_trip() {
        let on: c_int = 1;
        let name = opt_name(libc::IPPROTO_TCP, libc::TCP_NODELAY).unwrap();
        // SAFETY: an int's bytes.
        let opt = unsafe { read_opt(name, (&raw const on).cast(), 4) }.unwrap();
        assert_eq!(opt, SockOpt::NoDelay(true));
        let mut out: c_int = 0;
        let mut len: socklen_t = 4;
        // SAFETY: an int's bytes.
        unsafe { write_opt(&SockOptValue::Opt(opt), (&raw mut out).cast(), &mut len) }.unwrap();
        assert_eq!((out, len), (1, 4));
        for (opt, secs) in [
            (libc::TCP_KEEPIDLE, 30),
            (libc::TCP_KEEPINTVL, 5),
            (libc::TCP_KEEPCNT, 4),
        ] {
            let name = opt_name(libc::IPPROTO_TCP, opt).unwrap();
            // SAFETY: an int's bytes.
            let v = unsafe { read_opt(name, (&raw const secs).cast(), 4) }.unwrap();
            let mut out: c_int = 0;
            let mut len: socklen_t = 4;
            // SAFETY: an int's bytes.
            unsafe { write_opt(&SockOptValue::Opt(v), (&raw mut out).cast(), &mut len) }.unwrap();
            assert_eq!(out, secs);
        }
        let minus: c_int = -1;
        let cnt = opt_name(libc::IPPROTO_TCP, libc::TCP_KEEPCNT).unwrap();
        // SAFETY: an int's bytes.
        assert_eq!(
            unsafe { read_opt(cnt, (&raw const minus).cast(), 4) },
            Err(libc::EINVAL)
        );
        assert_eq!(opt_name(libc::IPPROTO_TCP, libc::TCP_FASTOPEN), None);
        assert_eq!(socket_type(libc::SOCK_RAW, 0), Err(libc::ESOCKTNOSUPPORT));
        assert_eq!(
            socket_type(libc::SOCK_STREAM | libc::SOCK_NONBLOCK, libc::IPPROTO_TCP),
            Ok((Type::Stream, false))
        );
    }

    /// SO_MAX_PACING_RATE takes and gives 32 or 64 bits, as Linux's: ~0U
    /// is no cap, a 32-bit read saturates.
    #[test]
    fn max_pacing_rate_in_32_and_64_bits() {
        let name = opt_name(libc::SOL_SOCKET, libc::SO_MAX_PACING_RATE).unwrap();
        let big: u64 = 5_000_000_000;
        // SAFETY: a u64's bytes.
        let opt = unsafe { read_opt(name, (&raw const big).cast(), 8) }.unwrap();
        assert_eq!(opt, SockOpt::MaxPacingRate(big));
        let none: u32 = u32::MAX;
        // SAFETY: a u32's bytes.
        let opt32 = unsafe { read_opt(name, (&raw const none).cast(), 4) }.unwrap();
        assert_eq!(opt32, SockOpt::MaxPacingRate(u64::MAX));
        let mut out64: u64 = 0;
        let mut len: socklen_t = 8;
        // SAFETY: a u64's bytes.
        unsafe {
            write_opt(
                &SockOptValue::Opt(opt.clone()),
                (&raw mut out64).cast(),
                &mut len,
            )
        }
        .unwrap();
        assert_eq!((out64, len), (big, 8));
        let mut out32: u32 = 0;
        let mut len: socklen_t = 4;
        // SAFETY: a u32's bytes.
        unsafe { write_opt(&SockOptValue::Opt(opt), (&raw mut out32).cast(), &mut len) }.unwrap();
        assert_eq!((out32, len), (u32::MAX, 4));
    }
}
