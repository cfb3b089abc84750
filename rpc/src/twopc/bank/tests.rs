use super::*;

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

fn work(ops: &[(&str, i64)]) -> Vec<u8> {
    BankOp::work(ops)
}

#[test]
fn votes_and_locks() {
    let mut bank = Bank::new([("alice", 100), ("bob", 5)]);
    assert!(
        bank.prepare(T1, &work(&[("bob", -6)])).is_err(),
        "insufficient funds"
    );
    assert!(
        bank.prepare(T1, &work(&[("carol", 1)])).is_err(),
        "unknown account"
    );
    assert!(bank.prepare(T1, &[0xff, 0xff]).is_err(), "malformed");
    assert_eq!(bank.locked(), 0);
    bank.prepare(T1, &work(&[("alice", -30), ("bob", 30)]))
        .expect("prepare");
    assert_eq!(bank.locked(), 2);
    assert!(bank.prepare(T2, &work(&[("alice", 1)])).is_err(), "locked");
    bank.commit(T1, &work(&[("alice", -30), ("bob", 30)]));
    assert_eq!(
        (bank.balance("alice"), bank.balance("bob")),
        (Some(70), Some(35))
    );
    assert_eq!(bank.locked(), 0);
    bank.prepare(T2, &work(&[("alice", -70)])).expect("prepare");
    bank.abort(T2, &[]);
    assert_eq!(bank.balance("alice"), Some(70));
    assert_eq!(bank.locked(), 0);
    let mut copy = Bank::default();
    copy.restore(&bank.snapshot()).expect("restore");
    assert_eq!(copy, bank);
}
