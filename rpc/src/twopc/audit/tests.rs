use super::*;
use crate::twopc::{ResourceManager, TxSnapshot};

const T1: TxId = TxId {
    coordinator: 0,
    seq: 1,
    nonce: 0x5eed,
};
const T2: TxId = TxId {
    coordinator: 0,
    seq: 2,
    nonce: 0x5eed,
};

fn ops(list: &[(&str, i64)]) -> Vec<u8> {
    BankOp::work(list)
}

fn transfer(amount: i64) -> Work {
    vec![
        (1, ops(&[("alice", -amount)])),
        (2, ops(&[("bob", amount)])),
    ]
}

/// A participant that went through `outcomes` (tx, work, commit) with
/// every record durable.
fn participant(node: NodeId, initial: Bank, outcomes: &[(TxId, &Work, bool)]) -> ParticipantEnd {
    let mut bank = initial.clone();
    let mut durable = Vec::new();
    let mut transactions = BTreeMap::new();
    for &(tx, work, commit) in outcomes {
        let share = &work.iter().find(|(n, _)| *n == node).expect("share").1;
        bank.prepare(tx, share).expect("prepare");
        durable.push(LogRecord::Ready {
            tx,
            participants: vec![1, 2],
            work: share.clone(),
        });
        if commit {
            bank.commit(tx, share);
        } else {
            bank.abort(tx, share);
        }
        durable.push(LogRecord::Local { tx, commit });
        let state = if commit {
            PartState::Committed
        } else {
            PartState::Aborted
        };
        transactions.insert(tx, state);
    }
    ParticipantEnd {
        initial,
        bank,
        transactions,
        durable,
        blocked: BTreeSet::new(),
        watermarks: BTreeMap::new(),
    }
}

/// T1 (30) committed, T2 (5) aborted, everything reported.
fn healthy() -> RunEnd {
    let (w1, w2) = (transfer(30), transfer(5));
    let outcomes = [(T1, &w1, true), (T2, &w2, false)];
    let mut run = RunEnd::default();
    run.participants.insert(
        1,
        participant(1, Bank::new([("alice", 100), ("carol", 1)]), &outcomes),
    );
    run.participants
        .insert(2, participant(2, Bank::new([("bob", 50)]), &outcomes));
    run.work = BTreeMap::from([(T1, w1.clone()), (T2, w2.clone())]);
    run.coordinator = BTreeMap::from([
        (T1, CoordState::Ended { committed: true }),
        (T2, CoordState::Ended { committed: false }),
    ]);
    for node in 0..3 {
        run.reported
            .insert(node, BTreeMap::from([(T1, true), (T2, false)]));
    }
    run
}

fn findings(run: &RunEnd) -> Vec<Finding> {
    audit(run, Instant::now()).findings
}

#[test]
fn a_correct_run_is_clean() {
    let run = healthy();
    let report = audit(&run, Instant::now());
    assert!(report.is_clean(), "{report}");
    assert_eq!(run.participants[&1].bank.balance("alice"), Some(70));
    assert!(run.decision(T1) && !run.decision(T2));
}

#[test]
fn an_unknown_transaction_counts_as_aborted() {
    // The BEGIN never became durable: participants know nothing or ABORT.
    let mut run = healthy();
    let t3 = TxId { seq: 3, ..T1 };
    run.work.insert(t3, transfer(1));
    assert!(findings(&run).is_empty());
    run.participants
        .get_mut(&2)
        .unwrap()
        .transactions
        .insert(t3, PartState::Aborted);
    assert!(findings(&run).is_empty());
    // ... but nobody may have reported COMMIT.
    run.reported.get_mut(&1).unwrap().insert(t3, true);
    let f = findings(&run);
    assert!(
        matches!(&f[..], [Finding::Disagreement(d)] if d.tx == t3),
        "{f:?}"
    );
}

#[test]
fn disagreements_name_every_side() {
    let mut run = healthy();
    run.reported.get_mut(&2).unwrap().insert(T2, true);
    let f = findings(&run);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].to_string(),
        "tx 0.2.00000000000000000000000000005eed: ABORT at coordinator, participant 1, participant 2, node 0 (reported), \
         node 1 (reported) but COMMIT at node 2 (reported)"
    );
    assert_eq!(disagreement(T1, [("a", true), ("b", true)]), None);
    assert_eq!(disagreement(T1, Vec::<(String, bool)>::new()), None);
}

#[test]
fn unfinished_undecided_and_missing_are_found() {
    let mut run = healthy();
    run.coordinator.insert(T1, CoordState::Commit);
    run.participants
        .get_mut(&2)
        .unwrap()
        .transactions
        .insert(T2, PartState::Ready);
    run.participants
        .get_mut(&1)
        .unwrap()
        .transactions
        .remove(&T1);
    let f = findings(&run);
    assert!(f.contains(&Finding::Unfinished {
        tx: T1,
        state: CoordState::Commit
    }));
    assert!(f.contains(&Finding::Undecided {
        node: 2,
        tx: T2,
        state: PartState::Ready
    }));
    assert!(f.contains(&Finding::NoRecord { node: 1, tx: T1 }));
    assert_eq!(f.len(), 3, "{f:?}");
}

#[test]
fn balances_must_be_initial_plus_committed_work() {
    // Bank 2 also applied the aborted T2: its balances are wrong and
    // money was created.
    let mut run = healthy();
    run.participants.get_mut(&2).unwrap().bank = Bank::new([("bob", 85)]);
    let f = findings(&run);
    assert!(
        f.iter()
            .any(|f| matches!(f, Finding::Balances { node: 2, .. }))
    );
    assert!(f.contains(&Finding::MoneyNotConserved {
        initial: 151,
        now: 156
    }));
    // And its log no longer explains its state.
    assert!(
        f.iter()
            .any(|f| matches!(f, Finding::Recovery { node: 2, .. }))
    );
    assert_eq!(f.len(), 3, "{f:?}");
    let expected = expected_balances(&Bank::new([("bob", 50)]), [&ops(&[("bob", 30)])[..]]);
    assert_eq!(expected, Some(BTreeMap::from([("bob".to_string(), 80)])));
    assert_eq!(
        expected_balances(&Bank::default(), [&[0xff, 0xff][..]]),
        None
    );
}

#[test]
fn malformed_work_and_locks_are_found() {
    let mut run = healthy();
    run.work.get_mut(&T1).unwrap()[0].1 = vec![0xff, 0xff];
    run.participants
        .get_mut(&1)
        .unwrap()
        .bank
        .prepare(T2, &ops(&[("carol", -1)]))
        .unwrap();
    let f = findings(&run);
    assert!(f.contains(&Finding::MalformedWork { node: 1, tx: T1 }));
    assert!(f.contains(&Finding::Locked {
        node: 1,
        accounts: 1
    }));
}

#[test]
fn blocks_need_every_participant_ready() {
    let mut run = healthy();
    run.participants.get_mut(&1).unwrap().blocked.insert(T1);
    assert!(findings(&run).is_empty(), "both logged READY");
    // Participant 2 checkpointed: its READY is in a snapshot.
    let p2 = run.participants.get_mut(&2).unwrap();
    p2.durable = vec![LogRecord::Snapshot {
        state: p2.bank.snapshot(),
        txs: vec![
            TxSnapshot {
                tx: T1,
                decided: Some(true),
                participants: vec![1, 2],
                work: vec![],
            },
            TxSnapshot {
                tx: T2,
                decided: Some(false),
                participants: vec![1, 2],
                work: vec![],
            },
        ],
        watermarks: vec![],
    }];
    assert!(findings(&run).is_empty(), "READY in a snapshot");
    run.participants.get_mut(&1).unwrap().blocked.insert(T2);
    let f = findings(&run);
    assert!(
        matches!(&f[..], [Finding::UnjustifiedBlock { node: 1, tx: T2, reason }]
            if reason.contains("participant 2")),
        "{f:?}"
    );
    let unknown = TxId { seq: 9, ..T1 };
    run.participants.get_mut(&1).unwrap().blocked = BTreeSet::from([unknown]);
    assert!(matches!(
        &findings(&run)[..],
        [Finding::UnjustifiedBlock { tx, .. }] if *tx == unknown
    ));
}

#[test]
fn observes_live_state_machines() {
    let mut c = Coordinator::new(0, Default::default());
    let tx = c.begin(Instant::now(), 9, transfer(1)).expect("begin");
    let run = RunEnd::default().with_coordinator(&c);
    assert_eq!(run.coordinator, BTreeMap::from([(tx, CoordState::Wait)]));
    let bank = Bank::new([("alice", 5)]);
    let p = Participant::new(1, bank.clone(), ParticipantConfig::default());
    assert_eq!(
        ParticipantEnd::observe(&bank, &p, Vec::new()),
        ParticipantEnd::untouched(bank)
    );
}

#[test]
fn forgotten_transactions_are_judged_by_what_was_reported() {
    // Ended and forgotten everywhere: still clean, the balances judged by
    // the outcomes the coordinator reported.
    let mut run = healthy();
    run.coordinator.clear();
    run.forgotten_below = 3;
    for p in run.participants.values_mut() {
        p.transactions.clear();
        p.watermarks.insert(0, 3);
    }
    assert!(findings(&run).is_empty(), "{:?}", findings(&run));
    assert!(run.decision(T1) && !run.decision(T2));
    // Reported outcomes still have to agree with each other.
    run.reported.get_mut(&1).unwrap().insert(T1, false);
    assert!(matches!(&findings(&run)[..], [Finding::Disagreement(d)] if d.tx == T1));
    // A participant that forgot a transaction its coordinator has not ended.
    let mut run = healthy();
    run.coordinator.insert(T1, CoordState::Commit);
    let p1 = run.participants.get_mut(&1).unwrap();
    p1.transactions.remove(&T1);
    p1.watermarks.insert(0, 2);
    let f = findings(&run);
    assert!(
        f.contains(&Finding::ForgotTooEarly { node: 1, tx: T1 }),
        "{f:?}"
    );
}
