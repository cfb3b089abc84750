use super::*;

fn frames(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        encode_frame(&mut out, p, DEFAULT_MAX_FRAME).expect("encode");
    }
    out
}

#[test]
fn fixture_bytes() {
    let mut out = Vec::new();
    encode_frame(&mut out, b"hi", 16).expect("encode");
    assert_eq!(out, [0, 0, 0, 2, 2, b'h', b'i']);
    encode_frame(&mut out, b"", 16).expect("encode");
    assert_eq!(out[7..], [0, 0, 0, 0, 2]);
}

#[test]
fn zero_length_payload() {
    let mut d = FrameDecoder::new(16);
    let mut got = Vec::new();
    d.decode_all(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 2], &mut got)
        .expect("decode");
    assert_eq!(got, vec![Vec::<u8>::new(), Vec::new()]);
    assert!(d.is_idle());
    d.finish().expect("clean end");
}

#[test]
fn split_at_every_boundary() {
    let payloads: [&[u8]; 4] = [b"alpha", b"", b"\x00\x01\x02", &[7u8; 300]];
    let bytes = frames(&payloads);
    for cut in 0..=bytes.len() {
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        d.decode_all(&bytes[..cut], &mut got).expect("first half");
        d.decode_all(&bytes[cut..], &mut got).expect("second half");
        assert_eq!(
            got,
            payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
            "cut {cut}"
        );
        d.finish().expect("clean end");
    }
    // And one byte at a time.
    let mut d = FrameDecoder::default();
    let mut got = Vec::new();
    for b in &bytes {
        d.decode_all(std::slice::from_ref(b), &mut got)
            .expect("byte");
    }
    assert_eq!(got.len(), 4);
}

#[test]
fn several_frames_per_chunk_leave_rest_in_input() {
    let bytes = frames(&[b"one", b"two"]);
    let mut d = FrameDecoder::default();
    let mut input = &bytes[..];
    assert_eq!(d.decode(&mut input).expect("ok"), Some(b"one".to_vec()));
    assert_eq!(input.len(), 5 + 3);
    assert_eq!(d.decode(&mut input).expect("ok"), Some(b"two".to_vec()));
    assert!(input.is_empty());
    assert_eq!(d.decode(&mut input).expect("ok"), None);
}

#[test]
fn oversized_is_refused_before_payload() {
    let mut d = FrameDecoder::new(10);
    let mut input: &[u8] = &[0, 0, 0, 11, 2];
    assert_eq!(
        d.decode(&mut input),
        Err(FrameError::TooLarge { len: 11, max: 10 })
    );
    // Failed for good.
    let mut more: &[u8] = &[0, 0, 0, 1, 2, 0];
    assert!(d.decode(&mut more).is_err());
    assert!(d.finish().is_err());
    // The maximum itself is fine.
    let mut d = FrameDecoder::new(10);
    let mut input: &[u8] = &[0, 0, 0, 10, 2];
    assert_eq!(d.decode(&mut input), Ok(None));
    // A 4 GiB claim allocates nothing.
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 2];
    assert!(matches!(
        d.decode(&mut input),
        Err(FrameError::TooLarge { .. })
    ));
    assert_eq!(d.payload.capacity(), 0);
}

#[test]
fn encoder_refuses_oversized() {
    let mut out = vec![9];
    assert_eq!(
        encode_frame(&mut out, &[0; 11], 10),
        Err(FrameError::TooLarge { len: 11, max: 10 })
    );
    assert_eq!(out, vec![9]);
}

#[test]
fn version_mismatch() {
    let mut d = FrameDecoder::default();
    // Version 1: the format without MACs after the greeting.
    let mut input: &[u8] = &[0, 0, 0, 1, 1, 0];
    assert_eq!(d.decode(&mut input), Err(FrameError::BadVersion(1)));
}

#[test]
fn garbage() {
    let mut d = FrameDecoder::default();
    let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
    assert!(matches!(
        d.decode(&mut input),
        Err(FrameError::TooLarge { .. })
    ));
    let mut d = FrameDecoder::default();
    let mut input: &[u8] = &[0, 0, 0, 3, 0x47, 1, 2, 3];
    assert_eq!(d.decode(&mut input), Err(FrameError::BadVersion(0x47)));
}

#[test]
fn truncated() {
    let mut d = FrameDecoder::default();
    d.decode_all(&[0, 0], &mut Vec::new()).expect("partial");
    assert!(!d.is_idle());
    assert_eq!(
        d.finish(),
        Err(FrameError::Truncated {
            have: 2,
            need: None
        })
    );
    let mut d = FrameDecoder::default();
    d.decode_all(&[0, 0, 0, 4, 2, 9], &mut Vec::new())
        .expect("partial");
    assert_eq!(
        d.finish(),
        Err(FrameError::Truncated {
            have: 6,
            need: Some(9)
        })
    );
    d.reset();
    d.finish().expect("reset clears");
}
