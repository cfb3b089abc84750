use std::time::Duration;

use clap::Parser;

use super::*;

#[derive(Parser, Debug)]
struct Wrapper {
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
    let mut v = vec![
        "serve",
        "--tap",
        "t0",
        "--addr",
        "10.0.0.2/24",
        "--echo",
        "7",
    ];
    v.extend_from_slice(extra);
    Wrapper::try_parse_from(v).map(|w| w.serve)
}

#[test]
fn service_limits_have_documented_defaults() {
    let a = parse(&[]).unwrap();
    assert_eq!(a.idle_timeout, Duration::from_secs(60));
    assert_eq!(a.max_conns, 10_000);
    assert_eq!(a.max_conns_per_ip, 256);
    let a = parse(&[
        "--idle-timeout",
        "1.5",
        "--max-conns",
        "3",
        "--max-conns-per-ip",
        "2",
    ])
    .unwrap();
    assert_eq!(a.idle_timeout, Duration::from_millis(1500));
    assert_eq!((a.max_conns, a.max_conns_per_ip), (3, 2));
}

#[test]
fn bad_service_limits_are_one_clear_error() {
    for (flags, words) in [
        (["--idle-timeout", "0"], "between 0 (excluded)"),
        (["--idle-timeout", "soon"], "not a number of seconds"),
        (["--max-conns", "0"], "--max-conns"),
        (["--max-conns", "99999999999"], "--max-conns"),
        (["--max-conns-per-ip", "lots"], "--max-conns-per-ip"),
    ] {
        let e = parse(&flags).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{flags:?}");
        let text = e.to_string();
        assert!(text.contains(words), "{flags:?}: {text}");
    }
}

#[test]
fn tun_replaces_tap_and_excludes_it() {
    let v = [
        "serve",
        "--tun",
        "tun0",
        "--addr",
        "10.0.0.2/24",
        "--echo",
        "7",
    ];
    let a = Wrapper::try_parse_from(v).unwrap().serve;
    assert_eq!(a.stack.tun.as_deref(), Some("tun0"));
    assert_eq!(a.stack.tap, None);
    assert_eq!(a.stack.device_name(), "tun0");
    let e = parse(&["--tun", "tun0"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("cannot be used with"), "{e}");
    let e = Wrapper::try_parse_from(["serve", "--addr", "10.0.0.2/24", "--echo", "7"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--tap"), "{e}");
}

/// The status report has one `fault injection:` line per direction, every
/// counter named (scripts read them), and none without fault injection.
#[test]
fn fault_report_prints_both_directions_with_every_counter() {
    let plain = sockets_api::StackBuilder::memory()
        .addr("10.0.0.2/24".parse().unwrap())
        .start()
        .unwrap();
    assert_eq!(fault_report(&plain), "");
    assert!(!status_report(&plain).contains("fault injection"));
    plain.stop();

    let faulty = sockets_api::StackBuilder::memory()
        .addr("10.0.0.2/24".parse().unwrap())
        .faults(sockets_api::FaultConfig {
            loss: 0.5,
            seed: 1,
            ..sockets_api::FaultConfig::default()
        })
        .start()
        .unwrap();
    faulty.stop();
    let report = fault_report(&faulty);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 2, "{report}");
    for (line, dir) in lines.iter().zip(["outbound", "inbound"]) {
        assert!(
            line.starts_with(&format!("fault injection: {dir} frames ")),
            "{line}"
        );
        for name in [
            "lost",
            "lost payload bytes",
            "corrupted",
            "duplicated",
            "reordered",
            "delayed",
            "overflow",
        ] {
            assert!(line.contains(&format!(", {name} ")), "{name} in {line}");
        }
    }
    let d = sockets_api::DirectionStats {
        frames: 10,
        lost: 2,
        lost_payload: 2896,
        ..Default::default()
    };
    assert_eq!(
        fault_line("outbound", &d),
        "fault injection: outbound frames 10, lost 2, lost payload bytes 2896, corrupted 0, \
         duplicated 0, reordered 0, delayed 0, overflow 0, rate-dropped 0, send errors 0\n"
    );
}
