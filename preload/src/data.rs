//! Moving data: read/write and their vectored, send*/recv*, *mmsg and sendfile forms.

use super::*;

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
