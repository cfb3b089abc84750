//! Socket options (setsockopt/getsockopt) and ioctl queries, with the
//! values and errors Linux gives.

use std::io;
use std::time::{Duration, Instant};

use tcp::Keepalive;

use crate::Stack;
use crate::calls::{ebadf, errno};
use crate::runtime::{Opts, SockState, SockType};
use crate::types::{Fd, Ioctl, SockOpt, SockOptName, SockOptValue, Type};

/// Smallest TCP_MAXSEG Linux accepts (TCP_MIN_MSS).
const MIN_MAXSEG: u16 = 88;

/// The ECN bits of the TOS byte, which TCP owns (Linux clears them in a
/// stream's IP_TOS).
const ECN_MASK: u8 = 0b11;

/// Largest TCP_KEEPIDLE and TCP_KEEPINTVL Linux accepts (MAX_TCP_KEEPIDLE,
/// MAX_TCP_KEEPINTVL), in seconds.
const MAX_KEEP_SECS: u64 = 32_767;

/// Largest TCP_KEEPCNT Linux accepts (MAX_TCP_KEEPCNT).
const MAX_KEEPCNT: u32 = 127;

/// The keep-alive timing a socket's options give (Linux's defaults,
/// `tcp_keepalive_time`/`_intvl`/`_probes`, where unset).
pub(crate) fn keepalive_params(opts: &Opts) -> Keepalive {
    let d = Keepalive::default();
    let (idle, interval, probes) = opts.keep;
    Keepalive {
        idle: idle.unwrap_or(d.idle),
        interval: interval.unwrap_or(d.interval),
        probes: probes.unwrap_or(d.probes),
    }
}

/// do_tcp_setsockopt's range check of TCP_KEEPIDLE and TCP_KEEPINTVL.
fn keep_secs(d: Duration) -> io::Result<Duration> {
    if d < Duration::from_secs(1) || d > Duration::from_secs(MAX_KEEP_SECS) {
        return Err(errno(libc::EINVAL));
    }
    Ok(d)
}

impl Stack {
    /// setsockopt(2) (and fcntl O_NONBLOCK).
    pub fn setsockopt(&self, fd: Fd, opt: SockOpt) -> io::Result<()> {
        let mut core = self.lock()?;
        let now = Instant::now();
        let e = core.entry_mut(fd).ok_or_else(ebadf)?;
        let stream = e.ty == SockType::Stream;
        let o = &mut e.opts;
        match &opt {
            SockOpt::ReuseAddr(v) => o.reuseaddr = *v,
            SockOpt::ReusePort(v) => o.reuseport = *v,
            SockOpt::Broadcast(v) => o.broadcast = *v,
            SockOpt::RcvBuf(v) => o.rcvbuf = Some((*v).max(2048)),
            SockOpt::SndBuf(v) => o.sndbuf = Some((*v).max(2048)),
            SockOpt::RcvTimeo(v) => o.rcvtimeo = v.filter(|d| !d.is_zero()),
            SockOpt::SndTimeo(v) => o.sndtimeo = v.filter(|d| !d.is_zero()),
            SockOpt::KeepAlive(v) => o.keepalive = *v,
            SockOpt::Linger(v) => o.linger = *v,
            SockOpt::NonBlocking(v) => o.nonblocking = *v,
            SockOpt::RcvLowat(v) => o.rcvlowat = (*v).clamp(1, i32::MAX as usize),
            SockOpt::MaxPacingRate(r) => o.max_pacing_rate = (*r != u64::MAX).then_some(*r),
            SockOpt::Ttl(t) => {
                if *t == 0 {
                    return Err(errno(libc::EINVAL));
                }
                o.ttl = Some(*t)
            }
            SockOpt::Tos(t) => {
                // ip_setsockopt: a stream keeps its own ECN bits.
                o.tos = Some(if stream { t & !ECN_MASK } else { *t });
            }
            SockOpt::OobInline(on) => {
                if !on {
                    return Err(errno(libc::EINVAL));
                }
            }
            SockOpt::NoDelay(_)
            | SockOpt::Congestion(_)
            | SockOpt::UserTimeout(_)
            | SockOpt::MaxSeg(_)
            | SockOpt::Cork(_)
            | SockOpt::QuickAck(_)
            | SockOpt::DeferAccept(_)
            | SockOpt::KeepIdle(_)
            | SockOpt::KeepIntvl(_)
            | SockOpt::KeepCnt(_)
                if !stream =>
            {
                return Err(errno(libc::ENOPROTOOPT));
            }
            SockOpt::NoDelay(v) => o.nodelay = *v,
            SockOpt::Congestion(a) => o.congestion = Some(*a),
            SockOpt::UserTimeout(t) => o.user_timeout = (!t.is_zero()).then_some(*t),
            SockOpt::MaxSeg(m) => {
                if *m < MIN_MAXSEG {
                    return Err(errno(libc::EINVAL));
                }
                o.maxseg = Some(*m);
            }
            SockOpt::Cork(v) => o.cork = *v,
            SockOpt::QuickAck(v) => o.quickack = *v,
            SockOpt::DeferAccept(t) => o.defer_accept = (!t.is_zero()).then_some(*t),
            SockOpt::KeepIdle(t) => o.keep.0 = Some(keep_secs(*t)?),
            SockOpt::KeepIntvl(t) => o.keep.1 = Some(keep_secs(*t)?),
            SockOpt::KeepCnt(n) => {
                if !(1..=MAX_KEEPCNT).contains(n) {
                    return Err(errno(libc::EINVAL));
                }
                o.keep.2 = Some(*n);
            }
        }
        let opts = e.opts.clone();
        match e.state {
            SockState::Stream(h) => {
                core.iface.tcp_with(h, |c| {
                    apply_conn_options(c, &opts, now);
                    match opt {
                        SockOpt::Cork(on) => c.set_cork(now, on),
                        SockOpt::QuickAck(on) => c.set_quickack(now, on),
                        _ => {}
                    }
                });
                self.shared().kick(&core);
            }
            SockState::Listening(lh) => {
                if let Some(l) = core.iface.tcp_listener_mut(lh) {
                    apply_tcp_config(l.config_mut(), &opts);
                    l.set_defer_accept(opts.defer_accept);
                }
            }
            SockState::Udp(h) => {
                if let Some(s) = core.iface.udp_socket_mut(h) {
                    apply_udp_options(s, &opts);
                }
            }
            _ => {}
        }
        // SO_RCVLOWAT and the like change readiness.
        core.notify_fd(fd);
        Ok(())
    }

    /// getsockopt(2).
    pub fn getsockopt(&self, fd: Fd, name: SockOptName) -> io::Result<SockOptValue> {
        let mut core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        let o = e.opts.clone();
        let (ty, state) = (e.ty, e.state);
        let stream = ty == SockType::Stream;
        let conn = match state {
            SockState::Stream(h) => core.iface.tcp(h),
            _ => None,
        };
        let opt = |v| Ok(SockOptValue::Opt(v));
        // A TCP-level option read on a datagram socket goes through
        // udp_getsockopt to do_ip_getsockopt, whose "if (level != SOL_IP)
        // return -EOPNOTSUPP" answers it (setting one is ENOPROTOOPT).
        let tcp_only = |v: SockOpt| {
            if stream {
                Ok(SockOptValue::Opt(v))
            } else {
                Err(errno(libc::EOPNOTSUPP))
            }
        };
        match name {
            SockOptName::ReuseAddr => opt(SockOpt::ReuseAddr(o.reuseaddr)),
            SockOptName::ReusePort => opt(SockOpt::ReusePort(o.reuseport)),
            SockOptName::Broadcast => opt(SockOpt::Broadcast(o.broadcast)),
            SockOptName::RcvTimeo => opt(SockOpt::RcvTimeo(o.rcvtimeo)),
            SockOptName::SndTimeo => opt(SockOpt::SndTimeo(o.sndtimeo)),
            SockOptName::KeepAlive => opt(SockOpt::KeepAlive(o.keepalive)),
            SockOptName::Linger => opt(SockOpt::Linger(o.linger)),
            SockOptName::NonBlocking => opt(SockOpt::NonBlocking(o.nonblocking)),
            SockOptName::Ttl => opt(SockOpt::Ttl(o.ttl.unwrap_or(core.iface.default_ttl()))),
            SockOptName::Tos => opt(SockOpt::Tos(o.tos.unwrap_or(0))),
            SockOptName::RcvLowat => opt(SockOpt::RcvLowat(o.rcvlowat)),
            SockOptName::MaxPacingRate => opt(SockOpt::MaxPacingRate(
                o.max_pacing_rate.unwrap_or(u64::MAX),
            )),
            SockOptName::OobInline => opt(SockOpt::OobInline(true)),
            SockOptName::Type => Ok(SockOptValue::Type(match ty {
                SockType::Stream => Type::Stream,
                SockType::Dgram | SockType::Icmp => Type::Dgram,
            })),
            SockOptName::AcceptConn => Ok(SockOptValue::AcceptConn(matches!(
                state,
                SockState::Listening(_)
            ))),
            SockOptName::NoDelay => tcp_only(SockOpt::NoDelay(o.nodelay)),
            SockOptName::Cork => tcp_only(SockOpt::Cork(o.cork)),
            SockOptName::QuickAck => tcp_only(SockOpt::QuickAck(o.quickack)),
            SockOptName::UserTimeout => tcp_only(SockOpt::UserTimeout(
                o.user_timeout.unwrap_or(Duration::ZERO),
            )),
            SockOptName::DeferAccept => tcp_only(SockOpt::DeferAccept(
                o.defer_accept.unwrap_or(Duration::ZERO),
            )),
            SockOptName::KeepIdle => tcp_only(SockOpt::KeepIdle(keepalive_params(&o).idle)),
            SockOptName::KeepIntvl => tcp_only(SockOpt::KeepIntvl(keepalive_params(&o).interval)),
            SockOptName::KeepCnt => tcp_only(SockOpt::KeepCnt(keepalive_params(&o).probes)),
            SockOptName::MaxSeg => {
                // do_tcp_getsockopt: the MSS in use once connected; before,
                // the user's value or the 536-byte default.
                let mss = match conn {
                    Some(c) if c.state().is_synchronized() => {
                        c.mss().min(usize::from(u16::MAX)) as u16
                    }
                    _ => o.maxseg.unwrap_or(536),
                };
                tcp_only(SockOpt::MaxSeg(mss))
            }
            SockOptName::Congestion => {
                let default = core.iface.tcp_config().congestion;
                let algo = conn.map(|c| c.config().congestion);
                tcp_only(SockOpt::Congestion(
                    algo.or(o.congestion).unwrap_or(default),
                ))
            }
            SockOptName::RcvBuf => {
                let v = match state {
                    SockState::Stream(h) => core.iface.tcp(h).map(|c| c.config().recv_buffer),
                    SockState::Udp(h) => core.iface.udp_socket(h).map(|s| s.recv_buffer_size()),
                    _ => None,
                };
                let default = core.iface.tcp_config().recv_buffer;
                opt(SockOpt::RcvBuf(v.or(o.rcvbuf).unwrap_or(default)))
            }
            SockOptName::SndBuf => {
                let v = conn.map(|c| c.send_buffer_size());
                let default = core.iface.tcp_config().send_buffer;
                opt(SockOpt::SndBuf(v.or(o.sndbuf).unwrap_or(default)))
            }
            SockOptName::Error => Ok(SockOptValue::Error(core.take_error(fd))),
            SockOptName::TcpInfo => match conn {
                Some(c) => Ok(SockOptValue::TcpInfo(Box::new(c.stats()))),
                None if stream => Err(errno(libc::ENOTCONN)),
                None => Err(errno(libc::EOPNOTSUPP)),
            },
        }
    }

    /// Sets or clears O_NONBLOCK.
    pub fn set_nonblocking(&self, fd: Fd, on: bool) -> io::Result<()> {
        self.setsockopt(fd, SockOpt::NonBlocking(on))
    }

    /// ioctl(2): FIONREAD (bytes a read would return: a stream's queued
    /// bytes, the next datagram's length), SIOCOUTQ (bytes sent but not
    /// acknowledged, or not sent yet), SIOCATMARK, FIONBIO. A listening
    /// socket answers FIONREAD/SIOCOUTQ with EINVAL, as on Linux.
    pub fn ioctl(&self, fd: Fd, req: Ioctl) -> io::Result<usize> {
        if let Ioctl::FionBio(on) = req {
            self.set_nonblocking(fd, on)?;
            return Ok(0);
        }
        if req == Ioctl::SiocAtMark {
            return self.sockatmark(fd).map(usize::from);
        }
        let core = self.lock()?;
        let e = core.entry(fd).ok_or_else(ebadf)?;
        match (e.state, req) {
            (SockState::Listening(_), _) => Err(errno(libc::EINVAL)),
            (SockState::Stream(h), Ioctl::FionRead) => {
                Ok(core.iface.tcp(h).map_or(0, |c| c.recv_queued()))
            }
            (SockState::Stream(h), _) => Ok(core.iface.tcp(h).map_or(0, |c| {
                if c.state().is_synchronized() {
                    c.send_queued()
                } else {
                    0
                }
            })),
            (SockState::Udp(h), Ioctl::FionRead) => Ok(core
                .iface
                .udp_socket(h)
                .and_then(|s| s.next_len())
                .unwrap_or(0)),
            (SockState::Icmp(_), _) if e.ty == SockType::Icmp => Err(errno(libc::ENOTTY)),
            _ => Ok(0),
        }
    }
}

/// Per-socket options that belong in the TCP configuration a listener
/// hands to its accepted connections (and a connect uses from the SYN on).
pub(crate) fn apply_tcp_config(cfg: &mut tcp::TcpConfig, opts: &Opts) {
    if let Some(b) = opts.rcvbuf {
        // As Linux's SOCK_RCVBUF_LOCK: a size the application chose stays.
        cfg.recv_buffer = b;
        cfg.recv_buffer_max = b;
    }
    if let Some(b) = opts.sndbuf {
        // As Linux's SOCK_SNDBUF_LOCK: a size the application chose stays.
        cfg.send_buffer = b;
        cfg.send_buffer_max = b;
    }
    cfg.nodelay = opts.nodelay;
    cfg.keepalive = opts.keepalive.then(|| keepalive_params(opts));
    cfg.ttl = opts.ttl;
    if let Some(a) = opts.congestion {
        cfg.congestion = a;
    }
    if let Some(m) = opts.maxseg {
        cfg.mss = cfg.mss.min(m);
    }
    if let Some(t) = opts.user_timeout {
        cfg.user_timeout = t;
    }
    cfg.tos = opts.tos.unwrap_or(0);
    cfg.reuse_addr = opts.reuseaddr;
    cfg.cork = opts.cork;
    cfg.max_pacing_rate = opts.max_pacing_rate;
}

/// Applies socket options to a live connection.
pub(crate) fn apply_conn_options(c: &mut tcp::Connection, opts: &Opts, now: Instant) {
    if let Some(b) = opts.rcvbuf
        && b != c.config().recv_buffer
    {
        c.set_recv_buffer(b);
    }
    if let Some(b) = opts.sndbuf
        && b != c.config().send_buffer
    {
        c.set_send_buffer(b);
    }
    if c.config().nodelay != opts.nodelay {
        c.set_nodelay(opts.nodelay);
    }
    let ka = opts.keepalive.then(|| keepalive_params(opts));
    if c.config().keepalive != ka {
        c.set_keepalive(now, ka);
    }
    if let Some(a) = opts.congestion
        && a != c.config().congestion
    {
        // Like Linux, a running connection may switch; the new algorithm
        // starts from the current window's initial state.
        c.set_congestion_control(a);
    }
    c.set_user_timeout(opts.user_timeout.unwrap_or(Duration::ZERO));
    c.set_tos(opts.tos.unwrap_or(0));
    c.set_ttl(opts.ttl);
    c.set_max_pacing_rate(opts.max_pacing_rate);
}

/// Applies socket options to a UDP socket.
pub(crate) fn apply_udp_options(s: &mut stack::UdpSocket, opts: &Opts) {
    if let Some(b) = opts.rcvbuf {
        s.set_recv_buffer_size(b);
    }
    s.set_ttl(opts.ttl);
    s.set_tos(opts.tos.unwrap_or(0));
}
