//! A scenario's context (addresses and ports of one side) and its trace:
//! every observable outcome, normalized so the two sides compare equal
//! when they behave alike.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::{R, errno_name, revents_name};

/// What one scenario may use on one side.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// "linux" or "ustack".
    pub side: &'static str,
    /// Our address (the socket under test).
    pub own: Ipv4Addr,
    /// The peer's address as seen from us (a kernel of namespace P).
    pub peer: Ipv4Addr,
    /// An on-link address nobody answers ARP for.
    pub unreach: Ipv4Addr,
    /// The subnet's broadcast address.
    pub bcast: Ipv4Addr,
    /// First of this scenario's 10 ports on our side.
    pub own_base: u16,
    /// First of this scenario's 10 ports on the peer.
    pub peer_base: u16,
}

impl Ctx {
    /// Our k-th port (k < 10).
    pub fn own_port(&self, k: u16) -> u16 {
        self.own_base + k
    }
    /// The peer's k-th port (k < 10).
    pub fn peer_port(&self, k: u16) -> u16 {
        self.peer_base + k
    }
    /// 0.0.0.0:own_port(k).
    pub fn any(&self, k: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, self.own_port(k))
    }
    /// own:own_port(k).
    pub fn own_at(&self, k: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.own, self.own_port(k))
    }
    /// peer:peer_port(k).
    pub fn peer_at(&self, k: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.peer, self.peer_port(k))
    }

    fn ip_name(&self, ip: Ipv4Addr) -> String {
        if ip == self.own {
            "OWN".into()
        } else if ip == self.peer {
            "PEER".into()
        } else if ip == self.unreach {
            "UNREACH".into()
        } else if ip == self.bcast {
            "BCAST".into()
        } else if ip == Ipv4Addr::LOCALHOST {
            "LO".into()
        } else if ip.is_unspecified() {
            "ANY".into()
        } else {
            ip.to_string()
        }
    }

    fn port_name(&self, p: u16) -> String {
        if p == 0 {
            "0".into()
        } else if (self.own_base..self.own_base + 10).contains(&p) {
            format!("o{}", p - self.own_base)
        } else if (self.peer_base..self.peer_base + 10).contains(&p) {
            format!("p{}", p - self.peer_base)
        } else {
            "EPH".into()
        }
    }

    /// An address in side-independent form, e.g. `OWN:o0`, `PEER:EPH`.
    pub fn addr_name(&self, a: SocketAddrV4) -> String {
        format!("{}:{}", self.ip_name(*a.ip()), self.port_name(a.port()))
    }
}

/// A value as it goes into the trace.
pub trait Norm {
    fn norm(&self, c: &Ctx) -> String;
}

impl Norm for () {
    fn norm(&self, _: &Ctx) -> String {
        String::new()
    }
}
/// Descriptors differ between sides: shown as `fd`.
impl Norm for i32 {
    fn norm(&self, _: &Ctx) -> String {
        "fd".into()
    }
}
/// Option values.
impl Norm for i64 {
    fn norm(&self, _: &Ctx) -> String {
        self.to_string()
    }
}
/// poll revents.
impl Norm for i16 {
    fn norm(&self, _: &Ctx) -> String {
        revents_name(*self)
    }
}
impl Norm for usize {
    fn norm(&self, _: &Ctx) -> String {
        self.to_string()
    }
}
impl Norm for bool {
    fn norm(&self, _: &Ctx) -> String {
        self.to_string()
    }
}
impl Norm for SocketAddrV4 {
    fn norm(&self, c: &Ctx) -> String {
        c.addr_name(*self)
    }
}
impl Norm for (i32, SocketAddrV4) {
    fn norm(&self, c: &Ctx) -> String {
        format!("fd from {}", c.addr_name(self.1))
    }
}
/// Bytes read: the count the call returned and the bytes themselves.
pub struct Bytes(pub usize, pub Vec<u8>);
impl Norm for Bytes {
    fn norm(&self, _: &Ctx) -> String {
        format!("{} {:?}", self.0, String::from_utf8_lossy(&self.1))
    }
}
/// Bytes and the sender.
pub struct BytesFrom(pub usize, pub Vec<u8>, pub SocketAddrV4);
impl Norm for BytesFrom {
    fn norm(&self, c: &Ctx) -> String {
        format!(
            "{} {:?} from {}",
            self.0,
            String::from_utf8_lossy(&self.1),
            c.addr_name(self.2)
        )
    }
}
/// A value the scenario has normalized itself (e.g. "<=1000").
pub struct Shown(pub String);
impl Norm for Shown {
    fn norm(&self, _: &Ctx) -> String {
        self.0.clone()
    }
}

/// Calls that return within this are "now", later ones "blocked".
pub const BLOCKED_AFTER: Duration = Duration::from_millis(500);

/// The steps of one scenario run. Shared with the runner, which keeps
/// what was recorded if the scenario hangs.
pub struct Trace {
    pub ctx: Ctx,
    pub steps: Arc<Mutex<Vec<String>>>,
}

impl Trace {
    pub fn new(ctx: Ctx) -> Trace {
        Trace {
            ctx,
            steps: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn push(&self, s: String) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    /// Makes a call and records `what -> Ok(value)|ERRNO [now|blocked]`.
    pub fn call<T: Norm>(&mut self, what: impl AsRef<str>, f: impl FnOnce() -> R<T>) -> R<T> {
        let t0 = Instant::now();
        let r = f();
        let timing = if t0.elapsed() < BLOCKED_AFTER {
            "now"
        } else {
            "blocked"
        };
        self.record(what.as_ref(), &r, timing);
        r
    }

    /// Records the result of a call made elsewhere (another thread).
    pub fn record<T: Norm>(&mut self, what: &str, r: &R<T>, timing: &str) {
        let out = match r {
            Ok(v) => format!("Ok({})", v.norm(&self.ctx)),
            Err(e) => errno_name(*e),
        };
        self.push(format!("{what} -> {out} [{timing}]"));
    }

    /// Records an observation (the peer's view, a normalized fact).
    pub fn note(&mut self, what: &str, value: impl AsRef<str>) {
        self.push(format!("{what}: {}", value.as_ref()));
    }
}
