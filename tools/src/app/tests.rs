use super::*;

#[test]
fn hosts_file_lookup() {
    let hosts = "127.0.0.1 localhost\n# 10.9.9.9 hidden\n::1 ip6-localhost peer\n\
                 10.0.0.1\tlinux Linux.lan  # the host side\n";
    assert_eq!(
        lookup_hosts(hosts, "linux"),
        Some(Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(
        lookup_hosts(hosts, "LINUX.lan"),
        Some(Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(lookup_hosts(hosts, "hidden"), None);
    assert_eq!(lookup_hosts(hosts, "peer"), None);
    assert_eq!(resolve_host("10.1.2.3"), Ok(Ipv4Addr::new(10, 1, 2, 3)));
    let err = resolve_host("no-such-host.invalid").unwrap_err();
    assert!(err.contains("IPv4 address"), "{err}");
}

#[test]
fn error_phrases() {
    let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(describe_io_error(&refused), "connection refused");
    let timed_out = io::Error::from_raw_os_error(libc::ETIMEDOUT);
    assert_eq!(describe_io_error(&timed_out), "timed out");
    let other = io::Error::from_raw_os_error(libc::EMSGSIZE);
    assert_eq!(describe_io_error(&other), "message too long");
    assert_eq!(describe_duration(Duration::from_secs(10)), "10 s");
    assert_eq!(describe_duration(Duration::from_millis(1500)), "1.5 s");
    assert_eq!(describe_duration(Duration::from_millis(200)), "200 ms");
    assert_eq!(trim_float(33.333_333), "33.3333");
    assert_eq!(trim_float(100.0), "100");
}
