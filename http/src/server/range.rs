//! Single byte ranges (RFC 9110 section 14): parsing a `Range` value and
//! applying it to a file's length.

/// A single range of a `Range: bytes=...` header (RFC 9110 section 14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeSpec {
    /// `first-` or `first-last`.
    Int(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a `Range` value holding exactly one byte range. `None` (ignore
/// the header, send the whole file) for another unit, a malformed value,
/// `last < first`, or several ranges.
pub(super) fn parse_range(value: &str) -> Option<RangeSpec> {
    fn number(s: &str) -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Longer than u64: as large as it gets.
        Some(s.parse().unwrap_or(u64::MAX))
    }
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    // Empty list elements are allowed (RFC 9110 section 5.6.1.2).
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let spec = specs.next()?;
    if specs.next().is_some() {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    if first.is_empty() {
        return Some(RangeSpec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(RangeSpec::Int(first, None));
    }
    let last = number(last)?;
    if last < first {
        return None;
    }
    Some(RangeSpec::Int(first, Some(last)))
}

/// What a range means for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeOutcome {
    /// Send the whole file (200).
    Full,
    /// Send bytes `first..=last` (206).
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// What `spec` means for a file of `len` bytes.
pub(super) fn apply_range(spec: RangeSpec, len: u64) -> RangeOutcome {
    match spec {
        RangeSpec::Int(first, _) if first >= len => RangeOutcome::Unsatisfiable,
        RangeSpec::Int(first, last) => {
            RangeOutcome::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
        }
        RangeSpec::Suffix(0) => RangeOutcome::Unsatisfiable,
        // A suffix range is satisfiable on an empty file, but there are no
        // bytes to send: answer with the whole (empty) file.
        RangeSpec::Suffix(_) if len == 0 => RangeOutcome::Full,
        RangeSpec::Suffix(n) => RangeOutcome::Part(len - n.min(len), len - 1),
    }
}

#[cfg(test)]
mod tests;
