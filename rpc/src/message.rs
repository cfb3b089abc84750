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
    /// The first frame from a server with a key, instead of `Hello`: a
    /// fresh random nonce the client must answer with an [`Authenticate`]
    /// (see [`auth`](crate::auth)).
    Challenge {
        /// The server's nonce for this connection.
        nonce: crate::auth::Nonce,
    },
    /// The client proved the key: the server proves it too, and names its
    /// incarnation (this replaces `Hello` on an authenticated connection).
    Accepted {
        /// This run of the server (covered by `mac`).
        incarnation: u64,
        /// The server's proof, see [`auth`](crate::auth).
        mac: crate::auth::MacBytes,
    },
    /// The client's [`Authenticate`] did not prove the key; the server
    /// closes the connection after this.
    Refused,
}

/// The client's answer to a [`ServerMessage::Challenge`]: the first frame a
/// client sends on an authenticated connection (see [`auth`](crate::auth)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticate {
    /// Who the client says it is (for 2PC, its node id); covered by `mac`.
    pub identity: u64,
    /// The client's nonce for this connection.
    pub nonce: crate::auth::Nonce,
    /// The client's proof of the key.
    pub mac: crate::auth::MacBytes,
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
mod tests;
