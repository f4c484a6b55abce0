//! Speaker separation for callgrade (issue 16, decision 0021): who speaks when on one channel.
//!
//! - [`segmentation`]: pyannote segmentation-3.0 (SincNet, LSTM, powerset classifier), which
//!   says for each 17 ms frame of a 10 s window which of up to three local voices talk;
//! - [`fbank`] and [`embedding`]: Kaldi-style filterbanks and the CAM++ network, which turn a
//!   stretch of one voice into a 192-value voice print;
//! - [`pipeline`]: windows, voice prints, clustering into the call's speakers, and each
//!   speaker's stretches on the call's timeline.
//!
//! A crate of its own so that it is built optimised in the debug and test profiles (the
//! workspace's `profile.dev.package` setting): its loops run over every sample of a call, and
//! unoptimised they take many times the transcription itself.

pub mod embedding;
pub mod fbank;
pub mod pipeline;
pub mod segmentation;

pub use pipeline::{diarize, Diarization, Options, Turn};
