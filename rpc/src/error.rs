//! Errors seen by RPC callers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An error reported by the server, carried in a [`Response`](crate::Response).
///
/// Application-level failures of a service are normally part of the method's
/// declared return type (`-> Result<(), BankError>`) and arrive as an `Ok`
/// reply; `RemoteError` is for failures of the call itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteError {
    /// The server has no method with this id.
    UnknownMethod(u32),
    /// The arguments could not be unmarshalled for this method.
    BadArguments(String),
    /// The handler failed without producing a reply of the declared type.
    Application(String),
    /// The request id is older than what the server still remembers for this
    /// client, so it may already have been executed; it was not executed now
    /// (at-most-once).
    Stale,
    /// The caller's deadline had passed before the server started the call;
    /// it was not executed.
    DeadlineExceeded,
    /// The request was first sent to an earlier incarnation of the server,
    /// which may have executed it before it restarted (taking its
    /// at-most-once table with it); it was not executed now.
    Restarted,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::UnknownMethod(id) => write!(f, "unknown method {id:#010x}"),
            RemoteError::BadArguments(why) => write!(f, "bad arguments: {why}"),
            RemoteError::Application(why) => write!(f, "application error: {why}"),
            RemoteError::Stale => {
                write!(
                    f,
                    "request too old for the server's duplicate table; not executed"
                )
            }
            RemoteError::DeadlineExceeded => write!(f, "deadline passed before execution"),
            RemoteError::Restarted => write!(
                f,
                "sent to an earlier incarnation of the server; not executed again"
            ),
        }
    }
}

impl std::error::Error for RemoteError {}

/// Why an RPC failed, as seen by the caller.
///
/// The variants are chosen so that the caller can tell what may have happened
/// on the server: `Unreachable` means the request never left this host (it was
/// certainly not executed); `Timeout`, `Closed` and `Restarted` mean it may or
/// may not have been executed, at most once; `Remote` means the server
/// answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// No reply before the call's deadline (the request may have been executed).
    Timeout,
    /// The server could not be reached (connection failed or refused on every
    /// attempt): the request was never sent.
    Unreachable(String),
    /// The server answered with an error.
    Remote(RemoteError),
    /// Malformed frame or message from the peer; the connection was closed.
    Protocol(String),
    /// The connection closed (or the client shut down) after the request was
    /// sent and no retry attempts were left: it may or may not have been executed.
    Closed,
    /// The server restarted after the request was sent: the old incarnation
    /// may have executed it (at most once); the new one did not, and will
    /// not, because retrying there could execute it twice.
    Restarted,
    /// The connection's greeting did not authenticate (a wrong key or no
    /// key on one side; see [`auth`](crate::auth)): the request was never
    /// sent on it.
    Unauthenticated(String),
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Timeout => write!(f, "RPC timed out (the call may have been executed)"),
            RpcError::Unreachable(why) => write!(f, "server unreachable: {why}"),
            RpcError::Remote(e) => write!(f, "remote error: {e}"),
            RpcError::Protocol(why) => write!(f, "protocol error: {why}"),
            RpcError::Closed => {
                write!(
                    f,
                    "connection closed before the reply (the call may have been executed)"
                )
            }
            RpcError::Restarted => write!(
                f,
                "the server restarted before replying (the call may have been executed \
                 by its previous incarnation, at most once)"
            ),
            RpcError::Unauthenticated(why) => write!(f, "authentication failed: {why}"),
        }
    }
}

impl std::error::Error for RpcError {}

impl RpcError {
    /// True when the call may have been executed by the server (`Timeout`,
    /// `Closed`, `Restarted`); false when it certainly was not
    /// (`Unreachable`) or the server answered.
    pub fn may_have_executed(&self) -> bool {
        matches!(
            self,
            RpcError::Timeout | RpcError::Closed | RpcError::Restarted
        )
    }
}

impl From<RemoteError> for RpcError {
    fn from(e: RemoteError) -> Self {
        RpcError::Remote(e)
    }
}

impl From<crate::frame::FrameError> for RpcError {
    fn from(e: crate::frame::FrameError) -> Self {
        RpcError::Protocol(e.to_string())
    }
}
