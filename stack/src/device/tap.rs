//! The Linux TAP and TUN devices: raw Ethernet frames (TAP) or bare IP
//! packets (TUN) to and from the kernel. One implementation serves both;
//! they differ only in the link header (14 bytes or none) that offsets the
//! IP packet in every frame.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use ip::Ipv4Cidr;

use super::{ChecksumCaps, Device, FrameSink, Medium};
use crate::sys::{self, netif};

/// Longest interface name Linux accepts (IFNAMSIZ minus the NUL).
pub const MAX_NAME_LEN: usize = 15;

/// How to open a TAP device (or a TUN device: [`TunDevice::open`] takes the
/// same configuration).
#[derive(Clone, Debug)]
pub struct TapConfig {
    /// Interface name, e.g. `tap0`.
    pub name: String,
    /// Set the link MTU (the kernel's default for a new TAP is 1500).
    pub mtu: Option<usize>,
    /// Give the kernel side of the link this address, so the host can reach
    /// the userspace stack at once (on TUN, its prefix routes to the
    /// device: no ARP is needed to reach ustack).
    pub host_addr: Option<Ipv4Cidr>,
    /// Receive offload: let the kernel hand over TCP segments of up to
    /// 64 KiB (its TSO, `TUN_F_TSO4`) with checksums left to complete
    /// (`TUN_F_CSUM`), so one `read` carries what would take up to 45
    /// frames. The frames ustack sees (and records) are then larger than
    /// the MTU; on the wire between Linux and ustack nothing changes.
    pub offload: bool,
}

impl TapConfig {
    /// A configuration that opens `name` and changes nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        TapConfig {
            name: name.into(),
            mtu: None,
            host_addr: None,
            offload: true,
        }
    }
}

/// Why a TAP device could not be opened or configured (the same for a TUN
/// device, shown by [`TunError`]).
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
        self.describe("TAP", f)
    }
}

impl TapError {
    /// The one-line message, for a device of `kind` ("TAP" or "TUN").
    fn describe(&self, kind: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapError::NoTunDevice => write!(
                f,
                "/dev/net/tun does not exist: load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
            ),
            TapError::PermissionDenied(name) => write!(
                f,
                "permission denied opening {kind} device '{name}': run as root or grant CAP_NET_ADMIN"
            ),
            TapError::NameTooLong(name) => write!(
                f,
                "{kind} device name '{name}' is too long: at most {MAX_NAME_LEN} bytes"
            ),
            TapError::InvalidName(name) => write!(
                f,
                "invalid {kind} device name '{name}': use letters, digits, '-', '_' or '.'"
            ),
            TapError::Busy(name) => write!(
                f,
                "{kind} device '{name}' is busy: another process has it open, or an interface of another kind has that name"
            ),
            TapError::Io(what, name, err) => write!(f, "{what} '{name}': {err}"),
        }
    }
}

/// Why a TUN device could not be opened or configured: the reasons of
/// [`TapError`], shown with "TUN".
#[derive(Debug)]
pub struct TunError(pub TapError);

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe("TUN", f)
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
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
        // TUNSETIFF on an existing interface of another kind fails with EINVAL.
        Some(libc::EINVAL) if what == "attaching to" => TapError::Busy(name.to_string()),
        _ => TapError::Io(what, name.to_string(), err),
    }
}

/// Length of the `virtio_net_hdr` before each frame when `IFF_VNET_HDR`
/// is on (the legacy layout, without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// `virtio_net_hdr.flags`: the transport checksum is still to be completed.
const VNET_F_NEEDS_CSUM: u8 = 1;

/// `virtio_net_hdr.gso_type`: TCP over IPv4.
const VNET_GSO_TCPV4: u8 = 1;

/// Longest frame the kernel hands over with receive offload on: an IPv4
/// packet of 64 KiB behind the link header (and a VLAN tag).
const fn max_offload_frame(medium: Medium) -> usize {
    medium.header_len() + 4 + 65_535
}

/// The fields of a `virtio_net_hdr` (host byte order: legacy virtio, as the
/// TAP driver uses it unless told otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`: 0 for a plain frame, 1 for TCP over IPv4.
    pub gso_type: u8,
    /// Length of the headers before the segmented payload.
    pub hdr_len: u16,
    /// Payload bytes per segment on the wire.
    pub gso_size: u16,
    /// Where the checksummed range starts (from the start of the frame).
    pub csum_start: u16,
    /// Where in that range the checksum field is.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Serialises the header.
    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The header for a TCP super segment in `frame` (IPv4 after a link
    /// header of `link_len` bytes, checksum field holding the pseudo-header
    /// sum) to be cut into segments of `mss` payload bytes; `None` if it is
    /// not one.
    pub fn for_tcp_segments(frame: &[u8], link_len: usize, mss: usize) -> Option<VnetHdr> {
        let h = super::gso::TcpHeaders::find(frame, link_len)?;
        Some(VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            hdr_len: h.payload as u16,
            gso_size: mss.min(u16::MAX as usize) as u16,
            csum_start: h.tcp as u16,
            csum_offset: 16,
        })
    }

    /// Parses the header.
    pub fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// Settles the checksum of a frame the kernel handed over with this
    /// header. A TCP segment whose checksum it left partial (`NEEDS_CSUM`:
    /// generated on this host, it never crossed a wire) stays as it is and
    /// is reported trusted (`Some(true)`), so the stack does not sum it
    /// twice; any other partial checksum is completed (`Some(false)`).
    /// `None` when the offsets do not fit the frame (left unchanged: the
    /// stack drops it for its bad checksum). The IP packet starts
    /// `link_len` bytes into the frame.
    pub fn settle_checksum(&self, frame: &mut [u8], link_len: usize) -> Option<bool> {
        if self.flags & VNET_F_NEEDS_CSUM == 0 {
            return Some(false);
        }
        let whole_tcp = super::gso::TcpHeaders::find(frame, link_len).is_some_and(|h| {
            let fragment = u16::from_be_bytes([frame[h.ip + 6], frame[h.ip + 7]]) & 0x3fff != 0;
            h.tcp == usize::from(self.csum_start) && self.csum_offset == 16 && !fragment
        });
        if whole_tcp {
            return Some(true);
        }
        self.complete_checksum(frame).then_some(false)
    }

    /// Completes a partial checksum the kernel left for the reader
    /// (`NEEDS_CSUM`): the field holds the pseudo-header sum; the checksum
    /// covers everything from `csum_start` to the end of the frame. Returns
    /// false (frame unchanged) when the offsets do not fit the frame; the
    /// stack then drops it for its bad checksum.
    pub fn complete_checksum(&self, frame: &mut [u8]) -> bool {
        if self.flags & VNET_F_NEEDS_CSUM == 0 {
            return true;
        }
        super::checksum::complete_partial(
            frame,
            usize::from(self.csum_start),
            usize::from(self.csum_offset),
        )
    }
}

/// An open TAP device: non-blocking, link up, frames without packet-info
/// headers (with receive offload: behind a `virtio_net_hdr`).
#[derive(Debug)]
pub struct TapDevice {
    fd: OwnedFd,
    name: String,
    /// Ethernet for TAP, IP for the TUN device built on this one.
    medium: Medium,
    mtu: usize,
    /// Frames carry a `virtio_net_hdr` (and the kernel may coalesce).
    vnet_hdr: bool,
    /// The kernel accepted the offloads: it coalesces what it sends us and
    /// segments what we send it.
    offload: bool,
    /// Coalesced segments received (each larger than the MTU).
    coalesced: u64,
    /// Received frames whose checksum offsets did not fit.
    bad_offload: u64,
    /// The last frame read is a TCP segment with a partial checksum (see
    /// [`Device::rx_checksum_trusted`]).
    rx_trusted: bool,
}

impl TapDevice {
    /// Opens (creating if needed) the TAP device, applies the MTU and host
    /// address if given, and brings the link up.
    pub fn open(config: &TapConfig) -> Result<TapDevice, TapError> {
        Self::open_as(config, Medium::Ethernet)
    }

    /// Opens a TAP device, or a TUN device for [`Medium::Ip`].
    fn open_as(config: &TapConfig, medium: Medium) -> Result<TapDevice, TapError> {
        let kind = match medium {
            Medium::Ethernet => "TAP",
            Medium::Ip => "TUN",
        };
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
        netif::tun_set_iff(fd.as_raw_fd(), name, medium == Medium::Ip, config.offload)
            .map_err(|e| classify("attaching to", name, e))?;
        let mut offload = config.offload;
        if offload
            && let Err(e) =
                netif::tun_set_offload(fd.as_raw_fd(), libc::TUN_F_CSUM | libc::TUN_F_TSO4)
        {
            // Frames still carry the header; the kernel just never coalesces.
            log::warn!("{kind} device {name}: receive offload unavailable ({e})");
            offload = false;
            netif::tun_set_offload(fd.as_raw_fd(), 0)
                .map_err(|e| classify("configuring offloads of", name, e))?;
        }
        if let Some(mtu) = config.mtu {
            netif::set_mtu(name, mtu).map_err(|e| classify("setting the MTU of", name, e))?;
        }
        if let Some(cidr) = config.host_addr {
            netif::set_ipv4(name, cidr.addr(), cidr.netmask())
                .map_err(|e| classify("setting the host address of", name, e))?;
        }
        netif::set_up(name).map_err(|e| classify("bringing up", name, e))?;
        let mtu = netif::mtu(name).map_err(|e| classify("reading the MTU of", name, e))?;
        log::info!(
            "{kind} device {name} open, MTU {mtu}, receive offload {}",
            if offload { "on" } else { "off" }
        );
        Ok(TapDevice {
            fd,
            name: name.to_string(),
            medium,
            mtu,
            vnet_hdr: config.offload,
            offload,
            coalesced: 0,
            bad_offload: 0,
            rx_trusted: false,
        })
    }

    /// Segments the kernel coalesced beyond the MTU (receive offload).
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FrameSink for TapDevice {
    fn medium(&self) -> Medium {
        self.medium
    }

    fn send(&mut self, _now: Instant, frame: &[u8]) -> io::Result<()> {
        if self.vnet_hdr {
            // A zero header: a complete frame, nothing for the kernel to do.
            return sys::writev2(self.fd.as_raw_fd(), &[0u8; VNET_HDR_LEN], frame);
        }
        sys::write_frame(self.fd.as_raw_fd(), frame)
    }

    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        let link_len = self.medium.header_len();
        let payload =
            super::gso::TcpHeaders::find(frame, link_len).map(|h| frame.len() - h.payload);
        match VnetHdr::for_tcp_segments(frame, link_len, mss) {
            Some(hdr) if self.offload && payload.is_some_and(|p| p > mss) => {
                sys::writev2(self.fd.as_raw_fd(), &hdr.emit(), frame)
            }
            Some(mut hdr) if self.vnet_hdr => {
                // One segment: the kernel only completes its checksum.
                hdr.gso_type = 0;
                hdr.gso_size = 0;
                sys::writev2(self.fd.as_raw_fd(), &hdr.emit(), frame)
            }
            _ => {
                let mut scratch = Vec::new();
                let mut result = Ok(());
                super::gso::split_tcp(frame, link_len, mss, &mut scratch, |piece| {
                    if let Err(e) = self.send(now, piece) {
                        result = Err(e);
                    }
                });
                result
            }
        }
    }
}

impl Device for TapDevice {
    fn recv(&mut self, _now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if !self.vnet_hdr {
            return sys::read_nonblocking(self.fd.as_raw_fd(), buf);
        }
        let mut head = [0u8; VNET_HDR_LEN];
        let Some(n) = sys::readv2_nonblocking(self.fd.as_raw_fd(), &mut head, buf)? else {
            return Ok(None);
        };
        let n = n.saturating_sub(VNET_HDR_LEN);
        let hdr = VnetHdr::parse(&head);
        if hdr.gso_type != 0 {
            self.coalesced += 1;
        }
        match hdr.settle_checksum(&mut buf[..n], self.medium.header_len()) {
            Some(trusted) => self.rx_trusted = trusted,
            None => {
                self.rx_trusted = false;
                self.bad_offload += 1;
                log::debug!(
                    "{} {}: checksum offsets outside the frame: {hdr:?}",
                    if self.medium == Medium::Ip {
                        "TUN"
                    } else {
                        "TAP"
                    },
                    self.name
                );
            }
        }
        Ok(Some(n))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn checksum_caps(&self) -> ChecksumCaps {
        ChecksumCaps {
            segmentation_offload: self.offload,
            rx_partial: self.rx_trusted,
        }
    }

    fn max_frame_len(&self) -> usize {
        if self.vnet_hdr {
            max_offload_frame(self.medium)
        } else {
            self.mtu + self.medium.header_len() + 4
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}

/// An open TUN device (`IFF_TUN | IFF_NO_PI`): bare IP packets, no
/// Ethernet header, no ARP ([`Medium::Ip`]). The same implementation as
/// [`TapDevice`], with the same offloads: behind a `virtio_net_hdr`
/// (`IFF_VNET_HDR`), partial checksums and TCP super segments both ways,
/// falling back to wire-sized packets when the kernel refuses them.
#[derive(Debug)]
pub struct TunDevice(TapDevice);

impl TunDevice {
    /// Opens (creating if needed) the TUN device `config.name`, applies the
    /// MTU and host address if given, and brings the link up.
    pub fn open(config: &TapConfig) -> Result<TunDevice, TunError> {
        TapDevice::open_as(config, Medium::Ip)
            .map(TunDevice)
            .map_err(TunError)
    }

    /// Segments the kernel coalesced beyond the MTU (receive offload).
    pub fn coalesced(&self) -> u64 {
        self.0.coalesced()
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

impl FrameSink for TunDevice {
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.0.send(now, frame)
    }

    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        self.0.send_segmented(now, frame, mss)
    }
}

impl Device for TunDevice {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.0.recv(now, buf)
    }

    fn mtu(&self) -> usize {
        self.0.mtu()
    }

    fn checksum_caps(&self) -> ChecksumCaps {
        self.0.checksum_caps()
    }

    fn max_frame_len(&self) -> usize {
        self.0.max_frame_len()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.0.raw_fd()
    }
}

#[cfg(test)]
mod tests;
