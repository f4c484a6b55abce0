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
pub mod web;

/// The 44-byte header of a 16-bit PCM WAV file with `data_len` bytes of samples: the
/// benchmarks' generated recordings.
pub(crate) fn wav_header(channels: u16, sample_rate: u32, data_len: u32) -> Vec<u8> {
    let block_align = channels * 2;
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}
