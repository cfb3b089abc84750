//! What `ustack 2pc status` prints and what `ustack 2pc check` judges: every
//! account, every transaction's outcome as each node recorded it, and
//! whether the system is consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rpc::twopc::{NodeId, TxId, audit};

use super::control::StatusReply;

/// One node's answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The name it was asked under.
    pub name: String,
    /// Its node id.
    pub id: NodeId,
    /// `coordinator` or `participant`.
    pub role: String,
    /// Committed balances (participants).
    pub balances: Vec<(String, u64)>,
    /// Accounts locked by prepared transactions.
    pub locked: u64,
    /// Every transaction: outcome if known here, and label.
    pub txs: BTreeMap<TxId, (Option<bool>, String)>,
    /// Coordinator: it forgot every transaction numbered below this
    /// (ended at every bank; see `rpc::twopc`, "Bounded logs").
    pub forgotten_below: u64,
    /// Counters (log bytes, compactions, refusals, ...).
    pub counters: Vec<(String, u64)>,
}

impl NodeReport {
    /// From the RPC reply.
    pub fn new(name: &str, reply: StatusReply) -> Self {
        let (id, role, balances, locked, txs, forgotten_below, counters) = reply;
        NodeReport {
            name: name.to_string(),
            id,
            role,
            balances,
            locked,
            txs: txs.into_iter().map(|(tx, d, l)| (tx, (d, l))).collect(),
            forgotten_below,
            counters,
        }
    }

    fn is_coordinator(&self) -> bool {
        self.role == "coordinator"
    }

    /// Sum of balances.
    pub fn total(&self) -> u128 {
        self.balances.iter().map(|(_, b)| u128::from(*b)).sum()
    }
}

/// Parses `C.S.N` (as in `tx 0.17.<32 hex digits>`) into a transaction id.
pub fn parse_tx(s: &str) -> Option<TxId> {
    s.parse().ok()
}

/// Parses the lines `ustack 2pc transfer` prints (`tx C.S.N COMMIT|ABORT`);
/// other lines are ignored.
pub fn parse_reported(text: &str) -> BTreeMap<TxId, bool> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("tx") {
            continue;
        }
        let (Some(tx), Some(outcome)) = (words.next().and_then(parse_tx), words.next()) else {
            continue;
        };
        match outcome {
            "COMMIT" => out.insert(tx, true),
            "ABORT" => out.insert(tx, false),
            _ => None,
        };
    }
    out
}

/// True when nothing more will change by itself: every transaction is
/// decided at every node that knows it, every decision is acknowledged (the
/// coordinator logged END), and no account is locked.
pub fn settled(reports: &[NodeReport]) -> bool {
    reports.iter().all(|r| {
        r.locked == 0
            && r.txs
                .values()
                .all(|(d, label)| d.is_some() && !label.ends_with('~'))
    })
}

/// The findings of `check`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Sum of every balance at every participant.
    pub total: u128,
    /// What the sum must be, if known.
    pub expected_total: Option<u128>,
    /// Transactions whose outcome differs between nodes (or from what a
    /// client was told).
    pub disagreements: Vec<String>,
    /// Transactions some node has not decided, or whose decision some
    /// participant has not acknowledged.
    pub undecided: Vec<String>,
    /// Anything else wrong (locks held, transactions the coordinator does
    /// not know).
    pub other: Vec<String>,
    /// Transactions a client was told about that every node has forgotten
    /// (ended everywhere, below the coordinator's watermark): nothing left
    /// to compare the client's outcome with.
    pub forgotten: usize,
    /// Transactions committed / aborted (by the coordinator's record).
    pub committed: usize,
    /// See `committed`.
    pub aborted: usize,
}

impl Verdict {
    /// Money conserved.
    pub fn conserved(&self) -> bool {
        self.expected_total.is_none_or(|e| e == self.total)
    }

    /// Every check passed.
    pub fn ok(&self) -> bool {
        self.conserved()
            && self.disagreements.is_empty()
            && self.undecided.is_empty()
            && self.other.is_empty()
    }
}

/// Judges the reports (and the outcomes clients were told, `reported`).
pub fn judge(
    reports: &[NodeReport],
    expected_total: Option<u128>,
    reported: &BTreeMap<TxId, bool>,
) -> Verdict {
    let mut v = Verdict {
        total: reports
            .iter()
            .filter(|r| !r.is_coordinator())
            .map(NodeReport::total)
            .sum(),
        expected_total,
        ..Verdict::default()
    };
    let all: BTreeSet<TxId> = reports
        .iter()
        .flat_map(|r| r.txs.keys().copied())
        .chain(reported.keys().copied())
        .collect();
    for tx in all {
        let mut voices: Vec<(&str, bool)> = Vec::new();
        for r in reports {
            match r.txs.get(&tx) {
                Some((Some(d), label)) => {
                    voices.push((&r.name, *d));
                    if label.ends_with('~') {
                        v.undecided.push(format!(
                            "{tx}: {} decided {label} but not every participant acknowledged",
                            r.name
                        ));
                    }
                }
                Some((None, label)) => v.undecided.push(format!("{tx}: {} is {label}", r.name)),
                None => {}
            }
        }
        if let Some(&d) = reported.get(&tx) {
            voices.push(("client", d));
        }
        if let Some(d) = audit::disagreement(tx, voices) {
            v.disagreements.push(d.to_string());
        }
        let coordinator = reports
            .iter()
            .find(|r| r.is_coordinator() && r.id == tx.coordinator);
        match coordinator.map(|c| c.txs.get(&tx)) {
            Some(Some((Some(true), _))) => v.committed += 1,
            Some(Some((Some(false), _))) => v.aborted += 1,
            Some(Some((None, _))) => {}
            Some(None) if coordinator.is_some_and(|c| tx.seq < c.forgotten_below) => {
                v.forgotten += 1
            }
            Some(None) => v.other.push(format!(
                "{tx}: unknown to its coordinator ({})",
                tx.coordinator
            )),
            None => {}
        }
    }
    for r in reports.iter().filter(|r| r.locked > 0) {
        v.other
            .push(format!("{}: {} account(s) still locked", r.name, r.locked));
    }
    v
}

fn outcome_word(commit: bool) -> &'static str {
    if commit { "COMMIT" } else { "ABORT" }
}

/// The accounts, and one row per transaction with each node's record
/// (`-`: the node has no record of it, as a bank outside the transfer).
pub fn render(reports: &[NodeReport], reported: &BTreeMap<TxId, bool>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "accounts:");
    for r in reports.iter().filter(|r| !r.is_coordinator()) {
        for (account, balance) in &r.balances {
            let _ = writeln!(out, "  {:<10} {:<10} {balance:>8}", r.name, account);
        }
        let _ = writeln!(out, "  {:<10} {:<10} {:>8}", r.name, "(total)", r.total());
    }
    let total: u128 = reports
        .iter()
        .filter(|r| !r.is_coordinator())
        .map(NodeReport::total)
        .sum();
    let _ = writeln!(out, "  {:<21} {total:>8}", "all banks");
    let _ = writeln!(out, "nodes:");
    for r in reports {
        let counters: Vec<String> = r.counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let _ = writeln!(out, "  {:<10} {}", r.name, counters.join(" "));
    }
    let txs: BTreeSet<TxId> = reports
        .iter()
        .flat_map(|r| r.txs.keys().copied())
        .chain(reported.keys().copied())
        .collect();
    let _ = writeln!(
        out,
        "transactions ({}), as each node remembers them (~: decision not yet acknowledged by all; \
         -: no record, or forgotten once ended everywhere):",
        txs.len()
    );
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let mut header = format!("  {:<14}", "tx");
    for r in reports {
        let _ = write!(header, " {:<width$}", r.name);
    }
    if !reported.is_empty() {
        let _ = write!(header, " {:<width$}", "client");
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for tx in txs {
        let mut row = format!("  {:<14}", tx.short());
        for r in reports {
            let label = r.txs.get(&tx).map_or("-", |(_, l)| l.as_str());
            let _ = write!(row, " {label:<width$}");
        }
        if !reported.is_empty() {
            let label = reported.get(&tx).map_or("-", |d| outcome_word(*d));
            let _ = write!(row, " {label:<width$}");
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
    out
}

/// The verdict, one line per check.
pub fn render_verdict(v: &Verdict) -> String {
    let mut out = String::new();
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    let conserved = match v.expected_total {
        Some(e) => format!("total money conserved: {} (expected {e})", v.total),
        None => format!("total money: {} (no expected total given)", v.total),
    };
    let _ = writeln!(out, "verdict:");
    let _ = writeln!(out, "  {} {conserved}", mark(v.conserved()));
    let _ = writeln!(
        out,
        "  {} no node disagrees on any outcome ({} committed, {} aborted{})",
        mark(v.disagreements.is_empty()),
        v.committed,
        v.aborted,
        if v.forgotten > 0 {
            format!(
                "; {} more ended everywhere and forgotten (logs compacted)",
                v.forgotten
            )
        } else {
            String::new()
        }
    );
    for d in &v.disagreements {
        let _ = writeln!(out, "       {d}");
    }
    let _ = writeln!(
        out,
        "  {} no transaction undecided or unacknowledged",
        mark(v.undecided.is_empty())
    );
    for d in &v.undecided {
        let _ = writeln!(out, "       {d}");
    }
    let _ = writeln!(
        out,
        "  {} no locks held, every transaction known to its coordinator",
        mark(v.other.is_empty())
    );
    for d in &v.other {
        let _ = writeln!(out, "       {d}");
    }
    let _ = writeln!(out, "  => {}", if v.ok() { "PASS" } else { "FAIL" });
    out
}

#[cfg(test)]
mod tests;
