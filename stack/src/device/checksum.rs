//! Checksum offload in one place: what a device does with TCP checksums
//! ([`ChecksumCaps`], declared by [`Device::checksum_caps`]) and the one
//! routine that completes a partial checksum ([`complete_partial`]).
//!
//! A *partial* checksum is a transport checksum field that holds only the
//! pseudo-header sum, the rest being left to whoever puts the segment on a
//! wire: Linux's `CHECKSUM_PARTIAL`, virtio's `NEEDS_CSUM`, and every TCP
//! super segment ([`gso`](super::gso)). Completing it means summing from the
//! start of the transport header to the end of the frame (the field's
//! pseudo-header sum included) and storing the complement in the field.
//!
//! Who completes:
//!
//! - the TAP device, for a frame the kernel hands over with `NEEDS_CSUM`
//!   that is not a whole TCP segment ([`complete_partial`] at the kernel's
//!   offsets);
//! - a wrapper that shows or alters received frames (the pcap writer, so the
//!   capture shows real checksums; the fault injector, so a corrupted frame
//!   fails verification) when its inner device reports a partial one
//!   ([`complete_received`]);
//! - [`gso::complete_checksum`](super::gso::complete_checksum), for a super
//!   segment crossing a link whole.

use super::Device;
use super::gso::TcpHeaders;

/// What a device does with TCP checksums: the one declaration behind
/// [`Device::segmentation_offload`] and [`Device::rx_checksum_trusted`].
///
/// The default (all false) is a plain device: it sends frames as they are,
/// cuts super segments in software, and every frame it returns carries
/// complete checksums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumCaps {
    /// Transmit: [`send_segmented`](super::FrameSink::send_segmented) hands
    /// super segments, partial checksum and all, to hardware (or the
    /// kernel), which cuts them and completes every piece's checksum.
    pub segmentation_offload: bool,
    /// Receive: the frame the last [`recv`](Device::recv) returned is a TCP
    /// segment whose checksum field holds only the pseudo-header sum, and
    /// the device vouches for its content (it never crossed a wire). Unlike
    /// the transmit side this can change with every frame.
    pub rx_partial: bool,
}

/// Completes the partial checksum of the range starting `start` bytes into
/// `frame` and running to its end, whose checksum field is `offset` bytes
/// into that range (holding the pseudo-header sum). Returns false (frame
/// unchanged) when the field does not fit in the frame.
pub fn complete_partial(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let Some(field) = start.checked_add(offset) else {
        return false;
    };
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return false;
    }
    let c = ip::checksum::checksum(&frame[start..]);
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Completes the partial TCP checksum of the IPv4/TCP packet that starts
/// `link_len` bytes into `frame`. Returns false (frame unchanged) when it is
/// not one.
pub fn complete_tcp(frame: &mut [u8], link_len: usize) -> bool {
    match TcpHeaders::find(frame, link_len) {
        Some(h) => complete_partial(frame, h.tcp, 16),
        None => false,
    }
}

/// Completes the checksum of a frame (of the device's
/// [`medium`](super::FrameSink::medium)) just received from `device`, if the device reported it partial
/// ([`ChecksumCaps::rx_partial`]). For a wrapper that records or alters what
/// it receives: afterwards the frame verifies like one off a wire.
pub fn complete_received<D: Device + ?Sized>(device: &D, frame: &mut [u8]) {
    if device.checksum_caps().rx_partial {
        complete_tcp(frame, device.medium().header_len());
    }
}

#[cfg(test)]
mod tests;
