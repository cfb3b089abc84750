//! Packet capture in the classic libpcap format (Ethernet link type), as
//! Wireshark and tshark read it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{ChecksumCaps, Device, FrameSink};

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
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
    base_instant: Instant,
    base_micros: u64,
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
        let file = if path.as_os_str() == "-" {
            use std::os::fd::AsFd;
            File::from(io::stdout().as_fd().try_clone_to_owned()?)
        } else {
            File::create(path)?
        };
        PcapWriter::new(
            BufWriter::with_capacity(256 * 1024, file),
            Instant::now(),
            SystemTime::now(),
        )
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out`. `base_instant` is shown as `base_time`.
    pub fn new(mut out: W, base_instant: Instant, base_time: SystemTime) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        let base_micros = base_time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Ok(PcapWriter {
            out,
            base_instant,
            base_micros,
            frames: 0,
            record: Vec::with_capacity(2048),
        })
    }

    /// Records one frame seen at `now`.
    pub fn write_frame(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        let micros = self.base_micros
            + now
                .checked_duration_since(self.base_instant)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0);
        let incl = frame.len().min(SNAPLEN as usize);
        let rec = &mut self.record;
        rec.clear();
        rec.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(incl as u32).to_le_bytes());
        rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        rec.extend_from_slice(&frame[..incl]);
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

/// A device wrapper that records every frame received and sent.
pub struct PcapDevice<D, W: Write = BufWriter<File>> {
    inner: D,
    pcap: PcapWriter<W>,
    failed: bool,
    /// Where a super segment's pieces are built for the capture.
    scratch: Vec<u8>,
    /// When the oldest frame not yet flushed was recorded.
    unflushed_since: Option<Instant>,
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

    fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(e) = self.pcap.write_frame(now, frame) {
            // A full disk must not stop the stack; say so once.
            log::error!("pcap: writing failed, capture stopped: {e}");
            self.failed = true;
            return;
        }
        self.unflushed_since.get_or_insert(now);
        self.flush_if_due(now);
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
    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        self.inner.send(now, frame)?;
        self.record(now, frame);
        Ok(())
    }

    /// The device gets the super segment; the capture gets the segments it
    /// stands for, as they cross the link (complete, with checksums).
    fn send_segmented(&mut self, now: Instant, frame: &[u8], mss: usize) -> io::Result<()> {
        self.inner.send_segmented(now, frame, mss)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        super::gso::split_tcp(frame, 14, mss, &mut scratch, |piece| {
            self.record(now, piece)
        });
        self.scratch = scratch;
        Ok(())
    }

    /// Loopback traffic the user asked to see, recorded as it was
    /// delivered (a super segment whole).
    fn capture_local(&mut self, now: Instant, frame: &[u8]) {
        self.record(now, frame);
    }
}

impl<D: Device, W: Write> Device for PcapDevice<D, W> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.flush_if_due(now);
        let n = self.inner.recv(now, buf)?;
        if let Some(n) = n {
            // The capture shows the segment with the checksum it stands for
            // (the stack does not need it).
            super::checksum::complete_received(&self.inner, &mut buf[..n]);
            self.record(now, &buf[..n]);
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

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        self.unflushed_since = None;
        self.pcap.flush()
    }
}

impl<D, W: Write> Drop for PcapDevice<D, W> {
    fn drop(&mut self) {
        let _ = self.pcap.flush();
    }
}

#[cfg(test)]
mod tests;
