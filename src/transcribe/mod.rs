//! Local speech recognition with whisper.cpp (through whisper-rs), with explicit Silero VAD and
//! guards against hallucinations.
//!
//! Everything here is blocking and CPU-heavy: callers run it on the blocking pool or in a child
//! process, never on the async runtime. One [`engine::WhisperModel`] is loaded per process and
//! shared; every transcription gets a fresh whisper state.

pub mod engine;
pub mod guards;
pub mod job;
pub mod speech;

/// Sample rate whisper works at.
pub const SAMPLE_RATE: usize = 16_000;

/// A transcription failure.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// The model file could not be loaded.
    #[error("cannot load the speech model {path}: {reason}")]
    Model {
        /// Where it was looked for.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The VAD model could not be loaded or run.
    #[error("voice activity detection failed: {0}")]
    Vad(String),
    /// whisper failed on this audio.
    #[error("speech recognition failed: {0}")]
    Whisper(String),
    /// The pass was stopped (the job was cancelled or its lease lost).
    #[error("speech recognition was stopped")]
    Stopped,
}
