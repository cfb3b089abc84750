//! Authenticated connections: a mutual HMAC-SHA-256 challenge-response in
//! the greeting, with a key shared by every node of a system.
//!
//! # The greeting with a key
//!
//! A server configured with a key ([`ServerConfig::auth`](crate::ServerConfig::auth))
//! does not greet with [`ServerMessage::Hello`](crate::ServerMessage::Hello). Every frame below is an
//! ordinary RPC frame ([`frame`](crate::frame)) holding one postcard message:
//!
//! ```text
//! server -> client  ServerMessage::Challenge { nonce: Ns }            (32 random bytes)
//! client -> server  Authenticate { identity: I, nonce: Nc, mac: Mc }  (u64, 32 bytes, 32 bytes)
//! server -> client  ServerMessage::Accepted { incarnation: N, mac: Ms }
//!                   or ServerMessage::Refused, then the server closes
//! ```
//!
//! with `K` the key and `||` concatenation (the identity and incarnation as
//! 8 bytes big-endian; every part has a fixed length, so the input is
//! unambiguous):
//!
//! ```text
//! Mc = HMAC-SHA-256(K, "ustack-rpc auth v1: client\0" || Ns || Nc || I)
//! Ms = HMAC-SHA-256(K, "ustack-rpc auth v1: server\0" || Ns || Nc || I || N)
//! ```
//!
//! The server checks `Mc` before it decodes anything else from the
//! connection; the client checks `Ms` before it sends any call. Both
//! comparisons are constant-time ([`Mac::verify_slice`]). `Accepted`
//! replaces `Hello`: it carries the incarnation, which its MAC covers.
//!
//! # What it protects against
//!
//! - **A peer without the key** cannot produce `Mc` for a fresh `Ns`: its
//!   connection is refused and counted ([`ServerStats::auth_failed`](crate::ServerStats::auth_failed))
//!   before any call runs.
//! - **Replay.** `Ns` is fresh for every connection (drawn from a secret
//!   seed, [`NonceSource`]), so an `Authenticate` recorded from another
//!   connection does not verify. `Nc` is fresh for every connection of a
//!   client, so a recorded `Accepted` does not convince a client talking to
//!   an impostor.
//! - **Reflection.** The two directions use different labels, so a
//!   server's `Ms` is never a valid `Mc` and the reverse.
//! - **Identity.** `I` is the identity the client claims (a 2PC node's id);
//!   it is covered by both MACs and handed to every call on the connection
//!   as [`CallContext::peer`](crate::CallContext::peer). Every holder of the
//!   key can claim any identity: the key authenticates membership of the
//!   system, not individual nodes.
//!
//! What it does not do: frames after the greeting carry no MAC and are not
//! encrypted. An attacker who can inject into an established TCP connection
//! (on the path, guessing sequence numbers) is not stopped; that needs a
//! secure channel (TLS), which this crate does not provide.
//!
//! Without a key on either side the greeting is today's `Hello` and
//! `peer` is `None`. A client with a key refuses a server that greets
//! without proving the key, and a client without a key gets
//! [`RpcError::Unauthenticated`](crate::RpcError::Unauthenticated) from a
//! server that wants one.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;
use std::path::Path;

/// Bytes in a key.
pub const KEY_LEN: usize = 32;
/// Bytes in a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes in a MAC (HMAC-SHA-256).
pub const MAC_LEN: usize = 32;

/// A nonce of the greeting.
pub type Nonce = [u8; NONCE_LEN];
/// A MAC of the greeting.
pub type MacBytes = [u8; MAC_LEN];

const CLIENT_LABEL: &[u8] = b"ustack-rpc auth v1: client\0";
const SERVER_LABEL: &[u8] = b"ustack-rpc auth v1: server\0";

/// A shared secret key (32 bytes). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey([u8; KEY_LEN]);

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(..)")
    }
}

/// Why a key could not be read, written or parsed.
#[derive(Debug)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl AuthKey {
    /// A key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        AuthKey(bytes)
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut k = [0u8; KEY_LEN];
        getrandom::fill(&mut k)
            .map_err(|e| KeyError(format!("no random source for a key: {e}")))?;
        Ok(AuthKey(k))
    }

    /// Parses 64 hexadecimal digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        if s.len() != 2 * KEY_LEN || !s.is_ascii() {
            return Err(KeyError(format!(
                "a key is {} hexadecimal digits",
                2 * KEY_LEN
            )));
        }
        let mut k = [0u8; KEY_LEN];
        for (i, byte) in k.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| KeyError("a key is hexadecimal digits only".into()))?;
        }
        Ok(AuthKey(k))
    }

    /// The key as 64 lower-case hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a key file written by [`write_new`](Self::write_new). Refuses
    /// a file that its group or others may read or write (as ssh does with
    /// private keys), and anything but one hexadecimal key.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| KeyError(format!("cannot read key file {shown}: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError(format!(
                "key file {shown} is accessible by others (mode {mode:03o}); \
                 run chmod 600 {shown}"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError(format!("cannot read key file {shown}: {e}")))?;
        AuthKey::from_hex(&text).map_err(|e| KeyError(format!("key file {shown}: {e}")))
    }

    /// Creates `path` (mode 0600; an existing file is never overwritten)
    /// holding a new random key, and returns the key.
    pub fn write_new(path: &Path) -> Result<Self, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let shown = path.display();
        let key = AuthKey::generate()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => {
                    KeyError(format!("{shown} exists: refusing to overwrite a key"))
                }
                _ => KeyError(format!("cannot create key file {shown}: {e}")),
            })?;
        writeln!(file, "{}", key.to_hex())
            .and_then(|()| file.sync_all())
            .map_err(|e| KeyError(format!("cannot write key file {shown}: {e}")))?;
        Ok(key)
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes never fails.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable_key_length(),
        };
        mac.update(label);
        for p in parts {
            mac.update(p);
        }
        mac
    }

    /// `Mc`: the client's proof (see the [module docs](self)).
    pub fn client_mac(
        &self,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
    ) -> MacBytes {
        let mac = self.mac(
            CLIENT_LABEL,
            &[server_nonce, client_nonce, &identity.to_be_bytes()],
        );
        mac.finalize().into_bytes().into()
    }

    /// `Ms`: the server's proof (see the [module docs](self)).
    pub fn server_mac(
        &self,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
    ) -> MacBytes {
        let mac = self.mac(
            SERVER_LABEL,
            &[
                server_nonce,
                client_nonce,
                &identity.to_be_bytes(),
                &incarnation.to_be_bytes(),
            ],
        );
        mac.finalize().into_bytes().into()
    }

    /// Checks `Mc` in constant time.
    pub fn verify_client(
        &self,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        mac: &MacBytes,
    ) -> bool {
        self.mac(
            CLIENT_LABEL,
            &[server_nonce, client_nonce, &identity.to_be_bytes()],
        )
        .verify_slice(mac)
        .is_ok()
    }

    /// Checks `Ms` in constant time.
    pub fn verify_server(
        &self,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
        mac: &MacBytes,
    ) -> bool {
        self.mac(
            SERVER_LABEL,
            &[
                server_nonce,
                client_nonce,
                &identity.to_be_bytes(),
                &incarnation.to_be_bytes(),
            ],
        )
        .verify_slice(mac)
        .is_ok()
    }
}

#[cold]
fn unreachable_key_length() -> ! {
    // Hmac::new_from_slice accepts every key length.
    panic!("HMAC refused a 32-byte key")
}

/// A client's credentials: the shared key, the identity it claims, and a
/// secret seed its connection nonces are drawn from.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The shared key.
    pub key: AuthKey,
    /// The identity to claim (for 2PC, the node id).
    pub identity: u64,
    /// Seed of the client nonces (random; the simulator passes a seeded one).
    pub nonce_seed: [u8; 32],
}

impl ClientAuth {
    /// Credentials with a random nonce seed.
    pub fn new(key: AuthKey, identity: u64) -> Self {
        ClientAuth {
            key,
            identity,
            nonce_seed: random_bytes(),
        }
    }
}

/// A server's credentials: the shared key and the secret seed of its
/// challenges.
#[derive(Debug, Clone)]
pub struct ServerAuth {
    /// The shared key.
    pub key: AuthKey,
    /// Seed of the server nonces (random; the simulator passes a seeded one).
    pub nonce_seed: [u8; 32],
}

impl ServerAuth {
    /// Credentials with a random nonce seed.
    pub fn new(key: AuthKey) -> Self {
        ServerAuth {
            key,
            nonce_seed: random_bytes(),
        }
    }
}

/// Nonces as `SHA-256(seed || salt || counter)`: unpredictable to anyone
/// who does not know the seed, never repeated for one `(seed, salt)`, and
/// reproducible under the simulator's seeded configuration.
#[derive(Debug, Clone)]
pub struct NonceSource {
    seed: [u8; 32],
    salt: u64,
    counter: u64,
}

impl NonceSource {
    /// Nonces from `seed`, distinguished by `salt` (a client id, a server
    /// incarnation) so that two users of one seed draw different nonces.
    pub fn new(seed: [u8; 32], salt: u64) -> Self {
        NonceSource {
            seed,
            salt,
            counter: 0,
        }
    }

    /// The next nonce.
    pub fn next_nonce(&mut self) -> Nonce {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(b"ustack-rpc nonce\0");
        h.update(self.seed);
        h.update(self.salt.to_be_bytes());
        h.update(self.counter.to_be_bytes());
        h.finalize().into()
    }
}

/// `N` bytes from the operating system's random source. If it fails (it
/// does not on Linux after boot), falls back to [`random_id`](crate::random_id)
/// hashed, and logs an error.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if let Err(e) = getrandom::fill(&mut out) {
        log::error!("rpc: the random source failed ({e}); using a weaker one");
        for chunk in out.chunks_mut(8) {
            let r = crate::random_id().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    out
}

#[cfg(test)]
mod tests;
