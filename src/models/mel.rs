//! The mel filterbank whisper.cpp reads from the model file: librosa's
//! `filters.mel(sr=16000, n_fft=400, n_mels=80)` (Slaney mel scale, Slaney area
//! normalisation), which is what OpenAI's Whisper ships as `mel_filters.npz`.

/// Mel bands.
pub const N_MELS: usize = 80;
/// FFT size whisper uses (25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// Frequency bins of a real FFT of [`N_FFT`] samples.
pub const N_BINS: usize = N_FFT / 2 + 1;
const SAMPLE_RATE: f64 = 16_000.0;
/// Hz per mel in the linear part of Slaney's scale.
const F_SP: f64 = 200.0 / 3.0;
/// Where the scale turns logarithmic.
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The filterbank, `N_MELS` rows of `N_BINS` weights, row-major.
pub fn filterbank() -> Vec<f32> {
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * SAMPLE_RATE / N_FFT as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0));
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let mut out = Vec::with_capacity(N_MELS * N_BINS);
    for m in 0..N_MELS {
        let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let norm = 2.0 / (right - left);
        for &f in &fft_freqs {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            out.push((lower.min(upper).max(0.0) * norm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_linear_then_logarithmic_and_invertible() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 123.0, 999.0, 1000.0, 4321.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn filters_are_triangles_with_slaney_area_normalisation() {
        let fb = filterbank();
        assert_eq!(fb.len(), N_MELS * N_BINS);
        // Every band has weight somewhere, and none is negative.
        for m in 0..N_MELS {
            let row = &fb[m * N_BINS..(m + 1) * N_BINS];
            assert!(row.iter().all(|&w| w >= 0.0));
            assert!(row.iter().any(|&w| w > 0.0), "band {m} is empty");
        }
        // Known values of OpenAI's mel_filters.npz (80 mels): the first band peaks in bin 1.
        assert!((fb[1] - 0.024_862_6).abs() < 1e-6, "{}", fb[1]);
        assert_eq!(fb[0], 0.0);
    }
}
