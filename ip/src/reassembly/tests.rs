use super::*;
use crate::IpProtocol;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A tiny deterministic generator (xorshift64*), so tests replay exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
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

fn push(r: &mut Reassembler, now: Instant, f: &Frag) -> Result<Option<Datagram>, ReassemblyError> {
    r.push(now, &f.repr, &f.header, &f.data)
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
            if let Some(d) = push(&mut r, now, &frags[i]).unwrap() {
                delivered.push(d);
            }
        }
        assert_eq!(delivered.len(), 1, "order {perm:?}");
        let d = &delivered[0];
        assert_eq!(d.payload, data, "order {perm:?}");
        assert_eq!(d.repr.payload_len, data.len());
        assert!(!d.repr.is_fragment());
        assert_eq!(r.held_bytes(), 0);
        assert_eq!(r.partial_count(), 0);
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
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let count = 1 + rng.below(4);
        let (datagrams, order) = interleaved(&mut rng, count);
        let mut delivered = vec![0; count];
        for f in &order {
            if let Some(d) = push(&mut r, now, f).unwrap() {
                let idx = (d.repr.ident - 100) as usize;
                assert_eq!(d.payload, datagrams[idx], "seed {seed}");
                delivered[idx] += 1;
            }
        }
        assert!(
            delivered.iter().all(|&n| n == 1),
            "seed {seed}: {delivered:?}"
        );
        assert_eq!(r.partial_count(), 0, "seed {seed}");
        assert_eq!(r.held_bytes(), 0, "seed {seed}");
    }
}

#[test]
fn late_duplicates_never_yield_corrupt_data() {
    let now = Instant::now();
    let mut rng = Rng(7);
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
    assert_eq!(r.partial_count(), 0);
    assert_eq!(r.held_bytes(), 0);
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
    assert_eq!(r.held_bytes(), 0);
    assert_eq!(r.partial_count(), 0);
    assert_eq!(r.stats().timed_out, 2);
    assert_eq!(r.poll_at(), None);
}

#[test]
fn flood_of_incomplete_fragments_stays_under_the_cap() {
    let now = Instant::now();
    let cfg = ReassemblyConfig::default();
    let mut r = Reassembler::new(cfg.clone());
    let mut rng = Rng(42);
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
        assert!(r.held_bytes() <= cfg.max_held_bytes, "after {i} fragments");
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
    assert_eq!(r.held_bytes(), 0);
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
