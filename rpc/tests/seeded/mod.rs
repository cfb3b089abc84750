//! The seeded generator of the `rpc` integration tests: `rand`'s
//! [`SmallRng`] from a `u64` seed, with the draws the tests use. One
//! definition, so that a seed means the same schedule in every test file.

#![allow(dead_code)]

use rand::distr::uniform::SampleUniform;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// A seeded [`SmallRng`].
#[derive(Debug, Clone)]
pub struct Rng(SmallRng);

impl Rng {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(SmallRng::seed_from_u64(seed))
    }

    /// A uniform 64-bit number.
    pub fn next(&mut self) -> u64 {
        self.0.random()
    }

    /// Uniform in `0..n` (0 when `n` is 0), in the caller's integer type.
    pub fn below<T: SampleUniform + PartialOrd + Default>(&mut self, n: T) -> T {
        if n <= T::default() {
            T::default()
        } else {
            self.0.random_range(T::default()..n)
        }
    }

    /// True with probability `p` (clamped to `0..=1`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.random_bool(p.clamp(0.0, 1.0))
    }
}
