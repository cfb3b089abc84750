//! The blocking client: a [`ClientCore`] driven by an I/O thread.

use super::{Transport, is_timeout};
use crate::client::{CallId, ClientConfig, ClientCore, ClientEvent};
use crate::error::RpcError;
use crate::service::Caller;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How often the I/O thread wakes up to run timers when nothing arrives;
/// deadlines and retries fire with this granularity.
const TICK: Duration = Duration::from_millis(10);

/// Extra time a caller waits beyond its deadline for the I/O thread to
/// report the outcome before giving up on its own.
const GRACE: Duration = Duration::from_secs(1);

type Reply = Result<Vec<u8>, RpcError>;

/// The writing half of a connection, type-erased.
trait WriteHalf: Write + Send {
    fn close(&self);
}

impl<S: Transport> WriteHalf for S {
    fn close(&self) {
        let _ = Transport::shutdown(self);
    }
}

struct State {
    core: ClientCore,
    /// Incremented on every connect and disconnect; stale readers and
    /// writers compare it with theirs.
    generation: u64,
    waiters: HashMap<CallId, mpsc::Sender<Reply>>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the I/O thread while it waits without a connection.
    wake: Condvar,
    writer: Mutex<Option<(u64, Box<dyn WriteHalf>)>>,
    /// Bytes the core produced for connection `.0`, not yet written (lock
    /// order: state, then writer, then this).
    pending: Mutex<(u64, Vec<u8>)>,
    call_timeout: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn lock_writer(&self) -> MutexGuard<'_, Option<(u64, Box<dyn WriteHalf>)>> {
        match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Hands finished calls to their waiting threads and queues the bytes
    /// to send (written by [`Shared::write`] after the state lock is
    /// released). Returns the connection they are for.
    fn collect(&self, st: &mut State) -> u64 {
        while let Some(ClientEvent::Completed { call, result }) = st.core.poll_event() {
            if let Some(tx) = st.waiters.remove(&call) {
                let _ = tx.send(result);
            }
        }
        let mut pending = self.lock_pending();
        if pending.0 != st.generation {
            // Bytes for a connection that is gone: the core resends its
            // calls on the next one.
            *pending = (st.generation, Vec::new());
        }
        st.core.poll_transmit(&mut pending.1);
        st.generation
    }

    fn lock_pending(&self) -> MutexGuard<'_, (u64, Vec<u8>)> {
        match self.pending.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Writes the queued bytes on connection `generation`, without holding
    /// the state lock (so a slow peer never stops replies from being
    /// read). The bytes are taken from the queue under the writer lock, so
    /// that frames go out in the order the core produced them (an
    /// authenticated connection numbers them).
    fn write(&self, generation: u64) {
        let failed = {
            let mut writer = self.lock_writer();
            let bytes = {
                let mut pending = self.lock_pending();
                if pending.0 != generation || pending.1.is_empty() {
                    return;
                }
                std::mem::take(&mut pending.1)
            };
            match writer.as_mut() {
                Some((g, w)) if *g == generation => {
                    w.write_all(&bytes).and_then(|()| w.flush()).is_err()
                }
                // The connection these bytes were for is gone; the core
                // resends the calls on the next one.
                _ => false,
            }
        };
        if failed {
            self.disconnect(generation);
        }
    }

    /// Drops connection `generation` (if still current) and tells the core.
    fn disconnect(&self, generation: u64) {
        let g = {
            let mut st = self.lock();
            if st.generation != generation {
                return;
            }
            st.generation += 1;
            if let Some((_, w)) = self.lock_writer().take() {
                w.close();
            }
            st.core.handle_disconnected(Instant::now());
            self.collect(&mut st)
        };
        self.write(g);
        self.wake.notify_all();
    }
}

/// Closes the client when the last [`Client`] clone is dropped.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.shutdown = true;
        if let Some((_, w)) = self.shared.lock_writer().take() {
            w.close();
        }
        drop(st);
        self.shared.wake.notify_all();
    }
}

/// A blocking RPC client: any number of threads call through one connection
/// at once; replies are matched to callers by request id.
///
/// The connection is opened lazily by the connector closure, and reopened
/// (with backoff) after it fails; calls in flight are retried on the new
/// connection with the same request ids (see [`ClientCore`]). Cloning is
/// cheap and shares the connection; the I/O thread stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    client_id: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl Client {
    /// A client whose connections come from `connector` (called on the I/O
    /// thread, e.g. `move || TcpStream::connect(addr)`).
    pub fn new<S, F>(connector: F, config: ClientConfig) -> io::Result<Client>
    where
        S: Transport,
        F: FnMut() -> io::Result<S> + Send + 'static,
    {
        Self::with_client_id(crate::random_id(), connector, config)
    }

    /// Like [`new`](Self::new) with a chosen client id (tests).
    pub fn with_client_id<S, F>(
        client_id: u64,
        connector: F,
        config: ClientConfig,
    ) -> io::Result<Client>
    where
        S: Transport,
        F: FnMut() -> io::Result<S> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            call_timeout: config.call_timeout,
            state: Mutex::new(State {
                core: ClientCore::new(client_id, config),
                generation: 0,
                waiters: HashMap::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            writer: Mutex::new(None),
            pending: Mutex::new((0, Vec::new())),
        });
        let io_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("rpc-client-io".into())
            .spawn(move || io_loop(&io_shared, connector))?;
        Ok(Client {
            handle: Arc::new(Handle { shared }),
            client_id,
        })
    }

    /// This client's id (the server's at-most-once key with the request id).
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// Counters of the client core ([`ClientStats`](crate::ClientStats)).
    pub fn stats(&self) -> crate::ClientStats {
        self.handle.shared.lock().core.stats()
    }

    /// Performs a call and waits for its reply, at most `timeout` (default
    /// [`ClientConfig::call_timeout`]).
    pub fn call_timeout(&self, method: u32, args: Vec<u8>, timeout: Option<Duration>) -> Reply {
        let shared = &self.handle.shared;
        let (tx, rx) = mpsc::channel();
        let (id, generation) = {
            let mut st = shared.lock();
            if st.shutdown {
                return Err(RpcError::Closed);
            }
            let id = st.core.start_call(Instant::now(), method, args, timeout);
            st.waiters.insert(id, tx);
            (id, shared.collect(&mut st))
        };
        shared.write(generation);
        shared.wake.notify_all();
        let patience = timeout.unwrap_or(shared.call_timeout) + GRACE;
        match rx.recv_timeout(patience) {
            Ok(reply) => reply,
            Err(_) => {
                let mut st = shared.lock();
                st.core.cancel(id);
                st.waiters.remove(&id);
                Err(RpcError::Timeout)
            }
        }
    }

    /// A [`Caller`] view whose calls use `timeout` as their deadline.
    pub fn with_timeout(&self, timeout: Duration) -> WithTimeout<'_> {
        WithTimeout {
            client: self,
            timeout,
        }
    }
}

impl Caller for Client {
    fn call(&self, method: u32, args: Vec<u8>) -> Reply {
        self.call_timeout(method, args, None)
    }
}

/// A [`Client`] with a per-call deadline; see [`Client::with_timeout`].
#[derive(Debug, Clone, Copy)]
pub struct WithTimeout<'a> {
    client: &'a Client,
    timeout: Duration,
}

impl Caller for WithTimeout<'_> {
    fn call(&self, method: u32, args: Vec<u8>) -> Reply {
        self.client.call_timeout(method, args, Some(self.timeout))
    }
}

/// The I/O thread: connects, reads replies, runs timers.
fn io_loop<S, F>(shared: &Shared, mut connector: F)
where
    S: Transport,
    F: FnMut() -> io::Result<S>,
{
    let mut reader: Option<(u64, S)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Timers, stale reader, and whether to connect.
        let (connect, generation) = {
            let mut st = shared.lock();
            if st.shutdown {
                break;
            }
            let now = Instant::now();
            if st.core.poll_timeout().is_some_and(|t| t <= now) {
                st.core.handle_timeout(now);
                if reader.is_some() && !st.core.is_connected() {
                    // The core gave the connection up (no greeting in time):
                    // close it, so that the next loop connects again.
                    log::debug!("rpc client: no greeting from the server; closing");
                    st.generation += 1;
                    if let Some((_, w)) = shared.lock_writer().take() {
                        w.close();
                    }
                }
            }
            if reader.as_ref().is_some_and(|(g, _)| *g != st.generation) {
                reader = None;
            }
            let connect = reader.is_none() && st.core.wants_connection(now);
            if reader.is_none() && !connect {
                let wait = st
                    .core
                    .poll_timeout()
                    .map_or(TICK * 10, |t| t.saturating_duration_since(now))
                    .clamp(Duration::from_millis(1), TICK * 10);
                st = match shared.wake.wait_timeout(st, wait) {
                    Ok((g, _)) => g,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            (connect, shared.collect(&mut st))
        };
        shared.write(generation);

        if connect {
            let opened = connector().and_then(|s| {
                s.set_read_timeout(Some(TICK))?;
                let w = s.try_clone()?;
                Ok((s, w))
            });
            let g = {
                let mut st = shared.lock();
                let now = Instant::now();
                match opened {
                    Ok((s, w)) => {
                        st.generation += 1;
                        *shared.lock_writer() = Some((st.generation, Box::new(w)));
                        reader = Some((st.generation, s));
                        st.core.handle_connected(now);
                    }
                    Err(e) => {
                        log::debug!("rpc client: connect failed: {e}");
                        st.core.handle_connect_failed(now, &e.to_string());
                    }
                }
                shared.collect(&mut st)
            };
            shared.write(g);
            continue;
        }

        let Some((g, stream)) = reader.as_mut() else {
            continue;
        };
        let g = *g;
        match stream.read(&mut buf) {
            Ok(0) => {
                reader = None;
                shared.disconnect(g);
            }
            Ok(n) => {
                let wg = {
                    let mut st = shared.lock();
                    if st.generation == g {
                        if let Err(e) = st.core.handle_bytes(Instant::now(), &buf[..n]) {
                            // The core has disconnected itself; close the stream.
                            log::debug!("rpc client: closing connection: {e}");
                            st.generation += 1;
                            if let Some((_, w)) = shared.lock_writer().take() {
                                w.close();
                            }
                            reader = None;
                        }
                    }
                    shared.collect(&mut st)
                };
                shared.write(wg);
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("rpc client: read failed: {e}");
                reader = None;
                shared.disconnect(g);
            }
        }
    }
    // Shut down: nobody will answer the remaining callers.
    let mut st = shared.lock();
    for (_, tx) in st.waiters.drain() {
        let _ = tx.send(Err(RpcError::Closed));
    }
}
