//! The Linux TAP device: raw Ethernet frames to and from the kernel.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use ip::Ipv4Cidr;

use super::{Device, FrameSink};
use crate::sys::{self, netif};

/// Longest interface name Linux accepts (IFNAMSIZ minus the NUL).
pub const MAX_NAME_LEN: usize = 15;

/// How to open a TAP device.
#[derive(Clone, Debug)]
pub struct TapConfig {
    /// Interface name, e.g. `tap0`.
    pub name: String,
    /// Set the link MTU (the kernel's default for a new TAP is 1500).
    pub mtu: Option<usize>,
    /// Give the kernel side of the link this address, so the host can reach
    /// the userspace stack at once.
    pub host_addr: Option<Ipv4Cidr>,
}

impl TapConfig {
    /// A configuration that opens `name` and changes nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        TapConfig {
            name: name.into(),
            mtu: None,
            host_addr: None,
        }
    }
}

/// Why a TAP device could not be opened or configured.
#[derive(Debug)]
pub enum TapError {
    /// `/dev/net/tun` does not exist.
    NoTunDevice,
    /// The caller lacks root / CAP_NET_ADMIN.
    PermissionDenied(String),
    /// The name does not fit in IFNAMSIZ.
    NameTooLong(String),
    /// The name is empty or contains characters Linux rejects.
    InvalidName(String),
    /// Another process holds the device, or it exists as another kind.
    Busy(String),
    /// Any other failure, with what was being done.
    Io(&'static str, String, io::Error),
}

impl fmt::Display for TapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapError::NoTunDevice => write!(
                f,
                "/dev/net/tun does not exist: load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
            ),
            TapError::PermissionDenied(name) => write!(
                f,
                "permission denied opening TAP device '{name}': run as root or grant CAP_NET_ADMIN"
            ),
            TapError::NameTooLong(name) => write!(
                f,
                "TAP device name '{name}' is too long: at most {MAX_NAME_LEN} bytes"
            ),
            TapError::InvalidName(name) => write!(
                f,
                "invalid TAP device name '{name}': use letters, digits, '-', '_' or '.'"
            ),
            TapError::Busy(name) => write!(
                f,
                "TAP device '{name}' is busy: another process has it open, or an interface of another kind has that name"
            ),
            TapError::Io(what, name, err) => write!(f, "{what} '{name}': {err}"),
        }
    }
}

impl std::error::Error for TapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TapError::Io(_, _, e) => Some(e),
            _ => None,
        }
    }
}

fn check_name(name: &str) -> Result<(), TapError> {
    if name.len() > MAX_NAME_LEN {
        return Err(TapError::NameTooLong(name.to_string()));
    }
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(TapError::InvalidName(name.to_string()))
    }
}

fn classify(what: &'static str, name: &str, err: io::Error) -> TapError {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => TapError::PermissionDenied(name.to_string()),
        Some(libc::EBUSY) => TapError::Busy(name.to_string()),
        // TUNSETIFF on an existing interface that is not a TAP fails with EINVAL.
        Some(libc::EINVAL) if what == "attaching to" => TapError::Busy(name.to_string()),
        _ => TapError::Io(what, name.to_string(), err),
    }
}

/// An open TAP device: non-blocking, link up, frames without packet-info
/// headers.
#[derive(Debug)]
pub struct TapDevice {
    fd: OwnedFd,
    name: String,
    mtu: usize,
}

impl TapDevice {
    /// Opens (creating if needed) the TAP device, applies the MTU and host
    /// address if given, and brings the link up.
    pub fn open(config: &TapConfig) -> Result<TapDevice, TapError> {
        let name = config.name.as_str();
        check_name(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => TapError::NoTunDevice,
                _ => classify("opening /dev/net/tun for", name, e),
            })?;
        let fd: OwnedFd = file.into();
        netif::tun_set_iff(fd.as_raw_fd(), name).map_err(|e| classify("attaching to", name, e))?;
        if let Some(mtu) = config.mtu {
            netif::set_mtu(name, mtu).map_err(|e| classify("setting the MTU of", name, e))?;
        }
        if let Some(cidr) = config.host_addr {
            netif::set_ipv4(name, cidr.addr(), cidr.netmask())
                .map_err(|e| classify("setting the host address of", name, e))?;
        }
        netif::set_up(name).map_err(|e| classify("bringing up", name, e))?;
        let mtu = netif::mtu(name).map_err(|e| classify("reading the MTU of", name, e))?;
        log::info!("TAP device {name} open, MTU {mtu}");
        Ok(TapDevice {
            fd,
            name: name.to_string(),
            mtu,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FrameSink for TapDevice {
    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        sys::write_frame(self.fd.as_raw_fd(), frame)
    }
}

impl Device for TapDevice {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        sys::read_nonblocking(self.fd.as_raw_fd(), buf)
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_syscall() {
        assert!(matches!(
            TapDevice::open(&TapConfig::new("a-name-that-is-too-long")),
            Err(TapError::NameTooLong(_))
        ));
        for bad in ["", "a b", "x/y", "..", "tap\0"] {
            assert!(
                matches!(
                    TapDevice::open(&TapConfig::new(bad)),
                    Err(TapError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
        let msg = TapError::PermissionDenied("tap0".into()).to_string();
        assert!(msg.contains("CAP_NET_ADMIN"));
    }
}
