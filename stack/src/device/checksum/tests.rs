use super::*;

#[test]
fn offsets_outside_the_frame_are_refused() {
    let mut f = vec![1u8; 40];
    let before = f.clone();
    for (start, offset) in [(39, 0), (38, 1), (40, 0), (usize::MAX, 2), (0, usize::MAX)] {
        assert!(!complete_partial(&mut f, start, offset), "{start}/{offset}");
    }
    assert_eq!(f, before);
    assert!(complete_partial(&mut f, 38, 0));
    assert!(!complete_tcp(&mut f, 14), "not IPv4/TCP");
}
