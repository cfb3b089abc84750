//! Stable logs: an append-only file and an in-memory log that can crash.
//!
//! A [`FileWal`] starts with an 8-byte header, `U2PCWAL` and the format
//! version ([`WAL_VERSION`](super::WAL_VERSION), 2). A file without it (a
//! version 1 log, written before transaction ids carried random bits) is
//! refused with an error saying so, and left as it is. After the header,
//! both logs store records in the same format:
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
//!
//! Compaction ([`Wal::rewrite`]) replaces the whole log with a checkpoint:
//! the new log is written to `<log>.compact`, synced, locked, and renamed
//! over the log, and the directory is synced. A crash at any step leaves
//! either the old log (a leftover `.compact` file is removed when the log
//! is next opened) or the new one.

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
    /// Bytes in the log, appended records not yet synced included (what
    /// decides when to compact).
    fn size(&self) -> u64;
    /// Atomically replaces the whole log (unsynced appends included) with
    /// `records`, durably: after a crash at any point, replay returns
    /// either the old records or exactly `records`.
    fn rewrite(&mut self, records: &[LogRecord]) -> io::Result<()>;
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
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn rewrite(&mut self, records: &[LogRecord]) -> io::Result<()> {
        (**self).rewrite(records)
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
    rewrites: u64,
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

    /// Number of compactions ([`Wal::rewrite`]).
    pub fn rewrites(&self) -> u64 {
        self.rewrites
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

    fn size(&self) -> u64 {
        (self.durable.len() + self.pending.len()) as u64
    }

    fn rewrite(&mut self, records: &[LogRecord]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for rec in records {
            encode_record(&mut bytes, rec)?;
        }
        self.durable = bytes;
        self.pending.clear();
        self.syncs += 1;
        self.rewrites += 1;
        Ok(())
    }
}

/// The first 7 bytes of a [`FileWal`]; the 8th is the version.
const MAGIC: &[u8; 7] = b"U2PCWAL";
const HEADER: usize = 8;

fn header() -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..7].copy_from_slice(MAGIC);
    h[7] = super::WAL_VERSION;
    h
}

/// Checks the header of a log file's bytes: `Ok(true)` for a new log (empty,
/// or a header cut short by a crash while the file was created: no record
/// can follow an unsynced header), `Ok(false)` for a version-2 log.
fn check_header(bytes: &[u8], path: &Path) -> io::Result<bool> {
    let h = header();
    if bytes.len() < HEADER && h.starts_with(bytes) {
        return Ok(true);
    }
    if !bytes.starts_with(MAGIC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a version-{} 2PC log (no U2PCWAL header): a log written by an \
                 older ustack (version 1) is not read by this one; the file is left \
                 untouched (move it away to start afresh)",
                path.display(),
                super::WAL_VERSION
            ),
        ));
    }
    if bytes[7] != super::WAL_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: 2PC log format version {} (this ustack reads version {})",
                path.display(),
                bytes[7],
                super::WAL_VERSION
            ),
        ));
    }
    Ok(false)
}

/// Decodes a log file's records after its header; corruption offsets are
/// file offsets.
fn decode_file(bytes: &[u8], path: &Path) -> io::Result<(Vec<LogRecord>, usize)> {
    if check_header(bytes, path)? {
        return Ok((Vec::new(), 0));
    }
    decode_records(&bytes[HEADER..])
        .map(|(records, valid)| (records, HEADER + valid))
        .map_err(|c| {
            Corrupt {
                offset: c.offset + HEADER,
                next_valid: c.next_valid + HEADER,
            }
            .into_io(&path.display().to_string())
        })
}

/// Where a compaction stops, to test a crash at each step.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Half the new file written.
    HalfWritten,
    /// The new file written, not synced.
    Written,
    /// The new file synced, not renamed.
    Synced,
    /// Renamed over the log, the directory not synced.
    Renamed,
}

/// An append-only log file. Appends are buffered in memory; [`sync`](Wal::sync)
/// writes them and calls `File::sync_data`.
#[derive(Debug)]
pub struct FileWal {
    file: File,
    path: PathBuf,
    pending: Vec<u8>,
    /// Bytes in the file.
    len: u64,
    /// The file held no record when it was opened.
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
        let compact = compact_path(&path);
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
        // A compaction that crashed before its rename left this behind;
        // the log itself is whole.
        if compact.exists() {
            log::warn!(
                "wal: removing {} left by an interrupted compaction",
                compact.display()
            );
            std::fs::remove_file(&compact)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let new = check_header(&bytes, &path)?;
        let valid = if new {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header())?;
            file.sync_data()?;
            HEADER
        } else {
            let (_, valid) = decode_file(&bytes, &path)?;
            if valid < bytes.len() {
                file.set_len(valid as u64)?;
                file.sync_data()?;
            }
            valid
        };
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
            len: valid as u64,
            // Nothing after the header: a node may seed it. (A torn first
            // record is bytes: such a log is never seeded again.)
            was_empty: new || bytes.len() <= HEADER,
        })
    }

    /// Reads the records of the log at `path` without opening it for
    /// writing: no lock, nothing cut (for inspection while a node runs).
    /// A torn final record is skipped; corruption is an error, as for
    /// [`open`](Self::open).
    pub fn read_records(path: impl AsRef<Path>) -> io::Result<Vec<LogRecord>> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)?;
        decode_file(&bytes, path).map(|(records, _)| records)
    }

    /// True when the file held no byte after its header when it was opened
    /// (a new log, one whose header a crash cut short, or one that crashed
    /// before its first record): only then may a node seed it, never a log
    /// that holds records or the remains of one.
    pub fn was_empty(&self) -> bool {
        self.was_empty
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`Wal::rewrite`], stopping (as a crash would) after `stop`.
    fn rewrite_steps(&mut self, records: &[LogRecord], stop: Option<Step>) -> io::Result<()> {
        let stopped = |step| stop == Some(step);
        let mut bytes = header().to_vec();
        for rec in records {
            encode_record(&mut bytes, rec)?;
        }
        let compact = compact_path(&self.path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&compact)?;
        let half = bytes.len() / 2;
        file.write_all(&bytes[..half])?;
        if stopped(Step::HalfWritten) {
            return Ok(());
        }
        file.write_all(&bytes[half..])?;
        if stopped(Step::Written) {
            return Ok(());
        }
        file.sync_all()?;
        if stopped(Step::Synced) {
            return Ok(());
        }
        // Locked before it becomes the log, so that no second process can
        // take the new file between the rename and our switching to it.
        lock_exclusive(&file)?;
        std::fs::rename(&compact, &self.path)?;
        self.file = file;
        self.pending.clear();
        self.len = bytes.len() as u64;
        if stopped(Step::Renamed) {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Where a compaction writes the new log before renaming it over `path`.
fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".compact");
    PathBuf::from(name)
}

impl Wal for FileWal {
    fn append(&mut self, rec: &LogRecord) -> io::Result<()> {
        encode_record(&mut self.pending, rec)
    }

    fn sync(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(&self.pending)?;
            self.len += self.pending.len() as u64;
            self.pending.clear();
        }
        self.file.sync_data()
    }

    fn replay(&mut self) -> io::Result<Vec<LogRecord>> {
        let mut bytes = Vec::new();
        let mut file = File::open(&self.path)?;
        file.read_to_end(&mut bytes)?;
        decode_file(&bytes, &self.path).map(|(records, _)| records)
    }

    fn size(&self) -> u64 {
        self.len + self.pending.len() as u64
    }

    fn rewrite(&mut self, records: &[LogRecord]) -> io::Result<()> {
        self.rewrite_steps(records, None)
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
