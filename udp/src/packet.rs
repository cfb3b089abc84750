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
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// Port 40000 -> 7, "hello", checksum computed independently.
    const FIXTURE: [u8; 13] = [
        0x9c, 0x40, 0x00, 0x07, 0x00, 0x0d, 0x0b, 0xb8, b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn parses_and_emits_fixture() {
        let (repr, data) = UdpRepr::parse(&FIXTURE, SRC, DST).unwrap();
        assert_eq!(
            repr,
            UdpRepr {
                src_port: 40000,
                dst_port: 7
            }
        );
        assert_eq!(data, b"hello");
        let mut buf = [0u8; 13];
        repr.emit(&mut buf, SRC, DST, b"hello");
        assert_eq!(buf, FIXTURE);
    }

    #[test]
    fn zero_checksum_is_accepted() {
        let mut d = FIXTURE;
        d[6] = 0;
        d[7] = 0;
        assert!(UdpRepr::parse(&d, SRC, DST).is_ok());
    }

    #[test]
    fn malformed_is_rejected() {
        for len in 0..8 {
            assert_eq!(
                UdpRepr::parse(&FIXTURE[..len], SRC, DST),
                Err(UdpError::Truncated)
            );
        }
        let mut d = FIXTURE;
        d[5] = 7;
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadLength));
        let mut d = FIXTURE;
        d[5] = 14;
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadLength));
        let mut d = FIXTURE;
        d[9] ^= 1;
        assert_eq!(UdpRepr::parse(&d, SRC, DST), Err(UdpError::BadChecksum));
        // The pseudo-header counts: the same bytes to another host fail.
        assert_eq!(
            UdpRepr::parse(&FIXTURE, SRC, Ipv4Addr::new(10, 0, 0, 3)),
            Err(UdpError::BadChecksum)
        );
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Search payloads until one sums to zero.
        let mut buf = [0u8; 10];
        for x in 0..=u16::MAX {
            let payload = x.to_be_bytes();
            UdpRepr {
                src_port: 1,
                dst_port: 2,
            }
            .emit(&mut buf, SRC, DST, &payload);
            let stored = u16::from_be_bytes([buf[6], buf[7]]);
            assert_ne!(stored, 0);
            if stored == 0xffff {
                assert!(UdpRepr::parse(&buf, SRC, DST).is_ok());
                return;
            }
        }
        panic!("no payload gave a zero checksum");
    }
}
