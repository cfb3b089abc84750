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
        nonce: 0xa11ce,
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

#[test]
fn crash_at_is_refused_and_counted_without_testing() {
    use rpc::twopc::rpc::Node;
    use rpc::twopc::{MemWal, ParticipantConfig};
    let connect = |_peer: NodeId| std::net::TcpStream::connect("127.0.0.1:9");
    let node: Node<Bank> = Node::start(
        1,
        MemWal::new(),
        None,
        Some((Bank::new([("alice", 1)]), ParticipantConfig::default())),
        connect,
        |_| {},
    )
    .expect("node");
    let node = Arc::new(node);
    let ctx = CallContext {
        now: std::time::Instant::now(),
        client_id: 1,
        request_id: 1,
        deadline: None,
        peer: None,
    };
    let control = |testing| ControlImpl {
        node: Arc::clone(&node),
        role: Role::Participant,
        plan: CrashPlan::new(None),
        durable: Arc::default(),
        testing,
        crash_refused: Arc::default(),
        rpc_stats: Arc::default(),
    };
    let mut off = control(false);
    let e = off
        .crash_at(&ctx, "ready-logged".into())
        .expect_err("refused");
    assert!(e.contains("--testing"), "{e}");
    assert_eq!(off.plan.armed(), None);
    let status = off.status(&ctx);
    assert!(
        status.6.contains(&("crash_at_refused".to_string(), 1)),
        "{:?}",
        status.6
    );
    // Once the service knows its server's counters, status shows the
    // authentication failures too.
    let _ = off.rpc_stats.set(Box::new(|| rpc::ServerStats {
        auth_failed: 3,
        bad_mac: 2,
        ..Default::default()
    }));
    let status = off.status(&ctx);
    for (name, value) in [("rpc_auth_failed", 3), ("rpc_bad_mac", 2)] {
        assert!(
            status.6.contains(&(name.to_string(), value)),
            "{name}: {:?}",
            status.6
        );
    }
    let mut on = control(true);
    on.crash_at(&ctx, "ready-logged:3".into()).expect("armed");
    assert_eq!(on.plan.armed().map(|s| s.nth), Some(3));
}

#[test]
fn durable_outcomes_are_bounded() {
    let d = DurableOutcomes::default();
    let tx = |seq| TxId {
        coordinator: 0,
        seq,
        nonce: 1,
    };
    let n = DurableOutcomes::CAPACITY as u64 + 10;
    for seq in 0..n {
        d.record(tx(seq), seq % 2 == 0);
    }
    assert_eq!(d.get(tx(0)), None, "the oldest are forgotten");
    assert_eq!(d.get(tx(9)), None);
    assert_eq!(d.get(tx(10)), Some(true));
    assert_eq!(d.get(tx(n - 1)), Some(false));
}
