//! Packet capture in the classic libpcap format (Ethernet link type, or raw
//! IP for a device on an IP link), as Wireshark and tshark read it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{ChecksumCaps, Device, FrameSink, Medium};

/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The file format a [`PcapWriter`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap: microsecond timestamps, no direction.
    Pcap,
    /// pcapng: a section header, one interface description block
    /// (nanosecond timestamps, `if_tsresol` = 9), enhanced packet blocks
    /// with the direction (`epb_flags`) and optional comments.
    Pcapng,
}

impl CaptureFormat {
    /// pcapng for a path ending in `.pcapng`, classic pcap otherwise.
    pub fn for_path(path: &Path) -> CaptureFormat {
        if path.extension().is_some_and(|e| e == "pcapng") {
            CaptureFormat::Pcapng
        } else {
            CaptureFormat::Pcap
        }
    }
}

/// Which way a recorded frame went (pcapng `epb_flags` bits 0-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Not said.
    Unknown,
    /// Received from the device.
    Inbound,
    /// Handed to the device.
    Outbound,
}
/// LINKTYPE_RAW: each record is a bare IPv4 or IPv6 packet.
pub const LINKTYPE_RAW: u32 = 101;

/// The pcap link type for frames of `medium`.
pub fn link_type(medium: Medium) -> u32 {
    match medium {
        Medium::Ethernet => LINKTYPE_ETHERNET,
        Medium::Ip => LINKTYPE_RAW,
    }
}
/// Largest frame recorded whole.
const SNAPLEN: u32 = 262_144;
/// Longest a recorded frame stays in the capture's buffer: a process
/// killed without warning leaves a capture that is complete up to at most
/// this long before its end.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes frames to a classic pcap stream with microsecond timestamps.
///
/// Timestamps come from the `now` of each call, mapped to wall-clock time
/// through the pair (`Instant`, `SystemTime`) given at creation, so a
/// simulation with a virtual clock writes a capture with virtual times.
pub struct PcapWriter<W: Write> {
    out: W,
    format: CaptureFormat,
    base_instant: Instant,
    base_nanos: u64,
    frames: u64,
    /// One record, built whole and written with one call, so that the
    /// buffer is only ever written out at record boundaries.
    record: Vec<u8>,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates `path` and writes the file header; times are wall-clock.
    /// The path `-` is standard output (a live capture for `wireshark -k
    /// -i -`).
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_for(path, Medium::Ethernet)
    }

    /// [`create`](Self::create) for frames of `medium` (raw IP records,
    /// LINKTYPE_RAW, on an IP link); pcapng for a `.pcapng` path.
    pub fn create_for(path: &Path, medium: Medium) -> io::Result<Self> {
        let file = if path.as_os_str() == "-" {
            use std::os::fd::AsFd;
            File::from(io::stdout().as_fd().try_clone_to_owned()?)
        } else {
            File::create(path)?
        };
        PcapWriter::with_format(
            BufWriter::with_capacity(256 * 1024, file),
            Instant::now(),
            SystemTime::now(),
            CaptureFormat::for_path(path),
            link_type(medium),
        )
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes a classic pcap file header (Ethernet) to `out`.
    /// `base_instant` is shown as `base_time`.
    pub fn new(out: W, base_instant: Instant, base_time: SystemTime) -> io::Result<Self> {
        Self::with_format(
            out,
            base_instant,
            base_time,
            CaptureFormat::Pcap,
            LINKTYPE_ETHERNET,
        )
    }

    /// [`new`](Self::new) for frames of `medium`.
    pub fn with_medium(
        out: W,
        base_instant: Instant,
        base_time: SystemTime,
        medium: Medium,
    ) -> io::Result<Self> {
        Self::with_format(
            out,
            base_instant,
            base_time,
            CaptureFormat::Pcap,
            link_type(medium),
        )
    }

    /// Writes the header of a `format` capture of link type `linktype`
    /// (LINKTYPE_ETHERNET = 1, LINKTYPE_RAW = 101, ...) to `out`: the
    /// file header, or pcapng's section header and interface description.
    pub fn with_format(
        mut out: W,
        base_instant: Instant,
        base_time: SystemTime,
        format: CaptureFormat,
        linktype: u32,
    ) -> io::Result<Self> {
        let mut header = Vec::with_capacity(64);
        match format {
            CaptureFormat::Pcap => {
                header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
                header.extend_from_slice(&2u16.to_le_bytes());
                header.extend_from_slice(&4u16.to_le_bytes());
                // thiszone and sigfigs stay zero.
                header.extend_from_slice(&[0; 8]);
                header.extend_from_slice(&SNAPLEN.to_le_bytes());
                header.extend_from_slice(&linktype.to_le_bytes());
            }
            CaptureFormat::Pcapng => {
                // Section header block: byte-order magic, version 1.0,
                // section length unknown (-1), no options.
                let mut body = Vec::with_capacity(16);
                body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
                body.extend_from_slice(&1u16.to_le_bytes());
                body.extend_from_slice(&0u16.to_le_bytes());
                body.extend_from_slice(&(-1i64).to_le_bytes());
                push_block(&mut header, 0x0a0d_0d0a, &body);
                // Interface description block: link type, snap length,
                // if_tsresol = 9 (nanoseconds), end of options.
                let mut body = Vec::with_capacity(20);
                body.extend_from_slice(&(linktype as u16).to_le_bytes());
                body.extend_from_slice(&0u16.to_le_bytes());
                body.extend_from_slice(&SNAPLEN.to_le_bytes());
                push_option(&mut body, 9, &[9]);
                push_option(&mut body, 0, &[]);
                push_block(&mut header, 1, &body);
            }
        }
        out.write_all(&header)?;
        let base_nanos = base_time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(PcapWriter {
            out,
            format,
            base_instant,
            base_nanos,
            frames: 0,
            record: Vec::with_capacity(2048),
        })
    }

    /// The format written.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Records one frame seen at `now`.
    pub fn write_frame(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.write_frame_with(now, frame, Direction::Unknown, None)
    }

    /// Records one frame seen at `now`, with its direction and a comment
    /// (pcapng only: a classic pcap has room for neither).
    pub fn write_frame_with(
        &mut self,
        now: Instant,
        frame: &[u8],
        direction: Direction,
        comment: Option<&str>,
    ) -> io::Result<()> {
        let nanos = self.base_nanos
            + now
                .checked_duration_since(self.base_instant)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        let incl = frame.len().min(SNAPLEN as usize);
        let rec = &mut self.record;
        rec.clear();
        match self.format {
            CaptureFormat::Pcap => {
                let micros = nanos / 1000;
                rec.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
                rec.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
                rec.extend_from_slice(&(incl as u32).to_le_bytes());
                rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                rec.extend_from_slice(&frame[..incl]);
            }
            CaptureFormat::Pcapng => {
                let mut body = Vec::with_capacity(incl + 48);
                body.extend_from_slice(&0u32.to_le_bytes());
                body.extend_from_slice(&((nanos >> 32) as u32).to_le_bytes());
                body.extend_from_slice(&(nanos as u32).to_le_bytes());
                body.extend_from_slice(&(incl as u32).to_le_bytes());
                body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                body.extend_from_slice(&frame[..incl]);
                pad4(&mut body);
                let flags: u32 = match direction {
                    Direction::Unknown => 0,
                    Direction::Inbound => 1,
                    Direction::Outbound => 2,
                };
                if flags != 0 {
                    push_option(&mut body, 2, &flags.to_le_bytes());
                }
                if let Some(c) = comment {
                    let c = &c.as_bytes()[..c.len().min(u16::MAX as usize - 4)];
                    push_option(&mut body, 1, c);
                }
                if flags != 0 || comment.is_some() {
                    push_option(&mut body, 0, &[]);
                }
                push_block(rec, 6, &body);
            }
        }
        self.out.write_all(rec)?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes buffered records.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The underlying writer, borrowed.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

/// A pcapng option: code, length, value padded to 32 bits.
fn push_option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    pad4(body);
}

/// A pcapng block: type, total length, body, total length again.
fn push_block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let total = (12 + body.len()) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
}

/// A device wrapper that records every frame received and sent.
pub struct PcapDevice<D, W: Write = BufWriter<File>> {
    inner: D,
    pcap: PcapWriter<W>,
    failed: bool,
    /// Where a super segment's pieces are built for the capture.
    scratch: Vec<u8>,
    /// When the oldest frame not yet flushed was recorded.
    unflushed_since: Option<Instant>,
    /// The comment for the next frame recorded (fault injection).
    next_comment: Option<&'static str>,
    /// A received frame not written yet, so that the fault injector above
    /// can still say what it does with it ([`Device::annotate_received`]);
    /// written before anything else is recorded, at its own time.
    pending: Vec<u8>,
    pending_at: Option<Instant>,
    pending_comment: Option<&'static str>,
}

impl<D: Device, W: Write> PcapDevice<D, W> {
    /// Records the traffic of `inner` to `pcap`.
    pub fn new(inner: D, pcap: PcapWriter<W>) -> Self {
        PcapDevice {
            inner,
            pcap,
            failed: false,
            scratch: Vec::new(),
            unflushed_since: None,
            next_comment: None,
            pending: Vec::new(),
            pending_at: None,
            pending_comment: None,
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped device, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// The capture.
    pub fn pcap(&self) -> &PcapWriter<W> {
        &self.pcap
    }

    fn record(&mut self, now: Instant, frame: &[u8], direction: Direction) {
        if self.failed {
            return;
        }
        let comment = self.next_comment.take();
        if let Err(e) = self.pcap.write_frame_with(now, frame, direction, comment) {
            // A full disk must not stop the stack; say so once.
            log::error!("pcap: writing failed, capture stopped: {e}");
            self.failed = true;
            return;
        }
        self.unflushed_since.get_or_insert(now);
        self.flush_if_due(now);
    }

    /// Writes the received frame held for a comment, if any.
    fn write_pending(&mut self) {
        let Some(at) = self.pending_at.take() else {
            return;
        };
        let frame = std::mem::take(&mut self.pending);
        let outbound_comment = self.next_comment.take();
        self.next_comment = self.pending_comment.take();
        self.record(at, &frame, Direction::Inbound);
        self.next_comment = outbound_comment;
        self.pending = frame;
    }

    /// Flushes the capture when a frame has waited [`FLUSH_INTERVAL`].
    fn flush_if_due(&mut self, now: Instant) {
        if self
            .unflushed_since
            .is_some_and(|t| now >= t + FLUSH_INTERVAL)
        {
            self.unflushed_since = None;
            if let Err(e) = self.pcap.flush() {
                log::error!("pcap: writing failed, capture stopped: {e}");
                self.failed = true;
            }
        }
    }
}

impl<D: Device, W: Write> FrameSink for PcapDevice<D, W> {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.write_pending();
        self.inner.send(now, frame)?;
        self.record(now, frame, Direction::Outbound);
        Ok(())
    }

    /// The device gets the super segment; the capture gets the segments it
    /// stands for, as they cross the link (complete, with checksums), each
    /// marked with the comment announced for it (the fault injector held
    /// the super segment back, for instance).
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        self.write_pending();
        let comment = self.next_comment.take();
        self.inner.send_segmented(now, frame, mss)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let link_len = self.inner.medium().header_len();
        super::gso::split_tcp(frame, link_len, mss, &mut scratch, |piece| {
            self.next_comment = comment;
            self.record(now, piece, Direction::Outbound)
        });
        self.scratch = scratch;
        Ok(())
    }

    /// Loopback traffic the user asked to see, recorded as it was
    /// delivered (a super segment whole).
    fn capture_local(&mut self, now: Instant, frame: &[u8]) {
        self.write_pending();
        self.record(now, frame, Direction::Unknown);
    }
}

impl<D: Device, W: Write> Device for PcapDevice<D, W> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.write_pending();
        self.flush_if_due(now);
        let n = self.inner.recv(now, buf)?;
        if let Some(n) = n
            && !self.failed
        {
            // Held until the next call, for a fault comment.
            self.pending.clear();
            self.pending.extend_from_slice(&buf[..n]);
            // The capture shows the segment with the checksum it stands for;
            // the frame handed up keeps its partial checksum, as the device
            // reported it ([`checksum_caps`](Device::checksum_caps) is the
            // inner device's): the stack does not need it, and a fault
            // injector above completes it itself.
            super::checksum::complete_received(&self.inner, &mut self.pending);
            self.pending_at = Some(now);
            self.unflushed_since.get_or_insert(now);
        }
        Ok(n)
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    /// The inner device's deadline, or the time the oldest unflushed
    /// frame is due to be written out, whichever is first.
    fn poll_at(&self) -> Option<Instant> {
        let flush = self.unflushed_since.map(|t| t + FLUSH_INTERVAL);
        [self.inner.poll_at(), flush].into_iter().flatten().min()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }

    fn checksum_caps(&self) -> ChecksumCaps {
        self.inner.checksum_caps()
    }

    fn annotate_next(&mut self, comment: &'static str) {
        self.next_comment = Some(comment);
    }

    fn annotate_received(&mut self, comment: &'static str) {
        if self.pending_at.is_some() {
            self.pending_comment = Some(comment);
        }
    }

    fn record_unsent(&mut self, now: Instant, frame: &[u8], comment: &'static str) {
        self.write_pending();
        self.next_comment = Some(comment);
        self.record(now, frame, Direction::Outbound);
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending();
        self.inner.flush()?;
        self.unflushed_since = None;
        self.pcap.flush()
    }
}

impl<D, W: Write> Drop for PcapDevice<D, W> {
    fn drop(&mut self) {
        if let Some(at) = self.pending_at.take() {
            let comment = self.pending_comment.take();
            let _ = self
                .pcap
                .write_frame_with(at, &self.pending, Direction::Inbound, comment);
        }
        let _ = self.pcap.flush();
    }
}

#[cfg(test)]
mod tests;
