//! whisper.cpp's Silero VAD, run explicitly (whisper-rs's `state.full()` ignores VAD settings),
//! on real speech with silence around it, and on silence alone.

use callgrade::transcribe::engine::detect_speech;
use callgrade::transcribe::SAMPLE_RATE;

fn shared(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(path)
}

/// The product's own copy of the VAD model (shipped in the repo).
fn vad_model() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/silero-v6.2.0-ggml.bin")
}

fn jfk() -> Vec<f32> {
    let mut reader = hound::WavReader::open(shared("audio/jfk.wav")).expect("jfk.wav");
    assert_eq!(reader.spec().sample_rate, 16_000);
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect()
}

#[test]
fn the_shipped_vad_model_is_the_shared_one() {
    let ours = std::fs::read(vad_model()).expect("models/silero-v6.2.0-ggml.bin");
    let theirs = std::fs::read(shared("models/silero-v6.2.0-ggml.bin")).expect("shared model");
    assert!(
        ours == theirs,
        "the shipped VAD model differs from the team's copy"
    );
}

#[test]
fn speech_inside_silence_is_found_where_it_is() {
    let pad = 5 * SAMPLE_RATE;
    let speech = jfk();
    let mut audio = vec![0.0f32; pad];
    audio.extend_from_slice(&speech);
    audio.extend(std::iter::repeat_n(0.0, pad));
    let regions = detect_speech(&vad_model(), &audio, 2).expect("vad runs");
    assert!(!regions.is_empty());
    let first = regions.first().expect("first").start as f64 / SAMPLE_RATE as f64;
    let last = regions.last().expect("last").end as f64 / SAMPLE_RATE as f64;
    let speech_end = (pad + speech.len()) as f64 / SAMPLE_RATE as f64;
    assert!(
        (4.8..=6.0).contains(&first),
        "speech starts at {first:.2} s"
    );
    assert!(
        last <= speech_end + 0.5 && last >= speech_end - 2.0,
        "speech ends at {last:.2} s (audio speech ends {speech_end:.2})"
    );
    let covered: usize = regions.iter().map(|r| r.end - r.start).sum();
    let covered = covered as f64 / SAMPLE_RATE as f64;
    assert!(
        covered > 7.0 && covered < 11.5,
        "{covered:.2} s of speech in 11 s of jfk"
    );
}

#[test]
fn pure_silence_has_no_speech() {
    let audio = vec![0.0f32; 60 * SAMPLE_RATE];
    assert!(detect_speech(&vad_model(), &audio, 2)
        .expect("vad runs")
        .is_empty());
}
