//! Input: a TCP segment from the IP layer to its connection, its
//! TIME-WAIT record, or its listener (or a reset).

use std::net::SocketAddrV4;
use std::time::Instant;

use ip::Ipv4Repr;
use tcp::{Input, SegmentError, TcpRepr, TimeWaitInput};

use super::output::emit_segment;
use crate::counters::DropReason;
use crate::device::FrameSink;
use crate::iface::Interface;

impl Interface {
    /// Handles a TCP segment for us.
    pub(in crate::iface) fn process_tcp<S: FrameSink + ?Sized>(
        &mut self,
        now: Instant,
        repr: &Ipv4Repr,
        data: &[u8],
        to_broadcast: bool,
        tx: &mut S,
    ) {
        // RFC 1122 4.2.3.10: TCP is unicast only.
        if to_broadcast {
            return self.counters.drop(DropReason::TcpToBroadcast);
        }
        let parsed = if self.rx_checksum_trusted {
            TcpRepr::parse_unverified(data)
        } else {
            TcpRepr::parse(data, repr.src, repr.dst)
        };
        let (seg, payload) = match parsed {
            Ok(x) => x,
            Err(e) => {
                return self.counters.drop(match e {
                    SegmentError::Truncated => DropReason::TcpTruncated,
                    SegmentError::BadDataOffset => DropReason::TcpBadOffset,
                    SegmentError::BadOption => DropReason::TcpBadOption,
                    SegmentError::BadChecksum => DropReason::TcpBadChecksum,
                });
            }
        };
        self.counters.tcp_segments_in += 1;
        let local = SocketAddrV4::new(repr.dst, seg.dst_port);
        let remote = SocketAddrV4::new(repr.src, seg.src_port);
        if let Some(&h) = self.sockets.tcp.by_tuple.get(&(local, remote)) {
            let pressure = self.mem.state();
            let input = self.sockets.tcp.socks.get_mut(h).map(|s| {
                s.conn.set_memory_pressure(pressure);
                s.conn.handle_segment(now, &seg, payload)
            });
            match input {
                Some(Input::Done) => {
                    // Transmission (ACKs, data the ACK released) waits for
                    // the end of the receive batch: one ACK then covers every
                    // segment of this connection in the batch, which halves
                    // or better the frames (and device writes) per byte. The
                    // application hears of the change at once, so its reply
                    // can share those frames.
                    self.tcp_recharge(h);
                    self.tcp_after_change(Some(now), h);
                    self.tcp_touch(h);
                    return;
                }
                Some(Input::Reincarnate) => {
                    // The TIME-WAIT incarnation yields to the new SYN.
                    self.sockets.tcp.unlink(h);
                    self.tcp_release(h);
                }
                None => {}
            }
        } else if let Some((tw, _)) = self.sockets.tcp.time_wait.get_mut(&(local, remote)) {
            match tw.handle_segment(now, &seg, payload.len()) {
                TimeWaitInput::Drop => {
                    if seg.flags.rst() {
                        self.counters.drop(DropReason::TcpTimeWaitRst);
                    }
                    return;
                }
                TimeWaitInput::Ack(ack) => {
                    let tos = tw.tos();
                    emit_segment(
                        &mut self.ip,
                        &mut self.counters,
                        now,
                        repr.dst,
                        repr.src,
                        &ack,
                        &[],
                        &[],
                        (tos, None),
                        None,
                        tx,
                    );
                    return;
                }
                TimeWaitInput::Reincarnate => self.tcp_forget_time_wait(local, remote),
            }
        }
        if let Some(lh) = self.sockets.tcp.listener_for(local, remote) {
            return self.tcp_listen_input(now, lh, local, remote, &seg, payload, tx);
        }
        // RFC 9293 3.10.7.1: "If the state is CLOSED (i.e., TCB does not
        // exist), then ... a reset is sent in response to any incoming
        // segment except another reset."
        self.counters.drop(DropReason::TcpNoSocket);
        self.tcp_reset_for(now, local, remote, &seg, payload.len(), tx);
    }
}
