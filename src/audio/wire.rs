//! The framed stream the decoder child writes to its stdout and the parent reads.
//!
//! ```text
//! MAGIC, then frames of: kind u8 | payload length u32 LE | payload
//!   BEGIN    channels u8, sample rate u32 LE
//!   SAMPLES  channel u8, then f32 LE samples for that channel
//!   DONE     JSON ChildSummary (source info and warnings)
//!   ERROR    JSON DecodeError
//! ```
//! Samples travel as raw little-endian floats: no encoding cost, and the parent can append
//! them straight onto its per-channel vectors. The parent trusts nothing here blindly: frame
//! sizes, channel indices and the total length are all bounded.

use std::io::Write;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::channels::Correlation;
use super::decode::PcmSink;
use super::error::DecodeError;
use super::pcm::PcmWriter;
use super::types::SourceInfo;

/// First bytes of a child's stdout: tells our protocol from stray output.
pub(crate) const MAGIC: &[u8; 8] = b"CGAUDIO1";
const BEGIN: u8 = 1;
const SAMPLES: u8 = 2;
const DONE: u8 = 3;
const ERROR: u8 = 4;
/// Samples per SAMPLES frame at most; keeps frames (and the parent's read buffer) small.
const MAX_SAMPLES_PER_FRAME: usize = 16 * 1024;
/// Largest payload the parent accepts (a JSON frame with long warnings fits easily).
const MAX_PAYLOAD: usize = 1 << 20;
/// Channels the parent accepts.
const MAX_CHANNELS: usize = 2;

/// What the child reports after the last sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChildSummary {
    pub source: SourceInfo,
    pub warnings: Vec<String>,
}

/// A [`PcmSink`] writing the protocol to `W` (the child's stdout).
pub(crate) struct FrameWriter<W: Write> {
    out: W,
    bytes: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    /// Start the stream on `out` by writing the magic.
    pub fn new(mut out: W) -> Result<Self, DecodeError> {
        out.write_all(MAGIC)?;
        Ok(Self {
            out,
            bytes: Vec::new(),
        })
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), DecodeError> {
        let len =
            u32::try_from(payload.len()).map_err(|_| DecodeError::Io("frame too large".into()))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(payload)?;
        Ok(())
    }

    /// Write the closing summary and flush.
    pub fn done(&mut self, summary: &ChildSummary) -> Result<(), DecodeError> {
        let json = serde_json::to_vec(summary).map_err(|e| DecodeError::Io(e.to_string()))?;
        self.frame(DONE, &json)?;
        self.out.flush()?;
        Ok(())
    }

    /// Write an error and flush; the parent prefers it to the exit status.
    pub fn error(&mut self, err: &DecodeError) -> Result<(), DecodeError> {
        let json = serde_json::to_vec(err).map_err(|e| DecodeError::Io(e.to_string()))?;
        self.frame(ERROR, &json)?;
        self.out.flush()?;
        Ok(())
    }
}

impl<W: Write> PcmSink for FrameWriter<W> {
    fn begin(&mut self, sample_rate: u32, channels: usize) -> Result<(), DecodeError> {
        let channels = u8::try_from(channels)
            .map_err(|_| DecodeError::Unsupported("too many channels".into()))?;
        let mut payload = vec![channels];
        payload.extend_from_slice(&sample_rate.to_le_bytes());
        self.frame(BEGIN, &payload)
    }

    fn push(&mut self, planes: &[&[f32]]) -> Result<(), DecodeError> {
        for (channel, plane) in planes.iter().enumerate() {
            for piece in plane.chunks(MAX_SAMPLES_PER_FRAME) {
                let mut bytes = std::mem::take(&mut self.bytes);
                bytes.clear();
                bytes.push(channel as u8);
                bytes.extend(piece.iter().flat_map(|s| s.to_le_bytes()));
                let result = self.frame(SAMPLES, &bytes);
                self.bytes = bytes;
                result?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        self.out.flush()?;
        Ok(())
    }
}

/// What the parent read from a child's stdout.
#[derive(Debug, Default)]
pub(crate) struct ChildOutput {
    pub sample_rate: u32,
    pub channels: Vec<PcmWriter>,
    /// For two channels: how alike they are, summed as the samples pass.
    pub correlation: Correlation,
    /// Samples of each channel not yet paired with the other's (a frame or so).
    unpaired: [Vec<f32>; 2],
    pub summary: Option<ChildSummary>,
    pub error: Option<DecodeError>,
}

impl ChildOutput {
    /// Pairs what both channels have received and adds it to the correlation.
    fn correlate(&mut self, channel: usize, samples: &[u8]) {
        if self.channels.len() != 2 {
            return;
        }
        self.unpaired[channel].extend(
            samples
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        let n = self.unpaired[0].len().min(self.unpaired[1].len());
        if n > 0 {
            let [a, b] = &mut self.unpaired;
            self.correlation.add(&a[..n], &b[..n]);
            a.drain(..n);
            b.drain(..n);
        }
    }
}

/// Read the child's stream to its end. Samples go straight from the read buffer into the
/// per-channel vectors; `max_frames` bounds each channel so a runaway child cannot make the
/// parent allocate without limit. Protocol violations are errors; a stream that simply
/// stops (the child died) returns what was read, and the exit status tells why.
pub(crate) async fn read_child_output<R: AsyncRead + Unpin>(
    mut input: R,
    max_frames: usize,
    spool: bool,
) -> Result<ChildOutput, DecodeError> {
    let mut output = ChildOutput::default();
    let mut magic = [0u8; MAGIC.len()];
    if !read_or_eof(&mut input, &mut magic).await? {
        return Ok(output);
    }
    if &magic != MAGIC {
        return Err(protocol("unexpected output"));
    }
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if !read_or_eof(&mut input, &mut header).await? {
            return Ok(output);
        }
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(protocol("oversized frame"));
        }
        payload.resize(len, 0);
        if !read_or_eof(&mut input, &mut payload).await? {
            return Ok(output);
        }
        match header[0] {
            BEGIN => {
                let [channels, r0, r1, r2, r3] = payload[..] else {
                    return Err(protocol("bad BEGIN frame"));
                };
                let channels = usize::from(channels);
                if !(1..=MAX_CHANNELS).contains(&channels) || !output.channels.is_empty() {
                    return Err(protocol("bad channel count"));
                }
                output.sample_rate = u32::from_le_bytes([r0, r1, r2, r3]);
                for _ in 0..channels {
                    output.channels.push(if spool {
                        PcmWriter::spooled()?
                    } else {
                        PcmWriter::memory()
                    });
                }
            }
            SAMPLES => {
                let Some((&channel, samples)) = payload.split_first() else {
                    return Err(protocol("empty SAMPLES frame"));
                };
                let target = output
                    .channels
                    .get_mut(usize::from(channel))
                    .ok_or_else(|| protocol("samples for an unknown channel"))?;
                if samples.len() % 4 != 0 {
                    return Err(protocol("partial sample"));
                }
                if target.frames() + samples.len() / 4 > max_frames {
                    return Err(protocol("more audio than the duration limit allows"));
                }
                target.append(samples).await?;
                output.correlate(usize::from(channel), samples);
            }
            DONE => {
                let summary =
                    serde_json::from_slice(&payload).map_err(|_| protocol("bad DONE frame"))?;
                output.summary = Some(summary);
            }
            ERROR => {
                let error =
                    serde_json::from_slice(&payload).map_err(|_| protocol("bad ERROR frame"))?;
                output.error = Some(error);
            }
            _ => return Err(protocol("unknown frame")),
        }
    }
}

/// Fill `buf` completely; `Ok(false)` on a clean or mid-buffer end of stream.
async fn read_or_eof<R: AsyncRead + Unpin>(
    input: &mut R,
    buf: &mut [u8],
) -> Result<bool, DecodeError> {
    match input.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(err) => Err(err.into()),
    }
}

fn protocol(what: &str) -> DecodeError {
    DecodeError::ChildFailed(format!("decoder output was malformed ({what})"))
}
