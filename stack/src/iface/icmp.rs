//! ICMP on the interface: echo, error messages we send (RFC 1122 3.2.2 rules,
//! rate-limited), error messages we receive (matched to the socket whose
//! datagram caused them; path MTU updates), and echo sockets.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ip::icmp::{self, IcmpRepr, dest_unreachable, time_exceeded};
use ip::{Expired, IcmpError, IpProtocol, Ipv4Repr};

use super::{EchoReply, IcmpHandle, IcmpSocket, Interface};
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::error::SocketError;

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens, in millionths.
    micro_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate: rate as u64,
            burst: burst as u64,
            micro_tokens: burst as u64 * 1_000_000,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let refill = (elapsed.as_micros() as u64).saturating_mul(self.rate);
        self.micro_tokens = (self.micro_tokens.saturating_add(refill)).min(self.burst * 1_000_000);
        if self.micro_tokens >= 1_000_000 {
            self.micro_tokens -= 1_000_000;
            true
        } else {
            false
        }
    }
}

/// The error messages the interface generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    ProtocolUnreachable,
    PortUnreachable,
    ReassemblyTimeExceeded,
}

/// Destination unreachable code 10, "communication with destination host
/// is administratively prohibited" (RFC 1122 3.2.2.1): a hard error that
/// TCP reports as host unreachable.
const HOST_PROHIBITED: u8 = 10;

/// RFC 1812 4.3.2.3 / RFC 1122: quote as much of the offending datagram as
/// fits in a 576-byte ICMP error datagram.
const MAX_ERROR_DATAGRAM: usize = 576;

impl Interface {
    pub(super) fn process_icmp<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        ip_repr: &Ipv4Repr,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        let msg = match IcmpRepr::parse(data) {
            Ok(m) => m,
            Err(IcmpError::Truncated) => return self.counters.drop(DropReason::IcmpMalformed),
            Err(IcmpError::BadChecksum) => {
                return self.counters.drop(DropReason::IcmpBadChecksum);
            }
        };
        match msg {
            IcmpRepr::EchoRequest { ident, seq, data } => {
                // RFC 1122 3.2.2.6: an echo request to a broadcast address
                // MAY be silently discarded; Linux does so by default.
                if to_broadcast {
                    return self.counters.drop(DropReason::IcmpBroadcastEcho);
                }
                // RFC 792: "the source and destination addresses are simply
                // reversed, the type code changed to 0, and the checksum
                // recomputed." Identifier, sequence and data are echoed. A
                // reply larger than the MTU is fragmented like any datagram.
                // From the address the request was for (ours, or a
                // loopback address), as Linux answers.
                let reply = IcmpRepr::EchoReply { ident, seq, data };
                let mut out =
                    Ipv4Repr::new(ip_repr.dst, ip_repr.src, IpProtocol::ICMP, self.ip.ttl, 0);
                out.tos = ip_repr.tos;
                if self
                    .ip
                    .send_ipv4(
                        &mut self.counters,
                        now,
                        out,
                        reply.buffer_len(),
                        |b| reply.emit(b),
                        tx,
                    )
                    .is_ok()
                {
                    self.counters.icmp_echo_replies_sent += 1;
                }
            }
            IcmpRepr::EchoReply { ident, seq, data } => {
                let Some(&handle) = self.sockets.icmp_by_ident.get(&ident) else {
                    return self.counters.drop(DropReason::IcmpNoSocket);
                };
                let Some(socket) = self.sockets.icmp_sockets.get_mut(handle) else {
                    return self.counters.drop(DropReason::IcmpNoSocket);
                };
                let reply = EchoReply {
                    from: ip_repr.src,
                    ident,
                    seq,
                    ttl: ip_repr.ttl,
                    data: data.to_vec(),
                    received_at: now,
                };
                if socket.push(reply) {
                    self.events.push(super::Event::Icmp(handle));
                } else {
                    self.counters.drop(DropReason::IcmpSocketFull);
                }
            }
            IcmpRepr::DestUnreachable {
                code,
                next_hop_mtu,
                original,
            } => self.icmp_error_received(now, Received::Unreachable(code, next_hop_mtu), original),
            IcmpRepr::TimeExceeded { original, .. } => {
                self.icmp_error_received(now, Received::TimeExceeded, original)
            }
            IcmpRepr::ParameterProblem { original, .. } => {
                self.icmp_error_received(now, Received::ParameterProblem, original)
            }
            IcmpRepr::Other { .. } => self.counters.drop(DropReason::IcmpUnsupported),
        }
    }

    /// Address resolution of the next hop of `packet` (an IPv4 datagram we
    /// built) failed and the packet was dropped: tell its socket, as if an
    /// ICMP Destination Unreachable, host unreachable (code 1), quoting it
    /// had arrived. Linux does the same: `neigh_invalidate` hands each queued
    /// packet to `arp_error_report`, whose `dst_link_failure` sends such an
    /// ICMP message to ourselves. So a TCP connect fails with EHOSTUNREACH
    /// when ARP gives up (about 3 s), and a connected UDP socket gets a
    /// pending EHOSTUNREACH.
    pub(super) fn link_failure(&mut self, now: Instant, packet: &[u8]) {
        let Some((orig, _)) = Ipv4Repr::parse_quoted(packet) else {
            return;
        };
        // A later fragment quotes no transport header (RFC 1122 3.2.2: no
        // ICMP error for a non-initial fragment either).
        if orig.frag_offset != 0 {
            return;
        }
        self.counters.arp_failures_reported += 1;
        self.icmp_error_received(now, Received::LinkFailure, packet);
    }

    /// Acts on an ICMP error about a datagram we sent.
    fn icmp_error_received(&mut self, now: Instant, what: Received, original: &[u8]) {
        let Some((orig, quoted)) = Ipv4Repr::parse_quoted(original) else {
            return self.counters.drop(DropReason::IcmpMalformed);
        };
        // Only errors about our own datagrams mean anything to us (ours
        // includes the loopback addresses: errors about local traffic).
        if !self.ip.is_local(orig.src) {
            return self.counters.drop(DropReason::IcmpErrorUnmatched);
        }
        if !matches!(what, Received::LinkFailure) {
            self.counters.icmp_errors_received += 1;
        }
        // RFC 5927 4.1/5.2: an error about TCP is believed only if it
        // quotes a segment of a connection we have, at a sequence number in
        // flight (SND.UNA <= SEG.SEQ < SND.NXT): a blind attacker cannot
        // then shrink a connection's MTU or abort it by guessing ports.
        let tcp_conn = if orig.protocol == IpProtocol::TCP {
            match self.tcp_quote_in_flight(&orig, quoted) {
                Some(h) => Some(h),
                None => {
                    return self.counters.drop(match what {
                        Received::Unreachable(dest_unreachable::FRAG_NEEDED, _) => {
                            DropReason::IcmpFragNeededStale
                        }
                        _ => DropReason::IcmpErrorUnmatched,
                    });
                }
            }
        } else {
            None
        };
        if let Received::Unreachable(dest_unreachable::FRAG_NEEDED, mtu) = what {
            // RFC 1191: lower the path MTU estimate for the destination.
            if let Some(new) =
                self.ip
                    .pmtu
                    .update(now, orig.dst, mtu, orig.total_len(), self.ip.mtu)
            {
                log::debug!("path MTU to {} is now {new}", orig.dst);
            }
        }
        if let Some(h) = tcp_conn {
            match what {
                Received::Unreachable(dest_unreachable::FRAG_NEEDED, _) => {
                    let mtu = self.ip.path_mtu(now, orig.dst);
                    self.tcp_path_mtu_reduced(now, h, mtu);
                }
                Received::Unreachable(code, _) => self.tcp_icmp_unreachable(h, code),
                // RFC 1122 4.2.3.9 makes a host unreachable from the network
                // a soft error, and the TCP layer follows it. A local link
                // failure is definitive (every ARP request went unanswered),
                // and Linux fails a connecting socket on it with
                // EHOSTUNREACH: report it with the hard code that maps to the
                // same error, 10 (host administratively prohibited; Linux's
                // icmp_err_convert also gives EHOSTUNREACH). Like code 1 it
                // is only a soft error once the connection is established.
                Received::LinkFailure => self.tcp_icmp_unreachable(h, HOST_PROHIBITED),
                // Soft errors (RFC 1122 4.2.3.9): nothing to do.
                Received::TimeExceeded | Received::ParameterProblem => {}
            }
            return;
        }
        let error = match what {
            Received::Unreachable(code, _) => match code {
                dest_unreachable::PORT => Some(SocketError::ConnectionRefused),
                dest_unreachable::PROTOCOL => Some(SocketError::ProtocolUnavailable),
                dest_unreachable::NET | 6 => Some(SocketError::NetUnreachable),
                dest_unreachable::FRAG_NEEDED => None,
                _ => Some(SocketError::HostUnreachable),
            },
            Received::LinkFailure => Some(SocketError::HostUnreachable),
            // Soft errors: Linux only reports them with IP_RECVERR.
            Received::TimeExceeded | Received::ParameterProblem => None,
        };
        if orig.protocol == IpProtocol::UDP && quoted.len() >= 4 {
            let sport = u16::from_be_bytes([quoted[0], quoted[1]]);
            let dport = u16::from_be_bytes([quoted[2], quoted[3]]);
            let local = SocketAddrV4::new(orig.src, sport);
            let remote = SocketAddrV4::new(orig.dst, dport);
            if !self.udp_error(local, remote, error) {
                self.counters.drop(DropReason::IcmpErrorUnmatched);
            }
        }
    }

    /// Sends an ICMP error about a datagram we received, if RFC 1122 allows
    /// it and the rate limit has a token.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_icmp_error<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        kind: ErrorKind,
        offending: &Ipv4Repr,
        header: Option<&[u8]>,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        // RFC 1122 3.2.2: "An ICMP error message MUST NOT be sent as the
        // result of receiving: an ICMP error message, or a datagram destined
        // to an IP broadcast or IP multicast address, or a non-initial
        // fragment, or a datagram whose source address does not define a
        // single host" (sources were checked on input).
        if to_broadcast || offending.dst.is_multicast() || offending.frag_offset != 0 {
            return;
        }
        if offending.protocol == IpProtocol::ICMP
            && !data.first().is_some_and(|&t| icmp::is_query_type(t))
        {
            return;
        }
        if !self.icmp_limiter.take(now) {
            return self.counters.drop(DropReason::IcmpErrorRateLimited);
        }
        // The quote: the offending header (re-emitted when the datagram was
        // reassembled and its first header is gone) and as much data as fits.
        let mut rebuilt = [0u8; Ipv4Repr::MIN_HEADER_LEN];
        let header = match header {
            Some(h) => h,
            None => {
                let mut r = *offending;
                r.payload_len = data.len();
                r.emit(&mut rebuilt);
                &rebuilt[..]
            }
        };
        let room =
            MAX_ERROR_DATAGRAM - Ipv4Repr::MIN_HEADER_LEN - IcmpRepr::HEADER_LEN - header.len();
        let mut quote = Vec::with_capacity(header.len() + room.min(data.len()));
        quote.extend_from_slice(header);
        quote.extend_from_slice(&data[..room.min(data.len())]);
        let msg = match kind {
            ErrorKind::ProtocolUnreachable => IcmpRepr::DestUnreachable {
                code: dest_unreachable::PROTOCOL,
                next_hop_mtu: 0,
                original: &quote,
            },
            ErrorKind::PortUnreachable => IcmpRepr::DestUnreachable {
                code: dest_unreachable::PORT,
                next_hop_mtu: 0,
                original: &quote,
            },
            ErrorKind::ReassemblyTimeExceeded => IcmpRepr::TimeExceeded {
                code: time_exceeded::REASSEMBLY,
                original: &quote,
            },
        };
        let repr = Ipv4Repr::new(
            self.ip.source_for(offending.src),
            offending.src,
            IpProtocol::ICMP,
            self.ip.ttl,
            0,
        );
        if self
            .ip
            .send_ipv4(
                &mut self.counters,
                now,
                repr,
                msg.buffer_len(),
                |b| msg.emit(b),
                tx,
            )
            .is_ok()
        {
            self.counters.icmp_errors_sent += 1;
        }
    }

    /// A partial datagram timed out: RFC 792/1122 ask for Time Exceeded
    /// (code 1) when its first fragment had arrived.
    pub(super) fn reassembly_timed_out<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        expired: Expired,
        tx: &mut S,
    ) {
        let Some(first) = expired.first_fragment else {
            return;
        };
        if expired.dst != self.ip.addr() {
            return;
        }
        let Some((repr, data)) = Ipv4Repr::parse_quoted(&first) else {
            return;
        };
        let header = &first[..repr.header_len];
        self.send_icmp_error(
            now,
            ErrorKind::ReassemblyTimeExceeded,
            &repr,
            Some(header),
            data,
            false,
            tx,
        );
    }

    /// Opens an ICMP echo socket with identifier `ident`, or a random free
    /// one. Replies carrying that identifier are queued on it.
    pub fn icmp_open(&mut self, ident: Option<u16>) -> Result<IcmpHandle, SocketError> {
        let ident = match ident {
            Some(id) if self.sockets.icmp_by_ident.contains_key(&id) => {
                return Err(SocketError::AddrInUse);
            }
            Some(id) => id,
            None => loop {
                if self.sockets.icmp_by_ident.len() >= u16::MAX as usize {
                    return Err(SocketError::AddrInUse);
                }
                let id = rand::Rng::next_u32(&mut self.rng) as u16;
                if !self.sockets.icmp_by_ident.contains_key(&id) {
                    break id;
                }
            },
        };
        let handle = self.sockets.icmp_sockets.insert(IcmpSocket::new(ident));
        self.sockets.icmp_by_ident.insert(ident, handle);
        Ok(handle)
    }

    /// Closes an ICMP socket.
    pub fn icmp_close(&mut self, handle: IcmpHandle) {
        if let Some(s) = self.sockets.icmp_sockets.remove(handle) {
            self.sockets.icmp_by_ident.remove(&s.ident());
        }
    }

    /// True when the echo socket has a reply queued.
    pub fn icmp_readable(&self, handle: IcmpHandle) -> bool {
        self.sockets
            .icmp_sockets
            .get(handle)
            .is_some_and(|s| s.can_recv())
    }

    /// The socket behind `handle`.
    pub fn icmp_socket(&mut self, handle: IcmpHandle) -> Option<&mut IcmpSocket> {
        self.sockets.icmp_sockets.get_mut(handle)
    }

    /// Sends an echo request from the socket to `dst`.
    pub fn icmp_send_echo<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        handle: IcmpHandle,
        dst: Ipv4Addr,
        seq: u16,
        data: &[u8],
        tx: &mut S,
    ) -> Result<(), SocketError> {
        let ident = self
            .sockets
            .icmp_sockets
            .get(handle)
            .ok_or(SocketError::BadHandle)?
            .ident();
        let msg = IcmpRepr::EchoRequest { ident, seq, data };
        let repr = Ipv4Repr::new(
            self.ip.source_for(dst),
            dst,
            IpProtocol::ICMP,
            self.ip.ttl,
            0,
        );
        self.ip
            .send_ipv4(
                &mut self.counters,
                now,
                repr,
                msg.buffer_len(),
                |b| msg.emit(b),
                tx,
            )
            .map_err(SocketError::from)
    }
}

/// An ICMP error message as received.
#[derive(Clone, Copy, Debug)]
enum Received {
    /// Destination unreachable, with code and next-hop MTU.
    Unreachable(u8, u16),
    TimeExceeded,
    ParameterProblem,
    /// Not received: resolution of the next hop failed (see
    /// [`Interface::link_failure`]), reported like host unreachable.
    LinkFailure,
}

#[cfg(test)]
mod tests;
