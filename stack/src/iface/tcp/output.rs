//! Emission: TCP segments and super segments over the IP layer, resets for
//! segments that belong to nothing, and the servicing of one connection
//! (transmit, then move it through its life cycle).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use ip::{IpProtocol, Ipv4Repr};
use tcp::TcpRepr;

use super::TcpHandle;
use crate::counters::Counters;
use crate::device::FrameSink;
use crate::iface::{Interface, IpLayer};

/// Sends one TCP segment from `src` over IP (DF set: TCP relies on path MTU
/// discovery). With `gso_mss`, the segment is a super segment the device
/// cuts into segments of that many payload bytes (see
/// [`crate::device::gso`]). Returns whether it was handed to the link.
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_segment<S: FrameSink + ?Sized>(
    ip: &mut IpLayer,
    counters: &mut Counters,
    now: Instant,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &TcpRepr,
    a: &[u8],
    b: &[u8],
    (tos, ttl): (u8, Option<u8>),
    gso_mss: Option<usize>,
    tx: &mut S,
) -> bool {
    let hlen = seg.header_len();
    let total = hlen + a.len() + b.len();
    // IP_TTL of the socket, else the stack's default.
    let ttl = ttl.unwrap_or(ip.ttl);
    let mut repr = Ipv4Repr::new(src, dst, IpProtocol::TCP, ttl, 0);
    repr.dont_fragment = true;
    // IP_TOS; the ECN bits are TCP's, not the application's (Linux clears
    // them from IP_TOS on stream sockets), and ustack does not use ECN.
    repr.tos = tos & !0b11;
    let fill = |buf: &mut [u8]| {
        seg.emit_header(buf);
        buf[hlen..hlen + a.len()].copy_from_slice(a);
        buf[hlen + a.len()..total].copy_from_slice(b);
        match gso_mss {
            None => tcp::fill_checksum(&mut buf[..total], src, dst),
            Some(_) => {
                crate::device::gso::fill_partial_checksum(&mut buf[..total], src, dst, total)
            }
        }
    };
    let result = match gso_mss {
        None => ip.send_ipv4(counters, now, repr, total, fill, tx),
        Some(mss) => ip.send_ipv4_segmented(counters, now, repr, total, mss, fill, tx),
    };
    if result.is_ok() {
        counters.tcp_segments_out += 1;
    }
    result.is_ok()
}

/// Largest super segment built for a device with segmentation offload: an
/// IPv4 packet of 64 KiB less room for the largest headers.
pub(super) const MAX_SUPER_SEGMENT: usize = 65_535 - 20 - 60;

impl Interface {
    /// Answers `seg` with a reset (RFC 9293 3.10.7.1), unless it is one.
    pub(super) fn tcp_reset_for<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
        payload_len: usize,
        tx: &mut S,
    ) {
        if let Some(rst) = tcp::reset_for(seg, payload_len) {
            self.counters.tcp_resets_sent += 1;
            emit_segment(
                &mut self.ip,
                &mut self.counters,
                now,
                *local.ip(),
                *remote.ip(),
                &rst,
                &[],
                &[],
                (0, None),
                None,
                tx,
            );
        }
    }

    /// Lets a connection transmit, moves it through its life cycle (SYN
    /// queue -> accept queue; orphan in TIME-WAIT -> compact record;
    /// closed -> removed), charges its memory and schedules its timer.
    pub(super) fn tcp_service<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        h: TcpHandle,
        tx: &mut S,
    ) {
        let pressure = self.mem.state();
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        let src = *sock.conn.local().ip();
        sock.conn.set_memory_pressure(pressure);
        let dst = *sock.conn.remote().ip();
        let mtu = self.ip.path_mtu(now, dst);
        let tos = (sock.conn.tos(), sock.conn.ttl());
        let ip = &mut self.ip;
        let counters = &mut self.counters;
        let burst = if ip.segmentation_offload {
            MAX_SUPER_SEGMENT
        } else {
            0
        };
        sock.conn
            .poll_transmit_burst(now, mtu, burst, |seg, a, b, mss| {
                let gso_mss = (a.len() + b.len() > mss).then_some(mss);
                emit_segment(ip, counters, now, src, dst, seg, a, b, tos, gso_mss, tx)
            });
        self.tcp_recharge(h);
        self.tcp_after_change(Some(now), h);
        let Some(sock) = self.sockets.tcp.socks.get_mut(h) else {
            return;
        };
        if sock.conn.is_closed() {
            if sock.embryonic_of.is_some() && sock.conn.error() == Some(tcp::TcpError::TimedOut) {
                self.counters.defenses.half_open_timed_out += 1;
            }
            self.sockets.tcp.unlink(h);
            let sock = self.sockets.tcp.socks.get(h).expect("present");
            if sock.embryonic_of.is_some() || sock.orphan {
                self.tcp_release(h);
            }
            return;
        }
        if sock.orphan && sock.conn.state() == tcp::State::TimeWait {
            return self.tcp_enter_time_wait(now, h);
        }
        self.tcp_schedule(now, h);
    }
}
