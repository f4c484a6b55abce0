//! Recognise the audio format from the bytes themselves.
//!
//! File names and MIME types from an upload are whatever the client's software made up, so
//! they are never consulted. [`sniff`] looks at the first [`SNIFF_LEN`] bytes and either names
//! the container/codec or says, in words an uploader understands, why it is not audio.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::mpeg_sync::{find_adts_stream, find_mpeg_audio_stream, MpegLayer};

/// How many leading bytes [`sniff`] wants; it copes with fewer.
pub const SNIFF_LEN: usize = 64 * 1024;

/// Container, and where it matters the codec, recognised from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    /// RIFF/WAVE with the given sample coding.
    Wav(WavCodec),
    /// MPEG-1/2/2.5 Layer III.
    Mp3,
    /// Native FLAC.
    Flac,
    /// Ogg with a Vorbis stream.
    OggVorbis,
    /// Ogg with an Opus stream.
    OggOpus,
    /// Ogg with a FLAC stream.
    OggFlac,
    /// ISO base media (MP4/M4A/3GP); usually AAC inside.
    Mp4,
    /// Raw AAC in ADTS frames.
    AdtsAac,
}

/// Sample coding inside a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WavCodec {
    /// Integer PCM.
    Pcm,
    /// IEEE float PCM.
    Float,
    /// G.711 A-law (European telephony).
    ALaw,
    /// G.711 mu-law (North American telephony).
    MuLaw,
    /// Microsoft or IMA ADPCM.
    Adpcm,
    /// The `fmt ` chunk was not within the sniffed bytes; the decoder will decide.
    Unknown,
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            AudioFormat::Wav(WavCodec::Pcm) => "WAV (PCM)",
            AudioFormat::Wav(WavCodec::Float) => "WAV (float)",
            AudioFormat::Wav(WavCodec::ALaw) => "WAV (A-law)",
            AudioFormat::Wav(WavCodec::MuLaw) => "WAV (mu-law)",
            AudioFormat::Wav(WavCodec::Adpcm) => "WAV (ADPCM)",
            AudioFormat::Wav(WavCodec::Unknown) => "WAV",
            AudioFormat::Mp3 => "MP3",
            AudioFormat::Flac => "FLAC",
            AudioFormat::OggVorbis => "Ogg Vorbis",
            AudioFormat::OggOpus => "Ogg Opus",
            AudioFormat::OggFlac => "Ogg FLAC",
            AudioFormat::Mp4 => "MP4/M4A",
            AudioFormat::AdtsAac => "AAC (ADTS)",
        };
        f.write_str(name)
    }
}

/// Why the bytes are not audio we can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SniffError {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// Recognisably something else (the string says what, e.g. "text", "a PDF document").
    #[error("not an audio file: looks like {0}")]
    NotAudio(String),
    /// Recognisably audio, but a kind we do not decode.
    #[error("unsupported audio format: {0}")]
    Unsupported(String),
    /// Neither audio we know nor anything else we recognise.
    #[error("unsupported or corrupt audio: the content is not a recognised audio format")]
    Unrecognised,
}

/// Identify the audio format from the first bytes of a file (ideally [`SNIFF_LEN`] of them).
pub fn sniff(head: &[u8]) -> Result<AudioFormat, SniffError> {
    if head.is_empty() {
        return Err(SniffError::Empty);
    }
    if let Some(found) = by_magic(head) {
        return found;
    }
    let mpeg_start = id3v2_end(head).unwrap_or(0);
    if mpeg_start >= head.len() && mpeg_start > 0 {
        // A tag bigger than what we sniffed (cover art): the tag itself is valid ID3, which is
        // only ever put in front of MPEG audio.
        return Ok(AudioFormat::Mp3);
    }
    let after_tag = &head[mpeg_start..];
    if after_tag.starts_with(b"fLaC") {
        return Ok(AudioFormat::Flac);
    }
    if let Some(layer) = find_mpeg_audio_stream(after_tag) {
        return match layer {
            MpegLayer::Layer3 => Ok(AudioFormat::Mp3),
            MpegLayer::Layer1 | MpegLayer::Layer2 => Err(SniffError::Unsupported(
                "MPEG audio layer I/II (only layer III, MP3, is supported)".into(),
            )),
        };
    }
    if find_adts_stream(after_tag) {
        return Ok(AudioFormat::AdtsAac);
    }
    if mpeg_start > 0 {
        return Err(SniffError::Unsupported(
            "an ID3 tag with no MP3 audio after it".into(),
        ));
    }
    if looks_like_text(head) {
        return Err(SniffError::NotAudio("text".into()));
    }
    Err(SniffError::Unrecognised)
}

/// Formats with a fixed signature at offset 0, audio or not.
fn by_magic(head: &[u8]) -> Option<Result<AudioFormat, SniffError>> {
    let not_audio = |what: &str| Some(Err(SniffError::NotAudio(what.into())));
    let unsupported = |what: &str| Some(Err(SniffError::Unsupported(what.into())));
    if head.starts_with(b"RIFF") && head.len() >= 12 {
        return match &head[8..12] {
            b"WAVE" => Some(wav_codec(head).map(AudioFormat::Wav)),
            b"AVI " => not_audio("a video (AVI)"),
            b"WEBP" => not_audio("an image (WebP)"),
            _ => unsupported("a RIFF file that is not WAVE"),
        };
    }
    if head.starts_with(b"fLaC") {
        return Some(Ok(AudioFormat::Flac));
    }
    if head.starts_with(b"OggS") {
        return Some(ogg_codec(head));
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some(Ok(AudioFormat::Mp4));
    }
    let signatures: [(&[u8], Result<&str, &str>); 14] = [
        (b"RF64", Err("RF64 WAV (files over 4 GB)")),
        (b"#!AMR", Err("AMR (mobile voice codec)")),
        (b"\x1A\x45\xDF\xA3", Err("WebM/Matroska")),
        (b"FORM", Err("AIFF")),
        (b"caff", Err("Apple CAF")),
        (b".snd", Err("Sun/NeXT AU")),
        (b"MThd", Ok("a MIDI file (notes, not a recording)")),
        (b"%PDF", Ok("a PDF document")),
        (b"\x89PNG", Ok("an image (PNG)")),
        (b"\xFF\xD8\xFF", Ok("an image (JPEG)")),
        (b"GIF8", Ok("an image (GIF)")),
        (b"PK\x03\x04", Ok("a ZIP archive or office document")),
        (b"\x1F\x8B", Ok("a gzip archive")),
        (b"\x7FELF", Ok("a program")),
    ];
    for (magic, verdict) in signatures {
        if head.starts_with(magic) {
            return match verdict {
                Ok(what) => not_audio(what),
                Err(what) => unsupported(what),
            };
        }
    }
    None
}

/// Read the WAVE `fmt ` chunk's format tag, walking the chunks within the sniffed bytes.
fn wav_codec(head: &[u8]) -> Result<WavCodec, SniffError> {
    let mut pos = 12usize;
    while let Some(chunk) = head.get(pos..pos + 8) {
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        if &chunk[..4] == b"fmt " {
            let Some(fmt) = head.get(pos + 8..pos + 10) else {
                return Ok(WavCodec::Unknown);
            };
            let mut tag = u16::from_le_bytes([fmt[0], fmt[1]]);
            if tag == 0xFFFE {
                // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
                match head.get(pos + 8 + 24..pos + 8 + 26) {
                    Some(sub) => tag = u16::from_le_bytes([sub[0], sub[1]]),
                    None => return Ok(WavCodec::Unknown),
                }
            }
            return match tag {
                0x0001 => Ok(WavCodec::Pcm),
                0x0003 => Ok(WavCodec::Float),
                0x0006 => Ok(WavCodec::ALaw),
                0x0007 => Ok(WavCodec::MuLaw),
                0x0002 | 0x0011 => Ok(WavCodec::Adpcm),
                0x0031 => Err(SniffError::Unsupported("GSM 6.10 in WAV".into())),
                0x0055 => Err(SniffError::Unsupported("MP3 inside WAV".into())),
                other => Err(SniffError::Unsupported(format!(
                    "WAV with codec tag 0x{other:04X}"
                ))),
            };
        }
        // Chunks are padded to even sizes; saturate so a lying size just ends the walk.
        pos = pos
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    Ok(WavCodec::Unknown)
}

/// Tell the codec of an Ogg stream by the first packet of its first page.
fn ogg_codec(head: &[u8]) -> Result<AudioFormat, SniffError> {
    let segments = *head.get(26).ok_or(SniffError::Unrecognised)? as usize;
    let packet = head.get(27 + segments..).ok_or(SniffError::Unrecognised)?;
    if packet.starts_with(b"OpusHead") {
        Ok(AudioFormat::OggOpus)
    } else if packet.starts_with(b"\x01vorbis") {
        Ok(AudioFormat::OggVorbis)
    } else if packet.starts_with(b"\x7FFLAC") {
        Ok(AudioFormat::OggFlac)
    } else if packet.starts_with(b"Speex   ") {
        Err(SniffError::Unsupported("Ogg Speex".into()))
    } else if packet.starts_with(b"\x80theora") {
        Err(SniffError::NotAudio("a video (Ogg Theora)".into()))
    } else {
        Err(SniffError::Unsupported(
            "Ogg stream with an unknown codec".into(),
        ))
    }
}

/// End offset of the ID3v2 tag(s) at the start, if there are any.
fn id3v2_end(head: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    // Some taggers stack several tags; a handful is plenty before we call it garbage.
    for _ in 0..4 {
        let Some(h) = head.get(pos..pos + 10) else {
            break;
        };
        let valid = &h[..3] == b"ID3"
            && (2..=4).contains(&h[3])
            && h[4] != 0xFF
            && h[6..10].iter().all(|b| b & 0x80 == 0);
        if !valid {
            break;
        }
        let size = h[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(*b));
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        pos += 10 + size + footer;
    }
    (pos > 0).then_some(pos)
}

/// Mostly printable UTF-8 with no NULs: a text file (CSV, HTML, a note) renamed to audio.
fn looks_like_text(head: &[u8]) -> bool {
    let sample = &head[..head.len().min(4096)];
    let text = match std::str::from_utf8(sample) {
        Ok(text) => text,
        // A multi-byte character cut by our window is still text.
        Err(err) if err.error_len().is_none() => {
            match std::str::from_utf8(&sample[..err.valid_up_to()]) {
                Ok(text) => text,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    let total = text.chars().count();
    let control = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C'))
        .count();
    total > 0 && control * 100 <= total
}
