//! The IPv4 header (RFC 791): validation on input, emission on output.

use std::fmt;
use std::net::Ipv4Addr;

use crate::checksum;

/// The IPv4 protocol field.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// ICMP (1).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// TCP (6).
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP (17).
    pub const UDP: IpProtocol = IpProtocol(17);
}

/// Why an IPv4 packet was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ipv4Error {
    /// Shorter than its header or than its total length says.
    Truncated,
    /// The version field is not 4.
    BadVersion,
    /// IHL below 5 words.
    BadHeaderLength,
    /// Total length smaller than the header.
    BadTotalLength,
    /// The header checksum does not verify.
    BadChecksum,
}

impl fmt::Display for Ipv4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ipv4Error::Truncated => "IPv4 packet truncated",
            Ipv4Error::BadVersion => "IP version is not 4",
            Ipv4Error::BadHeaderLength => "IPv4 header length below 20 bytes",
            Ipv4Error::BadTotalLength => "IPv4 total length smaller than its header",
            Ipv4Error::BadChecksum => "IPv4 header checksum mismatch",
        })
    }
}

impl std::error::Error for Ipv4Error {}

/// The validated contents of an IPv4 header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN bits (the old type-of-service octet).
    pub tos: u8,
    /// Identification, shared by the fragments of one datagram.
    pub ident: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in bytes (always a multiple of 8).
    pub frag_offset: u16,
    /// Header length in bytes, options included (20 when emitted by us).
    pub header_len: usize,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Length of an IPv4 header without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// The largest total length the 16-bit field can express.
    pub const MAX_PACKET_LEN: usize = 65_535;

    /// A header for a locally originated, unfragmented datagram.
    pub fn new(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        ttl: u8,
        payload_len: usize,
    ) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol,
            ttl,
            tos: 0,
            ident: 0,
            dont_fragment: false,
            more_fragments: false,
            frag_offset: 0,
            header_len: Self::MIN_HEADER_LEN,
            payload_len,
        }
    }

    /// Validates the header at the start of `buf` and returns it with the
    /// payload. Bytes beyond the total length (Ethernet padding) are cut off.
    ///
    /// Checks (RFC 791, RFC 1122 section 3.2.1): version 4, IHL >= 5, total
    /// length covers the header and fits in `buf`, header checksum verifies.
    /// Options are accepted and skipped. Policy checks that depend on the
    /// host (TTL, addresses) are the caller's.
    pub fn parse(buf: &[u8]) -> Result<(Ipv4Repr, &[u8]), Ipv4Error> {
        use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
        let header = etherparse::Ipv4HeaderSlice::from_slice(buf).map_err(|e| match e {
            HeaderSliceError::Len(_) => Ipv4Error::Truncated,
            HeaderSliceError::Content(HeaderError::UnexpectedVersion { .. }) => {
                Ipv4Error::BadVersion
            }
            HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
                Ipv4Error::BadHeaderLength
            }
        })?;
        let header_len = header.slice().len();
        let total_len = header.total_len() as usize;
        if total_len < header_len {
            return Err(Ipv4Error::BadTotalLength);
        }
        if total_len > buf.len() {
            return Err(Ipv4Error::Truncated);
        }
        if !checksum::verify(header.slice()) {
            return Err(Ipv4Error::BadChecksum);
        }
        let repr = Ipv4Repr {
            src: header.source_addr(),
            dst: header.destination_addr(),
            protocol: IpProtocol(header.protocol().0),
            ttl: header.ttl(),
            tos: buf[1],
            ident: header.identification(),
            dont_fragment: header.dont_fragment(),
            more_fragments: header.more_fragments(),
            frag_offset: header.fragments_offset().byte_offset(),
            header_len,
            payload_len: total_len - header_len,
        };
        Ok((repr, &buf[header_len..total_len]))
    }

    /// Parses the IP header quoted inside an ICMP error: the original
    /// datagram is usually truncated, so the total length is not checked
    /// against the buffer and (like Linux) the checksum is not verified.
    /// Returns the header and the quoted payload bytes.
    pub fn parse_quoted(buf: &[u8]) -> Option<(Ipv4Repr, &[u8])> {
        let header = etherparse::Ipv4HeaderSlice::from_slice(buf).ok()?;
        let header_len = header.slice().len();
        let total_len = header.total_len() as usize;
        let repr = Ipv4Repr {
            src: header.source_addr(),
            dst: header.destination_addr(),
            protocol: IpProtocol(header.protocol().0),
            ttl: header.ttl(),
            tos: buf[1],
            ident: header.identification(),
            dont_fragment: header.dont_fragment(),
            more_fragments: header.more_fragments(),
            frag_offset: header.fragments_offset().byte_offset(),
            header_len,
            payload_len: total_len.saturating_sub(header_len),
        };
        Some((repr, &buf[header_len..]))
    }

    /// True when this packet is a fragment rather than a whole datagram.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// Header plus payload length.
    pub fn total_len(&self) -> usize {
        self.header_len + self.payload_len
    }

    /// Writes a 20-byte header (no options) with its checksum into the start
    /// of `buf`. `header_len` is taken to be 20.
    ///
    /// # Panics
    /// If `buf` is shorter than 20 bytes, or `frag_offset` is not a multiple
    /// of 8 below 65,536 (programming errors: the stack builds these).
    pub fn emit(&self, buf: &mut [u8]) {
        let total = (Self::MIN_HEADER_LEN + self.payload_len) as u16;
        debug_assert!(self.frag_offset % 8 == 0);
        let mut flags_frag = self.frag_offset / 8;
        if self.dont_fragment {
            flags_frag |= 0x4000;
        }
        if self.more_fragments {
            flags_frag |= 0x2000;
        }
        let h = &mut buf[..Self::MIN_HEADER_LEN];
        h[0] = 0x45;
        h[1] = self.tos;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6..8].copy_from_slice(&flags_frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.protocol.0;
        h[10..12].copy_from_slice(&[0, 0]);
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let sum = checksum::checksum(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
