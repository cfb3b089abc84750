use super::*;

#[test]
fn delivery_rate_is_bytes_over_an_interval_of_at_least_one_rtt() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let rtt = Duration::from_millis(20);
    let mut r = DeliveryRate::default();
    // 100 kB every 10 ms: 10 MB/s, sampled every 20 ms.
    for i in 0..=10u64 {
        r.on_delivered(ms(10 * i), 100_000 * i, rtt);
    }
    assert_eq!(r.rate(), 10_000_000);
    // Nothing delivered for a whole interval (the next ACK comes late):
    // the rate of that interval is what it carried.
    r.on_delivered(ms(200), 1_000_000 + 20_000, rtt);
    assert_eq!(r.rate(), 20_000 * 1000 / 100);
}

#[test]
fn no_rate_before_the_first_interval_ends() {
    let t0 = Instant::now();
    let rtt = Duration::from_millis(50);
    let mut r = DeliveryRate::default();
    r.on_delivered(t0, 50_000, rtt);
    r.on_delivered(t0 + Duration::from_millis(10), 90_000, rtt);
    assert_eq!(r.rate(), 0);
    // A reneged SACK makes "delivered" fall below the interval's start:
    // a zero sample, no underflow.
    r.on_delivered(t0 + Duration::from_millis(60), 40_000, rtt);
    assert_eq!(r.rate(), 0);
}
