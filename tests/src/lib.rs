//! ustack's test support: the bodies of the fuzz targets (shared by
//! cargo-fuzz on nightly and by the corpus replay that runs on stable), and
//! the deterministic simulation harness.

pub mod fuzz;
pub mod fuzz_tcp;
pub mod sim;
