//! Resampling: any common input rate comes out as 16 kHz with the signal intact.

use callgrade::audio::{decode_file, DecodedAudio};
use tempfile::TempDir;

use crate::common::{alaw, limits, mulaw, sine, write_g711_wav, write_wav};

/// Decode a generated WAV holding a 440 Hz tone at `rate`.
fn decode_tone(dir: &TempDir, rate: u32) -> DecodedAudio {
    let path = dir.path().join(format!("tone_{rate}.wav"));
    write_wav(&path, rate, &[sine(rate, 440.0, 2.0, 0.5)]);
    decode_file(&path, &limits()).expect("decode tone")
}

/// Correlation of `got` with an ideal 16 kHz sine of `freq` (1.0 = identical shape).
fn correlation_with_sine(got: &[f32], freq: f32) -> f64 {
    let ideal = sine(16_000, freq, got.len() as f32 / 16_000.0, 1.0);
    let n = got.len().min(ideal.len());
    // Skip the edges, where the filter rings against the implicit silence around the clip.
    let (a, b) = (800, n - 800);
    let dot: f64 = (a..b)
        .map(|i| f64::from(got[i]) * f64::from(ideal[i]))
        .sum();
    let gg: f64 = (a..b).map(|i| f64::from(got[i]).powi(2)).sum();
    let ii: f64 = (a..b).map(|i| f64::from(ideal[i]).powi(2)).sum();
    dot / (gg.sqrt() * ii.sqrt())
}

/// Phase lag of the `freq` tone in `got` against an ideal sine, in 16 kHz samples.
fn lag_samples(got: &[f32], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 16_000.0;
    let (mut sin, mut cos) = (0.0, 0.0);
    for (i, s) in got.iter().enumerate().take(got.len() - 800).skip(800) {
        sin += f64::from(*s) * (w * i as f64).sin();
        cos += f64::from(*s) * (w * i as f64).cos();
    }
    -cos.atan2(sin) / w
}

#[test]
fn telephony_8k_and_music_rates_come_out_at_16k_in_phase_and_at_full_level() {
    let dir = TempDir::new().expect("temp dir");
    for rate in [8_000, 16_000, 22_050, 44_100, 48_000] {
        let audio = decode_tone(&dir, rate);
        assert_eq!(audio.sample_rate, 16_000);
        assert_eq!(audio.source.original_sample_rate, rate);
        let samples = &audio.channels[0];
        assert!(
            (samples.len() as i64 - 32_000).abs() <= 1,
            "{rate}: {} samples",
            samples.len()
        );
        // No delay (the resampler's latency is trimmed) and no distortion.
        // No delay (the resampler's latency is trimmed) and no distortion. rubato's FFT
        // resampler is off by half an input sample when its input FFT length is odd (22.05 kHz:
        // 23 us), which is far below anything speech timing can notice.
        let lag = lag_samples(samples, 440.0);
        assert!(
            lag.abs() < 0.5,
            "{rate} Hz: output shifted by {lag} samples"
        );
        let corr = correlation_with_sine(samples, 440.0);
        assert!(corr > 0.99, "{rate} Hz: correlation {corr}");
        let peak = samples[800..samples.len() - 800]
            .iter()
            .fold(0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.01, "{rate} Hz: peak {peak}");
    }
}

#[test]
fn content_above_8k_is_filtered_out_not_aliased() {
    // A 10 kHz tone cannot exist at 16 kHz; a poor resampler would fold it down to 6 kHz.
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("high.wav");
    write_wav(&path, 48_000, &[sine(48_000, 10_000.0, 1.0, 0.5)]);
    let audio = decode_file(&path, &limits()).expect("decode");
    let s = &audio.channels[0];
    let rms = (s[800..s.len() - 800]
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        / (s.len() - 1600) as f64)
        .sqrt();
    assert!(rms < 0.005, "aliased energy {rms}");
}

#[test]
fn g711_alaw_and_mulaw_wavs_decode_to_the_tone_they_hold() {
    let dir = TempDir::new().expect("temp dir");
    let tone = sine(8_000, 440.0, 1.0, 0.5);
    for (tag, encode) in [
        (6u16, alaw as fn(f32) -> u8),
        (7u16, mulaw as fn(f32) -> u8),
    ] {
        let path = dir.path().join(format!("g711_{tag}.wav"));
        let bytes: Vec<u8> = tone.iter().map(|s| encode(*s)).collect();
        write_g711_wav(&path, tag, 8_000, &bytes);
        let audio = decode_file(&path, &limits()).expect("decode g711");
        assert_eq!(audio.source.original_sample_rate, 8_000);
        assert_eq!(audio.channels[0].len(), 16_000);
        let corr = correlation_with_sine(&audio.channels[0], 440.0);
        assert!(corr > 0.99, "tag {tag}: correlation {corr}");
    }
}
