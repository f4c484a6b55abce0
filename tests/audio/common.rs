//! Fixtures: the shared test corpus, its ground-truth JSON, and small WAV writers.

use std::path::{Path, PathBuf};

use callgrade::audio::{DecodeLimits, DecoderProgram};

/// Folder of synthetic calls with ground-truth turns.
pub fn calls_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/calls"
    ))
}

pub fn call(name: &str) -> PathBuf {
    calls_dir().join(name)
}

pub fn bad(name: &str) -> PathBuf {
    calls_dir().join("bad").join(name)
}

pub fn jfk(ext: &str) -> PathBuf {
    PathBuf::from(format!(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/testdata/audio/jfk.{}"
        ),
        ext
    ))
}

/// Every good call recording, stereo ones and mono WAV copies.
pub const GOOD_CALLS: [&str; 10] = [
    "pub01_ru.mp3",
    "pub02_ru.mp3",
    "pub03_ru.mp3",
    "pub04_ru.mp3",
    "pub05_en.mp3",
    "pub06_en.mp3",
    "pub04_ru_mono16k.wav",
    "pub06_en_mono16k.wav",
    "pub06_en_stereo.flac",
    "pub04_ru_stereo.ogg",
];

/// One true turn of a call.
#[derive(Debug, Clone)]
pub struct Turn {
    /// 0 = manager (left), 1 = client (right).
    pub channel: usize,
    pub start_s: f64,
    pub end_s: f64,
}

/// The ground truth next to a recording.
pub struct Truth {
    pub duration_s: f64,
    pub channels: usize,
    pub turns: Vec<Turn>,
}

pub fn truth(audio: &Path) -> Truth {
    let text = std::fs::read_to_string(audio.with_extension("json")).expect("ground-truth JSON");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let turns = json["turns"]
        .as_array()
        .expect("turns")
        .iter()
        .map(|t| Turn {
            channel: if t["speaker"] == "manager" { 0 } else { 1 },
            start_s: t["start_s"].as_f64().expect("start_s"),
            end_s: t["end_s"].as_f64().expect("end_s"),
        })
        .collect();
    Truth {
        duration_s: json["duration_s"].as_f64().expect("duration_s"),
        channels: json["audio"]["channels"].as_u64().expect("channels") as usize,
        turns,
    }
}

/// The decoder child is this crate's own binary.
pub fn program() -> DecoderProgram {
    DecoderProgram::new(env!("CARGO_BIN_EXE_callgrade"), ["audio-decode-child"])
}

pub fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

/// Write 16-bit PCM with `hound`; `channels` are planar.
pub fn write_wav(path: &Path, sample_rate: u32, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..channels[0].len() {
        for channel in channels {
            let s = (channel[i].clamp(-1.0, 1.0) * 32767.0).round() as i16;
            writer.write_sample(s).expect("write sample");
        }
    }
    writer.finalize().expect("finalize wav");
}

/// Read a mono 16-bit WAV with `hound` as f32.
pub fn read_wav_mono(path: &Path) -> (u32, Vec<f32>) {
    let mut reader = hound::WavReader::open(path).expect("open wav");
    let rate = reader.spec().sample_rate;
    let samples = reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")) / 32768.0)
        .collect();
    (rate, samples)
}

/// Write a WAV with an arbitrary 8-bit codec (A-law = 6, mu-law = 7), which hound cannot.
pub fn write_g711_wav(path: &Path, format_tag: u16, sample_rate: u32, bytes: &[u8]) {
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 26 + 12 + 8 + bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes()); // byte rate
    out.extend_from_slice(&1u16.to_le_bytes()); // block align
    out.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    std::fs::write(path, out).expect("write g711 wav");
}

/// G.711 mu-law encoding of one sample (the textbook algorithm).
pub fn mulaw(sample: f32) -> u8 {
    const BIAS: i32 = 0x84;
    let mut pcm = (sample.clamp(-1.0, 1.0) * 32767.0) as i32;
    let sign = if pcm < 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm;
    }
    pcm = (pcm + BIAS).min(0x7FFF);
    let exponent = (7 - (pcm.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// G.711 A-law encoding of one sample.
pub fn alaw(sample: f32) -> u8 {
    let mut pcm = (sample.clamp(-1.0, 1.0) * 32767.0) as i32 >> 3; // 13-bit
    let sign = if pcm >= 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    let code = if pcm < 32 {
        (pcm >> 1) as u8
    } else {
        let exponent = (31 - (pcm as u32).leading_zeros() - 4).min(7) as i32;
        let mantissa = (pcm >> exponent) & 0x0F;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (sign | code) ^ 0x55
}

/// A sine of `freq` Hz, `secs` long, at `rate`.
pub fn sine(rate: u32, freq: f32, secs: f32, amplitude: f32) -> Vec<f32> {
    let n = (rate as f32 * secs) as usize;
    (0..n)
        .map(|i| amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
        .collect()
}

/// Root-mean-square of a window given in seconds at 16 kHz.
pub fn rms(samples: &[f32], start_s: f64, end_s: f64) -> f64 {
    let a = ((start_s * 16_000.0) as usize).min(samples.len());
    let b = ((end_s * 16_000.0) as usize).min(samples.len()).max(a);
    if a == b {
        return 0.0;
    }
    (samples[a..b]
        .iter()
        .map(|s| f64::from(*s).powi(2))
        .sum::<f64>()
        / (b - a) as f64)
        .sqrt()
}
