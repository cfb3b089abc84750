//! The TCP segment (RFC 9293 section 3.1) and its options: MSS (RFC 9293
//! 3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and SACK
//! blocks (RFC 2018).
//!
//! Parsing is hand-written rather than through etherparse's option iterator:
//! RFC 9293 requires unknown options to be skipped by their length field, and
//! a malformed length to drop the segment, and both are simplest to get
//! exactly right (and fast) with a direct loop.

use std::fmt;
use std::net::Ipv4Addr;

use ip::checksum;

use crate::SeqNum;

/// Why a segment was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SegmentError {
    /// Shorter than the 20-byte header or than its data offset.
    Truncated,
    /// Data offset below 5 words.
    BadDataOffset,
    /// An option's length runs past the header or is below 2.
    BadOption,
    /// The checksum does not verify.
    BadChecksum,
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SegmentError::Truncated => "TCP segment truncated",
            SegmentError::BadDataOffset => "TCP data offset below 5",
            SegmentError::BadOption => "TCP option length malformed",
            SegmentError::BadChecksum => "TCP checksum mismatch",
        })
    }
}

impl std::error::Error for SegmentError {}

/// Control bits.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push function.
    pub const PSH: u8 = 0x08;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// URG: the urgent pointer is significant.
    pub const URG: u8 = 0x20;

    /// True when every bit of `bits` is set.
    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// FIN set.
    #[inline]
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    /// SYN set.
    #[inline]
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    /// RST set.
    #[inline]
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    /// ACK set.
    #[inline]
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// PSH set.
    #[inline]
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, "S"),
            (Self::FIN, "F"),
            (Self::RST, "R"),
            (Self::PSH, "P"),
            (Self::ACK, "."),
            (Self::URG, "U"),
        ];
        for (bit, name) in names {
            if self.0 & bit != 0 {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// At most 4 SACK blocks fit in the 40 bytes of option space (3 with
/// timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The options of a segment that this stack understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift count (SYN only), RFC 7323 section 2.
    pub window_scale: Option<u8>,
    /// SACK permitted (SYN only), RFC 2018 section 2.
    pub sack_permitted: bool,
    /// Timestamps (TSval, TSecr), RFC 7323 section 3.
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks as (left edge, right edge), RFC 2018 section 3.
    pub sack_blocks: [(SeqNum, SeqNum); MAX_SACK_BLOCKS],
    /// Number of valid entries in `sack_blocks`.
    pub sack_count: u8,
}

impl TcpOptions {
    /// The SACK blocks present.
    pub fn sack(&self) -> &[(SeqNum, SeqNum)] {
        &self.sack_blocks[..self.sack_count as usize]
    }

    /// Adds a SACK block (ignored beyond [`MAX_SACK_BLOCKS`]).
    pub fn push_sack(&mut self, left: SeqNum, right: SeqNum) {
        if (self.sack_count as usize) < MAX_SACK_BLOCKS {
            self.sack_blocks[self.sack_count as usize] = (left, right);
            self.sack_count += 1;
        }
    }

    /// Bytes these options occupy on the wire, padded to a multiple of 4.
    pub fn wire_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.sack_permitted && self.timestamps.is_some() {
            n += 12; // SACK-permitted(2) + timestamps(10)
        } else {
            if self.sack_permitted {
                n += 4; // NOP NOP SACK-permitted
            }
            if self.timestamps.is_some() {
                n += 12; // NOP NOP timestamps
            }
        }
        if self.window_scale.is_some() {
            n += 4; // NOP window-scale
        }
        if self.sack_count > 0 {
            n += 4 + 8 * self.sack_count as usize; // NOP NOP SACK
        }
        n
    }

    /// Writes the options (the layout Linux uses) into `buf`, which must be
    /// at least [`wire_len`](Self::wire_len) long.
    fn emit(&self, buf: &mut [u8]) {
        let mut i = 0;
        let mut put = |bytes: &[u8]| {
            buf[i..i + bytes.len()].copy_from_slice(bytes);
            i += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[2, 4, m[0], m[1]]);
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some((val, ecr))) => {
                put(&[4, 2, 8, 10]);
                put(&val.to_be_bytes());
                put(&ecr.to_be_bytes());
            }
            (sack, ts) => {
                if sack {
                    put(&[1, 1, 4, 2]);
                }
                if let Some((val, ecr)) = ts {
                    put(&[1, 1, 8, 10]);
                    put(&val.to_be_bytes());
                    put(&ecr.to_be_bytes());
                }
            }
        }
        if let Some(ws) = self.window_scale {
            put(&[1, 3, 3, ws]);
        }
        if self.sack_count > 0 {
            put(&[1, 1, 5, 2 + 8 * self.sack_count]);
            for (l, r) in self.sack() {
                put(&l.0.to_be_bytes());
                put(&r.0.to_be_bytes());
            }
        }
    }

    /// Parses the option bytes of a header.
    fn parse(mut opts: &[u8]) -> Result<TcpOptions, SegmentError> {
        let mut out = TcpOptions::default();
        while let Some(&kind) = opts.first() {
            match kind {
                0 => break,             // End of option list.
                1 => opts = &opts[1..], // No-operation.
                _ => {
                    // RFC 9293 3.1: every other option has a length octet
                    // counting kind and length; a length below 2 or past the
                    // header is malformed.
                    let len = *opts.get(1).ok_or(SegmentError::BadOption)? as usize;
                    if len < 2 || len > opts.len() {
                        return Err(SegmentError::BadOption);
                    }
                    let body = &opts[2..len];
                    // A known option with the wrong length is ignored, as
                    // Linux does; unknown options are skipped (RFC 9293
                    // 3.1: "must be prepared to handle an illegal option
                    // length" / MUST ignore unknown options).
                    match (kind, body.len()) {
                        (2, 2) => out.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                        (3, 1) => out.window_scale = Some(body[0]),
                        (4, 0) => out.sack_permitted = true,
                        (5, n) if n > 0 && n % 8 == 0 => {
                            for b in body.chunks_exact(8) {
                                let l = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                                let r = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                                out.push_sack(SeqNum(l), SeqNum(r));
                            }
                        }
                        (8, 8) => {
                            let val = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                            let ecr = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                            out.timestamps = Some((val, ecr));
                        }
                        _ => {}
                    }
                    opts = &opts[len..];
                }
            }
        }
        Ok(out)
    }
}

/// A validated TCP segment header; the payload is carried alongside.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful when the ACK flag is set).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: Flags,
    /// Window field as sent (not scaled).
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
    /// The urgent pointer: with URG set, SEG.SEQ + this is the sequence
    /// number of the octet following the urgent data (RFC 9293 3.8.5,
    /// MUST-31). Meaningless (and sent as 0) without URG.
    pub urgent: u16,
}

impl TcpRepr {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 20;

    /// The data offset in bytes, checked against the segment's length.
    fn check_offset(buf: &[u8]) -> Result<usize, SegmentError> {
        if buf.len() < Self::HEADER_LEN {
            return Err(SegmentError::Truncated);
        }
        let offset = (buf[12] >> 4) as usize * 4;
        if offset < Self::HEADER_LEN {
            return Err(SegmentError::BadDataOffset);
        }
        if offset > buf.len() {
            return Err(SegmentError::Truncated);
        }
        Ok(offset)
    }

    /// Validates a segment (the whole IP payload) from `src` to `dst`,
    /// returning the header and the payload.
    pub fn parse(
        buf: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<(TcpRepr, &[u8]), SegmentError> {
        Self::check_offset(buf)?;
        let sum = checksum::add(checksum::pseudo_header(src, dst, 6, buf.len() as u16), buf);
        if checksum::fold(sum) != 0xffff {
            return Err(SegmentError::BadChecksum);
        }
        Self::parse_unverified(buf)
    }

    /// [`parse`](Self::parse) without verifying the checksum: for a segment
    /// whose checksum a device vouches for (the kernel's own segments,
    /// handed over a TAP device with a partial checksum). Every other check
    /// is made.
    pub fn parse_unverified(buf: &[u8]) -> Result<(TcpRepr, &[u8]), SegmentError> {
        let offset = Self::check_offset(buf)?;
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let repr = TcpRepr {
            src_port: u16::from_be_bytes([buf[0], buf[1]]),
            dst_port: u16::from_be_bytes([buf[2], buf[3]]),
            seq: SeqNum(word(4)),
            ack: SeqNum(word(8)),
            flags: Flags(buf[13] & 0x3f),
            window: u16::from_be_bytes([buf[14], buf[15]]),
            options: TcpOptions::parse(&buf[Self::HEADER_LEN..offset])?,
            urgent: u16::from_be_bytes([buf[18], buf[19]]),
        };
        Ok((repr, &buf[offset..]))
    }

    /// Header length including options.
    pub fn header_len(&self) -> usize {
        Self::HEADER_LEN + self.options.wire_len()
    }

    /// Sequence space the segment occupies with `payload_len` bytes of data
    /// (SYN and FIN count one each).
    pub fn seq_len(&self, payload_len: usize) -> usize {
        payload_len + self.flags.syn() as usize + self.flags.fin() as usize
    }

    /// Writes the header (checksum zero) into the start of `buf`. The caller
    /// writes the payload after [`header_len`](Self::header_len) bytes and
    /// then calls [`fill_checksum`].
    ///
    /// # Panics
    /// If `buf` is shorter than the header.
    pub fn emit_header(&self, buf: &mut [u8]) {
        let hlen = self.header_len();
        debug_assert!(hlen <= 60, "options overflow the header");
        let h = &mut buf[..hlen];
        h[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        h[4..8].copy_from_slice(&self.seq.0.to_be_bytes());
        h[8..12].copy_from_slice(&self.ack.0.to_be_bytes());
        h[12] = ((hlen / 4) as u8) << 4;
        h[13] = self.flags.0;
        h[14..16].copy_from_slice(&self.window.to_be_bytes());
        h[16..18].copy_from_slice(&[0, 0]);
        let urgent = if self.flags.has(Flags::URG) {
            self.urgent
        } else {
            0
        };
        h[18..20].copy_from_slice(&urgent.to_be_bytes());
        self.options.emit(&mut h[Self::HEADER_LEN..]);
    }
}

/// Computes and stores the checksum of a complete segment (header, then
/// payload) sent from `src` to `dst`.
pub fn fill_checksum(segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    segment[16] = 0;
    segment[17] = 0;
    let sum = checksum::add(
        checksum::pseudo_header(src, dst, 6, segment.len() as u16),
        segment,
    );
    let c = !checksum::fold(sum);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests;
