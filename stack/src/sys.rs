//! The system layer: the few Linux system calls the stack makes (epoll,
//! eventfd, network-interface ioctls), each wrapped once, with errors as
//! `io::Error`. Everything above this module is safe code.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Converts a -1 return into the thread's `errno` as an `io::Error`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A Linux eventfd used as a wake-up signal between threads (and from signal
/// handlers, since `write` is async-signal-safe).
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new, non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor we own.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(EventFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the descriptor readable. Never blocks; a saturated counter
    /// (EAGAIN) is already readable, which is all a wake-up needs.
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Resets the counter; returns whether it had been notified.
    pub fn drain(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a descriptor we own.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        n == 8
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An epoll instance watching descriptors for readability.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A new epoll instance.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; a non-negative result is a new descriptor.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` is fresh and ours.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 16],
        })
    }

    /// Watches `fd` for input; `token` comes back from [`wait`](Self::wait).
    pub fn add_readable(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL.
        cvt(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Waits until a watched descriptor is ready or `timeout` passes
    /// (`None`: forever). Calls `ready` with the token of each ready
    /// descriptor. An interrupted wait (EINTR) returns normally.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        mut ready: impl FnMut(u64),
    ) -> io::Result<()> {
        let n = match precise_wait(self, timeout) {
            Some(n) => n,
            None => {
                let ms: libc::c_int = match timeout {
                    None => -1,
                    // Round up so a deadline 0.3 ms away does not spin at 0 ms.
                    Some(d) => {
                        d.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int
                    }
                };
                // SAFETY: the buffer holds `events.len()` initialised entries.
                unsafe {
                    libc::epoll_wait(
                        self.fd.as_raw_fd(),
                        self.events.as_mut_ptr(),
                        self.events.len() as libc::c_int,
                        ms,
                    )
                }
            }
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        for ev in &self.events[..n as usize] {
            ready(ev.u64);
        }
        Ok(())
    }
}

/// epoll_pwait2 (Linux 5.11): the same wait with a nanosecond timeout, so
/// that a deadline 50 us away (a paced segment's release time) is not
/// rounded up to epoll_wait's millisecond. `None` when the kernel lacks it
/// (ENOSYS, remembered) or on other architectures: the caller falls back
/// to epoll_wait.
fn precise_wait(epoll: &mut Epoll, timeout: Option<Duration>) -> Option<libc::c_int> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static MISSING: AtomicBool = AtomicBool::new(false);
    // The generic syscall table gives epoll_pwait2 the same number on every
    // architecture that uses it.
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    const SYS_EPOLL_PWAIT2: libc::c_long = 441;
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )))]
    return None;
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ))]
    {
        if MISSING.load(Ordering::Relaxed) {
            return None;
        }
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the buffer holds `events.len()` initialised entries, the
        // timespec (or null: wait forever) outlives the call, and a null
        // signal mask leaves the thread's mask alone.
        let n = unsafe {
            libc::syscall(
                SYS_EPOLL_PWAIT2,
                epoll.fd.as_raw_fd(),
                epoll.events.as_mut_ptr(),
                epoll.events.len() as libc::c_int,
                ts_ptr,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            MISSING.store(true, Ordering::Relaxed);
            return None;
        }
        Some(n as libc::c_int)
    }
}

/// Reads one datagram/frame from a non-blocking descriptor. `Ok(None)` when
/// nothing is ready.
pub fn read_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(err),
        }
    } else {
        Ok(Some(n as usize))
    }
}

/// Reads one packet into two buffers (a fixed header, then the rest)
/// without blocking; `Ok(None)` when nothing is ready. Returns the total
/// length read.
pub fn readv2_nonblocking(
    fd: RawFd,
    head: &mut [u8],
    body: &mut [u8],
) -> io::Result<Option<usize>> {
    let iov = [
        libc::iovec {
            iov_base: head.as_mut_ptr().cast(),
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_mut_ptr().cast(),
            iov_len: body.len(),
        },
    ];
    // SAFETY: both iovecs describe live, writable buffers of their lengths.
    let n = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
    if n < 0 {
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(err),
        }
    } else {
        Ok(Some(n as usize))
    }
}

/// Writes one packet gathered from two buffers (a header, then the frame).
pub fn writev2(fd: RawFd, head: &[u8], body: &[u8]) -> io::Result<()> {
    let iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_ptr() as *mut libc::c_void,
            iov_len: body.len(),
        },
    ];
    loop {
        // SAFETY: both iovecs describe live buffers the kernel only reads.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Writes one frame to a descriptor.
pub fn write_frame(fd: RawFd, frame: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes.
        let n = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Network-interface configuration through ioctls on a throwaway socket.
pub mod netif {
    use super::*;
    use std::net::Ipv4Addr;

    /// An `ifreq` naming `name` (the caller has checked the length).
    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req
    }

    fn control_socket() -> io::Result<OwnedFd> {
        // SAFETY: no pointers; a non-negative result is a new descriptor.
        let fd =
            cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fresh descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn ioctl(fd: RawFd, request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: every request used here reads/writes one `ifreq`.
        cvt(unsafe { libc::ioctl(fd, request, req as *mut libc::ifreq) })?;
        Ok(())
    }

    /// Attaches `fd` (an open /dev/net/tun) to TAP device `name` (a TUN
    /// device with `tun`: bare IP packets), creating it if needed, without
    /// packet-information headers; with `vnet_hdr`, every frame read or
    /// written is preceded by a `virtio_net_hdr`.
    pub fn tun_set_iff(fd: RawFd, name: &str, tun: bool, vnet_hdr: bool) -> io::Result<()> {
        let mut req = ifreq(name);
        let kind = if tun { libc::IFF_TUN } else { libc::IFF_TAP };
        let mut flags = kind | libc::IFF_NO_PI;
        if vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        ioctl(fd, libc::TUNSETIFF, &mut req)
    }

    /// Tells the kernel which offloads the reader of a TAP device handles
    /// (`TUN_F_*`): with `TUN_F_CSUM | TUN_F_TSO4` it may hand over TCP
    /// segments of up to 64 KiB with their checksum left to complete.
    pub fn tun_set_offload(fd: RawFd, flags: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value; no pointers.
        cvt(unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, flags as libc::c_ulong) })?;
        Ok(())
    }

    /// Sets IFF_UP (and IFF_RUNNING) on `name`.
    pub fn set_up(name: &str) -> io::Result<()> {
        let sock = control_socket()?;
        let mut req = ifreq(name);
        ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )?;
        // SAFETY: SIOCGIFFLAGS filled the flags member.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS as libc::Ioctl,
            &mut req,
        )
    }

    /// The MTU of `name`.
    pub fn mtu(name: &str) -> io::Result<usize> {
        let sock = control_socket()?;
        let mut req = ifreq(name);
        ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU as libc::Ioctl, &mut req)?;
        // SAFETY: SIOCGIFMTU filled the mtu member.
        Ok(unsafe { req.ifr_ifru.ifru_mtu } as usize)
    }

    /// Sets the MTU of `name`.
    pub fn set_mtu(name: &str, mtu: usize) -> io::Result<()> {
        let sock = control_socket()?;
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
        ioctl(sock.as_raw_fd(), libc::SIOCSIFMTU as libc::Ioctl, &mut req)
    }

    fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in and sockaddr have the same size on Linux and
        // sockaddr is plain old data.
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
    }

    /// Gives the kernel side of `name` the address `ip` with `netmask`.
    pub fn set_ipv4(name: &str, ip: Ipv4Addr, netmask: Ipv4Addr) -> io::Result<()> {
        let sock = control_socket()?;
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_addr = sockaddr(ip);
        ioctl(sock.as_raw_fd(), libc::SIOCSIFADDR as libc::Ioctl, &mut req)?;
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_netmask = sockaddr(netmask);
        ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFNETMASK as libc::Ioctl,
            &mut req,
        )
    }
}
