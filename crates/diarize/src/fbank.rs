//! Kaldi-compatible log-mel filterbank features.
//!
//! This reproduces `torchaudio.compliance.kaldi.fbank` (and Kaldi's
//! `compute-fbank-feats`) for the configuration used by speaker-embedding
//! models such as CAM++:
//!
//! * 16 kHz mono input, 25 ms frames (400 samples), 10 ms shift (160 samples),
//!   `snip_edges = true` (only frames that fit completely are produced);
//! * no dither, per-frame DC-offset removal, pre-emphasis 0.97;
//! * Povey window, zero padding to a 512-point FFT, power spectrum;
//! * 80 triangular filters on Kaldi's mel scale between 20 Hz and Nyquist;
//! * no energy coefficient, natural log floored at `f32::EPSILON`.
//!
//! Input samples are expected in `[-1, 1]` and are scaled by 32768 (Kaldi
//! works on 16-bit integer amplitudes); this only shifts every log energy by
//! a constant, which per-utterance mean normalisation ([`subtract_mean`])
//! removes anyway.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate the filterbank is configured for, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// Number of mel bins (feature dimension).
pub const NUM_MEL_BINS: usize = 80;
/// Frame length in samples (25 ms at 16 kHz).
pub const FRAME_LENGTH: usize = 400;
/// Frame shift in samples (10 ms at 16 kHz).
pub const FRAME_SHIFT: usize = 160;
/// FFT size: the frame length rounded up to a power of two.
pub const FFT_SIZE: usize = 512;

/// One frame of log-mel filterbank energies.
pub type FbankFrame = [f32; NUM_MEL_BINS];

const PREEMPHASIS: f32 = 0.97;
const LOW_FREQ_HZ: f64 = 20.0;
const WAV_SCALE: f32 = 32768.0;
const POVEY_EXPONENT: f64 = 0.85;

/// Number of frames Kaldi produces for `num_samples` samples with
/// `snip_edges = true`: `1 + (n - 400) / 160`, or 0 when `n < 400`.
pub fn num_frames(num_samples: usize) -> usize {
    if num_samples < FRAME_LENGTH {
        0
    } else {
        1 + (num_samples - FRAME_LENGTH) / FRAME_SHIFT
    }
}

/// Kaldi's mel scale: `1127 * ln(1 + f / 700)`.
fn mel_scale(freq_hz: f64) -> f64 {
    1127.0 * (1.0 + freq_hz / 700.0).ln()
}

/// A triangular mel filter stored sparsely: weights for the FFT bins
/// `first_bin .. first_bin + weights.len()`.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f32>,
}

/// Precomputed Kaldi filterbank extractor (window, mel filters, FFT plan).
///
/// Construction is cheap but not free; build one and reuse it for many
/// signals. The extractor is immutable and can be shared between threads.
#[derive(Clone)]
pub struct Fbank {
    window: Vec<f32>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Fbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fbank")
            .field("frame_length", &FRAME_LENGTH)
            .field("frame_shift", &FRAME_SHIFT)
            .field("fft_size", &FFT_SIZE)
            .field("num_mel_bins", &NUM_MEL_BINS)
            .finish()
    }
}

impl Default for Fbank {
    fn default() -> Self {
        Self::new()
    }
}

impl Fbank {
    /// Builds the extractor: Povey window, mel filter weights and FFT plan.
    pub fn new() -> Self {
        // Povey window: (0.5 - 0.5 cos(2 pi i / (N - 1)))^0.85.
        let denom = (FRAME_LENGTH - 1) as f64;
        let window = (0..FRAME_LENGTH)
            .map(|i| {
                let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / denom).cos();
                hann.powf(POVEY_EXPONENT) as f32
            })
            .collect();

        // Mel filters, evaluated in the mel domain exactly as Kaldi does.
        // Only the first FFT_SIZE / 2 bins get weights; the Nyquist bin is 0.
        let nyquist = f64::from(SAMPLE_RATE) / 2.0;
        let mel_low = mel_scale(LOW_FREQ_HZ);
        let mel_high = mel_scale(nyquist);
        let mel_delta = (mel_high - mel_low) / (NUM_MEL_BINS + 1) as f64;
        let bin_width = f64::from(SAMPLE_RATE) / FFT_SIZE as f64;
        let bin_mels: Vec<f64> = (0..FFT_SIZE / 2)
            .map(|k| mel_scale(bin_width * k as f64))
            .collect();

        let filters = (0..NUM_MEL_BINS)
            .map(|m| {
                let left = mel_low + m as f64 * mel_delta;
                let center = left + mel_delta;
                let right = center + mel_delta;
                let dense: Vec<f32> = bin_mels
                    .iter()
                    .map(|&mel| {
                        let up = (mel - left) / (center - left);
                        let down = (right - mel) / (right - center);
                        up.min(down).max(0.0) as f32
                    })
                    .collect();
                let first = dense.iter().position(|&w| w > 0.0).unwrap_or(0);
                let last = dense
                    .iter()
                    .rposition(|&w| w > 0.0)
                    .map_or(first, |i| i + 1);
                MelFilter {
                    first_bin: first,
                    weights: dense[first..last].to_vec(),
                }
            })
            .collect();

        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        Self {
            window,
            filters,
            fft,
        }
    }

    /// Computes log-mel filterbank frames for 16 kHz mono `samples` in `[-1, 1]`.
    ///
    /// Returns one [`FbankFrame`] per 10 ms frame; the length is
    /// [`num_frames`]`(samples.len())` (empty when fewer than 400 samples).
    /// Features are *not* mean-normalised; see [`subtract_mean`].
    pub fn compute(&self, samples: &[f32]) -> Vec<FbankFrame> {
        let n_frames = num_frames(samples.len());
        let mut out = Vec::with_capacity(n_frames);
        let mut frame = vec![0.0f32; FFT_SIZE];
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; FFT_SIZE / 2 + 1];

        for f in 0..n_frames {
            let start = f * FRAME_SHIFT;
            let src = &samples[start..start + FRAME_LENGTH];

            // Scale to 16-bit range and remove the DC offset.
            let mut sum = 0.0f32;
            for (dst, &s) in frame.iter_mut().zip(src) {
                *dst = s * WAV_SCALE;
                sum += *dst;
            }
            let mean = sum / FRAME_LENGTH as f32;
            for v in &mut frame[..FRAME_LENGTH] {
                *v -= mean;
            }

            // Pre-emphasis (in place, back to front); x[0] -= 0.97 * x[0].
            for i in (1..FRAME_LENGTH).rev() {
                frame[i] -= PREEMPHASIS * frame[i - 1];
            }
            frame[0] -= PREEMPHASIS * frame[0];

            // Window, then zero padding up to the FFT size.
            for (v, &w) in frame.iter_mut().zip(&self.window) {
                *v *= w;
            }
            frame[FRAME_LENGTH..].fill(0.0);

            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("FFT buffers are sized by the planner");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = power_of(c);
            }

            let mut feats = [0.0f32; NUM_MEL_BINS];
            for (feat, filter) in feats.iter_mut().zip(&self.filters) {
                let bins = &power[filter.first_bin..filter.first_bin + filter.weights.len()];
                let energy: f32 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                *feat = energy.max(f32::EPSILON).ln();
            }
            out.push(feats);
        }
        out
    }
}

#[inline]
fn power_of(c: &Complex<f32>) -> f32 {
    c.re * c.re + c.im * c.im
}

/// Convenience wrapper: builds an [`Fbank`] and computes features once.
///
/// Prefer keeping an [`Fbank`] around when processing many signals.
pub fn fbank(samples: &[f32]) -> Vec<FbankFrame> {
    Fbank::new().compute(samples)
}

/// Per-utterance mean normalisation: subtracts from every column (mel bin)
/// its mean over all frames, in place. Does nothing for an empty input.
pub fn subtract_mean(feats: &mut [FbankFrame]) {
    if feats.is_empty() {
        return;
    }
    let mut mean = [0.0f64; NUM_MEL_BINS];
    for frame in feats.iter() {
        for (m, &v) in mean.iter_mut().zip(frame) {
            *m += f64::from(v);
        }
    }
    let n = feats.len() as f64;
    let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
    for frame in feats.iter_mut() {
        for (v, m) in frame.iter_mut().zip(&mean) {
            *v -= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_snip_edges() {
        assert_eq!(num_frames(0), 0);
        assert_eq!(num_frames(399), 0);
        assert_eq!(num_frames(400), 1);
        assert_eq!(num_frames(559), 1);
        assert_eq!(num_frames(560), 2);
        assert_eq!(num_frames(16_000), 98);
        assert_eq!(fbank(&vec![0.0; 16_000]).len(), 98);
    }

    #[test]
    fn silence_hits_the_log_floor() {
        let feats = fbank(&[0.0; 400]);
        assert!(feats[0].iter().all(|&v| v == f32::EPSILON.ln()));
    }

    #[test]
    fn sine_peaks_in_expected_mel_bin() {
        let freq = 1000.0f64;
        let samples: Vec<f32> = (0..16_000)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / 16_000.0).sin()) as f32)
            .collect();
        let feats = fbank(&samples);
        // Expected bin: the filter whose centre is closest to mel(1000 Hz).
        let mel_low = mel_scale(LOW_FREQ_HZ);
        let delta = (mel_scale(8000.0) - mel_low) / (NUM_MEL_BINS + 1) as f64;
        let expected = ((mel_scale(freq) - mel_low) / delta - 1.0).round() as usize;
        for frame in &feats {
            let argmax = (0..NUM_MEL_BINS)
                .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
                .unwrap();
            assert_eq!(argmax, expected);
        }
    }

    #[test]
    fn filters_are_triangles_summing_to_at_most_one() {
        let fb = Fbank::new();
        let mut total = [0.0f32; FFT_SIZE / 2 + 1];
        for f in &fb.filters {
            assert!(!f.weights.is_empty());
            for (i, w) in f.weights.iter().enumerate() {
                total[f.first_bin + i] += w;
            }
        }
        assert!(total.iter().all(|&t| t <= 1.0 + 1e-5));
        assert_eq!(total[FFT_SIZE / 2], 0.0);
    }

    #[test]
    fn mean_normalisation_zeroes_column_means() {
        let mut feats = vec![[1.0f32; NUM_MEL_BINS], [3.0f32; NUM_MEL_BINS]];
        subtract_mean(&mut feats);
        assert!(feats[0].iter().all(|&v| v == -1.0));
        assert!(feats[1].iter().all(|&v| v == 1.0));
    }
}
