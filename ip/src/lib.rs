//! IPv4 for ustack: the header (RFC 791), the Internet checksum (RFC 1071),
//! ICMPv4 (RFC 792), address prefixes, the route table, fragmentation and
//! reassembly (RFC 791/815) and the path MTU cache (RFC 1191).
//!
//! Sans-IO: nothing here reads a clock or performs I/O.

#![warn(missing_docs)]

pub mod checksum;
mod cidr;
pub mod icmp;
mod ipv4;
mod pmtu;
pub mod reassembly;
mod route;

pub use cidr::{CidrParseError, Ipv4Cidr};
pub use icmp::{IcmpError, IcmpRepr};
pub use ipv4::{IpProtocol, Ipv4Error, Ipv4Repr};
pub use pmtu::PmtuCache;
pub use reassembly::{Datagram, Expired, Reassembler, ReassemblyConfig, ReassemblyError};
pub use route::{NextHop, Route, RouteTable};
