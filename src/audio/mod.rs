//! Turning an uploaded recording into 16 kHz mono-or-stereo `f32` audio for transcription.
//!
//! The flow is: [`sniff`] the first bytes at upload time to refuse non-audio early, then
//! [`decode_isolated`] in a child process of the same binary (decoders are the code most
//! exposed to hostile input: a crash, a runaway allocation or a hang there must cost one job,
//! not the worker). The child decodes ([`decode`]), resamples to 16 kHz while it decodes
//! ([`resample`]) and streams the result back ([`wire`]); the parent merges a stereo file
//! whose two channels carry the same signal ([`channels`]).
//!
//! Channel order is kept: in callgrade's telephony recordings channel 0 is the manager and
//! channel 1 the client, so a stereo result means "two speakers, already separated".

mod channels;
mod child;
mod decode;
mod decode_symphonia;
mod error;
mod isolate;
mod mpeg_sync;
mod opus;
mod pcm;
mod resample;
mod sandbox;
mod sniff;
mod types;
mod wire;

pub use channels::{channels_are_identical, merge_identical_channels, Correlation};
pub use child::run_decode_child;
pub use decode::{decode_file, PcmSink};
pub use error::DecodeError;
pub use isolate::{decode_isolated, decode_isolated_spooled, DecoderProgram, SpooledAudio};
pub use pcm::Pcm;
pub use resample::To16k;
pub use sniff::{sniff, AudioFormat, SniffError, WavCodec, SNIFF_LEN};
pub use types::{DecodeLimits, DecodedAudio, FaultInjection, SourceInfo, TARGET_SAMPLE_RATE};
