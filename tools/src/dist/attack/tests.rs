use super::*;

#[test]
fn only_an_authentication_refusal_counts_as_refused() {
    assert_eq!(
        classify::<()>(Err(RpcError::Unauthenticated("wrong key".into()))),
        Outcome::Refused
    );
    assert_eq!(classify(Ok(())), Outcome::Accepted);
    assert_eq!(
        classify::<()>(Err(RpcError::Remote(rpc::RemoteError::Stale))),
        Outcome::Accepted
    );
    assert!(matches!(
        classify::<()>(Err(RpcError::Timeout)),
        Outcome::NoAnswer(_)
    ));
}

#[test]
fn lines_say_what_got_through() {
    let mut t = Tally::default();
    t.add(Outcome::Refused);
    t.add(Outcome::Refused);
    assert_eq!(t.line("x"), "attack: x: 2 of 2 refused");
    t.add(Outcome::Accepted);
    t.add(Outcome::NoAnswer("timed out".into()));
    assert_eq!(
        t.line("x"),
        "attack: x: 2 of 4 refused, 1 ACCEPTED, 1 unanswered (timed out)"
    );
}
