use super::*;

const TX: TxId = TxId {
    coordinator: 1,
    seq: 7,
};

#[test]
fn backed_by_is_the_write_ahead_rule() {
    let begin = LogRecord::Begin {
        tx: TX,
        participants: vec![2, 3],
        key: None,
    };
    let ready = LogRecord::Ready {
        tx: TX,
        participants: vec![2, 3],
        work: vec![],
    };
    let commit = |commit| LogRecord::Global { tx: TX, commit };
    let local = |commit| LogRecord::Local { tx: TX, commit };
    let decision = |commit| Msg::Decision { tx: TX, commit };
    let vote = |commit| Msg::Vote { tx: TX, commit };
    let peer = |state| Msg::PeerState { tx: TX, state };

    // Coordinator side.
    assert!(!decision(true).backed_by(std::slice::from_ref(&begin)));
    assert!(decision(true).backed_by(&[begin.clone(), commit(true)]));
    assert!(!decision(false).backed_by(&[begin.clone(), commit(true)]));
    assert!(
        decision(false).backed_by(&[]),
        "ABORT for an unknown transaction"
    );
    // Participant side.
    assert!(!vote(true).backed_by(&[]));
    assert!(vote(true).backed_by(std::slice::from_ref(&ready)));
    assert!(!vote(false).backed_by(std::slice::from_ref(&ready)));
    assert!(vote(false).backed_by(&[local(false)]));
    assert!(!peer(PeerState::Committed).backed_by(&[ready.clone(), local(false)]));
    assert!(peer(PeerState::Committed).backed_by(&[ready.clone(), local(true)]));
    assert!(peer(PeerState::Aborted).backed_by(&[local(false)]));
    assert!(!Msg::Ack { tx: TX }.backed_by(std::slice::from_ref(&ready)));
    assert!(Msg::Ack { tx: TX }.backed_by(&[ready.clone(), local(true)]));
    let snapshot = LogRecord::Snapshot {
        state: vec![],
        txs: vec![TxSnapshot {
            tx: TX,
            decided: Some(true),
            participants: vec![2, 3],
            work: vec![],
        }],
    };
    assert!(peer(PeerState::Committed).backed_by(std::slice::from_ref(&snapshot)));
    assert!(!peer(PeerState::Aborted).backed_by(std::slice::from_ref(&snapshot)));
    assert!(Msg::StateQuery { tx: TX }.backed_by(&[]));
}
