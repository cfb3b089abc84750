use super::*;

#[test]
fn endpoints_parse() {
    assert_eq!(
        parse_endpoint("bank-2:bob").expect("parse"),
        (2, "bob".to_string())
    );
    assert_eq!(parse_endpoint("7:x").expect("parse"), (7, "x".to_string()));
    assert!(parse_endpoint("bank-2").is_err());
    assert!(parse_endpoint("bank-x:bob").is_err());
    assert!(parse_endpoint("bank-2:").is_err());
}
