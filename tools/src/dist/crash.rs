//! Deterministic crash injection for the 2PC demo: a [`Wal`] wrapper that
//! aborts the process at a chosen protocol step.
//!
//! Every interesting step of 2PC is visible at the log, because the driver
//! contract puts each record on stable storage right before the message that
//! announces it. So "crash after logging READY, before voting" is "abort
//! right after the sync that made a READY record durable", and "crash with
//! every vote in, before the decision is logged" is "abort instead of
//! appending the GLOBAL-COMMIT record". `std::process::abort` is as abrupt as
//! SIGKILL: nothing is flushed, no socket is closed.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use rpc::twopc::{LogRecord, Wal};

/// A protocol step at which a node can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Coordinator: BEGIN is durable, no VOTE-REQUEST has left.
    BeginLogged,
    /// Coordinator: every vote was COMMIT; dies before logging the decision
    /// (participants are READY and in doubt). Participant: the
    /// GLOBAL-COMMIT arrived; dies before logging it.
    BeforeCommit,
    /// Coordinator: GLOBAL-COMMIT is durable, not yet sent to anyone.
    /// Participant: COMMIT is durable and applied, the ACK not yet sent.
    CommitLogged,
    /// Coordinator: every participant acknowledged; dies before logging END.
    BeforeEnd,
    /// Participant: READY is durable, the vote not yet sent.
    ReadyLogged,
}

impl CrashPoint {
    /// Every point, with its command-line name and the roles it applies to.
    pub const ALL: [(CrashPoint, &'static str, Roles); 5] = [
        (CrashPoint::BeginLogged, "begin-logged", Roles::Coordinator),
        (CrashPoint::BeforeCommit, "before-commit", Roles::Both),
        (CrashPoint::CommitLogged, "commit-logged", Roles::Both),
        (CrashPoint::BeforeEnd, "before-end", Roles::Coordinator),
        (CrashPoint::ReadyLogged, "ready-logged", Roles::Participant),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        CrashPoint::ALL
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or("?", |(_, n, _)| n)
    }

    fn roles(self) -> Roles {
        CrashPoint::ALL
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or(Roles::Both, |(_, _, r)| *r)
    }

    /// True if the point is reached before `rec` is appended.
    fn before_append(self, rec: &LogRecord) -> bool {
        matches!(
            (self, rec),
            (
                CrashPoint::BeforeCommit,
                LogRecord::Global { commit: true, .. }
            ) | (
                CrashPoint::BeforeCommit,
                LogRecord::Local { commit: true, .. }
            ) | (CrashPoint::BeforeEnd, LogRecord::End { .. })
        )
    }

    /// True if the point is reached once `rec` is durable.
    fn after_sync(self, rec: &LogRecord) -> bool {
        matches!(
            (self, rec),
            (CrashPoint::BeginLogged, LogRecord::Begin { .. })
                | (
                    CrashPoint::CommitLogged,
                    LogRecord::Global { commit: true, .. }
                )
                | (
                    CrashPoint::CommitLogged,
                    LogRecord::Local { commit: true, .. }
                )
                | (CrashPoint::ReadyLogged, LogRecord::Ready { .. })
        )
    }
}

/// Which roles a crash point applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Coordinator only.
    Coordinator,
    /// Participant only.
    Participant,
    /// Both.
    Both,
}

/// A node's role, for validating crash points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The coordinator.
    Coordinator,
    /// A bank.
    Participant,
}

/// "Crash at the `nth` time `point` is reached" (`POINT` or `POINT:N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashSpec {
    /// Where.
    pub point: CrashPoint,
    /// At which occurrence (1: the next one).
    pub nth: u32,
}

impl std::str::FromStr for CrashSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, nth) = match s.split_once(':') {
            Some((name, n)) => {
                let nth: u32 = n
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("'{n}' is not a positive occurrence count"))?;
                (name, nth)
            }
            None => (s, 1),
        };
        let point = CrashPoint::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(p, _, _)| *p)
            .ok_or_else(|| {
                let names: Vec<&str> = CrashPoint::ALL.iter().map(|(_, n, _)| *n).collect();
                format!("unknown crash point '{name}' (one of {})", names.join(", "))
            })?;
        Ok(CrashSpec { point, nth })
    }
}

impl fmt::Display for CrashSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.point.name(), self.nth)
    }
}

impl CrashSpec {
    /// Rejects a point that a node of `role` never reaches.
    pub fn check_role(&self, role: Role) -> Result<(), String> {
        let ok = match (self.point.roles(), role) {
            (Roles::Both, _) => true,
            (Roles::Coordinator, r) => r == Role::Coordinator,
            (Roles::Participant, r) => r == Role::Participant,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "crash point '{}' does not exist at a {}",
                self.point.name(),
                match role {
                    Role::Coordinator => "coordinator",
                    Role::Participant => "participant",
                }
            ))
        }
    }
}

/// The armed crash, shared between the log wrapper and the control service
/// (which can arm it at run time).
#[derive(Debug, Default)]
pub struct CrashPlan {
    armed: Mutex<Option<(CrashPoint, u32)>>,
}

impl CrashPlan {
    /// A plan, armed with `spec` if given.
    pub fn new(spec: Option<CrashSpec>) -> Arc<CrashPlan> {
        Arc::new(CrashPlan {
            armed: Mutex::new(spec.map(|s| (s.point, s.nth))),
        })
    }

    /// Arms (replacing any earlier plan).
    pub fn arm(&self, spec: CrashSpec) {
        *self.lock() = Some((spec.point, spec.nth));
    }

    /// What is armed.
    pub fn armed(&self) -> Option<CrashSpec> {
        self.lock().map(|(point, nth)| CrashSpec { point, nth })
    }

    fn lock(&self) -> MutexGuard<'_, Option<(CrashPoint, u32)>> {
        match self.armed.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts an occurrence of the armed point if `hit` says `rec` reaches
    /// it; the point when this is the occurrence to crash at.
    fn reached(
        &self,
        rec: &LogRecord,
        hit: fn(CrashPoint, &LogRecord) -> bool,
    ) -> Option<CrashPoint> {
        let mut armed = self.lock();
        match *armed {
            Some((point, nth)) if hit(point, rec) => {
                if nth <= 1 {
                    *armed = None;
                    Some(point)
                } else {
                    *armed = Some((point, nth - 1));
                    None
                }
            }
            _ => None,
        }
    }
}

/// What the wrapper does when the point is reached. The real one aborts the
/// process; tests record instead.
pub type CrashAction = Box<dyn FnMut(CrashPoint) + Send>;

/// The process-killing action.
pub fn abort_action(node: String) -> CrashAction {
    Box::new(move |point| {
        let mut err = io::stderr().lock();
        let _ = writeln!(
            err,
            "ustack 2pc {node}: crash-at {}: aborting",
            point.name()
        );
        let _ = err.flush();
        std::process::abort();
    })
}

/// A [`Wal`] that runs the crash action at the armed [`CrashPoint`].
pub struct CrashWal<W> {
    inner: W,
    plan: Arc<CrashPlan>,
    action: CrashAction,
    /// Records appended since the last sync.
    unsynced: Vec<LogRecord>,
}

impl<W> fmt::Debug for CrashWal<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashWal")
            .field("armed", &self.plan.armed())
            .finish()
    }
}

impl<W: Wal> CrashWal<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, plan: Arc<CrashPlan>, action: CrashAction) -> Self {
        CrashWal {
            inner,
            plan,
            action,
            unsynced: Vec::new(),
        }
    }
}

impl<W: Wal> Wal for CrashWal<W> {
    fn append(&mut self, rec: &LogRecord) -> io::Result<()> {
        if let Some(point) = self.plan.reached(rec, CrashPoint::before_append) {
            (self.action)(point);
        }
        self.inner.append(rec)?;
        self.unsynced.push(rec.clone());
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()?;
        for rec in std::mem::take(&mut self.unsynced) {
            if let Some(point) = self.plan.reached(&rec, CrashPoint::after_sync) {
                (self.action)(point);
            }
        }
        Ok(())
    }

    fn replay(&mut self) -> io::Result<Vec<LogRecord>> {
        self.unsynced.clear();
        self.inner.replay()
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn rewrite(&mut self, records: &[LogRecord]) -> io::Result<()> {
        // The checkpoint holds the unsynced records' effect: no crash point
        // is reached by them any more.
        self.unsynced.clear();
        self.inner.rewrite(records)
    }
}

#[cfg(test)]
mod tests;
