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
