//! Streaming conversion to 16 kHz with rubato's FFT resampler.
//!
//! Resampling happens as packets decode rather than on the whole recording afterwards, so
//! the original-rate audio is never held in full: a 3 h call at 48 kHz would otherwise need
//! gigabytes before a single 16 kHz sample exists. The FFT resampler is rubato's
//! recommendation for fixed-ratio offline work: sinc quality at a fraction of the cost.

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::decode::PcmSink;
use super::error::DecodeError;
use super::types::TARGET_SAMPLE_RATE;

/// Input frames per resampler call: small enough to keep the latency and scratch memory low.
const CHUNK_FRAMES: usize = 1024;

/// Silent chunks fed at the end to drain the filter; a handful always suffices.
const MAX_FLUSH_CALLS: usize = 64;

/// A [`PcmSink`] that resamples whatever it is given to 16 kHz and passes it on to `inner`.
pub struct To16k<S> {
    inner: S,
    stage: Option<Stage>,
}

/// Resampling state, created once the input rate is known.
struct Stage {
    resampler: Fft<f32>,
    input_rate: u64,
    /// Input waiting for a full chunk, one `Vec` per channel.
    pending: Vec<Vec<f32>>,
    /// Scratch output of one resampler call.
    out: Vec<Vec<f32>>,
    /// Leading output frames that are the filter's delay, not signal.
    to_trim: usize,
    input_total: u64,
    output_total: u64,
}

impl Stage {
    /// Enough input is waiting for one resampler call.
    fn has_full_chunk(&self) -> bool {
        self.pending.first().map_or(0, Vec::len) >= self.resampler.input_frames_next()
    }
}

impl<S: PcmSink> To16k<S> {
    /// Wrap the sink that should receive 16 kHz audio.
    pub fn new(inner: S) -> Self {
        Self { inner, stage: None }
    }

    /// Give back the wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Resample one chunk (or, with `partial`, what is left) and forward it, cutting the
    /// filter delay at the start and, when `limit` is set, anything past it.
    fn run_chunk(&mut self, partial: Option<usize>, limit: Option<u64>) -> Result<(), DecodeError> {
        let Some(stage) = self.stage.as_mut() else {
            return Ok(());
        };
        let channels = stage.pending.len();
        let frames_in = stage.pending.first().map_or(0, Vec::len);
        let out_frames = stage.out.first().map_or(0, Vec::len);
        let input = SequentialSliceOfVecs::new(&stage.pending, channels, frames_in)
            .map_err(|e| resample_failed(&e))?;
        let mut output = SequentialSliceOfVecs::new_mut(&mut stage.out, channels, out_frames)
            .map_err(|e| resample_failed(&e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (used, produced) = stage
            .resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| resample_failed(&e))?;
        let used = used.min(frames_in);
        for plane in &mut stage.pending {
            plane.drain(..used);
        }
        let skip = stage.to_trim.min(produced);
        stage.to_trim -= skip;
        let mut end = produced;
        if let Some(limit) = limit {
            let room = limit.saturating_sub(stage.output_total);
            end = end.min(skip + usize::try_from(room).unwrap_or(usize::MAX));
        }
        if end > skip {
            stage.output_total += (end - skip) as u64;
            let planes: Vec<&[f32]> = stage.out.iter().map(|p| &p[skip..end]).collect();
            self.inner.push(&planes)?;
        }
        Ok(())
    }
}

impl<S: PcmSink> PcmSink for To16k<S> {
    fn begin(&mut self, sample_rate: u32, channels: usize) -> Result<(), DecodeError> {
        if sample_rate != TARGET_SAMPLE_RATE {
            let resampler = Fft::<f32>::new(
                sample_rate as usize,
                TARGET_SAMPLE_RATE as usize,
                CHUNK_FRAMES,
                channels,
                FixedSync::Input,
            )
            .map_err(|e| {
                DecodeError::Unsupported(format!("cannot resample from {sample_rate} Hz: {e}"))
            })?;
            let out = vec![vec![0.0; resampler.output_frames_max()]; channels];
            self.stage = Some(Stage {
                to_trim: resampler.output_delay(),
                resampler,
                input_rate: u64::from(sample_rate),
                pending: vec![Vec::with_capacity(2 * CHUNK_FRAMES); channels],
                out,
                input_total: 0,
                output_total: 0,
            });
        }
        self.inner.begin(TARGET_SAMPLE_RATE, channels)
    }

    fn push(&mut self, planes: &[&[f32]]) -> Result<(), DecodeError> {
        let Some(stage) = self.stage.as_mut() else {
            return self.inner.push(planes);
        };
        for (pending, plane) in stage.pending.iter_mut().zip(planes) {
            pending.extend_from_slice(plane);
        }
        stage.input_total += planes.first().map_or(0, |p| p.len()) as u64;
        while self.stage.as_ref().is_some_and(Stage::has_full_chunk) {
            self.run_chunk(None, None)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(stage) = self.stage.as_ref() {
            // The exact length the input maps to; the filter's tail beyond it is dropped.
            let rate_out = u64::from(TARGET_SAMPLE_RATE);
            let expected = (stage.input_total * rate_out).div_ceil(stage.input_rate);
            let waiting = stage.pending.first().map_or(0, Vec::len);
            if waiting > 0 {
                self.run_chunk(Some(waiting), Some(expected))?;
            }
            // Flush the filter delay with silence until every expected frame is out. Each
            // call yields a full chunk, so a few calls do; the bound only guards against a
            // resampler that stops producing.
            let mut flushes = 0;
            while self
                .stage
                .as_ref()
                .is_some_and(|s| s.output_total < expected)
            {
                flushes += 1;
                if flushes > MAX_FLUSH_CALLS {
                    return Err(DecodeError::Corrupt(
                        "resampling failed: the filter did not drain".into(),
                    ));
                }
                self.run_chunk(Some(0), Some(expected))?;
            }
        }
        self.inner.finish()
    }
}

fn resample_failed(err: &dyn std::fmt::Display) -> DecodeError {
    DecodeError::Corrupt(format!("resampling failed: {err}"))
}
