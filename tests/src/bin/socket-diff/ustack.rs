//! The calls on ustack sockets (one shared `sockets_api::Stack`). Calls
//! sockets-api does not offer yet answer ENOSYS.

use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

use sockets_api::{
    Domain, PollFd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue, Stack, Type,
};

use crate::api::{Api, Ioctl, Kind, Opt, OptName, R};

pub struct Ustack {
    pub stack: Stack,
}

fn e(err: io::Error) -> i32 {
    err.raw_os_error().unwrap_or(libc::EIO)
}

const ENOSYS: i32 = libc::ENOSYS;

impl Api for Ustack {
    fn socket(&self, kind: Kind, nonblock: bool) -> R<i32> {
        if nonblock {
            // TODO(lead): wire socket_flags(domain, ty, proto, libc::SOCK_NONBLOCK)
            return Err(ENOSYS);
        }
        let ty = match kind {
            Kind::Stream => Type::Stream,
            Kind::Dgram => Type::Dgram,
        };
        self.stack
            .socket(Domain::Inet, ty, Protocol::Default)
            .map_err(e)
    }

    fn bind(&self, fd: i32, addr: SocketAddrV4) -> R<()> {
        self.stack.bind(fd, addr).map_err(e)
    }

    fn listen(&self, fd: i32, backlog: i32) -> R<()> {
        self.stack.listen(fd, backlog.max(0) as usize).map_err(e)
    }

    fn accept(&self, fd: i32) -> R<(i32, SocketAddrV4)> {
        self.stack.accept(fd).map_err(e)
    }

    fn accept4(&self, _fd: i32, _nonblock: bool) -> R<(i32, SocketAddrV4)> {
        // TODO(lead): wire accept4(fd, flags)
        Err(ENOSYS)
    }

    fn connect(&self, fd: i32, addr: SocketAddrV4) -> R<()> {
        self.stack.connect(fd, addr).map_err(e)
    }

    fn disconnect(&self, _fd: i32) -> R<()> {
        // TODO(lead): wire disconnect(fd) (connect with AF_UNSPEC)
        Err(ENOSYS)
    }

    fn send(&self, fd: i32, buf: &[u8], flags: i32) -> R<usize> {
        self.stack
            .send_flags(fd, buf, flags | libc::MSG_NOSIGNAL)
            .map_err(e)
    }

    fn recv(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<usize> {
        if flags != 0 {
            // TODO(lead): wire recv_flags(fd, buf, flags) (MSG_TRUNC/MSG_DONTWAIT/MSG_PEEK)
            return Err(ENOSYS);
        }
        self.stack.recv(fd, buf).map_err(e)
    }

    fn sendto(&self, fd: i32, buf: &[u8], addr: SocketAddrV4) -> R<usize> {
        self.stack.sendto(fd, buf, addr).map_err(e)
    }

    fn recvfrom(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<(usize, SocketAddrV4)> {
        if flags != 0 {
            // TODO(lead): wire recvfrom_flags(fd, buf, flags)
            return Err(ENOSYS);
        }
        self.stack.recvfrom(fd, buf).map_err(e)
    }

    fn shutdown(&self, fd: i32, how: i32) -> R<()> {
        let how = match how {
            libc::SHUT_RD => Shutdown::Read,
            libc::SHUT_WR => Shutdown::Write,
            libc::SHUT_RDWR => Shutdown::Both,
            _ => return Err(libc::EINVAL),
        };
        self.stack.shutdown(fd, how).map_err(e)
    }

    fn close(&self, fd: i32) -> R<()> {
        self.stack.close(fd).map_err(e)
    }

    fn setsockopt(&self, fd: i32, opt: Opt) -> R<()> {
        let o = match opt {
            Opt::ReuseAddr(v) => SockOpt::ReuseAddr(v),
            Opt::RcvTimeo(d) => SockOpt::RcvTimeo(Some(d)),
            Opt::SndTimeo(d) => SockOpt::SndTimeo(Some(d)),
            Opt::Linger(l) => SockOpt::Linger(l.map(|s| Duration::from_secs(s.into()))),
            Opt::NoDelay(v) => SockOpt::NoDelay(v),
            Opt::Ttl(v) => SockOpt::Ttl(v),
            // TODO(lead): wire SockOpt::ReusePort, Broadcast, RcvLowat, MaxSeg, Cork,
            // QuickAck, UserTimeout, DeferAccept, Tos
            Opt::ReusePort(_)
            | Opt::Broadcast(_)
            | Opt::RcvLowat(_)
            | Opt::MaxSeg(_)
            | Opt::Cork(_)
            | Opt::QuickAck(_)
            | Opt::UserTimeout(_)
            | Opt::DeferAccept(_)
            | Opt::Tos(_) => return Err(ENOSYS),
        };
        self.stack.setsockopt(fd, o).map_err(e)
    }

    fn getsockopt(&self, fd: i32, name: OptName) -> R<i64> {
        let n = match name {
            OptName::Error => SockOptName::Error,
            OptName::ReuseAddr => SockOptName::ReuseAddr,
            OptName::Linger => SockOptName::Linger,
            OptName::NoDelay => SockOptName::NoDelay,
            OptName::Ttl => SockOptName::Ttl,
            // TODO(lead): wire SockOptName::Type, AcceptConn, ReusePort, Broadcast,
            // RcvLowat, MaxSeg, Cork, QuickAck, UserTimeout, DeferAccept, Tos
            OptName::Type
            | OptName::AcceptConn
            | OptName::ReusePort
            | OptName::Broadcast
            | OptName::RcvLowat
            | OptName::MaxSeg
            | OptName::Cork
            | OptName::QuickAck
            | OptName::UserTimeout
            | OptName::DeferAccept
            | OptName::Tos => return Err(ENOSYS),
        };
        match self.stack.getsockopt(fd, n).map_err(e)? {
            SockOptValue::Error(v) => Ok(v.unwrap_or(0) as i64),
            SockOptValue::Opt(SockOpt::ReuseAddr(v) | SockOpt::NoDelay(v)) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::Ttl(v)) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::Linger(l)) => Ok(l.map_or(-1, |d| d.as_secs() as i64)),
            other => panic!("unexpected getsockopt value {other:?}"),
        }
    }

    fn getsockname(&self, fd: i32) -> R<SocketAddrV4> {
        self.stack.getsockname(fd).map_err(e)
    }

    fn getpeername(&self, fd: i32) -> R<SocketAddrV4> {
        self.stack.getpeername(fd).map_err(e)
    }

    fn poll(&self, fd: i32, events: i16, timeout: Duration) -> R<i16> {
        let mut fds = [PollFd::new(fd, events)];
        self.stack.poll(&mut fds, Some(timeout)).map_err(e)?;
        Ok(fds[0].revents)
    }

    fn set_nonblocking(&self, fd: i32, on: bool) -> R<()> {
        self.stack.set_nonblocking(fd, on).map_err(e)
    }

    fn nonblocking(&self, fd: i32) -> R<bool> {
        match self
            .stack
            .getsockopt(fd, SockOptName::NonBlocking)
            .map_err(e)?
        {
            SockOptValue::Opt(SockOpt::NonBlocking(v)) => Ok(v),
            other => panic!("unexpected getsockopt value {other:?}"),
        }
    }

    fn ioctl(&self, _fd: i32, _req: Ioctl) -> R<usize> {
        // TODO(lead): wire ioctl(fd, Ioctl::FionRead | Ioctl::SiocOutq)
        Err(ENOSYS)
    }

    fn dup(&self, _fd: i32) -> R<i32> {
        // TODO(lead): wire dup(fd)
        Err(ENOSYS)
    }

    fn readv(&self, _fd: i32, _bufs: &mut [&mut [u8]]) -> R<usize> {
        // TODO(lead): wire readv(fd, &mut [IoSliceMut])
        Err(ENOSYS)
    }

    fn writev(&self, _fd: i32, _bufs: &[&[u8]]) -> R<usize> {
        // TODO(lead): wire writev(fd, &[IoSlice])
        Err(ENOSYS)
    }
}
