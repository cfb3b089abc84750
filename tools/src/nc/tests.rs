use super::*;
use clap::Parser;

fn parse(argv: &[&str]) -> NcArgs {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        nc: NcArgs,
    }
    let mut all = vec!["nc", "--tap", "t0", "--addr", "10.0.0.2/24"];
    all.extend_from_slice(argv);
    Wrapper::try_parse_from(all).unwrap().nc
}

#[test]
fn endpoints() {
    let a = parse(&["10.0.0.1", "80"]);
    assert_eq!(endpoint(&a).unwrap(), "10.0.0.1:80".parse().unwrap());
    let a = parse(&["-l", "5000"]);
    assert_eq!(endpoint(&a).unwrap(), "0.0.0.0:5000".parse().unwrap());
    let a = parse(&["-l", "0.0.0.0", "5000"]);
    assert_eq!(endpoint(&a).unwrap(), "0.0.0.0:5000".parse().unwrap());
    let a = parse(&["10.0.0.1"]);
    let e = endpoint(&a).unwrap_err();
    assert!(e.is::<UsageError>() && e.to_string().contains("missing PORT"));
    let a = parse(&["10.0.0.1", "70000"]);
    assert!(
        endpoint(&a)
            .unwrap_err()
            .to_string()
            .contains("invalid port")
    );
    let a = parse(&["-u", "-q", "0", "10.0.0.1", "7"]);
    assert_eq!(a.quit_after, Some(Duration::ZERO));
}

#[test]
fn wait_for_both_directions_or_the_quit_timer() {
    let (tx, rx) = mpsc::channel();
    tx.send(Done::Network(Ok(()))).unwrap();
    tx.send(Done::Input(Ok(()))).unwrap();
    assert!(wait_both(&rx, None).is_ok());

    let (tx, rx) = mpsc::channel();
    tx.send(Done::Input(Ok(()))).unwrap();
    let start = Instant::now();
    assert!(wait_both(&rx, Some(Duration::from_millis(50))).is_ok());
    assert!(start.elapsed() >= Duration::from_millis(50));
    drop(tx);

    let (tx, rx) = mpsc::channel();
    tx.send(Done::Network(Err(
        "receiving: connection reset by peer".into()
    )))
    .unwrap();
    assert_eq!(
        wait_both(&rx, None).unwrap_err(),
        "receiving: connection reset by peer"
    );
}
