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
mod tests {
    use super::*;

    #[test]
    fn range_parsing() {
        use RangeSpec::*;
        assert_eq!(parse_range("bytes=0-499"), Some(Int(0, Some(499))));
        assert_eq!(parse_range("BYTES=500-"), Some(Int(500, None)));
        assert_eq!(parse_range("bytes=-500"), Some(Suffix(500)));
        assert_eq!(parse_range("bytes= 1-2 ,"), Some(Int(1, Some(2))));
        assert_eq!(
            parse_range("bytes=1-99999999999999999999999"),
            Some(Int(1, Some(u64::MAX)))
        );
        for bad in [
            "bytes=5-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "items=1-2",
            "1-2",
            "bytes=0-1,3-4",
            "bytes=--1",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
        assert_eq!(apply_range(Int(0, Some(9)), 5), RangeOutcome::Part(0, 4));
        assert_eq!(apply_range(Int(5, None), 5), RangeOutcome::Unsatisfiable);
        assert_eq!(apply_range(Suffix(9), 5), RangeOutcome::Part(0, 4));
        assert_eq!(apply_range(Suffix(2), 5), RangeOutcome::Part(3, 4));
        assert_eq!(apply_range(Suffix(0), 5), RangeOutcome::Unsatisfiable);
        assert_eq!(apply_range(Suffix(3), 0), RangeOutcome::Full);
        assert_eq!(apply_range(Int(0, None), 0), RangeOutcome::Unsatisfiable);
    }
}
