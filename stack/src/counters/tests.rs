use super::*;

#[test]
fn names_are_unique() {
    let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), DropReason::COUNT);
}

#[test]
fn counts_and_displays() {
    let mut c = Counters::default();
    c.drop(DropReason::Ipv4BadChecksum);
    c.drop(DropReason::Ipv4BadChecksum);
    c.drop_n(DropReason::ArpUnresolved, 3);
    assert_eq!(c.drops(DropReason::Ipv4BadChecksum), 2);
    assert_eq!(c.total_drops(), 5);
    let text = c.to_string();
    assert!(text.contains("ipv4: bad header checksum"));
    assert!(!text.contains("ethernet: truncated frame"));
}

#[test]
fn entries_have_unique_stable_snake_case_names() {
    let mut c = Counters {
        frames_in: 7,
        ..Counters::default()
    };
    c.drop_n(DropReason::TcpBadChecksum, 4);
    c.drop(DropReason::Ipv4TtlZero);
    let entries = c.entries();
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert!(names.iter().all(|n| {
        n.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    }));
    let value = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.value);
    assert_eq!(value("frames_in"), Some(7));
    assert_eq!(value("drop_tcp_bad_checksum"), Some(4));
    assert_eq!(value("drop_ipv4_ttl_zero"), Some(1));
    assert_eq!(value("drop_eth_ieee8023"), Some(0));
    assert_eq!(value("drops_total"), Some(5));
    assert!(entries.iter().any(|e| e.name == "memory_used" && e.gauge));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.name.starts_with("drop_"))
            .count(),
        DropReason::COUNT
    );
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n);
}
