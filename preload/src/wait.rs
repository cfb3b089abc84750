//! Waiting: poll, ppoll, select, pselect and the epoll family over ustack and kernel descriptors together.

use super::*;

pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

pub(crate) fn to_timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// poll over a mix of ustack sockets and kernel descriptors: the sockets'
/// true readiness first (which leaves their eventfds unreadable when
/// nothing holds), then one kernel wait on the kernel descriptors and the
/// sockets' eventfds; again after an eventfd woke it.
pub(crate) unsafe fn poll_mixed(
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

pub(crate) unsafe fn poll_impl(
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

pub(crate) fn any_ours(fds: *const libc::pollfd, nfds: libc::nfds_t) -> bool {
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

pub(crate) unsafe fn select_impl(
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

pub(crate) fn any_set(nfds: c_int, sets: [*mut libc::fd_set; 3]) -> bool {
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
pub(crate) struct EpReg {
    pub(crate) sock: Arc<USock>,
    pub(crate) events: u32,
    pub(crate) data: u64,
    /// EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD.
    pub(crate) disabled: bool,
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
pub(crate) fn epoll_ready(reg: &mut EpReg) -> Option<libc::epoll_event> {
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
pub(crate) fn rearm(epfd: c_int, fd: c_int, reg: &EpReg) {
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

pub(crate) unsafe fn epoll_wait_impl(
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
