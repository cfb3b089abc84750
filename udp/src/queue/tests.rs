use super::*;

const O: usize = DATAGRAM_OVERHEAD;

#[test]
fn fifo_with_wraparound() {
    let mut q = RecvQueue::new(10 + 2 * O);
    assert!(q.push(1, b"abcdef"));
    assert!(!q.push(2, b"ghijk"), "does not fit");
    assert!(q.push(2, b"ghij"));
    let mut buf = [0u8; 16];
    assert_eq!(q.pop(&mut buf), Some((1, 6)));
    assert_eq!(&buf[..6], b"abcdef");
    assert!(q.push(3, b"klmnop")); // wraps around the end of the ring
    assert_eq!(q.pop(&mut buf), Some((2, 4)));
    assert_eq!(&buf[..4], b"ghij");
    assert_eq!(q.pop(&mut buf), Some((3, 6)));
    assert_eq!(&buf[..6], b"klmnop");
    assert!(q.is_empty());
    assert_eq!(q.pop(&mut buf), None);
}

#[test]
fn short_buffer_truncates_like_recvfrom() {
    let mut q = RecvQueue::new(64 + O);
    q.push((), b"0123456789");
    let mut buf = [0u8; 4];
    assert_eq!(q.pop(&mut buf), Some(((), 10)));
    assert_eq!(&buf, b"0123");
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
}

#[test]
fn empty_datagrams_are_kept_and_charged() {
    let mut q = RecvQueue::new(4 * O);
    for _ in 0..4 {
        assert!(q.push('a', b""));
    }
    assert!(!q.push('a', b""), "empty datagrams are not free");
    assert_eq!(q.len(), 4);
    assert_eq!(q.charged(), 4 * O);
    let mut buf = [0u8; 4];
    assert_eq!(q.pop(&mut buf), Some(('a', 0)));
    assert!(q.push('b', b""));
}

#[test]
fn a_flood_of_empty_datagrams_is_bounded() {
    let mut q = RecvQueue::new(212_992);
    let accepted = (0..1_000_000).filter(|_| q.push((), b"")).count();
    assert_eq!(accepted, 212_992 / O);
    assert!(q.memory_used() < 212_992 / O * 64);
}

#[test]
fn the_ring_grows_with_the_data_and_can_be_released() {
    let mut q = RecvQueue::new(1 << 20);
    assert_eq!(q.memory_used(), 0, "idle sockets hold nothing");
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut buf = vec![0u8; 2000];
    let mut expect = 0u8;
    for (i, chunk) in data.chunks(1500).enumerate() {
        assert!(q.push(i, chunk));
        if i % 3 == 2 {
            let (m, n) = q.pop(&mut buf).unwrap();
            assert_eq!(buf[0], expect, "datagram {m}");
            expect = expect.wrapping_add((n % 256) as u8);
        }
    }
    assert!(q.memory_used() < 300_000);
    assert!(!q.push_within(0, &[0; 200_000], false), "no growth allowed");
    while q.pop(&mut buf).is_some() {}
    assert!(q.release_if_empty() > 0);
    assert_eq!(q.memory_used(), 0);
}

#[test]
fn resize_keeps_what_fits() {
    let mut q = RecvQueue::new(100 + 3 * O);
    q.push(1, &[1; 30]);
    q.push(2, &[2; 30]);
    q.push(3, &[3; 30]);
    assert_eq!(q.set_capacity(65 + 2 * O), 1);
    assert_eq!(q.len(), 2);
    let mut buf = [0u8; 64];
    assert_eq!(q.pop(&mut buf), Some((1, 30)));
}

#[test]
fn peek_leaves_the_datagram_queued_even_across_the_wrap() {
    let mut q = RecvQueue::new(10 + 2 * O);
    assert!(q.push(1, b"abcdef"));
    let mut buf = [0u8; 16];
    assert_eq!(q.pop(&mut buf), Some((1, 6)));
    assert!(q.push(2, b"klmnop")); // wraps around the end of the ring
    let mut peeked = [0u8; 16];
    assert_eq!(q.peek(&mut peeked), Some((2, 6)));
    assert_eq!(&peeked[..6], b"klmnop");
    let mut short = [0u8; 3];
    assert_eq!(q.peek(&mut short), Some((2, 6)), "the full length");
    assert_eq!(&short, b"klm");
    assert_eq!(q.len(), 1);
    assert_eq!(q.pop(&mut buf), Some((2, 6)));
    assert_eq!(&buf[..6], b"klmnop");
    assert_eq!(q.peek(&mut buf), None);
}
