use super::*;

fn sa(ip: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(ip), port)
}

#[test]
fn specific_then_wildcard_then_connected_first() {
    let mut t = UdpTable::new();
    t.bind(sa([0, 0, 0, 0], 53), 1).unwrap();
    t.bind(sa([10, 0, 0, 2], 54), 2).unwrap();
    let peer = sa([10, 0, 0, 1], 4000);
    let none = |_| false;
    assert_eq!(t.lookup(sa([10, 0, 0, 2], 53), peer, none), Some(1));
    assert_eq!(t.lookup(sa([10, 0, 0, 2], 54), peer, none), Some(2));
    assert_eq!(t.lookup(sa([10, 0, 0, 2], 55), peer, none), None);
    // Socket 2 connects to the peer.
    t.connect(sa([10, 0, 0, 2], 54), peer, 2);
    let connected = |h| h == 2;
    assert_eq!(t.lookup(sa([10, 0, 0, 2], 54), peer, connected), Some(2));
    // Another sender does not reach the connected socket.
    assert_eq!(
        t.lookup(sa([10, 0, 0, 2], 54), sa([10, 0, 0, 9], 1), connected),
        None
    );
}

#[test]
fn bind_conflicts() {
    let mut t = UdpTable::new();
    t.bind(sa([10, 0, 0, 2], 7), 1).unwrap();
    assert_eq!(t.bind(sa([10, 0, 0, 2], 7), 2), Err(BindError::AddrInUse));
    assert_eq!(t.bind(sa([0, 0, 0, 0], 7), 2), Err(BindError::AddrInUse));
    t.unbind(sa([10, 0, 0, 2], 7), None);
    t.bind(sa([0, 0, 0, 0], 7), 2).unwrap();
    assert_eq!(t.bind(sa([10, 0, 0, 2], 7), 3), Err(BindError::AddrInUse));
    assert!(t.port_in_use(7));
    t.unbind(sa([0, 0, 0, 0], 7), None);
    assert!(!t.port_in_use(7));
}
