//! Target resolution: from a request target to an open regular file
//! below the root, or the status code of the refusal.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::FileServer;

impl FileServer {
    /// Maps a request target to an open regular file below the root, or
    /// to the status code of the refusal.
    pub(super) fn resolve(&self, target: &[u8]) -> Result<Found, u16> {
        let raw_path = request_path(target)?;
        let decoded = percent_decode(raw_path).ok_or(400u16)?;
        if decoded.contains(&b'\\') {
            return Err(403);
        }
        let mut path = self.root.to_path_buf();
        let mut name: &[u8] = b"";
        // `/file.txt/` names a directory, which a file is not.
        let mut wants_dir = false;
        for segment in decoded.split(|&b| b == b'/') {
            wants_dir = matches!(segment, b"" | b".");
            match segment {
                b"" | b"." => {}
                b".." => return Err(403),
                _ => {
                    path.push(OsStr::from_bytes(segment));
                    name = segment;
                }
            }
        }
        let mut path = self.canonical_inside(&path)?;
        let mut meta = fs::metadata(&path).map_err(|e| status_of(&e))?;
        if !meta.is_dir() && wants_dir {
            return Err(404);
        }
        if meta.is_dir() {
            path = self.canonical_inside(&path.join("index.html"))?;
            meta = fs::metadata(&path).map_err(|e| status_of(&e))?;
            name = b"index.html";
        }
        // Checked before opening: opening a FIFO would block.
        if !meta.is_file() {
            return Err(404);
        }
        let file = File::open(&path).map_err(|e| status_of(&e))?;
        let meta = file.metadata().map_err(|e| status_of(&e))?;
        if !meta.is_file() {
            return Err(404);
        }
        Ok(Found {
            file,
            len: meta.len(),
            mtime: meta.modified().unwrap_or(UNIX_EPOCH),
            content_type: content_type(name),
        })
    }

    /// `path` with every symlink resolved, if that is inside the root.
    fn canonical_inside(&self, path: &Path) -> Result<PathBuf, u16> {
        let canonical = fs::canonicalize(path).map_err(|e| status_of(&e))?;
        if canonical.starts_with(&*self.root) {
            Ok(canonical)
        } else {
            Err(403)
        }
    }
}

/// Status for a file system error while resolving a path.
fn status_of(e: &io::Error) -> u16 {
    if e.kind() == ErrorKind::PermissionDenied {
        403
    } else {
        404
    }
}

/// A file found for a request.
pub(super) struct Found {
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) mtime: SystemTime,
    pub(super) content_type: &'static str,
}

/// The path part of a request target: origin-form (`/a/b?q`) or
/// absolute-form (`http://host/a/b?q`), without query or fragment.
fn request_path(target: &[u8]) -> Result<&[u8], u16> {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let target = &target[..end];
    if target.starts_with(b"/") {
        return Ok(target);
    }
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            return Ok(match rest.iter().position(|&b| b == b'/') {
                Some(i) => &rest[i..],
                None => b"/",
            });
        }
    }
    Err(400)
}

/// Decodes `%XX` escapes once (so `%252e` becomes the three characters
/// `%2e`, never `.`). `None` for a malformed escape or an escaped NUL.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let pair = s.get(i + 1..i + 3)?;
            let byte = hex(pair[0])? << 4 | hex(pair[1])?;
            if byte == 0 {
                return None;
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `Content-Type` for a file name, from its extension.
fn content_type(name: &[u8]) -> &'static str {
    let ext = match name.iter().rposition(|&b| b == b'.') {
        Some(i) => name[i + 1..].to_ascii_lowercase(),
        None => Vec::new(),
    };
    match ext.as_slice() {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"txt" => "text/plain; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"js" | b"mjs" => "text/javascript; charset=utf-8",
        b"md" => "text/markdown; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"json" => "application/json",
        b"xml" => "application/xml",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"svg" => "image/svg+xml",
        b"ico" => "image/x-icon",
        b"pdf" => "application/pdf",
        b"wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"/a%20b%2Fc").unwrap(), b"/a b/c");
        assert_eq!(percent_decode(b"/%252e").unwrap(), b"/%2e");
        for bad in [&b"/%"[..], b"/%2", b"/%zz", b"/%00", b"/%g0"] {
            assert_eq!(percent_decode(bad), None);
        }
    }

    #[test]
    fn targets_and_types() {
        assert_eq!(request_path(b"/a?x=/../"), Ok(&b"/a"[..]));
        assert_eq!(request_path(b"http://h:1/a/b#f"), Ok(&b"/a/b"[..]));
        assert_eq!(request_path(b"HTTP://h"), Ok(&b"/"[..]));
        assert_eq!(request_path(b"*"), Err(400));
        assert_eq!(request_path(b"a/b"), Err(400));
        assert_eq!(content_type(b"x.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"archive.tar.gz"), "application/octet-stream");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
    }
}
