//! Ogg Opus, which symphonia cannot decode: `ogg` demuxes, libopus (via `opus`) decodes.
//!
//! libopus decodes straight to 16 kHz (its own band-limited resampling), which saves a
//! resampling pass. Timing follows RFC 7845: the header's pre-skip (encoder lookahead,
//! counted at 48 kHz) is dropped from the start, and the final page's granule position
//! trims the padding off the end, so sample 0 of the output is sample 0 of the original.

use std::fs::File;
use std::io::BufReader;

use ogg::{OggReadError, PacketReader};

use super::decode::{DecodeReport, Frontend};
use super::error::DecodeError;
use super::sniff::AudioFormat;
use super::types::TARGET_SAMPLE_RATE;

/// Opus timestamps and pre-skip are always in 48 kHz units.
const OPUS_RATE: u64 = 48_000;
/// Longest Opus packet: 120 ms.
const MAX_PACKET_MS: usize = 120;
/// Consecutive undecodable packets after which the rest is taken to be garbage.
const MAX_CONSECUTIVE_BAD_PACKETS: u32 = 20;

/// The fields of the `OpusHead` packet we use.
struct OpusHead {
    channels: usize,
    pre_skip: u64,
    gain_q8: i16,
}

fn parse_head(data: &[u8]) -> Result<OpusHead, DecodeError> {
    let corrupt = || DecodeError::Corrupt("Ogg Opus: invalid OpusHead header".into());
    if data.len() < 19 || !data.starts_with(b"OpusHead") {
        return Err(corrupt());
    }
    // Only the major version (high nibble) signals incompatible changes.
    if data[8] >> 4 != 0 {
        return Err(DecodeError::Unsupported(format!(
            "Ogg Opus version {}",
            data[8]
        )));
    }
    let channels = usize::from(data[9]);
    let family = data[18];
    if family != 0 || !(1..=2).contains(&channels) {
        return Err(DecodeError::Unsupported(format!(
            "Ogg Opus with {channels} channels (mapping family {family}); only mono and stereo are supported"
        )));
    }
    Ok(OpusHead {
        channels,
        pre_skip: u64::from(u16::from_le_bytes([data[10], data[11]])),
        gain_q8: i16::from_le_bytes([data[16], data[17]]),
    })
}

/// Decode an Ogg Opus file into `out` at 16 kHz.
pub(crate) fn decode(file: File, out: &mut Frontend<'_>) -> Result<DecodeReport, DecodeError> {
    let mut reader = PacketReader::new(BufReader::new(file));
    let first = reader
        .read_packet()
        .map_err(|e| ogg_error(&e))?
        .ok_or_else(|| DecodeError::Corrupt("Ogg Opus: no packets".into()))?;
    let serial = first.stream_serial();
    let head = parse_head(&first.data)?;
    let layout = if head.channels == 2 {
        opus::Channels::Stereo
    } else {
        opus::Channels::Mono
    };
    let mut decoder = opus::Decoder::new(TARGET_SAMPLE_RATE, layout)
        .map_err(|e| DecodeError::Corrupt(format!("Ogg Opus: cannot start decoder: {e}")))?;
    if head.gain_q8 != 0 {
        decoder
            .set_gain(i32::from(head.gain_q8))
            .map_err(|e| DecodeError::Corrupt(format!("Ogg Opus: invalid output gain: {e}")))?;
    }

    let rate = u64::from(TARGET_SAMPLE_RATE);
    let mut to_skip = head.pre_skip * rate / OPUS_RATE;
    let max_frames = TARGET_SAMPLE_RATE as usize * MAX_PACKET_MS / 1000;
    let mut interleaved = vec![0f32; max_frames * head.channels];
    let mut planes: Vec<Vec<f32>> = vec![Vec::with_capacity(max_frames); head.channels];
    let mut warnings = Vec::new();
    let (mut emitted, mut packets, mut bad_in_a_row, mut bad_total) = (0u64, 0u64, 0u32, 0u64);
    let mut last_frames = 0usize;
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(err) if out.frames > 0 => {
                warnings.push(cut_short(emitted, &ogg_error(&err)));
                break;
            }
            Err(err) => return Err(ogg_error(&err)),
        };
        if packet.stream_serial() != serial {
            continue; // another logical stream multiplexed in: not ours
        }
        packets += 1;
        if packets == 1 {
            continue; // OpusTags: metadata only
        }
        let mut frames = match decoder.decode_float(&packet.data, &mut interleaved, false) {
            Ok(frames) => {
                bad_in_a_row = 0;
                last_frames = frames;
                frames
            }
            Err(_) => {
                bad_in_a_row += 1;
                bad_total += 1;
                if bad_in_a_row >= MAX_CONSECUTIVE_BAD_PACKETS {
                    warnings.push(format!(
                        "the audio is damaged after {:.1} s; using the audio before that",
                        emitted as f64 / rate as f64
                    ));
                    break;
                }
                // Keep later timings aligned: stand in silence as long as the last good packet.
                interleaved[..last_frames * head.channels].fill(0.0);
                last_frames
            }
        };
        let skip = usize::try_from(to_skip).unwrap_or(usize::MAX).min(frames);
        to_skip -= skip as u64;
        if packet.last_in_stream() {
            // The final granule position is the exact end; beyond it is encoder padding.
            let end = packet.absgp_page().saturating_sub(head.pre_skip) * rate / OPUS_RATE;
            let room = end.saturating_sub(emitted);
            frames = frames.min(skip + usize::try_from(room).unwrap_or(usize::MAX));
        }
        if frames <= skip {
            continue;
        }
        for (channel, plane) in planes.iter_mut().enumerate() {
            plane.clear();
            plane.extend(
                interleaved[skip * head.channels..frames * head.channels]
                    .iter()
                    .skip(channel)
                    .step_by(head.channels),
            );
        }
        emitted += (frames - skip) as u64;
        let views: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        out.push(TARGET_SAMPLE_RATE, &views)?;
        if packet.last_in_stream() {
            break; // a chained stream may follow; a call recording is one stream
        }
    }
    if bad_total > 0 {
        warnings.push(format!(
            "{bad_total} damaged audio packet(s) were replaced by silence"
        ));
    }
    Ok(DecodeReport {
        format: AudioFormat::OggOpus,
        codec: "opus".into(),
        // Opus always codes at 48 kHz internally, whatever rate was fed to the encoder.
        original_sample_rate: OPUS_RATE as u32,
        original_channels: head.channels as u16,
        frames: out.frames,
        decoded_rate: TARGET_SAMPLE_RATE,
        warnings,
    })
}

fn ogg_error(err: &OggReadError) -> DecodeError {
    DecodeError::Corrupt(format!("Ogg Opus: {err}"))
}

fn cut_short(emitted: u64, err: &DecodeError) -> String {
    format!(
        "the file ends early or is damaged after {:.1} s ({err}); using the audio before that",
        emitted as f64 / f64::from(TARGET_SAMPLE_RATE)
    )
}
