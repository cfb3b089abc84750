use super::*;
use crate::services::{ServiceConfig, Services, file_server};
use clap::Parser;
use http::test_support::TempDir;
use sockets_api::StackBuilder;

fn args(extra: &[&str]) -> GetArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        get: GetArgs,
    }
    let mut argv = vec!["get", "--tap", "t0", "--addr", "10.8.0.2/24"];
    argv.extend_from_slice(extra);
    Wrapper::try_parse_from(argv).unwrap().get
}

#[test]
fn failed_downloads_remove_only_files_they_created() {
    let dir = TempDir::new("get-output");
    let new = dir.path().join("new.bin");
    Output::open(Some(&new)).unwrap().finish(false).unwrap();
    assert!(!new.exists());
    let old = dir.file("old.bin", b"precious");
    Output::open(Some(&old)).unwrap().finish(false).unwrap();
    assert!(old.exists());
    let null = PathBuf::from("/dev/null");
    Output::open(Some(&null)).unwrap().finish(false).unwrap();
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file());
}

#[test]
fn fetch_from_a_ustack_file_server_and_fail_clearly() {
    let dir = TempDir::new("get");
    let body: Vec<u8> = (0..500_000u32).map(|i| (i % 241) as u8).collect();
    dir.file("data.bin", &body);
    let (server, client) = StackBuilder::memory_pair(
        StackBuilder::memory().addr("10.8.0.1/24".parse().unwrap()),
        StackBuilder::memory().addr("10.8.0.2/24".parse().unwrap()),
    )
    .unwrap();
    let _services = Services::start(
        &server,
        ServiceConfig {
            http: vec![8080],
            file_server: Some(file_server(dir.path()).unwrap()),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let a = args(&["http://10.8.0.1:8080/data.bin", "--connect-timeout", "2"]);
    let target: SocketAddr = "10.8.0.1:8080".parse().unwrap();
    let url = Url::parse(&a.url).unwrap();
    let mut out = Vec::new();
    let r = fetch(&client, target, &url, &a, &mut out, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(out == body);

    let url404 = Url::parse("http://10.8.0.1:8080/nope").unwrap();
    let err = fetch(&client, target, &url404, &a, &mut Vec::new(), false).unwrap_err();
    assert_eq!(
        err,
        "http://10.8.0.1:8080/nope: server answered 404 Not Found"
    );

    let closed: SocketAddr = "10.8.0.1:9".parse().unwrap();
    let err = fetch(&client, closed, &url, &a, &mut Vec::new(), false).unwrap_err();
    assert_eq!(err, "cannot connect to 10.8.0.1:9: connection refused");

    // Nobody at that address: no ARP reply, the connect times out.
    let nobody: SocketAddr = "10.8.0.77:80".parse().unwrap();
    let err = fetch(&client, nobody, &url, &a, &mut Vec::new(), false).unwrap_err();
    assert!(err.starts_with("cannot connect to 10.8.0.77:80: "), "{err}");
    server.stop();
    client.stop();
}
