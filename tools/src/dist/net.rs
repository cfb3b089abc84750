//! RPC plumbing over ustack sockets: clients that resolve a name through the
//! name service each time they (re)connect, and the name-service client.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rpc::auth::KeyError;
use rpc::binding::{NameServiceClient, Resolver};
use rpc::blocking::Client;
use rpc::{AuthKey, ClientAuth, ClientConfig, RpcError, ServerAuth, ServerConfig};

use super::KeyArgs;
use sockets_api::{Stack, TcpStream};

/// How long a connection attempt over ustack may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a resolved address is trusted. Short, because a node that
/// restarts re-registers (at the same address in the demo, but not
/// necessarily elsewhere).
const RESOLVE_TTL: Duration = Duration::from_secs(1);

/// The identity a command-line client proves: no node's (node ids are
/// 32-bit).
pub const CLIENT_IDENTITY: u64 = u64::MAX;

/// Reads a single key (`--key-file`); the error is one line.
pub fn read_key(path: &Path) -> Result<AuthKey, KeyError> {
    AuthKey::read_file(path)
}

/// A process's keys: the system's shared key, or per-node keys.
#[derive(Debug, Clone)]
pub enum Keys {
    /// `--key-file`: one key for every node.
    Shared(AuthKey),
    /// `--keys`: a key per node id.
    PerNode(BTreeMap<u64, AuthKey>),
}

impl Keys {
    /// Reads `--key-file` or `--keys`; the error is one line.
    pub fn load(args: &KeyArgs) -> Result<Keys, KeyError> {
        match (&args.key_file, &args.keys) {
            (Some(path), _) => Ok(Keys::Shared(read_key(path)?)),
            (None, Some(path)) => Ok(Keys::PerNode(rpc::auth::read_key_ring(path)?)),
            (None, None) => Err(KeyError("give --key-file or --keys".into())),
        }
    }

    /// The key this process proves as `identity`.
    pub fn key_of(&self, identity: u64) -> Result<AuthKey, KeyError> {
        match self {
            Keys::Shared(key) => Ok(key.clone()),
            Keys::PerNode(keys) => keys.get(&identity).cloned().ok_or_else(|| {
                KeyError(format!(
                    "the key ring (--keys) has no key for id {identity}"
                ))
            }),
        }
    }

    /// The credentials of this process as `identity`.
    pub fn client(&self, identity: u64) -> Result<ClientAuth, KeyError> {
        Ok(ClientAuth::new(self.key_of(identity)?, identity))
    }

    /// A server configuration requiring these keys of every connection.
    pub fn server_config(&self) -> ServerConfig {
        let auth = match self {
            Keys::Shared(key) => ServerAuth::new(key.clone()),
            Keys::PerNode(keys) => ServerAuth::per_node(keys.clone()),
        };
        ServerConfig {
            auth: Some(auth),
            ..ServerConfig::default()
        }
    }
}

/// A client configuration for short control calls, authenticating with
/// `auth`.
pub fn quick_config(call_timeout: Duration, auth: &ClientAuth) -> ClientConfig {
    ClientConfig {
        auth: Some(auth.clone()),
        call_timeout,
        attempt_timeout: Duration::from_millis(700),
        max_attempts: 4,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..ClientConfig::default()
    }
}

/// Opens a ustack TCP connection to `addr`.
pub fn connect(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(stack, &SocketAddr::V4(addr), CONNECT_TIMEOUT)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A blocking RPC client of the name service at `names`.
pub fn names_client(
    stack: &Stack,
    names: SocketAddrV4,
    auth: &ClientAuth,
) -> io::Result<NameServiceClient<Client>> {
    let stack = stack.clone();
    let client = Client::new(
        move || connect(&stack, names),
        quick_config(Duration::from_secs(2), auth),
    )?;
    Ok(NameServiceClient::new(client))
}

/// Resolves names through the name service, with a short cache.
pub type NameResolver = Arc<Resolver<Client>>;

/// A resolver over the name service at `names`.
pub fn resolver(stack: &Stack, names: SocketAddrV4, auth: &ClientAuth) -> io::Result<NameResolver> {
    Ok(Arc::new(Resolver::new(
        names_client(stack, names, auth)?,
        RESOLVE_TTL,
    )))
}

/// Resolves `name` and connects to it; forgets the cached address when the
/// connection fails, so that the next attempt looks the name up again.
pub fn connect_name(stack: &Stack, resolver: &NameResolver, name: &str) -> io::Result<TcpStream> {
    let addr = resolver.resolve(name).map_err(|e| {
        let why = match e {
            // Already says which name; the client adds "server unreachable".
            RpcError::Unreachable(why) => why,
            other => format!("{name}: {other}"),
        };
        io::Error::new(io::ErrorKind::NotFound, why)
    })?;
    let addr: SocketAddrV4 = addr.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: bad address {addr:?}"),
        )
    })?;
    connect(stack, addr).inspect_err(|_| resolver.invalidate(name))
}

/// A blocking RPC client of whoever is registered as `name`, looked up
/// again whenever the connection is re-established.
pub fn named_client(
    stack: &Stack,
    resolver: &NameResolver,
    name: &str,
    config: ClientConfig,
) -> io::Result<Client> {
    let (stack, resolver, name) = (stack.clone(), Arc::clone(resolver), name.to_string());
    Client::new(move || connect_name(&stack, &resolver, &name), config)
}

/// The name under which node `id` serves the 2PC peer interface.
pub fn node_name(id: rpc::twopc::NodeId) -> String {
    format!("node-{id}")
}
