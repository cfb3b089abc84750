//! Marshalling: the request/response envelopes and postcard helpers.
//!
//! Everything on the wire is [postcard](https://docs.rs/postcard): a compact,
//! non-self-describing serde format (varint integers, length-prefixed strings
//! and sequences, enum variants as varint indices) with a stable, documented
//! specification. Both ends must agree on the types, which the generated
//! stubs guarantee. A frame carries exactly one envelope; bytes left over
//! after it are a protocol error, as is anything that does not decode.

use crate::error::{RemoteError, RpcError};
use crate::frame::encode_frame_with;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A call, client to server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Identifies the client incarnation (random per client); with
    /// `request_id` the key of the server's at-most-once table.
    pub client_id: u64,
    /// Unique per client, increasing; retries reuse it.
    pub request_id: u64,
    /// Method id (see [`method_id`](crate::method_id)).
    pub method: u32,
    /// postcard encoding of the argument tuple.
    pub args: Vec<u8>,
    /// The caller's remaining patience in milliseconds when this copy was sent.
    pub deadline_ms: Option<u32>,
    /// The server incarnation (from its [`ServerMessage::Hello`]) that the
    /// *first* copy of this call was sent to; retries keep it. A server with a
    /// different incarnation has restarted since (its at-most-once table is
    /// gone) and refuses the call with [`RemoteError::Restarted`] instead of
    /// running it a second time.
    pub incarnation: u64,
}

/// A reply, server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request this answers.
    pub request_id: u64,
    /// postcard encoding of the method's return value, or why the call failed.
    pub result: Result<Vec<u8>, RemoteError>,
}

/// A frame from server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The first frame on every connection: the server's incarnation, a
    /// random number drawn each time the server starts. Clients send nothing
    /// before it, so every request can name the incarnation it was sent to.
    Hello {
        /// This run of the server.
        incarnation: u64,
    },
    /// The reply to a request.
    Response(Response),
}

/// postcard-encodes `value`.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, RpcError> {
    postcard::to_allocvec(value).map_err(|e| RpcError::Protocol(format!("cannot encode: {e}")))
}

/// postcard-decodes exactly one `T` from `bytes` (trailing bytes are an error).
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    let (value, rest) = postcard::take_from_bytes(bytes)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(postcard::Error::DeserializeBadEncoding)
    }
}

/// Appends `msg` as one frame to `out` (payload at most `max` bytes).
pub fn encode_message<T: Serialize>(
    out: &mut Vec<u8>,
    msg: &T,
    max: usize,
) -> Result<(), RpcError> {
    encode_frame_with(out, max, |buf| {
        // Serialise straight into the output buffer.
        let taken = std::mem::take(buf);
        match postcard::to_extend(msg, taken) {
            Ok(filled) => {
                *buf = filled;
                Ok(())
            }
            Err(e) => Err(RpcError::Protocol(format!("cannot encode: {e}"))),
        }
    })
}

/// Decodes a frame payload as a message; failures are protocol errors.
pub fn decode_message<T: DeserializeOwned>(payload: &[u8]) -> Result<T, RpcError> {
    from_bytes(payload).map_err(|e| RpcError::Protocol(format!("malformed message: {e}")))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(out, [0, 0, 0, 3, 1, 1, 0, 0]);
        assert!(encode_message(&mut out, &vec![0u8; 100], 64).is_err());
        assert_eq!(out.len(), 8);
    }
}
