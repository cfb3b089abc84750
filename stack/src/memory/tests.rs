use super::*;

#[test]
fn states_follow_the_thresholds_with_hysteresis() {
    let mut b = MemoryBudget::new(1000);
    assert_eq!(b.set(Component::Tcp, 700), None);
    assert_eq!(b.set(Component::Udp, 60), Some(MemoryPressure::Normal));
    assert_eq!(b.state(), MemoryPressure::Pressure);
    assert_eq!(b.set(Component::Udp, 0), None, "above 1/2 stays");
    assert_eq!(
        b.recharge(Component::Tcp, 700, 1000),
        Some(MemoryPressure::Pressure)
    );
    assert_eq!(b.state(), MemoryPressure::Exhausted);
    assert_eq!(b.recharge(Component::Tcp, 1000, 880), None, "above 7/8");
    assert_eq!(
        b.recharge(Component::Tcp, 880, 800),
        Some(MemoryPressure::Exhausted)
    );
    assert_eq!(b.state(), MemoryPressure::Pressure);
    assert_eq!(
        b.recharge(Component::Tcp, 800, 400),
        Some(MemoryPressure::Pressure)
    );
    assert_eq!(b.state(), MemoryPressure::Normal);
    let s = b.stats();
    assert_eq!((s.used, s.peak, s.tcp), (400, 1000, 400));
    assert_eq!((s.pressure_events, s.exhausted_events), (1, 1));
    assert!(b.would_exceed(601) && !b.would_exceed(600));
}
