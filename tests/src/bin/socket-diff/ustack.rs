//! The calls on ustack sockets (one shared `sockets_api::Stack`).

use std::io::{self, IoSlice, IoSliceMut};
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

impl Api for Ustack {
    fn socket(&self, kind: Kind, nonblock: bool) -> R<i32> {
        let ty = match kind {
            Kind::Stream => Type::Stream,
            Kind::Dgram => Type::Dgram,
        };
        let flags = if nonblock { libc::SOCK_NONBLOCK } else { 0 };
        self.stack
            .socket_flags(Domain::Inet, ty, Protocol::Default, flags)
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

    fn accept4(&self, fd: i32, nonblock: bool) -> R<(i32, SocketAddrV4)> {
        let flags = if nonblock { libc::SOCK_NONBLOCK } else { 0 };
        self.stack.accept4(fd, flags).map_err(e)
    }

    fn connect(&self, fd: i32, addr: SocketAddrV4) -> R<()> {
        self.stack.connect(fd, addr).map_err(e)
    }

    fn disconnect(&self, fd: i32) -> R<()> {
        self.stack.disconnect(fd).map_err(e)
    }

    fn send(&self, fd: i32, buf: &[u8], flags: i32) -> R<usize> {
        self.stack
            .send_flags(fd, buf, flags | libc::MSG_NOSIGNAL)
            .map_err(e)
    }

    fn recv(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<usize> {
        self.stack.recv_flags(fd, buf, flags).map_err(e)
    }

    fn sendto(&self, fd: i32, buf: &[u8], addr: SocketAddrV4) -> R<usize> {
        self.stack.sendto(fd, buf, addr).map_err(e)
    }

    fn recvfrom(&self, fd: i32, buf: &mut [u8], flags: i32) -> R<(usize, SocketAddrV4)> {
        self.stack.recvfrom_flags(fd, buf, flags).map_err(e)
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
            Opt::ReusePort(v) => SockOpt::ReusePort(v),
            Opt::Broadcast(v) => SockOpt::Broadcast(v),
            // setsockopt takes an int: a negative SO_RCVLOWAT is INT_MAX.
            Opt::RcvLowat(v) => {
                SockOpt::RcvLowat(if v < 0 { i32::MAX as usize } else { v as usize })
            }
            Opt::MaxSeg(v) => SockOpt::MaxSeg(v.clamp(0, u16::MAX.into()) as u16),
            Opt::Cork(v) => SockOpt::Cork(v),
            Opt::QuickAck(v) => SockOpt::QuickAck(v),
            Opt::UserTimeout(ms) => SockOpt::UserTimeout(Duration::from_millis(ms.into())),
            Opt::DeferAccept(s) => SockOpt::DeferAccept(Duration::from_secs(s.into())),
            Opt::Tos(v) => SockOpt::Tos(v),
            // setsockopt takes an int of seconds: a negative one is out of
            // range like zero.
            Opt::KeepIdle(v) => SockOpt::KeepIdle(Duration::from_secs(v.max(0) as u64)),
            Opt::KeepIntvl(v) => SockOpt::KeepIntvl(Duration::from_secs(v.max(0) as u64)),
            Opt::KeepCnt(v) => SockOpt::KeepCnt(v.max(0) as u32),
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
            OptName::Type => SockOptName::Type,
            OptName::AcceptConn => SockOptName::AcceptConn,
            OptName::ReusePort => SockOptName::ReusePort,
            OptName::Broadcast => SockOptName::Broadcast,
            OptName::RcvLowat => SockOptName::RcvLowat,
            OptName::MaxSeg => SockOptName::MaxSeg,
            OptName::Cork => SockOptName::Cork,
            OptName::QuickAck => SockOptName::QuickAck,
            OptName::UserTimeout => SockOptName::UserTimeout,
            OptName::DeferAccept => SockOptName::DeferAccept,
            OptName::Tos => SockOptName::Tos,
            OptName::KeepIdle => SockOptName::KeepIdle,
            OptName::KeepIntvl => SockOptName::KeepIntvl,
            OptName::KeepCnt => SockOptName::KeepCnt,
        };
        match self.stack.getsockopt(fd, n).map_err(e)? {
            SockOptValue::Error(v) => Ok(v.unwrap_or(0) as i64),
            SockOptValue::Type(Type::Stream) => Ok(libc::SOCK_STREAM as i64),
            SockOptValue::Type(Type::Dgram) => Ok(libc::SOCK_DGRAM as i64),
            SockOptValue::AcceptConn(v) => Ok(v as i64),
            SockOptValue::Opt(
                SockOpt::ReuseAddr(v)
                | SockOpt::NoDelay(v)
                | SockOpt::ReusePort(v)
                | SockOpt::Broadcast(v)
                | SockOpt::Cork(v)
                | SockOpt::QuickAck(v),
            ) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::Ttl(v) | SockOpt::Tos(v)) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::RcvLowat(v)) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::MaxSeg(v)) => Ok(v as i64),
            SockOptValue::Opt(SockOpt::UserTimeout(d)) => Ok(d.as_millis() as i64),
            SockOptValue::Opt(SockOpt::DeferAccept(d)) => Ok(d.as_secs() as i64),
            SockOptValue::Opt(SockOpt::KeepIdle(d) | SockOpt::KeepIntvl(d)) => {
                Ok(d.as_secs() as i64)
            }
            SockOptValue::Opt(SockOpt::KeepCnt(n)) => Ok(n as i64),
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

    fn ioctl(&self, fd: i32, req: Ioctl) -> R<usize> {
        let req = match req {
            Ioctl::FionRead => sockets_api::Ioctl::FionRead,
            Ioctl::SiocOutq => sockets_api::Ioctl::SiocOutQ,
        };
        self.stack.ioctl(fd, req).map_err(e)
    }

    fn dup(&self, fd: i32) -> R<i32> {
        self.stack.dup(fd).map_err(e)
    }

    fn readv(&self, fd: i32, bufs: &mut [&mut [u8]]) -> R<usize> {
        let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
        self.stack.readv(fd, &mut slices).map_err(e)
    }

    fn writev(&self, fd: i32, bufs: &[&[u8]]) -> R<usize> {
        let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        self.stack.writev(fd, &slices).map_err(e)
    }
}
