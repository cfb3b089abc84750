use super::*;

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

#[test]
fn longest_prefix_wins() {
    let mut t = RouteTable::new();
    let gw = Ipv4Addr::new(10, 0, 0, 1);
    let gw2 = Ipv4Addr::new(10, 0, 0, 254);
    t.add(Route {
        dest: cidr("0.0.0.0/0"),
        via: Some(gw),
    });
    t.add(Route {
        dest: cidr("10.0.0.0/24"),
        via: None,
    });
    t.add(Route {
        dest: cidr("192.168.0.0/16"),
        via: Some(gw2),
    });
    t.add(Route {
        dest: cidr("192.168.7.0/24"),
        via: Some(gw),
    });
    let hop = |a, b, c, d| t.lookup(Ipv4Addr::new(a, b, c, d)).unwrap();
    assert_eq!(
        hop(10, 0, 0, 9),
        NextHop {
            addr: Ipv4Addr::new(10, 0, 0, 9),
            on_link: true
        }
    );
    assert_eq!(
        hop(8, 8, 8, 8),
        NextHop {
            addr: gw,
            on_link: false
        }
    );
    assert_eq!(hop(192, 168, 1, 1).addr, gw2);
    assert_eq!(hop(192, 168, 7, 1).addr, gw);
    assert!(t.remove(cidr("0.0.0.0/0")));
    assert_eq!(t.lookup(Ipv4Addr::new(8, 8, 8, 8)), None);
}

#[test]
fn same_prefix_replaces() {
    let mut t = RouteTable::new();
    t.add(Route {
        dest: cidr("0.0.0.0/0"),
        via: Some(Ipv4Addr::new(1, 1, 1, 1)),
    });
    t.add(Route {
        dest: cidr("0.0.0.0/0"),
        via: Some(Ipv4Addr::new(2, 2, 2, 2)),
    });
    assert_eq!(t.routes().len(), 1);
    assert_eq!(
        t.lookup(Ipv4Addr::new(9, 9, 9, 9)).unwrap().addr,
        Ipv4Addr::new(2, 2, 2, 2)
    );
}
