//! Every format except Ogg Opus, through symphonia.
//!
//! Damage policy: a packet that fails to decode is replaced by silence of its duration (so
//! later timings stay aligned) as long as such failures stay rare; a container that breaks
//! off (truncated upload) ends the decode with a warning and keeps what came before. Only a
//! file that yields no audio at all is an error.

use std::fs::File;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::decode::{DecodeReport, Frontend};
use super::error::DecodeError;
use super::sniff::AudioFormat;

/// Consecutive undecodable packets after which the rest of the file is taken to be garbage.
const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 20;
/// Longest stretch of silence we stand in for one bad packet; a longer claimed duration is
/// not believed (it comes from the same damaged data).
const MAX_CONCEALED_SECONDS: u64 = 1;

/// Decode `file`, already sniffed as `format`, into `out`.
pub(crate) fn decode(
    file: File,
    format: AudioFormat,
    out: &mut Frontend<'_>,
) -> Result<DecodeReport, DecodeError> {
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    // The sniffed format steers the probe straight to the right reader.
    let mut hint = Hint::new();
    hint.with_extension(extension(format));
    // Gapless trimming (LAME/Xing delay and padding for MP3, edit lists for MP4) is done by
    // the decoder from the packets' trim fields; it is on by default in
    // `AudioDecoderOptions`, and we rely on it for timings that match the original.
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| DecodeError::Corrupt(format!("cannot read the {format} container: {e}")))?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or_else(|| DecodeError::Unsupported(format!("the {format} file has no audio track")))?;
    let track_id = track.id;
    // What the header promises; only used to warn when the file holds much less.
    let declared_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| DecodeError::Unsupported(format!("the {format} file has no audio track")))?
        .clone();
    let opts = AudioDecoderOptions::default().gapless(true);
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &opts)
        .map_err(|e| {
            DecodeError::Unsupported(format!("{format} with an unsupported codec ({e})"))
        })?;
    let codec = decoder.codec_info().short_name.to_string();

    let mut warnings = Vec::new();
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut silence: Vec<f32> = Vec::new();
    let (mut bad_in_a_row, mut bad_total) = (0u32, 0u64);
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(err) if out.frames > 0 => {
                warnings.push(cut_short(out, &err));
                break;
            }
            Err(err) => return Err(DecodeError::Corrupt(format!("{format}: {err}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buffer) => {
                bad_in_a_row = 0;
                let rate = buffer.spec().rate();
                buffer.copy_to_vecs_planar::<f32>(&mut planes);
                let views: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
                if !out.push(rate, &views)? {
                    warnings.push(layout_changed(out));
                    break;
                }
            }
            Err(SymError::DecodeError(_) | SymError::IoError(_)) => {
                bad_in_a_row += 1;
                bad_total += 1;
                if bad_in_a_row >= MAX_CONSECUTIVE_BAD_PACKETS {
                    if out.frames == 0 {
                        return Err(DecodeError::Corrupt(format!(
                            "{format}: no packet could be decoded"
                        )));
                    }
                    warnings.push(format!(
                        "the audio is damaged after {:.1} s; using the audio before that",
                        seconds(out)
                    ));
                    break;
                }
                conceal(out, packet.dur.get(), &mut silence)?;
            }
            Err(err) if out.frames > 0 => {
                warnings.push(cut_short(out, &err));
                break;
            }
            Err(err) => return Err(DecodeError::Corrupt(format!("{format}: {err}"))),
        }
    }
    if bad_total > 0 {
        warnings.push(format!(
            "{bad_total} damaged audio packet(s) were replaced by silence"
        ));
    }
    let (rate, channels) = out.layout().unwrap_or((params.sample_rate.unwrap_or(0), 0));
    if let Some(declared) = declared_frames.filter(|d| *d > out.frames + u64::from(rate)) {
        warnings.push(format!(
            "the file's header promises {:.1} s but only {:.1} s of audio is present; the upload may be incomplete",
            declared as f64 / f64::from(rate.max(1)),
            seconds(out)
        ));
    }
    Ok(DecodeReport {
        format,
        codec,
        original_sample_rate: rate,
        original_channels: u16::try_from(channels).unwrap_or(u16::MAX),
        frames: out.frames,
        decoded_rate: rate,
        warnings,
    })
}

/// Stand in silence for a packet that would not decode, once the layout is known.
fn conceal(out: &mut Frontend<'_>, frames: u64, silence: &mut Vec<f32>) -> Result<(), DecodeError> {
    let Some((rate, channels)) = out.layout() else {
        return Ok(());
    };
    let frames = frames.min(MAX_CONCEALED_SECONDS * u64::from(rate));
    silence.clear();
    silence.resize(usize::try_from(frames).unwrap_or(0), 0.0);
    let views = vec![silence.as_slice(); channels];
    out.push(rate, &views).map(|_| ())
}

fn seconds(out: &Frontend<'_>) -> f64 {
    let rate = out.layout().map_or(1, |(rate, _)| rate.max(1));
    out.frames as f64 / f64::from(rate)
}

fn cut_short(out: &Frontend<'_>, err: &SymError) -> String {
    format!(
        "the file ends early or is damaged after {:.1} s ({err}); using the audio before that",
        seconds(out)
    )
}

fn layout_changed(out: &Frontend<'_>) -> String {
    format!(
        "the sample rate or channel count changes after {:.1} s; using the audio before that",
        seconds(out)
    )
}

fn extension(format: AudioFormat) -> &'static str {
    match format {
        AudioFormat::Wav(_) => "wav",
        AudioFormat::Mp3 => "mp3",
        AudioFormat::Flac => "flac",
        AudioFormat::OggVorbis | AudioFormat::OggOpus | AudioFormat::OggFlac => "ogg",
        AudioFormat::Mp4 => "m4a",
        AudioFormat::AdtsAac => "aac",
    }
}
