//! Benchmarks run from the binary (`callgrade bench ...`); results go to docs/PERFORMANCE.md.

pub mod fuzz;
pub mod long_call;
pub mod queue;
pub mod reports;
pub mod score;
pub mod transcribe;
pub mod upload;
