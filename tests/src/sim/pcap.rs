//! Captures of simulated links, in classic pcap format with virtual times.
//!
//! Timestamps are the simulation's virtual clock mapped onto a fixed date
//! (every simulation starts [`PCAP_EPOCH`] after the Unix epoch), so the same seed writes
//! a byte-identical file and Wireshark's time column reads as time since the
//! start of the test.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use stack::device::PcapWriter;

/// The time since the Unix epoch a capture shows for the start of a
/// simulation (2023-11-14 22:13:20 UTC).
pub const PCAP_EPOCH: Duration = Duration::from_secs(1_700_000_000);

/// The environment variable naming a directory in which every link of every
/// simulation is captured (one file per link, `<test name>-link<N>.pcap`).
pub const PCAP_DIR_ENV: &str = "SIM_PCAP_DIR";

/// Where on a link frames are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CapturePoint {
    /// When a frame is handed to the receiving host, as the host sees it:
    /// lost frames are absent, duplicates appear twice, corrupted frames are
    /// shown corrupted, times include queueing and latency. On a switch each
    /// delivery is recorded, so a broadcast appears once per receiver.
    #[default]
    Delivery,
    /// When a host sends a frame into the link, before any impairment: every
    /// frame the hosts emitted, once, at its send time.
    Send,
}

/// One open capture.
pub(crate) struct Capture {
    writer: PcapWriter<BufWriter<File>>,
    pub point: CapturePoint,
    path: PathBuf,
    failed: bool,
}

impl Capture {
    /// Creates `path`; `start` is the simulation's first instant. Frames
    /// are of `medium` (raw-IP records on an IP link).
    pub fn create(
        path: &Path,
        start: Instant,
        point: CapturePoint,
        medium: stack::Medium,
    ) -> io::Result<Capture> {
        let file = File::create(path)?;
        let writer = PcapWriter::with_medium(
            BufWriter::with_capacity(64 * 1024, file),
            start,
            UNIX_EPOCH + PCAP_EPOCH,
            medium,
        )?;
        Ok(Capture {
            writer,
            point,
            path: path.to_path_buf(),
            failed: false,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one frame; a write error stops this capture (logged once)
    /// rather than the simulation.
    pub fn record(&mut self, now: Instant, frame: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(e) = self.writer.write_frame(now, frame) {
            log::error!("sim: capture {} failed, stopped: {e}", self.path.display());
            self.failed = true;
        }
    }

    /// Writes buffered records out.
    pub fn flush(&mut self) {
        if !self.failed
            && let Err(e) = self.writer.flush()
        {
            log::error!("sim: capture {} failed, stopped: {e}", self.path.display());
            self.failed = true;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The file `SIM_PCAP_DIR` asks for on link number `link`, if it is set: the
/// directory is created, and the file is named after the current test (the
/// test harness names each test's thread after the test).
pub(crate) fn env_capture_path(link: usize) -> Option<PathBuf> {
    let dir = std::env::var_os(PCAP_DIR_ENV)?;
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{PCAP_DIR_ENV}={}: cannot create it: {e}", dir.display());
    }
    let thread = std::thread::current();
    let test: String = thread
        .name()
        .unwrap_or("sim")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join(format!("{test}-link{link}.pcap")))
}
