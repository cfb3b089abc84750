//! What the fault injector injects: [`FaultConfig`].

use std::fmt;
use std::time::Duration;

use super::MAX_DELAY;
use super::model::FaultOdds;

/// Which faults to inject, the same in both directions.
///
/// Probabilities apply to each frame independently and must lie in `[0, 1]`;
/// check a configuration built from user input with
/// [`validate`](Self::validate). The default injects nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// Probability that a frame is dropped.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub dup: f64,
    /// Probability that a frame is held back behind the next one.
    pub reorder: f64,
    /// Probability that one bit of a frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay added to every frame.
    pub delay: Duration,
    /// Upper bound of a uniform random delay added to `delay`.
    pub jitter: Duration,
    /// Link rate in bits per second; `None` for unlimited.
    pub rate_bps: Option<u64>,
    /// Seed of the random generators.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            seed: 0,
        }
    }
}

impl FaultConfig {
    /// True when the configuration injects nothing: the device then passes
    /// frames through untouched, at no cost.
    pub fn is_noop(&self) -> bool {
        self.loss == 0.0
            && self.dup == 0.0
            && self.reorder == 0.0
            && self.corrupt == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.rate_bps.is_none()
    }

    /// Checks that every probability is a number in `[0, 1]`, that the rate
    /// is positive and that `delay + jitter` is at most an hour. The error is
    /// one line, fit for a command-line message.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "{name} probability must be a number from 0 to 1, got {p}"
                ));
            }
        }
        if self.rate_bps == Some(0) {
            return Err("rate must be at least 1 bit per second".to_string());
        }
        if self.delay.saturating_add(self.jitter) > MAX_DELAY {
            return Err(format!(
                "delay plus jitter must be at most {} s, got {:?}",
                MAX_DELAY.as_secs(),
                self.delay.saturating_add(self.jitter)
            ));
        }
        Ok(())
    }

    /// The per-frame probabilities, for the shared
    /// [`FaultDice`](super::model::FaultDice).
    pub fn odds(&self) -> FaultOdds {
        FaultOdds {
            loss: self.loss,
            dup: self.dup,
            reorder: self.reorder,
            corrupt: self.corrupt,
        }
    }

    /// True when frames are never held for time (no delay, jitter or rate).
    pub(super) fn immediate(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.rate_bps.is_none()
    }
}

impl fmt::Display for FaultConfig {
    /// A short summary such as `loss 10%, delay 20ms+-5ms, seed 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            return write!(f, "no faults");
        }
        let mut sep = "";
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if p != 0.0 {
                write!(f, "{sep}{name} {}%", p * 100.0)?;
                sep = ", ";
            }
        }
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            write!(f, "{sep}delay {:?}", self.delay)?;
            if !self.jitter.is_zero() {
                write!(f, "+-{:?}", self.jitter)?;
            }
            sep = ", ";
        }
        if let Some(rate) = self.rate_bps {
            write!(f, "{sep}rate {rate} bit/s")?;
        }
        write!(f, ", seed {}", self.seed)
    }
}
