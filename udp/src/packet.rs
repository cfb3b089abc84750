//! The UDP header (RFC 768).

use std::fmt;
use std::net::Ipv4Addr;

use ip::checksum;

/// Why a UDP datagram was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UdpError {
    /// Shorter than the 8-byte header.
    Truncated,
    /// The length field disagrees with the IP payload length.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UdpError::Truncated => "UDP datagram truncated",
            UdpError::BadLength => "UDP length field disagrees with the IP length",
            UdpError::BadChecksum => "UDP checksum mismatch",
        })
    }
}

impl std::error::Error for UdpError {}

/// The validated UDP header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UdpRepr {
    /// Source port (0: none given).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Length of the UDP header.
    pub const HEADER_LEN: usize = 8;
    /// Largest UDP payload in one IPv4 datagram: 65,535 - 20 - 8.
    pub const MAX_PAYLOAD: usize = 65_507;

    /// Validates a datagram (the whole IP payload) received from `src` for
    /// `dst`, and returns the header with the data.
    ///
    /// RFC 768: the length field covers header and data; the checksum covers
    /// a pseudo-header, the header and the data; "An all zero transmitted
    /// checksum value means that the transmitter generated no checksum", and
    /// such datagrams are accepted.
    pub fn parse(buf: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(UdpRepr, &[u8]), UdpError> {
        if buf.len() < Self::HEADER_LEN {
            return Err(UdpError::Truncated);
        }
        let length = u16::from_be_bytes([buf[4], buf[5]]) as usize;
        // The IP layer already trimmed link padding; a length that covers
        // less than the header, or more than we have, is malformed. A length
        // shorter than the IP payload is accepted (RFC 1122 4.1.3.4 lets us
        // use the UDP length), the excess ignored.
        if length < Self::HEADER_LEN || length > buf.len() {
            return Err(UdpError::BadLength);
        }
        let buf = &buf[..length];
        let stored = u16::from_be_bytes([buf[6], buf[7]]);
        if stored != 0 {
            let sum = checksum::add(checksum::pseudo_header(src, dst, 17, length as u16), buf);
            if checksum::fold(sum) != 0xffff {
                return Err(UdpError::BadChecksum);
            }
        }
        let repr = UdpRepr {
            src_port: u16::from_be_bytes([buf[0], buf[1]]),
            dst_port: u16::from_be_bytes([buf[2], buf[3]]),
        };
        Ok((repr, &buf[Self::HEADER_LEN..]))
    }

    /// Writes header and `payload` into `buf` (which must hold
    /// `8 + payload.len()` bytes) with the checksum for `src` -> `dst`.
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
        let length = Self::HEADER_LEN + payload.len();
        let buf = &mut buf[..length];
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..6].copy_from_slice(&(length as u16).to_be_bytes());
        buf[6..8].copy_from_slice(&[0, 0]);
        buf[8..].copy_from_slice(payload);
        let sum = checksum::add(checksum::pseudo_header(src, dst, 17, length as u16), buf);
        let mut csum = !checksum::fold(sum);
        // RFC 768: "If the computed checksum is zero, it is transmitted as
        // all ones."
        if csum == 0 {
            csum = 0xffff;
        }
        buf[6..8].copy_from_slice(&csum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
