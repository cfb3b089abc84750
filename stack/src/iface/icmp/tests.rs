use super::*;
use std::time::Duration;

#[test]
fn token_bucket_limits_rate_and_burst() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(100, 5, t0);
    let burst = (0..20).filter(|_| b.take(t0)).count();
    assert_eq!(burst, 5);
    // 100/s: one token per 10 ms.
    assert!(!b.take(t0 + Duration::from_millis(5)));
    assert!(b.take(t0 + Duration::from_millis(11)));
    let later = t0 + Duration::from_secs(10);
    let refilled = (0..20).filter(|_| b.take(later)).count();
    assert_eq!(refilled, 5, "never more than the burst");
}
