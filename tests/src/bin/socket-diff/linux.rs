//! The calls on Linux kernel sockets of the namespace under test. Each
//! socket is created by a short-lived thread that has entered that
//! namespace with setns(); a socket keeps its namespace for life, so the
//! harness (in the peer's namespace) uses it from anywhere afterwards.

use std::ffi::CString;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use crate::api::{Api, Ioctl, Kind, Opt, OptName, R};

pub struct Linux {
    /// `/run/netns/<name>` of the namespace the sockets live in.
    netns: OwnedFd,
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(r: libc::c_int) -> R<libc::c_int> {
    if r < 0 { Err(last_errno()) } else { Ok(r) }
}

fn check_size(r: libc::ssize_t) -> R<usize> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn from_sockaddr(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)),
        u16::from_be(s.sin_port),
    )
}

const SALEN: libc::socklen_t = size_of::<libc::sockaddr_in>() as libc::socklen_t;

impl Linux {
    /// Sockets will live in network namespace `name` (`/run/netns/<name>`).
    pub fn new(name: &str) -> std::io::Result<Linux> {
        let f = std::fs::File::open(format!("/run/netns/{name}"))?;
        Ok(Linux { netns: f.into() })
    }

    fn int_opt(&self, fd: i32, level: i32, name: i32, v: i32) -> R<()> {
        // SAFETY: a valid pointer to an int and its size.
        check(unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&v as *const i32).cast(),
                size_of::<i32>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    fn get_int(&self, fd: i32, level: i32, name: i32) -> R<i64> {
        let mut v: i32 = 0;
        let mut len = size_of::<i32>() as libc::socklen_t;
        // SAFETY: a valid pointer to an int and its size.
        check(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) })?;
        Ok(v as i64)
    }

    fn timeo(&self, fd: i32, name: i32, d: Duration) -> R<()> {
        let tv = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: a valid timeval and its size.
        check(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })
        .map(drop)
    }
}

/// Creates the socket from a thread inside namespace `ns`.
fn socket_in(ns: i32, ty: i32) -> R<i32> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let own = CString::new(format!("/proc/self/task/{tid}/ns/net")).unwrap();
            // SAFETY: a valid C string.
            let home =
                check(unsafe { libc::open(own.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
            // SAFETY: ns and home are open namespace descriptors.
            check(unsafe { libc::setns(ns, libc::CLONE_NEWNET) })?;
            // SAFETY: plain socket() call.
            let fd = check(unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) });
            // SAFETY: as above.
            let back = check(unsafe { libc::setns(home, libc::CLONE_NEWNET) });
            // SAFETY: home is ours.
            unsafe { libc::close(home) };
            back.expect("setns back to the harness's namespace");
            fd
        })
        .join()
        .expect("socket thread")
    })
}

impl Api for Linux {
    fn socket(&self, kind: Kind, nonblock: bool) -> R<i32> {
        let mut ty = match kind {
            Kind::Stream => libc::SOCK_STREAM,
            Kind::Dgram => libc::SOCK_DGRAM,
        };
        if nonblock {
            ty |= libc::SOCK_NONBLOCK;
        }
        socket_in(self.netns.as_raw_fd(), ty)
    }

    fn bind(&self, fd: i32, addr: SocketAddrV4) -> R<()> {
        let sa = sockaddr(addr);
        // SAFETY: a valid sockaddr_in and its size.
        check(unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), SALEN) }).map(drop)
    }

    fn listen(&self, fd: i32, backlog: i32) -> R<()> {
        // SAFETY: plain call.
        check(unsafe { libc::listen(fd, backlog) }).map(drop)
    }

    fn accept(&self, fd: i32) -> R<(i32, SocketAddrV4)> {
        self.accept4(fd, false)
    }

    fn accept4(&self, fd: i32, nonblock: bool) -> R<(i32, SocketAddrV4)> {
        // SAFETY: zeroed plain data.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        let mut len = SALEN;
        let flags = libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 };
        // SAFETY: a valid buffer for the address and its length.
        let nfd = check(unsafe {
            libc::accept4(
                fd,
                (&mut sa as *mut libc::sockaddr_in).cast(),
                &mut len,
                flags,
            )
        })?;
        Ok((nfd, from_sockaddr(&sa)))
    }

    fn connect(&self, fd: i32, addr: SocketAddrV4) -> R<()> {
        let sa = sockaddr(addr);
        // SAFETY: a valid sockaddr_in and its size.
        check(unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), SALEN) })
            .map(drop)
    }

    fn disconnect(&self, fd: i32) -> R<()> {
        // SAFETY: zeroed plain data.
        let mut sa: libc::sockaddr = unsafe { zeroed() };
        sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        // SAFETY: a valid sockaddr and its size.
        check(unsafe { libc::connect(fd, &sa, size_of::<libc::sockaddr>() as libc::socklen_t) })
            .map(drop)
    }

    fn send(&self, fd: i32, buf: &[u8], flags: i32) -> R<usize> {
        // SAFETY: a valid buffer.
        check_size(unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                flags | libc::MSG_NOSIGNAL,
            )
        })
    }

    fn recv(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<usize> {
        // SAFETY: a valid buffer.
        check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
    }

    fn sendto(&self, fd: i32, buf: &[u8], addr: SocketAddrV4) -> R<usize> {
        let sa = sockaddr(addr);
        // SAFETY: a valid buffer and address.
        check_size(unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                (&sa as *const libc::sockaddr_in).cast(),
                SALEN,
            )
        })
    }

    fn recvfrom(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<(usize, SocketAddrV4)> {
        // SAFETY: zeroed plain data.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        let mut len = SALEN;
        // SAFETY: valid buffers.
        let n = check_size(unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                (&mut sa as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        })?;
        Ok((n, from_sockaddr(&sa)))
    }

    fn shutdown(&self, fd: i32, how: i32) -> R<()> {
        // SAFETY: plain call.
        check(unsafe { libc::shutdown(fd, how) }).map(drop)
    }

    fn close(&self, fd: i32) -> R<()> {
        // SAFETY: the scenario owns fd.
        check(unsafe { libc::close(fd) }).map(drop)
    }

    fn setsockopt(&self, fd: i32, opt: Opt) -> R<()> {
        use libc::*;
        match opt {
            Opt::ReuseAddr(v) => self.int_opt(fd, SOL_SOCKET, SO_REUSEADDR, v as i32),
            Opt::ReusePort(v) => self.int_opt(fd, SOL_SOCKET, SO_REUSEPORT, v as i32),
            Opt::Broadcast(v) => self.int_opt(fd, SOL_SOCKET, SO_BROADCAST, v as i32),
            Opt::RcvTimeo(d) => self.timeo(fd, SO_RCVTIMEO, d),
            Opt::SndTimeo(d) => self.timeo(fd, SO_SNDTIMEO, d),
            Opt::Linger(l) => {
                let lg = linger {
                    l_onoff: l.is_some() as i32,
                    l_linger: l.unwrap_or(0) as i32,
                };
                // SAFETY: a valid struct linger and its size.
                check(unsafe {
                    libc::setsockopt(
                        fd,
                        SOL_SOCKET,
                        SO_LINGER,
                        (&lg as *const linger).cast(),
                        size_of::<linger>() as socklen_t,
                    )
                })
                .map(drop)
            }
            Opt::RcvLowat(v) => self.int_opt(fd, SOL_SOCKET, SO_RCVLOWAT, v),
            Opt::NoDelay(v) => self.int_opt(fd, IPPROTO_TCP, TCP_NODELAY, v as i32),
            Opt::MaxSeg(v) => self.int_opt(fd, IPPROTO_TCP, TCP_MAXSEG, v),
            Opt::Cork(v) => self.int_opt(fd, IPPROTO_TCP, TCP_CORK, v as i32),
            Opt::QuickAck(v) => self.int_opt(fd, IPPROTO_TCP, TCP_QUICKACK, v as i32),
            Opt::UserTimeout(v) => self.int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, v as i32),
            Opt::DeferAccept(v) => self.int_opt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, v as i32),
            Opt::Tos(v) => self.int_opt(fd, IPPROTO_IP, IP_TOS, v as i32),
            Opt::Ttl(v) => self.int_opt(fd, IPPROTO_IP, IP_TTL, v as i32),
            Opt::KeepIdle(v) => self.int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, v),
            Opt::KeepIntvl(v) => self.int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, v),
            Opt::KeepCnt(v) => self.int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, v),
        }
    }

    fn getsockopt(&self, fd: i32, name: OptName) -> R<i64> {
        use libc::*;
        match name {
            OptName::Error => self.get_int(fd, SOL_SOCKET, SO_ERROR),
            OptName::Type => self.get_int(fd, SOL_SOCKET, SO_TYPE),
            OptName::AcceptConn => self.get_int(fd, SOL_SOCKET, SO_ACCEPTCONN),
            OptName::ReuseAddr => self.get_int(fd, SOL_SOCKET, SO_REUSEADDR),
            OptName::ReusePort => self.get_int(fd, SOL_SOCKET, SO_REUSEPORT),
            OptName::Broadcast => self.get_int(fd, SOL_SOCKET, SO_BROADCAST),
            OptName::RcvLowat => self.get_int(fd, SOL_SOCKET, SO_RCVLOWAT),
            OptName::NoDelay => self.get_int(fd, IPPROTO_TCP, TCP_NODELAY),
            OptName::MaxSeg => self.get_int(fd, IPPROTO_TCP, TCP_MAXSEG),
            OptName::Cork => self.get_int(fd, IPPROTO_TCP, TCP_CORK),
            OptName::QuickAck => self.get_int(fd, IPPROTO_TCP, TCP_QUICKACK),
            OptName::UserTimeout => self.get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT),
            OptName::DeferAccept => self.get_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT),
            OptName::Tos => self.get_int(fd, IPPROTO_IP, IP_TOS),
            OptName::Ttl => self.get_int(fd, IPPROTO_IP, IP_TTL),
            OptName::KeepIdle => self.get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE),
            OptName::KeepIntvl => self.get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL),
            OptName::KeepCnt => self.get_int(fd, IPPROTO_TCP, TCP_KEEPCNT),
            OptName::Linger => {
                // SAFETY: zeroed plain data.
                let mut lg: linger = unsafe { zeroed() };
                let mut len = size_of::<linger>() as socklen_t;
                // SAFETY: a valid struct linger and its size.
                check(unsafe {
                    libc::getsockopt(
                        fd,
                        SOL_SOCKET,
                        SO_LINGER,
                        (&mut lg as *mut linger).cast(),
                        &mut len,
                    )
                })?;
                Ok(if lg.l_onoff != 0 {
                    lg.l_linger as i64
                } else {
                    -1
                })
            }
        }
    }

    fn getsockname(&self, fd: i32) -> R<SocketAddrV4> {
        // SAFETY: zeroed plain data.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        let mut len = SALEN;
        // SAFETY: a valid buffer and length.
        check(unsafe {
            libc::getsockname(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len)
        })?;
        Ok(from_sockaddr(&sa))
    }

    fn getpeername(&self, fd: i32) -> R<SocketAddrV4> {
        // SAFETY: zeroed plain data.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        let mut len = SALEN;
        // SAFETY: a valid buffer and length.
        check(unsafe {
            libc::getpeername(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len)
        })?;
        Ok(from_sockaddr(&sa))
    }

    fn poll(&self, fd: i32, events: i16, timeout: Duration) -> R<i16> {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        check(unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) })?;
        Ok(p.revents)
    }

    fn set_nonblocking(&self, fd: i32, on: bool) -> R<()> {
        // SAFETY: plain fcntl calls.
        let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        let fl = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        // SAFETY: as above.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) }).map(drop)
    }

    fn nonblocking(&self, fd: i32) -> R<bool> {
        // SAFETY: plain fcntl call.
        let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        Ok(fl & libc::O_NONBLOCK != 0)
    }

    fn ioctl(&self, fd: i32, req: Ioctl) -> R<usize> {
        let code = match req {
            Ioctl::FionRead => libc::FIONREAD,
            Ioctl::SiocOutq => libc::TIOCOUTQ, // SIOCOUTQ == TIOCOUTQ
        };
        let mut v: libc::c_int = 0;
        // SAFETY: both requests write one int.
        check(unsafe { libc::ioctl(fd, code, &mut v) })?;
        Ok(v as usize)
    }

    fn dup(&self, fd: i32) -> R<i32> {
        // SAFETY: plain call.
        check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
    }

    fn readv(&self, fd: i32, bufs: &mut [&mut [u8]]) -> R<usize> {
        let iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: the iovecs point into live, exclusive buffers.
        check_size(unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as i32) })
    }

    fn writev(&self, fd: i32, bufs: &[&[u8]]) -> R<usize> {
        let iov: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut _,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: the iovecs point into live buffers; writev only reads.
        check_size(unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as i32) })
    }
}
