//! Speaker separation for mono calls (issue 16, decision 0021): who speaks when on one
//! channel, with pyannote segmentation-3.0 and CAM++ voice prints run on the CPU with candle.
//!
//! [`Diarizer::separate`] gives each speaker's stretches of the channel; the transcription job
//! then runs whisper over each speaker's stretches as it does over a stereo channel, and
//! [`roles`] decides which speaker is the manager.

pub mod roles;

pub use callgrade_diarize::{embedding, fbank, pipeline, segmentation};

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

pub use pipeline::{Diarization, Options, Turn};

use crate::models::diarization::DiarizationModels;

/// Voice prints computed together (those of one length).
const EMBED_BATCH: usize = 8;

/// Both networks, loaded.
pub struct Diarizer {
    segmentation: segmentation::Segmentation,
    embedding: embedding::CamPlus,
}

impl Diarizer {
    /// Loads the installed networks (safetensors files).
    pub fn load(models: &DiarizationModels) -> anyhow::Result<Self> {
        let tensors = |path: &Path| -> anyhow::Result<HashMap<String, candle_core::Tensor>> {
            candle_core::safetensors::load(path, &candle_core::Device::Cpu)
                .with_context(|| format!("reading {}", path.display()))
        };
        Ok(Self {
            segmentation: segmentation::Segmentation::from_tensors(tensors(&models.segmentation)?)
                .context("loading the segmentation network")?,
            embedding: embedding::CamPlus::from_tensors(tensors(&models.embedding)?)
                .context("loading the speaker-embedding network")?,
        })
    }

    /// Each speaker's stretches of `audio` (16 kHz mono). Blocking and CPU-heavy.
    pub fn separate(&self, audio: &[f32], options: &Options) -> anyhow::Result<Diarization> {
        let mut embed = |stretches: &[Vec<f32>]| self.embedding.embed_many(stretches, EMBED_BATCH);
        pipeline::diarize(audio, &self.segmentation, &mut embed, options)
    }
}
