//! ICMPv4 (RFC 792) messages: echo, and the error messages a host sends and
//! receives.

use std::fmt;

use crate::checksum;

/// ICMP type numbers.
pub mod kind {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated by RFC 6633, still an error message).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// Destination Unreachable codes (RFC 792, RFC 1122).
pub mod dest_unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (RFC 1191 puts the next-hop MTU in
    /// the second half of the unused word).
    pub const FRAG_NEEDED: u8 = 4;
}

/// Time Exceeded codes.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// Why an ICMP message was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IcmpError {
    /// Shorter than the 8-byte ICMP header.
    Truncated,
    /// The checksum does not verify.
    BadChecksum,
}

impl fmt::Display for IcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IcmpError::Truncated => "ICMP message truncated",
            IcmpError::BadChecksum => "ICMP checksum mismatch",
        })
    }
}

impl std::error::Error for IcmpError {}

/// A validated ICMPv4 message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IcmpRepr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data, echoed verbatim.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DestUnreachable {
        /// Why (see [`dest_unreachable`]).
        code: u8,
        /// Next-hop MTU for code 4 (RFC 1191), zero otherwise.
        next_hop_mtu: u16,
        /// The offending datagram's header and leading payload.
        original: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// Why (see [`time_exceeded`]).
        code: u8,
        /// The offending datagram's header and leading payload.
        original: &'a [u8],
    },
    /// Parameter problem (type 12).
    ParameterProblem {
        /// Octet of the original header where the problem was found.
        pointer: u8,
        /// The offending datagram's header and leading payload.
        original: &'a [u8],
    },
    /// Any other message; the stack does not act on it.
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
}

impl<'a> IcmpRepr<'a> {
    /// Length of the ICMP header (type, code, checksum, 4 more bytes).
    pub const HEADER_LEN: usize = 8;

    /// Validates an ICMP message (the whole IP payload).
    pub fn parse(buf: &'a [u8]) -> Result<IcmpRepr<'a>, IcmpError> {
        // Only the common 8-byte header is required: a message of a type we
        // merely classify must not be rejected for a type-specific length.
        if buf.len() < Self::HEADER_LEN {
            return Err(IcmpError::Truncated);
        }
        if !checksum::verify(buf) {
            return Err(IcmpError::BadChecksum);
        }
        let rest = [buf[4], buf[5], buf[6], buf[7]];
        let word = |i: usize| u16::from_be_bytes([rest[i], rest[i + 1]]);
        let body = &buf[Self::HEADER_LEN..];
        Ok(match (buf[0], buf[1]) {
            (kind::ECHO_REQUEST, 0) => IcmpRepr::EchoRequest {
                ident: word(0),
                seq: word(2),
                data: body,
            },
            (kind::ECHO_REPLY, 0) => IcmpRepr::EchoReply {
                ident: word(0),
                seq: word(2),
                data: body,
            },
            (kind::DEST_UNREACHABLE, code) => IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu: if code == dest_unreachable::FRAG_NEEDED {
                    word(2)
                } else {
                    0
                },
                original: body,
            },
            (kind::TIME_EXCEEDED, code) => IcmpRepr::TimeExceeded {
                code,
                original: body,
            },
            (kind::PARAMETER_PROBLEM, _) => IcmpRepr::ParameterProblem {
                pointer: rest[0],
                original: body,
            },
            (icmp_type, code) => IcmpRepr::Other { icmp_type, code },
        })
    }

    /// True for error messages, about which no ICMP error may ever be sent
    /// (RFC 1122 section 3.2.2).
    pub fn is_error(&self) -> bool {
        !matches!(
            self,
            IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. }
        ) && !matches!(self, IcmpRepr::Other { icmp_type, .. } if !is_error_type(*icmp_type))
    }

    /// Bytes this message occupies on the wire.
    pub fn buffer_len(&self) -> usize {
        Self::HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => data.len(),
                IcmpRepr::DestUnreachable { original, .. }
                | IcmpRepr::TimeExceeded { original, .. }
                | IcmpRepr::ParameterProblem { original, .. } => original.len(),
                IcmpRepr::Other { .. } => 0,
            }
    }

    /// Writes the message, checksum included, into the start of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        let (t, c, rest, body): (u8, u8, [u8; 4], &[u8]) = match *self {
            IcmpRepr::EchoRequest { ident, seq, data } => {
                (kind::ECHO_REQUEST, 0, join(ident, seq), data)
            }
            IcmpRepr::EchoReply { ident, seq, data } => {
                (kind::ECHO_REPLY, 0, join(ident, seq), data)
            }
            IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu,
                original,
            } => (
                kind::DEST_UNREACHABLE,
                code,
                join(0, next_hop_mtu),
                original,
            ),
            IcmpRepr::TimeExceeded { code, original } => {
                (kind::TIME_EXCEEDED, code, [0; 4], original)
            }
            IcmpRepr::ParameterProblem { pointer, original } => {
                (kind::PARAMETER_PROBLEM, 0, [pointer, 0, 0, 0], original)
            }
            IcmpRepr::Other { icmp_type, code } => (icmp_type, code, [0; 4], &[]),
        };
        buf[0] = t;
        buf[1] = c;
        buf[2] = 0;
        buf[3] = 0;
        buf[4..8].copy_from_slice(&rest);
        buf[8..].copy_from_slice(body);
        let sum = checksum::checksum(buf);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// True for ICMP error message types (destination unreachable, source
/// quench, redirect, time exceeded, parameter problem).
pub fn is_error_type(t: u8) -> bool {
    matches!(
        t,
        kind::DEST_UNREACHABLE
            | kind::SOURCE_QUENCH
            | kind::REDIRECT
            | kind::TIME_EXCEEDED
            | kind::PARAMETER_PROBLEM
    )
}

/// True for the query types a host may send an ICMP error about (RFC 1122
/// 3.2.2: never about an error message; like Linux, not about unknown types
/// either, which may be errors we do not know).
pub fn is_query_type(t: u8) -> bool {
    matches!(t, 0 | 8 | 13..=18)
}

fn join(a: u16, b: u16) -> [u8; 4] {
    let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
    [a[0], a[1], b[0], b[1]]
}

#[cfg(test)]
mod tests;
