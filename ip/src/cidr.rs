//! IPv4 address prefixes (`A.B.C.D/LEN`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with a prefix length, such as `10.0.0.2/24`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

/// Why a prefix string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrParseError {
    /// No `/LEN` part.
    MissingPrefix(String),
    /// The address part is not a dotted quad.
    BadAddress(String),
    /// The length is not a number from 0 to 32.
    BadPrefix(String),
}

impl fmt::Display for CidrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrParseError::MissingPrefix(s) => {
                write!(
                    f,
                    "invalid address '{s}': expected A.B.C.D/LEN, e.g. 10.0.0.2/24"
                )
            }
            CidrParseError::BadAddress(s) => write!(f, "invalid IPv4 address '{s}'"),
            CidrParseError::BadPrefix(s) => {
                write!(
                    f,
                    "invalid prefix length '{s}': must be a number from 0 to 32"
                )
            }
        }
    }
}

impl std::error::Error for CidrParseError {}

impl Ipv4Cidr {
    /// A prefix; `None` if `prefix_len > 32`.
    pub const fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Cidr> {
        if prefix_len > 32 {
            None
        } else {
            Some(Ipv4Cidr { addr, prefix_len })
        }
    }

    /// The address as given (host bits included).
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask, e.g. 255.255.255.0 for /24.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    fn mask_bits(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_bits())
    }

    /// The directed broadcast address of the subnet (host bits set). A /31 or
    /// /32 has none (RFC 3021), in which case this returns `None`.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            None
        } else {
            Some(Ipv4Addr::from(u32::from(self.addr) | !self.mask_bits()))
        }
    }

    /// True when `ip` lies inside the prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask_bits() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| CidrParseError::MissingPrefix(s.to_string()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| CidrParseError::BadAddress(addr.to_string()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| CidrParseError::BadPrefix(len.to_string()))?;
        Ipv4Cidr::new(addr, len).ok_or_else(|| CidrParseError::BadPrefix(len.to_string()))
    }
}

#[cfg(test)]
mod tests;
