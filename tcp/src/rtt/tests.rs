use super::*;

const MS: Duration = Duration::from_millis(1);

#[test]
fn rfc6298_formulas() {
    let mut e = RttEstimator::new(Duration::from_millis(200), Duration::from_secs(60));
    assert_eq!(e.rto(), Duration::from_secs(1));
    e.sample(100 * MS);
    assert_eq!(e.srtt(), Some(100 * MS));
    assert_eq!(e.rttvar(), 50 * MS);
    assert_eq!(e.rto(), 300 * MS);
    e.sample(200 * MS);
    // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
    assert_eq!(e.rttvar(), Duration::from_micros(62_500));
    assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
    assert_eq!(e.rto(), Duration::from_micros(362_500));
    assert_eq!(e.min_rtt(), Some(100 * MS));
}

#[test]
fn bounds_and_backoff() {
    let mut e = RttEstimator::new(Duration::from_millis(200), Duration::from_secs(60));
    e.sample(Duration::from_micros(50));
    assert_eq!(e.rto(), Duration::from_millis(200), "minimum RTO");
    for _ in 0..20 {
        e.back_off();
    }
    assert_eq!(e.rto(), Duration::from_secs(60), "maximum RTO");
    assert_eq!(e.backoffs(), 20);
    e.sample(Duration::from_micros(50));
    assert_eq!(e.backoffs(), 0);
}
