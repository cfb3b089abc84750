use super::*;

#[test]
fn transfer_work_splits_by_bank() {
    let w = transfer_work((1, "alice"), (2, "bob"), 30).expect("work");
    assert_eq!(w.len(), 2);
    assert_eq!(
        BankOp::decode(&w[0].1).expect("decode"),
        vec![BankOp {
            account: "alice".into(),
            delta: -30
        }]
    );
    assert_eq!((w[0].0, w[1].0), (1, 2));
    let same = transfer_work((1, "alice"), (1, "carol"), 5).expect("work");
    assert_eq!(same.len(), 1);
    assert_eq!(BankOp::decode(&same[0].1).expect("decode").len(), 2);
    assert!(transfer_work((1, "alice"), (1, "alice"), 5).is_err());
    assert!(transfer_work((1, "alice"), (2, "bob"), 0).is_err());
    assert!(transfer_work((1, "alice"), (2, "bob"), u64::MAX).is_err());
}

#[test]
fn only_durable_outcomes_are_reported() {
    let tx = |seq| TxId {
        coordinator: 0,
        seq,
    };
    let log = [
        LogRecord::Begin {
            tx: tx(1),
            participants: vec![1, 2],
            key: None,
        },
        LogRecord::Global {
            tx: tx(1),
            commit: true,
        },
        LogRecord::Begin {
            tx: tx(2),
            participants: vec![1, 2],
            key: None,
        },
    ];
    let d = DurableOutcomes::from_log(Role::Coordinator, &log);
    assert_eq!((d.get(tx(1)), d.get(tx(2))), (Some(true), None));
    // Decided in memory, not yet synced: not reported.
    assert_eq!(
        d.overlay(tx(2), coord_label(CoordState::Commit)),
        (tx(2), None, "SYNCING".to_string())
    );
    d.record(tx(2), true);
    assert_eq!(
        d.overlay(tx(2), coord_label(CoordState::Commit)),
        (tx(2), Some(true), "COMMIT~".to_string())
    );
    let p = DurableOutcomes::from_log(Role::Participant, &log);
    assert_eq!(
        p.get(tx(1)),
        None,
        "a participant reads only its own outcomes"
    );
}

#[test]
fn labels_mark_unacknowledged_decisions() {
    assert_eq!(coord_label(CoordState::Wait), (None, "WAIT"));
    assert_eq!(coord_label(CoordState::Commit), (Some(true), "COMMIT~"));
    assert_eq!(
        coord_label(CoordState::Ended { committed: false }),
        (Some(false), "ABORT")
    );
    assert_eq!(part_label(PartState::Blocked), (None, "BLOCKED"));
}
