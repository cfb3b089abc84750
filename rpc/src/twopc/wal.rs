//! Stable logs: an append-only file and an in-memory log that can crash.
//!
//! Both store records in the same format:
//!
//! ```text
//! +--------------+--------------+----------------------------+
//! | len: u32 LE  | crc32: u32 LE| postcard(LogRecord), len B |
//! +--------------+--------------+----------------------------+
//! ```
//!
//! Replay reads records from the start. Only a torn *final* record -- one a
//! crash cut short while it was written, with no valid record after it --
//! is ignored (and cut off when the log is opened). A bad record followed
//! by a valid one is corruption in the middle of the log (a flipped bit,
//! a bad sector): replay then fails with an error naming the byte offset,
//! and the file is left untouched, because truncating there would silently
//! drop every later record, COMMITs included.

use super::LogRecord;
use crate::message::from_bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest record accepted on replay (guards against a garbage length).
const MAX_RECORD: usize = 64 << 20;

/// A durable, append-only log of [`LogRecord`]s.
pub trait Wal {
    /// Appends a record (not yet durable).
    fn append(&mut self, rec: &LogRecord) -> io::Result<()>;
    /// Makes every appended record durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
    /// Reads back every durable record, in order, ignoring a torn tail.
    fn replay(&mut self) -> io::Result<Vec<LogRecord>>;
}

impl<W: Wal + ?Sized> Wal for Box<W> {
    fn append(&mut self, rec: &LogRecord) -> io::Result<()> {
        (**self).append(rec)
    }
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
    fn replay(&mut self) -> io::Result<Vec<LogRecord>> {
        (**self).replay()
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as in zlib and Ethernet).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn encode_record(out: &mut Vec<u8>, rec: &LogRecord) -> io::Result<()> {
    let payload =
        postcard::to_allocvec(rec).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "log record too large"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The record at `pos`, if a whole valid one starts there, and its size.
fn record_at(bytes: &[u8], pos: usize) -> Option<(LogRecord, usize)> {
    let header = bytes.get(pos..pos.checked_add(8)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(pos + 8..pos + 8 + len)?;
    if crc32(payload) != crc {
        return None;
    }
    let rec = from_bytes::<LogRecord>(payload).ok()?;
    Some((rec, 8 + len))
}

/// A log whose middle is damaged: a record that does not verify, with a
/// valid record after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt {
    /// Byte offset of the first bad record.
    pub offset: usize,
    /// Byte offset of the next valid record found after it.
    pub next_valid: usize,
}

impl Corrupt {
    fn into_io(self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{what}: corrupt record at byte {} with valid records after it (from byte {}); \
                 the log is left untouched",
                self.offset, self.next_valid
            ),
        )
    }
}

/// Decodes a log: the records and the length of the valid prefix (what
/// follows it is a torn final record), or [`Corrupt`] when a bad record is
/// followed by a valid one. Looking for that valid record tries every later
/// offset (once, when a log is opened; a real record is found by its CRC).
fn decode_records(bytes: &[u8]) -> Result<(Vec<LogRecord>, usize), Corrupt> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Some((rec, size)) = record_at(bytes, pos) else {
            break;
        };
        records.push(rec);
        pos += size;
    }
    if pos < bytes.len() {
        if let Some(next_valid) = (pos + 1..bytes.len()).find(|&p| record_at(bytes, p).is_some()) {
            return Err(Corrupt {
                offset: pos,
                next_valid,
            });
        }
        log::warn!(
            "wal: ignoring a torn final record ({} bytes)",
            bytes.len() - pos
        );
    }
    Ok((records, pos))
}

/// An in-memory log for tests and simulation: records appended but not
/// synced are lost by [`crash`](Self::crash).
#[derive(Debug, Default, Clone)]
pub struct MemWal {
    durable: Vec<u8>,
    pending: Vec<u8>,
    syncs: u64,
}

impl MemWal {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates a crash: every unsynced byte is lost.
    pub fn crash(&mut self) {
        self.pending.clear();
    }

    /// Simulates a crash in the middle of writing: the first `keep` unsynced
    /// bytes reached the disk (a torn record that replay must ignore).
    pub fn crash_torn(&mut self, keep: usize) {
        let keep = keep.min(self.pending.len());
        self.durable.extend_from_slice(&self.pending[..keep]);
        self.pending.clear();
    }

    /// Durable records (what a restart would see; empty if the log is
    /// corrupt).
    pub fn durable_records(&self) -> Vec<LogRecord> {
        decode_records(&self.durable).map_or_else(|_| Vec::new(), |(r, _)| r)
    }

    /// Flips one bit of the durable log (tests of corruption).
    pub fn flip_bit(&mut self, byte: usize, bit: u8) {
        if let Some(b) = self.durable.get_mut(byte) {
            *b ^= 1 << (bit % 8);
        }
    }

    /// Bytes made durable.
    pub fn durable_len(&self) -> usize {
        self.durable.len()
    }

    /// Bytes appended and not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.pending.len()
    }

    /// Number of `sync` calls.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}

impl Wal for MemWal {
    fn append(&mut self, rec: &LogRecord) -> io::Result<()> {
        encode_record(&mut self.pending, rec)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.durable.append(&mut self.pending);
        self.syncs += 1;
        Ok(())
    }

    fn replay(&mut self) -> io::Result<Vec<LogRecord>> {
        let (records, valid) =
            decode_records(&self.durable).map_err(|c| c.into_io("in-memory log"))?;
        // Like FileWal::open: cut the torn tail so later appends follow valid records.
        self.durable.truncate(valid);
        Ok(records)
    }
}

/// An append-only log file. Appends are buffered in memory; [`sync`](Wal::sync)
/// writes them and calls `File::sync_data`.
#[derive(Debug)]
pub struct FileWal {
    file: File,
    path: PathBuf,
    pending: Vec<u8>,
    /// The file held no byte when it was opened.
    was_empty: bool,
}

impl FileWal {
    /// Opens (or creates) the log at `path`, locked for this process alone
    /// (`flock`: a second process, or a second open, fails with
    /// `WouldBlock`). A torn final record left by a crash is cut off, so new
    /// records follow the last valid one; a corrupt record with valid ones
    /// after it fails with `InvalidData`, naming the byte offset, and the
    /// file is not changed.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileWal> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        lock_exclusive(&file).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another process", path.display()),
                )
            } else {
                e
            }
        })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (_, valid) =
            decode_records(&bytes).map_err(|c| c.into_io(&path.display().to_string()))?;
        if valid < bytes.len() {
            file.set_len(valid as u64)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::Start(valid as u64))?;
        if !existed {
            // Make the new file's directory entry durable too.
            file.sync_all()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(FileWal {
            file,
            path,
            pending: Vec::new(),
            was_empty: bytes.is_empty(),
        })
    }

    /// Reads the records of the log at `path` without opening it for
    /// writing: no lock, nothing cut (for inspection while a node runs).
    /// A torn final record is skipped; corruption is an error, as for
    /// [`open`](Self::open).
    pub fn read_records(path: impl AsRef<Path>) -> io::Result<Vec<LogRecord>> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)?;
        decode_records(&bytes)
            .map(|(records, _)| records)
            .map_err(|c| c.into_io(&path.display().to_string()))
    }

    /// True when the file held nothing when it was opened (a new log): only
    /// then may a node seed it, never a log that holds bytes.
    pub fn was_empty(&self) -> bool {
        self.was_empty
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Wal for FileWal {
    fn append(&mut self, rec: &LogRecord) -> io::Result<()> {
        encode_record(&mut self.pending, rec)
    }

    fn sync(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.file.sync_data()
    }

    fn replay(&mut self) -> io::Result<Vec<LogRecord>> {
        let mut bytes = Vec::new();
        let mut file = File::open(&self.path)?;
        file.read_to_end(&mut bytes)?;
        decode_records(&bytes)
            .map(|(records, _)| records)
            .map_err(|c| c.into_io(&self.path.display().to_string()))
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: held until the file is closed.
fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns and keeps open.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
