//! What the call page plays and draws: the recording as a browser can play it, and its
//! waveform peaks.
//!
//! Both are derived from the stored recording on first request and kept beside it (in
//! `<recordings>/derived/`), so each is computed once per call:
//! - **Peaks**: the largest absolute sample of each short bucket, per channel, computed from the
//!   same isolated decoder the transcription uses. A one-hour call is a few thousand numbers, so
//!   the browser never decodes the audio to draw it.
//! - **Playback**: the original file when browsers play its format (MP3, PCM WAV, FLAC, Ogg,
//!   MP4); otherwise (A-law/mu-law/ADPCM WAV, Ogg FLAC, raw AAC) an Ogg Opus transcode made
//!   once with libopus from the decoded 16 kHz audio, which is what a call needs.
//!
//! Derivations run one at a time (a semaphore): they compete with whisper for the CPU, and a
//! burst of first page views must not start a decoder per view.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use crate::audio::{
    decode_isolated_spooled, sniff, AudioFormat, DecodeError, DecodeLimits, DecoderProgram, Pcm,
    WavCodec, SNIFF_LEN, TARGET_SAMPLE_RATE,
};
use crate::domain::CallId;
use crate::redact::{Kind, Redaction};
use sha2::{Digest, Sha256};

/// Most peak values per channel, whatever the length (a one-hour call: ~2 per second).
const MAX_PEAKS: usize = 8_000;
/// Peak values per second for short calls (a bar every 20 ms).
const PEAKS_PER_SECOND: usize = 50;
/// Opus frame: 20 ms at 16 kHz.
const OPUS_FRAME: usize = 320;

/// Why the playback or the peaks are not available.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    /// The stored recording is gone (deleted meanwhile).
    #[error("the recording is no longer stored")]
    Missing,
    /// The decoder refused or failed.
    #[error("the recording could not be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// The encoder failed.
    #[error("the recording could not be converted for playback: {0}")]
    Encode(String),
    /// Reading or writing the derived files.
    #[error("playback files: {0}")]
    Io(#[from] std::io::Error),
}

/// A recording's waveform: per channel, the largest absolute sample of each bucket (0..1).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Peaks {
    /// Length of the audio, seconds.
    pub duration_s: f64,
    /// Buckets per second of audio.
    pub per_second: f64,
    /// One list per channel (left/manager first); a mono call has one.
    pub channels: Vec<Vec<f32>>,
}

/// A file to send for playback.
#[derive(Debug, Clone)]
pub struct PlaybackFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// True for an Ogg Opus made from a format browsers do not play.
    pub transcoded: bool,
}

/// Makes and finds the derived files.
#[derive(Clone)]
pub struct Playback {
    dir: PathBuf,
    decoder: DecoderProgram,
    limits: DecodeLimits,
    turns: Arc<Semaphore>,
    mutes: Arc<std::sync::Mutex<HashMap<CallId, Mutes>>>,
}

/// The stretches to mute for one transcript (by its write time) and set of hidden kinds.
struct Mutes {
    written: i64,
    kinds: Vec<Kind>,
    spans: Arc<Vec<Redaction>>,
}

/// How many calls' mute lists are remembered; past it the memory starts afresh (each list is
/// found again on its next request).
const REMEMBERED_MUTES: usize = 4096;

impl Playback {
    /// Derived files under `recordings_root/derived`, decoded with `decoder` under `limits`.
    pub fn new(recordings_root: &Path, decoder: DecoderProgram, limits: DecodeLimits) -> Self {
        Self {
            dir: recordings_root.join("derived"),
            decoder,
            limits,
            turns: Arc::new(Semaphore::new(1)),
            mutes: Arc::default(),
        }
    }

    /// The stretches remembered by [`Playback::remember_mutes`] for this transcript of `call`
    /// (written at `written`) and these hidden kinds.
    pub fn remembered_mutes(
        &self,
        call: CallId,
        written: i64,
        kinds: &[Kind],
    ) -> Option<Arc<Vec<Redaction>>> {
        let mutes = self.mutes.lock().unwrap_or_else(|e| e.into_inner());
        mutes
            .get(&call)
            .filter(|m| m.written == written && m.kinds == kinds)
            .map(|m| Arc::clone(&m.spans))
    }

    /// Remembers where `call`'s transcript written at `written` is muted for `kinds`.
    pub fn remember_mutes(
        &self,
        call: CallId,
        written: i64,
        kinds: &[Kind],
        spans: Arc<Vec<Redaction>>,
    ) {
        let mut mutes = self.mutes.lock().unwrap_or_else(|e| e.into_inner());
        if mutes.len() >= REMEMBERED_MUTES && !mutes.contains_key(&call) {
            mutes.clear();
        }
        mutes.insert(
            call,
            Mutes {
                written,
                kinds: kinds.to_vec(),
                spans,
            },
        );
    }

    fn peaks_path(&self, call: CallId) -> PathBuf {
        self.dir.join(format!("{call}.peaks.json"))
    }

    fn opus_path(&self, call: CallId) -> PathBuf {
        self.dir.join(format!("{call}.ogg"))
    }

    fn muted_path(&self, call: CallId, spans: &[Redaction]) -> PathBuf {
        // Named by the stretches it mutes: a new transcript or other kinds make a new file.
        let mut hash = Sha256::new();
        for s in spans {
            hash.update(format!("{}:{:.3}:{:.3};", s.kind, s.start, s.end));
        }
        let digest = hex::encode(&hash.finalize()[..8]);
        self.dir.join(format!("{call}.muted-{digest}.ogg"))
    }

    /// Removes a call's derived files (the call was deleted); missing files are fine.
    pub async fn remove(&self, call: CallId) {
        let mut paths = vec![self.peaks_path(call), self.opus_path(call)];
        if let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await {
            let prefix = format!("{call}.muted-");
            while let Ok(Some(entry)) = dir.next_entry().await {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    paths.push(entry.path());
                }
            }
        }
        for path in paths {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a playback file");
                }
            }
        }
    }

    /// The waveform of the recording at `original`, computed on first use.
    pub async fn peaks(&self, call: CallId, original: &Path) -> Result<Vec<u8>, PlaybackError> {
        let path = self.peaks_path(call);
        if let Some(bytes) = read_if_exists(&path).await? {
            return Ok(bytes);
        }
        let _turn = self.turns.acquire().await.map_err(std::io::Error::other)?;
        // Made by the request that held the turn before this one?
        if let Some(bytes) = read_if_exists(&path).await? {
            return Ok(bytes);
        }
        if !tokio::fs::try_exists(original).await? {
            return Err(PlaybackError::Missing);
        }
        let audio = decode_isolated_spooled(&self.decoder, original, &self.limits).await?;
        let channels = audio.channels;
        let peaks = tokio::task::spawn_blocking(move || compute_peaks(&channels))
            .await
            .map_err(std::io::Error::other)??;
        let bytes = serde_json::to_vec(&peaks).map_err(std::io::Error::other)?;
        write_atomically(&self.dir, &path, &bytes).await?;
        Ok(bytes)
    }

    /// The file to play for the recording at `original`: the original when browsers play its
    /// format, else an Ogg Opus transcode (made on first use and kept).
    pub async fn file(&self, call: CallId, original: &Path) -> Result<PlaybackFile, PlaybackError> {
        let format = match sniff_file(original).await? {
            Some(format) => format,
            None => return Err(PlaybackError::Missing),
        };
        if let Some(content_type) = browser_content_type(format) {
            return Ok(PlaybackFile {
                path: original.to_path_buf(),
                content_type,
                transcoded: false,
            });
        }
        let made = self.ogg_once(self.opus_path(call), original, &[]).await?;
        tracing::info!(%call, ?format, "recording playable as Ogg Opus");
        Ok(made)
    }

    /// An Ogg Opus of the recording at `original` with silence over each of `spans` (and a
    /// tenth of a second around it, for words timed a little short), made on first use and
    /// kept under a name that follows the spans.
    pub async fn muted(
        &self,
        call: CallId,
        original: &Path,
        spans: &[Redaction],
    ) -> Result<PlaybackFile, PlaybackError> {
        self.ogg_once(self.muted_path(call, spans), original, spans)
            .await
    }

    /// The Ogg Opus at `path`, made from `original` (muted over `spans`) unless it exists:
    /// one request at a time makes derived files, and the others find them made.
    async fn ogg_once(
        &self,
        path: PathBuf,
        original: &Path,
        spans: &[Redaction],
    ) -> Result<PlaybackFile, PlaybackError> {
        let done = PlaybackFile {
            path: path.clone(),
            content_type: "audio/ogg",
            transcoded: true,
        };
        if tokio::fs::try_exists(&path).await? {
            return Ok(done);
        }
        let _turn = self.turns.acquire().await.map_err(std::io::Error::other)?;
        if tokio::fs::try_exists(&path).await? {
            return Ok(done);
        }
        let bytes = muted_ogg(&self.decoder, &self.limits, original, spans).await?;
        write_atomically(&self.dir, &path, &bytes).await?;
        tracing::info!(path = %path.display(), bytes = bytes.len(), muted = spans.len(), "playback file made");
        Ok(done)
    }
}

/// The recording at `original` as Ogg Opus with silence over each of `spans` and a margin
/// around it; decoded in the isolated child.
pub async fn muted_ogg(
    decoder: &DecoderProgram,
    limits: &DecodeLimits,
    original: &Path,
    spans: &[Redaction],
) -> Result<Vec<u8>, PlaybackError> {
    if !tokio::fs::try_exists(original).await? {
        return Err(PlaybackError::Missing);
    }
    let rate = f64::from(TARGET_SAMPLE_RATE);
    let mute: Vec<std::ops::Range<usize>> = spans
        .iter()
        .map(|s| {
            let from = ((s.start - MUTE_MARGIN_S).max(0.0) * rate) as usize;
            let to = ((s.end + MUTE_MARGIN_S).max(0.0) * rate).ceil() as usize;
            from..to
        })
        .collect();
    let audio = decode_isolated_spooled(decoder, original, limits).await?;
    let channels = audio.channels;
    tokio::task::spawn_blocking(move || encode_ogg_opus_muted(&channels, &mute))
        .await
        .map_err(std::io::Error::other)?
}

/// How far around a redacted stretch the audio is muted, seconds.
const MUTE_MARGIN_S: f64 = 0.1;

/// The `Content-Type` to serve a format with, if browsers play it as it is.
pub fn browser_content_type(format: AudioFormat) -> Option<&'static str> {
    match format {
        AudioFormat::Wav(WavCodec::Pcm | WavCodec::Float) => Some("audio/wav"),
        AudioFormat::Mp3 => Some("audio/mpeg"),
        AudioFormat::Flac => Some("audio/flac"),
        AudioFormat::OggVorbis | AudioFormat::OggOpus => Some("audio/ogg"),
        AudioFormat::Mp4 => Some("audio/mp4"),
        AudioFormat::Wav(
            WavCodec::ALaw | WavCodec::MuLaw | WavCodec::Adpcm | WavCodec::Unknown,
        )
        | AudioFormat::OggFlac
        | AudioFormat::AdtsAac => None,
    }
}

async fn sniff_file(path: &Path) -> Result<Option<AudioFormat>, PlaybackError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .await?;
    // Accepted at upload, so it sniffed then; a file that no longer does is treated as one
    // browsers cannot play, and the decoder gives the precise error.
    Ok(Some(
        sniff(&head).unwrap_or(AudioFormat::Wav(WavCodec::Unknown)),
    ))
}

async fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, std::io::Error> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a temporary file in `dir` and renames it to `path`, so a reader never
/// sees half a file (and a crash leaves none).
/// Writes `bytes` to `path` (in `dir`) so that a crash leaves either the old file or the new
/// one, never a part: a synced temporary file renamed over it, and the folder synced.
pub(crate) async fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = dir.to_path_buf();
    let path = path.to_path_buf();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Largest absolute sample per bucket, per channel, rounded to 1/1000.
pub fn compute_peaks(channels: &[Pcm]) -> std::io::Result<Peaks> {
    let frames = channels.first().map_or(0, Pcm::frames);
    let rate = TARGET_SAMPLE_RATE as usize;
    let duration_s = frames as f64 / rate as f64;
    let wanted = ((duration_s * PEAKS_PER_SECOND as f64).ceil() as usize).clamp(1, MAX_PEAKS);
    let bucket = frames.div_ceil(wanted).max(1);
    let mut out = Vec::with_capacity(channels.len());
    for channel in channels {
        let mut peaks = Vec::with_capacity(wanted);
        // Read in blocks of whole buckets (about a second or more), not all at once.
        let block = bucket * (rate / bucket).max(1);
        let mut start = 0;
        while start < frames {
            let samples = channel.read(start, block)?;
            for chunk in samples.chunks(bucket) {
                let peak = chunk.iter().fold(0f32, |m, s| m.max(s.abs())).min(1.0);
                peaks.push((peak * 1000.0).round() / 1000.0);
            }
            start += block;
        }
        out.push(peaks);
    }
    Ok(Peaks {
        duration_s,
        per_second: if duration_s > 0.0 {
            out.first().map_or(0, Vec::len) as f64 / duration_s
        } else {
            0.0
        },
        channels: out,
    })
}

/// Encodes 16 kHz channels (one or two) as Ogg Opus (RFC 7845), 24 kbit/s per channel.
pub fn encode_ogg_opus(channels: &[Pcm]) -> Result<Vec<u8>, PlaybackError> {
    encode_ogg_opus_muted(channels, &[])
}

/// [`encode_ogg_opus`] with silence over `mute` (frame ranges at 16 kHz).
pub fn encode_ogg_opus_muted(
    channels: &[Pcm],
    mute: &[std::ops::Range<usize>],
) -> Result<Vec<u8>, PlaybackError> {
    if channels.is_empty() {
        return Err(PlaybackError::Encode(
            "the recording has no audio channel".into(),
        ));
    }
    let count = channels.len().clamp(1, 2);
    let layout = if count == 2 {
        opus::Channels::Stereo
    } else {
        opus::Channels::Mono
    };
    let enc_err = |e: opus::Error| PlaybackError::Encode(e.to_string());
    let mut encoder =
        opus::Encoder::new(TARGET_SAMPLE_RATE, layout, opus::Application::Voip).map_err(enc_err)?;
    encoder
        .set_bitrate(opus::Bitrate::Bits(24_000 * count as i32))
        .map_err(enc_err)?;
    // Encoder delay, in 48 kHz units as the header wants it.
    let lookahead = encoder.get_lookahead().map_err(enc_err)?;
    let pre_skip = u16::try_from(lookahead * 3).unwrap_or(0);
    let frames = channels.first().map_or(0, Pcm::frames);
    let mut out = Vec::new();
    {
        let mut writer = ogg::PacketWriter::new(&mut out);
        let serial = 0x6361_6c6c; // "call"
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1);
        head.push(count as u8);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&TARGET_SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        let io = |e: std::io::Error| PlaybackError::Io(e);
        writer
            .write_packet(head, serial, ogg::PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let vendor = b"callgrade";
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer
            .write_packet(tags, serial, ogg::PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let mut packet = vec![0u8; 4000];
        let mut position = 0usize;
        // The encoder's output lags its input by the lookahead, so frames of silence past the
        // end flush the last real samples out; the last granule position tells the decoder
        // where the real audio ends.
        let delayed = frames + usize::try_from(lookahead).unwrap_or(0);
        let total = delayed.div_ceil(OPUS_FRAME).max(1);
        let block_frames = OPUS_FRAME * 50; // a second at a time
        let mut buffered: Vec<Vec<f32>> = vec![Vec::new(); count];
        for index in 0..total {
            if buffered[0].len() < OPUS_FRAME {
                for (c, buf) in buffered.iter_mut().enumerate() {
                    let mut more = channels[c.min(channels.len() - 1)]
                        .read(position, block_frames)
                        .map_err(io)?;
                    for range in mute {
                        let from = range.start.saturating_sub(position).min(more.len());
                        let to = range.end.saturating_sub(position).min(more.len());
                        more[from..to].iter_mut().for_each(|x| *x = 0.0);
                    }
                    buf.append(&mut more);
                }
                position += block_frames;
            }
            let mut interleaved = Vec::with_capacity(OPUS_FRAME * count);
            for i in 0..OPUS_FRAME {
                for buf in &buffered {
                    interleaved.push(buf.get(i).copied().unwrap_or(0.0));
                }
            }
            for buf in &mut buffered {
                let n = OPUS_FRAME.min(buf.len());
                buf.drain(..n);
            }
            let len = encoder
                .encode_float(&interleaved, &mut packet)
                .map_err(enc_err)?;
            let last = index + 1 == total;
            // RFC 7845: a page's granule position counts the 48 kHz samples decodable so far,
            // pre-skip included; the last one is pre-skip plus the real length.
            let granule = if last {
                frames as u64 * 3 + u64::from(pre_skip)
            } else {
                ((index + 1) * OPUS_FRAME) as u64 * 3
            };
            let end = if last {
                ogg::PacketWriteEndInfo::EndStream
            } else if (index + 1) % 50 == 0 {
                ogg::PacketWriteEndInfo::EndPage
            } else {
                ogg::PacketWriteEndInfo::NormalPacket
            };
            writer
                .write_packet(packet[..len].to_vec(), serial, end, granule)
                .map_err(io)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutes_are_remembered_per_transcript_write_and_hidden_kinds() {
        let playback = Playback::new(
            Path::new("/nonexistent"),
            DecoderProgram::new("/bin/false", Vec::<String>::new()),
            DecodeLimits::default(),
        );
        let call = CallId::new();
        let spans = Arc::new(vec![Redaction {
            kind: Kind::Phone,
            start: 1.0,
            end: 2.5,
        }]);
        assert!(playback
            .remembered_mutes(call, 10, &[Kind::Phone])
            .is_none());
        playback.remember_mutes(call, 10, &[Kind::Phone], Arc::clone(&spans));
        assert_eq!(
            playback.remembered_mutes(call, 10, &[Kind::Phone]),
            Some(spans)
        );
        // A transcript written again, or other kinds hidden, must be looked at afresh.
        assert!(playback
            .remembered_mutes(call, 11, &[Kind::Phone])
            .is_none());
        assert!(playback.remembered_mutes(call, 10, &[Kind::Card]).is_none());
        assert!(playback
            .remembered_mutes(CallId::new(), 10, &[Kind::Phone])
            .is_none());
    }

    fn tone(seconds: f64, amplitude: f32) -> Pcm {
        tone_at(seconds, amplitude, 0.05)
    }

    fn tone_at(seconds: f64, amplitude: f32, step: f32) -> Pcm {
        let n = (seconds * f64::from(TARGET_SAMPLE_RATE)) as usize;
        Pcm::Memory(
            (0..n)
                .map(|i| amplitude * (i as f32 * step).sin())
                .collect(),
        )
    }

    #[test]
    fn peaks_follow_each_channel_and_stay_small_for_long_calls() {
        let peaks = compute_peaks(&[tone(2.0, 0.5), tone(2.0, 0.1)]).expect("peaks");
        assert_eq!(peaks.channels.len(), 2);
        assert_eq!(peaks.channels[0].len(), 100);
        assert!((peaks.duration_s - 2.0).abs() < 1e-9);
        assert!(peaks.channels[0].iter().all(|p| (*p - 0.5).abs() < 0.01));
        assert!(peaks.channels[1].iter().all(|p| (*p - 0.1).abs() < 0.01));
        let hour = Pcm::Memory(vec![0.25; 3600 * 16_000]);
        let long = compute_peaks(&[hour]).expect("peaks");
        assert!(long.channels[0].len() <= MAX_PEAKS);
        assert!(long.channels[0].len() >= MAX_PEAKS - 10);
    }

    #[test]
    fn the_transcode_is_ogg_opus_that_our_own_decoder_reads_back_at_full_length() {
        // Two different signals (a scaled copy would be folded to mono by the decoder).
        let bytes = encode_ogg_opus(&[tone(1.5, 0.5), tone_at(1.5, 0.2, 0.13)]).expect("encode");
        assert_eq!(sniff(&bytes).expect("sniff"), AudioFormat::OggOpus);
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.ogg");
        std::fs::write(&path, &bytes).expect("write");
        let decoded =
            crate::audio::decode_file(&path, &DecodeLimits::default()).expect("decodes back");
        assert_eq!(decoded.channels.len(), 2);
        let frames = decoded.channels[0].len();
        assert!(
            frames.abs_diff(24_000) < 10,
            "1.5 s at 16 kHz, got {frames} frames"
        );
        let loud = decoded.channels[0].iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(loud > 0.3 && loud < 0.7, "peak {loud}");
    }
}
