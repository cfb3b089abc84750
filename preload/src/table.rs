//! The socket table (a program's descriptor to its ustack socket) and the stack's start from the environment.

use super::*;

/// A ustack socket behind a program's descriptor (shared by its dups).
pub(crate) struct USock {
    pub(crate) stack: Stack,
    pub(crate) fd: Fd,
    pub(crate) poller: Poller,
    /// The poller registration's current interest: poll bits, bit 16 set
    /// for edge-triggered; -1 before the first wait.
    pub(crate) interest: AtomicI32,
    /// Serialises interest changes with their readiness checks.
    pub(crate) check: Mutex<()>,
    /// A datagram socket.
    pub(crate) dgram: bool,
    /// A datagram a MSG_PEEK receive took from the stack (ustack's UDP
    /// queue cannot peek): the next receive returns it.
    pub(crate) peeked: Mutex<Option<(Vec<u8>, SocketAddrV4)>>,
}

impl USock {
    /// The socket's readiness within `events` (poll bits), leaving the
    /// eventfd unreadable when none holds (until the stack signals a
    /// change).
    pub(crate) fn check(&self, events: i16, edge: bool) -> i16 {
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
    pub(crate) fn recv_dgram(
        &self,
        b: &mut [u8],
        flags: c_int,
    ) -> io::Result<(usize, SocketAddrV4, bool)> {
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
    pub(crate) fn recv_any(&self, b: &mut [u8], flags: c_int) -> io::Result<usize> {
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn kind(fd: c_int) -> u8 {
    if fd < 0 || fd as usize >= MAX_FD {
        return 0;
    }
    KIND[fd as usize].load(Relaxed)
}

pub(crate) fn ours(fd: c_int) -> bool {
    kind(fd) == K_SOCK
}

pub(crate) fn sock(fd: c_int) -> io::Result<Arc<USock>> {
    if FORKED.load(Relaxed) {
        return Err(err(libc::ENETDOWN));
    }
    lock(&SOCKS)
        .get(&fd)
        .cloned()
        .ok_or_else(|| err(libc::EBADF))
}

pub(crate) fn err(e: c_int) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// Gives a new ustack socket a kernel descriptor (a duplicate of its
/// poller's eventfd) and records it.
pub(crate) fn install(stack: &Stack, fd: Fd, cloexec: bool, dgram: bool) -> io::Result<c_int> {
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
pub(crate) fn alias(n: c_int, s: Arc<USock>) {
    if n >= 0 && (n as usize) < MAX_FD {
        lock(&SOCKS).insert(n, s);
        KIND[n as usize].store(K_SOCK, Relaxed);
    }
}

/// Forgets descriptor `fd` (before the kernel closes it): its epoll
/// registrations go first, while the number still names the eventfd.
pub(crate) fn forget(fd: c_int) -> Option<Arc<USock>> {
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

pub(crate) fn configured() -> bool {
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

pub(crate) fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={v} does not parse")),
    }
}

pub(crate) fn builder_from_env() -> Result<StackBuilder, String> {
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

pub(crate) fn starting() -> bool {
    STARTING.with(|s| s.get())
}

/// The process's stack, started on first use.
pub(crate) fn the_stack() -> Result<&'static Stack, c_int> {
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
