use super::*;

#[test]
fn wraps_around() {
    let a = SeqNum(u32::MAX - 5);
    let b = a + 10;
    assert_eq!(b, SeqNum(4));
    assert!(a < b);
    assert!(b > a);
    assert_eq!(b.diff(a), 10);
    assert_eq!(a.diff(b), -10);
    assert_eq!(b.since(a), 10);
    assert_eq!(a.since(b), 0);
    assert_eq!(a.max(b), b);
    assert_eq!(a.min(b), a);
    assert!(SeqNum(2).in_range(a, b));
    assert!(!b.in_range(a, b));
    assert_eq!(b - 10, a);
}
