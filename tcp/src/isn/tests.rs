use super::*;
use std::net::Ipv4Addr;
use std::time::Duration;

#[test]
fn keyed_per_tuple_and_increasing_with_time() {
    let t0 = Instant::now();
    let g = IsnGenerator::new((1, 2), t0);
    let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000);
    let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
    let c = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 81);
    let x = g.isn(t0, a, b);
    assert_ne!(x, g.isn(t0, a, c), "tuples get unrelated ISNs");
    assert_eq!(g.isn(t0 + Duration::from_millis(4), a, b).diff(x), 1000);
    let other_key = IsnGenerator::new((3, 4), t0);
    assert_ne!(x, other_key.isn(t0, a, b));
}

#[test]
fn timestamp_offset_per_address_pair() {
    let g = IsnGenerator::new((1, 2), Instant::now());
    let (a, b, c) = (
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 3),
    );
    assert_eq!(g.ts_offset(a, b), g.ts_offset(a, b));
    assert_ne!(g.ts_offset(a, b), g.ts_offset(a, c));
    assert_ne!(
        g.ts_offset(a, b),
        IsnGenerator::new((3, 4), Instant::now()).ts_offset(a, b)
    );
}
