//! Seeds: one master seed per test, read from `SIM_SEED` when set, printed
//! when the test fails, and split into independent streams for every link
//! direction and every host.

use std::fmt;

/// The environment variable that overrides a test's default seed.
pub const SEED_ENV: &str = "SIM_SEED";

/// The seed a test should use: `SIM_SEED` when it is set (decimal, or
/// hexadecimal with a `0x` prefix), `default` otherwise.
///
/// # Panics
/// When `SIM_SEED` is set but is not a number: silently running with another
/// seed than the one asked for would make a replay meaningless.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(text) => parse_seed(&text)
            .unwrap_or_else(|| panic!("{SEED_ENV}={text:?} is not a decimal or 0x-hex u64")),
        Err(std::env::VarError::NotPresent) => default,
        Err(std::env::VarError::NotUnicode(v)) => {
            panic!("{SEED_ENV}={v:?} is not valid unicode")
        }
    }
}

/// Parses a seed as `SIM_SEED` spells it: decimal, or hexadecimal with a
/// `0x` prefix; surrounding whitespace is ignored.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// SplitMix64's output function: a bijective mix of all 64 bits.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which family of random streams a derived seed belongs to, so that link
/// number 3 and host number 3 never share a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// One direction of a link (or one switch port direction), by creation
    /// order.
    Channel,
    /// A host's `InterfaceConfig::seed`, by host number.
    Host,
    /// Free for tests and applications (for instance a workload generator).
    User,
}

/// A seed for stream `index` of family `stream`, derived from `master`.
///
/// Derived seeds depend only on (`master`, `stream`, `index`), so adding a
/// link or a host to a test does not change the randomness of the others.
pub fn derive_seed(master: u64, stream: Stream, index: u64) -> u64 {
    let family = match stream {
        Stream::Channel => 0x6368_616e_6e65_6c00, // "channel"
        Stream::Host => 0x686f_7374_0000_0000,    // "host"
        Stream::User => 0x7573_6572_0000_0000,    // "user"
    };
    mix64(master ^ mix64(family ^ mix64(index.wrapping_add(1))))
}

/// Prints how to replay a test when it fails.
///
/// While the guard is alive, a panic on this thread (a failed assertion)
/// makes its drop print `SIM_SEED=<seed> replays this test` to stderr. A
/// [`Sim`](super::Sim) holds one, so tests that use a `Sim` need nothing more;
/// create one yourself for randomised tests that do not.
///
/// ```
/// let seed = sim::sim::seed_from_env(7);
/// let _guard = sim::sim::SeedGuard::new(seed);
/// // ... randomised test body ...
/// ```
pub struct SeedGuard {
    seed: u64,
    note: Option<String>,
}

impl SeedGuard {
    /// A guard for `seed`.
    pub fn new(seed: u64) -> Self {
        SeedGuard { seed, note: None }
    }

    /// The seed it reports.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a line printed after the seed on failure (where captures are,
    /// for instance).
    pub fn set_note(&mut self, note: impl Into<String>) {
        self.note = Some(note.into());
    }
}

impl fmt::Debug for SeedGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeedGuard({})", self.seed)
    }
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{SEED_ENV}={} replays this test", self.seed);
            if let Some(note) = &self.note {
                eprintln!("{note}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
