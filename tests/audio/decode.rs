//! Decoding real calls: durations, channel order and timing match the ground truth.

use callgrade::audio::{decode_file, DecodedAudio};
use tempfile::TempDir;

use crate::common::{call, jfk, limits, read_wav_mono, rms, truth, write_wav, Turn, GOOD_CALLS};

/// How far a speech onset may sit from the ground truth. Ignoring MP3's gapless header
/// would put every onset ~0.21 s late (see the corpus README).
const ONSET_TOLERANCE_S: f64 = 0.1;

fn decode(name: &str) -> DecodedAudio {
    decode_file(&call(name), &limits()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_call_decodes_to_its_true_duration() {
    for name in GOOD_CALLS {
        let audio = decode(name);
        let truth = truth(&call(name));
        let want = truth.duration_s;
        assert_eq!(
            audio.channels.len(),
            truth.channels,
            "{name}: channel count"
        );
        assert_eq!(audio.sample_rate, 16_000);
        assert!(
            (audio.duration_s() - want).abs() < 0.1,
            "{name}: {} s vs {want} s",
            audio.duration_s()
        );
        assert!(
            (audio.source.duration_s - want).abs() < 0.1,
            "{name}: source {}",
            audio.source.duration_s
        );
        assert!(audio.warnings.is_empty(), "{name}: {:?}", audio.warnings);
        assert!(audio
            .channels
            .iter()
            .all(|c| c.len() == audio.channels[0].len()));
    }
}

#[test]
fn mono_wav_copies_give_one_channel() {
    for name in ["pub04_ru_mono16k.wav", "pub06_en_mono16k.wav"] {
        let audio = decode(name);
        assert_eq!(audio.channels.len(), 1, "{name}");
        assert!(!audio.identical_channels_merged);
        assert_eq!(audio.source.original_channels, 1);
    }
}

/// The parts of `turn` during which the other speaker is not talking too.
fn solo_parts(turn: &Turn, turns: &[Turn]) -> Vec<(f64, f64)> {
    let mut parts = vec![(turn.start_s, turn.end_s)];
    for other in turns.iter().filter(|t| t.channel != turn.channel) {
        parts = parts
            .into_iter()
            .flat_map(|(a, b)| {
                let mut keep = Vec::new();
                if other.start_s > a {
                    keep.push((a, b.min(other.start_s)));
                }
                if other.end_s < b {
                    keep.push((a.max(other.end_s), b));
                }
                keep.into_iter().filter(|(x, y)| y - x > 0.2)
            })
            .collect();
    }
    parts
}

/// Check every turn: its speaker's channel carries energy, the other side is silent while
/// only this speaker talks, and speech starts where the ground truth says.
fn assert_turns_on_the_right_channel(name: &str) {
    let audio = decode(name);
    let truth = truth(&call(name));
    assert_eq!(audio.channels.len(), 2, "{name}: stereo expected");
    assert!(!audio.identical_channels_merged, "{name}");
    for (i, turn) in truth.turns.iter().enumerate() {
        let own = &audio.channels[turn.channel];
        let other = &audio.channels[1 - turn.channel];
        let own_rms = rms(own, turn.start_s, turn.end_s);
        assert!(
            own_rms > 0.01,
            "{name} turn {i}: speaker channel rms {own_rms}"
        );
        for (a, b) in solo_parts(turn, &truth.turns) {
            // Margins keep the check off the other speaker's neighbouring turn edges.
            let other_rms = rms(other, a + 0.05, b - 0.05);
            assert!(
                other_rms < 0.02 * own_rms.max(0.05),
                "{name} turn {i} [{a:.2},{b:.2}]: other channel rms {other_rms} vs {own_rms}"
            );
        }
        // Onset: first sample above a tenth of the turn's peak, searched from a bit before
        // the true start (but after this speaker's previous turn).
        let prev_end = truth.turns[..i]
            .iter()
            .filter(|t| t.channel == turn.channel)
            .map(|t| t.end_s)
            .fold(0.0, f64::max);
        let from = ((turn.start_s - 0.3).max(prev_end + 0.02) * 16_000.0) as usize;
        let to = ((turn.end_s * 16_000.0) as usize).min(own.len());
        let peak = own[from..to].iter().fold(0f32, |m, s| m.max(s.abs()));
        let onset = own[from..to]
            .iter()
            .position(|s| s.abs() > 0.1 * peak)
            .map(|p| (from + p) as f64 / 16_000.0);
        let onset = onset.unwrap_or_else(|| panic!("{name} turn {i}: no onset"));
        assert!(
            (onset - turn.start_s).abs() <= ONSET_TOLERANCE_S,
            "{name} turn {i}: speech starts at {onset:.3} s, truth {:.3} s",
            turn.start_s
        );
    }
}

#[test]
fn mp3_calls_have_manager_left_client_right_and_aligned_timing() {
    for name in [
        "pub01_ru.mp3",
        "pub02_ru.mp3",
        "pub03_ru.mp3",
        "pub04_ru.mp3",
        "pub05_en.mp3",
        "pub06_en.mp3",
    ] {
        assert_turns_on_the_right_channel(name);
    }
}

#[test]
fn flac_call_has_manager_left_client_right_and_aligned_timing() {
    assert_turns_on_the_right_channel("pub06_en_stereo.flac");
}

#[test]
fn ogg_opus_call_has_manager_left_client_right_and_aligned_timing() {
    // Passes only if the Opus pre-skip is dropped and the end padding trimmed.
    assert_turns_on_the_right_channel("pub04_ru_stereo.ogg");
}

#[test]
fn a_stereo_file_with_the_same_signal_on_both_sides_becomes_mono() {
    let (rate, mono) = read_wav_mono(&jfk("wav"));
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("dup.wav");
    write_wav(&path, rate, &[mono.clone(), mono.clone()]);
    let audio = decode_file(&path, &limits()).expect("decode");
    assert!(audio.identical_channels_merged);
    assert_eq!(audio.channels.len(), 1);
    assert_eq!(audio.source.original_channels, 2);
    assert!((audio.duration_s() - 11.0).abs() < 0.01);
}

#[test]
fn a_stereo_file_with_different_speakers_stays_stereo() {
    let (rate, mono) = read_wav_mono(&jfk("wav"));
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("split.wav");
    // Left talks in the first half, right in the second: the usual telephony layout.
    let half = mono.len() / 2;
    let left: Vec<f32> = mono
        .iter()
        .enumerate()
        .map(|(i, s)| if i < half { *s } else { 0.0 })
        .collect();
    let right: Vec<f32> = mono
        .iter()
        .enumerate()
        .map(|(i, s)| if i >= half { *s } else { 0.0 })
        .collect();
    write_wav(&path, rate, &[left, right]);
    let audio = decode_file(&path, &limits()).expect("decode");
    assert!(!audio.identical_channels_merged);
    assert_eq!(audio.channels.len(), 2);
}

#[test]
fn the_same_call_decodes_alike_from_mp3_and_flac() {
    // Two lossy/lossless copies of one recording: their envelopes must line up.
    let mp3 = decode("pub06_en.mp3");
    let flac = decode("pub06_en_stereo.flac");
    for ch in 0..2 {
        let n = mp3.channels[ch].len().min(flac.channels[ch].len());
        let windows = n / 1600;
        let env = |s: &[f32], w: usize| rms(s, w as f64 * 0.1, (w + 1) as f64 * 0.1);
        let (mut dot, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for w in 0..windows {
            let (a, b) = (env(&mp3.channels[ch], w), env(&flac.channels[ch], w));
            dot += a * b;
            aa += a * a;
            bb += b * b;
        }
        let corr = dot / (aa.sqrt() * bb.sqrt());
        assert!(corr > 0.98, "channel {ch}: envelope correlation {corr}");
    }
}

/// Lag (in 16 kHz samples) that best aligns `b` with `a`, searched within +-`max_lag`,
/// over a 5 s stretch of speech. A true lag outside the window lands on its edge.
fn best_lag(a: &[f32], b: &[f32], max_lag: i64) -> i64 {
    let (from, to) = (16_000 * 5, 16_000 * 10);
    let score = |lag: i64| -> f64 {
        (from..to)
            .map(|i| {
                let j = (i as i64 + lag) as usize;
                f64::from(a[i]) * f64::from(*b.get(j).unwrap_or(&0.0))
            })
            .sum()
    };
    (-max_lag..=max_lag)
        .max_by(|x, y| score(*x).total_cmp(&score(*y)))
        .unwrap_or(0)
}

#[test]
fn lossy_copies_are_sample_aligned_with_the_wav_copy() {
    // The 16 kHz WAV is a plain mixdown of the same recording. A decoder that keeps the
    // MP3 encoder delay (~0.2 s here), or the Opus pre-skip (6.5 ms, 104 samples at
    // 16 kHz), would show up as a lag; a correct one lines up to the sample.
    for (lossy, wav) in [
        ("pub04_ru.mp3", "pub04_ru_mono16k.wav"),
        ("pub04_ru_stereo.ogg", "pub04_ru_mono16k.wav"),
        ("pub06_en.mp3", "pub06_en_mono16k.wav"),
        ("pub06_en_stereo.flac", "pub06_en_mono16k.wav"),
    ] {
        let reference = decode(wav);
        let copy = decode(lossy);
        let mix: Vec<f32> = copy.channels[0]
            .iter()
            .zip(&copy.channels[1])
            .map(|(l, r)| l + r)
            .collect();
        let lag = best_lag(&reference.channels[0], &mix, 300);
        eprintln!("{lossy}: lag {lag} samples");
        assert!(lag.abs() <= 2, "{lossy} is {lag} samples off the WAV copy");
    }
}
