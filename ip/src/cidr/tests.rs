use super::*;

#[test]
fn parse_and_arithmetic() {
    let c: Ipv4Cidr = "10.1.2.3/24".parse().unwrap();
    assert_eq!(c.addr(), Ipv4Addr::new(10, 1, 2, 3));
    assert_eq!(c.network(), Ipv4Addr::new(10, 1, 2, 0));
    assert_eq!(c.broadcast(), Some(Ipv4Addr::new(10, 1, 2, 255)));
    assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert!(c.contains(Ipv4Addr::new(10, 1, 2, 200)));
    assert!(!c.contains(Ipv4Addr::new(10, 1, 3, 1)));
    let any: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(any.contains(Ipv4Addr::new(8, 8, 8, 8)));
    let host: Ipv4Cidr = "10.0.0.1/32".parse().unwrap();
    assert_eq!(host.broadcast(), None);
    assert_eq!(c.to_string(), "10.1.2.3/24");
}

#[test]
fn rejects_bad_input() {
    assert!(matches!(
        "10.0.0.1".parse::<Ipv4Cidr>(),
        Err(CidrParseError::MissingPrefix(_))
    ));
    assert!(matches!(
        "10.0.0/24".parse::<Ipv4Cidr>(),
        Err(CidrParseError::BadAddress(_))
    ));
    assert!(matches!(
        "10.0.0.1/33".parse::<Ipv4Cidr>(),
        Err(CidrParseError::BadPrefix(_))
    ));
    assert!(matches!(
        "10.0.0.1/x".parse::<Ipv4Cidr>(),
        Err(CidrParseError::BadPrefix(_))
    ));
    assert!(matches!(
        "300.0.0.1/8".parse::<Ipv4Cidr>(),
        Err(CidrParseError::BadAddress(_))
    ));
}
