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
