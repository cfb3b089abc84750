use super::*;

#[test]
fn stale_handles_miss() {
    let mut s = Slab::new();
    let a = s.insert("a");
    assert_eq!(s.get(a), Some(&"a"));
    assert_eq!(s.remove(a), Some("a"));
    let b = s.insert("b");
    assert_eq!(a.index(), b.index(), "slot reused");
    assert_eq!(s.get(a), None);
    assert_eq!(s.remove(a), None);
    assert_eq!(s.get(b), Some(&"b"));
    assert_eq!(Handle::<&str>::from_bits(b.to_bits()), b);
    assert_eq!(s.len(), 1);
    assert_eq!(s.iter().count(), 1);
}
