//! The values that cross the module boundary: limits going in, decoded audio coming out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sniff::AudioFormat;

/// Sample rate of every [`DecodedAudio`]: what the speech recogniser expects.
pub const TARGET_SAMPLE_RATE: u32 = 16_000;

/// Decoded, resampled audio ready for transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// Always [`TARGET_SAMPLE_RATE`].
    pub sample_rate: u32,
    /// One `Vec` per channel, all the same length: one channel (mono) or two (channel 0 is the
    /// left/manager side, channel 1 the right/client side).
    pub channels: Vec<Vec<f32>>,
    /// What the upload was before decoding.
    pub source: SourceInfo,
    /// True when a stereo file carried the same signal on both sides and was folded to mono.
    pub identical_channels_merged: bool,
    /// Non-fatal problems met while decoding (e.g. the file was cut short), worth logging.
    pub warnings: Vec<String>,
}

impl DecodedAudio {
    /// Length of the audio in seconds.
    pub fn duration_s(&self) -> f64 {
        let frames = self.channels.first().map_or(0, Vec::len);
        frames as f64 / f64::from(self.sample_rate)
    }
}

/// Facts about the uploaded file as it was, before resampling and channel merging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Container (and codec family) recognised from the content.
    pub format: AudioFormat,
    /// Codec name as the decoder reports it (e.g. `mp3`, `pcm_s16le`, `opus`).
    pub codec: String,
    /// Sample rate of the decoded stream before resampling.
    pub original_sample_rate: u32,
    /// Channel count of the decoded stream before any merging or downmixing.
    pub original_channels: u16,
    /// Duration of the audio actually decoded (not what a header claims).
    pub duration_s: f64,
}

/// Bounds on one decode, so a hostile or broken file costs bounded time and memory.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeLimits {
    /// Longest recording accepted; decoding stops with [`super::DecodeError::TooLong`] past it.
    pub max_duration: Duration,
    /// Address-space limit the child applies to itself (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Wall-clock limit the parent enforces by killing the child.
    pub timeout: Duration,
    /// Test-only: make the child misbehave in a chosen way to prove the isolation holds.
    #[doc(hidden)]
    pub fault: Option<FaultInjection>,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            // Sales calls longer than three hours are not calls worth grading; the cap also
            // bounds the memory the parent needs (3 h x 16 kHz x 2 ch x 4 B = 1.4 GB worst case).
            max_duration: Duration::from_secs(3 * 3600),
            memory_bytes: 2 << 30,
            // Decoding runs at well over 100x real time, so even a 3 h call fits with room.
            timeout: Duration::from_secs(300),
            fault: None,
        }
    }
}

/// Misbehaviour the child can be told to simulate, for the isolation tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultInjection {
    /// Allocate and touch this many bytes before decoding.
    Allocate(u64),
    /// Sleep this long before decoding.
    Sleep(Duration),
    /// Abort the process (SIGABRT) before decoding.
    Abort,
    /// After confining itself, try to read the environment, open a socket, read another file
    /// and run a program, report each outcome, and exit.
    Escape,
}
