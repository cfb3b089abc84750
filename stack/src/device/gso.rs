//! Segmentation offload: a TCP segment larger than the MTU (a "super
//! segment") handed to a device together with the payload size of the
//! segments it stands for. A TAP device with offloads passes it to the
//! kernel whole (one system call for up to 45 segments); every other sink
//! cuts it here, in software, into the segments that go on the wire, exactly
//! as the kernel's GSO would: each piece repeats the IP and TCP headers with
//! its own length, identification, sequence number and checksums, and only
//! the last keeps FIN and PSH.
//!
//! A super segment's TCP checksum field holds only the pseudo-header sum
//! (over the full TCP length), as a device completing checksums expects;
//! [`split_tcp`] computes every piece's checksum itself.

use ip::checksum;

/// Offsets of the headers in a super segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeaders {
    /// Where the IPv4 header starts (the link header's length).
    pub ip: usize,
    /// Where the TCP header starts.
    pub tcp: usize,
    /// Where the payload starts.
    pub payload: usize,
}

impl TcpHeaders {
    /// Finds the headers of an IPv4/TCP packet starting `link_len` bytes
    /// into `frame`; `None` when it is not one or is truncated.
    pub fn find(frame: &[u8], link_len: usize) -> Option<TcpHeaders> {
        let ip = frame.get(link_len..)?;
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 6 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let tcp = ip.get(ihl..)?;
        if ihl < 20 || tcp.len() < 20 {
            return None;
        }
        let thl = usize::from(tcp[12] >> 4) * 4;
        if thl < 20 || tcp.len() < thl {
            return None;
        }
        Some(TcpHeaders {
            ip: link_len,
            tcp: link_len + ihl,
            payload: link_len + ihl + thl,
        })
    }
}

/// Writes the pseudo-header sum for a TCP segment of `tcp_len` bytes (header
/// and payload) into the checksum field of `segment` (which starts at the
/// TCP header): what a device that completes checksums expects.
pub fn fill_partial_checksum(
    segment: &mut [u8],
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    tcp_len: usize,
) {
    let sum = checksum::pseudo_header(src, dst, 6, tcp_len as u16);
    segment[16..18].copy_from_slice(&checksum::fold(sum).to_be_bytes());
}

/// Completes the TCP checksum of a super segment in `frame` (its field
/// holding the pseudo-header sum, as [`fill_partial_checksum`] left it),
/// as a link that carries super segments whole hands them to the receiver
/// (a veth, or the kernel reading a TAP device). Returns false (frame
/// unchanged) when it is not an IPv4/TCP packet.
pub fn complete_checksum(frame: &mut [u8], link_len: usize) -> bool {
    super::checksum::complete_tcp(frame, link_len)
}

/// Cuts the super segment in `frame` (an IPv4/TCP packet after `link_len`
/// bytes of link header, copied unchanged into each piece) into segments of
/// at most `mss` payload bytes, calling `emit` with each complete piece,
/// built in `scratch`. Returns the number of pieces; 0 (nothing emitted)
/// when `frame` is not an IPv4/TCP packet.
pub fn split_tcp(
    frame: &[u8],
    link_len: usize,
    mss: usize,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> usize {
    let Some(h) = TcpHeaders::find(frame, link_len) else {
        return 0;
    };
    let count = frame
        .len()
        .saturating_sub(h.payload)
        .div_ceil(mss.max(1))
        .max(1);
    for i in 0..count {
        if cut(frame, h, mss, i, 1, scratch, true) {
            emit(scratch);
        }
    }
    count
}

/// Builds in `out` the super segment that stands for pieces
/// `[first, first + count)` of the super segment in `frame` (found at `h`,
/// cut into pieces of `mss` payload bytes): its own IP total length,
/// identification (the first piece's, as GSO numbers them) and header
/// checksum, the sequence number of its first byte, FIN and PSH only if it
/// ends with the last piece, CWR only if it starts with the first (as
/// Linux's GSO leaves them), and in the TCP checksum field the
/// pseudo-header sum over its own length, as every super segment carries
/// (complete it with [`complete_checksum`] to send it as one segment).
/// Returns false (`out` left empty) when the range is empty or past the
/// payload.
pub fn sub_segment(
    frame: &[u8],
    h: TcpHeaders,
    mss: usize,
    first: usize,
    count: usize,
    out: &mut Vec<u8>,
) -> bool {
    cut(frame, h, mss, first, count, out, false)
}

/// [`sub_segment`], with the TCP checksum complete (`complete`: a piece
/// for the wire, as [`split_tcp`] makes) or left as the pseudo-header sum.
fn cut(
    frame: &[u8],
    h: TcpHeaders,
    mss: usize,
    first: usize,
    count: usize,
    out: &mut Vec<u8>,
    complete: bool,
) -> bool {
    out.clear();
    let mss = mss.max(1);
    let payload = frame.len().saturating_sub(h.payload);
    let start = first.saturating_mul(mss);
    if count == 0 || start >= payload.max(1) || frame.len() < h.payload {
        return false;
    }
    let end = start.saturating_add(count.saturating_mul(mss)).min(payload);
    let pieces = payload.div_ceil(mss).max(1);
    out.extend_from_slice(&frame[..h.payload]);
    out.extend_from_slice(&frame[h.payload + start..h.payload + end]);
    let ip_len = out.len() - h.ip;
    let tcp_len = out.len() - h.tcp;
    let addr = |o: usize| std::net::Ipv4Addr::new(out[o], out[o + 1], out[o + 2], out[o + 3]);
    let (src, dst) = (addr(h.ip + 12), addr(h.ip + 16));
    {
        let iph = &mut out[h.ip..h.tcp];
        let ident = u16::from_be_bytes([iph[4], iph[5]]).wrapping_add(first as u16);
        iph[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        iph[4..6].copy_from_slice(&ident.to_be_bytes());
        iph[10..12].fill(0);
        let c = checksum::checksum(iph);
        iph[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let tcp = &mut out[h.tcp..];
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]).wrapping_add(start as u32);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    if first + count < pieces {
        tcp[13] &= !(FIN | PSH);
    }
    if first > 0 {
        // Linux's GSO leaves CWR on the first segment only.
        tcp[13] &= !CWR;
    }
    if complete {
        tcp[16..18].fill(0);
        let sum = checksum::add(checksum::pseudo_header(src, dst, 6, tcp_len as u16), tcp);
        tcp[16..18].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
    } else {
        fill_partial_checksum(tcp, src, dst, tcp_len);
    }
    true
}

const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const CWR: u8 = 0x80;

#[cfg(test)]
mod tests;
