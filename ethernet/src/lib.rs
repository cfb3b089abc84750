//! Ethernet II framing for ustack: MAC addresses, EtherTypes and the
//! validated header representation the stack acts on.
//!
//! Parsing goes through `etherparse`'s zero-copy slices; emission writes into a
//! buffer the caller owns. Nothing here performs I/O or reads a clock.

#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zero address, used as the unknown target in ARP requests.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The raw octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the I/G bit (least significant bit of the first octet) is set:
    /// a group address (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True when the U/L bit is set: the address was assigned locally rather
    /// than burned in by a manufacturer.
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// A random, locally administered, unicast address (IEEE 802: U/L bit set,
    /// I/G bit clear), as a host without a burned-in address should use.
    pub fn random_local<R: rand_core::Rng + ?Sized>(rng: &mut R) -> MacAddr {
        let mut octets = [0u8; 6];
        rng.fill_bytes(&mut octets);
        octets[0] = (octets[0] & 0xfc) | 0x02;
        MacAddr(octets)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a MAC address string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacParseError(String);

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid MAC address '{}': expected six hex octets like 02:00:00:00:00:01",
            self.0
        )
    }
}

impl std::error::Error for MacParseError {}

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff` (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let sep = if s.contains(':') { ':' } else { '-' };
        let mut octets = [0u8; 6];
        let mut parts = s.split(sep);
        for octet in octets.iter_mut() {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(octets))
    }
}

/// The EtherType field of an Ethernet II header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EtherType(pub u16);

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// Address Resolution Protocol.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// Internet Protocol version 6.
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// Why a frame could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the 14-byte Ethernet II header.
    Truncated,
    /// The type/length field holds a length (<= 1500): an IEEE 802.3 frame,
    /// which this stack does not speak.
    Ieee8023Length,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("frame shorter than an Ethernet II header"),
            FrameError::Ieee8023Length => f.write_str("IEEE 802.3 length field, not an EtherType"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The validated contents of an Ethernet II header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// What the payload carries.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Length of an Ethernet II header (no VLAN tag, no FCS).
    pub const HEADER_LEN: usize = 14;

    /// Parses the header of `frame` and returns it with the payload.
    ///
    /// Frames from a TAP device carry no FCS, and short frames may or may not
    /// be padded to 60 bytes; padding stays in the payload and the network
    /// layer trims it using its own length field.
    pub fn parse(frame: &[u8]) -> Result<(EthernetRepr, &[u8]), FrameError> {
        let header = etherparse::Ethernet2HeaderSlice::from_slice(frame)
            .map_err(|_| FrameError::Truncated)?;
        let ethertype = EtherType(header.ether_type().0);
        // IEEE 802.3: values up to 1500 are lengths, 1536 and up are types.
        if ethertype.0 < 0x0600 {
            return Err(FrameError::Ieee8023Length);
        }
        let repr = EthernetRepr {
            dst: MacAddr(header.destination()),
            src: MacAddr(header.source()),
            ethertype,
        };
        Ok((repr, &frame[Self::HEADER_LEN..]))
    }

    /// Writes the header into the first 14 bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::HEADER_LEN`]; callers size their
    /// buffers from the header length, so this is a programming error.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..6].copy_from_slice(&self.dst.0);
        buf[6..12].copy_from_slice(&self.src.0);
        buf[12..14].copy_from_slice(&self.ethertype.0.to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
