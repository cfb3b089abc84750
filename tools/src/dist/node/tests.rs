use super::*;
use rpc::twopc::TxSnapshot;

fn tx(seq: u64) -> TxId {
    TxId {
        coordinator: 0,
        seq,
        nonce: 0xa11ce,
    }
}

#[test]
fn accounts_parse() {
    assert_eq!(
        parse_accounts("alice=100, carol=5").expect("parse"),
        vec![("alice".to_string(), 100), ("carol".to_string(), 5)]
    );
    assert!(parse_accounts("alice").is_err());
    assert!(parse_accounts("alice=-1").is_err());
    assert!(parse_accounts("alice=1,alice=2").is_err());
    assert!(parse_accounts("").is_err());
    assert!(parse_accounts("a:b=1").is_err());
}

#[test]
fn recovery_finds_transactions_in_doubt() {
    let coord = [
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
        LogRecord::Begin {
            tx: tx(3),
            participants: vec![1, 2],
            key: None,
        },
        LogRecord::Global {
            tx: tx(3),
            commit: false,
        },
        LogRecord::End { tx: tx(3) },
    ];
    let r = Recovery::of(Role::Coordinator, &coord);
    assert_eq!(r.in_doubt, vec![tx(2)]);
    assert_eq!(r.unacknowledged, vec![tx(1)]);
    assert!(r.line().contains("in_doubt=1 [0.2.000000]"), "{}", r.line());

    let part = [
        LogRecord::Snapshot {
            state: vec![],
            txs: vec![TxSnapshot {
                tx: tx(1),
                decided: None,
                participants: vec![1, 2],
                work: vec![],
            }],
            watermarks: vec![],
        },
        LogRecord::Ready {
            tx: tx(2),
            participants: vec![1, 2],
            work: vec![],
        },
        LogRecord::Local {
            tx: tx(2),
            commit: true,
        },
        LogRecord::Ready {
            tx: tx(4),
            participants: vec![1, 2],
            work: vec![],
        },
    ];
    let r = Recovery::of(Role::Participant, &part);
    assert_eq!(r.in_doubt, vec![tx(1), tx(4)]);
    assert!(r.unacknowledged.is_empty());
}

#[test]
fn crash_hooks_need_the_testing_flag() {
    let spec: CrashSpec = "ready-logged".parse().expect("spec");
    let e = crash_spec(Some(spec), None, false, Role::Participant).expect_err("no --testing");
    assert!(e.0.contains("--testing"), "{}", e.0);
    let e = crash_spec(None, Some("ready-logged".into()), false, Role::Participant)
        .expect_err("the variable too");
    assert!(e.0.contains("--testing"), "{}", e.0);
    assert_eq!(
        crash_spec(None, Some(String::new()), false, Role::Participant).expect("empty is unset"),
        None
    );
    assert_eq!(
        crash_spec(Some(spec), None, true, Role::Participant).expect("with --testing"),
        Some(spec)
    );
    assert_eq!(
        crash_spec(None, Some("ready-logged:2".into()), true, Role::Participant)
            .expect("from the variable")
            .map(|s| s.nth),
        Some(2)
    );
    assert!(crash_spec(Some(spec), None, true, Role::Coordinator).is_err());
}
