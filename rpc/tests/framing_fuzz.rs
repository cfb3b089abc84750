//! Fuzz-style framing tests: random payloads, random chunking, random garbage.

use rpc::frame::{FrameDecoder, FrameError, encode_frame};
use rpc::message::decode_message;
use rpc::{Request, Response};

mod seeded;

use seeded::Rng;

#[test]
fn random_frames_random_chunks() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let max = 1 + rng.below(5000);
        let payloads: Vec<Vec<u8>> = (0..rng.below(20))
            .map(|_| (0..rng.below(max + 1)).map(|_| rng.next() as u8).collect())
            .collect();
        let mut stream = Vec::new();
        for p in &payloads {
            encode_frame(&mut stream, p, max).expect("within max");
        }
        let mut decoder = FrameDecoder::new(max);
        let mut got = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(700));
            decoder
                .decode_all(&rest[..n], &mut got)
                .expect("valid stream");
            rest = &rest[n..];
        }
        assert_eq!(got, payloads, "round {round}");
        decoder.finish().expect("ends on a boundary");
    }
}

#[test]
fn random_garbage_never_panics_and_never_overallocates() {
    let mut rng = Rng::new(42);
    for _ in 0..2000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut decoder = FrameDecoder::new(1024);
        let mut frames = Vec::new();
        match decoder.decode_all(&bytes, &mut frames) {
            Ok(()) => {}
            Err(FrameError::TooLarge { len, max }) => assert!(len > max as u64),
            Err(FrameError::BadVersion(v)) => assert_ne!(v, rpc::frame::FRAME_VERSION),
            Err(e) => panic!("unexpected {e}"),
        }
        for f in &frames {
            assert!(f.len() <= 1024);
            // Decoding random payloads as messages is an error or a value, never a panic.
            let _ = decode_message::<Request>(f);
            let _ = decode_message::<Response>(f);
        }
    }
}

#[test]
fn random_truncation_is_reported() {
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let payload: Vec<u8> = (0..1 + rng.below(100)).map(|_| rng.next() as u8).collect();
        let mut stream = Vec::new();
        encode_frame(&mut stream, &payload, 1 << 20).expect("encode");
        let cut = 1 + rng.below(stream.len() - 1);
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        decoder
            .decode_all(&stream[..cut], &mut frames)
            .expect("prefix");
        assert!(frames.is_empty());
        assert!(matches!(
            decoder.finish(),
            Err(FrameError::Truncated { .. })
        ));
    }
}
