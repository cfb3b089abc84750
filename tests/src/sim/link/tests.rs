use super::*;

fn arrivals(d: &mut Direction, now: Instant, len: usize) -> Vec<Arrival> {
    let mut out = Vec::new();
    d.enter(now, &vec![0u8; len], &mut out);
    out
}

fn flip(a: &Arrival) -> Option<BitFlip> {
    match a.frame {
        Carried::Entering(flip) => flip,
        Carried::Held(_) => panic!("a held frame"),
    }
}

#[test]
fn clean_link_is_latency_only() {
    let t0 = Instant::now();
    let mut d = Direction::new(LinkConfig::default(), 1);
    let a = arrivals(&mut d, t0, 100);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].at, t0 + Duration::from_millis(1));
    assert_eq!(flip(&a[0]), None);
}

#[test]
fn serialises_fifo_and_drops_at_the_tail() {
    let t0 = Instant::now();
    // 8 Mbit/s: 1000 bytes take 1 ms.
    let cfg = LinkConfig::bottleneck(8_000_000, Duration::ZERO, 2500);
    let mut d = Direction::new(cfg, 1);
    let ms = Duration::from_millis(1);
    assert_eq!(arrivals(&mut d, t0, 1000)[0].at, t0 + ms);
    assert_eq!(arrivals(&mut d, t0, 1000)[0].at, t0 + 2 * ms);
    // 2000 queued + 1000 > 2500: dropped.
    assert!(arrivals(&mut d, t0, 1000).is_empty());
    assert_eq!(d.stats.queue_drops, 1);
    // Half a millisecond later the first frame is still on the wire.
    assert!(arrivals(&mut d, t0 + ms / 2, 1000).is_empty());
    // Once it has left, there is room again.
    let a = arrivals(&mut d, t0 + ms, 1000);
    assert_eq!(a[0].at, t0 + 3 * ms);
    assert_eq!(d.stats.queue_drops, 2);
    assert_eq!(d.stats.max_queue_bytes, 2000);
    // An idle link takes any frame.
    let later = t0 + Duration::from_secs(1);
    assert_eq!(arrivals(&mut d, later, 9000).len(), 1);
}

#[test]
fn jitter_keeps_order_and_reorder_breaks_it() {
    let t0 = Instant::now();
    let cfg = LinkConfig::default().with_jitter(Duration::from_millis(5));
    let mut d = Direction::new(cfg, 3);
    let mut last = t0;
    for i in 0..1000u32 {
        let a = arrivals(&mut d, t0 + Duration::from_micros(i.into()), 60);
        assert!(a[0].at >= last);
        last = a[0].at;
    }
    // Reordering: a held-back frame arrives right behind the one that
    // overtook it, never ahead of it.
    let cfg = LinkConfig::default().with_reorder(0.5);
    let mut d = Direction::new(cfg, 3);
    let mut out = Vec::new();
    for i in 0..100u32 {
        d.enter(
            t0 + Duration::from_micros(i.into()),
            &i.to_be_bytes(),
            &mut out,
        );
    }
    assert!(out.windows(2).all(|w| w[0].at <= w[1].at));
    let overtaken = out
        .iter()
        .filter(|a| matches!(a.frame, Carried::Held(_)))
        .count() as u64;
    assert_eq!(overtaken, d.stats.reordered);
    assert!(d.stats.reordered > 20);
    // A frame nothing overtakes arrives at its deadline, 2 * latency +
    // 1 ms after it left.
    let mut d = Direction::new(LinkConfig::default().with_reorder(1.0), 3);
    d.enter(t0, b"held", &mut out);
    let deadline = t0 + Duration::from_millis(3);
    assert_eq!(d.deadline(), Some(deadline));
    out.clear();
    d.expire(deadline - Duration::from_nanos(1), &mut out);
    assert!(out.is_empty());
    d.expire(deadline, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].at, deadline);
    assert_eq!(d.stats.reordered, 0, "nothing overtook it");
}

#[test]
fn corruption_spares_the_ethernet_header() {
    let t0 = Instant::now();
    let mut d = Direction::new(LinkConfig::default().with_corrupt(1.0), 9);
    for _ in 0..1000 {
        let flip = flip(&arrivals(&mut d, t0, 20)[0]).expect("corrupted");
        assert!((14..20).contains(&flip.offset));
        assert_eq!(flip.mask.count_ones(), 1);
    }
}

#[test]
#[should_panic(expected = "LinkConfig.loss = 1.5")]
fn bad_probability_is_refused() {
    Direction::new(LinkConfig::lossy(1.5), 0);
}
