use super::*;

fn tx(seq: u64) -> TxId {
    TxId {
        coordinator: 0,
        seq,
        nonce: 0xa11ce,
    }
}

fn report(name: &str, id: NodeId, balances: &[(&str, u64)], txs: &[(u64, &str)]) -> NodeReport {
    let role = if id == 0 {
        "coordinator"
    } else {
        "participant"
    };
    NodeReport {
        name: name.into(),
        id,
        role: role.into(),
        balances: balances.iter().map(|(a, b)| (a.to_string(), *b)).collect(),
        locked: 0,
        txs: txs
            .iter()
            .map(|(s, l)| {
                let d = match l.trim_end_matches('~') {
                    "COMMIT" => Some(true),
                    "ABORT" => Some(false),
                    _ => None,
                };
                (tx(*s), (d, l.to_string()))
            })
            .collect(),
        forgotten_below: 0,
        counters: vec![("log_bytes".into(), 100)],
    }
}

fn healthy() -> Vec<NodeReport> {
    vec![
        report("coordinator", 0, &[], &[(1, "COMMIT"), (2, "ABORT")]),
        report(
            "bank-1",
            1,
            &[("alice", 70)],
            &[(1, "COMMIT"), (2, "ABORT")],
        ),
        report("bank-2", 2, &[("bob", 80)], &[(1, "COMMIT")]),
    ]
}

#[test]
fn consistent_run_passes() {
    let reported = parse_reported(&format!(
        "{} COMMIT\nnoise\n{} ABORT\n{} UNDECIDED\ntx 0.4 COMMIT\n",
        tx(1),
        tx(2),
        tx(3)
    ));
    assert_eq!(reported.len(), 2);
    let r = healthy();
    assert!(settled(&r));
    let v = judge(&r, Some(150), &reported);
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.committed, v.aborted), (1, 1));
    let text = render(&r, &reported);
    assert!(text.contains("  0.1.000000     COMMIT"), "{text}");
    assert!(text.contains("coordinator log_bytes=100"), "{text}");
    assert!(render_verdict(&v).contains("PASS"));
}

#[test]
fn money_created_or_destroyed_fails() {
    let v = judge(&healthy(), Some(151), &BTreeMap::new());
    assert!(!v.conserved());
    assert!(!v.ok());
}

#[test]
fn disagreement_is_found_also_with_the_client() {
    let mut r = healthy();
    r[2].txs.insert(tx(2), (Some(true), "COMMIT".into()));
    let v = judge(&r, Some(150), &BTreeMap::new());
    assert_eq!(v.disagreements.len(), 1, "{v:?}");
    assert_eq!(
        v.disagreements[0],
        format!(
            "{}: ABORT at coordinator, bank-1 but COMMIT at bank-2",
            tx(2)
        )
    );
    let told = BTreeMap::from([(tx(1), false)]);
    let v = judge(&healthy(), Some(150), &told);
    assert_eq!(v.disagreements.len(), 1);
    assert!(v.disagreements[0].contains("client"));
}

#[test]
fn undecided_unacknowledged_locked_and_unknown_fail() {
    let mut r = healthy();
    r[1].txs.insert(tx(3), (None, "READY".into()));
    r[1].locked = 1;
    assert!(!settled(&r));
    let v = judge(&r, Some(150), &BTreeMap::new());
    assert_eq!(v.undecided.len(), 1);
    assert_eq!(v.other.len(), 2, "lock held, tx 0.3 unknown to coordinator");
    // Below the coordinator's watermark, unknown means forgotten (ended
    // everywhere), not missing.
    let mut r = healthy();
    r[0].forgotten_below = 1;
    r[0].txs.remove(&tx(0));
    let told = BTreeMap::from([(tx(0), true)]);
    let v = judge(&r, Some(150), &told);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.forgotten, 1);
    assert!(render_verdict(&v).contains("1 more ended everywhere and forgotten"));
    let mut r = healthy();
    r[0].txs.insert(tx(1), (Some(true), "COMMIT~".into()));
    assert!(!settled(&r));
    assert!(!judge(&r, None, &BTreeMap::new()).ok());
}

#[test]
fn parses_transaction_ids() {
    assert_eq!(parse_tx("0.17.a11ce"), Some(tx(17)));
    assert_eq!(parse_tx(&tx(17).to_string()), Some(tx(17)));
    assert_eq!(
        parse_tx("tx 0.17"),
        None,
        "the random bits are part of the id"
    );
    assert_eq!(parse_tx("0"), None);
    assert_eq!(parse_tx("a.b"), None);
}
