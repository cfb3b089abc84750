use super::*;

#[test]
fn request_fixture() {
    let req = Request {
        client_id: 1,
        request_id: 300,
        method: 7,
        args: vec![0xaa, 0xbb],
        deadline_ms: Some(1000),
        incarnation: 5,
    };
    let bytes = to_bytes(&req).expect("encode");
    // varints: 1, 300 = ac 02, 7, len 2, aa bb, Some, 1000 = e8 07, 5
    assert_eq!(bytes, [1, 0xac, 0x02, 7, 2, 0xaa, 0xbb, 1, 0xe8, 0x07, 5]);
    assert_eq!(from_bytes::<Request>(&bytes).expect("decode"), req);
}

#[test]
fn response_fixture() {
    let ok = Response {
        request_id: 5,
        result: Ok(vec![9]),
    };
    assert_eq!(to_bytes(&ok).expect("encode"), [5, 0, 1, 9]);
    let err = Response {
        request_id: 5,
        result: Err(RemoteError::UnknownMethod(3)),
    };
    assert_eq!(to_bytes(&err).expect("encode"), [5, 1, 0, 3]);
    // Server frames: variant index first; 300 = ac 02.
    let hello = ServerMessage::Hello { incarnation: 300 };
    assert_eq!(to_bytes(&hello).expect("encode"), [0, 0xac, 0x02]);
    assert_eq!(
        to_bytes(&ServerMessage::Response(ok)).expect("encode"),
        [1, 5, 0, 1, 9]
    );
    assert_eq!(
        from_bytes::<ServerMessage>(&[0, 0xac, 0x02]).expect("decode"),
        hello
    );
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [&[][..], &[1, 2], &[0xff; 20], &[5, 0, 1, 9, 0]] {
        assert!(decode_message::<Response>(bad).is_err(), "{bad:?}");
    }
    assert!(decode_message::<Request>(&[1, 2, 3, 200, 0xff, 0xff, 0xff, 0xff]).is_err());
    for bad in [&[2, 0][..], &[0], &[0, 0x80], &[0, 1, 0]] {
        assert!(decode_message::<ServerMessage>(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn encode_message_frames() {
    let mut out = vec![];
    encode_message(
        &mut out,
        &Response {
            request_id: 1,
            result: Ok(vec![]),
        },
        64,
    )
    .expect("encode");
    assert_eq!(out, [0, 0, 0, 3, 2, 1, 0, 0]);
    assert!(encode_message(&mut out, &vec![0u8; 100], 64).is_err());
    assert_eq!(out.len(), 8);
}
