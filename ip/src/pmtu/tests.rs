use super::*;

const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

#[test]
fn lowers_never_raises_and_expires() {
    let t0 = Instant::now();
    let mut c = PmtuCache::new();
    assert_eq!(c.update(t0, DST, 1400, 1500, 1500), Some(1400));
    assert_eq!(c.get(t0, DST), Some(1400));
    assert_eq!(c.update(t0, DST, 1450, 1500, 1500), None, "never raised");
    assert_eq!(c.update(t0, DST, 1200, 1400, 1500), Some(1200));
    assert_eq!(c.get(t0 + Duration::from_secs(601), DST), None, "expired");
}

#[test]
fn never_below_576() {
    let t0 = Instant::now();
    let mut c = PmtuCache::new();
    assert_eq!(c.update(t0, DST, 100, 1500, 1500), Some(576));
    assert_eq!(c.update(t0, DST, 68, 1500, 1500), None);
    assert_eq!(c.get(t0, DST), Some(576));
}

#[test]
fn zero_mtu_uses_plateaus() {
    let t0 = Instant::now();
    let mut c = PmtuCache::new();
    assert_eq!(c.update(t0, DST, 0, 1500, 9000), Some(1492));
    assert_eq!(c.update(t0, DST, 0, 1492, 9000), Some(1006));
}
