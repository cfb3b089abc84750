use super::*;

#[test]
fn send_buffer_ring() {
    let mut b = SendBuffer::new(10);
    assert_eq!(b.write(b"abcdefgh"), 8);
    assert_eq!(b.write(b"ijkl"), 2);
    assert_eq!(b.free(), 0);
    b.consume(6);
    assert_eq!(b.write(b"mnopq"), 5);
    let (x, y) = b.slices(0, 100);
    let all: Vec<u8> = x.iter().chain(y).copied().collect();
    assert_eq!(all, b"ghijmnopq");
    let (x, y) = b.slices(3, 3);
    let part: Vec<u8> = x.iter().chain(y).copied().collect();
    assert_eq!(part, b"jmn");
}

#[test]
fn send_buffer_grows_lazily() {
    let mut b = SendBuffer::new(1 << 20);
    assert_eq!(b.ring.buf.len(), 0);
    b.write(&[1; 100]);
    assert!(b.ring.buf.len() < 10_000);
    b.consume(50);
    b.write(&[2; 50_000]);
    let (x, y) = b.slices(0, b.len());
    let all: Vec<u8> = x.iter().chain(y).copied().collect();
    assert_eq!(&all[..50], &[1; 50][..]);
    assert_eq!(&all[50..], &vec![2; 50_000][..]);
}

#[test]
fn assembler_merges_and_bounds() {
    let mut a = Assembler::default();
    assert!(a.add(10, 20));
    assert!(a.add(30, 40));
    assert!(a.add(20, 30)); // bridges both
    assert_eq!(a.len(), 1);
    assert!(a.contains(15, 35));
    assert!(!a.contains(5, 15));
    assert_eq!(a.take_front(), 0);
    assert!(a.add(0, 10));
    assert_eq!(a.take_front(), 40);
    assert!(a.is_empty());
    for i in 0..Assembler::MAX_RANGES {
        assert!(a.add(i * 10 + 1, i * 10 + 5));
    }
    assert!(!a.add(100_000, 100_001), "range limit");
    assert!(a.add(2, 3), "inside an existing range is fine");
}

#[test]
fn recency_order() {
    let mut a = Assembler::default();
    a.add(10, 20);
    a.add(30, 40);
    a.add(50, 60);
    a.add(12, 14);
    let mut v = Vec::new();
    a.by_recency(&mut v, 4);
    assert_eq!(v, vec![(10, 20), (50, 60), (30, 40)]);
    a.by_recency(&mut v, 2);
    assert_eq!(v, vec![(10, 20), (50, 60)]);
}

#[test]
fn recv_buffer_reorders() {
    let mut r = RecvBuffer::new(100);
    assert_eq!(r.insert(5, b"fghij"), Ok(0));
    assert_eq!(r.readable(), 0);
    assert_eq!(r.insert(12, b"mn"), Ok(0));
    assert_eq!(r.insert(0, b"abcde"), Ok(10));
    assert_eq!(r.insert(0, b"kl"), Ok(4));
    let mut out = [0u8; 32];
    let n = r.read(&mut out);
    assert_eq!(&out[..n], b"abcdefghijklmn");
    assert_eq!(r.window(), 100);
    // Duplicate out-of-order data is absorbed.
    assert_eq!(r.insert(3, b"xyz"), Ok(0));
    assert_eq!(r.insert(3, b"xyz"), Ok(0));
    assert_eq!(r.assembler().len(), 1);
}

#[test]
fn out_of_order_data_far_beyond_the_ring_grows_it() {
    // One stream, delivered as: a little in order, a piece far past the
    // ring's current physical size, a piece in between, then the rest.
    let stream: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut r = RecvBuffer::new(1 << 20);
    assert_eq!(r.insert(0, &stream[..100]), Ok(100));
    let at = |o: usize, n: usize| &stream[100 + o..100 + o + n];
    assert_eq!(r.insert(200_000, at(200_000, 3000)), Ok(0));
    assert_eq!(r.insert(5000, at(5000, 1000)), Ok(0));
    assert_eq!(r.insert(0, at(0, 200_000)), Ok(203_000));
    let mut out = vec![0u8; 300_000];
    let n = r.read(&mut out);
    assert_eq!(n, 203_100);
    assert_eq!(&out[..n], &stream[..n], "held data survived the growth");
}

#[test]
fn recv_buffer_wraps_and_grows() {
    let mut r = RecvBuffer::new(64 * 1024);
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let mut got = Vec::new();
    let mut off = 0;
    let mut out = vec![0u8; 7000];
    while off < data.len() {
        let n = (data.len() - off).min(1460).min(r.window());
        r.insert(0, &data[off..off + n]).unwrap();
        off += n;
        let k = r.read(&mut out);
        got.extend_from_slice(&out[..k]);
    }
    while r.readable() > 0 {
        let k = r.read(&mut out);
        got.extend_from_slice(&out[..k]);
    }
    assert_eq!(got, data);
}

use crate::test_rng::Rng;

#[test]
fn one_byte_at_the_far_edge_does_not_grow_the_ring() {
    let mut r = RecvBuffer::new(1 << 20);
    assert_eq!(r.insert((1 << 20) - 1, b"x"), Ok(0));
    assert!(
        r.memory_used() <= 1 + CHUNK_OVERHEAD,
        "held {} bytes for one",
        r.memory_used()
    );
    assert_eq!(r.ring.buf.len(), 0, "the ring holds in-order data only");
    // The byte is delivered once the gap fills.
    let gap = vec![7u8; (1 << 20) - 1];
    assert_eq!(r.insert(0, &gap), Ok(1 << 20));
    let mut out = vec![0u8; 1 << 20];
    assert_eq!(r.read(&mut out), 1 << 20);
    assert_eq!(out[(1 << 20) - 1], b'x');
    assert!(out[..(1 << 20) - 1].iter().all(|&b| b == 7));
    assert_eq!(r.memory_used(), r.ring.buf.capacity(), "no chunk left");
}

#[test]
fn segments_in_any_order_with_overlaps_arrive_byte_exact() {
    let mut rng = Rng::new(42);
    for round in 0..20 {
        let limit = 64 * 1024 + rng.below(200_000);
        let stream: Vec<u8> = (0..limit * 3).map(|i| (i * 31 % 251) as u8).collect();
        let mut r = RecvBuffer::new(limit);
        let (mut got, mut nxt) = (Vec::new(), 0usize);
        let mut out = vec![0u8; 50_000];
        while nxt < stream.len() {
            // A burst of segments anywhere in the window, any order,
            // overlapping, duplicated; then the one at RCV.NXT.
            let window = r.window();
            for _ in 0..rng.below(40) {
                let off = rng.below(window.max(1));
                let len = (1 + rng.below(3000))
                    .min(window - off)
                    .min(stream.len() - nxt - off.min(stream.len() - nxt));
                if len == 0 {
                    continue;
                }
                let seg = &stream[nxt + off..nxt + off + len];
                let _ = r.insert(off, seg);
                assert!(
                    r.memory_used() <= limit * 2 + 3 * MAX_CHUNK,
                    "round {round}: {} held for a {limit} buffer",
                    r.memory_used()
                );
            }
            let len = (1 + rng.below(5000)).min(window).min(stream.len() - nxt);
            let advanced = r.insert(0, &stream[nxt..nxt + len]).expect("in order");
            assert!(advanced >= len);
            nxt += advanced;
            if rng.below(3) > 0 {
                let n = r.read(&mut out);
                got.extend_from_slice(&out[..n]);
            }
        }
        while r.readable() > 0 {
            let n = r.read(&mut out);
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, stream, "round {round}");
        assert_eq!(r.out_of_order_bytes(), 0);
    }
}

#[test]
fn a_flood_of_one_byte_segments_is_bounded_by_the_buffer_size() {
    let limit = 256 * 1024;
    let mut r = RecvBuffer::new(limit);
    let mut refused = 0;
    for off in (1..limit).step_by(2) {
        match r.insert(off, b"z") {
            Ok(0) => {}
            Err(InsertError::OutOfOrderFull | InsertError::TooManyRanges) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(refused > 0);
    assert!(r.memory_used() <= limit + limit / 8 + MAX_CHUNK);
    assert!(r.assembler().len() <= Assembler::MAX_RANGES);
}

#[test]
fn many_out_of_order_pieces_in_reverse_are_bounded() {
    let limit = 1 << 20;
    let mut r = RecvBuffer::new(limit);
    // Each piece ends where the previous (stored) one starts, so none
    // continues a chunk: one chunk each, all in one assembler range.
    let mut off = limit - 10;
    let mut refused = 0;
    while off > 10 {
        match r.insert(off, &[1u8; 10]) {
            Ok(_) => {}
            Err(_) => refused += 1,
        }
        off -= 10;
    }
    assert!(refused > 0, "the charge per chunk must cap the store");
    assert!(r.memory_used() <= limit + limit / 8 + MAX_CHUNK);
    assert_eq!(r.assembler().len(), 1);
}

#[test]
fn memory_pressure_limits_growth_and_drops_out_of_order_data_first() {
    let mut r = RecvBuffer::new(1 << 20);
    r.insert(0, &[1; 1000]).unwrap();
    r.insert(5000, &[2; 1000]).unwrap();
    assert!(r.window_allowed() > PRESSURE_RING);
    r.set_pressure(MemoryPressure::Pressure);
    assert!(r.window_allowed() <= PRESSURE_RING);
    assert_eq!(
        r.insert(0, &vec![3; PRESSURE_RING]),
        Err(InsertError::NoMemory),
        "in order, but past what the ring may grow to"
    );
    assert_eq!(
        r.insert(200_000, &vec![3; PRESSURE_OOO]),
        Err(InsertError::NoMemory)
    );
    assert_eq!(r.insert(10_000, &[4; 100]), Ok(0), "a little is still kept");
    let held = r.memory_used();
    let freed = r.set_pressure(MemoryPressure::Exhausted);
    assert!(freed >= 1100);
    assert_eq!(r.memory_used(), held - freed);
    assert!(r.assembler().is_empty());
    assert_eq!(r.insert(3000, &[5; 10]), Err(InsertError::NoMemory));
    assert!(r.window_allowed() <= MIN_RING.max(r.ring.buf.len()));
    // In-order data that fits what is already allocated still goes in.
    assert_eq!(r.insert(0, &[6; 100]), Ok(100));
    r.set_pressure(MemoryPressure::Normal);
    assert_eq!(r.insert(0, &vec![7; 100_000]), Ok(100_000));
    let mut out = vec![0u8; 200_000];
    let n = r.read(&mut out);
    assert_eq!(n, 101_100);
    assert!(r.release_if_empty() > 0);
    assert_eq!(r.memory_used(), 0);
}

#[test]
fn send_buffer_follows_memory_pressure_and_releases_when_empty() {
    let mut b = SendBuffer::new(1 << 20);
    b.set_pressure(MemoryPressure::Exhausted);
    assert_eq!(b.free(), MIN_RING);
    assert!(b.limited_by_memory());
    assert_eq!(b.write(&[1; 10_000]), MIN_RING);
    b.set_pressure(MemoryPressure::Pressure);
    assert_eq!(b.free(), PRESSURE_RING - MIN_RING);
    b.set_pressure(MemoryPressure::Normal);
    assert_eq!(b.free(), (1 << 20) - MIN_RING);
    assert!(!b.limited_by_memory());
    assert_eq!(b.release_if_empty(), 0, "holds data");
    b.consume(MIN_RING);
    assert!(b.release_if_empty() >= MIN_RING);
    assert_eq!(b.memory_used(), 0);
    assert_eq!(b.write(b"again"), 5);
}
