//! In-process decoding: sniff, pick a decoder, and stream planar `f32` to a [`PcmSink`].
//!
//! This runs inside the decoder child process (see [`super::isolate`]); calling
//! [`decode_file`] directly skips that protection and is meant for tools and tests.
//!
//! Nothing here sizes a buffer from what a header claims: buffers grow only as packets
//! really decode, and the [`Frontend`] stops the decode once the duration limit is passed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::channels::{downmix_into, merge_identical_channels};
use super::error::DecodeError;
use super::resample::To16k;
use super::sniff::{sniff, AudioFormat, SNIFF_LEN};
use super::types::{DecodeLimits, DecodedAudio, SourceInfo, TARGET_SAMPLE_RATE};
use super::{decode_symphonia, opus};

/// Receives decoded audio as it is produced.
pub trait PcmSink {
    /// Announce the layout, once, before any [`PcmSink::push`].
    fn begin(&mut self, sample_rate: u32, channels: usize) -> Result<(), DecodeError>;
    /// Planar samples: one slice per channel, all of the same length.
    fn push(&mut self, planes: &[&[f32]]) -> Result<(), DecodeError>;
    /// The stream is over.
    fn finish(&mut self) -> Result<(), DecodeError>;
}

/// What a decoder path learned about the source.
#[derive(Debug, Clone)]
pub(crate) struct DecodeReport {
    pub format: AudioFormat,
    pub codec: String,
    pub original_sample_rate: u32,
    pub original_channels: u16,
    /// Frames handed to the sink.
    pub frames: u64,
    /// Rate of the frames handed to the sink (Opus decodes straight to 16 kHz).
    pub decoded_rate: u32,
    pub warnings: Vec<String>,
}

impl DecodeReport {
    /// The report as [`SourceInfo`].
    pub fn source_info(&self) -> SourceInfo {
        let rate = f64::from(self.decoded_rate.max(1));
        SourceInfo {
            format: self.format,
            codec: self.codec.clone(),
            original_sample_rate: self.original_sample_rate,
            original_channels: self.original_channels,
            duration_s: self.frames as f64 / rate,
        }
    }
}

/// Decode `path` in this process, resampled to 16 kHz, with identical stereo merged to mono.
///
/// Prefer [`super::decode_isolated`] for uploaded files: a decoder bug here takes the whole
/// process down with it.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<DecodedAudio, DecodeError> {
    let mut sink = To16k::new(CollectSink::default());
    let report = decode_to_sink(path, limits, &mut sink)?;
    let mut channels = sink.into_inner().channels;
    let identical_channels_merged = merge_identical_channels(&mut channels);
    Ok(DecodedAudio {
        sample_rate: TARGET_SAMPLE_RATE,
        channels,
        source: report.source_info(),
        identical_channels_merged,
        warnings: report.warnings,
    })
}

/// Sniff `path`, decode it with the matching decoder and stream the audio to `sink` at its
/// original rate (wrap the sink in [`To16k`] to get 16 kHz).
pub(crate) fn decode_to_sink(
    path: &Path,
    limits: &DecodeLimits,
    sink: &mut dyn PcmSink,
) -> Result<DecodeReport, DecodeError> {
    decode_file_to_sink(File::open(path)?, limits, sink)
}

/// [`decode_to_sink`] of a file already open (the decoder child opens its input before it
/// confines itself).
pub(crate) fn decode_file_to_sink(
    mut file: File,
    limits: &DecodeLimits,
    sink: &mut dyn PcmSink,
) -> Result<DecodeReport, DecodeError> {
    let head = read_head(&mut file)?;
    let format = sniff(&head)?;
    file.seek(SeekFrom::Start(0))?;
    let mut frontend = Frontend::new(sink, limits);
    let mut report = match format {
        AudioFormat::OggOpus => opus::decode(file, &mut frontend)?,
        other => decode_symphonia::decode(file, other, &mut frontend)?,
    };
    if frontend.frames == 0 {
        return Err(DecodeError::NoAudio(format!(
            "{format} file with no decodable frames"
        )));
    }
    frontend.sink.finish()?;
    report.frames = frontend.frames;
    report.decoded_rate = frontend.layout().map_or(0, |(rate, _)| rate);
    Ok(report)
}

/// Read up to [`SNIFF_LEN`] bytes from the start of the file.
fn read_head(file: &mut File) -> Result<Vec<u8>, DecodeError> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.by_ref()
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// Sits between a codec and the sink: fixes the layout at the first packet, downmixes more
/// than two channels, and enforces the duration limit on what really decodes.
pub(crate) struct Frontend<'a> {
    sink: &'a mut dyn PcmSink,
    max_duration_s: u64,
    layout: Option<(u32, usize)>,
    max_frames: u64,
    /// Frames accepted so far, at the original rate.
    pub frames: u64,
    downmix: Vec<f32>,
}

impl<'a> Frontend<'a> {
    fn new(sink: &'a mut dyn PcmSink, limits: &DecodeLimits) -> Self {
        Self {
            sink,
            max_duration_s: limits.max_duration.as_secs(),
            layout: None,
            max_frames: 0,
            frames: 0,
            downmix: Vec::new(),
        }
    }

    /// The layout fixed by the first packet, if one has arrived.
    pub fn layout(&self) -> Option<(u32, usize)> {
        self.layout
    }

    /// Pass on one decoded packet. `Ok(false)` means the layout changed mid-stream (a chained
    /// or spliced file): the caller should stop there and keep what it has.
    pub fn push(&mut self, sample_rate: u32, planes: &[&[f32]]) -> Result<bool, DecodeError> {
        let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
        if frames == 0 {
            return Ok(true);
        }
        match self.layout {
            None => {
                if sample_rate == 0 {
                    return Err(DecodeError::Corrupt(
                        "the stream declares a sample rate of 0 Hz".into(),
                    ));
                }
                let out_channels = if planes.len() > 2 { 1 } else { planes.len() };
                self.sink.begin(sample_rate, out_channels)?;
                self.layout = Some((sample_rate, planes.len()));
                self.max_frames = self.max_duration_s.saturating_mul(u64::from(sample_rate));
            }
            Some(layout) if layout != (sample_rate, planes.len()) => return Ok(false),
            Some(_) => {}
        }
        self.frames += frames as u64;
        if self.frames > self.max_frames {
            return Err(DecodeError::TooLong {
                max_s: self.max_duration_s,
            });
        }
        if planes.len() > 2 {
            downmix_into(planes, &mut self.downmix);
            let mono = [self.downmix.as_slice()];
            self.sink.push(&mono)?;
        } else {
            self.sink.push(planes)?;
        }
        Ok(true)
    }
}

/// Keeps everything in memory: the sink behind [`decode_file`].
#[derive(Debug, Default)]
pub(crate) struct CollectSink {
    pub channels: Vec<Vec<f32>>,
}

impl PcmSink for CollectSink {
    fn begin(&mut self, _sample_rate: u32, channels: usize) -> Result<(), DecodeError> {
        self.channels = vec![Vec::new(); channels];
        Ok(())
    }

    fn push(&mut self, planes: &[&[f32]]) -> Result<(), DecodeError> {
        for (channel, plane) in self.channels.iter_mut().zip(planes) {
            channel.extend_from_slice(plane);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        Ok(())
    }
}
