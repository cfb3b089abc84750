//! Shared helpers of ustack's benchmark programs.

use std::time::Duration;

/// Parses `--name value` pairs from the command line into a lookup.
pub struct Flags(Vec<(String, String)>);

impl Flags {
    /// Reads `std::env::args`; exits with code 2 and one line on a stray
    /// argument.
    pub fn from_env(usage: &str) -> Flags {
        Self::from_env_after(0, usage)
    }

    /// Like [`from_env`](Self::from_env), skipping `positional` leading
    /// arguments (a mode word, say).
    pub fn from_env_after(positional: usize, usage: &str) -> Flags {
        let mut args = std::env::args().skip(1 + positional);
        let mut pairs = Vec::new();
        while let Some(a) = args.next() {
            let Some(name) = a.strip_prefix("--") else {
                eprintln!("error: unexpected argument '{a}' (usage: {usage})");
                std::process::exit(2);
            };
            let Some(value) = args.next() else {
                eprintln!("error: --{name} needs a value (usage: {usage})");
                std::process::exit(2);
            };
            pairs.push((name.to_string(), value));
        }
        Flags(pairs)
    }

    /// The value of `--name` parsed as `T`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.0.iter().rev().find(|(n, _)| n == name) {
            None => default,
            Some((_, v)) => v.parse().unwrap_or_else(|_| {
                eprintln!("error: invalid value '{v}' for --{name}");
                std::process::exit(2);
            }),
        }
    }

    /// The value of `--name` as a string.
    pub fn string(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// Formats a rate per second with an SI prefix.
pub fn per_second(count: f64, elapsed: Duration) -> f64 {
    count / elapsed.as_secs_f64()
}
