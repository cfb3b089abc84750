//! Authenticated connections: a mutual HMAC-SHA-256 challenge-response in
//! the greeting, then a MAC on every frame; with one key shared by every
//! node of a system, or one key per node.
//!
//! # The greeting with a key
//!
//! A server configured with keys ([`ServerConfig::auth`](crate::ServerConfig::auth))
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
//! with `K` the key of identity `I` (the shared key, or `I`'s own key, see
//! [`ServerKeys`]) and `||` concatenation (the identity and incarnation as
//! 8 bytes big-endian; every part has a fixed length, so the input is
//! unambiguous):
//!
//! ```text
//! Mc = HMAC-SHA-256(K, "ustack-rpc auth v1: client\0" || Ns || Nc || I)
//! Ms = HMAC-SHA-256(K, "ustack-rpc auth v1: server\0" || Ns || Nc || I || N)
//! ```
//!
//! The server checks `Mc` with the key of the identity claimed before it
//! decodes anything else from the connection; the client checks `Ms`
//! before it sends any call. Both comparisons are constant-time
//! ([`Mac::verify_slice`]). `Accepted` replaces `Hello`: it carries the
//! incarnation, which its MAC covers.
//!
//! # Frames after the greeting
//!
//! Both sides then derive one key per direction,
//!
//! ```text
//! Kc = HMAC-SHA-256(K, "ustack-rpc session v2: client to server\0" || Ns || Nc || I || N)
//! Ks = HMAC-SHA-256(K, "ustack-rpc session v2: server to client\0" || Ns || Nc || I || N)
//! ```
//!
//! and every later frame carries a 32-byte tag after its body, counted in
//! the frame's length:
//!
//! ```text
//! tag = HMAC-SHA-256(Kdir, label || seq || length || version || body)
//! ```
//!
//! where `label` is the direction's label above and `seq` (8 bytes
//! big-endian) counts the frames of that direction from 0; it is implicit,
//! never sent ([`FrameMac`]). The receiver checks the tag, in constant
//! time, as soon as the frame is complete and before any of it is decoded;
//! a frame that fails closes the connection and is counted
//! ([`ServerStats::bad_mac`](crate::ServerStats::bad_mac),
//! [`ClientStats::bad_mac`](crate::ClientStats::bad_mac)).
//!
//! # What it protects against
//!
//! - **A peer without the key** cannot produce `Mc` for a fresh `Ns`: its
//!   connection is refused and counted ([`ServerStats::auth_failed`](crate::ServerStats::auth_failed))
//!   before any call runs.
//! - **Replay of a greeting.** `Ns` is fresh for every connection (drawn
//!   from a secret seed, [`NonceSource`]), so an `Authenticate` recorded
//!   from another connection does not verify. `Nc` is fresh for every
//!   connection of a client, so a recorded `Accepted` does not convince a
//!   client talking to an impostor.
//! - **Reflection.** The two directions use different labels (and keys),
//!   so a server's `Ms` is never a valid `Mc`, nor a frame sent one way a
//!   valid frame the other way.
//! - **Injection, alteration, replay, reordering and truncation of frames**
//!   in an open connection (an attacker on the path): a frame not sealed
//!   with this connection's key, or sealed for another position in the
//!   stream, fails its tag. Frames of another connection, even between the
//!   same peers, fail too (other nonces, other session keys).
//! - **Identity.** `I` is the identity the client claims (a 2PC node's id);
//!   it is covered by both MACs and the session keys and handed to every
//!   call on the connection as [`CallContext::peer`](crate::CallContext::peer).
//!   With a shared key every holder of the key can claim any identity: the
//!   key authenticates membership of the system. With per-node keys
//!   ([`ServerKeys::PerNode`], [`read_key_ring`]) the server checks each
//!   claim against that identity's own key, so a node holding only its own
//!   key cannot authenticate as another.
//!
//! What it does not do: nothing is encrypted (an eavesdropper reads every
//! call and reply), and the keys are symmetric, so a server can pass for
//! the clients whose keys it holds. For secrecy, run the connections
//! through a secure channel (TLS, a VPN), which this crate does not
//! provide.
//!
//! Without a key on either side the greeting is today's `Hello`, frames
//! carry no tag and `peer` is `None`. A client with a key refuses a server
//! that greets without proving the key, and a client without a key gets
//! [`RpcError::Unauthenticated`](crate::RpcError::Unauthenticated) from a
//! server that wants one.

use crate::frame::{FRAME_VERSION, FrameError, HEADER_LEN};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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
        check_key_file_mode(path)?;
        let shown = path.display();
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

const SESSION_CLIENT_LABEL: &[u8] = b"ustack-rpc session v2: client to server\0";
const SESSION_SERVER_LABEL: &[u8] = b"ustack-rpc session v2: server to client\0";

impl AuthKey {
    /// The key of one direction of a session: `HMAC-SHA-256(K, label || Ns
    /// || Nc || I || N)` (see the [module docs](self)).
    fn session_key(
        &self,
        label: &[u8],
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
    ) -> AuthKey {
        let mac = self.mac(
            label,
            &[
                server_nonce,
                client_nonce,
                &identity.to_be_bytes(),
                &incarnation.to_be_bytes(),
            ],
        );
        AuthKey(mac.finalize().into_bytes().into())
    }
}

/// Why a frame was refused by its session: its MAC did not verify (it was
/// altered, injected, replayed, reordered or cut), or it is too short to
/// carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadMac;

impl fmt::Display for BadMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame failed its MAC (altered, injected, replayed or reordered)")
    }
}

impl std::error::Error for BadMac {}

/// One direction of a session: seals the frames it sends, or opens the
/// frames it receives, with an implicit sequence number (frames count from
/// 0 after the greeting; the number is never sent).
#[derive(Clone)]
pub struct FrameMac {
    /// HMAC keyed with the direction's key (the key's pads hashed once).
    keyed: Hmac<Sha256>,
    label: &'static [u8],
    seq: u64,
}

impl fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameMac")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl FrameMac {
    fn new(key: &AuthKey, label: &'static [u8]) -> Self {
        let keyed = match <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0) {
            Ok(m) => m,
            Err(_) => unreachable_key_length(),
        };
        FrameMac {
            keyed,
            label,
            seq: 0,
        }
    }

    /// The sequence number of the next frame.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `HMAC(Kdir, label || seq || header || body)` for the next frame.
    fn tag(&self, header: &[u8], body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(self.label);
        mac.update(&self.seq.to_be_bytes());
        mac.update(header);
        mac.update(body);
        mac
    }

    /// Seals the one frame at `out[start..]` (as written by
    /// [`encode_frame`](crate::frame::encode_frame)): its length grows by
    /// [`MAC_LEN`] and the tag is appended. On `Err` (the length would not
    /// fit the header) the frame is removed and nothing is counted.
    pub fn seal(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), FrameError> {
        let frame_len = out.len().saturating_sub(start);
        let Some(body_len) = frame_len.checked_sub(HEADER_LEN) else {
            out.truncate(start);
            return Err(FrameError::Truncated {
                have: frame_len,
                need: None,
            });
        };
        let Ok(wire_len) = u32::try_from(body_len + MAC_LEN) else {
            out.truncate(start);
            return Err(FrameError::TooLarge {
                len: (body_len + MAC_LEN) as u64,
                max: u32::MAX as usize,
            });
        };
        out[start..start + 4].copy_from_slice(&wire_len.to_be_bytes());
        let tag = self.tag(&out[start..start + HEADER_LEN], &out[start + HEADER_LEN..]);
        out.extend_from_slice(&tag.finalize().into_bytes());
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }

    /// Opens a received frame payload (as returned by
    /// [`FrameDecoder`](crate::frame::FrameDecoder): body then tag): checks
    /// the tag in constant time against the next sequence number and, when
    /// it verifies, strips it, leaving the body. On `Err` nothing of the
    /// frame may be used, and the connection must close (the sequence
    /// numbers are out of step from here on).
    pub fn open(&mut self, payload: &mut Vec<u8>) -> Result<(), BadMac> {
        let Some(body_len) = payload.len().checked_sub(MAC_LEN) else {
            return Err(BadMac);
        };
        let wire_len = u32::try_from(payload.len()).map_err(|_| BadMac)?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&wire_len.to_be_bytes());
        header[4] = FRAME_VERSION;
        let (body, tag) = payload.split_at(body_len);
        self.tag(&header, body)
            .verify_slice(tag)
            .map_err(|_| BadMac)?;
        payload.truncate(body_len);
        // 2^64 frames on one connection are out of reach; wrapping is moot.
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }
}

/// The MACs of one authenticated connection after its greeting: `send`
/// seals what this side sends, `recv` opens what it receives.
#[derive(Debug, Clone)]
pub struct Session {
    /// This side's frames.
    pub send: FrameMac,
    /// The peer's frames.
    pub recv: FrameMac,
}

impl Session {
    fn directions(
        key: &AuthKey,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
    ) -> (FrameMac, FrameMac) {
        let to_server = key.session_key(
            SESSION_CLIENT_LABEL,
            server_nonce,
            client_nonce,
            identity,
            incarnation,
        );
        let to_client = key.session_key(
            SESSION_SERVER_LABEL,
            server_nonce,
            client_nonce,
            identity,
            incarnation,
        );
        (
            FrameMac::new(&to_server, SESSION_CLIENT_LABEL),
            FrameMac::new(&to_client, SESSION_SERVER_LABEL),
        )
    }

    /// The client's side of the session of a greeting.
    pub fn client(
        key: &AuthKey,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
    ) -> Self {
        let (to_server, to_client) =
            Self::directions(key, server_nonce, client_nonce, identity, incarnation);
        Session {
            send: to_server,
            recv: to_client,
        }
    }

    /// The server's side of the session of a greeting.
    pub fn server(
        key: &AuthKey,
        server_nonce: &Nonce,
        client_nonce: &Nonce,
        identity: u64,
        incarnation: u64,
    ) -> Self {
        let (to_server, to_client) =
            Self::directions(key, server_nonce, client_nonce, identity, incarnation);
        Session {
            send: to_client,
            recv: to_server,
        }
    }
}

#[cold]
fn unreachable_key_length() -> ! {
    // Hmac::new_from_slice accepts every key length.
    panic!("HMAC refused a 32-byte key")
}

/// A client's credentials: its key (the shared one, or the identity's
/// own), the identity it claims, and a
/// secret seed its connection nonces are drawn from.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The key (shared, or this identity's own).
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

/// The keys a server checks clients against: one key shared by every node,
/// or one key per identity (see [`read_key_ring`]).
#[derive(Debug, Clone)]
pub enum ServerKeys {
    /// Every client proves the same key, whatever identity it claims.
    Shared(AuthKey),
    /// A client claiming identity `I` must prove the key listed for `I`;
    /// an identity not listed is refused.
    PerNode(BTreeMap<u64, AuthKey>),
}

impl ServerKeys {
    /// The key a client claiming `identity` must prove, if any.
    pub fn key_for(&self, identity: u64) -> Option<&AuthKey> {
        match self {
            ServerKeys::Shared(key) => Some(key),
            ServerKeys::PerNode(keys) => keys.get(&identity),
        }
    }
}

/// A server's credentials: the keys clients must prove and the secret seed
/// of its challenges.
#[derive(Debug, Clone)]
pub struct ServerAuth {
    /// The keys (one shared, or one per identity).
    pub keys: ServerKeys,
    /// Seed of the server nonces (random; the simulator passes a seeded one).
    pub nonce_seed: [u8; 32],
}

impl ServerAuth {
    /// Credentials with one shared key and a random nonce seed.
    pub fn new(key: AuthKey) -> Self {
        ServerAuth {
            keys: ServerKeys::Shared(key),
            nonce_seed: random_bytes(),
        }
    }

    /// Credentials with one key per identity and a random nonce seed.
    pub fn per_node(keys: BTreeMap<u64, AuthKey>) -> Self {
        ServerAuth {
            keys: ServerKeys::PerNode(keys),
            nonce_seed: random_bytes(),
        }
    }
}

/// Most lines of a key ring file ([`read_key_ring`]).
pub const MAX_KEY_RING_LINES: usize = 4096;

/// Refuses a key file its group or others may read or write (as ssh does
/// with private keys).
fn check_key_file_mode(path: &Path) -> Result<(), KeyError> {
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
    Ok(())
}

/// Parses a key ring: one `ID HEXKEY` per line (a decimal identity, white
/// space, 64 hexadecimal digits); blank lines and lines starting with `#`
/// are ignored. An identity listed twice, a malformed line, more than
/// [`MAX_KEY_RING_LINES`] lines or no key at all is an error naming the line.
pub fn parse_key_ring(text: &str) -> Result<BTreeMap<u64, AuthKey>, KeyError> {
    let mut keys = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if lineno > MAX_KEY_RING_LINES {
            return Err(KeyError(format!("more than {MAX_KEY_RING_LINES} lines")));
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(hex), None) = (words.next(), words.next(), words.next()) else {
            return Err(KeyError(format!("line {lineno}: expected `ID HEXKEY`")));
        };
        let id: u64 = id
            .parse()
            .map_err(|_| KeyError(format!("line {lineno}: `{id}` is not a node id")))?;
        let key = AuthKey::from_hex(hex).map_err(|e| KeyError(format!("line {lineno}: {e}")))?;
        if keys.insert(id, key).is_some() {
            return Err(KeyError(format!("line {lineno}: node {id} listed twice")));
        }
    }
    if keys.is_empty() {
        return Err(KeyError("no key in it".into()));
    }
    Ok(keys)
}

/// Reads a key ring file ([`parse_key_ring`]), refusing one that its group
/// or others may read or write.
pub fn read_key_ring(path: &Path) -> Result<BTreeMap<u64, AuthKey>, KeyError> {
    check_key_file_mode(path)?;
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyError(format!("cannot read key file {shown}: {e}")))?;
    parse_key_ring(&text).map_err(|e| KeyError(format!("key file {shown}: {e}")))
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
