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
//! Replay reads records from the start and stops at the first one that is
//! incomplete or fails its CRC: a record torn by a crash during the write
//! (or never synced) is ignored, and so is anything after it.

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

/// Decodes the valid prefix of a log: the records, and its length in bytes.
fn decode_records(bytes: &[u8]) -> (Vec<LogRecord>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        let Ok(rec) = from_bytes::<LogRecord>(payload) else {
            break;
        };
        records.push(rec);
        pos += 8 + len;
    }
    if pos < bytes.len() {
        log::warn!(
            "wal: ignoring {} bytes of torn or corrupt tail",
            bytes.len() - pos
        );
    }
    (records, pos)
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

    /// Durable records (what a restart would see).
    pub fn durable_records(&self) -> Vec<LogRecord> {
        decode_records(&self.durable).0
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
        let (records, valid) = decode_records(&self.durable);
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
}

impl FileWal {
    /// Opens (or creates) the log at `path`. A torn tail left by a crash is
    /// cut off, so new records follow the last valid one.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileWal> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (_, valid) = decode_records(&bytes);
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
        })
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
        Ok(decode_records(&bytes).0)
    }
}

#[cfg(test)]
mod tests;
