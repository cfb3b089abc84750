use std::time::{Duration, Instant};

use super::*;

#[test]
fn the_table_keeps_one_deadline_per_timer_and_reports_the_earliest() {
    let t0 = Instant::now();
    let mut table = TimerTable::default();
    assert_eq!(table.next_timeout(), None);
    table.set(Timer::KeepAlive, t0 + Duration::from_secs(7200));
    table.set(Timer::Retransmit, t0 + Duration::from_secs(1));
    table.set(Timer::Retransmit, t0 + Duration::from_secs(2));
    assert_eq!(
        table.get(Timer::Retransmit),
        Some(t0 + Duration::from_secs(2))
    );
    assert!(table.is_set(Timer::KeepAlive) && !table.is_set(Timer::Tlp));
    assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(2)));
    assert!(!table.is_expired(Timer::Retransmit, t0 + Duration::from_secs(1)));
    assert!(table.is_expired(Timer::Retransmit, t0 + Duration::from_secs(2)));
    table.stop(Timer::Retransmit);
    assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(7200)));
    table.set_or_stop(Timer::KeepAlive, None);
    assert_eq!(table.next_timeout(), None);
    assert!(!table.is_expired(Timer::KeepAlive, t0 + Duration::from_secs(9999)));
}

#[test]
fn every_timer_has_its_own_slot() {
    let t0 = Instant::now();
    let mut table = TimerTable::default();
    for (i, timer) in Timer::VALUES.into_iter().enumerate() {
        assert_eq!(timer as usize, i, "VALUES lists the timers in order");
        table.set(timer, t0 + Duration::from_secs(i as u64));
    }
    for (i, timer) in Timer::VALUES.into_iter().enumerate() {
        assert_eq!(table.get(timer), Some(t0 + Duration::from_secs(i as u64)));
    }
}
