//! RPC plumbing over ustack sockets: clients that resolve a name through the
//! name service each time they (re)connect, and the name-service client.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rpc::binding::{NameServiceClient, Resolver};
use rpc::blocking::Client;
use rpc::{AuthKey, ClientAuth, ClientConfig, RpcError, ServerAuth, ServerConfig};
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

/// Reads the system's key (`--key-file`); the error is one line.
pub fn read_key(path: &Path) -> Result<AuthKey, rpc::auth::KeyError> {
    AuthKey::read_file(path)
}

/// A server configuration requiring `key` of every connection.
pub fn server_config(key: &AuthKey) -> ServerConfig {
    ServerConfig {
        auth: Some(ServerAuth::new(key.clone())),
        ..ServerConfig::default()
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
