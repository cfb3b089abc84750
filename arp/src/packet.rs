//! The ARP packet for hardware type Ethernet and protocol type IPv4.

use std::fmt;
use std::net::Ipv4Addr;

use ethernet::MacAddr;

/// The ARP operation code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpOp {
    /// `ares_op$REQUEST` (1).
    Request,
    /// `ares_op$REPLY` (2).
    Reply,
}

/// Why an ARP packet was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ArpError {
    /// Shorter than the 28 bytes of an Ethernet/IPv4 ARP packet.
    Truncated,
    /// `ar$hrd` is not Ethernet (1).
    UnsupportedHardware,
    /// `ar$pro` is not IPv4 (0x0800).
    UnsupportedProtocol,
    /// `ar$hln`/`ar$pln` are not 6 and 4.
    BadAddressLength,
    /// An opcode other than request or reply (RARP, InARP, ...).
    UnsupportedOperation,
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArpError::Truncated => "ARP packet truncated",
            ArpError::UnsupportedHardware => "ARP hardware type is not Ethernet",
            ArpError::UnsupportedProtocol => "ARP protocol type is not IPv4",
            ArpError::BadAddressLength => "ARP address lengths are not 6/4",
            ArpError::UnsupportedOperation => "ARP operation is neither request nor reply",
        })
    }
}

impl std::error::Error for ArpError {}

/// A validated Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ArpRepr {
    /// Request or reply.
    pub op: ArpOp,
    /// `ar$sha`.
    pub sender_mac: MacAddr,
    /// `ar$spa`.
    pub sender_ip: Ipv4Addr,
    /// `ar$tha` (all zero in a request).
    pub target_mac: MacAddr,
    /// `ar$tpa`.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;

    /// Parses an ARP packet (trailing Ethernet padding is ignored).
    pub fn parse(buf: &[u8]) -> Result<ArpRepr, ArpError> {
        if buf.len() < 8 {
            return Err(ArpError::Truncated);
        }
        // RFC 826: "?Do I have the hardware type in ar$hrd?" and
        // "?Do I speak the protocol in ar$pro?" -- if not, discard.
        let htype = u16::from_be_bytes([buf[0], buf[1]]);
        let ptype = u16::from_be_bytes([buf[2], buf[3]]);
        if htype != 1 {
            return Err(ArpError::UnsupportedHardware);
        }
        if ptype != 0x0800 {
            return Err(ArpError::UnsupportedProtocol);
        }
        if buf[4] != 6 || buf[5] != 4 {
            return Err(ArpError::BadAddressLength);
        }
        let packet =
            etherparse::ArpPacketSlice::from_slice(buf).map_err(|_| ArpError::Truncated)?;
        let op = match packet.operation().0 {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            _ => return Err(ArpError::UnsupportedOperation),
        };
        let mac = |s: &[u8]| -> MacAddr {
            let mut m = [0u8; 6];
            m.copy_from_slice(s);
            MacAddr(m)
        };
        let ip = |s: &[u8]| Ipv4Addr::new(s[0], s[1], s[2], s[3]);
        Ok(ArpRepr {
            op,
            sender_mac: mac(packet.sender_hw_addr()),
            sender_ip: ip(packet.sender_protocol_addr()),
            target_mac: mac(packet.target_hw_addr()),
            target_ip: ip(packet.target_protocol_addr()),
        })
    }

    /// Writes the packet into the first [`Self::LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let op: u16 = match self.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        buf[0..2].copy_from_slice(&1u16.to_be_bytes());
        buf[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        buf[4] = 6;
        buf[5] = 4;
        buf[6..8].copy_from_slice(&op.to_be_bytes());
        buf[8..14].copy_from_slice(&self.sender_mac.0);
        buf[14..18].copy_from_slice(&self.sender_ip.octets());
        buf[18..24].copy_from_slice(&self.target_mac.0);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
    }

    /// A request asking who has `target_ip`.
    pub fn request(our_mac: MacAddr, our_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Request,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        }
    }

    /// A gratuitous ARP announcing our binding: a request whose sender and
    /// target protocol addresses are both ours (RFC 5227 "ARP Announcement").
    pub fn gratuitous(our_mac: MacAddr, our_ip: Ipv4Addr) -> ArpRepr {
        ArpRepr::request(our_mac, our_ip, our_ip)
    }

    /// The reply to this request, sent from `our_mac`.
    ///
    /// RFC 826: "Swap hardware and protocol fields, putting the local hardware
    /// and protocol addresses in the sender fields. Set the ar$op field to
    /// ares_op$REPLY."
    pub fn reply_from(&self, our_mac: MacAddr) -> ArpRepr {
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: our_mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }
}

#[cfg(test)]
mod tests;
