//! Dynamic binding: a name service with leases.
//!
//! A server registers `name -> address` with a lease and renews it while it
//! lives; a registration whose lease runs out disappears (a crashed server
//! stops being handed out). Several servers may register one name: lookups
//! return the oldest live registration first, so clients fail over to the
//! next when it expires. The [`Registry`] is sans-IO (expiry is driven by the
//! `now` of each call, or by [`Registry::expire`]); [`Registrar`] and
//! [`Resolver`] are the blocking helpers for servers and clients.
//!
//! A lease is named by a [`LeaseId`]: 128 bits drawn from a secret seed
//! (SHA-256 of the seed and a counter, see [`NonceSource`]), so that only
//! its holder can renew or withdraw it. A renewal or withdrawal naming a
//! lease the registry does not hold fails with [`BindError::UnknownLease`]
//! and is counted ([`RegistryStats::unknown_lease`]). The registry holds at
//! most [`Registry::DEFAULT_MAX_LEASES`] registrations by default (more
//! are refused with [`BindError::Full`], counted), each with a name and an
//! address of at most [`MAX_NAME_LEN`] bytes.

use crate::auth::NonceSource;
use crate::error::RpcError;
use crate::service::{CallContext, Caller};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Identifies one registration: an unguessable 128-bit token.
pub type LeaseId = u128;

/// Longest name, and longest address, a registration may carry (bytes).
pub const MAX_NAME_LEN: usize = 256;

/// Why a name-service call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindError {
    /// No live registration of this name.
    NotFound,
    /// The lease expired or never existed; register again.
    UnknownLease,
    /// Lease length outside what the registry accepts.
    BadLease {
        /// Shortest accepted, in milliseconds.
        min_ms: u32,
        /// Longest accepted, in milliseconds.
        max_ms: u32,
    },
    /// The registry holds as many registrations as it may.
    Full,
    /// The name or the address is longer than [`MAX_NAME_LEN`].
    TooLong,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::NotFound => write!(f, "name not registered"),
            BindError::UnknownLease => write!(f, "lease expired or unknown"),
            BindError::BadLease { min_ms, max_ms } => {
                write!(f, "lease must be between {min_ms} and {max_ms} ms")
            }
            BindError::Full => write!(f, "the registry is full"),
            BindError::TooLong => write!(f, "name or address longer than {MAX_NAME_LEN} bytes"),
        }
    }
}

impl std::error::Error for BindError {}

crate::service! {
    /// The name service: translates service names into network addresses.
    pub trait NameService {
        server NameServiceServer;
        client NameServiceClient;
        calls NameServiceCall;

        /// Registers `addr` under `name` for `lease_ms`; returns the lease.
        fn register(name: String, addr: String, lease_ms: u32) -> Result<LeaseId, BindError>;
        /// Extends a lease by its original length.
        fn renew(lease: LeaseId) -> Result<(), BindError>;
        /// Withdraws a registration.
        fn unregister(lease: LeaseId) -> Result<(), BindError>;
        /// The address of a live registration of `name` (the oldest).
        fn lookup(name: String) -> Result<String, BindError>;
        /// Every live address of `name`, oldest first.
        fn lookup_all(name: String) -> Vec<String>;
    }
}

#[derive(Debug, Clone)]
struct Lease {
    name: String,
    addr: String,
    length: Duration,
    expires: Instant,
}

/// Counters of a [`Registry`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    /// Renewals and withdrawals naming a lease not held (a wrong or guessed
    /// token, or one that expired).
    pub unknown_lease: u64,
    /// Registrations refused because the registry was full.
    pub full: u64,
}

/// The sans-IO name registry (implements [`NameService`]).
#[derive(Debug, Clone)]
pub struct Registry {
    leases: BTreeMap<LeaseId, Lease>,
    /// Per name, its leases in registration order.
    by_name: HashMap<String, Vec<LeaseId>>,
    tokens: NonceSource,
    min_lease: Duration,
    max_lease: Duration,
    max_leases: usize,
    stats: RegistryStats,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(Duration::from_millis(100), Duration::from_secs(3600))
    }
}

impl Registry {
    /// Registrations held at most, unless [`with_max_leases`](Self::with_max_leases) says otherwise.
    pub const DEFAULT_MAX_LEASES: usize = 4096;

    /// A registry accepting leases between `min_lease` and `max_lease`,
    /// drawing lease tokens from a random seed.
    pub fn new(min_lease: Duration, max_lease: Duration) -> Self {
        Registry::with_seed(min_lease, max_lease, crate::auth::random_bytes())
    }

    /// Like [`new`](Self::new), with the secret seed of the lease tokens
    /// given (the simulator passes a seeded one).
    pub fn with_seed(min_lease: Duration, max_lease: Duration, seed: [u8; 32]) -> Self {
        Registry {
            leases: BTreeMap::new(),
            by_name: HashMap::new(),
            tokens: NonceSource::new(seed, 0),
            min_lease,
            max_lease,
            max_leases: Self::DEFAULT_MAX_LEASES,
            stats: RegistryStats::default(),
        }
    }

    /// Holds at most `max` registrations.
    pub fn with_max_leases(mut self, max: usize) -> Self {
        self.max_leases = max;
        self
    }

    /// Counters.
    pub fn stats(&self) -> RegistryStats {
        self.stats
    }

    /// Drops every registration whose lease has run out.
    pub fn expire(&mut self, now: Instant) {
        let dead: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.remove(id);
        }
    }

    /// When the next lease runs out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.expires).min()
    }

    /// Live registrations.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    fn remove(&mut self, id: LeaseId) -> bool {
        let Some(lease) = self.leases.remove(&id) else {
            return false;
        };
        if let Some(ids) = self.by_name.get_mut(&lease.name) {
            ids.retain(|&l| l != id);
            if ids.is_empty() {
                self.by_name.remove(&lease.name);
            }
        }
        true
    }

    fn live(&self, name: &str) -> Vec<String> {
        self.by_name
            .get(name)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.leases.get(id))
                    .map(|l| l.addr.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl NameService for Registry {
    fn register(
        &mut self,
        ctx: &CallContext,
        name: String,
        addr: String,
        lease_ms: u32,
    ) -> Result<LeaseId, BindError> {
        self.expire(ctx.now);
        let length = Duration::from_millis(lease_ms.into());
        if length < self.min_lease || length > self.max_lease {
            let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
            return Err(BindError::BadLease {
                min_ms: ms(self.min_lease),
                max_ms: ms(self.max_lease),
            });
        }
        if name.len() > MAX_NAME_LEN || addr.len() > MAX_NAME_LEN {
            return Err(BindError::TooLong);
        }
        if self.leases.len() >= self.max_leases {
            self.stats.full += 1;
            return Err(BindError::Full);
        }
        let id = loop {
            let mut token = [0u8; 16];
            token.copy_from_slice(&self.tokens.next_nonce()[..16]);
            let id = LeaseId::from_be_bytes(token);
            if !self.leases.contains_key(&id) {
                break id;
            }
        };
        self.by_name.entry(name.clone()).or_default().push(id);
        self.leases.insert(
            id,
            Lease {
                name,
                addr,
                length,
                expires: ctx.now + length,
            },
        );
        Ok(id)
    }

    fn renew(&mut self, ctx: &CallContext, lease: LeaseId) -> Result<(), BindError> {
        self.expire(ctx.now);
        let Some(l) = self.leases.get_mut(&lease) else {
            self.stats.unknown_lease += 1;
            return Err(BindError::UnknownLease);
        };
        l.expires = ctx.now + l.length;
        Ok(())
    }

    fn unregister(&mut self, ctx: &CallContext, lease: LeaseId) -> Result<(), BindError> {
        self.expire(ctx.now);
        if self.remove(lease) {
            Ok(())
        } else {
            self.stats.unknown_lease += 1;
            Err(BindError::UnknownLease)
        }
    }

    fn lookup(&mut self, ctx: &CallContext, name: String) -> Result<String, BindError> {
        self.expire(ctx.now);
        self.live(&name)
            .into_iter()
            .next()
            .ok_or(BindError::NotFound)
    }

    fn lookup_all(&mut self, ctx: &CallContext, name: String) -> Vec<String> {
        self.expire(ctx.now);
        self.live(&name)
    }
}

/// Keeps a registration alive from a background thread: renews every third
/// of the lease, registers again if the lease was lost (registry restarted,
/// or renewals failed for too long), and unregisters when dropped.
#[derive(Debug)]
pub struct Registrar {
    stop: Arc<AtomicBool>,
    lease: Arc<Mutex<Option<LeaseId>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Registrar {
    /// Registers `addr` under `name` now (failing if the registry cannot be
    /// reached) and keeps the lease renewed.
    pub fn start<C: Caller + Send + 'static>(
        client: NameServiceClient<C>,
        name: String,
        addr: String,
        lease: Duration,
    ) -> Result<Registrar, RpcError> {
        let lease_ms = u32::try_from(lease.as_millis()).unwrap_or(u32::MAX);
        let first = flatten(client.register(name.clone(), addr.clone(), lease_ms))?;
        let stop = Arc::new(AtomicBool::new(false));
        let current = Arc::new(Mutex::new(Some(first)));
        let (stop2, current2) = (Arc::clone(&stop), Arc::clone(&current));
        let period = lease / 3;
        let thread = thread::Builder::new()
            .name(format!("rpc-registrar-{name}"))
            .spawn(move || {
                let mut next = Instant::now() + period;
                while !stop2.load(Ordering::Relaxed) {
                    if Instant::now() < next {
                        thread::sleep(Duration::from_millis(10).min(period));
                        continue;
                    }
                    next = Instant::now() + period;
                    let held = *lock(&current2);
                    let renewed = match held {
                        Some(id) => client.renew(id),
                        None => Ok(Err(BindError::UnknownLease)),
                    };
                    match renewed {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            let again =
                                flatten(client.register(name.clone(), addr.clone(), lease_ms));
                            *lock(&current2) = again.ok();
                        }
                        Err(e) => log::debug!("registrar {name}: renew failed: {e}"),
                    }
                }
                if let Some(id) = lock(&current2).take() {
                    let _ = client.unregister(id);
                }
            })
            .map_err(|e| RpcError::Unreachable(e.to_string()))?;
        Ok(Registrar {
            stop,
            lease: current,
            thread: Some(thread),
        })
    }

    /// The lease currently held, if any.
    pub fn lease(&self) -> Option<LeaseId> {
        *lock(&self.lease)
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Looks names up through the name service, caching answers for a while.
#[derive(Debug)]
pub struct Resolver<C> {
    client: NameServiceClient<C>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl<C: Caller> Resolver<C> {
    /// A resolver whose cached answers live for `ttl`.
    pub fn new(client: NameServiceClient<C>, ttl: Duration) -> Self {
        Resolver {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The address of `name`, from the cache if fresh.
    pub fn resolve(&self, name: &str) -> Result<String, RpcError> {
        let now = Instant::now();
        if let Some((addr, at)) = lock(&self.cache).get(name) {
            if now < *at + self.ttl {
                return Ok(addr.clone());
            }
        }
        let addr = self
            .client
            .lookup(name.to_string())?
            .map_err(|e| RpcError::Unreachable(format!("{name}: {e}")))?;
        lock(&self.cache).insert(name.to_string(), (addr.clone(), now));
        Ok(addr)
    }

    /// Forgets the cached address of `name` (call it when connecting to it
    /// failed, so the next lookup can fail over).
    pub fn invalidate(&self, name: &str) {
        lock(&self.cache).remove(name);
    }
}

fn flatten<T>(r: Result<Result<T, BindError>, RpcError>) -> Result<T, RpcError> {
    r?.map_err(|e| RpcError::Remote(crate::RemoteError::Application(e.to_string())))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests;
