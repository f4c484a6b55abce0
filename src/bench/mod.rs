//! Benchmarks run from the binary (`callgrade bench ...`); results go to docs/PERFORMANCE.md.

pub mod crash;
pub mod fuzz;
pub mod load;
pub mod long_call;
pub mod queue;
pub mod reports;
pub mod score;
pub mod transcribe;
pub mod upload;
