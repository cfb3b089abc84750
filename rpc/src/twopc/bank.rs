//! A bank as a 2PC resource manager: accounts with balances, debits and
//! credits applied atomically across banks.

use super::{NodeId, ResourceManager, TxId, Work};
use crate::message::from_bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One change to one account (negative: debit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankOp {
    /// Account name.
    pub account: String,
    /// Amount added (credit) or, if negative, taken (debit).
    pub delta: i64,
}

impl BankOp {
    /// Marshals a list of operations as a participant's work.
    pub fn encode(ops: &[BankOp]) -> Vec<u8> {
        // Encoding strings and integers into a Vec cannot fail.
        postcard::to_allocvec(ops).unwrap_or_default()
    }

    /// Unmarshals a participant's work (`None` if malformed).
    pub fn decode(work: &[u8]) -> Option<Vec<BankOp>> {
        from_bytes(work).ok()
    }

    /// A participant's work from `(account, delta)` pairs (the encoded
    /// [`BankOp`]s).
    pub fn work(list: &[(&str, i64)]) -> Vec<u8> {
        let ops: Vec<BankOp> = list
            .iter()
            .map(|&(account, delta)| BankOp {
                account: account.to_string(),
                delta,
            })
            .collect();
        BankOp::encode(&ops)
    }

    /// A transaction's work moving `amount` from `from_account` at bank
    /// `from` to `to_account` at bank `to` (two different banks).
    pub fn transfer(
        from: NodeId,
        from_account: &str,
        to: NodeId,
        to_account: &str,
        amount: i64,
    ) -> Work {
        vec![
            (from, BankOp::work(&[(from_account, -amount)])),
            (to, BankOp::work(&[(to_account, amount)])),
        ]
    }
}

/// Accounts of one bank. Votes abort on an unknown account, insufficient
/// funds, an overflow, malformed work, or an account locked by another
/// transaction (no-wait locking: never waits, so never deadlocks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bank {
    balances: BTreeMap<String, u64>,
    locks: BTreeMap<String, TxId>,
}

impl Bank {
    /// A bank with these accounts.
    pub fn new<S: Into<String>>(accounts: impl IntoIterator<Item = (S, u64)>) -> Self {
        Bank {
            balances: accounts.into_iter().map(|(a, b)| (a.into(), b)).collect(),
            locks: BTreeMap::new(),
        }
    }

    /// The committed balance of an account.
    pub fn balance(&self, account: &str) -> Option<u64> {
        self.balances.get(account).copied()
    }

    /// Every account and its committed balance.
    pub fn balances(&self) -> &BTreeMap<String, u64> {
        &self.balances
    }

    /// Sum of all balances.
    pub fn total(&self) -> u128 {
        self.balances.values().map(|&b| u128::from(b)).sum()
    }

    /// Accounts currently locked by prepared transactions.
    pub fn locked(&self) -> usize {
        self.locks.len()
    }

    /// Net change per account, or why the work is unacceptable.
    fn net(work: &[u8]) -> Result<BTreeMap<String, i128>, String> {
        let ops: Vec<BankOp> = from_bytes(work).map_err(|e| format!("malformed work: {e}"))?;
        let mut net = BTreeMap::new();
        for op in ops {
            *net.entry(op.account).or_insert(0i128) += i128::from(op.delta);
        }
        Ok(net)
    }

    fn apply(balance: u64, delta: i128) -> Option<u64> {
        u64::try_from(i128::from(balance) + delta).ok()
    }
}

impl ResourceManager for Bank {
    fn prepare(&mut self, tx: TxId, work: &[u8]) -> Result<(), String> {
        let net = Bank::net(work)?;
        for (account, &delta) in &net {
            let Some(&balance) = self.balances.get(account) else {
                return Err(format!("no account {account:?}"));
            };
            if self.locks.get(account).is_some_and(|&holder| holder != tx) {
                return Err(format!(
                    "account {account:?} is locked by another transaction"
                ));
            }
            if Bank::apply(balance, delta).is_none() {
                return Err(format!("insufficient funds in {account:?} (or overflow)"));
            }
        }
        for account in net.into_keys() {
            self.locks.insert(account, tx);
        }
        Ok(())
    }

    fn restore_prepared(&mut self, tx: TxId, work: &[u8]) {
        if let Ok(net) = Bank::net(work) {
            for account in net.into_keys() {
                self.locks.insert(account, tx);
            }
        }
    }

    fn commit(&mut self, tx: TxId, work: &[u8]) {
        let Ok(net) = Bank::net(work) else { return };
        for (account, delta) in net {
            if self.locks.get(&account) == Some(&tx) {
                self.locks.remove(&account);
            }
            if let Some(balance) = self.balances.get_mut(&account) {
                // Checked at PREPARE, and the lock kept others away since.
                match Bank::apply(*balance, delta) {
                    Some(b) => *balance = b,
                    None => log::error!("bank: {tx}: cannot apply {delta} to {account:?}"),
                }
            }
        }
    }

    fn abort(&mut self, tx: TxId, _work: &[u8]) {
        self.locks.retain(|_, holder| *holder != tx);
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.balances).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.balances = from_bytes(snapshot).map_err(|e| format!("bad bank snapshot: {e}"))?;
        self.locks.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
