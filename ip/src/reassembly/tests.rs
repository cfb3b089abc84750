use super::*;
use crate::IpProtocol;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// The tests' seeded generator (`rand`'s SmallRng), so they replay exactly.
struct Rng(rand::rngs::SmallRng);
impl Rng {
    fn new(seed: u64) -> Rng {
        use rand::SeedableRng;
        Rng(rand::rngs::SmallRng::seed_from_u64(seed))
    }
    fn next(&mut self) -> u64 {
        rand::RngExt::random(&mut self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        rand::RngExt::random_range(&mut self.0, 0..n)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

#[derive(Clone)]
struct Frag {
    repr: Ipv4Repr,
    header: Vec<u8>,
    data: Vec<u8>,
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Splits `data` into fragments of `size` bytes (a multiple of 8).
fn split(data: &[u8], ident: u16, size: usize) -> Vec<Frag> {
    fragments(data.len(), size + 20, 20)
        .map(|(off, len, more)| {
            let mut repr = Ipv4Repr::new(SRC, DST, IpProtocol::UDP, 64, len);
            repr.ident = ident;
            repr.frag_offset = off as u16;
            repr.more_fragments = more;
            let mut header = vec![0u8; 20];
            repr.emit(&mut header);
            Frag {
                repr,
                header,
                data: data[off..off + len].to_vec(),
            }
        })
        .collect()
}

/// A fragment of `data` (the datagram `ident` from SRC): bytes
/// `off..off + len`, with MF set unless it reaches the end.
fn piece(data: &[u8], ident: u16, off: usize, len: usize) -> Frag {
    let mut f = split(data, ident, 8).remove(0);
    f.repr.frag_offset = off as u16;
    f.repr.more_fragments = off + len < data.len();
    f.repr.payload_len = len;
    f.data = data[off..off + len].to_vec();
    f
}

fn push(r: &mut Reassembler, now: Instant, f: &Frag) -> Result<Option<Datagram>, ReassemblyError> {
    r.push(now, &f.repr, &f.header, &f.data)
}

/// Pushes and then checks every invariant of the reassembler.
fn push_checked(
    r: &mut Reassembler,
    now: Instant,
    f: &Frag,
) -> Result<Option<Datagram>, ReassemblyError> {
    let result = push(r, now, f);
    r.check_invariants();
    result
}

fn assert_empty(r: &Reassembler) {
    r.check_invariants();
    assert_eq!(r.memory_used(), 0);
    assert_eq!(r.held_bytes(), 0);
    assert_eq!(r.partial_count(), 0);
    assert_eq!(r.bookkeeping(), (0, 0, 0));
    assert_eq!(r.poll_at(), None);
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn every_permutation_of_five_fragments() {
    let data = payload(5 * 16 - 3, 1); // last fragment shorter than the rest
    let frags = split(&data, 7, 16);
    assert_eq!(frags.len(), 5);
    let perms = permutations(5);
    assert_eq!(perms.len(), 120);
    let now = Instant::now();
    for perm in perms {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut delivered = Vec::new();
        for &i in &perm {
            if let Some(d) = push_checked(&mut r, now, &frags[i]).unwrap() {
                delivered.push(d);
            }
        }
        assert_eq!(delivered.len(), 1, "order {perm:?}");
        let d = &delivered[0];
        assert_eq!(d.payload, data, "order {perm:?}");
        assert_eq!(d.repr.payload_len, data.len());
        assert!(!d.repr.is_fragment());
        assert_empty(&r);
    }
}

/// Shuffles the fragments of several datagrams together and sprinkles
/// duplicates, each placed before the fragment that completes its datagram
/// (a full set of duplicates arriving after completion is, correctly, a new
/// datagram: IP keeps no memory of finished ones, and neither does Linux).
fn interleaved(rng: &mut Rng, count: usize) -> (Vec<Vec<u8>>, Vec<Frag>) {
    let mut datagrams = Vec::new();
    let mut order: Vec<Frag> = Vec::new();
    for d in 0..count {
        let size = 8 * (1 + rng.below(64));
        let len = size + 1 + rng.below(4000); // at least two fragments
        let data = payload(len, d as u8);
        order.extend(split(&data, 100 + d as u16, size));
        datagrams.push(data);
    }
    rng.shuffle(&mut order);
    // Sort keys: the i-th original at 2i+1; a duplicate of a fragment at 2j
    // with j at most the index of its datagram's completing fragment, so it
    // arrives before completion. The completing fragment is not duplicated.
    let mut keyed: Vec<(usize, Frag)> = Vec::new();
    for (i, f) in order.iter().enumerate() {
        keyed.push((2 * i + 1, f.clone()));
        let last = order
            .iter()
            .rposition(|g| g.repr.ident == f.repr.ident)
            .expect("present");
        if i != last && rng.below(3) == 0 {
            for _ in 0..1 + rng.below(3) {
                keyed.push((2 * rng.below(last + 1), f.clone()));
            }
        }
    }
    keyed.sort_by_key(|(k, _)| *k);
    (datagrams, keyed.into_iter().map(|(_, f)| f).collect())
}

#[test]
fn thousand_seeded_orders_with_duplicates_and_interleaving() {
    let now = Instant::now();
    for seed in 1..=1000u64 {
        let mut rng = Rng::new(seed);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let count = 1 + rng.below(4);
        let (datagrams, order) = interleaved(&mut rng, count);
        let mut delivered = vec![0; count];
        for f in &order {
            if let Some(d) = push_checked(&mut r, now, f).unwrap() {
                let idx = (d.repr.ident - 100) as usize;
                assert_eq!(d.payload, datagrams[idx], "seed {seed}");
                delivered[idx] += 1;
            }
        }
        assert!(
            delivered.iter().all(|&n| n == 1),
            "seed {seed}: {delivered:?}"
        );
        assert_empty(&r);
    }
}

#[test]
fn late_duplicates_never_yield_corrupt_data() {
    let now = Instant::now();
    let mut rng = Rng::new(7);
    let data = payload(5000, 4);
    let frags = split(&data, 3, 1480);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    for f in &frags {
        push(&mut r, now, f).unwrap();
    }
    // Every fragment again, in random order, several times over.
    for _ in 0..20 {
        let mut again = frags.clone();
        rng.shuffle(&mut again);
        for f in &again {
            if let Some(d) = push(&mut r, now, f).unwrap() {
                assert_eq!(d.payload, data);
            }
        }
    }
}

#[test]
fn overlap_with_identical_bytes_is_accepted() {
    let now = Instant::now();
    let data = payload(64, 3);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    // Bytes 0..40 (more to come), then one final fragment covering 0..64
    // that repeats those 40 bytes exactly.
    let mut head = split(&data[..40], 1, 40).remove(0);
    head.repr.more_fragments = true;
    let whole = split(&data, 1, 64).remove(0);
    assert!(!whole.repr.more_fragments);
    assert!(push(&mut r, now, &head).unwrap().is_none());
    let d = push(&mut r, now, &whole).unwrap().expect("complete");
    assert_eq!(d.payload, data);
}

#[test]
fn overlap_with_conflicting_bytes_discards_the_datagram() {
    let now = Instant::now();
    let data = payload(48, 5);
    let frags = split(&data, 9, 16);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    push(&mut r, now, &frags[0]).unwrap();
    // A rewrite of bytes 8..24 that disagrees with bytes 8..16 held.
    let mut evil = frags[1].clone();
    evil.repr.frag_offset = 8;
    evil.data = vec![0xee; 16];
    assert_eq!(
        push(&mut r, now, &evil),
        Err(ReassemblyError::OverlapConflict)
    );
    assert_empty(&r);
    assert_eq!(r.stats().discarded, 1);
    // The rest of the original fragments do not resurrect it.
    assert!(push(&mut r, now, &frags[1]).unwrap().is_none());
    assert!(push(&mut r, now, &frags[2]).unwrap().is_none());
}

#[test]
fn timeout_frees_memory_and_reports_the_first_fragment() {
    let t0 = Instant::now();
    let cfg = ReassemblyConfig::default();
    let mut r = Reassembler::new(cfg.clone());
    let data = payload(100, 7);
    let frags = split(&data, 11, 32);
    push(&mut r, t0, &frags[0]).unwrap();
    push(&mut r, t0, &frags[2]).unwrap();
    // A second datagram without its first fragment.
    let other = split(&payload(100, 8), 12, 32);
    push(&mut r, t0, &other[1]).unwrap();
    assert!(r.held_bytes() > 0);
    assert_eq!(r.poll_at(), Some(t0 + cfg.timeout));
    let mut expired = Vec::new();
    r.poll(t0 + cfg.timeout - Duration::from_millis(1), |e| {
        expired.push(e)
    });
    assert!(expired.is_empty());
    r.poll(t0 + cfg.timeout, |e| expired.push(e));
    assert_eq!(expired.len(), 2);
    let quoted = expired[0]
        .first_fragment
        .as_ref()
        .expect("first fragment arrived");
    assert_eq!(&quoted[..20], &frags[0].header[..]);
    assert_eq!(&quoted[20..], &data[..8]);
    assert!(expired[1].first_fragment.is_none());
    assert_eq!(r.stats().timed_out, 2);
    assert_empty(&r);
}

#[test]
fn flood_of_incomplete_fragments_stays_under_the_cap() {
    let now = Instant::now();
    let cfg = ReassemblyConfig::default();
    let mut r = Reassembler::new(cfg.clone());
    let mut rng = Rng::new(42);
    let valid = payload(60_000, 9);
    let valid_frags = split(&valid, 0xffff, 1480);
    let mut delivered = 0;
    for i in 0..100_000u32 {
        let len = 8 * (1 + rng.below(180));
        let mut repr = Ipv4Repr::new(
            Ipv4Addr::from(0x0a00_0000 | rng.below(1 << 16) as u32),
            DST,
            IpProtocol::UDP,
            64,
            len,
        );
        repr.ident = rng.next() as u16;
        repr.frag_offset = (8 * (1 + rng.below(7000))) as u16;
        repr.more_fragments = true;
        let header = vec![0u8; 20];
        let _ = r.push(now, &repr, &header, &vec![0xaa; len]);
        assert!(r.memory_used() <= cfg.max_held_bytes, "after {i} fragments");
        assert_eq!(r.bookkeeping().1, r.partial_count());
        if i == 50_000 {
            for f in &valid_frags {
                if let Some(d) = push(&mut r, now, f).unwrap() {
                    assert_eq!(d.payload, valid);
                    delivered += 1;
                }
            }
        }
    }
    assert_eq!(delivered, 1);
    assert!(r.stats().evicted > 0);
    r.check_invariants();
    r.poll(now + cfg.timeout, |_| {});
    assert_empty(&r);
}

#[test]
fn ping_of_death_and_bad_lengths_are_rejected() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut repr = Ipv4Repr::new(SRC, DST, IpProtocol::ICMP, 64, 16);
    repr.frag_offset = 65_520;
    let header = [0u8; 20];
    assert_eq!(
        r.push(now, &repr, &header, &[0; 16]),
        Err(ReassemblyError::TooLong)
    );
    let mut repr = Ipv4Repr::new(SRC, DST, IpProtocol::ICMP, 64, 12);
    repr.more_fragments = true;
    assert_eq!(
        r.push(now, &repr, &header, &[0; 12]),
        Err(ReassemblyError::BadFragmentLength)
    );
    assert_eq!(
        r.push(now, &repr, &header, &[]),
        Err(ReassemblyError::BadFragmentLength)
    );
    assert_eq!(r.partial_count(), 0);
}

#[test]
fn disagreeing_final_fragments_discard_the_datagram() {
    let now = Instant::now();
    let data = payload(64, 1);
    let frag = |off: usize, len: usize, more: bool| {
        let mut f = split(&data, 5, 64).remove(0);
        f.repr.frag_offset = off as u16;
        f.repr.more_fragments = more;
        f.data = data[off..off + len].to_vec();
        f
    };
    let mut r = Reassembler::new(ReassemblyConfig::default());
    push(&mut r, now, &frag(0, 32, true)).unwrap();
    push(&mut r, now, &frag(48, 16, false)).unwrap(); // says: ends at 64
    assert_eq!(
        push(&mut r, now, &frag(32, 16, false)), // says: ends at 48
        Err(ReassemblyError::InconsistentLength)
    );
    assert_eq!(r.partial_count(), 0);
    // A fragment reaching past a known end is inconsistent too.
    push(&mut r, now, &frag(0, 16, true)).unwrap();
    push(&mut r, now, &frag(32, 16, false)).unwrap(); // ends at 48
    assert_eq!(
        push(&mut r, now, &frag(40, 16, true)),
        Err(ReassemblyError::InconsistentLength)
    );
    // And a final fragment ending before bytes already held.
    push(&mut r, now, &frag(32, 32, true)).unwrap();
    assert_eq!(
        push(&mut r, now, &frag(8, 8, false)),
        Err(ReassemblyError::InconsistentLength)
    );
    assert_empty(&r);
    assert_eq!(r.stats().discarded, 3);
}

#[test]
fn fragment_splitting() {
    let v: Vec<_> = fragments(3000, 1500, 20).collect();
    assert_eq!(
        v,
        vec![(0, 1480, true), (1480, 1480, true), (2960, 40, false)]
    );
    let v: Vec<_> = fragments(100, 576, 20).collect();
    assert_eq!(v, vec![(0, 100, false)]);
    let v: Vec<_> = fragments(0, 1500, 20).collect();
    assert_eq!(v, vec![(0, 0, false)]);
    // 576-byte MTU: 556 bytes of room, 552 usable (multiple of 8).
    let v: Vec<_> = fragments(65_507 + 8, 576, 20).collect();
    assert!(
        v.iter()
            .all(|(off, len, more)| off % 8 == 0 && (!more || *len == 552))
    );
    assert_eq!(v.iter().map(|(_, l, _)| l).sum::<usize>(), 65_515);
}

/// `f` as sent from `src` (the header is emitted again to match).
fn from(src: Ipv4Addr, f: &Frag) -> Frag {
    let mut f = f.clone();
    f.repr.src = src;
    f.repr.emit(&mut f.header);
    f
}

#[test]
fn a_discarded_datagram_leaves_no_bookkeeping() {
    let now = Instant::now();
    let cfg = ReassemblyConfig::default();
    let mut r = Reassembler::new(cfg.clone());
    // A bystander, held throughout.
    let other = payload(3000, 2);
    let other_frags = split(&other, 77, 1480);
    push_checked(&mut r, now, &other_frags[1]).unwrap();
    let baseline = r.memory_used();
    assert_eq!(r.bookkeeping(), (1, 1, 1));
    // Spoofed conflicting pairs at line rate, each from its own source:
    // none may leave anything behind (an expiry entry, an index entry).
    for i in 0..10_000u32 {
        let src = Ipv4Addr::from(0x0b00_0000 + i);
        let data = payload(48, i as u8);
        push_checked(&mut r, now, &from(src, &piece(&data, 5, 0, 16))).unwrap();
        assert!(r.memory_used() > baseline);
        let (evil, error) = if i % 2 == 0 {
            // Bytes 8..24 rewritten.
            let mut evil = from(src, &piece(&data, 5, 8, 16));
            evil.data = vec![0xee; 16];
            (evil, ReassemblyError::OverlapConflict)
        } else {
            // A final fragment that puts the end at 8, before bytes held.
            let mut evil = from(src, &piece(&data, 5, 0, 8));
            evil.repr.more_fragments = false;
            (evil, ReassemblyError::InconsistentLength)
        };
        assert_eq!(push_checked(&mut r, now, &evil), Err(error));
        assert_eq!(r.memory_used(), baseline, "after pair {i}");
        assert_eq!(r.bookkeeping(), (1, 1, 1), "after pair {i}");
    }
    assert_eq!(r.stats().discarded, 10_000);
    // Only the bystander times out; then nothing at all is left.
    let mut expired = Vec::new();
    r.poll(now + cfg.timeout, |e| expired.push(e));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].src, SRC);
    assert_empty(&r);
}

#[test]
fn memory_used_is_the_documented_charge() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    assert_eq!(r.memory_used(), 0);
    let data = payload(64, 6);
    // Bytes 16..32: a datagram with one piece, no quote yet.
    push_checked(&mut r, now, &piece(&data, 1, 16, 16)).unwrap();
    let one = TABLE_ROOTS + DATAGRAM_OVERHEAD + PIECE_OVERHEAD + 16;
    assert_eq!(r.memory_used(), one);
    // Bytes 0..8: a piece of its own (nothing ends at 0), plus the quote of
    // the first fragment (20-byte header and 8 bytes of payload).
    push_checked(&mut r, now, &piece(&data, 1, 0, 8)).unwrap();
    let two = one + PIECE_OVERHEAD + 8 + quote_charge(28);
    assert_eq!(r.memory_used(), two);
    // The bookkeeping is charged, and is not negligible: a flood of tiny
    // fragments cannot hide behind it.
    assert!(DATAGRAM_OVERHEAD >= size_of::<Partial>() + 3 * ALLOC_OVERHEAD);
    assert!(PIECE_OVERHEAD >= ALLOC_OVERHEAD + size_of::<(usize, Vec<u8>)>());
    assert_eq!(r.stats().peak_memory_used, two);
    let d = push_checked(&mut r, now, &piece(&data, 1, 8, 56))
        .unwrap()
        .expect("complete");
    assert_eq!(d.payload, data);
    assert_empty(&r);
}

#[test]
fn duplicates_cost_no_memory() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let data = payload(4096, 8);
    push_checked(&mut r, now, &piece(&data, 2, 1024, 1024)).unwrap();
    let held = r.memory_used();
    for _ in 0..100 {
        push_checked(&mut r, now, &piece(&data, 2, 1024, 1024)).unwrap();
        // Any part of it again, too.
        push_checked(&mut r, now, &piece(&data, 2, 1536, 256)).unwrap();
    }
    assert_eq!(r.memory_used(), held);
    assert_eq!(r.pieces_of(SRC, 2), vec![(1024, 1024, 1024)]);
    // Only the new bytes of an overlapping fragment are stored, appended to
    // the piece they follow.
    push_checked(&mut r, now, &piece(&data, 2, 1024, 2048)).unwrap();
    assert_eq!(r.pieces_of(SRC, 2), vec![(1024, 2048, 2048)]);
    assert_eq!(r.memory_used(), held + 1024);
}

#[test]
fn out_of_order_overlapping_and_duplicate_fragments_reassemble_byte_exact() {
    let now = Instant::now();
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed);
        let len = 1 + rng.below(20_000);
        let data = payload(len, seed as u8);
        // Fragment `off..end`, the final one when it reaches the end.
        let frag = |off: usize, end: usize| piece(&data, 9, off, end - off);
        let mut frags = Vec::new();
        // A tiling of the whole datagram, so it completes...
        let mut off = 0;
        while off < len {
            let end = (off + 8 * (1 + rng.below(185))).min(len);
            frags.push(frag(off, end));
            off = end;
        }
        // ...and as many fragments again that overlap it anywhere (8-byte
        // aligned, as fragments are), agreeing byte for byte.
        for _ in 0..frags.len() {
            let off = 8 * rng.below(len.div_ceil(8));
            let end = (off + 8 * (1 + rng.below(185))).min(len);
            frags.push(frag(off, end));
        }
        // And exact duplicates.
        for _ in 0..frags.len() / 2 {
            let f = frags[rng.below(frags.len())].clone();
            frags.push(f);
        }
        rng.shuffle(&mut frags);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut delivered = None;
        for f in &frags {
            if let Some(d) = push_checked(&mut r, now, f).unwrap() {
                delivered = Some(d);
                break;
            }
        }
        let d = delivered.unwrap_or_else(|| panic!("seed {seed}: never completed"));
        assert_eq!(d.payload, data, "seed {seed}");
        assert_eq!(d.repr.payload_len, len);
        assert!(!d.repr.is_fragment());
        assert_eq!(r.stats().reassembled, 1);
        assert_empty(&r);
    }
}

#[test]
fn too_many_pieces_discard_the_datagram() {
    let now = Instant::now();
    let cfg = ReassemblyConfig {
        max_pieces_per_datagram: 4,
        ..ReassemblyConfig::default()
    };
    let data = payload(160, 3);
    let mut r = Reassembler::new(cfg.clone());
    for off in [0, 32, 64, 96] {
        push_checked(&mut r, now, &piece(&data, 4, off, 8)).unwrap();
    }
    assert_eq!(r.bookkeeping(), (1, 1, 4));
    // A fifth separate piece is one too many.
    assert_eq!(
        push_checked(&mut r, now, &piece(&data, 4, 128, 8)),
        Err(ReassemblyError::TooManyPieces)
    );
    assert_empty(&r);
    assert_eq!(r.stats().discarded, 1);

    // Bytes that follow a piece extend it, so the same datagram fits in
    // four pieces when they are filled from the left...
    let mut r = Reassembler::new(cfg.clone());
    for off in [0, 32, 64, 96] {
        push_checked(&mut r, now, &piece(&data, 4, off, 8)).unwrap();
    }
    push_checked(&mut r, now, &piece(&data, 4, 8, 16)).unwrap();
    push_checked(&mut r, now, &piece(&data, 4, 104, 56)).unwrap();
    assert_eq!(r.bookkeeping(), (1, 1, 4));
    // ...and a fragment straddling several holes makes at most one piece
    // (the others follow a piece).
    let d = push_checked(&mut r, now, &piece(&data, 4, 16, 96))
        .unwrap()
        .expect("complete");
    assert_eq!(d.payload, data);
    assert_empty(&r);

    // Straddling a hole with no piece before it: one new piece, fine when
    // there is room for it, too many when there is not.
    let mut r = Reassembler::new(cfg);
    for off in [16, 48, 80] {
        push_checked(&mut r, now, &piece(&data, 4, off, 8)).unwrap();
    }
    push_checked(&mut r, now, &piece(&data, 4, 0, 64)).unwrap();
    assert_eq!(r.pieces_of(SRC, 4).len(), 3 + 1);
    assert_eq!(
        push_checked(&mut r, now, &piece(&data, 4, 120, 8)),
        Err(ReassemblyError::TooManyPieces)
    );
    assert_empty(&r);
}

#[test]
fn in_order_fragments_of_any_size_make_one_piece() {
    let now = Instant::now();
    // The largest datagram in 8-byte fragments (the smallest there are),
    // with room for a single piece.
    let cfg = ReassemblyConfig {
        max_pieces_per_datagram: 1,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    let data = payload(Ipv4Repr::MAX_PACKET_LEN - 20, 5);
    let frags = split(&data, 6, 8);
    assert_eq!(frags.len(), 8190);
    let (last, rest) = frags.split_last().expect("fragments");
    for (i, f) in rest.iter().enumerate() {
        assert!(push(&mut r, now, f).unwrap().is_none());
        if i % 512 == 0 {
            r.check_invariants();
            let pieces = r.pieces_of(SRC, 6);
            assert_eq!(pieces.len(), 1);
            let (_, len, capacity) = pieces[0];
            // Grown by doubling, never past the largest datagram.
            assert!(capacity <= (2 * len).min(data.len()));
        }
    }
    let d = push_checked(&mut r, now, last).unwrap().expect("complete");
    assert_eq!(d.payload, data);
    assert_empty(&r);
}

#[test]
fn the_worst_honest_order_fits_the_default_piece_cap() {
    let now = Instant::now();
    let data = payload(Ipv4Repr::MAX_PACKET_LEN - 20, 6);
    // MTU 576, last fragment first: every fragment is a piece of its own.
    let mut frags = split(&data, 8, 552);
    assert_eq!(frags.len(), 119);
    frags.reverse();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let (last, rest) = frags.split_last().expect("fragments");
    for f in rest {
        assert!(push(&mut r, now, f).unwrap().is_none());
    }
    assert_eq!(r.bookkeeping(), (1, 1, 118));
    let d = push_checked(&mut r, now, last).unwrap().expect("complete");
    assert_eq!(d.payload, data);
    assert_empty(&r);
}

#[test]
fn a_fragment_looks_only_at_the_pieces_it_overlaps() {
    let now = Instant::now();
    let mut rng = Rng::new(99);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let data = payload(256 * 16, 1);
    // 256 pieces of 8 bytes with 8-byte holes between, in random order:
    // each finds its place in O(log pieces), looking at one piece (the one
    // before it) while checking and one while storing.
    let mut offsets: Vec<usize> = (0..256).map(|i| 16 * i).collect();
    rng.shuffle(&mut offsets);
    for (n, &off) in offsets.iter().enumerate() {
        let before = r.pieces_visited();
        push_checked(&mut r, now, &piece(&data, 3, off, 8)).unwrap();
        assert!(r.pieces_visited() - before <= 2, "piece {n}");
    }
    assert_eq!(r.bookkeeping(), (1, 1, 256));
    // Filling one hole looks at its neighbours only, however many pieces
    // are held.
    let before = r.pieces_visited();
    push_checked(&mut r, now, &piece(&data, 3, 16 * 100 + 8, 8)).unwrap();
    assert!(r.pieces_visited() - before <= 2);
    // A fragment over k pieces looks at those k (to compare their bytes),
    // and at its neighbour, once while checking and once while storing.
    for (k, j) in [(1usize, 10), (10, 20), (100, 40)] {
        let off = 16 * j + 8;
        let before = r.pieces_visited();
        push_checked(&mut r, now, &piece(&data, 3, off, 16 * k)).unwrap();
        assert!(r.pieces_visited() - before <= 2 * (k + 1), "k = {k}");
    }
    // Duplicates look, and store nothing.
    let held = r.memory_used();
    let before = r.pieces_visited();
    push_checked(&mut r, now, &piece(&data, 3, 0, 8)).unwrap();
    assert!(r.pieces_visited() - before <= 1);
    assert_eq!(r.memory_used(), held);
}

#[test]
fn eviction_takes_the_oldest_first() {
    let t0 = Instant::now();
    let data = payload(8000, 7);
    // Room for three datagrams of one 1000-byte piece each.
    let each = DATAGRAM_OVERHEAD + PIECE_OVERHEAD + 1000;
    let cfg = ReassemblyConfig {
        max_held_bytes: TABLE_ROOTS + 3 * each,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(cfg.clone());
    let idents = |r: &Reassembler| -> Vec<u16> {
        (1..=4)
            .filter(|&i| !r.pieces_of(SRC, i).is_empty())
            .collect()
    };
    for ident in 1..=3u16 {
        let t = t0 + Duration::from_secs(ident.into());
        push_checked(&mut r, t, &piece(&data, ident, 1000, 1000)).unwrap();
    }
    assert_eq!(r.memory_used(), cfg.max_held_bytes);
    assert_eq!(r.stats().evicted, 0);
    // A fourth datagram evicts the oldest.
    push_checked(
        &mut r,
        t0 + Duration::from_secs(4),
        &piece(&data, 4, 1000, 1000),
    )
    .unwrap();
    assert_eq!(idents(&r), vec![2, 3, 4]);
    assert_eq!(r.stats().evicted, 1);
    // The oldest growing evicts the next oldest, never itself.
    push_checked(
        &mut r,
        t0 + Duration::from_secs(5),
        &piece(&data, 2, 4000, 8),
    )
    .unwrap();
    assert_eq!(idents(&r), vec![2, 4]);
    assert_eq!(r.stats().evicted, 2);
    assert_eq!(r.poll_at(), Some(t0 + Duration::from_secs(2) + cfg.timeout));
    // Evicted datagrams are gone for good: nothing of them times out.
    let mut expired = 0;
    r.poll(t0 + Duration::from_secs(60), |_| expired += 1);
    assert_eq!(expired, 2);
    assert_empty(&r);
}

#[test]
fn a_datagram_that_cannot_grow_within_the_cap_is_discarded() {
    let now = Instant::now();
    let data = payload(8000, 1);
    let cfg = ReassemblyConfig {
        max_held_bytes: TABLE_ROOTS + DATAGRAM_OVERHEAD + PIECE_OVERHEAD + 1480 + 100,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(cfg.clone());
    push_checked(&mut r, now, &piece(&data, 1, 1480, 1480)).unwrap();
    assert_eq!(
        push_checked(&mut r, now, &piece(&data, 1, 4000, 1480)),
        Err(ReassemblyError::NoMemory)
    );
    assert_empty(&r);
    assert_eq!(r.stats().discarded, 1);
    // A fragment larger than the cap on its own is refused outright.
    let cfg = ReassemblyConfig {
        max_held_bytes: 1000,
        ..cfg
    };
    let mut r = Reassembler::new(cfg);
    assert_eq!(
        push(&mut r, now, &piece(&data, 1, 0, 1480)),
        Err(ReassemblyError::NoMemory)
    );
    assert_empty(&r);
}

#[test]
fn timeouts_report_only_datagrams_still_held_oldest_first() {
    let t0 = Instant::now();
    let cfg = ReassemblyConfig::default();
    let mut r = Reassembler::new(cfg.clone());
    let data = payload(100, 7);
    let at = |s: u64| t0 + Duration::from_secs(s);
    let a = Ipv4Addr::new(10, 0, 1, 1);
    let b = Ipv4Addr::new(10, 0, 1, 2);
    let c = Ipv4Addr::new(10, 0, 1, 3);
    let d = Ipv4Addr::new(10, 0, 1, 4);
    // B arrives later than A, but with an earlier clock reading (time is
    // the caller's): B times out first.
    push_checked(&mut r, at(5), &from(a, &piece(&data, 1, 0, 32))).unwrap();
    push_checked(&mut r, at(2), &from(b, &piece(&data, 1, 32, 32))).unwrap();
    // C is discarded, D completed: neither may time out later.
    push_checked(&mut r, at(3), &from(c, &piece(&data, 1, 0, 32))).unwrap();
    let mut evil = from(c, &piece(&data, 1, 0, 32));
    evil.data[0] ^= 1;
    assert_eq!(
        push_checked(&mut r, at(3), &evil),
        Err(ReassemblyError::OverlapConflict)
    );
    push_checked(&mut r, at(4), &from(d, &piece(&data, 1, 0, 64))).unwrap();
    push_checked(&mut r, at(4), &from(d, &piece(&data, 1, 64, 36)))
        .unwrap()
        .expect("complete");
    assert_eq!(r.poll_at(), Some(at(2) + cfg.timeout));
    let mut expired = Vec::new();
    r.poll(at(2) + cfg.timeout, |e| expired.push(e));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].src, b);
    assert!(expired[0].first_fragment.is_none());
    assert_eq!(r.poll_at(), Some(at(5) + cfg.timeout));
    r.poll(at(100), |e| expired.push(e));
    assert_eq!(expired.len(), 2);
    assert_eq!(expired[1].src, a);
    let quoted = expired[1].first_fragment.as_ref().expect("first fragment");
    assert_eq!(&quoted[20..], &data[..8]);
    assert_eq!(r.stats().timed_out, 2);
    assert_eq!(r.stats().reassembled, 1);
    assert_eq!(r.stats().discarded, 1);
    assert_empty(&r);
}

#[test]
fn random_offset_flood_from_many_sources_never_exceeds_the_cap() {
    let t0 = Instant::now();
    let cfg = ReassemblyConfig {
        max_held_bytes: 256 * 1024,
        max_pieces_per_datagram: 16,
        timeout: Duration::from_millis(50),
        ..ReassemblyConfig::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed);
        let mut r = Reassembler::new(cfg.clone());
        let mut now = t0;
        for i in 0..20_000 {
            // Many spoofed sources and few idents, so fragments collide;
            // random offsets and lengths, mostly MF; two fill bytes, so
            // overlaps sometimes agree and sometimes not. And a quarter of
            // the fragments for a few datagrams, consistent with each other
            // (so they pile up pieces).
            let hot = rng.below(4) == 0;
            let src = if hot {
                Ipv4Addr::new(10, 1, 0, rng.below(2) as u8)
            } else {
                Ipv4Addr::from(0x0a00_0000 | rng.below(256) as u32)
            };
            let more = hot || rng.below(8) != 0;
            let len = if more {
                8 * (1 + rng.below(185))
            } else {
                1 + rng.below(1480)
            };
            let off = 8 * rng.below(65_515 / 8);
            let mut repr = Ipv4Repr::new(src, DST, IpProtocol::UDP, 64, len);
            repr.ident = if hot { 0 } else { rng.below(3) as u16 };
            repr.frag_offset = off as u16;
            repr.more_fragments = more;
            let header = vec![0x45; 20];
            let data = if hot {
                payload(off + len, 0)[off..].to_vec()
            } else {
                vec![rng.below(2) as u8; len]
            };
            let result = r.push(now, &repr, &header, &data);
            if let Err(e) = result {
                seen.insert(format!("{e:?}"));
            }
            r.check_invariants();
            assert!(r.memory_used() <= cfg.max_held_bytes, "seed {seed}, {i}");
            // Time mostly crawls (the cap is what limits), now and then
            // leaps (the timeout is).
            now += Duration::from_micros(rng.below(20) as u64);
            if rng.below(500) == 0 {
                now += Duration::from_millis(rng.below(100) as u64);
            }
            if i % 16 == 0 {
                r.poll(now, |_| {});
                r.check_invariants();
            }
        }
        let stats = r.stats().clone();
        assert!(stats.evicted > 0 && stats.timed_out > 0 && stats.discarded > 0);
        assert!(stats.peak_memory_used <= cfg.max_held_bytes);
        assert!(stats.peak_memory_used > cfg.max_held_bytes / 2);
        r.poll(now + cfg.timeout, |_| {});
        assert_empty(&r);
    }
    for e in [
        "OverlapConflict",
        "InconsistentLength",
        "TooManyPieces",
        "TooLong",
    ] {
        assert!(seen.contains(e), "{e} never happened: {seen:?}");
    }
}

#[test]
fn hostile_headers_and_configs_never_panic() {
    let now = Instant::now();
    let header = [0u8; 20];
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut repr = Ipv4Repr::new(SRC, DST, IpProtocol::UDP, 64, 8);
    repr.more_fragments = true;
    repr.header_len = usize::MAX;
    assert_eq!(
        r.push(now, &repr, &header, &[0; 8]),
        Err(ReassemblyError::TooLong)
    );
    // Offsets that are not multiples of 8 (no parsed header has them, but
    // a caller could build one) still overlap correctly.
    repr.header_len = 20;
    repr.frag_offset = 3;
    r.push(now, &repr, &header, &[1; 16]).unwrap();
    repr.frag_offset = 5;
    r.push(now, &repr, &header, &[1; 16]).unwrap();
    repr.frag_offset = 7;
    assert_eq!(
        r.push(now, &repr, &header, &[2; 16]),
        Err(ReassemblyError::OverlapConflict)
    );
    repr.frag_offset = u16::MAX;
    repr.more_fragments = false;
    assert_eq!(
        r.push(now, &repr, &header, &[0; 1]),
        Err(ReassemblyError::TooLong)
    );
    // An empty header, a whole datagram (offset 0, no MF): handed back,
    // nothing held.
    repr.frag_offset = 0;
    let d = r.push(now, &repr, &[], &[9; 40]).unwrap().expect("whole");
    assert_eq!(d.payload, vec![9; 40]);
    assert_empty(&r);
    // Extreme limits.
    for cfg in [
        ReassemblyConfig {
            max_held_bytes: 0,
            ..ReassemblyConfig::default()
        },
        ReassemblyConfig {
            max_pieces_per_datagram: 0,
            ..ReassemblyConfig::default()
        },
        ReassemblyConfig {
            max_pieces_per_datagram: usize::MAX,
            max_held_bytes: usize::MAX,
            max_datagram: usize::MAX,
            timeout: Duration::MAX,
        },
        ReassemblyConfig {
            timeout: Duration::ZERO,
            max_datagram: 0,
            ..ReassemblyConfig::default()
        },
    ] {
        let mut r = Reassembler::new(cfg);
        let data = payload(100_000, 1);
        for (off, len, more) in [(8, 99_992, false), (0, 8, true), (0, 16, true)] {
            let mut repr = Ipv4Repr::new(SRC, DST, IpProtocol::UDP, 64, len);
            repr.frag_offset = off as u16;
            repr.more_fragments = more;
            let _ = r.push(now, &repr, &header, &data[off..off + len]);
            r.check_invariants();
        }
        let _ = r.poll_at();
        r.poll(now + Duration::from_secs(1), |_| {});
        r.check_invariants();
    }
}
