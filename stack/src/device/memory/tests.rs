use super::*;

#[test]
fn frames_cross_in_order() {
    let (mut a, mut b) = memory_pair(1500).unwrap();
    let now = Instant::now();
    a.send(now, b"one").unwrap();
    a.send(now, b"two").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(now, &mut buf).unwrap(), Some(3));
    assert_eq!(&buf[..3], b"one");
    assert_eq!(b.recv(now, &mut buf).unwrap(), Some(3));
    assert_eq!(&buf[..3], b"two");
    assert_eq!(b.recv(now, &mut buf).unwrap(), None);
    assert_eq!(a.recv(now, &mut buf).unwrap(), None);
}
